//! `[network]` and `[monitor.network]`: the SSRF policy knobs and TLS settings. The global
//! table sets the policy; a monitor's table overrides single keys of it for that monitor only.
//! PEM files (`ca_file`, `client_cert`, `client_key`; relative to the config file) are read
//! and checked here, so a bad one is an error at its line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::diag::{Diags, Sp};
use super::fields::Section;
use super::validate::{parse_cidr, parse_proxy};
use crate::net::{
    ClientIdentity, NetworkPolicy, PemFile, key_mode_warning, load_ca, load_identity,
};

pub(crate) const NETWORK_KEYS: &[&str] = &[
    "allow_http",
    "allow_private",
    "allow_cidrs",
    "proxy",
    "max_body",
    "connect_timeout",
    "ca_file",
    "client_cert",
    "client_key",
    "tls_insecure",
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
    /// `Some(None)`: `ca_file = ""`, which turns an inherited one off.
    pub ca_file: Option<Option<PemFile>>,
    /// Both `client_cert` and `client_key` (`Some(None)`: both set to "").
    pub client: Option<Option<ClientIdentity>>,
    pub tls_insecure: Option<bool>,
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
            ca_file: read_ca(s, d),
            client: read_client(s, d),
            tls_insecure: s.boolean(d, "tls_insecure").map(|b| b.v),
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
        if let Some(ca) = &self.ca_file {
            p.tls.ca_file.clone_from(ca);
        }
        if let Some(c) = &self.client {
            p.tls.client.clone_from(c);
        }
        if let Some(b) = self.tls_insecure {
            p.tls.insecure = b;
        }
        p
    }
}

/// A path key: `None` when unset or wrong (reported), `Some(None)` for `""` (off).
fn read_path(s: &Section<'_, '_>, d: &mut Diags<'_>, key: &str) -> Option<Sp<Option<PathBuf>>> {
    let p = s.string(d, key)?;
    let path = (!p.v.trim().is_empty()).then(|| d.base_dir().join(p.v.trim()));
    Some(Sp::new(path, p.span))
}

fn read_ca(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<Option<PemFile>> {
    let p = read_path(s, d, "ca_file")?;
    let Some(path) = p.v else {
        return Some(None);
    };
    let loaded = cached(d, &path, load_ca);
    match loaded {
        Ok(f) => Some(Some(f)),
        Err(e) => {
            d.error(&p.span, format!("{}: {e}", s.name("ca_file")));
            None
        }
    }
}

fn cached(
    d: &mut Diags<'_>,
    path: &Path,
    load: impl FnOnce(&Path) -> Result<PemFile, String>,
) -> Result<PemFile, String> {
    d.pem_cache
        .entry(path.to_owned())
        .or_insert_with(|| load(path))
        .clone()
}

/// `client_cert` and `client_key`: both or neither, the key the certificate's.
fn read_client(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<Option<ClientIdentity>> {
    let cert = read_path(s, d, "client_cert");
    let key = read_path(s, d, "client_key");
    match (cert, key) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            match (c.v, k.v) {
                (None, None) => Some(None),
                (Some(cp), Some(kp)) => identity(s, d, (&cp, &c.span), (&kp, &k.span)),
                (_, _) => {
                    d.error(
                    &c.span,
                    format!("`client_cert` and `client_key` in {} must both be set, or both be \"\"", s.ctx),
                );
                    None
                }
            }
        }
        (Some(one), None) | (None, Some(one)) => {
            d.error(
                &one.span,
                format!(
                    "{} sets only one of `client_cert` and `client_key`; mTLS needs both (the certificate and its private key, PEM)",
                    s.ctx
                ),
            );
            None
        }
    }
}

fn identity(
    s: &Section<'_, '_>,
    d: &mut Diags<'_>,
    (cert, cert_span): (&Path, &super::diag::Span),
    (key, key_span): (&Path, &super::diag::Span),
) -> Option<Option<ClientIdentity>> {
    let pair = (cert.to_owned(), key.to_owned());
    let first_time = !d.identity_cache.contains_key(&pair);
    let loaded = d
        .identity_cache
        .entry(pair)
        .or_insert_with(|| load_identity(cert, key))
        .clone();
    if first_time
        && loaded.is_ok()
        && let Some(w) = key_mode_warning(key)
    {
        d.warn(key_span, format!("{}: {w}", s.name("client_key")));
    }
    match loaded {
        Ok(id) => Some(Some(id)),
        Err((is_key, e)) => {
            let (span, name) = if is_key {
                (key_span, "client_key")
            } else {
                (cert_span, "client_cert")
            };
            d.error(span, format!("{}: {e}", s.name(name)));
            None
        }
    }
}
