//! Rendering results and status for people (aligned tables, optional colour) and for scripts
//! (JSON, CSV). No I/O and no SQL: callers pass rows in and print the string.

mod table;

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::model::{CheckResult, Status, Timestamp};
use crate::store::StatusRow;

use table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
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
pub fn render_results(rows: &[CheckResult], format: Format, color: bool) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into()) + "\n",
        Format::Csv => {
            let mut out = String::from(
                "started_at,monitor,model,status,kind,http_status,ttft_ms,latency_ms,ping_ms,message\n",
            );
            for r in rows {
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
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            out
        }
        Format::Table => {
            if rows.is_empty() {
                return "no results\n".to_owned();
            }
            let mut t = Table::new(&[
                "TIME", "MONITOR", "MODEL", "STATUS", "KIND", "HTTP", "TTFT", "LATENCY", "PING",
                "MESSAGE",
            ]);
            for r in rows {
                t.row(vec![
                    (r.started_at.to_rfc3339(), None),
                    (r.monitor.to_string(), None),
                    (r.model.clone(), None),
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
            }
            t.render(color)
        }
    }
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

fn window_label(d: Duration) -> String {
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
    enabled: bool,
    key_unavailable: Option<&'a str>,
    latest: Option<&'a CheckResult>,
    windows: Vec<WindowJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<String>,
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
}

/// `chanmon status`. `timelines` (same order as `rows`) are given for a single monitor.
pub fn render_status(
    rows: &[StatusRow],
    timelines: Option<&[Vec<CheckResult>]>,
    format: Format,
    color: bool,
    now: Timestamp,
) -> String {
    let timeline_text = |i: usize| -> Option<String> {
        timelines.and_then(|t| t.get(i)).map(|results| {
            results
                .iter()
                .map(|r| r.status.letter().to_string())
                .collect::<String>()
        })
    };
    match format {
        Format::Json | Format::Csv => {
            let out: Vec<StatusJson> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| StatusJson {
                    monitor: r.monitor.as_str(),
                    name: &r.name,
                    model: &r.model,
                    enabled: r.enabled,
                    key_unavailable: r.key_unavailable.as_deref(),
                    latest: r.latest.as_ref(),
                    windows: r
                        .windows
                        .iter()
                        .map(|(d, w)| WindowJson {
                            window: window_label(*d),
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
                        })
                        .collect(),
                    timeline: timeline_text(i),
                })
                .collect();
            serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into()) + "\n"
        }
        Format::Table => {
            if rows.is_empty() {
                return "no monitors in the database yet\n".to_owned();
            }
            let mut head = vec![
                "MONITOR", "MODEL", "STATUS", "KIND", "LAST", "TTFT", "LATENCY", "PING",
            ];
            let labels: Vec<String> = rows[0]
                .windows
                .iter()
                .map(|(d, _)| format!("UP {}", window_label(*d)))
                .collect();
            head.extend(labels.iter().map(String::as_str));
            head.push("P95");
            let mut t = Table::new(&head);
            for r in rows {
                let (status, kind, last, ttft, lat, ping, st) =
                    match (&r.key_unavailable, &r.latest) {
                        (Some(_), latest) => (
                            "error".to_owned(),
                            "key_unavailable".to_owned(),
                            latest
                                .as_ref()
                                .map_or("-".into(), |l| age(now, l.started_at)),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                            Some(Status::Error),
                        ),
                        (None, Some(l)) => (
                            l.status.to_string(),
                            l.kind.to_string(),
                            age(now, l.started_at),
                            ms(l.ttft_ms),
                            ms(l.latency_ms),
                            ms(l.ping_ms),
                            Some(l.status),
                        ),
                        (None, None) => (
                            "never checked".into(),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                            None,
                        ),
                    };
                let name = if r.enabled {
                    r.monitor.to_string()
                } else {
                    format!("{} (disabled)", r.monitor)
                };
                let mut cells = vec![
                    (name, None),
                    (r.model.clone(), None),
                    (status, st),
                    (kind, None),
                    (last, None),
                    (ttft, None),
                    (lat, None),
                    (ping, None),
                ];
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
                t.row(cells);
            }
            let mut out = t.render(color);
            if let Some(tl) = timelines {
                out.push('\n');
                for (r, results) in rows.iter().zip(tl) {
                    let bar: String = results
                        .iter()
                        .map(|x| {
                            if color {
                                paint("█", x.status, true)
                            } else {
                                x.status.letter().to_string()
                            }
                        })
                        .collect();
                    let _ = writeln!(
                        out,
                        "{} {}  {}",
                        r.monitor,
                        r.model,
                        if bar.is_empty() {
                            "(no results)".into()
                        } else {
                            bar
                        }
                    );
                }
                if !color {
                    let _ = writeln!(
                        out,
                        "(oldest → newest; o operational, d degraded, F failed, E error)"
                    );
                }
            }
            out
        }
    }
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
        }
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let out = render_results(&[r("a", "said \"hi\", then\nleft")], Format::Csv, false);
        let line = out.lines().nth(1).unwrap();
        assert!(line.ends_with("\"said \"\"hi\"\", then"), "{out}");
        assert!(out.starts_with("started_at,monitor,model"));
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
}
