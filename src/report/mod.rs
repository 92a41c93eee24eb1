//! Rendering results and status for people (aligned tables, optional colour) and for scripts
//! (JSON, CSV). No I/O and no SQL: callers pass rows in and print the string.

pub(crate) mod table;

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::model::{CheckResult, MonitorId, Status, Timestamp};
use crate::official::OfficialStatus;
use crate::store::{StatusRow, WindowStats};

use table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Json,
    Csv,
}

/// Longest message shown in a table cell (JSON and CSV carry the whole stored message).
const TABLE_MESSAGE_CHARS: usize = 80;

fn ms(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v}ms"))
}

fn paint(s: &str, status: Status, color: bool) -> String {
    if !color {
        return s.to_owned();
    }
    let code = match status {
        Status::Operational => "32",
        Status::Degraded => "33",
        Status::Failed => "31",
        Status::Error => "1;31",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Check results (history, `check`).
pub(crate) fn render_results(rows: &[CheckResult], format: Format, color: bool) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into()) + "\n",
        Format::Csv => {
            let mut out = String::from(CSV_HEADER);
            for r in rows {
                csv_line(r, &mut out);
            }
            out
        }
        Format::Table => {
            if rows.is_empty() {
                return "no results\n".to_owned();
            }
            // A LOCATION column only where some result names one: single-location output
            // stays as it was.
            let located = rows.iter().any(|r| !r.location.is_empty());
            let mut head = vec!["TIME", "MONITOR", "MODEL"];
            if located {
                head.push("LOCATION");
            }
            head.extend([
                "STATUS", "KIND", "HTTP", "TTFT", "LATENCY", "PING", "MESSAGE",
            ]);
            let mut t = Table::new(&head);
            for r in rows {
                let mut cells = vec![
                    (r.started_at.to_rfc3339(), None),
                    (r.monitor.to_string(), None),
                    (r.model.clone(), None),
                ];
                if located {
                    cells.push((location_cell(&r.location), None));
                }
                cells.extend([
                    (r.status.to_string(), Some(r.status)),
                    (r.kind.to_string(), None),
                    (
                        r.http_status.map_or_else(|| "-".into(), |v| v.to_string()),
                        None,
                    ),
                    (ms(r.ttft_ms), None),
                    (ms(r.latency_ms), None),
                    (ms(r.ping_ms), None),
                    (cut(&r.message, TABLE_MESSAGE_CHARS), None),
                ]);
                t.row(cells);
            }
            t.render(color)
        }
    }
}

/// The header line of result CSV (`history --format csv`, `export`).
pub(crate) const CSV_HEADER: &str = "started_at,monitor,model,status,kind,http_status,ttft_ms,latency_ms,ping_ms,message,location,due_at\n";

/// A location in text output: the name, or `-` for none named.
pub(crate) fn location_cell(location: &str) -> String {
    if location.is_empty() {
        "-".to_owned()
    } else {
        location.to_owned()
    }
}

/// One result as a CSV line (with its newline), appended to `out`.
pub(crate) fn csv_line(r: &CheckResult, out: &mut String) {
    let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
    let fields = [
        r.started_at.to_rfc3339(),
        r.monitor.to_string(),
        r.model.clone(),
        r.status.to_string(),
        r.kind.to_string(),
        r.http_status.map(|v| v.to_string()).unwrap_or_default(),
        opt(r.ttft_ms),
        opt(r.latency_ms),
        opt(r.ping_ms),
        r.message.clone(),
        r.location.clone(),
        r.due_at.map(Timestamp::to_rfc3339).unwrap_or_default(),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(f));
    }
    out.push('\n');
}

/// One result as a JSON object on one line (with its newline), appended to `out`.
pub(crate) fn json_line(r: &CheckResult, out: &mut String) {
    out.push_str(&serde_json::to_string(r).unwrap_or_else(|_| "{}".into()));
    out.push('\n');
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn age(now: Timestamp, then: Timestamp) -> String {
    let secs = (now.millis() - then.millis()).max(0) / 1000;
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// `24h`, `7d`, … : how windows are named in tables, JSON and `/metrics` labels.
pub(crate) fn window_label(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        86_400 => "24h".to_owned(),
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        _ => humantime::format_duration(d).to_string().replace(' ', ""),
    }
}

#[derive(Serialize)]
struct StatusJson<'a> {
    monitor: &'a str,
    name: &'a str,
    model: &'a str,
    /// `""` when no location was named.
    location: &'a str,
    /// The model across its locations, when more than one has results.
    #[serde(skip_serializing_if = "Option::is_none")]
    locations: Option<LocationsJson>,
    enabled: bool,
    key_unavailable: Option<&'a str>,
    latest: Option<&'a CheckResult>,
    windows: Vec<WindowJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<String>,
    /// The provider's own status page, when the monitor shows one (beside the verdict, never
    /// part of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    official: Option<&'a OfficialStatus>,
}

