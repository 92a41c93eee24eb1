//! `/api/v1/…`: the same JSON the commands print with `--format json` (`crate::report` is the
//! one serializer), plus the monitor list and the OpenAPI document.
//!
//! `status` and `monitors` render the read model (cached per published view);
//! `monitors/{id}` adds each model's timeline and `monitors/{id}/history` pages through raw
//! rows, both through the read-only connection and bounded by their limits.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::model::{View, hide_result};
use super::{AppState, Body, LIVE};
use crate::model::{MonitorId, Status, Timestamp};
use crate::report::{self, Format};
use crate::store::{HistoryQuery, StatusRow};

const JSON: &str = "application/json";
/// Results per model in a monitor's timeline (as `chanmon status <id>`).
const TIMELINE: usize = 60;
/// Most history rows one request may ask for.
pub(super) const MAX_LIMIT: u32 = 1_000;

/// The OpenAPI document (YAML written in its JSON subset after a comment header).
pub(super) const OPENAPI_YAML: &str = include_str!("../../docs/openapi.yaml");

pub(super) fn error(code: StatusCode, message: &str) -> Response {
    (
        code,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

fn all_rows(view: &View) -> Vec<StatusRow> {
    view.monitors
        .iter()
        .flat_map(|m| m.series.iter().map(|s| s.row.clone()))
        .collect()
}

/// `GET /api/v1/status`: every model of every monitor, as `chanmon status --format json`.
pub(super) async fn status(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    st.asked(super::Route::Status);
    let view = st.model.view();
    warm(&view).respond(&headers, LIVE)
}

/// `/api/v1/status` of `view`, rendered once.
pub(super) fn warm(view: &View) -> &Body {
    view.cache.status_json.get_or_init(|| {
        let rows = all_rows(view);
        Body::new(
            report::render_status(&rows, None, Format::Json, false, view.at),
            JSON,
        )
    })
}

/// One entry of `GET /api/v1/monitors`.
#[derive(Serialize)]
struct MonitorJson<'a> {
    id: &'a str,
    name: &'a str,
    group: Option<&'a str>,
    provider: &'a str,
    enabled: bool,
    models: Vec<&'a str>,
    /// The worst current status among the models (`null`: never checked).
    status: Option<Status>,
    /// Availability over 24h of the worst model (`null`: no checks in the window).
    availability_24h: Option<f64>,
    /// Only with `show_details`.
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<&'a str>,
}

/// `GET /api/v1/monitors`: one entry per monitor.
pub(super) async fn monitors(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let view = st.model.view();
    let body = view.cache.monitors_json.get_or_init(|| {
        let list: Vec<MonitorJson> = view
            .monitors
            .iter()
            .map(|m| MonitorJson {
                id: m.id.as_str(),
                name: &m.name,
                group: m.group.as_deref(),
                provider: &m.provider,
                enabled: m.enabled,
                models: {
                    // One entry per model, however many locations probe it.
                    let mut models: Vec<&str> = Vec::with_capacity(m.series.len());
                    for s in &m.series {
                        if !models.contains(&s.row.model.as_str()) {
                            models.push(&s.row.model);
                        }
                    }
                    models
                },
                status: m.worst(),
                availability_24h: m
                    .series
                    .iter()
                    .filter_map(|s| s.row.windows.first().and_then(|(_, w)| w.availability()))
                    .reduce(f64::min),
                endpoint: m.endpoint.as_deref(),
            })
            .collect();
        Body::new(
            serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".into()) + "\n",
            JSON,
        )
    });
    body.respond(&headers, LIVE)
}

fn parse_id(raw: &str) -> Result<MonitorId, Box<Response>> {
    MonitorId::parse(raw)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, &format!("monitor id: {e}"))))
}

