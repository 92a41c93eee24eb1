//! Shields-style SVG badges: `/badge/{id}.svg` (the monitor's worst current status) and
//! `/badge/{id}/uptime/{window}.svg` (availability over 24h, 7d or 30d, worst model). Text is
//! escaped (maud); widths come from a per-character estimate, as shields does without fonts.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::model::WINDOWS;
use super::{AppState, Body, LIVE};
use crate::model::{MonitorId, Status};

const SVG: &str = "image/svg+xml; charset=utf-8";

fn colour(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::Operational) => "#2da44e",
        Some(Status::Degraded) => "#bf8700",
        Some(Status::Failed) => "#cf222e",
        Some(Status::Error) => "#82071e",
        None => "#8c959f",
    }
}

/// Rough text width in pixels at 11px Verdana (what shields assumes).
fn width(s: &str) -> u32 {
    s.chars()
        .map(|c| match c {
            'i' | 'l' | '.' | ',' | ':' | '|' | '!' | '\'' => 4,
            'm' | 'w' | 'M' | 'W' | '%' => 10,
            c if c.is_ascii_uppercase() => 8,
            _ => 7,
        })
        .sum::<u32>()
        + 10
}

/// The badge's SVG: `label` on grey, `message` on `fill`.
pub(crate) fn svg(label: &str, message: &str, fill: &str) -> String {
    let (lw, mw) = (width(label), width(message));
    let total = lw + mw;
    let aria = format!("{label}: {message}");
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(total) height="20" role="img" aria-label=(aria) {
            title { (aria) }
            linearGradient id="s" x2="0" y2="100%" {
                stop offset="0" stop-color="#bbb" stop-opacity=".1" {}
                stop offset="1" stop-opacity=".1" {}
            }
            clipPath id="r" { rect width=(total) height="20" rx="3" fill="#fff" {} }
            g clip-path="url(#r)" {
                rect width=(lw) height="20" fill="#555" {}
                rect x=(lw) width=(mw) height="20" fill=(fill) {}
                rect width=(total) height="20" fill="url(#s)" {}
            }
            g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11" {
                text x=(lw / 2) y="14" { (label) }
                text x=(lw + mw / 2) y="14" { (message) }
            }
        }
    }
    .into_string()
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, SVG), (header::CACHE_CONTROL, LIVE)],
        svg(id, "not found", colour(None)),
    )
        .into_response()
}

/// `/badge/{id}.svg`.
pub(super) async fn status(
    State(st): State<Arc<AppState>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let raw = file.strip_suffix(".svg").unwrap_or(&file);
    let view = st.model.view();
    let Some(m) = MonitorId::parse(raw).ok().and_then(|id| view.monitor(&id)) else {
        return not_found(raw);
    };
    let worst = m.worst();
    let message = worst.map_or("not checked", Status::as_str);
    Body::new(svg(m.id.as_str(), message, colour(worst)), SVG).respond(&headers, LIVE)
}

/// `/badge/{id}/uptime/{window}.svg`.
pub(super) async fn uptime(
    State(st): State<Arc<AppState>>,
    Path((raw, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let window = file.strip_suffix(".svg").unwrap_or(&file);
    let Some(wi) = WINDOWS
        .iter()
        .position(|d| super::report_window(*d) == window)
    else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, SVG), (header::CACHE_CONTROL, LIVE)],
            svg("uptime", "window: 24h, 7d or 30d", colour(None)),
        )
            .into_response();
    };
    let view = st.model.view();
    let Some(m) = MonitorId::parse(&raw).ok().and_then(|id| view.monitor(&id)) else {
        return not_found(&raw);
    };
    let worst = m
        .series
        .iter()
        .filter_map(|s| s.row.windows.get(wi).and_then(|(_, w)| w.availability()))
        .reduce(f64::min);
    let (message, fill) = match worst {
        None => ("no data".to_owned(), colour(None)),
        Some(a) => (
            format!("{:.2}%", a * 100.0),
            match a {
                a if a >= 0.999 => colour(Some(Status::Operational)),
                a if a >= 0.99 => "#4c9a2a",
                a if a >= 0.95 => colour(Some(Status::Degraded)),
                _ => colour(Some(Status::Failed)),
            },
        ),
    };
    let label = format!("uptime {window}");
    Body::new(svg(&label, &message, fill), SVG).respond(&headers, LIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_escape_their_text() {
        let s = svg("<script>", "a&b", "#fff");
        assert!(s.contains("&lt;script&gt;"));
        assert!(s.contains("a&amp;b"));
        assert!(!s.contains("<script>"));
    }
}
