//! The keys that `[defaults]` and `[[monitor]]` have in common, read the same way from both,
//! and merged with the monitor's own values winning (headers and body key by key).

use std::sync::LazyLock;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::diag::{Diags, Sp, Span};
use super::fields::{Section, a_type, integer_value};
use super::official::OfficialKeys;
use super::validate::{
    api_list, check_header_name, check_header_value, check_label, parse_auth, provider_list,
};
use super::verdict::VerdictKeys;
use crate::provider::{self, Auth, Provider};

/// Every key of a `[[monitor]]`, in the order messages list them, and whether `[defaults]`
/// may set it too: the one list both tables are checked against.
const KEYS: &[(&str, bool)] = &[
    ("id", false),
    ("name", false),
    ("provider", true),
    ("api", true),
    ("endpoint", false),
    ("query", false),
    ("auth", true),
    ("api_key", false),
    ("api_key_env", false),
    ("model", false),
    ("extra_models", false),
    ("interval", true),
    ("timeout", true),
    ("degraded_after", true),
    ("group", true),
    ("enabled", true),
    ("headers", true),
    ("body", true),
    ("challenge", true),
    ("stream", true),
    ("network", false),
    ("on_model_mismatch", true),
    ("model_aliases", true),
    ("price", true),
    ("model_prices", true),
    ("degraded_below_tps", true),
    ("official_status", true),
    ("official_status_interval", true),
    ("locations", true),
    ("alerts", false),
];

/// Keys `[[monitor]]` accepts.
pub(crate) static MONITOR_KEYS: LazyLock<Vec<&str>> =
    LazyLock::new(|| KEYS.iter().map(|(k, _)| *k).collect());

/// Keys `[defaults]` accepts.
pub(crate) static DEFAULT_KEYS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    KEYS.iter()
        .filter(|(_, default)| *default)
        .map(|(k, _)| *k)
        .collect()
});

pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(10);
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// One extra request header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// Lower case.
    pub name: String,
    /// Where the name was written (errors about the name point here).
    pub key_span: Span,
    pub value: Sp<String>,
}

