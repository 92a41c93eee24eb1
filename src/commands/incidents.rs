//! `chanmon incidents`: incidents newest first, with their durations and deliveries.

use std::path::Path;

use anyhow::{Context, anyhow};
use serde_json::json;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config_for_reading, print};
use crate::alert::event::fmt_span;
use crate::cli::{IncidentsArgs, OutputFormat};
use crate::model::Timestamp;
use crate::report::table::Table;
use crate::store::{self, IncidentQuery, IncidentRow, OpenMode};

pub(super) fn incidents(config_path: &Path, args: IncidentsArgs, color: bool) -> Outcome {
    if args.format == OutputFormat::Csv {
        return Err(anyhow!("`incidents` prints table or json")).or_exit(EXIT_CONFIG);
    }
    let config = load_config_for_reading(config_path)?;
    let store = store::open(&config.database, OpenMode::Existing).or_exit(EXIT_RUNTIME)?;
    let rows = store
        .incidents(&IncidentQuery {
            open_only: args.open,
            since: args.since,
            monitor: args.id.clone(),
            limit: args.limit as usize,
        })
        .with_context(|| format!("reading {}", config.database))
        .or_exit(EXIT_RUNTIME)?;
    let now = Timestamp::now();
    match args.format {
        OutputFormat::Json => print(&render_json(&rows, now)),
        _ => print(&render_table(&rows, now, color)),
    }
    Ok(0)
}

/// How long an incident lasted, or has lasted so far.
fn lasted(i: &IncidentRow, now: Timestamp) -> i64 {
    i.resolved_at.unwrap_or(now).millis() - i.since.millis()
}

/// `sink:event:state` per delivery, e.g. `ops:opened:delivered`.
fn deliveries(i: &IncidentRow) -> String {
    if i.muted {
        return "muted (maintenance)".into();
    }
    if i.deliveries.is_empty() {
        return "-".into();
    }
    i.deliveries
        .iter()
        .map(|d| format!("{}:{}:{}", d.sink, d.event, d.state.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn render_table(rows: &[IncidentRow], now: Timestamp, color: bool) -> String {
    if rows.is_empty() {
        return "no incidents\n".into();
    }
    let mut t = Table::new(&[
        "MONITOR", "MODEL", "STATE", "SINCE", "RESOLVED", "LASTED", "STATUS", "KIND", "SENT",
    ]);
    for i in rows {
        let state = if i.resolved_at.is_some() {
            "resolved"
        } else {
            "OPEN"
        };
        t.row(
            [
                i.monitor.to_string(),
                i.model.clone(),
                state.into(),
                i.since.to_rfc3339(),
                i.resolved_at.map_or("-".into(), Timestamp::to_rfc3339),
                fmt_span(lasted(i, now)),
                i.status.clone(),
                i.kind.clone(),
                deliveries(i),
            ]
            .into_iter()
            .map(|c| (c, None))
            .collect(),
        );
    }
    t.render(color)
}

fn render_json(rows: &[IncidentRow], now: Timestamp) -> String {
    let v: Vec<_> = rows
        .iter()
        .map(|i| {
            json!({
                "id": i.uid,
                "monitor": i.monitor.as_str(),
                "model": i.model,
                "open": i.resolved_at.is_none(),
                "since": i.since.to_rfc3339(),
                "opened_at": i.opened_at.to_rfc3339(),
                "resolved_at": i.resolved_at.map(Timestamp::to_rfc3339),
                "duration_ms": lasted(i, now),
                "status": i.status,
                "kind": i.kind,
                "message": i.message,
                "muted": i.muted,
                "deliveries": i.deliveries.iter().map(|d| json!({
                    "sink": d.sink,
                    "event": d.event,
                    "state": d.state.as_str(),
                    "attempts": d.attempts,
                    "done_at": d.done_at.map(Timestamp::to_rfc3339),
                    "last_error": d.last_error,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&v).unwrap_or_else(|_| "[]".into()) + "\n"
}
