//! `chanmon cost`: tokens and cost over a period, per monitor or per model. Read from the same
//! windows as `status` (full hours from rollups, edges from raw rows), so the totals survive
//! `prune` and equal a sum over the recorded rows while those exist.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, anyhow};
use serde::Serialize;

use super::{EXIT_CONFIG, EXIT_RUNTIME, OrExit, Outcome, load_config_for_reading, print};
use crate::cli::{CostArgs, CostBy, OutputFormat};
use crate::model::Timestamp;
use crate::report::cost_cell;
use crate::store::{self, OpenMode, WindowStats};

/// One line of the report.
#[derive(Debug, Default, Serialize)]
struct Line {
    /// The monitor id or the model name.
    key: String,
    checks: u64,
    /// Checks that reported tokens; the rest (older rows, replies without usage) did not.
    with_usage: u64,
    tokens_in: u64,
    tokens_out: u64,
    tokens_reasoning: u64,
    /// Checks priced; `cost` is `null` when none was.
    priced: u64,
    /// Billionths of the price's unit, exact.
    cost_nano: u64,
    cost: Option<f64>,
}

impl Line {
    fn add(&mut self, w: &WindowStats) {
        let r = &w.rollup;
        self.checks += w.total();
        self.with_usage += r.usage_n;
        self.tokens_in += r.tokens_in;
        self.tokens_out += r.tokens_out;
        self.tokens_reasoning += r.tokens_reasoning;
        self.priced += r.cost_n;
        self.cost_nano += r.cost_nano;
        self.cost = (self.priced > 0).then(|| self.cost_nano as f64 / 1e9);
    }
}

pub(super) fn cost(config_path: &Path, args: CostArgs) -> Outcome {
    if args.format == OutputFormat::Csv {
        return Err(anyhow!("`cost` prints table or json")).or_exit(EXIT_CONFIG);
    }
    let config = load_config_for_reading(config_path)?;
    let store = store::open(&config.database, OpenMode::Existing).or_exit(EXIT_RUNTIME)?;
    let rows = store
        .status(args.id.as_ref(), Timestamp::now(), &[args.since])
        .with_context(|| format!("reading {}", config.database))
        .or_exit(EXIT_RUNTIME)?;
    if let Some(id) = &args.id
        && rows.is_empty()
    {
        return Err(anyhow!("monitor `{id}` is not in {}", config.database)).or_exit(EXIT_RUNTIME);
    }
    let mut lines: BTreeMap<String, Line> = BTreeMap::new();
    for r in &rows {
        let key = match args.by {
            CostBy::Monitor => r.monitor.to_string(),
            CostBy::Model => r.model.clone(),
        };
        let line = lines.entry(key.clone()).or_insert_with(|| Line {
            key,
            ..Line::default()
        });
        for (_, w) in &r.windows {
            line.add(w);
        }
    }
    let mut total = Line {
        key: "total".to_owned(),
        ..Line::default()
    };
    for r in &rows {
        for (_, w) in &r.windows {
            total.add(w);
        }
    }
    let lines: Vec<Line> = lines.into_values().collect();
    print(&match args.format {
        OutputFormat::Json => render_json(&lines, &total, args.since),
        _ => render_table(&lines, &total, args.by, args.since),
    });
    Ok(0)
}

fn render_json(lines: &[Line], total: &Line, since: std::time::Duration) -> String {
    let v = serde_json::json!({
        "since": humantime::format_duration(since).to_string(),
        "lines": lines,
        "total": total,
    });
    serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into())
}

fn render_table(lines: &[Line], total: &Line, by: CostBy, since: std::time::Duration) -> String {
    let mut out = format!(
        "{:<32} {:>8} {:>12} {:>12} {:>14}\n",
        match by {
            CostBy::Monitor => "MONITOR",
            CostBy::Model => "MODEL",
        },
        "CHECKS",
        "TOKENS IN",
        "TOKENS OUT",
        format!("COST {}", humantime::format_duration(since)),
    );
    for l in lines.iter().chain(std::iter::once(total)) {
        let tokens = |n: u64| {
            if l.with_usage > 0 {
                n.to_string()
            } else {
                "-".to_owned()
            }
        };
        out.push_str(&format!(
            "{:<32} {:>8} {:>12} {:>12} {:>14}\n",
            l.key,
            l.checks,
            tokens(l.tokens_in),
            tokens(l.tokens_out),
            cost_cell(l.cost),
        ));
    }
    out.trim_end().to_owned()
}
