//! The whole document: top-level keys, `[runner]`, `[retention]`, `[network]`, `[defaults]`
//! and the `[[monitor]]` array, read into a [`Config`] with every problem reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::diag::Diags;
use super::fields::{Section, a_type, fmt_duration};
use super::http::{HttpConfig, read_http};
use super::interp::{Env, interpolate_table};
use super::monitor::{self, defaults_hint};
use super::network::NetworkOverride;
use super::shared::{DEFAULT_KEYS, MONITOR_KEYS, Shared};
use super::{Config, ConfigError, Loaded, MonitorConfig, RetentionConfig, RunnerConfig};
use crate::net::NetworkPolicy;
use crate::store::Database;

const TOP_KEYS: &[&str] = &[
    "database",
    "master_key_file",
    "enabled",
    "defaults",
    "runner",
    "retention",
    "network",
    "monitor",
    "alert",
    "alerts",
    "maintenance",
    "heartbeat",
    "http",
];

const RUNNER_KEYS: &[&str] = &[
    "workers",
    "queue",
    "tick",
    "shutdown_grace",
    "jitter",
    "model_concurrency",
    "location",
];

const RETENTION_KEYS: &[&str] = &["history", "rollups"];

const HOUR: Duration = Duration::from_secs(3600);

pub(crate) fn build(text: &str, path: &Path, env: Env<'_>) -> Result<Loaded, ConfigError> {
    let mut d = Diags::new(path, text);
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        report_syntax(text, &syntax, &mut d);
        return Err(finish_err(d));
    }
    let mut root = doc.into_inner();
    interpolate_table(&mut root, env, &mut d);

    let top = Section::new(&root, 0..0, "the top level");
    top.check_keys(&mut d, TOP_KEYS, &|key| match key {
        "monitors" => Some("write each monitor as a [[monitor]] table".into()),
        k if MONITOR_KEYS.contains(&k) => Some(format!(
            "`{k}` belongs inside a [[monitor]] table (or [defaults])"
        )),
        _ => None,
    });

    let (database, master_key_file) = read_paths(&top, path, env, &mut d);
    let enabled = top.boolean(&mut d, "enabled").is_none_or(|b| b.v);
    let runner = top
        .table(&mut d, "runner", "[runner]".into())
        .map_or_else(RunnerConfig::default, |s| read_runner(&s, &mut d));
    let retention = top
        .table(&mut d, "retention", "[retention]".into())
        .map_or_else(RetentionConfig::default, |s| read_retention(&s, &mut d));
    let network = top
        .table(&mut d, "network", "[network]".into())
        .map_or_else(NetworkPolicy::default, |s| {
            NetworkOverride::read(&s, &mut d).apply(&NetworkPolicy::default())
        });
    let http = top
        .table(&mut d, "http", "[http]".into())
        .map_or_else(HttpConfig::default, |s| read_http(&s, &mut d));
    let defaults = match top.table(&mut d, "defaults", "[defaults]".into()) {
        Some(s) => {
            s.check_keys(&mut d, &DEFAULT_KEYS, &defaults_hint);
            Shared::read(&s, &mut d)
        }
        None => Shared::default(),
    };

    let monitors = read_monitors(&root, &defaults, &network, env, &mut d);
    let mut alerts = super::alerts::read(&root, &mut d);
    let ids: std::collections::HashSet<&str> = monitors.iter().map(|m| m.id.as_str()).collect();
    alerts.maintenance = super::maintenance::read(&root, &ids, &mut d);

    if d.has_errors() {
        return Err(finish_err(d));
    }
    let (_, warnings) = d.finish();
    Ok(Loaded {
        config: Config {
            path: path.to_path_buf(),
            database,
            master_key_file,
            enabled,
            runner,
            retention,
            network,
            monitors,
            alerts,
            http,
        },
        warnings,
    })
}

