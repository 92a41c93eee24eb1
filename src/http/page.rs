//! The status page (`/`) and a monitor's page (`/monitors/{id}`): server-rendered HTML with
//! maud (every interpolated string is escaped), readable without JavaScript, light and dark
//! by `prefers-color-scheme`. Status and kind are always written as text beside their colour.
//!
//! Weight at 1,000 monitors: one 90-day row per monitor (the worst model of each day), bar
//! tooltips only on imperfect days once the fleet is large, groups that collapse.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::model::{Counts, DAYS, HOURS, HourLatency, MonitorView, Notice, SeriesView, View};
use super::{AppState, Body, LIVE};
use crate::model::{CheckResult, MonitorId, Status, Timestamp};

const HTML: &str = "text/html; charset=utf-8";
const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");
/// Above this many monitors, only imperfect days carry their own tooltip.
const FULL_TOOLTIPS_UP_TO: usize = 200;
/// Recent results listed per model on a monitor's page.
const RECENT: usize = 20;
/// Seconds between refreshes (the script's partial refresh and the no-script fallback).
const REFRESH_SECS: u32 = 30;

/// `/assets/{file}`: the embedded stylesheet and script.
pub(super) async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    static CSS: std::sync::OnceLock<Body> = std::sync::OnceLock::new();
    static JS: std::sync::OnceLock<Body> = std::sync::OnceLock::new();
    let body = match file.as_str() {
        "style.css" => CSS.get_or_init(|| Body::new(STYLE, "text/css; charset=utf-8")),
        "app.js" => JS.get_or_init(|| Body::new(SCRIPT, "text/javascript; charset=utf-8")),
        _ => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    body.respond(&headers, "public, max-age=3600")
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
        .get_or_init(|| Body::new(render_index(st, view).into_string(), HTML))
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
            &st,
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
    let page = shell(&st, &m.name, render_monitor(&view, &m, &recent));
    Body::new(page.into_string(), HTML).respond(&headers, LIVE)
}

