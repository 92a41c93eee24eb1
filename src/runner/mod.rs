//! The daemon: ticker → bounded queue → fixed worker pool → one writer.
//!
//! The shutdown dance lives in [`Daemon::run`] and reads top to bottom: stop scheduling, let
//! running probes finish within the grace period, cut off the rest (not recorded: they are not
//! upstream failures), flush every finished result, exit. A second signal exits at once.

pub mod lock;
pub mod metrics;
pub mod schedule;
pub mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, KeyState, Monitor};
use crate::model::{CheckResult, Kind, MonitorId, Status, Timestamp, tidy_message};
use crate::net::{HttpClient, NetError, NetworkPolicy};
use crate::probe;
use crate::redact::Redactor;

use lock::ProbeLock;
use metrics::Metrics;
use schedule::{Schedule, Scheduled};
use writer::{Writer, WriterHandle};

/// A monitor prepared for probing: its HTTP client (per network policy) and its redactor.
#[derive(Debug)]
pub struct Target {
    pub monitor: Monitor,
    pub client: HttpClient,
    pub redactor: Arc<Redactor>,
}

impl Scheduled for Arc<Target> {
    type Id = MonitorId;
    fn id(&self) -> &MonitorId {
        &self.monitor.config.id
    }
    fn interval(&self) -> Duration {
        self.monitor.config.interval
    }
}

/// One HTTP client per distinct network policy (clients pool connections; monitors sharing a
/// policy share a client).
#[derive(Default)]
pub struct Clients(HashMap<NetworkPolicy, HttpClient>);

impl Clients {
    pub fn get(&mut self, policy: &NetworkPolicy) -> Result<HttpClient, NetError> {
        if let Some(c) = self.0.get(policy) {
            return Ok(c.clone());
        }
        let c = HttpClient::new(policy)?;
        self.0.insert(policy.clone(), c.clone());
        Ok(c)
    }
}

/// The secrets a monitor's messages must never show: its key and its header values.
pub fn redactor_for(monitor: &Monitor) -> Redactor {
    let key = match &monitor.key {
        KeyState::Ready(s) => Some(s.expose()),
        KeyState::Unavailable(_) => None,
    };
    Redactor::new(
        key.into_iter()
            .chain(monitor.config.headers.iter().map(|(_, v)| v.expose())),
    )
}

/// Builds a target per monitor. A monitor whose client cannot be built (e.g. a bad proxy) is
/// left out with an error in the log.
pub fn prepare(monitors: Vec<Monitor>, clients: &mut Clients) -> Vec<Arc<Target>> {
    let mut out = Vec::with_capacity(monitors.len());
    for monitor in monitors {
        match clients.get(&monitor.config.network) {
            Ok(client) => {
                let redactor = Arc::new(redactor_for(&monitor));
                out.push(Arc::new(Target {
                    monitor,
                    client,
                    redactor,
                }));
            }
            Err(e) => {
                tracing::error!(monitor = %monitor.config.id, error = %e, "monitor skipped")
            }
        }
    }
    out
}

/// Probes a target in its own task, so a panic inside the probe becomes an `error`/`internal`
/// result per model instead of taking the caller down.
pub async fn probe_isolated(target: Arc<Target>, model_concurrency: usize) -> Vec<CheckResult> {
    let t = target.clone();
    isolate(&target.monitor, async move {
        probe::probe_monitor(&t.monitor, &t.client, t.redactor.clone(), model_concurrency).await
    })
    .await
}

async fn isolate<F>(monitor: &Monitor, probe: F) -> Vec<CheckResult>
where
    F: Future<Output = Vec<CheckResult>> + Send + 'static,
{
    let started_at = Timestamp::now();
    let mut task = AbortOnDrop(tokio::spawn(probe));
    match (&mut task.0).await {
        Ok(results) => results,
        Err(e) => {
            let why = if e.is_panic() {
                "the probe crashed (a bug in chanmon; please report it)"
            } else {
                "the probe was cancelled"
            };
            tracing::error!(monitor = %monitor.config.id, "{why}");
            internal_error_results(monitor, started_at, why)
        }
    }
}

