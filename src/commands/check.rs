//! `chanmon check`: probe now, print, record. Exit codes follow Nagios: 0 ok, 1 degraded
//! (warning), 2 failed/error (critical), 3 unknown id or config error (unknown).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use futures_util::StreamExt;

use super::{OrExit, Outcome, format_of, load_config, master_key, print};
use crate::cli::CheckArgs;
use crate::model::{CheckResult, Status};
use crate::report;
use crate::runner::lock::{ProbeLock, probe_lock_dir};
use crate::runner::{Clients, Target, prepare, probe_isolated};
use crate::store::Store;

const EXIT_UNKNOWN: i32 = 3;

pub async fn check(config_path: &Path, args: CheckArgs, color: bool) -> Outcome {
    let config = load_config(config_path, EXIT_UNKNOWN)?;
    let known: Vec<&str> = config.monitors.iter().map(|m| m.id.as_str()).collect();
    for id in &args.ids {
        if !known.contains(&id.as_str()) {
            return Err(anyhow!(
                "unknown monitor id `{id}` in {}; known ids: {}",
                config_path.display(),
                if known.is_empty() {
                    "(none)".to_owned()
                } else {
                    known.join(", ")
                }
            ))
            .or_exit(EXIT_UNKNOWN);
        }
    }
    let key = master_key(&config, true)
        .or_exit(EXIT_UNKNOWN)?
        .context("no master key")
        .or_exit(EXIT_UNKNOWN)?;
    let mut store = Store::open(&config.database).or_exit(EXIT_UNKNOWN)?;
    let monitors = store
        .sync_monitors(&config.monitors, &key)
        .context("syncing the config into the database")
        .or_exit(EXIT_UNKNOWN)?;
    let selected = monitors
        .into_iter()
        .filter(|m| {
            if args.all {
                m.config.enabled
            } else {
                args.ids.contains(&m.config.id)
            }
        })
        .collect();
    let targets = prepare(selected, &mut Clients::default());
    let locks = probe_lock_dir(&config.database);
    let concurrency = config.runner.workers.max(1);
    let model_concurrency = config.runner.model_concurrency;
    let mut results: Vec<(usize, anyhow::Result<Vec<CheckResult>>)> =
        futures_util::stream::iter(targets.into_iter().enumerate())
            .map(|(i, t)| {
                let locks = locks.clone();
                async move { (i, probe_locked(t, &locks, model_concurrency).await) }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    results.sort_by_key(|(i, _)| *i);
    let mut all: Vec<CheckResult> = Vec::new();
    for (_, r) in results {
        all.extend(
            r.map_err(|e| e.context("probe lock"))
                .or_exit(EXIT_UNKNOWN)?,
        );
    }
    if !args.no_record {
        store
            .insert_results(&all)
            .context("recording the results")
            .or_exit(EXIT_UNKNOWN)?;
    }
    print(&report::render_results(&all, format_of(args.format), color));
    let worst = all
        .iter()
        .map(|r| r.status)
        .max()
        .unwrap_or(Status::Operational);
    Ok(worst.exit_code())
}

/// Probes one monitor while holding its cross-process probe lock, waiting for the daemon's
/// probe of the same monitor to finish first.
async fn probe_locked(
    target: Arc<Target>,
    locks: &Path,
    model_concurrency: usize,
) -> anyhow::Result<Vec<CheckResult>> {
    let id = target.monitor.config.id.to_string();
    let guard = match ProbeLock::try_acquire(locks, &id)? {
        Some(g) => g,
        None => {
            tracing::info!(monitor = %id, "waiting for the running probe of this monitor to finish");
            let dir = locks.to_owned();
            tokio::task::spawn_blocking(move || ProbeLock::acquire(&dir, &id))
                .await
                .context("waiting for the probe lock")??
        }
    };
    let results = probe_isolated(target, model_concurrency).await;
    drop(guard);
    Ok(results)
}