/// The document around a page's content.
fn shell(st: &AppState, heading: &str, content: Markup) -> Markup {
    let title = if heading == st.http.title {
        heading.to_owned()
    } else {
        format!("{heading} · {}", st.http.title)
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
                    h1 { a href="/" { (st.http.title) } }
                    @if let Some(d) = &st.http.description { p.description { (d) } }
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

fn render_index(st: &AppState, view: &View) -> Markup {
    let (class, text, detail) = banner(view);
    let full_tips = view.monitors.len() <= FULL_TOOLTIPS_UP_TO;
    let groups = group_runs(&view.monitors);
    shell(
        st,
        &st.http.title,
        html! {
            section class={"banner b-" (class)} role="status" data-version=(view.version) {
                strong.banner-text { (text) } " " span.banner-detail { (detail) }
            }
            @if view.monitors.is_empty() {
                p { "No monitors in the database yet: start " code { "chanmon run" } "." }
            }
            @for (name, monitors) in groups {
                @let (up, total) = group_counts(monitors);
                details.group id={"g-" (slug(name.unwrap_or("other")))} open {
                    summary {
                        span.group-name { (name.unwrap_or("Other monitors")) }
                        " " span.group-count { (up) "/" (total) " models answering" }
                    }
                    @for m in monitors { (monitor_block(view, m, full_tips)) }
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

fn status_class(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::Operational) => "s-operational",
        Some(Status::Degraded) => "s-degraded",
        Some(Status::Failed) => "s-failed",
        Some(Status::Error) => "s-error",
        None => "s-none",
    }
}

fn status_text(s: Option<Status>) -> &'static str {
    s.map_or("not checked", Status::as_str)
}

fn pill(s: Option<Status>) -> Markup {
    html! { span class={"pill " (status_class(s))} { (status_text(s)) } }
}

fn monitor_block(view: &View, m: &MonitorView, full_tips: bool) -> Markup {
    let worst = m.worst();
    html! {
        article.monitor id={"m-" (m.id)} {
            h2 {
                a href={"/monitors/" (m.id)} { (m.name) }
                " " (pill(worst))
                @if !m.enabled { " " span.muted { "(disabled)" } }
            }
            @match &m.notice {
                Some(Notice::Incident(text)) => p.notice { "Open incident: " (text) },
                Some(Notice::Maintenance(text)) => p.notice { "Maintenance: " (text) },
                None => {},
            }
            div.table-wrap {
                table.models {
                    thead { tr {
                        th scope="col" { "Model" } th scope="col" { "Status" } th scope="col" { "Kind" }
                        th scope="col" { "Last check" } th scope="col" { "TTFT" } th scope="col" { "Latency" }
                        th scope="col" { "Ping" } th scope="col" { "p95 24h" } th scope="col" { "24h" }
                        th scope="col" { "7d" } th scope="col" { "30d" } th scope="col" { "Latency, 24h" }
                    } }
                    tbody { @for s in &m.series { (model_row(view, s)) } }
                }
            }
            (bars(&m.worst_days(), view.day0, full_tips, "worst model per day"))
        }
    }
}

fn model_row(view: &View, s: &SeriesView) -> Markup {
    let st = s.status();
    let latest = s.row.latest.as_ref();
    let kind = if s.row.key_unavailable.is_some() {
        "key_unavailable".to_owned()
    } else {
        latest.map_or("-".to_owned(), |l| l.kind.to_string())
    };
    let p95 = s
        .row
        .windows
        .first()
        .and_then(|(_, w)| w.latency_percentile(0.95));
    html! {
        tr.model-row data-model=(s.row.model) {
            th scope="row" { (s.row.model) @if !s.row.location.is_empty() { " @ " (s.row.location) } }
            td { (pill(st)) }
            td.kind { (kind) }
            td { @if let Some(l) = latest {
                time datetime=(l.started_at.to_rfc3339()) title=(l.started_at.to_rfc3339()) { (ago(view.at, l.started_at)) }
            } @else { "-" } }
            td.num { (ms(latest.and_then(|l| l.ttft_ms))) }
            td.num { (ms(latest.and_then(|l| l.latency_ms))) }
            td.num { (ms(latest.and_then(|l| l.ping_ms))) }
            td.num { (p95.map_or("-".to_owned(), |v| format!("{v:.0} ms"))) }
            @for (_, w) in &s.row.windows { td.num { (pct(w.availability())) } }
            td { (sparkline(&s.hours[s.hours.len().saturating_sub(24)..], 120, 24, "latency, last 24 hours")) }
        }
    }
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

/// 90 day bars, oldest first, with exact figures in tooltips and in the accessible text.
fn bars(days: &[Counts], day0: Timestamp, full_tips: bool, what: &str) -> Markup {
    let mut total = Counts::default();
    let mut imperfect = Vec::new();
    for (i, c) in days.iter().enumerate() {
        for k in 0..4 {
            total.0[k] += c.0[k];
        }
        if c.availability().is_some_and(|a| a < 1.0) {
            imperfect.push(i);
        }
    }
    let mut label = format!("{DAYS} days, {what}: {} overall", pct(total.availability()));
    if imperfect.is_empty() {
        label.push_str("; no day below 100%");
    } else {
        let _ = write!(label, "; {} days below 100%:", imperfect.len());
        for i in imperfect.iter().take(10) {
            let c = &days[*i];
            let _ = write!(
                label,
                " {} {} ({}/{});",
                day_label(day0, *i),
                pct(c.availability()),
                c.up(),
                c.total()
            );
        }
        if imperfect.len() > 10 {
            label.push_str(" …");
        }
    }
    // Large fleets: no tooltip per bar (90 of them per monitor would be most of the page);
    // the figures travel compactly (basis points per day) and the script shows them on hover.
    let compact = (!full_tips).then(|| {
        days.iter()
            .map(|c| {
                c.availability()
                    .map_or("-".to_owned(), |a| format!("{:.0}", a * 10_000.0))
            })
            .collect::<Vec<_>>()
            .join(",")
    });
    html! {
        div.bars role="img" aria-label=(label) data-day0=[compact.as_ref().map(|_| day_label(day0, 0))] data-days=[compact] {
            @for (i, c) in days.iter().enumerate() {
                @if full_tips {
                    i class=(day_class(c)) title=(day_tip(day0, i, c)) {}
                } @else {
                    i class=(day_class(c)) {}
                }
            }
        }
        div.bars-legend { span { (DAYS) " days ago" } span { (pct(total.availability())) } span { "today" } }
    }
}

fn day_tip(day0: Timestamp, i: usize, c: &Counts) -> String {
    match c.availability() {
        None => format!("{}: no checks", day_label(day0, i)),
        Some(a) => format!(
            "{}: {:.2}% ({} of {} checks answered)",
            day_label(day0, i),
            a * 100.0,
            c.up(),
            c.total()
        ),
    }
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
                @if let Some(k) = &s.row.key_unavailable { p.muted { "Key: " (k) } }
                @if let Some(t) = &s.row.tracked {
                    p.muted { (t.status.as_str()) " since " (t.since.to_rfc3339()) " (" (t.consecutive) " in a row)" }
                }
                (windows_table(s))
                (bars(&s.days, view.day0, true, "this model"))
                div.charts {
                    (chart(&s.hours[s.hours.len().saturating_sub(24)..], "Latency, last 24 hours"))
                    (chart(&s.hours[s.hours.len().saturating_sub(HOURS)..], "Latency, last 7 days"))
                }
                (recent_table(recent.get(i).map(Vec::as_slice).unwrap_or(&[]), view.show_details))
            }
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
