//! Delivering the outbox: the drainer task, one-shot passes (`chanmon check`) and test sends.
//!
//! The drainer has its own store connection and never touches the writer or the probes: it
//! polls for due rows, groups them (same sink and group key), and sends each group on its own
//! task, at most [`CONCURRENCY`] at once, each bounded by its sink's timeout. A 2xx is
//! committed `delivered` in its own transaction right after the reply; a failure schedules a
//! retry with exponential backoff and jitter up to a cap, and after `max_attempts` the rows
//! become dead letters (logged and counted). Rows being sent are kept in an in-flight set so
//! a later poll never sends them twice; a crash between the receiver's 2xx and the commit
//! sends them once more after the restart, with the same event id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::event::Notification;
use super::sink::{SinkConfig, render};
use crate::model::Timestamp;
use crate::net::{HttpClient, classify_error, read_body_capped};
use crate::redact::Redactor;
use crate::store::{Delivery, DeliveryOutcome, Storage, StoreError};

/// Notifications in flight at once.
pub(crate) const CONCURRENCY: usize = 16;
/// How often the drainer looks for due rows.
const POLL: Duration = Duration::from_millis(100);
/// Rows read per poll.
const BATCH: usize = 512;
/// Reply bytes kept for messages.
const REPLY_CAP: usize = 2048;

/// Retries: exponential from `base`, at most `cap` apart, with jitter; dead after
/// `max_attempts`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(600),
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt (1-based), with `jitter` in [0, 1):
    /// between half and all of `min(cap, base × 2^(attempts-1))`.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
            .min(self.cap);
        exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// What the drainer has done, for logs and tests.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
}

/// The receiver's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// The sinks with their guarded clients, and a redactor that knows every sink secret.
pub struct Sender {
    sinks: HashMap<String, (SinkConfig, HttpClient)>,
    redactor: Redactor,
    status_page: Option<String>,
}

impl Sender {
    pub fn new(sinks: &[SinkConfig], status_page: Option<String>) -> Result<Sender, String> {
        let mut map = HashMap::new();
        for s in sinks {
            let client =
                HttpClient::new(&s.network).map_err(|e| format!("alert sink `{}`: {e}", s.id))?;
            map.insert(s.id.clone(), (s.clone(), client));
        }
        let redactor = Redactor::new(sinks.iter().flat_map(|s| s.secrets()));
        Ok(Sender {
            sinks: map,
            redactor,
            status_page,
        })
    }

    pub fn redact(&self, s: &str) -> String {
        self.redactor.redact(s)
    }

    /// Sends `n` through sink `id`; `Err` carries a redacted reason.
    pub async fn send(&self, id: &str, n: &Notification) -> Result<Answer, String> {
        let (sink, client) = self
            .sinks
            .get(id)
            .ok_or_else(|| format!("alert sink `{id}` is not configured"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if sink.kind == super::SinkKind::Command {
            let (argv, n, timeout) = (sink.command.clone(), n.clone(), sink.timeout);
            let text = super::sink::text_of(sink, &n);
            let out =
                tokio::task::spawn_blocking(move || super::command::run(&argv, &n, text, timeout))
                    .await
                    .map_err(|e| format!("command task: {e}"))?;
            return out
                .map(|body| Answer {
                    status: 0,
                    body: self.redact(&body),
                })
                .map_err(|e| self.redact(&e));
        }
        if sink.kind == super::SinkKind::Email {
            return super::email::send(sink, n)
                .await
                .map(|a| Answer {
                    status: a.status,
                    body: self.redact(&a.body),
                })
                .map_err(|e| self.redact(&e));
        }
        let out = render(sink, n, now).map_err(|e| self.redact(&e))?;
        let mut req = client
            .request(Method::POST, out.url)
            .map_err(|b| self.redact(&b.to_string()))?
            .timeout(sink.timeout)
            .header(reqwest::header::CONTENT_TYPE, out.content_type)
            .body(out.body);
        for (h, v) in out.headers {
            req = req.header(h, v);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.redact(&classify_error(&e.without_url()).1))?;
        let status = resp.status().as_u16();
        let body = match read_body_capped(resp, REPLY_CAP).await {
            Ok(b) => String::from_utf8_lossy(&b.bytes).into_owned(),
            Err(e) => format!("(reply unreadable: {})", classify_error(&e.without_url()).1),
        };
        let answer = Answer {
            status,
            body: self.redact(body.trim()),
        };
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(format!(
                "HTTP {status}: {}",
                super::event::clip(&answer.body, 300)
            ))
        }
    }
}

/// The store, shared between the drainer's tasks; every call runs on a blocking thread.
pub(crate) type SharedStore = Arc<Mutex<Box<dyn Storage>>>;

async fn with_store<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&mut dyn Storage) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = store
            .lock()
            .map_err(|_| StoreError::Backend("the alert store lock was poisoned".into()))?;
        f(guard.as_mut())
    })
    .await
    .map_err(|e| StoreError::Backend(format!("alert store task: {e}")))?
}