impl<'a> StatusJson<'a> {
    fn new(r: &'a StatusRow, timeline: Option<&[CheckResult]>) -> StatusJson<'a> {
        StatusJson {
            monitor: r.monitor.as_str(),
            name: &r.name,
            model: &r.model,
            location: &r.location,
            locations: r.locations.map(|l| LocationsJson {
                total: l.total,
                failing: l.failing,
                summary: l.text(),
            }),
            enabled: r.enabled,
            key_unavailable: r.key_unavailable.as_deref(),
            latest: r.latest.as_ref(),
            windows: r
                .windows
                .iter()
                .map(|(d, w)| WindowJson::new(*d, w))
                .collect(),
            timeline: timeline.map(letters),
            official: r.official.as_ref(),
        }
    }
}

#[derive(Serialize)]
struct LocationsJson {
    total: u32,
    failing: u32,
    /// `down from 2 of 3 locations`.
    summary: String,
}

#[derive(Serialize)]
struct WindowJson {
    window: String,
    checks: u64,
    operational: u64,
    degraded: u64,
    failed: u64,
    error: u64,
    availability: Option<f64>,
    avg_latency_ms: Option<f64>,
    p50_latency_ms: Option<f64>,
    p95_latency_ms: Option<f64>,
    avg_ttft_ms: Option<f64>,
    /// Token and cost sums; `null` when no check in the window recorded them.
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
    cost: Option<f64>,
    p50_tps: Option<f64>,
    p95_tps: Option<f64>,
}

impl WindowJson {
    fn new(d: Duration, w: &WindowStats) -> WindowJson {
        WindowJson {
            window: window_label(d),
            checks: w.total(),
            operational: w.count(Status::Operational),
            degraded: w.count(Status::Degraded),
            failed: w.count(Status::Failed),
            error: w.count(Status::Error),
            availability: w.availability(),
            avg_latency_ms: w.avg_latency_ms(),
            p50_latency_ms: w.latency_percentile(0.5),
            p95_latency_ms: w.latency_percentile(0.95),
            avg_ttft_ms: w.avg_ttft_ms(),
            tokens_in: w.tokens().map(|t| t.0),
            tokens_out: w.tokens().map(|t| t.1),
            cost: w.cost(),
            p50_tps: w.tps_percentile(0.5),
            p95_tps: w.tps_percentile(0.95),
        }
    }
}

/// Status letters of `results`, oldest first (`o`, `d`, `F`, `E`).
fn letters(results: &[CheckResult]) -> String {
    results.iter().map(|r| r.status.letter()).collect()
}

/// `chanmon status`. `timelines` (same order as `rows`) are given for a single monitor.
pub(crate) fn render_status(
    rows: &[StatusRow],
    timelines: Option<&[Vec<CheckResult>]>,
    format: Format,
    color: bool,
    now: Timestamp,
) -> String {
    match format {
        // `chanmon status` refuses CSV before it gets here; JSON keeps this match total.
        Format::Json | Format::Csv => status_json(rows, timelines),
        Format::Table => status_table(rows, timelines, color, now),
    }
}

fn status_json(rows: &[StatusRow], timelines: Option<&[Vec<CheckResult>]>) -> String {
    let out: Vec<StatusJson> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| StatusJson::new(r, timelines.and_then(|t| t.get(i)).map(Vec::as_slice)))
        .collect();
    serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into()) + "\n"
}

fn status_table(
    rows: &[StatusRow],
    timelines: Option<&[Vec<CheckResult>]>,
    color: bool,
    now: Timestamp,
) -> String {
    let Some(first) = rows.first() else {
        return "no monitors in the database yet\n".to_owned();
    };
    let located = rows.iter().any(|r| !r.location.is_empty());
    let mut head = status_head(first);
    if located {
        head.insert(2, "LOCATION".to_owned());
    }
    let mut t = Table::new(&head.iter().map(String::as_str).collect::<Vec<_>>());
    for r in rows {
        let mut cells = status_cells(r, now);
        if located {
            cells.insert(2, (location_cell(&r.location), None));
        }
        t.row(cells);
    }
    let mut out = t.render(color);
    out.push_str(&combined_block(rows));
    out.push_str(&official_block(rows, now));
    if let Some(tl) = timelines {
        out.push_str(&timeline_block(rows, tl, color));
    }
    out
}

