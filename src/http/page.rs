//! The status page (`/`) and a monitor's page (`/monitors/{id}`): server-rendered HTML with
//! maud (every interpolated string is escaped), readable without JavaScript, light and dark
//! by `prefers-color-scheme`. Status and kind are always written as text beside their colour.
//!
//! Weight at 1,000 monitors (a few hundred KiB at most): the overview shows one row per
//! monitor — its worst status, a compact line per model (figures, no chart) and one 90-day bar
//! of the worst model per day, drawn as runs of days of one colour (one element per run, its
//! width a `wN` class, since the CSP forbids style attributes) — inside groups that collapse.
//! Per-model bars and charts are on `/monitors/{id}`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::model::{Counts, DAYS, HOURS, HourLatency, MonitorView, Notice, SeriesView, View};
use super::{AppState, Body, LIVE};
use crate::config::HttpConfig;
use crate::model::{CheckResult, MonitorId, Status, Timestamp};

const HTML: &str = "text/html; charset=utf-8";
const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");
/// Fleets up to this many monitors get the overview in full: a 24-hour sparkline on every
/// model line and one bar element (exact figures) per imperfect day. Above it a sparkline
/// costs ~250 bytes a model and per-day elements up to 90 × 60 bytes a monitor, several times
/// the ~300 bytes a monitor the page can afford at 1,000; so larger fleets get no sparkline on
/// the overview (the monitor's page has its charts) and one bar element per run of days of the
/// same colour, its figure exact for the run (per-day figures on the monitor's page).
const DETAILED_UP_TO: usize = 20;
/// Recent results listed per model on a monitor's page.
const RECENT: usize = 20;
/// Seconds between refreshes (the script's partial refresh and the no-script fallback).
const REFRESH_SECS: u32 = 30;

/// `/assets/{file}`: the embedded stylesheet and script.
pub(super) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    static CSS: std::sync::OnceLock<Body> = std::sync::OnceLock::new();
    static JS: std::sync::OnceLock<Body> = std::sync::OnceLock::new();
    let body = match file.as_str() {
        "style.css" => CSS.get_or_init(|| Body::new(stylesheet(), "text/css; charset=utf-8")),
        "app.js" => JS.get_or_init(|| Body::new(SCRIPT, "text/javascript; charset=utf-8")),
        _ => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    body.respond(&headers, "public, max-age=3600")
}

/// The embedded stylesheet plus the width classes of day runs (`.w1` … `.w90`: a run of N
/// days grows N times as wide as one day).
fn stylesheet() -> String {
    let mut css = String::from(STYLE);
    for n in 1..=DAYS {
        let _ = writeln!(css, ".bars .w{n} {{ flex-grow: {n}; }}");
    }
    css
}

/// `GET /`.
pub(super) async fn index(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    st.asked(super::Route::Page);
    let view = st.model.view();
    warm(&st, &view).respond(&headers, LIVE)
}

/// The page of `view`, rendered once.
pub(super) fn warm<'v>(st: &AppState, view: &'v View) -> &'v Body {
    view.cache
        .page
        .get_or_init(|| Body::new(render_index(&st.http, view).into_string(), HTML))
}