/// Groups due rows: same sink and group key, in order of their first row.
fn group(rows: Vec<Delivery>) -> Vec<Vec<Delivery>> {
    let mut groups: BTreeMap<(String, String), Vec<Delivery>> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for r in rows {
        let k = (r.sink.clone(), r.group.clone());
        if !groups.contains_key(&k) {
            order.push(k.clone());
        }
        groups.entry(k).or_default().push(r);
    }
    order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .collect()
}

/// The shared parts of a drain.
#[derive(Clone)]
pub struct DrainCtx {
    pub store: SharedStore,
    /// Swapped on a config reload; a send in flight keeps the one it started with.
    sender: Arc<std::sync::RwLock<Arc<Sender>>>,
    pub retry: RetryPolicy,
    pub counters: Arc<DeliveryCounters>,
    inflight: Arc<Mutex<HashSet<i64>>>,
    permits: Arc<Semaphore>,
}

impl DrainCtx {
    pub fn new(store: SharedStore, sender: Arc<Sender>, retry: RetryPolicy) -> DrainCtx {
        DrainCtx {
            store,
            sender: Arc::new(std::sync::RwLock::new(sender)),
            retry,
            counters: Arc::new(DeliveryCounters::default()),
            inflight: Arc::new(Mutex::new(HashSet::new())),
            permits: Arc::new(Semaphore::new(CONCURRENCY)),
        }
    }

    /// Starts sending every due group a permit is free for; returns the tasks started.
    /// The drainer of `config`'s database and sinks, on a connection of its own. `None` when
    /// no sink is configured.
    pub fn open(config: &crate::config::Config) -> Result<Option<DrainCtx>, String> {
        if config.alerts.sinks.is_empty() {
            return Ok(None);
        }
        let sender = Sender::new(&config.alerts.sinks, config.alerts.status_page.clone())?;
        let store = crate::store::open(&config.database, crate::store::OpenMode::Existing)
            .map_err(|e| format!("opening the database for alert delivery: {e}"))?;
        Ok(Some(DrainCtx::new(
            Arc::new(Mutex::new(store)),
            Arc::new(sender),
            config.alerts.retry,
        )))
    }

    /// The sinks in effect.
    pub fn sender(&self) -> Arc<Sender> {
        match self.sender.read() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// New sinks after a config reload.
    pub fn set_sender(&self, sender: Arc<Sender>) {
        match self.sender.write() {
            Ok(mut s) => *s = sender,
            Err(p) => *p.into_inner() = sender,
        }
    }

    /// Rows in `tried` are left alone (a one-shot pass tries each row once).
    async fn poll(
        &self,
        tasks: &mut tokio::task::JoinSet<()>,
        mut tried: Option<&mut HashSet<i64>>,
    ) -> Result<usize, StoreError> {
        let now = Timestamp::now();
        // Read and filter under the in-flight lock: a send that commits meanwhile leaves the
        // set only after this read, so a row read as pending just before its commit is still
        // seen as in flight (else it would be sent twice).
        let inflight = self.inflight.clone();
        let rows = with_store(&self.store, move |s| {
            let held = inflight.lock().map_err(|_| poisoned())?;
            let rows = s.due_deliveries(now, BATCH)?;
            Ok(rows
                .into_iter()
                .filter(|r| !held.contains(&r.pk))
                .collect::<Vec<_>>())
        })
        .await?;
        let rows: Vec<Delivery> = rows
            .into_iter()
            .filter(|r| tried.as_ref().is_none_or(|t| !t.contains(&r.pk)))
            .collect();
        let mut started = 0;
        for g in group(rows) {
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                break;
            };
            {
                let mut inflight = self.inflight.lock().map_err(|_| poisoned())?;
                inflight.extend(g.iter().map(|r| r.pk));
            }
            if let Some(t) = tried.as_mut() {
                t.extend(g.iter().map(|r| r.pk));
            }
            let ctx = self.clone();
            tasks.spawn(async move {
                ctx.deliver(g).await;
                drop(permit);
            });
            started += 1;
        }
        Ok(started)
    }

