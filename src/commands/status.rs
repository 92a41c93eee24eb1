//! `chanmon status`: latest result, availability windows and latency per monitor and model.

use std::path::Path;

use anyhow::{Context, anyhow};

use super::{
    EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, format_of, load_config_for_reading, print,
};
use crate::cli::{OutputFormat, StatusArgs};
use crate::model::Timestamp;
use crate::report;
use crate::store::{self, OpenMode};

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
    let rows = store
        .status(args.id.as_ref(), now, &args.windows)
        .with_context(ctx)
        .or_exit(EXIT_RUNTIME)?;
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
                    store
                        .timeline(id, &r.model, TIMELINE)
                        .with_context(ctx)
                        .or_exit(EXIT_RUNTIME)?,
                );
            }
            Some(t)
        }
        None => None,
    };
    print(&report::render_status(
        &rows,
        timelines.as_deref(),
        format_of(args.format),
        color,
        now,
    ));
    Ok(0)
}