/// `GET /monitors/{id}`.
pub(super) async fn monitor(
    State(st): State<Arc<AppState>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let view = st.model.view();
    let Some(m) = MonitorId::parse(&raw)
        .ok()
        .and_then(|id| view.monitor(&id).cloned())
    else {
        let page = shell(
            &st.http,
            "Not found",
            html! {
                p { "No monitor named " code { (raw) } ". " a href="/" { "Back to the status page" } }
            },
        );
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, HTML)],
            page.into_string(),
        )
            .into_response();
    };
    let id = m.id.clone();
    // Each section lists its own series' results: a model probed from two places has two.
    let series: Vec<(String, String)> = m
        .series
        .iter()
        .map(|s| (s.row.model.clone(), s.row.location.clone()))
        .collect();
    let recent = st
        .read(move |store| {
            series
                .iter()
                .map(|(model, location)| {
                    crate::store::series_timeline(store, &id, model, location, RECENT)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap_or_default();
    let show = view.show_details;
    let recent: Vec<Vec<CheckResult>> = recent
        .into_iter()
        .map(|rows| {
            rows.into_iter()
                .rev()
                .map(|mut r| {
                    if !show {
                        super::model::hide_result(&mut r);
                    }
                    r
                })
                .collect()
        })
        .collect();
    let page = shell(&st.http, &m.name, render_monitor(&view, &m, &recent));
    Body::new(page.into_string(), HTML).respond(&headers, LIVE)
}

/// The document around a page's content.
fn shell(http: &HttpConfig, heading: &str, content: Markup) -> Markup {
    let title = if heading == http.title {
        heading.to_owned()
    } else {
        format!("{heading} · {}", http.title)
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                link rel="icon" href="data:,";
                title { (title) }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
                noscript { meta http-equiv="refresh" content=(REFRESH_SECS); }
            }
            body {
                header.top {
                    h1 { a href="/" { (http.title) } }
                    @if let Some(d) = &http.description { p.description { (d) } }
                }
                main #live data-refresh=(REFRESH_SECS) { (content) }
                footer {
                    "chanmon " (env!("CARGO_PKG_VERSION"))
                    " · " a href="/api/v1/status" { "JSON" }
                    " · " a href="/metrics" { "metrics" }
                }
            }
        }
    }
}

/// What the banner says.
fn banner(view: &View) -> (&'static str, &'static str, String) {
    let (mut checked, mut down, mut degraded) = (0usize, 0usize, 0usize);
    for m in &view.monitors {
        for s in &m.series {
            match s.status() {
                Some(Status::Operational) => checked += 1,
                Some(Status::Degraded) => {
                    checked += 1;
                    degraded += 1;
                }
                Some(Status::Failed | Status::Error) => {
                    checked += 1;
                    down += 1;
                }
                None => {}
            }
        }
    }
    let detail = format!(
        "{checked} model{} checked; {down} failing, {degraded} degraded · as of {}",
        if checked == 1 { "" } else { "s" },
        clock(view.at)
    );
    if checked == 0 {
        ("none", "No checks recorded yet", detail)
    } else if down * 2 >= checked {
        ("major", "Major outage", detail)
    } else if down > 0 || degraded > 0 {
        ("partial", "Partial outage", detail)
    } else {
        ("ok", "All systems operational", detail)
    }
}

fn render_index(http: &HttpConfig, view: &View) -> Markup {
    let (class, text, detail) = banner(view);
    let detailed = view.monitors.len() <= DETAILED_UP_TO;
    let groups = group_runs(&view.monitors);
    shell(
        http,
        &http.title,
        html! {
            section class={"banner b-" (class)} role="status" data-version=(view.version) {
                strong.banner-text { (text) } " " span.banner-detail { (detail) }
            }
            @if view.monitors.is_empty() {
                p { "No monitors in the database yet: start " code { "chanmon run" } "." }
            } @else {
                p.key {
                    "Per monitor its worst status; per model its status unless operational, "
                    @if detailed { "last check, " }
                    "TTFT / latency of the latest check / p95 latency over 24 hours (ms) and "
                    "availability over 24 hours; and the last "
                    (DAYS) " days, oldest first, each day coloured by its worst model (grey: no "
                    "checks). Each model's own days, charts and windows are on the monitor's page."
                }
            }
            @for (name, monitors) in groups {
                @let (up, total) = group_counts(monitors);
                details.group id={"g-" (slug(name.unwrap_or("other")))} open {
                    summary {
                        span.group-name { (name.unwrap_or("Other monitors")) }
                        " " span.group-count { (up) "/" (total) " models answering" }
                    }
                    @for m in monitors { (monitor_block(view, m, detailed)) }
                }
            }
        },
    )
}

/// Consecutive monitors of one group (the view is sorted by group).
fn group_runs(monitors: &[Arc<MonitorView>]) -> Vec<(Option<&str>, &[Arc<MonitorView>])> {
    let mut out: Vec<(Option<&str>, &[Arc<MonitorView>])> = Vec::new();
    let mut start = 0;
    for i in 1..=monitors.len() {
        if i == monitors.len() || monitors[i].group != monitors[start].group {
            out.push((monitors[start].group.as_deref(), &monitors[start..i]));
            start = i;
        }
    }
    out
}

fn group_counts(monitors: &[Arc<MonitorView>]) -> (usize, usize) {
    let series = monitors.iter().flat_map(|m| m.series.iter());
    let total = series.clone().count();
    let up = series
        .filter(|s| s.status().is_some_and(Status::is_up))
        .count();
    (up, total)
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Short class names: a status is written up to three times per monitor on the overview.
fn status_class(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::Operational) => "s-ok",
        Some(Status::Degraded) => "s-deg",
        Some(Status::Failed) => "s-fail",
        Some(Status::Error) => "s-err",
        None => "s-none",
    }
}

