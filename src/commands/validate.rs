//! `chanmon validate`: check the config, print a summary or every error. Never writes.

use std::fmt::Write as _;
use std::path::Path;

use super::{EXIT_CONFIG, Outcome, print};
use crate::config::{self, Config};
use crate::report::table::Table;
use crate::store::{self, Database, OpenMode};

pub(super) fn validate(config_path: &Path) -> Outcome {
    let loaded = match config::load(config_path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "{}: {} error(s); nothing was started and the database was not touched",
                config_path.display(),
                e.errors.len()
            );
            return Ok(EXIT_CONFIG);
        }
    };
    let mut warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    let config = &loaded.config;
    for m in &config.monitors {
        if let Some(w) = crate::net::endpoint_warning(&m.endpoint, &m.network) {
            warnings.push(format!(
                "{}:{}: monitor `{}`: {w}",
                config.path.display(),
                m.line,
                m.id
            ));
        }
        if m.network.tls.insecure {
            warnings.push(format!(
                "{}:{}: monitor `{}`: tls_insecure = true: its server certificates are NOT checked (name, issuer, expiry); anyone on the path can read the key it sends",
                config.path.display(),
                m.line,
                m.id
            ));
        }
    }
    let key_problems = stored_key_problems(config);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    print(&summary(config, &key_problems));
    Ok(0)
}

/// Monitors the last sync marked `key_unavailable`, when a database exists (read only).
fn stored_key_problems(config: &Config) -> Vec<(String, String)> {
    if let Database::Sqlite(path) = &config.database
        && !path.exists()
    {
        return Vec::new();
    }
    match store::open(&config.database, OpenMode::Existing).and_then(|s| s.monitors()) {
        Ok(ms) => ms
            .into_iter()
            .filter_map(|m| m.key_unavailable.map(|why| (m.id.to_string(), why)))
            .collect(),
        // A server database chanmon has not written yet.
        Err(crate::store::StoreError::Missing { .. }) => Vec::new(),
        Err(e) => {
            eprintln!("warning: cannot read {}: {e}", config.database);
            Vec::new()
        }
    }
}

fn summary(config: &Config, key_problems: &[(String, String)]) -> String {
    let mut out = String::new();
    let models: usize = config.monitors.iter().map(|m| m.models().count()).sum();
    let enabled = config.monitors.iter().filter(|m| m.enabled).count();
    let _ = writeln!(
        out,
        "{}: OK — {} monitor(s) ({enabled} enabled), {models} model(s); database {}",
        config.path.display(),
        config.monitors.len(),
        config.database
    );
    let mut table = Table::new(&["ID", "PROVIDER", "ENDPOINT", "MODELS", "INTERVAL", "KEY"]);
    for m in &config.monitors {
        // The api is named only when it is not the provider's default.
        let provider = if m.api == m.provider.default_api() {
            m.provider.to_string()
        } else {
            format!("{}/{}", m.provider, m.api.as_str())
        };
        let key = if let Some((_, why)) = key_problems.iter().find(|(id, _)| id == m.id.as_str()) {
            format!("key_unavailable: {why}")
        } else if m.api_key.is_some() {
            "key: config".to_owned()
        } else {
            "key: stored".to_owned()
        };
        let cells = [
            m.id.to_string(),
            provider,
            endpoint_cell(m),
            m.models().collect::<Vec<_>>().join(","),
            format!(
                "every {}{}",
                humantime::format_duration(m.interval),
                if m.enabled { "" } else { " (disabled)" }
            ),
            key,
        ];
        table.row(cells.into_iter().map(|c| (c, None)).collect());
    }
    // No cell carries a status, so there is nothing to colour.
    out.push_str(&table.render(false));
    let insecure: Vec<&str> = config
        .monitors
        .iter()
        .filter(|m| m.network.tls.insecure)
        .map(|m| m.id.as_str())
        .collect();
    if !insecure.is_empty() {
        let _ = writeln!(
            out,
            "tls_insecure: certificates are NOT checked for {}",
            insecure.join(", ")
        );
    }
    out.push_str(&alerts_line(config));
    out
}

/// The endpoint as the summary shows it: the base URL and the `query` parameters.
fn endpoint_cell(m: &crate::config::MonitorConfig) -> String {
    let mut shown = m.endpoint.as_str().trim_end_matches('/').to_owned();
    for (i, (k, v)) in m.query.iter().enumerate() {
        shown.push(if i == 0 { '?' } else { '&' });
        shown.push_str(&format!("{k}={v}"));
    }
    shown
}

/// The sinks by id and type (never their URLs or tokens) and the maintenance windows.
fn alerts_line(config: &Config) -> String {
    let a = &config.alerts;
    if a.sinks.is_empty() && a.maintenance.is_empty() {
        return String::new();
    }
    let sinks: Vec<String> = a
        .sinks
        .iter()
        .map(|s| format!("{} ({})", s.id, s.kind.as_str()))
        .collect();
    format!(
        "alerts: {} sink(s){}{}; {} maintenance window(s)\n",
        sinks.len(),
        if sinks.is_empty() { "" } else { ": " },
        sinks.join(", "),
        a.maintenance.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the summary byte for byte: a responses monitor with extra models, one whose key is
    /// expected in the store (and a non-ASCII model: widths count characters), one whose key
    /// the last sync could not find, and a disabled one.
    #[test]
    fn summary_is_pinned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("monitors.toml");
        std::fs::write(
            &path,
            r#"
[[monitor]]
id = "alpha"
provider = "openai"
api = "responses"
endpoint = "https://api.openai.com/"
api_key = "k"
model = "gpt-4.1-mini"
extra_models = ["gpt-4.1-nano", "o4-mini"]

[[monitor]]
id = "relay"
provider = "openai"
endpoint = "https://relay.example"
api_key_env = "CHANMON_SUMMARY_TEST_UNSET_KEY"
model = "modèle-é"

[[monitor]]
id = "b"
provider = "anthropic"
endpoint = "https://api.anthropic.com"
api_key = "k"
model = "claude-sonnet-4-5"
interval = "90s"

[[monitor]]
id = "gemini-off"
provider = "gemini"
api_key = "k"
model = "gemini-2.5-flash"
enabled = false
interval = "1h"
"#,
        )
        .expect("write config");
        let loaded = config::load(&path).expect("valid config");
        let problems = vec![("b".to_owned(), "clé introuvable".to_owned())];
        let out = summary(&loaded.config, &problems);
        let (first, table) = out.split_once('\n').expect("a header line");
        assert_eq!(
            first,
            format!(
                "{}: OK — 4 monitor(s) (3 enabled), 6 model(s); database {}",
                path.display(),
                loaded.config.database
            )
        );
        assert_eq!(
            table,
            r#"ID          PROVIDER          ENDPOINT                                   MODELS                             INTERVAL             KEY
alpha       openai/responses  https://api.openai.com                     gpt-4.1-mini,gpt-4.1-nano,o4-mini  every 5m             key: config
relay       openai            https://relay.example                      modèle-é                           every 5m             key: stored
b           anthropic         https://api.anthropic.com                  claude-sonnet-4-5                  every 1m 30s         key_unavailable: clé introuvable
gemini-off  gemini            https://generativelanguage.googleapis.com  gemini-2.5-flash                   every 1h (disabled)  key: config
"#
        );
    }
}
