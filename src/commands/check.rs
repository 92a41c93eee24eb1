//! `chanmon check`: probe now, print, record. Exit codes follow Nagios: 0 ok, 1 degraded
//! (warning), 2 failed/error (critical), 3 unknown id or config error (unknown).

use std::path::Path;

use anyhow::{Context, anyhow};
use futures_util::StreamExt;

use super::{OrExit, Outcome, format_of, load_config, print};
use crate::cli::CheckArgs;
use crate::config::Config;
use crate::keys;
use crate::model::{CheckResult, Status};
use crate::report;
use crate::runner::{Prober, WhenBusy};
use crate::store::{self, OpenMode};

const EXIT_UNKNOWN: i32 = 3;

pub(super) async fn check(config_path: &Path, args: CheckArgs, color: bool) -> Outcome {
    let config = load_config(config_path, EXIT_UNKNOWN)?;
    check_ids(&config, &args)?;
    let key = keys::master_key(&config, true)
        .or_exit(EXIT_UNKNOWN)?
        .context("no master key")
        .or_exit(EXIT_UNKNOWN)?;
    let mut db = store::open(&config.database, OpenMode::Create).or_exit(EXIT_UNKNOWN)?;
    db.set_alert_plan(std::sync::Arc::new(config.alerts.plan(&config.monitors)));
    let monitors = keys::sync(db.as_mut(), &config.monitors, &key)
        .context("syncing the config into the database")
        .or_exit(EXIT_UNKNOWN)?;
    // Named monitors are probed wherever asked; `--all` takes those this location probes,
    // as a daemon here would.
    let location = args
        .location
        .clone()
        .unwrap_or_else(|| config.runner.location.clone());
    let selected = monitors
        .into_iter()
        .filter(|m| {
            if args.all {
                m.config.enabled && m.config.probed_from(&location)
            } else {
                args.ids.contains(&m.config.id)
            }
        })
        .collect();
    let prober = Prober::new(
        store::probe_locks(&config.database),
        config.runner.model_concurrency,
    );
    let targets = prober.prepare(selected);
    let mut results: Vec<(usize, Result<_, _>)> =
        futures_util::stream::iter(targets.into_iter().enumerate())
            .map(|(i, t)| {
                let prober = &prober;
                async move { (i, prober.probe(t, WhenBusy::Wait).await) }
            })
            .buffer_unordered(config.runner.workers.max(1))
            .collect()
            .await;
    results.sort_by_key(|(i, _)| *i);
    let mut all: Vec<CheckResult> = Vec::new();
    for (_, r) in results {
        let r = r.context("probe lock").or_exit(EXIT_UNKNOWN)?;
        all.extend(r.unwrap_or_default());
    }
    for r in &mut all {
        r.location.clone_from(&location);
    }
    if !args.no_record {
        db.insert_results(&all)
            .context("recording the results")
            .or_exit(EXIT_UNKNOWN)?;
    }
    print(&report::render_results(&all, format_of(args.format), color));
    if !args.no_record {
        drop(db);
        deliver_alerts(&config).await;
    }
    let worst = all
        .iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(Status::Operational);
    Ok(worst.exit_code())
}

/// Delivers what the outbox owes when no daemon runs (the daemon's drainer does otherwise):
/// holding the daemon lock meanwhile, so the two never send the same row at once. Rows a group
/// window holds back are waited for (at most the longest `group_window`); each due row is
/// tried once; what fails stays queued for the next run. Problems are logged, never
/// fatal: the results are recorded already.
async fn deliver_alerts(config: &Config) {
    let Ok(_lock) = store::daemon_lock(&config.database) else {
        return;
    };
    match crate::alert::DrainCtx::open(config) {
        Ok(Some(ctx)) => {
            match crate::alert::drain_pending(&ctx, config.alerts.longest_group_window()).await {
                Ok(r) if r.retried + r.dead > 0 => tracing::warn!(
                    delivered = r.delivered,
                    retry_later = r.retried,
                    dead = r.dead,
                    "some alerts were not delivered"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "delivering alerts failed"),
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "delivering alerts failed"),
    }
}

/// Every id asked for is in the config.
fn check_ids(config: &Config, args: &CheckArgs) -> Result<(), super::Failure> {
    let known: Vec<&str> = config.monitors.iter().map(|m| m.id.as_str()).collect();
    for id in &args.ids {
        if !known.contains(&id.as_str()) {
            return Err(anyhow!(
                "unknown monitor id `{id}` in {}; known ids: {}",
                config.path.display(),
                if known.is_empty() {
                    "(none)".to_owned()
                } else {
                    known.join(", ")
                }
            ))
            .or_exit(EXIT_UNKNOWN);
        }
    }
    Ok(())
}
