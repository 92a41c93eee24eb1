//! The HTTP side: the status page, the JSON API, `/metrics`, badges and health endpoints,
//! served by `chanmon run --listen` (beside the daemon) or `chanmon serve` (read-only, from the
//! database).
//!
//! - `model.rs`: the read model every route renders (kept up to date as results arrive);
//! - `refresh.rs`: the task that feeds it (result bus or database poll, periodic reloads);
//! - `auth.rs`: the token (bearer for scripts, a Basic prompt for browsers), compared in
//!   constant time;
//! - `api.rs`: `/api/v1/…` (the same serializer as the commands' `--format json`);
//! - `page.rs`: the HTML (maud: every string is escaped), `badge.rs`: SVG badges;
//! - `metrics.rs`: OpenMetrics text; `conn.rs`: connection limits.
//!
//! No route probes, writes or spends tokens.

mod api;
mod auth;
mod badge;
mod conn;
pub(crate) mod metrics;
pub(crate) mod model;
mod page;
pub(crate) mod refresh;

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::HttpConfig;
use crate::model::Timestamp;
use crate::runner::metrics::Metrics as RunnerMetrics;
use crate::store::{Database, OpenMode, Storage};

use model::Model;

/// Longest a request may take before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests carry no body worth reading (every route is GET).
const BODY_LIMIT: usize = 16 * 1024;
/// Connections served at once; more wait in the backlog.
const MAX_CONNECTIONS: usize = 256;
/// A connection silent this long is closed.
const IDLE: Duration = Duration::from_secs(30);

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A rendered body with its validator.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub bytes: Bytes,
    pub etag: String,
    pub content_type: &'static str,
}

impl Body {
    pub(crate) fn new(bytes: impl Into<Bytes>, content_type: &'static str) -> Body {
        let bytes = bytes.into();
        // SipHash with fixed keys: the same bytes give the same tag in every process, so a
        // `serve` beside a daemon agrees with it.
        let mut h = std::hash::DefaultHasher::new();
        bytes.hash(&mut h);
        Body {
            etag: format!("W/\"{:016x}\"", h.finish()),
            bytes,
            content_type,
        }
    }

    /// 200 with the body, or 304 when the client's `If-None-Match` names this version.
    pub(crate) fn respond(&self, req: &HeaderMap, cache: &'static str) -> Response {
        let matches = req
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|t| {
                t == "*"
                    || t == self.etag
                    || t.trim_start_matches("W/") == self.etag.trim_start_matches("W/")
            });
        let mut headers = [
            (
                header::ETAG,
                HeaderValue::from_str(&self.etag).unwrap_or(HeaderValue::from_static("\"0\"")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
        ];
        if matches {
            headers[2].1 = HeaderValue::from_static(self.content_type);
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, self.bytes.clone()).into_response()
    }
}

/// Cache policy of live data: always revalidate (the ETag makes that cheap).
pub(crate) const LIVE: &str = "no-cache";

/// `24h`, `7d`, … as `chanmon status` names windows.
pub(crate) fn report_window(d: Duration) -> String {
    crate::report::window_label(d)
}

/// Where the scheduler's figures come from (the daemon only).
#[derive(Clone)]
pub(crate) struct Scheduler {
    pub metrics: Arc<RunnerMetrics>,
    pub tick: Duration,
}

/// What every handler shares.
pub(crate) struct AppState {
    pub model: Arc<Model>,
    pub http: HttpConfig,
    pub scheduler: Option<Scheduler>,
    /// How often the model reloads (readiness allows three missed reloads).
    pub reload: Duration,
    pub database: Database,
    /// One read-only connection for the routes that page through history (opened on first
    /// use; a request holds it only while it reads).
    reader: Mutex<Option<Box<dyn Storage>>>,
    /// When each cached route ([`Route`]) was last asked for (epoch ms): those asked for in
    /// the last [`WANTED_FOR`] are rendered as soon as a view is published.
    wanted: [AtomicI64; 3],
}

/// The routes whose bodies a view caches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Route {
    Page = 0,
    Status = 1,
    Metrics = 2,
}

/// A route asked for within this long is rendered ahead of the next request.
const WANTED_FOR: Duration = Duration::from_secs(300);

impl AppState {
    pub(crate) fn new(
        model: Arc<Model>,
        http: HttpConfig,
        scheduler: Option<Scheduler>,
        reload: Duration,
        database: Database,
    ) -> AppState {
        AppState {
            model,
            http,
            scheduler,
            reload,
            database,
            reader: Mutex::new(None),
            wanted: Default::default(),
        }
    }

    /// A request for `route` came in.
    pub(crate) fn asked(&self, route: Route) {
        self.wanted[route as usize].store(Timestamp::now().millis(), Relaxed);
    }

    /// Renders, into the current view's cache, every route asked for recently (on a blocking
    /// thread, after a publication): requests then find their body ready.
    pub(crate) fn warm(&self) {
        let view = self.model.view();
        let now = Timestamp::now().millis();
        let recent =
            |r: Route| now - self.wanted[r as usize].load(Relaxed) <= WANTED_FOR.as_millis() as i64;
        if recent(Route::Page) {
            page::warm(self, &view);
        }
        if recent(Route::Status) {
            api::warm(&view);
        }
        if recent(Route::Metrics) {
            view.cache
                .metrics
                .get_or_init(|| self.model.metrics.encode());
        }
    }

