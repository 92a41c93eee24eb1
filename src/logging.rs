//! Logging to stderr: a `RUST_LOG`-style filter and text or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset or
/// invalid (an invalid filter is reported, not fatal).
pub fn init(format: LogFormat, default_filter: &str) {
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new(default_filter),
                Some(format!("ignoring RUST_LOG={v:?}: {e}")),
            ),
        },
        _ => (EnvFilter::new(default_filter), None),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false);
    let res = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if res.is_ok()
        && let Some(msg) = bad
    {
        tracing::warn!("{msg}");
    }
}
