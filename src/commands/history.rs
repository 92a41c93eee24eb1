//! `chanmon history`: recorded results, newest first, as a table, JSON or CSV.

use std::path::Path;

use anyhow::Context;

use super::{EXIT_RUNTIME, OrExit, Outcome, format_of, load_config_for_reading, print};
use crate::cli::HistoryArgs;
use crate::report;
use crate::store::{self, HistoryQuery, OpenMode};

pub(super) fn history(config_path: &Path, args: HistoryArgs, color: bool) -> Outcome {
    let config = load_config_for_reading(config_path)?;
    let store = store::open(&config.database, OpenMode::Existing).or_exit(EXIT_RUNTIME)?;
    let q = HistoryQuery {
        monitor: args.id,
        model: args.model,
        since: args.since,
        until: args.until,
        before: args.before,
        status: args.status,
        location: args.location,
        limit: args.limit as usize,
    };
    let rows = store
        .history(&q)
        .with_context(|| format!("reading history from {}", config.database))
        .or_exit(EXIT_RUNTIME)?;
    print(&report::render_results(
        &rows,
        format_of(args.format),
        color,
    ));
    Ok(0)
}