    /// Sends one group and records the outcome in its own commit.
    async fn deliver(&self, g: Vec<Delivery>) {
        let pks: Vec<i64> = g.iter().map(|r| r.pk).collect();
        let sink = g[0].sink.clone();
        let attempts = g.iter().map(|r| r.attempts).max().unwrap_or(0) + 1;
        let sender = self.sender();
        let n = Notification {
            event_id: g[0].event.event_id.clone(),
            events: g.into_iter().map(|r| r.event).collect(),
            status_page: sender.status_page.clone(),
        };
        let outcome = match sender.send(&sink, &n).await {
            Ok(_) => {
                self.counters.delivered.fetch_add(1, Relaxed);
                DeliveryOutcome::Delivered {
                    at: Timestamp::now(),
                }
            }
            Err(error)
                if attempts >= self.retry.max_attempts || !sender.sinks.contains_key(&sink) =>
            {
                self.counters.dead.fetch_add(1, Relaxed);
                tracing::error!(sink = %sink, event_id = %n.event_id, attempts, error = %error,
                    "alert not delivered: dead letter (no more retries)");
                DeliveryOutcome::Dead { error }
            }
            Err(error) => {
                self.counters.retried.fetch_add(1, Relaxed);
                let wait = self.retry.backoff(attempts, fastrand::f64());
                tracing::warn!(sink = %sink, event_id = %n.event_id, attempts, retry_in_ms = wait.as_millis() as u64,
                    error = %error, "alert delivery failed; will retry");
                DeliveryOutcome::Retry {
                    next_at: Timestamp::now().saturating_add(wait),
                    error,
                }
            }
        };
        let record = pks.clone();
        if let Err(e) =
            with_store(&self.store, move |s| s.finish_deliveries(&record, &outcome)).await
        {
            // Left pending: sent again later with the same event id (at least once).
            tracing::error!(error = %e, "recording an alert delivery failed");
        }
        if let Ok(mut inflight) = self.inflight.lock() {
            for pk in pks {
                inflight.remove(&pk);
            }
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Backend("the drainer's in-flight set was poisoned".into())
}

/// One pass for a one-shot command: every group due now is tried once; waits for all.
pub async fn drain_once(ctx: &DrainCtx) -> Result<DrainReport, StoreError> {
    let before = snapshot(&ctx.counters);
    let mut tasks = tokio::task::JoinSet::new();
    let mut tried = HashSet::new();
    loop {
        ctx.poll(&mut tasks, Some(&mut tried)).await?;
        // Wait for one send to finish: its permit may start the rest.
        if tasks.join_next().await.is_none() {
            break;
        }
    }
    let after = snapshot(&ctx.counters);
    Ok(DrainReport {
        delivered: after.delivered - before.delivered,
        retried: after.retried - before.retried,
        dead: after.dead - before.dead,
    })
}

/// A one-shot pass that first waits (at most `horizon`) for rows a group window still holds
/// back, so a `chanmon check` that opened incidents sends them before it exits.
pub async fn drain_pending(ctx: &DrainCtx, horizon: Duration) -> Result<DrainReport, StoreError> {
    let now = Timestamp::now();
    let until = now.saturating_add(horizon);
    let rows = with_store(&ctx.store, move |s| s.due_deliveries(until, BATCH)).await?;
    if let Some(last) = rows.iter().map(|r| r.next_at).max()
        && last > now
    {
        let wait = Duration::from_millis((last.millis() - now.millis()).max(0) as u64);
        tokio::time::sleep(wait.min(horizon)).await;
    }
    drain_once(ctx).await
}

fn snapshot(c: &DeliveryCounters) -> DrainReport {
    DrainReport {
        delivered: c.delivered.load(Relaxed),
        retried: c.retried.load(Relaxed),
        dead: c.dead.load(Relaxed),
    }
}

/// The daemon's drainer task.
pub struct Drainer;

impl Drainer {
    /// Polls until `stop`, then waits up to `grace` for sends in flight (a send cut off stays
    /// pending and is sent again after the restart, with the same event id).
    pub async fn run(ctx: DrainCtx, stop: CancellationToken, grace: Duration) {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            if let Err(e) = ctx.poll(&mut tasks, None).await {
                tracing::warn!(error = %e, "reading the alert outbox failed; will retry");
            }
            // Poll again when a send finishes (its permit may start the next due group: under
            // load the sends, not the poll interval, set the pace) or after POLL.
            tokio::select! {
                () = stop.cancelled() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    while tasks.try_join_next().is_some() {}
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        let c = snapshot(&ctx.counters);
        tracing::info!(
            alerts_delivered = c.delivered,
            alerts_retried = c.retried,
            alerts_dead = c.dead,
            "alert drainer stopped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_inside_half_to_full() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            max_attempts: 5,
        };
        assert_eq!(p.backoff(1, 0.999_999).as_secs(), 0, "just under 1 s");
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 0.0), Duration::from_secs(2));
        assert_eq!(p.backoff(30, 0.0), Duration::from_secs(5), "capped");
        for a in 1..40 {
            assert!(p.backoff(a, 1.0) <= p.cap);
        }
    }
}

/// The drainer under load against a loopback receiver: every row sent exactly once (a row
/// read as pending just before its send committed must not go out again).
#[cfg(test)]
mod load_tests {
    use std::collections::HashMap;
    use std::time::Instant;

