//! `chanmon validate`: check the config, print a summary or every error. Never writes.

use std::fmt::Write as _;
use std::path::Path;

use super::{EXIT_CONFIG, Outcome, print};
use crate::config::{self, Config};
use crate::store::Store;

pub fn validate(config_path: &Path) -> Outcome {
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
    if !config.database.exists() {
        return Vec::new();
    }
    match Store::open_existing(&config.database).and_then(|s| s.monitors()) {
        Ok(ms) => ms
            .into_iter()
            .filter_map(|m| m.key_unavailable.map(|why| (m.id.to_string(), why)))
            .collect(),
        Err(e) => {
            eprintln!("warning: cannot read {}: {e}", config.database.display());
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
        config.database.display()
    );
    let rows: Vec<[String; 6]> = config
        .monitors
        .iter()
        .map(|m| {
            // The api is named only when it is not the provider's default.
            let provider = if m.api == m.provider.default_api() {
                m.provider.to_string()
            } else {
                format!("{}/{}", m.provider, m.api.as_str())
            };
            let key =
                if let Some((_, why)) = key_problems.iter().find(|(id, _)| id == m.id.as_str()) {
                    format!("key_unavailable: {why}")
                } else if m.api_key.is_some() {
                    "key: config".to_owned()
                } else {
                    "key: stored".to_owned()
                };
            [
                m.id.to_string(),
                provider,
                m.endpoint.as_str().trim_end_matches('/').to_owned(),
                m.models().collect::<Vec<_>>().join(","),
                format!(
                    "every {}{}",
                    humantime::format_duration(m.interval),
                    if m.enabled { "" } else { " (disabled)" }
                ),
                key,
            ]
        })
        .collect();
    let header = ["ID", "PROVIDER", "ENDPOINT", "MODELS", "INTERVAL", "KEY"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}