/// One line per model probed from several locations, under the table:
/// `combined <monitor> <model>: down from 2 of 3 locations`.
fn combined_block(rows: &[StatusRow]) -> String {
    let mut out = String::new();
    let mut last: Option<(&MonitorId, &str)> = None;
    for r in rows {
        let Some(l) = r.locations else { continue };
        if last == Some((&r.monitor, r.model.as_str())) {
            continue;
        }
        last = Some((&r.monitor, r.model.as_str()));
        let _ = writeln!(out, "combined {} {}: {}", r.monitor, r.model, l.text());
    }
    out
}

/// One line per monitor showing a status page, under the table (a column would not fit):
/// `official <monitor>: <indicator> — <description> (<n> open incidents, read <age> ago)`.
fn official_block(rows: &[StatusRow], now: Timestamp) -> String {
    let mut out = String::new();
    // A monitor's rows are consecutive: one line per monitor means skipping repeats of the last.
    let mut last: Option<&MonitorId> = None;
    for r in rows {
        let Some(o) = &r.official else { continue };
        if last == Some(&r.monitor) {
            continue;
        }
        last = Some(&r.monitor);
        let detail = match (&o.error, o.incidents.len()) {
            (Some(e), _) => cut(e, 80),
            (None, 0) => cut(&o.description, 60),
            (None, n) => format!(
                "{} ({n} open incident{}: {})",
                cut(&o.description, 40),
                if n == 1 { "" } else { "s" },
                cut(&o.incidents[0].name, 50)
            ),
        };
        let read = o
            .checked_at
            .map_or(String::new(), |t| format!(", read {}", age(now, t)));
        out.push_str(&format!(
            "official {}: {} — {detail}{read}\n",
            r.monitor,
            o.indicator.as_str()
        ));
    }
    out
}

/// Column titles; the availability columns follow the windows of the first row.
fn status_head(first: &StatusRow) -> Vec<String> {
    let fixed = [
        "MONITOR", "MODEL", "STATUS", "KIND", "LAST", "TTFT", "LATENCY", "PING",
    ];
    let mut head: Vec<String> = fixed.iter().map(|h| h.to_string()).collect();
    head.extend(
        first
            .windows
            .iter()
            .map(|(d, _)| format!("UP {}", window_label(*d))),
    );
    head.push("P95".to_owned());
    // Tokens and cost of the first window (a day by default) and cost of the last (30 days).
    if let (Some((d0, _)), Some((dn, _))) = (first.windows.first(), first.windows.last()) {
        head.push(format!("TOKENS {}", window_label(*d0)));
        head.push(format!("COST {}", window_label(*d0)));
        if dn != d0 {
            head.push(format!("COST {}", window_label(*dn)));
        }
    }
    head
}

/// `in/out` tokens, or `-` when not recorded.
fn tokens_cell(w: &WindowStats) -> String {
    w.tokens().map_or("-".into(), |(i, o)| format!("{i}/{o}"))
}

/// A cost with enough digits for probe-sized sums, or `-` when not recorded.
pub(crate) fn cost_cell(cost: Option<f64>) -> String {
    cost.map_or("-".into(), |c| format!("{c:.6}"))
}

/// One table row: the monitor, its newest check, availability per window, p95 of the first.
fn status_cells(r: &StatusRow, now: Timestamp) -> Vec<(String, Option<Status>)> {
    let ([status, kind, last, ttft, lat, ping], st) = latest_cells(r, now);
    let name = if r.enabled {
        r.monitor.to_string()
    } else {
        format!("{} (disabled)", r.monitor)
    };
    let mut cells = vec![(name, None), (r.model.clone(), None), (status, st)];
    cells.extend([kind, last, ttft, lat, ping].map(|c| (c, None)));
    for (_, w) in &r.windows {
        cells.push((
            w.availability()
                .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
            None,
        ));
    }
    let p95 = r
        .windows
        .first()
        .and_then(|(_, w)| w.latency_percentile(0.95));
    cells.push((p95.map_or("-".into(), |v| format!("{v:.0}ms")), None));
    if let (Some((d0, w0)), Some((dn, wn))) = (r.windows.first(), r.windows.last()) {
        cells.push((tokens_cell(w0), None));
        cells.push((cost_cell(w0.cost()), None));
        if dn != d0 {
            cells.push((cost_cell(wn.cost()), None));
        }
    }
    cells
}

