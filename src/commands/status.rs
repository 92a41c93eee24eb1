//! `chanmon status`: latest result, availability windows and latency per monitor and model.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, anyhow};

use super::{
    EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, format_of, load_config_for_reading, print,
};
use crate::cli::{OutputFormat, StatusArgs};
use crate::config::Config;
use crate::model::{MonitorId, Timestamp};
use crate::official::{OfficialStatus, StatusSource};
use crate::report;
use crate::store::{self, OpenMode, StatusRow};

/// Results shown in a single monitor's timeline.
const TIMELINE: usize = 60;

pub(super) fn status(config_path: &Path, args: StatusArgs, color: bool) -> Outcome {
    if args.format == OutputFormat::Csv {
        return Err(anyhow!(
            "`status` prints table or json; use `history --format csv` for rows"
        ))
        .or_exit(EXIT_CONFIG);
    }
    let config = load_config_for_reading(config_path)?;
    let store = store::open(&config.database, OpenMode::Existing).or_exit(EXIT_RUNTIME)?;
    let now = Timestamp::now();
    let ctx = || format!("reading {}", config.database);
    let mut rows = store
        .status(args.id.as_ref(), now, &args.windows)
        .with_context(ctx)
        .or_exit(EXIT_RUNTIME)?;
    let readings = store
        .official_statuses()
        .with_context(ctx)
        .or_exit(EXIT_RUNTIME)?;
    join_official(&mut rows, &config, &readings);
    if let Some(id) = &args.id
        && rows.is_empty()
    {
        return Err(anyhow!("monitor `{id}` is not in {}", config.database)).or_exit(EXIT_RUNTIME);
    }
    let timelines = match &args.id {
        Some(id) => {
            let mut t = Vec::with_capacity(rows.len());
            for r in &rows {
                t.push(
                    store::series_timeline(store.as_ref(), id, &r.model, &r.location, TIMELINE)
                        .with_context(ctx)
                        .or_exit(EXIT_RUNTIME)?,
                );
            }
            Some(t)
        }
        None => None,
    };
    let mut out = report::render_status(
        &rows,
        timelines.as_deref(),
        format_of(args.format),
        color,
        now,
    );
    if args.format == OutputFormat::Table {
        let open = store
            .incidents(&crate::store::IncidentQuery {
                open_only: true,
                monitor: args.id.clone(),
                ..Default::default()
            })
            .with_context(ctx)
            .or_exit(EXIT_RUNTIME)?;
        out.push_str(&incident_block(&open, now));
        out.push_str(&maintenance_block(&rows, &config, now));
        let since = now.saturating_sub(std::time::Duration::from_millis(
            crate::store::REPLICA_ALIVE_MS as u64,
        ));
        let replicas = store
            .replicas(since)
            .with_context(ctx)
            .or_exit(EXIT_RUNTIME)?;
        out.push_str(&replica_block(
            &replicas,
            &crate::runner::config_hash(config_path),
        ));
    }
    print(&out);
    if let Some(note) = insecure_note(&config, args.id.as_ref()) {
        // Beside the table; JSON keeps its shape, so the note goes to stderr there.
        if args.format == OutputFormat::Table {
            print(&format!("{note}\n"));
        } else {
            eprintln!("{note}");
        }
    }
    Ok(0)
}

/// The replicas alive on a shared database, and loudly those whose config differs from the
/// file `status` was given (empty without replicas).
fn replica_block(replicas: &[crate::store::ReplicaInfo], mine: &str) -> String {
    if replicas.is_empty() {
        return String::new();
    }
    let mut out = format!("\nReplicas alive: {}\n", replicas.len());
    for r in replicas {
        let location = if r.location.is_empty() {
            "-"
        } else {
            &r.location
        };
        let note = if r.config_hash == mine {
            String::new()
        } else {
            "  DIFFERENT CONFIG: every replica must run the same config".to_owned()
        };
        out.push_str(&format!(
            "  {}  location {location}  config {}  v{}{note}\n",
            r.name, r.config_hash, r.version
        ));
    }
    out
}

/// `tls_insecure` is an opt-in that must stay visible: which monitors (of those shown) run
/// without certificate checks.
fn insecure_note(config: &Config, only: Option<&MonitorId>) -> Option<String> {
    let ids: Vec<&str> = config
        .monitors
        .iter()
        .filter(|m| m.network.tls.insecure && only.is_none_or(|id| *id == m.id))
        .map(|m| m.id.as_str())
        .collect();
    (!ids.is_empty()).then(|| {
        format!(
            "warning: tls_insecure = true: certificates are NOT checked for {}",
            ids.join(", ")
        )
    })
}

/// One line per monitor inside a maintenance window now: `MAINTENANCE <monitor>: alerts
/// muted` (results are still recorded).
fn maintenance_block(rows: &[StatusRow], config: &Config, now: Timestamp) -> String {
    if config.alerts.maintenance.is_empty() {
        return String::new();
    }
    let groups: HashMap<&MonitorId, Option<&str>> = config
        .monitors
        .iter()
        .map(|m| (&m.id, m.group.as_deref()))
        .collect();
    let mut out = String::new();
    let mut last: Option<&MonitorId> = None;
    for r in rows {
        if last == Some(&r.monitor) {
            continue;
        }
        last = Some(&r.monitor);
        let group = groups.get(&r.monitor).copied().flatten();
        if config
            .alerts
            .maintenance_at(&r.monitor, group, now)
            .is_some()
        {
            out.push_str(&format!(
                "MAINTENANCE {}: in a maintenance window, alerts muted\n",
                r.monitor
            ));
        }
    }
    out
}

/// One line per model with an open incident, under the table: `INCIDENT <monitor>/<model>:
/// error (timeout) since <time>, for <how long>` (`chanmon incidents` has the details).
fn incident_block(open: &[crate::store::IncidentRow], now: Timestamp) -> String {
    let mut out = String::new();
    for i in open {
        out.push_str(&format!(
            "INCIDENT {}/{}: {} ({}) since {}, for {}{}\n",
            i.monitor,
            i.model,
            i.status,
            i.kind,
            i.since.to_rfc3339(),
            crate::alert::event::fmt_span(now.millis() - i.since.millis()),
            if i.muted { " (muted: maintenance)" } else { "" }
        ));
    }
    out
}

/// Each row of a monitor whose config shows a status page gets that page's latest reading
/// (readings are kept per URL; a page not read yet shows as `unknown`).
fn join_official(
    rows: &mut [StatusRow],
    config: &Config,
    readings: &HashMap<String, OfficialStatus>,
) {
    // One lookup table, not a search of every monitor per row: a fleet can be 100,000 strong.
    let sources: HashMap<&MonitorId, &StatusSource> = config
        .monitors
        .iter()
        .filter_map(|m| Some((&m.id, m.official_status.as_ref()?)))
        .collect();
    for row in rows {
        let Some(source) = sources.get(&row.monitor) else {
            continue;
        };
        let url = source.url.as_str();
        row.official = Some(readings.get(url).cloned().unwrap_or_else(|| {
            OfficialStatus::unknown(url, None, "not read yet: `chanmon run` reads it".into())
        }));
    }
}