fn status_text(s: Option<Status>) -> &'static str {
    s.map_or("not checked", Status::as_str)
}

/// A status as a word in a coloured outline (the stylesheet draws every `b.s-…` so).
fn pill(s: Option<Status>) -> Markup {
    html! { b class=(status_class(s)) { (status_text(s)) } }
}

/// One monitor on the overview: its worst status, a compact line per model, one bar of the
/// worst model per day. Every byte here is paid a thousand times on a large fleet.
fn monitor_block(view: &View, m: &MonitorView, detailed: bool) -> Markup {
    // No wrapper element: the heading starts the monitor (an <article> around each would be
    // 19 KiB of a 1,000-monitor page); the stylesheet draws the separation.
    html! {
        h2 {
            // Relative (the page is `/`): a byte a monitor.
            a href={"monitors/" (m.id)} { (m.name) }
            " " (pill(m.worst()))
            @if let Some(k) = worst_kind(m) { " " span.kind { (k) } }
            @if !m.enabled { " " span.muted { "(disabled)" } }
        }
        @match &m.notice {
            Some(Notice::Incident(text)) => p.notice { "Open incident: " (text) },
            Some(Notice::Maintenance(text)) => p.notice { "Maintenance: " (text) },
            None => {},
        }
        ul { @for s in &m.series { (model_line(view, s, detailed)) } }
        (bars(&m.worst_days(), view.day0, detailed))
    }
}

/// The reason of a monitor's worst model, when it is not simply "ok".
fn worst_kind(m: &MonitorView) -> Option<String> {
    let worst = m.worst()?;
    let s = m.series.iter().find(|s| s.status() == Some(worst))?;
    kind_text(s).filter(|k| k != "ok")
}

fn kind_text(s: &SeriesView) -> Option<String> {
    if s.row.key_unavailable.is_some() {
        return Some("key_unavailable".to_owned());
    }
    s.row.latest.as_ref().map(|l| l.kind.to_string())
}

/// A model on the overview, on one line: its status and kind as text and colour unless it is
/// operational (the key says so; when all are, the monitor's heading says it once: the word
/// is not repeated on most of 2,000 lines, and the eye finds the problems), TTFT / latency of the latest check /
/// p95 over 24 hours, availability over 24 hours (the page's key says so once). Small fleets
/// also get the last check's age and a 24-hour sparkline; all of it is on the monitor's page.
fn model_line(view: &View, s: &SeriesView, detailed: bool) -> Markup {
    let st = s.status();
    let latest = s.row.latest.as_ref();
    let day = s.row.windows.first().map(|(_, w)| w);
    let p95 = day.and_then(|w| w.latency_percentile(0.95));
    let figures = format!(
        "{}/{}/{} ms",
        num(latest.and_then(|l| l.ttft_ms).map(f64::from)),
        num(latest.and_then(|l| l.latency_ms).map(f64::from)),
        num(p95)
    );
    html! {
        li {
            (s.row.model) @if !s.row.location.is_empty() { " @ " (s.row.location) }
            @if st != Some(Status::Operational) {
                " " (pill(st))
            }
            @if let Some(k) = kind_text(s).filter(|k| k != "ok") { " " (k) }
            @if detailed { @if let Some(l) = latest { ", " (ago(view.at, l.started_at)) } }
            ": " (figures) ", " (pct(day.and_then(|w| w.availability())))
            @if detailed {
                " " (sparkline(&s.hours[s.hours.len().saturating_sub(24)..], 120, 24, "latency, last 24 hours"))
            }
        }
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.0}"))
}

