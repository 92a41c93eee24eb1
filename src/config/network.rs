//! `[network]` and `[monitor.network]`: the SSRF policy knobs. The global table sets the
//! policy; a monitor's table overrides single keys of it for that monitor only.

use std::time::Duration;

use url::Url;

use super::diag::{Diags, Sp};
use super::fields::Section;
use super::validate::{parse_cidr, parse_proxy};
use crate::net::NetworkPolicy;

pub(crate) const NETWORK_KEYS: &[&str] = &[
    "allow_http",
    "allow_private",
    "allow_cidrs",
    "proxy",
    "max_body",
    "connect_timeout",
];

const MIN_BODY: i64 = 1024;
const MAX_BODY: i64 = 64 << 20;

/// The keys a network table set; unset keys keep the value underneath.
#[derive(Debug, Default)]
pub(crate) struct NetworkOverride {
    pub allow_http: Option<Sp<bool>>,
    pub allow_private: Option<bool>,
    pub allow_cidrs: Option<Vec<ipnet::IpNet>>,
    /// `Some(None)`: `proxy = ""`, which turns an inherited proxy off.
    pub proxy: Option<Option<Url>>,
    pub max_body: Option<usize>,
    pub connect_timeout: Option<Duration>,
}

impl NetworkOverride {
    pub(super) fn read(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Self {
        s.check_keys(d, NETWORK_KEYS, &|_| None);
        let allow_cidrs = s.string_list(d, "allow_cidrs").map(|list| {
            list.v
                .iter()
                .filter_map(|c| match parse_cidr(&c.v) {
                    Ok(net) => Some(net),
                    Err(e) => {
                        d.error(&c.span, format!("{}: {e}", s.name("allow_cidrs")));
                        None
                    }
                })
                .collect()
        });
        let proxy = s.string(d, "proxy").and_then(|p| {
            if p.v.trim().is_empty() {
                return Some(None);
            }
            match parse_proxy(&p.v) {
                Ok(url) => Some(Some(url)),
                Err(e) => {
                    d.error(&p.span, format!("{}: {e}", s.name("proxy")));
                    None
                }
            }
        });
        NetworkOverride {
            allow_http: s.boolean(d, "allow_http"),
            allow_private: s.boolean(d, "allow_private").map(|b| b.v),
            allow_cidrs,
            proxy,
            max_body: s
                .integer(d, "max_body", MIN_BODY..=MAX_BODY)
                .and_then(|n| usize::try_from(n.v).ok()),
            connect_timeout: s
                .duration(
                    d,
                    "connect_timeout",
                    Duration::from_millis(100)..=Duration::from_secs(300),
                    "from 100ms to 5m",
                    "10s",
                )
                .map(|t| t.v),
        }
    }

    /// `base` with this table's keys applied.
    pub(super) fn apply(&self, base: &NetworkPolicy) -> NetworkPolicy {
        let mut p = base.clone();
        if let Some(b) = &self.allow_http {
            p.allow_http = b.v;
        }
        if let Some(b) = self.allow_private {
            p.allow_private = b;
        }
        if let Some(c) = &self.allow_cidrs {
            p.allow_cidrs.clone_from(c);
        }
        if let Some(proxy) = &self.proxy {
            p.proxy.clone_from(proxy);
        }
        if let Some(m) = self.max_body {
            p.max_body = m;
        }
        if let Some(t) = self.connect_timeout {
            p.connect_timeout = t;
        }
        p
    }
}