    /// Runs `f` with the read-only connection, on a blocking thread.
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&dyn Storage) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, String> {
        let me = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut guard = me.reader.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(
                    crate::store::open(&me.database, OpenMode::ReadOnly)
                        .map_err(|e| e.to_string())?,
                );
            }
            let store = guard.as_deref().ok_or("no database connection")?;
            let out = f(store).map_err(|e| e.to_string());
            if out.is_err() {
                // A broken connection is reopened by the next request.
                *guard = None;
            }
            out
        })
        .await;
        joined.unwrap_or_else(|e| Err(format!("database read crashed: {e}")))
    }

    /// The scheduler's figures now.
    pub(crate) fn scheduler_figures(&self) -> Option<metrics::SchedulerFigures> {
        let s = self.scheduler.as_ref()?;
        let snap = s.metrics.snapshot();
        let last = s.metrics.last_tick_ms.load(Relaxed);
        let age = if last == 0 {
            0.0
        } else {
            ((Timestamp::now().millis() - last as i64).max(0) as f64) / 1000.0
        };
        Some(metrics::SchedulerFigures {
            started: snap.checks_started,
            dropped: snap.dropped,
            in_flight: snap.in_flight,
            queue_depth: snap.queue_depth,
            last_tick_age: age,
            tick: s.tick.as_secs_f64(),
            replicas: snap.replicas_alive,
            config_mismatch: snap.replica_config_mismatch,
        })
    }
}

/// Builds the router with its layers.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let pages = Router::new()
        .route("/", get(page::index))
        .route("/monitors/{id}", get(page::monitor))
        .route("/badge/{file}", get(badge::status))
        .route("/badge/{id}/uptime/{file}", get(badge::uptime))
        .route("/assets/{file}", get(page::asset))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::pages));
    let private = Router::new()
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/monitors", get(api::monitors))
        .route("/api/v1/monitors/{id}", get(api::monitor))
        .route("/api/v1/monitors/{id}/history", get(api::history))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/metrics", get(metrics_route))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::private));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(pages)
        .merge(private)
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn(no_body_allowed))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CompressionLayer::new().gzip(true))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

/// Every route is GET: a request announcing a body is refused before anything reads it.
async fn no_body_allowed(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if declared > BODY_LIMIT as u64 {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    next.run(req).await
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

/// 200 while the scheduler ticks (the daemon) or the model keeps loading (`serve`); 503 when
/// the last tick is older than three ticks (or three reloads).
async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let (ok, detail) = match st.scheduler_figures() {
        Some(s) => (
            s.last_tick_age <= 3.0 * s.tick.max(0.001) && s.last_tick_age >= 0.0,
            format!("last scheduler tick {:.1}s ago", s.last_tick_age),
        ),
        None => {
            let age = loaded_age(&st);
            (
                age <= 3.0 * st.reload.as_secs_f64(),
                format!("last database load {age:.1}s ago"),
            )
        }
    };
    plain(ok, &detail)
}

/// 200 when the config is loaded (it is, or the server would not run) and the database was
/// read successfully by the last load.
async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    let db = st.model.db_ok.load(Relaxed);
    let detail = if db {
        "config loaded; database reachable".to_owned()
    } else {
        "database not reachable (or not read yet)".to_owned()
    };
    plain(db, &detail)
}

fn loaded_age(st: &AppState) -> f64 {
    let at = st.model.loaded_at.load(Relaxed);
    if at == 0 {
        return f64::INFINITY;
    }
    ((Timestamp::now().millis() - at).max(0) as f64) / 1000.0
}

fn plain(ok: bool, detail: &str) -> Response {
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if ok { "ok" } else { "unavailable" };
    (
        code,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!("{word}: {detail}\n"),
    )
        .into_response()
}

async fn metrics_route(State(st): State<Arc<AppState>>) -> Response {
    st.asked(Route::Metrics);
    let view = st.model.view();
    let series = view.cache.metrics.get_or_init(|| st.model.metrics.encode());
    let text = metrics::scrape(series, st.scheduler_figures());
    (
        [
            (
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

/// Serves until `stop` fires. The listener is already bound (so the caller can report a bind
/// error before anything else starts).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "http: listening");
    }
    let limited = conn::Limited::new(listener, MAX_CONNECTIONS, IDLE);
    axum::serve(limited, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

/// Binds `addr`, saying what failed.
pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Everything a running HTTP side needs, started: the read model (loading in the background)
/// and the handlers' state.
pub(crate) fn start(
    config: &crate::config::Config,
    feed: refresh::Feed,
    reload: Duration,
    scheduler: Option<Scheduler>,
    stop: CancellationToken,
) -> Arc<AppState> {
    let model = Arc::new(Model::new(model::ConfigFacts::new(config)));
    let state = Arc::new(AppState::new(
        model.clone(),
        config.http.clone(),
        scheduler,
        reload,
        config.database.clone(),
    ));
    // Weak: the refresher must not keep the handlers' state alive after the server stops.
    let weak = Arc::downgrade(&state);
    let warm: refresh::Warm = Arc::new(move || {
        if let Some(st) = weak.upgrade() {
            st.warm();
        }
    });
    tokio::spawn(refresh::run(
        model,
        config.database.clone(),
        feed,
        reload,
        warm,
        stop,
    ));
    state
}