fn ms(v: Option<u32>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v} ms"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |a| format!("{:.2}%", a * 100.0))
}

fn ago(now: Timestamp, then: Timestamp) -> String {
    let s = (now.millis() - then.millis()).max(0) / 1000;
    match s {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// `HH:MM:SS UTC`.
fn clock(t: Timestamp) -> String {
    let rfc = t.to_rfc3339();
    let time = rfc.get(11..19).unwrap_or(&rfc);
    format!("{time} UTC")
}

fn day_label(day0: Timestamp, i: usize) -> String {
    let t = Timestamp(day0.millis() + i as i64 * 86_400_000).to_rfc3339();
    t.get(..10).unwrap_or(&t).to_owned()
}

fn day_class(c: &Counts) -> &'static str {
    match c.availability() {
        None => "d-none",
        Some(a) if a >= 1.0 => "d-100",
        Some(a) if a >= 0.99 => "d-99",
        Some(a) if a >= 0.95 => "d-95",
        Some(_) => "d-low",
    }
}

/// Consecutive days drawn as one bar element.
struct Run {
    first: usize,
    len: usize,
    counts: Counts,
}

/// Runs of days with the same colour. `per_day` keeps every imperfect day apart (its exact
/// figures in its own tooltip); otherwise only the colour separates runs.
fn runs(days: &[Counts], per_day: bool) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (i, c) in days.iter().enumerate() {
        let class = day_class(c);
        let merge = !per_day || matches!(class, "d-100" | "d-none");
        match out.last_mut() {
            Some(r) if merge && day_class(&r.counts) == class => {
                r.len += 1;
                for k in 0..4 {
                    r.counts.0[k] += c.0[k];
                }
            }
            _ => out.push(Run {
                first: i,
                len: 1,
                counts: *c,
            }),
        }
    }
    out
}

/// 90 days, oldest first: one element per run, as wide as its days (`wN`), its exact figures
/// in the tooltip and the accessible name (role `img`, named by its title). `detailed` (a
/// small fleet, a monitor's page) keeps imperfect days apart, with their check counts, and a
/// legend under the bar.
fn bars(days: &[Counts], day0: Timestamp, detailed: bool) -> Markup {
    let runs = runs(days, detailed);
    let total = days.iter().fold(Counts::default(), |mut t, c| {
        for k in 0..4 {
            t.0[k] += c.0[k];
        }
        t
    });
    html! {
        div.bars {
            @for r in &runs {
                @if r.counts.total() == 0 && !detailed {
                    // Grey without words on a large fleet: the key says grey is no checks,
                    // and every run with checks names its dates.
                    i class={"w" (r.len)} {}
                } @else {
                    i class=(run_class(r)) role="img" title=(run_tip(day0, r, detailed)) {}
                }
            }
        }
        @if detailed {
            div.bars-legend { span { (DAYS) " days ago" } span { (pct(total.availability())) } span { "today" } }
        }
    }
}

/// Its colour and width. Days without checks are the bar's default colour (no class): most
/// of a young fleet's bars is such a run.
fn run_class(r: &Run) -> String {
    match day_class(&r.counts) {
        "d-none" => format!("w{}", r.len),
        class => format!("{class} w{}", r.len),
    }
}

fn run_tip(day0: Timestamp, r: &Run, counts: bool) -> String {
    let mut when = short_day(day0, r.first);
    if r.len > 1 {
        when.push('–');
        when.push_str(&short_day(day0, r.first + r.len - 1));
    }
    match r.counts.availability() {
        None => format!("{when}: no checks"),
        Some(a) if counts => format!(
            "{when}: {:.2}% ({} of {} checks answered)",
            a * 100.0,
            r.counts.up(),
            r.counts.total()
        ),
        Some(a) => format!("{when}: {:.2}%", a * 100.0),
    }
}