/// Every `[[monitor]]`; a monitor with any problem (a duplicate id included) is left out, its
/// problems reported.
fn read_monitors(
    root: &DeTable<'_>,
    defaults: &Shared,
    network: &NetworkPolicy,
    env: Env<'_>,
    d: &mut Diags<'_>,
) -> Vec<MonitorConfig> {
    let mut monitors = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let tables = monitor_tables(root, d);
    if tables.is_empty() && !d.has_errors() {
        d.file_warn("no [[monitor]] tables: nothing will be checked");
    }
    for (span, table) in tables {
        let s = Section::new(table, span.clone(), "[[monitor]]");
        // Checked on the raw id so a duplicate is found even when either monitor has other
        // problems.
        let mut duplicate = false;
        if let Some((_, v)) = s.raw("id")
            && let Some(id) = v.get_ref().as_str()
        {
            match first_line.get(id) {
                Some(line) => {
                    duplicate = true;
                    d.error(
                        &v.span(),
                        format!(
                            "duplicate monitor id `{id}`: already used by the monitor at line {line}; ids must be unique"
                        ),
                    );
                }
                None => {
                    first_line.insert(id.to_owned(), d.line_of(span.start));
                }
            }
        }
        if let Some(m) = monitor::read(&s, defaults, network, env, d)
            && !duplicate
        {
            monitors.push(m);
        }
    }
    monitors
}

fn finish_err(d: Diags<'_>) -> ConfigError {
    let (errors, _) = d.finish();
    ConfigError { errors }
}

/// Reports the first syntax error in the file. The parser recovers and reports more, but the
/// later ones are mostly echoes of the first.
fn report_syntax(text: &str, errors: &[toml::de::Error], d: &mut Diags<'_>) {
    let first = errors
        .iter()
        .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start));
    let Some(e) = first else { return };
    let message = match e.span() {
        Some(span) if e.message() == "duplicate key" => {
            let key = text.get(span).unwrap_or("").trim();
            format!(
                "TOML: `{key}` is defined twice (a key or table may appear only once; use [[monitor]] for each monitor)"
            )
        }
        _ => format!("TOML syntax error: {}", e.message()),
    };
    match e.span() {
        Some(span) => d.error(&span, message),
        None => d.file_error(message),
    }
}

/// `database` and `master_key_file`, relative paths taken from the config's directory.
/// A `postgres://` / `postgresql://` URL selects PostgreSQL (checked here, never echoed: it may
/// hold a password); any other URL is refused, so it is not taken for a file name.
/// `CHANMON_DATABASE_URL`, when set, overrides `database`.
fn read_paths(
    top: &Section<'_, '_>,
    path: &Path,
    env: Env<'_>,
    d: &mut Diags<'_>,
) -> (Database, PathBuf) {
    let base = path.parent().unwrap_or(Path::new(""));
    let mut url = None;
    let mut read = |key: &str, url: &mut Option<crate::store::PgUrl>| {
        top.string(d, key).and_then(|p| {
            if p.v.trim().is_empty() {
                d.error(
                    &p.span,
                    format!(
                        "{} is empty; leave it out to use the default",
                        top.name(key)
                    ),
                );
                None
            } else if key == "database" && crate::store::PgUrl::is_postgres(&p.v) {
                match crate::store::PgUrl::parse(&p.v) {
                    Ok(u) => *url = Some(u),
                    Err(e) => d.error(&p.span, format!("{}: {e}", top.name(key))),
                }
                None
            } else if key == "database" && is_url(&p.v) {
                d.error(
                    &p.span,
                    format!(
                        "{}: \"{}…\" is a URL chanmon does not know; give a file path such as \"chanmon.db\" (SQLite) or a postgres:// URL",
                        top.name(key),
                        p.v.split(':').next().unwrap_or_default()
                    ),
                );
                None
            } else {
                Some(base.join(&p.v))
            }
        })
    };
    let file = read("database", &mut url);
    let key_file = read("master_key_file", &mut url);
    if let Some(v) = env("CHANMON_DATABASE_URL").filter(|v| !v.trim().is_empty()) {
        match crate::store::PgUrl::parse(&v) {
            Ok(u) => url = Some(u),
            Err(e) => d.file_error(format!("CHANMON_DATABASE_URL: {e}")),
        }
    }
    let database = file.unwrap_or_else(|| base.join("chanmon.db"));
    // Beside the SQLite file by default; beside the config for a server database.
    let key_dir = match &url {
        Some(_) => base,
        None => database.parent().unwrap_or(Path::new("")),
    };
    let key_file = key_file.unwrap_or_else(|| key_dir.join("chanmon.key"));
    match url {
        Some(u) => (Database::Postgres(u), key_file),
        None => (Database::Sqlite(database), key_file),
    }
}

