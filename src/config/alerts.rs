//! `[[alert]]` (sinks), `[alerts]` (rule defaults and delivery settings) and
//! `[monitor.alerts]` (a monitor's rule overrides), read into an [`AlertsConfig`].
//!
//! A sink's URL and tokens are secrets (a Slack URL is itself the credential): messages name
//! the key and the host at most, never the value.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use url::Url;

use super::diag::{Diags, Sp};
use super::fields::{Section, a_type};
use super::network::NetworkOverride;
use crate::alert::{AlertsConfig, RetryPolicy, Rule, SinkConfig, SinkKind};
use crate::model::{Kind, MonitorId, Status};
use crate::net::NetworkPolicy;
use crate::secret::Secret;

const SINK_KEYS: &[&str] = &[
    "id",
    "type",
    "url",
    "secret",
    "token",
    "routing_key",
    "chat_id",
    "command",
    "template",
    "timeout",
    "network",
    "smtp_host",
    "smtp_port",
    "tls",
    "username",
    "password",
    "from",
    "to",
    "subject",
];

pub(super) const RULE_KEYS: &[&str] = &[
    "sinks",
    "failure_threshold",
    "success_threshold",
    "min_failing_locations",
    "failing",
    "ignore_kinds",
    "send_on_resolved",
    "remind_every",
    "group_window",
];

const GLOBAL_KEYS: &[&str] = &[
    "status_page_url",
    "retry_base",
    "retry_cap",
    "max_attempts",
    "watch_every",
];

const HEARTBEAT_KEYS: &[&str] = &["url", "every", "network"];

/// Reads the whole alerting part of the document.
pub(super) fn read(root: &DeTable<'_>, d: &mut Diags<'_>) -> AlertsConfig {
    let sinks = read_sinks(root, d);
    let ids: HashSet<String> = sinks.iter().map(|s| s.id.clone()).collect();
    let mut cfg = AlertsConfig {
        sinks,
        ..AlertsConfig::default()
    };
    let top = Section::new(root, 0..0, "the top level");
    if let Some(s) = top.table(d, "alerts", "[alerts]".into()) {
        let allowed: Vec<&str> = RULE_KEYS.iter().chain(GLOBAL_KEYS).copied().collect();
        s.check_keys(d, &allowed, &|_| None);
        cfg.defaults = read_rule(&s, &Rule::default(), &ids, d);
        cfg.retry = read_retry(&s, d);
        cfg.status_page = read_status_page(&s, d);
        if let Some(t) = s.duration(
            d,
            "watch_every",
            Duration::from_secs(1)..=Duration::from_secs(3600),
            "from 1s to 1h",
            "1m",
        ) {
            cfg.watch_every = t.v;
        }
    }
    if let Some(s) = top.table(d, "heartbeat", "[heartbeat]".into()) {
        cfg.heartbeat = read_heartbeat(&s, d);
    }
    cfg.overrides = read_overrides(root, &cfg.defaults, &ids, d);
    cfg
}

/// Every `[[alert]]`; one with a problem is reported and left out.
fn read_sinks(root: &DeTable<'_>, d: &mut Diags<'_>) -> Vec<SinkConfig> {
    let Some((key, value)) = root.get_key_value("alert") else {
        return Vec::new();
    };
    let DeValue::Array(items) = value.get_ref() else {
        d.error(
            &key.span(),
            "`alert` must be an array of tables: write [[alert]] (double brackets) for each sink",
        );
        return Vec::new();
    };
    let mut out: Vec<SinkConfig> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items.iter() {
        let DeValue::Table(t) = item.get_ref() else {
            d.error(
                &item.span(),
                format!(
                    "each [[alert]] must be a table, not {}",
                    a_type(item.get_ref())
                ),
            );
            continue;
        };
        let s = Section::new(t, item.span(), "[[alert]]");
        let Some(sink) = read_sink(&s, d) else {
            continue;
        };
        if let Some((_, v)) = s.raw("id") {
            if let Some(line) = seen.get(&sink.id) {
                d.error(
                    &v.span(),
                    format!(
                        "duplicate alert sink id `{}`: already used at line {line}",
                        sink.id
                    ),
                );
                continue;
            }
            seen.insert(sink.id.clone(), d.line_of(item.span().start));
        }
        out.push(sink);
    }
    out
}