/// `GET /api/v1/monitors/{id}`: as `chanmon status <id> --format json` (with timelines).
pub(super) async fn monitor(
    State(st): State<Arc<AppState>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let view = st.model.view();
    let Some(m) = view.monitor(&id) else {
        return error(StatusCode::NOT_FOUND, &format!("no monitor `{id}`"));
    };
    let rows: Vec<StatusRow> = m.series.iter().map(|s| s.row.clone()).collect();
    let series: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.model.clone(), r.location.clone()))
        .collect();
    let read_id = id.clone();
    let timelines = st
        .read(move |store| {
            series
                .iter()
                .map(|(model, location)| {
                    crate::store::series_timeline(store, &read_id, model, location, TIMELINE)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
    let timelines = match timelines {
        Ok(t) => t,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    Body::new(
        report::render_status(&rows, Some(&timelines), Format::Json, false, view.at),
        JSON,
    )
    .respond(&headers, LIVE)
}

/// The `history` command's filters, as query parameters.
#[derive(Debug, Default, Deserialize)]
pub(super) struct HistoryParams {
    model: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<String>,
    status: Option<String>,
    location: Option<String>,
    limit: Option<u32>,
}

impl HistoryParams {
    fn query(self, id: MonitorId) -> Result<HistoryQuery, String> {
        let time = |name: &str, v: Option<String>| -> Result<Option<Timestamp>, String> {
            v.map(|s| crate::cli::parse_time(&s).map_err(|e| format!("`{name}`: {e}")))
                .transpose()
        };
        let limit = self.limit.unwrap_or(50);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(format!("`limit` must be from 1 to {MAX_LIMIT}"));
        }
        Ok(HistoryQuery {
            monitor: Some(id),
            model: self.model,
            since: time("since", self.since)?,
            until: time("until", self.until)?,
            before: time("before", self.before)?,
            status: self
                .status
                .map(|s| crate::cli::parse_status(&s).map_err(|e| format!("`status`: {e}")))
                .transpose()?,
            location: self
                .location
                .map(|l| {
                    crate::cli::parse_location_filter(&l).map_err(|e| format!("`location`: {e}"))
                })
                .transpose()?,
            limit: limit as usize,
        })
    }
}

/// `GET /api/v1/monitors/{id}/history`: as `chanmon history <id> --format json`, newest first;
/// page with `before` = the last row's `started_at`.
pub(super) async fn history(
    State(st): State<Arc<AppState>>,
    Path(raw): Path<String>,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let Ok(Query(params)) = params else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad query string: see /api/v1/openapi.json",
        );
    };
    if st.model.view().monitor(&id).is_none() {
        return error(StatusCode::NOT_FOUND, &format!("no monitor `{id}`"));
    }
    let q = match params.query(id) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let rows = match st.read(move |store| store.history(&q)).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let rows = if st.http.show_details {
        rows
    } else {
        rows.into_iter()
            .map(|mut r| {
                hide_result(&mut r);
                r
            })
            .collect()
    };
    Body::new(report::render_results(&rows, Format::Json, false), JSON).respond(&headers, LIVE)
}

/// `GET /api/v1/openapi.json`: `docs/openapi.yaml` as JSON.
pub(super) async fn openapi(headers: HeaderMap) -> Response {
    match openapi_json() {
        Ok(text) => Body::new(text, JSON).respond(&headers, LIVE),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// The document without its comment header, checked and compacted.
pub(crate) fn openapi_json() -> Result<String, String> {
    let body: String = OPENAPI_YAML
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("docs/openapi.yaml: {e}"))?;
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_parses() {
        let v: serde_json::Value = serde_json::from_str(&openapi_json().unwrap()).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        for path in [
            "/api/v1/status",
            "/api/v1/monitors",
            "/api/v1/monitors/{id}",
            "/api/v1/monitors/{id}/history",
        ] {
            assert!(v["paths"][path]["get"].is_object(), "{path}");
        }
    }

    #[test]
    fn history_params_are_checked() {
        let id = MonitorId::parse("m").unwrap();
        let bad = HistoryParams {
            limit: Some(0),
            ..HistoryParams::default()
        };
        assert!(bad.query(id.clone()).unwrap_err().contains("limit"));
        let bad = HistoryParams {
            status: Some("fine".into()),
            ..HistoryParams::default()
        };
        assert!(bad.query(id.clone()).unwrap_err().contains("status"));
        let bad = HistoryParams {
            since: Some("yesterday-ish".into()),
            ..HistoryParams::default()
        };
        assert!(bad.query(id.clone()).unwrap_err().contains("since"));
        let ok = HistoryParams {
            status: Some("failed".into()),
            since: Some("24h".into()),
            limit: Some(5),
            ..HistoryParams::default()
        }
        .query(id)
        .unwrap();
        assert_eq!((ok.limit, ok.status), (5, Some(Status::Failed)));
    }
}