/// `scheme://…`: a database URL, not a path (a Windows-style `C:\\…` has no `//`).
fn is_url(s: &str) -> bool {
    s.trim().split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
    })
}

fn read_runner(s: &Section<'_, '_>, d: &mut Diags<'_>) -> RunnerConfig {
    s.check_keys(d, RUNNER_KEYS, &|_| None);
    let def = RunnerConfig::default();
    let count = |n: Option<super::diag::Sp<i64>>, default: usize| {
        n.and_then(|n| usize::try_from(n.v).ok()).unwrap_or(default)
    };
    RunnerConfig {
        workers: count(s.integer(d, "workers", 1..=1024), def.workers),
        queue: count(s.integer(d, "queue", 1..=100_000), def.queue),
        tick: s
            .duration(
                d,
                "tick",
                Duration::from_millis(100)..=Duration::from_secs(60),
                "from 100ms to 60s",
                "1s",
            )
            .map_or(def.tick, |t| t.v),
        shutdown_grace: s
            .duration(
                d,
                "shutdown_grace",
                ..=Duration::from_secs(600),
                "at most 10m",
                "30s",
            )
            .map_or(def.shutdown_grace, |t| t.v),
        jitter: s
            .duration(d, "jitter", ..HOUR, "less than 1h", "10s")
            .map_or(def.jitter, |t| t.v),
        model_concurrency: count(
            s.integer(d, "model_concurrency", 1..=16),
            def.model_concurrency,
        ),
        location: s
            .string(d, "location")
            .and_then(|l| match crate::model::check_location(&l.v) {
                Ok(()) => Some(l.v),
                Err(e) => {
                    d.error(&l.span, format!("{}: {e}", s.name("location")));
                    None
                }
            })
            .unwrap_or_default(),
    }
}

fn read_retention(s: &Section<'_, '_>, d: &mut Diags<'_>) -> RetentionConfig {
    s.check_keys(d, RETENTION_KEYS, &|_| None);
    let def = RetentionConfig::default();
    let history = s.duration(d, "history", HOUR.., "at least 1h", "30d");
    let rollups = s.duration(d, "rollups", HOUR.., "at least 1h", "400d");
    let h = history.as_ref().map_or(def.history, |x| x.v);
    let r = rollups.as_ref().map_or(def.rollups, |x| x.v);
    if r < h {
        // Point at whichever of the two the user wrote (rollups when both).
        let (span, note) = match (&rollups, &history) {
            (Some(x), _) => (x.span.clone(), ""),
            (None, Some(x)) => (x.span.clone(), " (the default; raise `rollups` too)"),
            (None, None) => (s.span.clone(), ""),
        };
        d.error(
            &span,
            format!(
                "[retention] rollups {}{note} must be at least as long as history {}: rollups summarise history that has been pruned",
                fmt_duration(r),
                fmt_duration(h)
            ),
        );
    }
    RetentionConfig {
        history: h,
        rollups: r,
    }
}

/// The `[[monitor]]` tables with their header spans; anything else under `monitor` is reported.
fn monitor_tables<'t, 'i>(
    root: &'t DeTable<'i>,
    d: &mut Diags<'_>,
) -> Vec<(super::diag::Span, &'t DeTable<'i>)> {
    let Some((key, value)) = root.get_key_value("monitor") else {
        return Vec::new();
    };
    let items = match value.get_ref() {
        DeValue::Array(items) => items,
        DeValue::Table(_) => {
            d.error(
                &key.span(),
                "`monitor` must be an array of tables: write [[monitor]] (double brackets) for each monitor",
            );
            return Vec::new();
        }
        other => {
            d.error(
                &value.span(),
                format!(
                    "`monitor` must be an array of tables ([[monitor]]), not {}",
                    a_type(other)
                ),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter() {
        match item.get_ref() {
            DeValue::Table(t) => out.push((item.span(), t)),
            other => d.error(
                &item.span(),
                format!("each monitor must be a table, not {}", a_type(other)),
            ),
        }
    }
    out
}
