//! `chanmon prune`: retention, from cron, while the daemon runs. Raw rows go in small
//! batches; the hourly rollups that cover them stay (until `[retention] rollups`).

use std::path::Path;

use anyhow::Context;

use super::{EXIT_RUNTIME, OrExit, Outcome, load_config_for_reading, print};
use crate::cli::PruneArgs;
use crate::model::Timestamp;
use crate::store::{self, OpenMode};

pub(super) fn prune(config_path: &Path, args: PruneArgs) -> Outcome {
    let config = load_config_for_reading(config_path)?;
    let mut store = store::open(&config.database, OpenMode::Existing).or_exit(EXIT_RUNTIME)?;
    let db = config.database.to_string();
    let older_than = args.older_than.unwrap_or(config.retention.history);
    let now = Timestamp::now();
    if args.rebuild_rollups && !args.dry_run {
        let n = store
            .rebuild_rollups()
            .with_context(|| format!("rebuilding the rollups of {db}"))
            .or_exit(EXIT_RUNTIME)?;
        if !args.quiet {
            print(&format!("rebuilt {n} hourly rollups from raw rows"));
        }
    }
    let deleted = store
        .prune(now, older_than, args.dry_run)
        .with_context(|| format!("pruning {db}"))
        .or_exit(EXIT_RUNTIME)?;
    let rollups = store
        .prune_rollups(now, config.retention.rollups, args.dry_run)
        .with_context(|| format!("pruning the rollups of {db}"))
        .or_exit(EXIT_RUNTIME)?;
    if args.vacuum && !args.dry_run {
        store
            .vacuum()
            .with_context(|| format!("vacuuming {db}"))
            .or_exit(EXIT_RUNTIME)?;
    }
    if !args.quiet {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        print(&format!(
            "{verb} {} history rows older than {} and {rollups} hourly rollups older than {}{}",
            deleted,
            humantime::format_duration(older_than),
            humantime::format_duration(config.retention.rollups),
            if args.vacuum && !args.dry_run {
                "; vacuumed"
            } else {
                ""
            }
        ));
    }
    Ok(0)
}
