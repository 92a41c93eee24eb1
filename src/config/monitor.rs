//! One `[[monitor]]` table: its own keys over `[defaults]`, checked against each other
//! (timeouts against the interval, headers and body against the provider's protocol) and
//! resolved into a [`MonitorConfig`].

use std::time::Duration;

use url::Url;

use super::MonitorConfig;
use super::diag::{Diags, Sp};
use super::fields::{Section, fmt_duration};
use super::interp::{Env, is_var_name};
use super::network::NetworkOverride;
use super::official::{DEFAULT_OFFICIAL_INTERVAL, OfficialKey};
use super::shared::{DEFAULT_KEYS, MONITOR_KEYS, Shared};
use super::validate::{
    MAX_EXTRA_MODELS, check_label, check_model, check_query_name, check_query_value,
    parse_endpoint, provider_choice, providers_with_api,
};
use crate::model::MonitorId;
use crate::net::NetworkPolicy;
use crate::official::StatusSource;
use crate::provider::{Api, Auth, BaseUrl, Provider};
use crate::secret::Secret;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_DEGRADED_AFTER: Duration = Duration::from_secs(10);

fn monitor_hint(key: &str) -> Option<String> {
    match key {
        "url" | "base_url" | "host" | "origin" => Some(
            "use `endpoint` (the base URL your SDK uses, e.g. https://openrouter.ai/api/v1)".into(),
        ),
        "auth_header" | "auth_style" => Some("use `auth` (e.g. auth = \"api-key\")".into()),
        "params" | "query_params" => Some("use a `query` table".into()),
        "models" => {
            Some("use `model` for the primary model and `extra_models` for the rest".into())
        }
        "key" | "apikey" | "token" => Some("use `api_key` or `api_key_env`".into()),
        _ => None,
    }
}

pub(crate) fn defaults_hint(key: &str) -> Option<String> {
    (MONITOR_KEYS.contains(&key) && !DEFAULT_KEYS.contains(&key))
        .then(|| format!("`{key}` cannot be a default: set it in each [[monitor]]"))
}

/// Reads one monitor. `None` when a required key is missing or unusable (already reported).
pub(crate) fn read(
    s: &Section<'_, '_>,
    defaults: &Shared,
    global: &NetworkPolicy,
    env: Env<'_>,
    d: &mut Diags<'_>,
) -> Option<MonitorConfig> {
    let line = d.line_of(s.span.start);
    let id = read_id(s, d);
    // From here on, messages name the monitor.
    let ctx = match &id {
        Some(id) => format!("monitor `{id}`"),
        None => format!("the [[monitor]] at line {line}"),
    };
    let s = Section::new(s.table, s.span.clone(), ctx);
    s.check_keys(d, &MONITOR_KEYS, &monitor_hint);

    let own = Shared::read(&s, d);
    let api_set_here = own.api.clone();
    let eff = own.over(defaults);
    let chosen = read_provider(&s, &eff, api_set_here, d);

    let network = match s.table(d, "network", format!("[monitor.network] of {}", s.ctx)) {
        Some(t) => NetworkOverride::read(&t, d).apply(global),
        None => global.clone(),
    };
    let endpoint = chosen.and_then(|(p, _)| read_endpoint(&s, p, &network, d));
    let query = read_query(&s, d);
    let (api_key, api_key_env) = read_key(&s, env, d);
    let models = read_models(&s, d);

    let (interval, timeout, degraded_after) = resolve_timings(&s, &eff, d);
    let name = read_name(&s, d);
    let auth = chosen.map(|(p, api)| {
        let auth = eff
            .auth
            .as_ref()
            .map_or_else(|| p.default_auth(api), |a| a.v.clone());
        check_auth_header(&s, api, &auth, &eff, d);
        check_provider_headers(&s, p, &auth, &eff, d);
        check_body_keys(&s, api, &eff, d);
        auth
    });

    let id = id?;
    let (provider, api) = chosen?;
    let (model, extra_models) = models?;
    check_aliases(&s, &eff, &model, &extra_models, d);
    let official_status = resolve_official(&eff, provider, &network, d);
    let official_status_interval = eff.official.interval.unwrap_or(DEFAULT_OFFICIAL_INTERVAL);
    let verdict = eff.verdict;
    Some(MonitorConfig {
        name: name.unwrap_or_else(|| id.to_string()),
        id,
        provider,
        api,
        endpoint: endpoint?,
        query,
        auth: auth?,
        api_key,
        api_key_env,
        model,
        extra_models,
        interval,
        timeout,
        degraded_after,
        group: eff.group.map(|g| g.v),
        enabled: eff.enabled.unwrap_or(true),
        headers: eff
            .headers
            .into_iter()
            .map(|h| (h.name, Secret::new(h.value.v)))
            .collect(),
        body: eff.body.into_iter().map(|b| (b.key.v, b.value)).collect(),
        challenge: eff.challenge.unwrap_or(true),
        stream: eff.stream.unwrap_or(true),
        network,
        line,
        on_model_mismatch: verdict.on_model_mismatch.unwrap_or_default(),
        model_aliases: by_model(verdict.model_aliases),
        price: verdict.price,
        model_prices: by_model(verdict.model_prices),
        degraded_below_tps: verdict.degraded_below_tps,
        official_status,
        official_status_interval,
        locations: eff.locations.map(|l| l.v).unwrap_or_default(),
    })
}

