//! `chanmon prune`: retention, from cron, while the daemon runs.

use std::path::Path;

use anyhow::Context;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config, print};
use crate::cli::PruneArgs;
use crate::model::Timestamp;
use crate::store::Store;

pub fn prune(config_path: &Path, args: PruneArgs) -> Outcome {
    let config = load_config(config_path, EXIT_CONFIG)?;
    let mut store = Store::open_existing(&config.database).or_exit(EXIT_RUNTIME)?;
    let older_than = args.older_than.unwrap_or(config.retention.history);
    let now = Timestamp::now();
    let report = store
        .prune(now, older_than, args.dry_run)
        .with_context(|| format!("pruning {}", config.database.display()))
        .or_exit(EXIT_RUNTIME)?;
    if !args.quiet {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        print(&format!(
            "{verb} {} history rows older than {}",
            report.history_rows,
            humantime::format_duration(older_than)
        ));
    }
    Ok(0)
}