/// One top-level key of `body`, already converted to JSON.
#[derive(Debug, Clone)]
pub(crate) struct BodyKey {
    pub key: Sp<String>,
    pub value: serde_json::Value,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Shared {
    pub provider: Option<Sp<Provider>>,
    /// `provider` was written (even if invalid, which is reported where it was written).
    pub provider_written: bool,
    /// An `api` name some provider offers (which one offers it is checked per monitor).
    pub api: Option<Sp<&'static str>>,
    /// How the key is sent (`auth`); unset: the provider's way.
    pub auth: Option<Sp<Auth>>,
    pub interval: Option<Sp<Duration>>,
    pub timeout: Option<Sp<Duration>>,
    pub degraded_after: Option<Sp<Duration>>,
    pub group: Option<Sp<String>>,
    pub enabled: Option<bool>,
    pub headers: Vec<Header>,
    pub body: Vec<BodyKey>,
    pub challenge: Option<bool>,
    pub stream: Option<bool>,
    pub verdict: VerdictKeys,
    pub official: OfficialKeys,
    /// `locations`: where the monitor is probed from (checked: non-empty, valid, distinct).
    pub locations: Option<Sp<Vec<String>>>,
}

impl Shared {
    pub(super) fn read(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Self {
        let provider = s
            .string(d, "provider")
            .and_then(|p| match Provider::from_name(&p.v) {
                Some(found) => Some(Sp::new(found, p.span)),
                None => {
                    d.error(
                        &p.span,
                        format!(
                            "unknown provider \"{}\" in {}; allowed: {}",
                            p.v,
                            s.ctx,
                            provider_list()
                        ),
                    );
                    None
                }
            });
        let api = s.string(d, "api").and_then(|a| {
            match provider::api_names().into_iter().find(|n| *n == a.v) {
                Some(name) => Some(Sp::new(name, a.span)),
                None => {
                    d.error(
                        &a.span,
                        format!(
                            "unknown api mode \"{}\" in {}; allowed: {}",
                            a.v,
                            s.ctx,
                            api_list()
                        ),
                    );
                    None
                }
            }
        });
        let group = s
            .string(d, "group")
            .filter(|g| match check_label(&g.v, "group") {
                Ok(()) => true,
                Err(e) => {
                    d.error(&g.span, format!("{}: {e}", s.name("group")));
                    false
                }
            });
        let auth = s.string(d, "auth").and_then(|a| match parse_auth(&a.v) {
            Ok(style) => Some(Sp::new(style, a.span)),
            Err(e) => {
                d.error(&a.span, format!("{}: {e}", s.name("auth")));
                None
            }
        });
        Shared {
            provider,
            provider_written: s.raw("provider").is_some(),
            api,
            auth,
            interval: s.duration(
                d,
                "interval",
                MIN_INTERVAL..=MAX_INTERVAL,
                "from 10s to 24h",
                "5m",
            ),
            timeout: s.duration(d, "timeout", Duration::from_secs(1).., "at least 1s", "30s"),
            degraded_after: s.duration(
                d,
                "degraded_after",
                Duration::from_millis(1)..,
                "more than 0s",
                "10s",
            ),
            group,
            enabled: s.boolean(d, "enabled").map(|b| b.v),
            headers: read_headers(s, d),
            body: read_body(s, d),
            challenge: s.boolean(d, "challenge").map(|b| b.v),
            stream: s.boolean(d, "stream").map(|b| b.v),
            verdict: VerdictKeys::read(s, d),
            official: OfficialKeys::read(s, d),
            locations: read_locations(s, d),
        }
    }

    /// `self` (a monitor) over `defaults`.
    pub(super) fn over(self, defaults: &Shared) -> Shared {
        let mut headers = defaults.headers.clone();
        for h in self.headers {
            match headers.iter_mut().find(|x| x.name == h.name) {
                Some(slot) => *slot = h,
                None => headers.push(h),
            }
        }
        let mut body = defaults.body.clone();
        for b in self.body {
            match body.iter_mut().find(|x| x.key.v == b.key.v) {
                Some(slot) => *slot = b,
                None => body.push(b),
            }
        }
        Shared {
            provider: self.provider.or_else(|| defaults.provider.clone()),
            provider_written: self.provider_written || defaults.provider_written,
            api: self.api.or_else(|| defaults.api.clone()),
            auth: self.auth.or_else(|| defaults.auth.clone()),
            interval: self.interval.or_else(|| defaults.interval.clone()),
            timeout: self.timeout.or_else(|| defaults.timeout.clone()),
            degraded_after: self
                .degraded_after
                .or_else(|| defaults.degraded_after.clone()),
            group: self.group.or_else(|| defaults.group.clone()),
            enabled: self.enabled.or(defaults.enabled),
            headers,
            body,
            challenge: self.challenge.or(defaults.challenge),
            stream: self.stream.or(defaults.stream),
            verdict: self.verdict.over(&defaults.verdict),
            official: self.official.over(&defaults.official),
            locations: self.locations.or_else(|| defaults.locations.clone()),
        }
    }
}

/// `locations = ["eu-west", "us-east"]`: at least one name, each valid, none twice.
fn read_locations(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<Sp<Vec<String>>> {
    let list = s.string_list(d, "locations")?;
    let written = match s.raw("locations").map(|(_, v)| v.get_ref()) {
        Some(DeValue::Array(items)) => items.len(),
        _ => 0,
    };
    if list.v.len() < written {
        // A non-string item, already reported where it was written.
        return None;
    }
    if list.v.is_empty() {
        d.error(
            &list.span,
            format!(
                "{} must name at least one location (leave it out to probe from every daemon)",
                s.name("locations")
            ),
        );
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(list.v.len());
    let mut ok = true;
    for item in &list.v {
        if let Err(e) = crate::model::check_location(&item.v) {
            d.error(&item.span, format!("{}: {e}", s.name("locations")));
            ok = false;
        } else if out.contains(&item.v) {
            d.error(
                &item.span,
                format!("{}: `{}` is listed twice", s.name("locations"), item.v),
            );
            ok = false;
        } else {
            out.push(item.v.clone());
        }
    }
    ok.then(|| Sp::new(out, list.span))
}

fn read_headers(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Vec<Header> {
    let Some(t) = s.table(d, "headers", format!("the headers of {}", s.ctx)) else {
        return Vec::new();
    };
    let mut out: Vec<Header> = Vec::new();
    for (key, value) in t.table.iter() {
        let name = match check_header_name(key.get_ref()) {
            Ok(n) => n,
            Err(e) => {
                d.error(&key.span(), format!("{}: {e}", s.name("headers")));
                continue;
            }
        };
        let DeValue::String(v) = value.get_ref() else {
            d.error(
                &value.span(),
                format!(
                    "header `{name}` in {} must be a string, not {}",
                    s.ctx,
                    a_type(value.get_ref())
                ),
            );
            continue;
        };
        if let Err(e) = check_header_value(v) {
            d.error(&value.span(), format!("header `{name}` in {}: {e}", s.ctx));
            continue;
        }
        // TOML keys are case-sensitive, header names are not.
        if let Some(first) = out.iter().find(|h| h.name == name) {
            let line = d.line_of(first.key_span.start);
            d.error(
                &key.span(),
                format!(
                    "header `{name}` is set twice in {} (also at line {line}); header names ignore case",
                    s.ctx
                ),
            );
            continue;
        }
        out.push(Header {
            name,
            key_span: key.span(),
            value: Sp::new(v.to_string(), value.span()),
        });
    }
    out
}

fn read_body(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Vec<BodyKey> {
    let Some(t) = s.table(d, "body", format!("the body of {}", s.ctx)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in t.table.iter() {
        if let Some(json) = to_json(value, d, &s.name("body")) {
            out.push(BodyKey {
                key: Sp::new(key.get_ref().to_string(), key.span()),
                value: json,
            });
        }
    }
    out
}

/// TOML to JSON for `body`. JSON has no NaN or infinity; date-times become strings.
pub(crate) fn to_json(
    v: &Spanned<DeValue<'_>>,
    d: &mut Diags<'_>,
    what: &str,
) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match v.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(t) => Value::String(t.to_string()),
        DeValue::Integer(i) => match integer_value(i) {
            Some(n) => Value::from(n),
            None => {
                d.error(
                    &v.span(),
                    format!("{what}: integer {i} does not fit in 64 bits"),
                );
                return None;
            }
        },
        DeValue::Float(f) => {
            let text: String = f.as_str().chars().filter(|&c| c != '_').collect();
            match text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => Value::Number(n),
                None => {
                    d.error(
                        &v.span(),
                        format!("{what}: {f} cannot be sent as JSON (no NaN or infinity)"),
                    );
                    return None;
                }
            }
        }
        DeValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                out.push(to_json(item, d, what)?);
            }
            Value::Array(out)
        }
        DeValue::Table(t) => {
            let mut out = serde_json::Map::new();
            for (k, item) in t.iter() {
                out.insert(k.get_ref().to_string(), to_json(item, d, what)?);
            }
            Value::Object(out)
        }
    })
}