/// `official_status` as a source: `auto` asks the registry; a plain-http URL needs
/// `allow_http` like an endpoint.
fn resolve_official(
    eff: &Shared,
    provider: Provider,
    network: &NetworkPolicy,
    d: &mut Diags<'_>,
) -> Option<StatusSource> {
    match eff.official.status.as_ref()? {
        OfficialKey::Off => None,
        OfficialKey::Auto => provider.status_page().map(|(url, format)| StatusSource {
            url: Url::parse(url).expect("the registry's status pages are URLs (registry tests)"),
            format,
        }),
        OfficialKey::Source(src) => {
            if src.v.url.scheme() == "http" && !network.allow_http {
                d.error(
                    &src.span,
                    "`official_status`: plain http is not allowed; use https, or set allow_http = true in [network] or [monitor.network]",
                );
                return None;
            }
            Some(src.v.clone())
        }
    }
}

/// Aliases and model prices must name one of this monitor's models (from `[defaults]`, any
/// model is fine: the default serves many monitors).
fn check_aliases(
    s: &Section<'_, '_>,
    eff: &Shared,
    model: &str,
    extra: &[String],
    d: &mut Diags<'_>,
) {
    let aliased = eff.verdict.model_aliases.iter().map(|(m, _)| m);
    let priced = eff.verdict.model_prices.iter().map(|(m, _)| m);
    for (key, named) in [
        ("model_aliases", aliased.collect::<Vec<_>>()),
        ("model_prices", priced.collect()),
    ] {
        let Some(own) = s.raw(key) else {
            continue;
        };
        let own_span = own.1.span();
        for m in named {
            let written_here = m.span.start >= own_span.start && m.span.end <= own_span.end;
            if written_here && m.v != model && !extra.contains(&m.v) {
                d.error(
                    &m.span,
                    format!(
                        "`{key}` in {} names `{}`, which is not one of its models ({})",
                        s.ctx,
                        m.v,
                        std::iter::once(model)
                            .chain(extra.iter().map(String::as_str))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }
}

/// The monitor's `id`: required, a slug.
fn read_id(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<MonitorId> {
    match s.string(d, "id") {
        Some(raw) => match MonitorId::parse(&raw.v) {
            Ok(id) => Some(id),
            Err(e) => {
                d.error(&raw.span, format!("monitor id: {e}"));
                None
            }
        },
        None => {
            if s.raw("id").is_none() {
                d.error(
                    &s.span,
                    "this [[monitor]] has no `id`; add a stable slug such as id = \"openai-main\"",
                );
            }
            None
        }
    }
}

/// The optional display `name`.
fn read_name(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<String> {
    let n = s.string(d, "name")?;
    match check_label(&n.v, "name") {
        Ok(()) => Some(n.v),
        Err(e) => {
            d.error(&n.span, format!("{}: {e}", s.name("name")));
            None
        }
    }
}

/// The provider (required, here or in `[defaults]`) and the protocol `api` picks from it.
fn read_provider(
    s: &Section<'_, '_>,
    eff: &Shared,
    api_set_here: Option<Sp<&'static str>>,
    d: &mut Diags<'_>,
) -> Option<(Provider, Api)> {
    let Some(provider) = eff.provider.as_ref().map(|p| p.v) else {
        // A provider written but unknown was reported where it was written.
        if !eff.provider_written {
            d.error(
                &s.span,
                format!(
                    "{} has no `provider`; set provider = {} (here or in [defaults])",
                    s.ctx,
                    provider_choice()
                ),
            );
        }
        return None;
    };
    let api = resolve_api(s, provider, api_set_here, eff.api.clone(), d);
    Some((provider, api))
}

/// `api` picks one of the provider's protocols. Set on the monitor itself, a name the
/// provider does not offer is an error; inherited from `[defaults]` it simply does not apply.
fn resolve_api(
    s: &Section<'_, '_>,
    provider: Provider,
    own: Option<Sp<&'static str>>,
    eff: Option<Sp<&'static str>>,
    d: &mut Diags<'_>,
) -> Api {
    if let Some(a) = own.filter(|a| provider.api(a.v).is_none()) {
        d.error(
            &a.span,
            format!(
                "api = \"{}\" in {} works only with provider = {}, not \"{provider}\"; remove `api`",
                a.v,
                s.ctx,
                providers_with_api(a.v)
            ),
        );
    }
    eff.and_then(|a| provider.api(a.v))
        .unwrap_or_else(|| provider.default_api())
}

/// `endpoint`, or the provider's default base URL; plain http needs `allow_http` either way
/// (which names the setting, and for a local server's default also the private-network one).
fn read_endpoint(
    s: &Section<'_, '_>,
    provider: Provider,
    network: &NetworkPolicy,
    d: &mut Diags<'_>,
) -> Option<Url> {
    let Some(raw) = s.string(d, "endpoint") else {
        if s.raw("endpoint").is_some() {
            return None;
        }
        return default_endpoint(s, provider, network, d);
    };
    match parse_endpoint(&raw.v) {
        Ok(url) if url.scheme() == "http" && !network.allow_http => {
            d.error(
                &raw.span,
                format!(
                    "{}: plain http is not allowed; use https, or set allow_http = true in [network] (all monitors) or in [monitor.network] (this one)",
                    s.name("endpoint")
                ),
            );
            None
        }
        Ok(url) => Some(url),
        Err(e) => {
            d.error(&raw.span, format!("{}: {e}", s.name("endpoint")));
            None
        }
    }
}

/// A monitor without `endpoint` talks to the provider's base URL, when it has one.
fn default_endpoint(
    s: &Section<'_, '_>,
    provider: Provider,
    network: &NetworkPolicy,
    d: &mut Diags<'_>,
) -> Option<Url> {
    match provider.base_url() {
        BaseUrl::Known(base) => {
            let url = parse_endpoint(base)
                .expect("the registry's base URLs are valid endpoints (checked by its tests)");
            if url.scheme() == "http" && !network.allow_http {
                d.error(
                    &s.span,
                    format!(
                        "{} uses provider \"{provider}\", whose default endpoint {base} is a server on this machine over plain http: allow it with allow_http = true and allow_cidrs = [\"127.0.0.0/8\"] (or allow_private = true) in [network] or [monitor.network], or set `endpoint`",
                        s.ctx
                    ),
                );
                return None;
            }
            Some(url)
        }
        BaseUrl::Required(shape) => {
            d.error(
                &s.span,
                format!(
                    "{} uses provider \"{provider}\", which has no default endpoint; set endpoint = \"{shape}\" (the base URL your SDK uses, with your own names)",
                    s.ctx
                ),
            );
            None
        }
    }
}

/// The `query` table: parameters added to every request URL (`api-version`). Values must be
/// strings; names that look like credentials are refused (a query string is not secret).
fn read_query(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Vec<(String, String)> {
    let Some(t) = s.table(d, "query", format!("the query of {}", s.ctx)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in t.table.iter() {
        let name: &str = key.get_ref();
        if let Err(e) = check_query_name(name) {
            d.error(&key.span(), format!("{}: {e}", s.name("query")));
            continue;
        }
        let toml::de::DeValue::String(v) = value.get_ref() else {
            d.error(
                &value.span(),
                format!(
                    "query parameter `{name}` in {} must be a string, not {}",
                    s.ctx,
                    super::fields::a_type(value.get_ref())
                ),
            );
            continue;
        };
        match check_query_value(v) {
            Ok(()) => out.push((name.to_owned(), v.to_string())),
            Err(e) => d.error(
                &value.span(),
                format!("query parameter `{name}` in {}: {e}", s.ctx),
            ),
        }
    }
    out
}

/// `api_key` or `api_key_env`, exactly one. An unset `api_key_env` is only a warning: the key
/// sealed in the database from an earlier run is used.
fn read_key(
    s: &Section<'_, '_>,
    env: Env<'_>,
    d: &mut Diags<'_>,
) -> (Option<Secret>, Option<String>) {
    let key = s.string(d, "api_key");
    let var = s.string(d, "api_key_env");
    match (key, var) {
        (Some(_), Some(v)) => {
            d.error(
                &v.span,
                format!(
                    "{} sets both `api_key` and `api_key_env`; keep exactly one",
                    s.ctx
                ),
            );
            (None, None)
        }
        (Some(k), None) => (key_from_config(s, &k, d), None),
        (None, Some(v)) => key_from_env(s, v, env, d),
        (None, None) => {
            if s.raw("api_key").is_none() && s.raw("api_key_env").is_none() {
                d.error(
                    &s.span,
                    format!(
                        "{} has no key; set api_key_env = \"VAR\" (the variable holding the key) or api_key = \"${{VAR}}\"",
                        s.ctx
                    ),
                );
            }
            (None, None)
        }
    }
}

/// `api_key = "…"`: trimmed (a stray newline from `$(cat keyfile)` is not part of it), never
/// empty or with control characters.
fn key_from_config(s: &Section<'_, '_>, k: &Sp<String>, d: &mut Diags<'_>) -> Option<Secret> {
    let key = k.v.trim();
    if key.is_empty() {
        d.error(
            &k.span,
            format!(
                "{} is empty; write the key, use ${{VAR}}, or use api_key_env = \"VAR\"",
                s.name("api_key")
            ),
        );
        None
    } else if key.chars().any(char::is_control) {
        d.error(
            &k.span,
            format!("{} contains control characters", s.name("api_key")),
        );
        None
    } else {
        Some(Secret::new(key))
    }
}

/// `api_key_env = "VAR"`: the variable's value; unset is only a warning (the stored key is used).
fn key_from_env(
    s: &Section<'_, '_>,
    v: Sp<String>,
    env: Env<'_>,
    d: &mut Diags<'_>,
) -> (Option<Secret>, Option<String>) {
    if !is_var_name(&v.v) {
        d.error(
            &v.span,
            format!(
                "{}: \"{}\" is not an environment variable name (ASCII letters, digits and `_`, e.g. \"OPENAI_API_KEY\")",
                s.name("api_key_env"),
                v.v
            ),
        );
        return (None, None);
    }
    match env(&v.v)
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
    {
        Some(k) if k.chars().any(char::is_control) => {
            d.error(
                &v.span,
                format!("the value of ${} contains control characters", v.v),
            );
            (None, Some(v.v))
        }
        Some(k) => (Some(Secret::new(k)), Some(v.v)),
        None => {
            d.warn(
                &v.span,
                format!(
                    "api_key_env {} is unset; the key stored in the database will be used ({})",
                    v.v, s.ctx
                ),
            );
            (None, Some(v.v))
        }
    }
}

/// The primary model and the extra ones: valid names, at most 16 extras, no repeats.
fn read_models(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<(String, Vec<String>)> {
    let model = s.string(d, "model");
    if model.is_none() && s.raw("model").is_none() {
        d.error(
            &s.span,
            format!(
                "{} has no `model`; set the model to check, e.g. model = \"gpt-4o-mini\"",
                s.ctx
            ),
        );
    }
    let extras = s.string_list(d, "extra_models");
    if let Some(list) = &extras
        && list.v.len() > MAX_EXTRA_MODELS
    {
        d.error(
            &list.span,
            format!(
                "{} lists {} models; at most {MAX_EXTRA_MODELS} are allowed (each one is a paid request per run)",
                s.name("extra_models"),
                list.v.len()
            ),
        );
    }
    let all: Vec<&Sp<String>> = model
        .iter()
        .chain(extras.iter().flat_map(|l| l.v.iter()))
        .collect();
    let mut ok = true;
    for (i, m) in all.iter().enumerate() {
        if let Err(e) = check_model(&m.v) {
            d.error(&m.span, format!("{}: {e}", s.ctx));
            ok = false;
        } else if let Some(first) = all[..i].iter().find(|p| p.v == m.v) {
            let line = d.line_of(first.span.start);
            d.error(
                &m.span,
                format!(
                    "model \"{}\" appears twice in {} (first at line {line}); each model is checked once per run",
                    m.v, s.ctx
                ),
            );
            ok = false;
        }
    }
    let model = model?;
    let too_many = extras
        .as_ref()
        .is_some_and(|l| l.v.len() > MAX_EXTRA_MODELS);
    (ok && !too_many).then(|| {
        (
            model.v,
            extras
                .map(|l| l.v.into_iter().map(|m| m.v).collect())
                .unwrap_or_default(),
        )
    })
}

/// A per-model table as the config keeps it (model names without their positions).
fn by_model<T, C: FromIterator<(String, T)>>(entries: Vec<(Sp<String>, T)>) -> C {
    entries.into_iter().map(|(m, v)| (m.v, v)).collect()
}

/// Interval, timeout and degraded_after, each checked against the others.
fn resolve_timings(
    s: &Section<'_, '_>,
    eff: &Shared,
    d: &mut Diags<'_>,
) -> (Duration, Duration, Duration) {
    let interval = eff.interval.as_ref().map_or(DEFAULT_INTERVAL, |i| i.v);
    let timeout = resolve_timeout(s, interval, eff.timeout.as_ref(), d);
    let degraded_after = resolve_degraded(
        s,
        timeout,
        eff.timeout.is_some(),
        eff.degraded_after.as_ref(),
        d,
    );
    (interval, timeout, degraded_after)
}

fn resolve_timeout(
    s: &Section<'_, '_>,
    interval: Duration,
    set: Option<&Sp<Duration>>,
    d: &mut Diags<'_>,
) -> Duration {
    match set {
        Some(t) => {
            if t.v >= interval {
                d.error(
                    &t.span,
                    format!(
                        "timeout {} of {} must be shorter than its interval {}",
                        fmt_duration(t.v),
                        s.ctx,
                        fmt_duration(interval)
                    ),
                );
            }
            t.v
        }
        None if DEFAULT_TIMEOUT < interval => DEFAULT_TIMEOUT,
        // A short interval with no timeout given: keep the checks from overlapping rather
        // than reject a value the user never wrote.
        None => Duration::from_secs((interval.as_secs() * 3 / 4).max(1)),
    }
}

fn resolve_degraded(
    s: &Section<'_, '_>,
    timeout: Duration,
    timeout_set: bool,
    set: Option<&Sp<Duration>>,
    d: &mut Diags<'_>,
) -> Duration {
    match set {
        Some(g) => {
            if g.v > timeout {
                let whose = if timeout_set {
                    ""
                } else {
                    " (the default; set `timeout`)"
                };
                d.error(
                    &g.span,
                    format!(
                        "degraded_after {} of {} must not exceed its timeout {}{whose}",
                        fmt_duration(g.v),
                        s.ctx,
                        fmt_duration(timeout)
                    ),
                );
            }
            g.v
        }
        None if DEFAULT_DEGRADED_AFTER <= timeout => DEFAULT_DEGRADED_AFTER,
        None => timeout / 2,
    }
}

/// The header that carries the key is chanmon's to set, from `api_key`.
fn check_provider_headers(
    s: &Section<'_, '_>,
    provider: Provider,
    auth: &Auth,
    eff: &Shared,
    d: &mut Diags<'_>,
) {
    let key = auth.header_name();
    for h in eff.headers.iter().filter(|h| h.name == key) {
        d.error(
            &h.key_span,
            format!(
                "header `{}` carries the {provider} API key, which chanmon sets itself ({}); use api_key or api_key_env instead",
                h.name, s.ctx
            ),
        );
    }
}

/// `auth` cannot name a header the protocol always sends with its own value.
fn check_auth_header(s: &Section<'_, '_>, api: Api, auth: &Auth, eff: &Shared, d: &mut Diags<'_>) {
    let Some(written) = &eff.auth else { return };
    let protocol = api.protocol();
    if protocol
        .fixed_headers()
        .iter()
        .any(|(name, _)| *name == auth.header_name())
    {
        d.error(
            &written.span,
            format!(
                "`auth` of {}: the {} protocol sends `{}` itself; choose another header for the key",
                s.ctx,
                protocol.name(),
                auth.header_name()
            ),
        );
    }
}

/// The body keys the probe sets for the protocol cannot come from the user's `body`.
fn check_body_keys(s: &Section<'_, '_>, api: Api, eff: &Shared, d: &mut Diags<'_>) {
    let protocol = api.protocol();
    let reserved = protocol.reserved_body_keys();
    for b in eff
        .body
        .iter()
        .filter(|b| reserved.contains(&b.key.v.as_str()))
    {
        d.error(
            &b.key.span,
            format!(
                "body key `{}` of {} is set by the probe for the {} protocol and cannot be overridden (reserved: {}); tuning keys such as max_tokens or temperature are fine",
                b.key.v,
                s.ctx,
                protocol.name(),
                reserved.join(", ")
            ),
        );
    }
}