    use axum::{Router, body::Bytes, routing::post};

    use super::*;
    use crate::alert::{AlertPlan, MonitorPlan, Rule, SinkConfig, SinkKind};
    use crate::model::{CheckResult, Kind, MonitorId, Status};
    use crate::net::NetworkPolicy;
    use crate::secret::Secret;
    use crate::store::{Database, MonitorRow, OpenMode, open};

    fn row(i: usize) -> MonitorRow {
        MonitorRow {
            id: MonitorId::parse(&format!("m{i}")).unwrap(),
            name: format!("m{i}"),
            provider: "openai".into(),
            api: "chat".into(),
            endpoint: "https://h".into(),
            group: None,
            enabled: true,
            interval_ms: 60_000,
            models: vec!["a".into()],
            sealed_key: None,
            sealed_headers: None,
            key_error: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_row_is_sent_exactly_once_under_load() {
        let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let s2 = seen.clone();
        let app = Router::new().route(
            "/hook",
            post(move |body: Bytes| {
                let seen = s2.clone();
                async move {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let id = v["event_id"].as_str().unwrap().to_owned();
                    *seen.lock().unwrap().entry(id).or_default() += 1;
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let db = Database::Sqlite(dir.path().join("d.db"));
        let rows: Vec<MonitorRow> = (0..300).map(row).collect();
        let mut w = open(&db, OpenMode::Create).unwrap();
        w.sync_monitors(&rows).unwrap();
        let mut plan = AlertPlan::default();
        for r in &rows {
            let rule = Rule {
                sinks: vec!["hook".into()],
                failure_threshold: 1,
                group_window: Duration::ZERO,
                ..Rule::default()
            };
            plan.monitors.insert(
                r.id.clone(),
                MonitorPlan {
                    name: r.name.clone(),
                    rule,
                    maintenance: vec![],
                },
            );
        }
        w.set_alert_plan(Arc::new(plan));
        let sink = SinkConfig {
            id: "hook".into(),
            kind: SinkKind::Webhook,
            url: Secret::new(format!("http://{addr}/hook")),
            secret: None,
            token: None,
            chat_id: None,
            command: vec![],
            template: None,
            timeout: Duration::from_secs(10),
            network: NetworkPolicy {
                allow_http: true,
                allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
                ..NetworkPolicy::default()
            },
            email: None,
        };
        let ctx = DrainCtx::new(
            Arc::new(Mutex::new(open(&db, OpenMode::Existing).unwrap())),
            Arc::new(Sender::new(&[sink], None).unwrap()),
            RetryPolicy::default(),
        );
        let stop = CancellationToken::new();
        let drainer = tokio::spawn(Drainer::run(ctx, stop.clone(), Duration::from_secs(5)));
        // Results arrive while the drainer sends: 300 incidents in batches of 10.
        tokio::task::spawn_blocking(move || {
            for chunk in rows.chunks(10) {
                let batch: Vec<CheckResult> = chunk
                    .iter()
                    .map(|r| {
                        CheckResult::error(
                            r.id.clone(),
                            "a".into(),
                            Timestamp::now(),
                            Kind::Timeout,
                            "timed out".into(),
                        )
                    })
                    .collect();
                assert!(batch.iter().all(|b| b.status == Status::Error));
                w.insert_results(&batch).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.lock().unwrap().len() < 300 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give a duplicate, if any, time to arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.cancel();
        drainer.await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 300, "every incident announced");
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "sent more than once: {twice:?}");
    }
}