/// `Dec 2`: short enough to repeat on every run of a large fleet; within 90 days the year is
/// never in doubt.
fn short_day(day0: Timestamp, i: usize) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = day_label(day0, i);
    let month: usize = iso.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let day: u32 = iso.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    format!("{} {day}", MONTHS[month.clamp(1, 12) - 1])
}

/// A line of hourly average latency; hours without answers break the line.
fn sparkline(hours: &[HourLatency], w: u32, h: u32, what: &str) -> Markup {
    let vals: Vec<Option<f64>> = hours.iter().map(HourLatency::avg).collect();
    let max = vals.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
    let min = vals.iter().flatten().fold(f64::INFINITY, |a, b| a.min(*b));
    let label = if max > 0.0 {
        format!("{what}: {min:.0} to {max:.0} ms (hourly average)")
    } else {
        format!("{what}: no answers")
    };
    let n = vals.len().max(2) as f64 - 1.0;
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, v) in vals.iter().enumerate() {
        match v {
            Some(v) if max > 0.0 => {
                let x = i as f64 * f64::from(w) / n;
                let y = f64::from(h) - 2.0 - (v / max) * (f64::from(h) - 4.0);
                let _ = write!(cur, "{x:.1},{y:.1} ");
            }
            _ => {
                if !cur.is_empty() {
                    lines.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    html! {
        svg.spark viewBox={"0 0 " (w) " " (h)} width=(w) height=(h) role="img" aria-label=(label) {
            title { (label) }
            @for l in &lines {
                @if l.matches(' ').count() == 1 {
                    @let (x, y) = l.trim().split_once(',').unwrap_or(("0", "0"));
                    circle cx=(x) cy=(y) r="1.5" {}
                } @else {
                    polyline points=(l.trim()) {}
                }
            }
        }
    }
}

/// A larger chart with a scale, for a monitor's page.
fn chart(hours: &[HourLatency], what: &str) -> Markup {
    let max = hours
        .iter()
        .filter_map(HourLatency::avg)
        .fold(0.0_f64, f64::max);
    html! {
        figure.chart {
            figcaption { (what) @if max > 0.0 { " · max " (format!("{max:.0}")) " ms" } }
            (sparkline(hours, 600, 120, what))
        }
    }
}

fn render_monitor(view: &View, m: &MonitorView, recent: &[Vec<CheckResult>]) -> Markup {
    let worst = m.worst();
    html! {
        p { a href="/" { "← all monitors" } }
        section.monitor-head {
            h2 { (m.name) " " (pill(worst)) }
            dl.facts {
                dt { "Id" } dd { code { (m.id) } }
                @if let Some(g) = &m.group { dt { "Group" } dd { (g) } }
                @if !m.provider.is_empty() { dt { "Provider" } dd { (m.provider) } }
                @if let Some(e) = &m.endpoint { dt { "Endpoint" } dd { code { (e) } } }
                @if !m.enabled { dt { "Enabled" } dd { "no (removed from the config)" } }
            }
        }
        @for (i, s) in m.series.iter().enumerate() {
            section.model id={"model-" (slug(&s.row.model)) (location_anchor(&s.row.location))} {
                h3 { (s.row.model) @if !s.row.location.is_empty() { " from " (s.row.location) } " " (pill(s.status())) }
                @if let Some(l) = s.row.locations { p.combined { (s.row.model) ": " (l.text()) } }
                (latest_line(view, s))
                @if let Some(k) = &s.row.key_unavailable { p.muted { "Key: " (k) } }
                @if let Some(t) = &s.row.tracked {
                    p.muted { (t.status.as_str()) " since " (t.since.to_rfc3339()) " (" (t.consecutive) " in a row)" }
                }
                (windows_table(s))
                (bars(&s.days, view.day0, true))
                div.charts {
                    (chart(&s.hours[s.hours.len().saturating_sub(24)..], "Latency, last 24 hours"))
                    (chart(&s.hours[s.hours.len().saturating_sub(HOURS)..], "Latency, last 7 days"))
                }
                (recent_table(recent.get(i).map(Vec::as_slice).unwrap_or(&[]), view.show_details))
            }
        }
    }
}

/// The latest check in full (the overview's line is shorter): kind, age, TTFT, latency, ping.
fn latest_line(view: &View, s: &SeriesView) -> Markup {
    let Some(l) = s.row.latest.as_ref() else {
        return html! { p.muted { "Not checked yet." } };
    };
    html! {
        p.latest {
            "Latest check: " span.kind { (kind_text(s).unwrap_or_default()) } " · "
            time datetime=(l.started_at.to_rfc3339()) title=(l.started_at.to_rfc3339()) { (ago(view.at, l.started_at)) }
            " · TTFT " (ms(l.ttft_ms)) " · latency " (ms(l.latency_ms)) " · ping " (ms(l.ping_ms))
        }
    }
}

/// `-at-<location>` after a model's anchor on a monitor's page (nothing for no location).
fn location_anchor(location: &str) -> String {
    if location.is_empty() {
        String::new()
    } else {
        format!("-at-{}", slug(location))
    }
}

fn windows_table(s: &SeriesView) -> Markup {
    html! {
        div.table-wrap { table.windows {
            thead { tr {
                th scope="col" { "Window" } th scope="col" { "Checks" } th scope="col" { "Availability" }
                th scope="col" { "p50" } th scope="col" { "p95" } th scope="col" { "Avg TTFT" }
            } }
            tbody { @for (d, w) in &s.row.windows { tr {
                th scope="row" { (super::report_window(*d)) }
                td.num { (w.total()) }
                td.num { (pct(w.availability())) }
                td.num { (w.latency_percentile(0.5).map_or("-".into(), |v| format!("{v:.0} ms"))) }
                td.num { (w.latency_percentile(0.95).map_or("-".into(), |v| format!("{v:.0} ms"))) }
                td.num { (w.avg_ttft_ms().map_or("-".into(), |v| format!("{v:.0} ms"))) }
            } } }
        } }
    }
}

fn recent_table(rows: &[CheckResult], show: bool) -> Markup {
    html! {
        h4 { "Recent results" }
        @if rows.is_empty() { p.muted { "No results yet." } } @else {
            div.table-wrap { table.recent {
                thead { tr {
                    th scope="col" { "Time" } th scope="col" { "Status" } th scope="col" { "Kind" }
                    th scope="col" { "HTTP" } th scope="col" { "TTFT" } th scope="col" { "Latency" }
                    @if show { th scope="col" { "Message" } }
                } }
                tbody { @for r in rows { tr {
                    td { time datetime=(r.started_at.to_rfc3339()) { (r.started_at.to_rfc3339()) } }
                    td { (pill(Some(r.status))) }
                    td.kind { (r.kind.as_str()) }
                    td.num { (r.http_status.map_or("-".into(), |c| c.to_string())) }
                    td.num { (ms(r.ttft_ms)) }
                    td.num { (ms(r.latency_ms)) }
                    @if show { td.message { (r.message) } }
                } } }
            } }
        }
        (PreEscaped(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::store::{StatusRow, WindowStats};

    const DAY: i64 = 86_400_000;

    fn http() -> HttpConfig {
        HttpConfig {
            listen: None,
            title: "Fleet".into(),
            description: None,
            show_details: false,
            token: None,
            public: false,
        }
    }

    /// A series like the bench's: checked every minute for the last `history` days at ~97 %,
    /// with `bad` one day worse (which one depends on `seed`); the latest check `kind`, a week
    /// of hourly latency points.
    fn series(
        id: &MonitorId,
        model: &str,
        kind: Kind,
        history: usize,
        bad: Option<usize>,
    ) -> SeriesView {
        let mut window = WindowStats::default();
        for i in 0..1440u32 {
            let k = if i % 33 == 0 { Kind::Timeout } else { Kind::Ok };
            window
                .rollup
                .add(k.status(), k, Some(400 + i % 900), Some(150 + i % 300));
        }
        let days = (0..DAYS)
            .map(|d| match DAYS - d {
                age if age > history => Counts::default(),
                age if bad.is_some_and(|b| age == 1 + b % history) => Counts([1300, 0, 140, 0]),
                _ => Counts([1398, 0, 42, 0]),
            })
            .collect();
        let hours = (0..HOURS)
            .map(|h| HourLatency {
                sum: 60 * (500 + (h as u64 * 37) % 700),
                n: 60,
            })
            .collect();
        let now = Timestamp(1_764_633_600_000);
        SeriesView {
            row: StatusRow {
                monitor: id.clone(),
                name: String::new(),
                model: model.into(),
                location: String::new(),
                locations: None,
                enabled: true,
                key_unavailable: None,
                latest: Some(CheckResult {
                    latency_ms: Some(1234),
                    ttft_ms: Some(321),
                    ..CheckResult::error(id.clone(), model.into(), now, kind, String::new())
                }),
                tracked: None,
                windows: super::super::model::WINDOWS
                    .iter()
                    .map(|d| (*d, window.clone()))
                    .collect(),
                official: None,
            },
            days,
            hours,
        }
    }

    /// `n` monitors × 2 models in 20 groups; one monitor in 50 has a failing model; with
    /// `bad_days` each model has one worse day (on different days: up to five runs a bar).
    fn fleet(n: usize, history: usize, bad_days: bool) -> View {
        let at = Timestamp(1_764_633_600_000 + 90_000);
        let mut monitors: Vec<Arc<MonitorView>> = (0..n)
            .map(|i| {
                let id = MonitorId::parse(&format!("m{i:04}")).unwrap();
                let bad = if i % 50 == 7 { Kind::Timeout } else { Kind::Ok };
                Arc::new(MonitorView {
                    name: format!("Channel {i}"),
                    group: Some(format!("group {:02}", i % 20)),
                    provider: "openai".into(),
                    endpoint: None,
                    enabled: true,
                    series: vec![
                        series(&id, "gpt-4o-mini", Kind::Ok, history, bad_days.then_some(i)),
                        series(&id, "gpt-4.1-mini", bad, history, bad_days.then_some(i + 3)),
                    ],
                    notice: None,
                    id,
                })
            })
            .collect();
        monitors.sort_by(|a, b| (&a.group, &a.id).cmp(&(&b.group, &b.id)));
        let index = monitors
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        View {
            version: 1,
            at,
            day0: Timestamp((at.millis() / DAY - (DAYS as i64 - 1)) * DAY),
            hour0: Timestamp(at.millis() - HOURS as i64 * 3_600_000),
            monitors,
            index: Arc::new(index),
            show_details: false,
            cache: super::super::model::Cached::default(),
        }
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    /// Days covered by each bar on the page (the sum of its runs' `wN`).
    fn bar_widths(html: &str) -> Vec<usize> {
        html.split("<div class=\"bars\">")
            .skip(1)
            .map(|bar| {
                let bar = &bar[..bar.find("</div>").unwrap_or(bar.len())];
                bar.split("<i class=\"")
                    .skip(1)
                    .map(|run| {
                        let classes = &run[..run.find('"').unwrap()];
                        let w = classes.split(' ').find_map(|c| c.strip_prefix('w'));
                        w.unwrap().parse::<usize>().unwrap()
                    })
                    .sum()
            })
            .collect()
    }

    /// The bench's fleet (`examples/http_bench.rs`: ~97 % every day, so one run of checked days
    /// per bar) fits in 300 KiB; one worse day per model (up to five runs of checked days a
    /// bar) in 400 KiB over 3 days and 560 KiB over 30. Each change of colour in a bar costs
    /// ~55 bytes: a fleet whose every bar changed colour every day would weigh ~5 KiB a monitor.
    #[test]
    fn a_thousand_monitors_fit_in_a_few_hundred_kib() {
        let cases = [
            (3, false, 300),
            (90, false, 300),
            (3, true, 400),
            (30, true, 560),
        ];
        for (history, bad_days, kib) in cases {
            let view = fleet(1000, history, bad_days);
            let html = render_index(&http(), &view).into_string();
            assert!(
                html.len() <= kib * 1024,
                "{history} days of history, bad days {bad_days}: {} KiB",
                html.len() / 1024
            );
            for m in &view.monitors {
                let link = format!("<a href=\"monitors/{}\">", m.id);
                assert_eq!(count(&html, &link), 1, "{} once", m.id);
            }
            assert_eq!(count(&html, "<h2>"), 1000);
            assert_eq!(count(&html, "<li>"), 2000, "a line per model");
            assert_eq!(bar_widths(&html), vec![DAYS; 1000], "90 days per bar");
            assert_eq!(count(&html, "<svg"), 0, "no sparkline on a large overview");
            assert_eq!(count(&html, "<details class=\"group\""), 20);
            // 20 monitors with a failing model: the monitor and the model say so in text.
            assert_eq!(count(&html, ">error</b> <span class=\"kind\">timeout<"), 20);
            assert_eq!(count(&html, ">error</b> timeout"), 20);
        }
    }

    #[test]
    fn a_small_fleet_keeps_per_day_figures_and_sparklines() {
        let view = fleet(3, 30, true);
        let html = render_index(&http(), &view).into_string();
        assert_eq!(count(&html, "<svg class=\"spark\""), 6, "one per model");
        assert_eq!(bar_widths(&html), vec![DAYS; 3]);
        // 60 days without checks in one run, then one element per imperfect day with its
        // counts: each monitor's two models have their bad day on different days.
        assert_eq!(count(&html, "<i class=\"w60\" role=\"img\""), 3);
        assert_eq!(count(&html, "<i class=\"d-95 w1\""), 3 * 28);
        assert_eq!(count(&html, "<i class=\"d-low w1\""), 3 * 2);
        assert_eq!(
            count(&html, ": 97.08% (1398 of 1440 checks answered)\""),
            3 * 28
        );
        assert_eq!(count(&html, "title=\"Sep 4–Nov 2: no checks\""), 3);
        assert!(html.contains("title=\"Dec 2: "), "today is the last day");
    }

    #[test]
    fn runs_merge_by_colour_and_keep_exact_figures() {
        let days = [
            Counts::default(),
            Counts::default(),
            Counts([10, 0, 0, 0]),
            Counts([20, 0, 0, 0]),
            Counts([97, 0, 3, 0]),
            Counts([96, 0, 4, 0]),
        ];
        let compact: Vec<(usize, usize, Counts)> = runs(&days, false)
            .into_iter()
            .map(|r| (r.first, r.len, r.counts))
            .collect();
        assert_eq!(
            compact,
            vec![
                (0, 2, Counts::default()),
                (2, 2, Counts([30, 0, 0, 0])),
                (4, 2, Counts([193, 0, 7, 0])),
            ]
        );
        // Per day: imperfect days stay apart, perfect and empty ones still merge.
        assert_eq!(runs(&days, true).len(), 4);
        let day0 = Timestamp(1_764_633_600_000 - 5 * DAY);
        let r = &runs(&days, false)[2];
        assert_eq!(run_tip(day0, r, false), "Dec 1–Dec 2: 96.50%");
        assert_eq!(
            run_tip(day0, r, true),
            "Dec 1–Dec 2: 96.50% (193 of 200 checks answered)"
        );
    }

    #[test]
    fn the_stylesheet_has_a_width_per_run_length() {
        let css = stylesheet();
        assert!(css.contains(".bars .w1 { flex-grow: 1; }"));
        assert!(css.contains(".bars .w90 { flex-grow: 90; }"));
        assert!(!css.contains(".w91"));
        // Each colour must outrank `.bars i`, which draws days without checks.
        for class in ["d-100", "d-99", "d-95", "d-low"] {
            assert!(css.contains(&format!(".bars .{class} {{")), "{class}");
        }
    }
}