/// STATUS, KIND, LAST, TTFT, LATENCY and PING of a row, and the status to colour STATUS by.
/// A key problem outranks the newest result: without a key there will be no next one.
fn latest_cells(r: &StatusRow, now: Timestamp) -> ([String; 6], Option<Status>) {
    let none = || "-".to_owned();
    match (&r.key_unavailable, &r.latest) {
        (Some(_), latest) => (
            [
                "error".to_owned(),
                "key_unavailable".to_owned(),
                latest
                    .as_ref()
                    .map_or_else(none, |l| age(now, l.started_at)),
                none(),
                none(),
                none(),
            ],
            Some(Status::Error),
        ),
        (None, Some(l)) => (
            [
                l.status.to_string(),
                l.kind.to_string(),
                age(now, l.started_at),
                ms(l.ttft_ms),
                ms(l.latency_ms),
                ms(l.ping_ms),
            ],
            Some(l.status),
        ),
        (None, None) => (
            [
                "never checked".to_owned(),
                none(),
                none(),
                none(),
                none(),
                none(),
            ],
            None,
        ),
    }
}

/// The block under a single monitor's table: one bar per row, oldest result first.
fn timeline_block(rows: &[StatusRow], timelines: &[Vec<CheckResult>], color: bool) -> String {
    let mut out = String::from("\n");
    for (r, results) in rows.iter().zip(timelines) {
        let bar = if color {
            results.iter().map(|x| paint("█", x.status, true)).collect()
        } else {
            letters(results)
        };
        let bar = if bar.is_empty() {
            "(no results)".to_owned()
        } else {
            bar
        };
        let at = if r.location.is_empty() {
            String::new()
        } else {
            format!(" @{}", r.location)
        };
        let _ = writeln!(out, "{} {}{at}  {bar}", r.monitor, r.model);
    }
    if !color {
        let _ = writeln!(
            out,
            "(oldest → newest; o operational, d degraded, F failed, E error)"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, MonitorId};

    fn r(model: &str, msg: &str) -> CheckResult {
        CheckResult {
            monitor: MonitorId::parse("m1").unwrap(),
            model: model.into(),
            started_at: Timestamp(1_764_000_000_000),
            status: Status::Failed,
            kind: Kind::ChallengeMismatch,
            http_status: Some(200),
            ttft_ms: Some(120),
            latency_ms: Some(300),
            ping_ms: None,
            message: msg.into(),
            facts: Default::default(),
            location: String::new(),
            due_at: None,
        }
    }

    /// A fixed status covering every row shape: a key problem, a checked monitor (disabled),
    /// a never-checked one; two windows; and the timeline block.
    fn status_fixture() -> (Vec<StatusRow>, Vec<Vec<CheckResult>>) {
        let at = |ms: i64, status: Status| CheckResult {
            started_at: Timestamp(ms),
            status,
            ping_ms: Some(15),
            ..r("gpt-x", "fine")
        };
        let mut day = WindowStats::default();
        day.rollup
            .add(Status::Operational, Kind::Ok, Some(300), Some(120));
        day.rollup.add(Status::Degraded, Kind::Ok, Some(900), None);
        day.rollup
            .add(Status::Failed, Kind::ChallengeMismatch, Some(250), None);
        day.rollup.add_facts(&crate::model::ReplyFacts {
            tokens_in: Some(20),
            tokens_out: Some(5),
            cost_nano: Some(6000),
            tps: Some(42.0),
            ..Default::default()
        });
        let week = WindowStats::default();
        let windows = |d: &WindowStats, w: &WindowStats| {
            vec![
                (Duration::from_secs(86_400), d.clone()),
                (Duration::from_secs(7 * 86_400), w.clone()),
            ]
        };
        let row = |id: &str, model: &str| StatusRow {
            monitor: MonitorId::parse(id).unwrap(),
            name: format!("{id} name"),
            model: model.into(),
            location: String::new(),
            locations: None,
            enabled: true,
            key_unavailable: None,
            latest: None,
            tracked: None,
            windows: windows(&day, &week),
            official: None,
        };
        let rows = vec![
            StatusRow {
                key_unavailable: Some("no stored key".into()),
                latest: Some(at(1_764_000_000_000, Status::Operational)),
                ..row("keyless", "claude-y")
            },
            StatusRow {
                enabled: false,
                latest: Some(at(1_764_000_000_000, Status::Degraded)),
                ..row("m1", "gpt-x")
            },
            StatusRow {
                windows: windows(&week, &week),
                ..row("fresh", "gemini-z")
            },
        ];
        let timelines = vec![
            vec![at(1, Status::Operational), at(2, Status::Error)],
            vec![at(1, Status::Degraded), at(2, Status::Failed)],
            Vec::new(),
        ];
        (rows, timelines)
    }

    const FIXTURE_NOW: Timestamp = Timestamp(1_764_000_000_000 + 3_700_000);

    #[test]
    fn status_table_is_pinned() {
        let (rows, _) = status_fixture();
        let out = render_status(&rows, None, Format::Table, false, FIXTURE_NOW);
        assert_eq!(
            out,
            r#"MONITOR        MODEL     STATUS         KIND                LAST     TTFT   LATENCY  PING  UP 24h  UP 7d  P95    TOKENS 24h  COST 24h  COST 7d
keyless        claude-y  error          key_unavailable     61m ago  -      -        -     66.67%  -      911ms  20/5        0.000006  -
m1 (disabled)  gpt-x     degraded       challenge_mismatch  61m ago  120ms  300ms    15ms  66.67%  -      911ms  20/5        0.000006  -
fresh          gemini-z  never checked  -                   -        -      -        -     -       -      -      -           -         -
"#
        );
    }

    #[test]
    fn status_table_with_timelines_is_pinned() {
        let (rows, timelines) = status_fixture();
        let out = render_status(&rows, Some(&timelines), Format::Table, false, FIXTURE_NOW);
        assert_eq!(
            out,
            r#"MONITOR        MODEL     STATUS         KIND                LAST     TTFT   LATENCY  PING  UP 24h  UP 7d  P95    TOKENS 24h  COST 24h  COST 7d
keyless        claude-y  error          key_unavailable     61m ago  -      -        -     66.67%  -      911ms  20/5        0.000006  -
m1 (disabled)  gpt-x     degraded       challenge_mismatch  61m ago  120ms  300ms    15ms  66.67%  -      911ms  20/5        0.000006  -
fresh          gemini-z  never checked  -                   -        -      -        -     -       -      -      -           -         -

keyless claude-y  oE
m1 gpt-x  dF
fresh gemini-z  (no results)
(oldest → newest; o operational, d degraded, F failed, E error)
"#
        );
        let out = render_status(&rows, Some(&timelines), Format::Table, true, FIXTURE_NOW);
        assert_eq!(
            out,
            "MONITOR        MODEL     STATUS         KIND                LAST     TTFT   LATENCY  PING  UP 24h  UP 7d  P95    TOKENS 24h  COST 24h  COST 7d\nkeyless        claude-y  \u{1b}[1;31merror\u{1b}[0m          key_unavailable     61m ago  -      -        -     66.67%  -      911ms  20/5        0.000006  -\nm1 (disabled)  gpt-x     \u{1b}[33mdegraded\u{1b}[0m       challenge_mismatch  61m ago  120ms  300ms    15ms  66.67%  -      911ms  20/5        0.000006  -\nfresh          gemini-z  never checked  -                   -        -      -        -     -       -      -      -           -         -\n\nkeyless claude-y  \u{1b}[32m█\u{1b}[0m\u{1b}[1;31m█\u{1b}[0m\nm1 gpt-x  \u{1b}[33m█\u{1b}[0m\u{1b}[31m█\u{1b}[0m\nfresh gemini-z  (no results)\n"
        );
    }

    #[test]
    fn status_json_is_pinned() {
        let (rows, timelines) = status_fixture();
        let out = render_status(&rows, Some(&timelines), Format::Json, false, FIXTURE_NOW);
        assert_eq!(out, STATUS_JSON);
        let csv = render_status(&rows[1..2], None, Format::Csv, false, FIXTURE_NOW);
        assert_eq!(csv, STATUS_JSON_ONE_ROW_NO_TIMELINE);
    }

    #[test]
    fn status_without_rows() {
        assert_eq!(
            render_status(&[], None, Format::Table, true, FIXTURE_NOW),
            "no monitors in the database yet\n"
        );
        assert_eq!(
            render_status(&[], None, Format::Json, false, FIXTURE_NOW),
            "[]\n"
        );
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let out = render_results(&[r("a", "said \"hi\", then\nleft")], Format::Csv, false);
        let line = out.lines().nth(1).unwrap();
        assert!(line.ends_with("\"said \"\"hi\"\", then"), "{out}");
        assert!(out.starts_with("started_at,monitor,model"));
    }

    #[test]
    fn export_lines_match_the_history_formats() {
        let rows = [r("a", "x, \"y\""), r("b", "")];
        let mut csv = String::from(CSV_HEADER);
        let mut jsonl = String::new();
        for row in &rows {
            csv_line(row, &mut csv);
            json_line(row, &mut jsonl);
        }
        assert_eq!(csv, render_results(&rows, Format::Csv, false));
        let whole: serde_json::Value =
            serde_json::from_str(&render_results(&rows, Format::Json, false)).unwrap();
        let lines: Vec<serde_json::Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(serde_json::Value::Array(lines), whole);
    }

    #[test]
    fn json_carries_the_fields() {
        let out = render_results(&[r("a", "x")], Format::Json, false);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["kind"], "challenge_mismatch");
        assert_eq!(v[0]["latency_ms"], 300);
        assert!(v[0]["ping_ms"].is_null());
    }

    #[test]
    fn tables_align_and_cut_long_messages_on_char_boundaries() {
        let out = render_results(
            &[
                r("short", "é".repeat(300).as_str()),
                r("a-much-longer-model", "ok"),
            ],
            Format::Table,
            false,
        );
        let lines: Vec<&str> = out.lines().collect();
        let col = |l: &str| l.find("STATUS").or_else(|| l.find("failed")).unwrap();
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
        assert!(lines[1].contains('…'));
        assert!(!out.contains('\x1b'));
        assert!(render_results(&[r("a", "")], Format::Table, true).contains('\x1b'));
    }

    /// `status_fixture()` with its timelines, as JSON.
    const STATUS_JSON: &str = r#"[
  {
    "monitor": "keyless",
    "name": "keyless name",
    "model": "claude-y",
    "location": "",
    "enabled": true,
    "key_unavailable": "no stored key",
    "latest": {
      "monitor": "m1",
      "model": "gpt-x",
      "started_at": 1764000000000,
      "status": "operational",
      "kind": "challenge_mismatch",
      "http_status": 200,
      "ttft_ms": 120,
      "latency_ms": 300,
      "ping_ms": 15,
      "message": "fine",
      "answered_model": null,
      "tokens_in": null,
      "tokens_out": null,
      "tokens_reasoning": null,
      "cost_nano": null,
      "tps": null,
      "location": "",
      "due_at": null
    },
    "windows": [
      {
        "window": "24h",
        "checks": 3,
        "operational": 1,
        "degraded": 1,
        "failed": 1,
        "error": 0,
        "availability": 0.6666666666666666,
        "avg_latency_ms": 600.0,
        "p50_latency_ms": 290.31185241490505,
        "p95_latency_ms": 911.1229557173777,
        "avg_ttft_ms": 120.0,
        "tokens_in": 20,
        "tokens_out": 5,
        "cost": 6e-6,
        "p50_tps": 42.50455831206626,
        "p95_tps": 42.50455831206626
      },
      {
        "window": "7d",
        "checks": 0,
        "operational": 0,
        "degraded": 0,
        "failed": 0,
        "error": 0,
        "availability": null,
        "avg_latency_ms": null,
        "p50_latency_ms": null,
        "p95_latency_ms": null,
        "avg_ttft_ms": null,
        "tokens_in": null,
        "tokens_out": null,
        "cost": null,
        "p50_tps": null,
        "p95_tps": null
      }
    ],
    "timeline": "oE"
  },
  {
    "monitor": "m1",
    "name": "m1 name",
    "model": "gpt-x",
    "location": "",
    "enabled": false,
    "key_unavailable": null,
    "latest": {
      "monitor": "m1",
      "model": "gpt-x",
      "started_at": 1764000000000,
      "status": "degraded",
      "kind": "challenge_mismatch",
      "http_status": 200,
      "ttft_ms": 120,
      "latency_ms": 300,
      "ping_ms": 15,
      "message": "fine",
      "answered_model": null,
      "tokens_in": null,
      "tokens_out": null,
      "tokens_reasoning": null,
      "cost_nano": null,
      "tps": null,
      "location": "",
      "due_at": null
    },
    "windows": [
      {
        "window": "24h",
        "checks": 3,
        "operational": 1,
        "degraded": 1,
        "failed": 1,
        "error": 0,
        "availability": 0.6666666666666666,
        "avg_latency_ms": 600.0,
        "p50_latency_ms": 290.31185241490505,
        "p95_latency_ms": 911.1229557173777,
        "avg_ttft_ms": 120.0,
        "tokens_in": 20,
        "tokens_out": 5,
        "cost": 6e-6,
        "p50_tps": 42.50455831206626,
        "p95_tps": 42.50455831206626
      },
      {
        "window": "7d",
        "checks": 0,
        "operational": 0,
        "degraded": 0,
        "failed": 0,
        "error": 0,
        "availability": null,
        "avg_latency_ms": null,
        "p50_latency_ms": null,
        "p95_latency_ms": null,
        "avg_ttft_ms": null,
        "tokens_in": null,
        "tokens_out": null,
        "cost": null,
        "p50_tps": null,
        "p95_tps": null
      }
    ],
    "timeline": "dF"
  },
  {
    "monitor": "fresh",
    "name": "fresh name",
    "model": "gemini-z",
    "location": "",
    "enabled": true,
    "key_unavailable": null,
    "latest": null,
    "windows": [
      {
        "window": "24h",
        "checks": 0,
        "operational": 0,
        "degraded": 0,
        "failed": 0,
        "error": 0,
        "availability": null,
        "avg_latency_ms": null,
        "p50_latency_ms": null,
        "p95_latency_ms": null,
        "avg_ttft_ms": null,
        "tokens_in": null,
        "tokens_out": null,
        "cost": null,
        "p50_tps": null,
        "p95_tps": null
      },
      {
        "window": "7d",
        "checks": 0,
        "operational": 0,
        "degraded": 0,
        "failed": 0,
        "error": 0,
        "availability": null,
        "avg_latency_ms": null,
        "p50_latency_ms": null,
        "p95_latency_ms": null,
        "avg_ttft_ms": null,
        "tokens_in": null,
        "tokens_out": null,
        "cost": null,
        "p50_tps": null,
        "p95_tps": null
      }
    ],
    "timeline": ""
  }
]
"#;

    /// The second row of `status_fixture()` without a timeline, as JSON (and so as "CSV").
    const STATUS_JSON_ONE_ROW_NO_TIMELINE: &str = r#"[
  {
    "monitor": "m1",
    "name": "m1 name",
    "model": "gpt-x",
    "location": "",
    "enabled": false,
    "key_unavailable": null,
    "latest": {
      "monitor": "m1",
      "model": "gpt-x",
      "started_at": 1764000000000,
      "status": "degraded",
      "kind": "challenge_mismatch",
      "http_status": 200,
      "ttft_ms": 120,
      "latency_ms": 300,
      "ping_ms": 15,
      "message": "fine",
      "answered_model": null,
      "tokens_in": null,
      "tokens_out": null,
      "tokens_reasoning": null,
      "cost_nano": null,
      "tps": null,
      "location": "",
      "due_at": null
    },
    "windows": [
      {
        "window": "24h",
        "checks": 3,
        "operational": 1,
        "degraded": 1,
        "failed": 1,
        "error": 0,
        "availability": 0.6666666666666666,
        "avg_latency_ms": 600.0,
        "p50_latency_ms": 290.31185241490505,
        "p95_latency_ms": 911.1229557173777,
        "avg_ttft_ms": 120.0,
        "tokens_in": 20,
        "tokens_out": 5,
        "cost": 6e-6,
        "p50_tps": 42.50455831206626,
        "p95_tps": 42.50455831206626
      },
      {
        "window": "7d",
        "checks": 0,
        "operational": 0,
        "degraded": 0,
        "failed": 0,
        "error": 0,
        "availability": null,
        "avg_latency_ms": null,
        "p50_latency_ms": null,
        "p95_latency_ms": null,
        "avg_ttft_ms": null,
        "tokens_in": null,
        "tokens_out": null,
        "cost": null,
        "p50_tps": null,
        "p95_tps": null
      }
    ]
  }
]
"#;
}
