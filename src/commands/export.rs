//! `chanmon export`: every matching history row as CSV or JSON lines, streamed from one read
//! snapshot to stdout in constant memory (for SLA reports and spreadsheets).

use std::io::{BufWriter, ErrorKind, Write};
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Context;

use super::{EXIT_RUNTIME, OrExit, Outcome, load_config_for_reading};
use crate::cli::{ExportArgs, ExportFormat};
use crate::report;
use crate::store::{self, ExportQuery, OpenMode};

pub(super) fn export(config_path: &Path, args: ExportArgs) -> Outcome {
    let config = load_config_for_reading(config_path)?;
    let store = store::open(&config.database, OpenMode::ReadOnly).or_exit(EXIT_RUNTIME)?;
    let q = ExportQuery {
        monitor: args.monitor,
        model: args.model,
        since: args.since,
        until: args.until,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = String::with_capacity(512);
    let mut failed: Option<std::io::Error> = None;
    if args.format == ExportFormat::Csv
        && let Err(e) = out.write_all(report::CSV_HEADER.as_bytes())
    {
        failed = Some(e);
    }
    if failed.is_none() {
        store
            .export(&q, &mut |r| {
                line.clear();
                match args.format {
                    ExportFormat::Csv => report::csv_line(&r, &mut line),
                    ExportFormat::Jsonl => report::json_line(&r, &mut line),
                }
                match out.write_all(line.as_bytes()) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        failed = Some(e);
                        ControlFlow::Break(())
                    }
                }
            })
            .with_context(|| format!("exporting from {}", config.database))
            .or_exit(EXIT_RUNTIME)?;
    }
    if failed.is_none()
        && let Err(e) = out.flush()
    {
        failed = Some(e);
    }
    match failed {
        // The reader went away (`| head`): not an error.
        Some(e) if e.kind() == ErrorKind::BrokenPipe => Ok(0),
        Some(e) => Err(e).context("writing the export").or_exit(EXIT_RUNTIME),
        None => Ok(0),
    }
}