/// Aborts the probe task when its caller gives up on it (shutdown grace over), so an abandoned
/// probe does not run on in the background.
struct AbortOnDrop(tokio::task::JoinHandle<Vec<CheckResult>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn internal_error_results(monitor: &Monitor, started_at: Timestamp, why: &str) -> Vec<CheckResult> {
    monitor
        .config
        .models()
        .map(|model| CheckResult {
            monitor: monitor.config.id.clone(),
            model: model.to_owned(),
            started_at,
            status: Status::Error,
            kind: Kind::Internal,
            http_status: None,
            ttft_ms: None,
            latency_ms: None,
            ping_ms: None,
            message: tidy_message(why),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the database writer: {0}")]
    Writer(std::io::Error),
}

/// A job on the queue: one run of one monitor.
struct Job {
    target: Arc<Target>,
    due: Instant,
}

/// A worker's report back to the ticker.
struct Done {
    id: MonitorId,
    statuses: Vec<(String, Status, Kind)>,
}

/// Everything the workers share.
struct WorkerCtx {
    queue: Mutex<mpsc::Receiver<Job>>,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
    done: mpsc::UnboundedSender<Done>,
    probe_locks: PathBuf,
    tick: Duration,
    model_concurrency: usize,
    /// Cancelled on the first signal: take no new job.
    stop: CancellationToken,
    /// Cancelled when the grace period ends: abandon running probes.
    abandon: CancellationToken,
}

pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    monitors: Vec<Monitor>,
    writer: Writer,
    metrics: Arc<Metrics>,
}

impl Daemon {
    /// `monitors` are the synced monitors of `config`; `store` and `key` go to the writer.
    pub fn new(
        config_path: PathBuf,
        config: Config,
        monitors: Vec<Monitor>,
        store: crate::store::Store,
        key: crate::secret::MasterKey,
    ) -> Result<Daemon, RunnerError> {
        let metrics = Arc::new(Metrics::default());
        let writer = Writer::start(store, key, metrics.clone()).map_err(RunnerError::Writer)?;
        Ok(Daemon {
            config_path,
            config,
            monitors,
            writer,
            metrics,
        })
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    pub async fn run(self) -> Result<(), RunnerError> {
        let Daemon {
            config_path,
            mut config,
            monitors,
            writer,
            metrics,
        } = self;
        let mut term = signal(SignalKind::terminate()).map_err(RunnerError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(RunnerError::Signals)?;
        let mut hup = signal(SignalKind::hangup()).map_err(RunnerError::Signals)?;

        let runner = config.runner.clone();
        let (job_tx, job_rx) = mpsc::channel::<Job>(runner.queue);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let ctx = Arc::new(WorkerCtx {
            queue: Mutex::new(job_rx),
            writer: writer.handle(),
            metrics: metrics.clone(),
            done: done_tx,
            probe_locks: lock::probe_lock_dir(&config.database),
            tick: runner.tick,
            model_concurrency: runner.model_concurrency,
            stop: CancellationToken::new(),
            abandon: CancellationToken::new(),
        });
        let mut workers = JoinSet::new();
        for _ in 0..runner.workers {
            workers.spawn(worker(ctx.clone()));
        }

        let mut clients = Clients::default();
        let mut schedule: Schedule<Arc<Target>> = Schedule::new(runner.tick, runner.jitter);
        let targets = active_targets(&config, monitors, &mut clients);
        tracing::info!(
            monitors = targets.len(),
            workers = runner.workers,
            queue = runner.queue,
            database = %config.database.display(),
            "daemon started"
        );
        schedule.set_targets(targets, Instant::now());

        let mut last_status: HashMap<(MonitorId, String), (Status, Kind)> = HashMap::new();
        let mut ticker = tokio::time::interval(runner.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut summary = tokio::time::interval(Duration::from_secs(300));
        summary.tick().await;

        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    dispatch(&mut schedule, &job_tx, &metrics, runner.queue);
                }
                Some(done) = done_rx.recv() => {
                    schedule.release(&done.id);
                    metrics.in_flight.store(schedule.in_flight() as u64, Relaxed);
                    log_changes(&mut last_status, done);
                }
                _ = hup.recv() => {
                    reload(&config_path, &mut config, &ctx.writer, &mut clients, &mut schedule).await;
                }
                _ = summary.tick() => {
                    tracing::info!(metrics = ?metrics.snapshot(), "daemon counters");
                }
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
            }
        }

        // 1. Stop scheduling; queued jobs that have not started are dropped with the queue.
        ctx.stop.cancel();
        drop(job_tx);
        // 2. Let running probes finish within the grace period; a second signal exits at once.
        let grace = tokio::time::sleep(runner.shutdown_grace);
        tokio::pin!(grace);
        let mut abandoned = false;
        loop {
            tokio::select! {
                joined = workers.join_next() => {
                    if joined.is_none() { break; }
                }
                Some(done) = done_rx.recv() => log_changes(&mut last_status, done),
                _ = &mut grace, if !abandoned => {
                    tracing::warn!(
                        in_flight = metrics.in_flight.load(Relaxed),
                        "shutdown grace period over: abandoning running probes (not recorded)"
                    );
                    ctx.abandon.cancel();
                    abandoned = true;
                }
                _ = term.recv() => second_signal(),
                _ = int.recv() => second_signal(),
            }
        }
        while let Ok(done) = done_rx.try_recv() {
            log_changes(&mut last_status, done);
        }
        // 3. Flush every finished result.
        drop(ctx);
        let finish = tokio::task::spawn_blocking(move || writer.finish());
        tokio::select! {
            _ = finish => {}
            _ = term.recv() => second_signal(),
            _ = int.recv() => second_signal(),
        }
        tracing::info!(metrics = ?metrics.snapshot(), "daemon stopped");
        Ok(())
    }
}

fn second_signal() -> ! {
    tracing::warn!("second signal: exiting now without waiting");
    std::process::exit(1)
}

/// The targets the daemon should schedule: none when the config is globally disabled.
fn active_targets(
    config: &Config,
    monitors: Vec<Monitor>,
    clients: &mut Clients,
) -> Vec<Arc<Target>> {
    if !config.enabled {
        tracing::info!("config has enabled = false: the daemon stays idle");
        return Vec::new();
    }
    let enabled = monitors.into_iter().filter(|m| m.config.enabled).collect();
    prepare(enabled, clients)
}

fn dispatch(
    schedule: &mut Schedule<Arc<Target>>,
    jobs: &mpsc::Sender<Job>,
    metrics: &Metrics,
    queue: usize,
) {
    for due in schedule.take_due(Instant::now()) {
        let id = due.target.monitor.config.id.clone();
        match jobs.try_send(Job {
            target: due.target,
            due: due.due,
        }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                schedule.release(&id);
                let n = metrics.dropped.fetch_add(1, Relaxed) + 1;
                tracing::warn!(monitor = %id, dropped_total = n, "queue full: check dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => schedule.release(&id),
        }
    }
    metrics
        .queue_depth
        .store((queue - jobs.capacity()) as u64, Relaxed);
    metrics
        .in_flight
        .store(schedule.in_flight() as u64, Relaxed);
}

fn log_changes(last: &mut HashMap<(MonitorId, String), (Status, Kind)>, done: Done) {
    for (model, status, kind) in done.statuses {
        let key = (done.id.clone(), model);
        let prev = last.insert(key.clone(), (status, kind));
        if prev.map(|(s, _)| s) != Some(status) {
            let from = prev.map_or("unknown", |(s, _)| s.as_str());
            tracing::info!(monitor = %key.0, model = %key.1, from, to = %status, kind = %kind, "status changed");
        }
    }
}

async fn reload(
    path: &std::path::Path,
    config: &mut Config,
    writer: &WriterHandle,
    clients: &mut Clients,
    schedule: &mut Schedule<Arc<Target>>,
) {
    tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("reload failed, keeping the running config:\n{e}");
            return;
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let new = loaded.config;
    if new.runner != config.runner {
        tracing::warn!("[runner] changes take effect at the next restart");
    }
    if new.database != config.database {
        tracing::warn!("a new database path takes effect at the next restart");
    }
    let monitors = match writer.sync(new.monitors.clone()).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "reload failed to sync the database, keeping the running config");
            return;
        }
    };
    *clients = Clients::default();
    let targets = active_targets(&new, monitors, clients);
    tracing::info!(monitors = targets.len(), "config reloaded");
    schedule.set_targets(targets, Instant::now());
    let runner = config.runner.clone();
    *config = new;
    config.runner = runner;
}