fn read_sink(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<SinkConfig> {
    s.check_keys(d, SINK_KEYS, &|_| None);
    let id = read_sink_id(s, d);
    let ctx = id
        .as_deref()
        .map_or("[[alert]]".to_owned(), |i| format!("alert sink `{i}`"));
    let s = Section::new(s.table, s.span.clone(), ctx);
    let kind = read_kind(&s, d);
    let network = match s.table(d, "network", format!("[alert.network] of {}", s.ctx)) {
        Some(n) => NetworkOverride::read(&n, d).apply(&NetworkPolicy::default()),
        None => NetworkPolicy::default(),
    };
    let kind = kind?;
    check_keys_for(&s, kind, d);
    let command = read_command(&s, kind, d);
    let email = if kind == SinkKind::Email {
        Some(super::email::read(&s, &network, d)?)
    } else {
        None
    };
    let url = if matches!(kind, SinkKind::Command | SinkKind::Email) {
        Some(Secret::new(""))
    } else {
        read_url(&s, kind, &network, d)
    };
    let (token, chat_id) = read_token_and_chat(&s, kind, d);
    let timeout = s
        .duration(
            d,
            "timeout",
            Duration::from_secs(1)..=Duration::from_secs(120),
            "from 1s to 2m",
            "10s",
        )
        .map_or(Duration::from_secs(10), |t| t.v);
    Some(SinkConfig {
        id: id?,
        kind,
        url: url?,
        secret: secret(&s, "secret", d),
        token,
        chat_id,
        command: command.unwrap_or_default(),
        template: read_template(&s, kind, d),
        timeout,
        network,
        email,
    })
}

/// `type`: required, one of the sink kinds.
fn read_kind(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<SinkKind> {
    let Some(t) = s.string(d, "type") else {
        if s.raw("type").is_none() {
            d.error(
                &s.span,
                format!("{} has no `type`; choose one of: {}", s.ctx, kinds()),
            );
        }
        return None;
    };
    let k = SinkKind::parse(t.v.trim());
    if k.is_none() {
        d.error(
            &t.span,
            format!(
                "{}: unknown sink type \"{}\"; choose one of: {}",
                s.name("type"),
                t.v,
                kinds()
            ),
        );
    }
    k
}

/// The token (`routing_key` for PagerDuty) and Telegram's `chat_id`, each required where the
/// service needs it.
fn read_token_and_chat(
    s: &Section<'_, '_>,
    kind: SinkKind,
    d: &mut Diags<'_>,
) -> (Option<Secret>, Option<String>) {
    let token_key = if kind == SinkKind::Pagerduty {
        "routing_key"
    } else {
        "token"
    };
    let token = secret(s, token_key, d);
    let needs_token = matches!(kind, SinkKind::Telegram | SinkKind::Pagerduty);
    if needs_token && token.is_none() && s.raw(token_key).is_none() {
        d.error(
            &s.span,
            format!("{} (type {}) needs `{token_key}`", s.ctx, kind.as_str()),
        );
    }
    let chat_id = read_chat_id(s, d);
    if kind == SinkKind::Telegram && chat_id.is_none() && s.raw("chat_id").is_none() {
        d.error(
            &s.span,
            format!("{} (type telegram) needs `chat_id`", s.ctx),
        );
    }
    (token, chat_id)
}

/// `template`: compiled here so a broken one is a config error, not a silent fallback later.
fn read_template(s: &Section<'_, '_>, kind: SinkKind, d: &mut Diags<'_>) -> Option<String> {
    let t = s.string(d, "template")?;
    if kind == SinkKind::Webhook {
        d.error(
            &t.span,
            format!(
                "{}: a webhook sends the event as JSON and takes no template",
                s.name("template")
            ),
        );
        return None;
    }
    match crate::alert::template::check(&t.v) {
        Ok(()) => Some(t.v),
        Err(e) => {
            d.error(&t.span, format!("{}: {e}", s.name("template")));
            None
        }
    }
}

/// `command = ["/path/to/program", "arg", …]`: required for a command sink, run without a
/// shell; the program is an absolute path, so what runs does not depend on `PATH`.
fn read_command(s: &Section<'_, '_>, kind: SinkKind, d: &mut Diags<'_>) -> Option<Vec<String>> {
    if kind != SinkKind::Command {
        return None;
    }
    let Some(list) = s.string_list(d, "command") else {
        if s.raw("command").is_none() {
            d.error(&s.span, format!("{} (type command) needs `command`, e.g. [\"/usr/local/bin/page-me\", \"--urgent\"]", s.ctx));
        }
        return None;
    };
    let Some(program) = list.v.first() else {
        d.error(
            &list.span,
            format!("{} is empty; name the program to run", s.name("command")),
        );
        return None;
    };
    if !std::path::Path::new(&program.v).is_absolute() {
        d.error(
            &program.span,
            format!("{}: \"{}\" is not an absolute path; write the program's full path (no shell, no PATH lookup)", s.name("command"), program.v),
        );
        return None;
    }
    Some(list.v.into_iter().map(|a| a.v).collect())
}

fn kinds() -> String {
    SinkKind::ALL
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_sink_id(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<String> {
    let Some(id) = s.string(d, "id") else {
        if s.raw("id").is_none() {
            d.error(
                &s.span,
                "[[alert]] has no `id`; give each sink a short name such as \"ops-webhook\"",
            );
        }
        return None;
    };
    let ok = !id.v.is_empty()
        && id.v.len() <= 64
        && id
            .v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        d.error(
            &id.span,
            format!(
                "alert sink id \"{}\" must be 1 to 64 letters, digits, `-` or `_`",
                id.v
            ),
        );
        return None;
    }
    Some(id.v)
}

/// Keys that mean nothing for this type are mistakes worth naming.
fn check_keys_for(s: &Section<'_, '_>, kind: SinkKind, d: &mut Diags<'_>) {
    let used: &[&str] = match kind {
        SinkKind::Webhook => &["secret", "url", "network"],
        SinkKind::Slack | SinkKind::Discord => &["url", "network"],
        SinkKind::Telegram => &["token", "chat_id", "url", "network"],
        SinkKind::Ntfy => &["token", "url", "network"],
        SinkKind::Pagerduty => &["routing_key", "url", "network"],
        SinkKind::Command => &["command"],
        SinkKind::Email => &[
            "network",
            "smtp_host",
            "smtp_port",
            "tls",
            "username",
            "password",
            "from",
            "to",
            "subject",
        ],
    };
    let common = [
        "secret",
        "token",
        "routing_key",
        "chat_id",
        "command",
        "url",
        "network",
    ];
    for &key in common.iter().chain(super::email::EMAIL_KEYS) {
        if !used.contains(&key)
            && let Some((k, _)) = s.raw(key)
        {
            d.error(
                &k.span(),
                format!("{} is not used by a {} sink", s.name(key), kind.as_str()),
            );
        }
    }
}

/// The target URL: required unless the type has a default; https unless the sink's network
/// allows http; refused when its host is one the sink's network policy denies.
fn read_url(
    s: &Section<'_, '_>,
    kind: SinkKind,
    network: &NetworkPolicy,
    d: &mut Diags<'_>,
) -> Option<Secret> {
    let Some(u) = s.string(d, "url") else {
        if s.raw("url").is_some() {
            return None;
        }
        return match kind.default_url() {
            Some(def) => Some(Secret::new(def)),
            None => {
                d.error(
                    &s.span,
                    format!("{} (type {}) needs `url`", s.ctx, kind.as_str()),
                );
                None
            }
        };
    };
    let problem = match Url::parse(u.v.trim()) {
        Err(e) => Some(format!("is not a URL ({e})")),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            Some(format!("must be http or https, not {}", url.scheme()))
        }
        Ok(url) if url.scheme() == "http" && !network.allow_http => Some(
            "uses plain http; use https, or set allow_http = true in this sink's [alert.network]"
                .into(),
        ),
        Ok(url) => crate::net::url_check::check_url(&url, network).err().map(|b| {
            format!(
                "targets {} ({}); a private or local receiver needs an explicit allow: set allow_private = true or allow_cidrs in this sink's [alert.network]",
                url.host_str().unwrap_or("?"),
                b.0
            )
        }),
    };
    match problem {
        Some(p) => {
            d.error(&u.span, format!("{} {p}", s.name("url")));
            None
        }
        None => Some(Secret::new(u.v.trim())),
    }
}

/// `[heartbeat]`: a URL pinged (GET) every `every` while the daemon is healthy, under a
/// network policy of its own.
fn read_heartbeat(
    s: &Section<'_, '_>,
    d: &mut Diags<'_>,
) -> Option<crate::alert::watch::Heartbeat> {
    s.check_keys(d, HEARTBEAT_KEYS, &|_| None);
    let network = match s.table(d, "network", "[heartbeat.network]".into()) {
        Some(n) => NetworkOverride::read(&n, d).apply(&NetworkPolicy::default()),
        None => NetworkPolicy::default(),
    };
    let every = s
        .duration(
            d,
            "every",
            Duration::from_secs(1)..=Duration::from_secs(3600),
            "from 1s to 1h",
            "1m",
        )
        .map_or(Duration::from_secs(60), |t| t.v);
    let url = read_url(s, SinkKind::Webhook, &network, d)?;
    Some(crate::alert::watch::Heartbeat {
        url,
        every,
        network,
    })
}

pub(super) fn secret(s: &Section<'_, '_>, key: &str, d: &mut Diags<'_>) -> Option<Secret> {
    let v = s.string(d, key)?;
    if v.v.trim().is_empty() {
        d.error(&v.span, format!("{} is empty", s.name(key)));
        return None;
    }
    if v.v.chars().any(char::is_control) {
        d.error(
            &v.span,
            format!("{} contains control characters", s.name(key)),
        );
        return None;
    }
    Some(Secret::new(v.v.trim()))
}

/// A chat id: a number or an `@channel` name.
fn read_chat_id(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<String> {
    let (_, v) = s.raw("chat_id")?;
    match v.get_ref() {
        DeValue::Integer(i) => super::fields::integer_value(i).map(|n| n.to_string()),
        DeValue::String(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
        other => {
            d.error(
                &v.span(),
                format!(
                    "{} must be a number or an @channel name, not {}",
                    s.name("chat_id"),
                    a_type(other)
                ),
            );
            None
        }
    }
}

/// A rule: `base` with the keys this table sets.
pub(super) fn read_rule(
    s: &Section<'_, '_>,
    base: &Rule,
    sinks: &HashSet<String>,
    d: &mut Diags<'_>,
) -> Rule {
    let mut r = base.clone();
    if let Some(list) = s.string_list(d, "sinks") {
        r.sinks = list
            .v
            .into_iter()
            .filter(|id| {
                let known = sinks.contains(&id.v);
                if !known {
                    d.error(
                        &id.span,
                        format!("{}: no [[alert]] has id \"{}\"", s.name("sinks"), id.v),
                    );
                }
                known
            })
            .map(|id| id.v)
            .collect();
    }
    if let Some(n) = s.integer(d, "failure_threshold", 1..=1000) {
        r.failure_threshold = n.v as u32;
    }
    if let Some(n) = s.integer(d, "success_threshold", 1..=1000) {
        r.success_threshold = n.v as u32;
    }
    if let Some(n) = s.integer(d, "min_failing_locations", 1..=1000) {
        r.min_failing_locations = n.v as u32;
    }
    if let Some(list) = s.string_list(d, "failing") {
        r.failing = parse_list::<Status>(s, "failing", &list, d);
        if let Some(bad) = r.failing.iter().find(|x| **x == Status::Operational) {
            d.error(
                &list.span,
                format!("{}: `{bad}` cannot count as failing", s.name("failing")),
            );
        } else if r.failing.is_empty() {
            d.error(
                &list.span,
                format!(
                    "{} is empty: nothing would ever open an incident",
                    s.name("failing")
                ),
            );
        }
    }
    if let Some(list) = s.string_list(d, "ignore_kinds") {
        r.ignore = parse_list::<Kind>(s, "ignore_kinds", &list, d);
    }
    if let Some(b) = s.boolean(d, "send_on_resolved") {
        r.send_on_resolved = b.v;
    }
    if let Some(t) = s.duration(
        d,
        "remind_every",
        Duration::from_secs(1)..=Duration::from_secs(7 * 86_400),
        "from 1s to 7d",
        "1h",
    ) {
        r.remind_every = Some(t.v);
    }
    if let Some(t) = s.duration(
        d,
        "group_window",
        ..=Duration::from_secs(300),
        "at most 5m",
        "2s",
    ) {
        r.group_window = t.v;
    }
    r
}

fn parse_list<T: FromStr<Err = String>>(
    s: &Section<'_, '_>,
    key: &str,
    list: &Sp<Vec<Sp<String>>>,
    d: &mut Diags<'_>,
) -> Vec<T> {
    list.v
        .iter()
        .filter_map(|x| match x.v.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                d.error(&x.span, format!("{}: {e}", s.name(key)));
                None
            }
        })
        .collect()
}

fn read_retry(s: &Section<'_, '_>, d: &mut Diags<'_>) -> RetryPolicy {
    let def = RetryPolicy::default();
    let base = s
        .duration(
            d,
            "retry_base",
            Duration::from_millis(100)..=Duration::from_secs(3600),
            "from 100ms to 1h",
            "5s",
        )
        .map_or(def.base, |t| t.v);
    let cap = s.duration(
        d,
        "retry_cap",
        Duration::from_millis(100)..=Duration::from_secs(86_400),
        "from 100ms to 24h",
        "10m",
    );
    let cap_v = cap.as_ref().map_or(def.cap.max(base), |t| t.v);
    if let Some(c) = &cap
        && c.v < base
    {
        d.error(
            &c.span,
            format!("{} must be at least retry_base", s.name("retry_cap")),
        );
    }
    RetryPolicy {
        base,
        cap: cap_v,
        max_attempts: s
            .integer(d, "max_attempts", 1..=1000)
            .map_or(def.max_attempts, |n| n.v as u32),
    }
}

fn read_status_page(s: &Section<'_, '_>, d: &mut Diags<'_>) -> Option<String> {
    let u = s.string(d, "status_page_url")?;
    match Url::parse(u.v.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url.to_string()),
        _ => {
            d.error(
                &u.span,
                format!("{} must be an http(s) URL", s.name("status_page_url")),
            );
            None
        }
    }
}

/// `[monitor.alerts]` of each monitor that has one (monitors whose id is unreadable are
/// reported by the monitor reader already).
fn read_overrides(
    root: &DeTable<'_>,
    defaults: &Rule,
    sinks: &HashSet<String>,
    d: &mut Diags<'_>,
) -> HashMap<MonitorId, Rule> {
    let mut out = HashMap::new();
    let Some(DeValue::Array(items)) = root.get("monitor").map(|v| v.get_ref()) else {
        return out;
    };
    for item in items.iter() {
        let DeValue::Table(t) = item.get_ref() else {
            continue;
        };
        let m = Section::new(t, item.span(), "[[monitor]]");
        let Some((_, v)) = m.raw("alerts") else {
            continue;
        };
        let id = t
            .get("id")
            .and_then(|v| v.get_ref().as_str())
            .and_then(|s| MonitorId::parse(s).ok());
        let DeValue::Table(a) = v.get_ref() else {
            d.error(
                &v.span(),
                format!(
                    "`alerts` in a monitor must be a table ([monitor.alerts]), not {}",
                    a_type(v.get_ref())
                ),
            );
            continue;
        };
        let ctx = id.as_ref().map_or("[monitor.alerts]".to_owned(), |i| {
            format!("[monitor.alerts] of monitor `{i}`")
        });
        let s = Section::new(a, v.span(), ctx);
        s.check_keys(d, RULE_KEYS, &|k| {
            GLOBAL_KEYS
                .contains(&k)
                .then(|| format!("`{k}` can only be set in [alerts]"))
        });
        let rule = read_rule(&s, defaults, sinks, d);
        if let Some(id) = id {
            out.insert(id, rule);
        }
    }
    out
}