async fn worker(ctx: Arc<WorkerCtx>) {
    loop {
        let job = {
            let mut queue = ctx.queue.lock().await;
            tokio::select! {
                biased;
                _ = ctx.stop.cancelled() => None,
                j = queue.recv() => j,
            }
        };
        let Some(job) = job else { break };
        run_job(&ctx, job).await;
    }
}

async fn run_job(ctx: &WorkerCtx, job: Job) {
    let id = job.target.monitor.config.id.clone();
    let statuses = match ProbeLock::try_acquire(&ctx.probe_locks, id.as_str()) {
        Ok(Some(_guard)) => {
            ctx.metrics.checks_started.fetch_add(1, Relaxed);
            let lag = Instant::now().saturating_duration_since(job.due);
            if lag <= ctx.tick {
                ctx.metrics.started_on_time.fetch_add(1, Relaxed);
            } else {
                ctx.metrics.started_late.fetch_add(1, Relaxed);
            }
            let probe = probe_isolated(job.target.clone(), ctx.model_concurrency);
            tokio::select! {
                results = probe => {
                    let statuses = results
                        .iter()
                        .map(|r| {
                            ctx.metrics.finished(r.status);
                            if r.kind == Kind::Internal {
                                ctx.metrics.panics.fetch_add(1, Relaxed);
                            }
                            tracing::debug!(
                                monitor = %r.monitor, model = %r.model, status = %r.status,
                                kind = %r.kind, http = ?r.http_status, ttft_ms = ?r.ttft_ms,
                                latency_ms = ?r.latency_ms, ping_ms = ?r.ping_ms,
                                message = %r.message, "check finished"
                            );
                            (r.model.clone(), r.status, r.kind)
                        })
                        .collect();
                    ctx.writer.write(results);
                    statuses
                }
                _ = ctx.abandon.cancelled() => Vec::new(),
            }
        }
        Ok(None) => {
            ctx.metrics.skipped_busy.fetch_add(1, Relaxed);
            tracing::debug!(monitor = %id, "skipped: another process is probing this monitor");
            Vec::new()
        }
        Err(e) => {
            tracing::error!(monitor = %id, error = %e, "cannot take the probe lock; check skipped");
            Vec::new()
        }
    };
    let _ = ctx.done.send(Done { id, statuses });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor() -> Monitor {
        let text = "[[monitor]]\nid = \"m\"\nprovider = \"openai\"\nendpoint = \"https://api.example.com\"\napi_key = \"sk-abc\"\nmodel = \"a\"\nextra_models = [\"b\"]\nheaders = { x-token = \"tok-123\" }\n";
        let loaded = config::parse(text, std::path::Path::new("t.toml"), &|_| None).unwrap();
        let config = loaded.config.monitors.into_iter().next().unwrap();
        Monitor {
            config,
            key: KeyState::Ready(crate::secret::Secret::new("sk-abc")),
        }
    }

    #[tokio::test]
    async fn a_panicking_probe_becomes_an_internal_error_per_model() {
        let m = monitor();
        let results = isolate(&m, async { panic!("boom") }).await;
        assert_eq!(results.len(), 2);
        assert!(
            results
                .iter()
                .all(|r| r.status == Status::Error && r.kind == Kind::Internal)
        );
        assert_eq!(results[1].model, "b");
    }

    #[test]
    fn the_redactor_covers_the_key_and_header_values() {
        let r = redactor_for(&monitor());
        let out = r.redact("key sk-abc and token tok-123");
        assert!(!out.contains("sk-abc") && !out.contains("tok-123"), "{out}");
    }
}
