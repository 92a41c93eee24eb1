//! The daemon: ticker → bounded queue → fixed worker pool → the result pipeline's writer.
//!
//! [`Daemon::run`] reads top to bottom: start the workers, tick until told to stop (reloading
//! on request, off the ticker's path), then the shutdown dance in [`shutdown`]: stop
//! scheduling, let running probes finish within the grace period, cut off the rest (not
//! recorded: they are not upstream failures), flush every finished result, exit. The three
//! parts share one [`Control`] (a cancellation token and a reload request). A second signal
//! exits at once.
//!
//! `target` is the probe API that `chanmon check` shares with the daemon.

pub mod metrics;
mod official;
mod replica;
mod schedule;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Mutex, Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::alert::deliver::{DrainCtx, Drainer};
use crate::alert::watch::{Health, SdNotify, Watch};
use crate::config::{self, Config, Monitor, RunnerConfig};
use crate::model::{MonitorId, Timestamp};
use crate::pipeline::bus::Bus;
use crate::pipeline::{Fatal, Writer, WriterHandle};
use crate::secret::MasterKey;
use crate::store::{ProbeLocks, Storage};

use metrics::Metrics;
pub use replica::{config_hash, replica_name};
use schedule::{Schedule, Scheduled};
pub use target::{Prober, Target, WhenBusy};

impl Scheduled for Arc<Target> {
    type Id = MonitorId;
    fn id(&self) -> &MonitorId {
        &self.monitor.config.id
    }
    fn interval(&self) -> Duration {
        self.monitor.config.interval
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the database writer: {0}")]
    Writer(std::io::Error),
    /// The writer stopped the daemon: the database is damaged.
    #[error("{0}")]
    Damaged(String),
    #[error("cannot start alert delivery: {0}")]
    Alerts(String),
}

/// How a running daemon is told to stop or reload: by signals in production (see
/// [`Daemon::run`]), by hand in tests and embedders.
#[derive(Clone, Default)]
pub struct Control {
    shutdown: CancellationToken,
    reload: Arc<Notify>,
    counters: Arc<Notify>,
}

impl Control {
    /// Stop gracefully (SIGTERM, SIGINT).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Re-read the config (SIGHUP).
    pub fn reload(&self) {
        self.reload.notify_one();
    }

    /// Log the counters now (SIGUSR1), beside the five-minute summary: an operator, or a
    /// bench measuring one window of a run, reads them without stopping the daemon.
    pub fn log_counters(&self) {
        self.counters.notify_one();
    }

    /// Turns SIGTERM/SIGINT into a shutdown (a second one exits at once), SIGHUP into a
    /// reload and SIGUSR1 into a counters line, for the life of the process.
    fn listen_to_signals(&self) -> Result<(), RunnerError> {
        let mut term = signal(SignalKind::terminate()).map_err(RunnerError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(RunnerError::Signals)?;
        let mut hup = signal(SignalKind::hangup()).map_err(RunnerError::Signals)?;
        let mut usr1 = signal(SignalKind::user_defined1()).map_err(RunnerError::Signals)?;
        let control = self.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                    _ = hup.recv() => { control.reload(); continue; }
                    _ = usr1.recv() => { control.log_counters(); continue; }
                };
                if control.shutdown.is_cancelled() {
                    tracing::warn!("second signal: exiting now without waiting");
                    std::process::exit(1);
                }
                tracing::info!("{name}: shutting down");
                control.shutdown();
            }
        });
        Ok(())
    }
}

/// A job on the queue: one run of one monitor.
struct Job {
    target: Arc<Target>,
    due: Instant,
    /// `due` on the wall clock: the slot the results record (`CheckResult::due_at`).
    slot: Timestamp,
}

/// Everything the workers share.
struct WorkerCtx {
    queue: Mutex<mpsc::Receiver<Job>>,
    writer: WriterHandle,
    prober: Arc<Prober>,
    metrics: Arc<Metrics>,
    /// A worker reports each finished job so the ticker can release its in-flight mark.
    done: mpsc::UnboundedSender<MonitorId>,
    tick: Duration,
    /// Cancelled on the first signal: take no new job.
    stop: CancellationToken,
    /// Cancelled when the grace period ends: abandon running probes.
    abandon: CancellationToken,
    /// Where this daemon runs (`""`: none named), recorded with every result.
    location: String,
}

pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    monitors: Vec<Monitor>,
    writer: Writer,
    prober: Arc<Prober>,
    metrics: Arc<Metrics>,
    bus: Arc<Bus>,
    control: Control,
    /// Set by the writer when it stopped the daemon because the database is damaged.
    fatal: Fatal,
    /// The alert drainer's parts (its own store connection); `None` without sinks.
    drain: Option<DrainCtx>,
    /// `--location`, which outranks `[runner] location` at start and on every reload.
    location_flag: Option<String>,
    /// Set on a shared database (PostgreSQL): due checks are claimed from it.
    replica: Option<(Box<dyn crate::store::Claims>, crate::store::ReplicaReport)>,
}

impl Daemon {
    /// `monitors` are the synced monitors of `config`; `store` and `key` go to the writer.
    pub fn new(
        config_path: PathBuf,
        config: Config,
        monitors: Vec<Monitor>,
        store: Box<dyn Storage>,
        key: MasterKey,
        locks: Arc<dyn ProbeLocks>,
    ) -> Result<Daemon, RunnerError> {
        let metrics = Arc::new(Metrics::default());
        let bus = Arc::new(Bus::new());
        let control = Control::default();
        let fatal = Fatal::default();
        let writer = Writer::start(
            store,
            key,
            metrics.clone(),
            bus.clone(),
            fatal.clone(),
            control.shutdown.clone(),
        )
        .map_err(RunnerError::Writer)?;
        let prober = Arc::new(Prober::new(locks, config.runner.model_concurrency));
        let drain = DrainCtx::open(&config).map_err(RunnerError::Alerts)?;
        Ok(Daemon {
            config_path,
            config,
            monitors,
            writer,
            prober,
            metrics,
            bus,
            control,
            fatal,
            drain,
            location_flag: None,
            replica: None,
        })
    }

    /// Runs as one replica of several on a shared database: due checks are claimed from
    /// `claims` instead of this daemon's own schedule. The writer's store must complete the
    /// claims (`Storage::set_replica` with `me.name`, done by `chanmon run`).
    pub fn with_claims(
        mut self,
        claims: Box<dyn crate::store::Claims>,
        me: crate::store::ReplicaReport,
    ) -> Daemon {
        self.replica = Some((claims, me));
        self
    }

    /// Runs the daemon at `location` whatever `[runner] location` says, now and after
    /// reloads (`chanmon run --location`).
    pub fn with_location(mut self, location: Option<String>) -> Daemon {
        if let Some(l) = &location {
            self.config.runner.location = l.clone();
        }
        self.location_flag = location;
        self
    }

    /// The watch task's parts: the daemon's counters and the drainer's dead letters.
    fn watch(&self) -> Watch {
        let metrics = self.metrics.clone();
        let dead = self.drain.as_ref().map(|d| d.counters.clone());
        Watch {
            read: Box::new(move || {
                let s = metrics.snapshot();
                Health {
                    dropped: s.dropped,
                    write_failures: s.write_failures,
                    started_on_time: s.started_on_time,
                    started_late: s.started_late,
                    dead_letters: dead.as_ref().map_or(0, |c| c.dead.load(Relaxed)),
                }
            }),
            every: self.config.alerts.watch_every,
            sinks: self.config.alerts.defaults.sinks.clone(),
            drain: self.drain.clone(),
            heartbeat: self.config.alerts.heartbeat.clone(),
        }
    }

    /// The result bus: subscribe before [`Daemon::run`] to see every committed result and
    /// status change.
    pub fn bus(&self) -> Arc<Bus> {
        self.bus.clone()
    }

    /// The daemon's counters (read them with `snapshot()`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Stops or reloads the daemon from elsewhere in the process.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Runs until SIGTERM or SIGINT (SIGHUP reloads), or until the writer finds the database
    /// damaged (then the error says so).
    pub async fn run(self) -> Result<(), RunnerError> {
        self.control.listen_to_signals()?;
        let fatal = self.fatal.clone();
        self.run_controlled().await;
        match fatal.get() {
            Some(why) => Err(RunnerError::Damaged(why.clone())),
            None => Ok(()),
        }
    }

    /// Runs until [`Control::shutdown`].
    pub async fn run_controlled(mut self) {
        let runner = self.config.runner.clone();
        let (job_tx, job_rx) = mpsc::channel::<Job>(runner.queue);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let ctx = Arc::new(WorkerCtx {
            queue: Mutex::new(job_rx),
            writer: self.writer.handle(),
            prober: self.prober.clone(),
            metrics: self.metrics.clone(),
            done: done_tx,
            tick: runner.tick,
            stop: CancellationToken::new(),
            abandon: CancellationToken::new(),
            location: runner.location.clone(),
        });
        let mut workers = JoinSet::new();
        for _ in 0..runner.workers {
            workers.spawn(worker(ctx.clone()));
        }
        let mut ticker = Ticker {
            schedule: Schedule::new(runner.tick, runner.jitter),
            tick: runner.tick,
            jobs: job_tx,
            done: done_rx,
            queue: runner.queue,
            metrics: self.metrics.clone(),
            started: false,
            wall: None,
            replica: self.replica.take().map(|(claims, me)| {
                replica::Replica::new(claims, me, self.config_path.clone(), self.metrics.clone())
            }),
            claiming: None,
            beating: None,
        };
        let watch = self.watch();
        let targets = active_targets(
            self.config.enabled,
            self.monitors,
            &self.prober,
            &runner.location,
        );
        tracing::info!(
            monitors = targets.len(),
            workers = runner.workers,
            queue = runner.queue,
            database = %self.config.database,
            location = %runner.location,
            "daemon started"
        );
        match ticker.replica.as_mut() {
            // The shared schedule decides what is due; this one stays empty.
            Some(r) => {
                r.set_targets(&targets).await;
                ticker.beating = Some(r.heartbeat());
            }
            None => {
                let now = Instant::now();
                ticker.schedule.set_targets(targets, now);
                ticker.anchor_slots(now);
            }
        }
        let pollers = official::Pollers::start(&self.config, &ctx.writer);
        // The drainer stops after the writer has flushed, so alerts the last results owe are
        // tried before the process exits.
        let drain_stop = CancellationToken::new();
        let drainer = self.drain.clone().map(|d| {
            let grace = runner.shutdown_grace.min(Duration::from_secs(5));
            tokio::spawn(Drainer::run(d, drain_stop.clone(), grace))
        });
        let watch_stop = CancellationToken::new();
        let sd = SdNotify::from_env();
        tokio::spawn(watch.run(watch_stop.clone()));
        tokio::spawn(sd.clone().watchdog(watch_stop.clone()));
        sd.notify("READY=1");
        let mut running = self.config;
        // The monitors live in the targets; a second copy of 100,000 of them here would only
        // cost memory (the reloader compares `[runner]` and the database path).
        running.monitors = Vec::new();
        let reloader = Reloader {
            path: self.config_path,
            pollers,
            running,
            writer: ctx.writer.clone(),
            prober: self.prober.clone(),
            drain: self.drain.clone(),
            location_flag: self.location_flag.clone(),
        };
        ticker.run(reloader, &self.control, &self.bus).await;
        sd.notify("STOPPING=1");
        watch_stop.cancel();
        shutdown(
            ticker,
            ctx,
            workers,
            self.writer,
            &runner,
            &self.metrics,
            &self.bus,
        )
        .await;
        drain_stop.cancel();
        if let Some(d) = drainer
            && let Err(e) = d.await
        {
            tracing::error!(error = %e, "the alert drainer did not stop cleanly");
        }
    }
}

/// The scheduling side: due monitors onto the queue, finished ones released.
struct Ticker {
    schedule: Schedule<Arc<Target>>,
    tick: Duration,
    jobs: mpsc::Sender<Job>,
    done: mpsc::UnboundedReceiver<MonitorId>,
    queue: usize,
    metrics: Arc<Metrics>,
    /// Whether a job has been queued yet: the first one is logged, so start-up time (process
    /// start to first probe) can be read from the log.
    started: bool,
    /// The grid's origin on the monotonic and on the wall clock, taken once: a slot is the
    /// origin's wall time plus the due time's offset on the grid, so slots stay whole ticks
    /// apart even when the wall clock is stepped.
    wall: Option<(Instant, Timestamp)>,
    /// On a shared database: claims from its schedule replace `schedule`.
    replica: Option<replica::Replica>,
    /// The replica's claim and heartbeat under way, if any.
    claiming: replica::Pending<Vec<crate::store::Claim>>,
    beating: replica::Pending<Vec<crate::store::ReplicaInfo>>,
}

impl Ticker {
    /// Ticks until the shutdown token fires. Reloads run beside it: the new targets are
    /// swapped in at once when they are ready, and probes keep their schedule meanwhile.
    async fn run(&mut self, reloader: Reloader, control: &Control, bus: &Bus) {
        // The reloader is out (in its task) while a reload runs; a request meanwhile waits.
        let mut reloader = Some(reloader);
        // On the schedule's grid, so a run is dispatched at the tick it is due on.
        let start = match (&self.replica, self.schedule.origin()) {
            // Replicas tick at random phases: the first claim after a slot falls due wins
            // it, so replicas started together would otherwise leave one of them every check.
            (Some(_), _) => {
                let tick_ms = u64::try_from(self.tick.as_millis()).unwrap_or(1).max(1);
                Instant::now() + Duration::from_millis(fastrand::u64(0..tick_ms))
            }
            (None, Some(origin)) => origin,
            (None, None) => Instant::now(),
        };
        let mut ticker = tokio::time::interval_at(start.into(), self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut summary = tokio::time::interval(Duration::from_secs(300));
        summary.tick().await;
        let (ready_tx, mut ready_rx) = mpsc::channel(1);
        let mut reloading: Option<tokio::task::JoinHandle<Reloader>> = None;
        let mut beat = tokio::time::interval(replica::HEARTBEAT);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.dispatch(),
                Some(id) = self.done.recv() => self.release(&id),
                got = replica::wait(&mut self.claiming) => {
                    if let Some(r) = self.replica.as_ref() {
                        let claimed = r.claimed(got);
                        self.enqueue_claimed(claimed);
                    }
                }
                got = replica::wait(&mut self.beating) => {
                    if let Some(r) = self.replica.as_mut() {
                        r.heard(got);
                    }
                }
                _ = beat.tick(), if self.replica.is_some() && self.beating.is_none() => {
                    self.beating = self.replica.as_ref().map(replica::Replica::heartbeat);
                }
                _ = control.reload.notified(), if reloader.is_some() => {
                    if let Some(r) = reloader.take() {
                        reloading = Some(tokio::spawn(r.reload(ready_tx.clone())));
                    }
                }
                Some(targets) = ready_rx.recv() => match self.replica.as_mut() {
                    Some(r) => {
                        r.set_targets(&targets).await;
                        if self.beating.is_none() {
                            self.beating = Some(r.heartbeat());
                        }
                    }
                    None => self.schedule.set_targets(targets, Instant::now()),
                },
                back = wait_reload(&mut reloading) => reloader = back,
                _ = summary.tick() => self.metrics.log("daemon counters", bus),
                _ = control.counters.notified() => self.metrics.log("daemon counters", bus),
                _ = control.shutdown.cancelled() => break,
            }
        }
    }

    /// Pins the grid's origin to the wall clock (after the first `set_targets`).
    fn anchor_slots(&mut self, now: Instant) {
        if let Some(origin) = self.schedule.origin() {
            let since = now.saturating_duration_since(origin);
            self.wall = Some((origin, Timestamp::now().saturating_sub(since)));
        }
    }

    /// A due time on the wall clock.
    fn slot(&self, due: Instant) -> Timestamp {
        match self.wall {
            Some((origin, wall)) => wall.saturating_add(due.saturating_duration_since(origin)),
            None => Timestamp::now(),
        }
    }

    fn dispatch(&mut self) {
        let now = crate::model::Timestamp::now().millis();
        self.metrics
            .last_tick_ms
            .store(u64::try_from(now).unwrap_or(0), Relaxed);
        if let Some(r) = self.replica.as_ref() {
            // Never more than the queue can take: a claimed check is someone's to run.
            let room = self.jobs.capacity();
            if self.claiming.is_none() && room > 0 {
                self.claiming = Some(r.claim(room));
            }
            self.metrics
                .queue_depth
                .store((self.queue - self.jobs.capacity()) as u64, Relaxed);
            return;
        }
        for due in self.schedule.take_due(Instant::now()) {
            let id = due.target.monitor.config.id.clone();
            let slot = self.slot(due.due);
            match self.jobs.try_send(Job {
                target: due.target,
                due: due.due,
                slot,
            }) {
                Ok(()) if !self.started => {
                    self.started = true;
                    tracing::info!(monitor = %id, "first check queued");
                }
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.schedule.release(&id);
                    let n = self.metrics.dropped.fetch_add(1, Relaxed) + 1;
                    tracing::warn!(monitor = %id, dropped_total = n, "queue full: check dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.schedule.release(&id),
            }
        }
        self.metrics
            .queue_depth
            .store((self.queue - self.jobs.capacity()) as u64, Relaxed);
        self.metrics
            .in_flight
            .store(self.schedule.in_flight() as u64, Relaxed);
    }

    /// Queues checks claimed from the shared schedule, due at their slots.
    fn enqueue_claimed(&mut self, claimed: Vec<(Arc<Target>, Timestamp)>) {
        let (now, wall) = (Instant::now(), Timestamp::now().millis());
        for (target, slot) in claimed {
            let behind = u64::try_from(wall - slot.millis()).unwrap_or(0);
            let due = now
                .checked_sub(Duration::from_millis(behind))
                .unwrap_or(now);
            let id = target.monitor.config.id.clone();
            match self.jobs.try_send(Job { target, due, slot }) {
                Ok(()) => {
                    if let Some(r) = self.replica.as_mut() {
                        r.outstanding += 1;
                    }
                    if !self.started {
                        self.started = true;
                        tracing::info!(monitor = %id, "first check queued");
                    }
                }
                // Claims never exceed the room in the queue; were one refused, its lease
                // runs out and the slot is run then, here or by another replica.
                Err(_) => {
                    let n = self.metrics.dropped.fetch_add(1, Relaxed) + 1;
                    tracing::warn!(monitor = %id, dropped_total = n, "queue full: claimed check dropped");
                }
            }
        }
        if let Some(r) = self.replica.as_ref() {
            self.metrics.in_flight.store(r.outstanding as u64, Relaxed);
        }
    }

    fn release(&mut self, id: &MonitorId) {
        if let Some(r) = self.replica.as_mut() {
            r.outstanding = r.outstanding.saturating_sub(1);
            self.metrics.in_flight.store(r.outstanding as u64, Relaxed);
            return;
        }
        self.schedule.release(id);
        self.metrics
            .in_flight
            .store(self.schedule.in_flight() as u64, Relaxed);
    }
}

/// The reloader back from its task, once the reload finishes (never, while none runs). A
/// reload task that panicked leaves no reloader: later SIGHUPs are then refused, logged.
async fn wait_reload(task: &mut Option<tokio::task::JoinHandle<Reloader>>) -> Option<Reloader> {
    let back = match task.as_mut() {
        Some(t) => t.await,
        None => std::future::pending().await,
    };
    *task = None;
    match back {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(error = %e, "the reload crashed; restart chanmon to reload the config");
            None
        }
    }
}

/// SIGHUP: re-read the config, re-sync it through the writer, hand new targets to the ticker.
struct Reloader {
    path: PathBuf,
    /// The config in effect (its `[runner]` and database stay until a restart), without its
    /// monitors: those are in the schedule's targets.
    running: Config,
    writer: WriterHandle,
    prober: Arc<Prober>,
    /// The status-page pollers of the running config, restarted with it.
    pollers: official::Pollers,
    /// The alert drainer, whose sinks a reload replaces (added or removed sinks need a
    /// restart to start or stop the drainer itself).
    drain: Option<DrainCtx>,
    /// `--location`, applied over each reloaded config.
    location_flag: Option<String>,
}

impl Reloader {
    /// Loads, validates and syncs the config off the ticker's path; a bad config keeps the
    /// running one. Returns itself for the next reload.
    async fn reload(mut self, ready: mpsc::Sender<Vec<Arc<Target>>>) -> Reloader {
        tracing::info!(config = %self.path.display(), "SIGHUP: reloading the config");
        let path = self.path.clone();
        // The alert plan (one entry per monitor) is built beside the parse, off the runtime.
        let load = move || {
            config::load(&path).map(|l| {
                let plan = Arc::new(l.config.alerts.plan(&l.config.monitors));
                (l, plan)
            })
        };
        let (loaded, plan) = match in_background(load).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                tracing::error!("reload failed, keeping the running config:\n{e}");
                return self;
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed, keeping the running config");
                return self;
            }
        };
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let mut new = loaded.config;
        if let Some(l) = &self.location_flag {
            new.runner.location = l.clone();
        }
        if new.runner != self.running.runner {
            tracing::warn!("[runner] changes take effect at the next restart");
        }
        if new.http != self.running.http {
            tracing::warn!("[http] changes take effect at the next restart");
        }
        if new.database != self.running.database {
            tracing::warn!("a new database path takes effect at the next restart");
        }
        // Planned before the monitors move into the sync; started only once the sync succeeded.
        let polls = official::plan(&new);
        let monitors = match self.writer.sync(std::mem::take(&mut new.monitors)).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "reload failed to sync the database, keeping the running config");
                return self;
            }
        };
        self.prober.reset_clients();
        self.pollers.restart(polls, &self.writer);
        self.writer.alert_plan(plan).await;
        if let Some(d) = &self.drain {
            match crate::alert::deliver::Sender::new(
                &new.alerts.sinks,
                new.alerts.status_page.clone(),
            ) {
                Ok(s) => d.set_sender(Arc::new(s)),
                Err(e) => tracing::error!(error = %e, "reload: the alert sinks were not replaced"),
            }
        }
        // Preparing 100,000 targets (a redactor each) is CPU work: kept off the runtime's
        // threads, where it would delay the probes running beside the reload.
        let (prober, enabled) = (self.prober.clone(), new.enabled);
        let location = self.running.runner.location.clone();
        let targets = match in_background(move || {
            active_targets(enabled, monitors, &prober, &location)
        })
        .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "reload failed, keeping the running config");
                return self;
            }
        };
        tracing::info!(monitors = targets.len(), "config reloaded");
        let _ = ready.send(targets).await;
        new.runner = self.running.runner.clone();
        new.database = self.running.database.clone();
        new.http = self.running.http.clone();
        self.running = new;
        self
    }
}

/// Runs a reload's CPU work (parsing, preparing targets) on a thread of its own at a lower
/// priority: on a busy host the probes' workers and the ticker come first, and a reload of a
/// large config takes longer instead of making checks start late. `Err` if `f` panicked.
async fn in_background<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("chanmon-reload".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(f());
        })
        .map_err(|e| format!("cannot start the reload thread: {e}"))?;
    rx.await
        .map_err(|_| "the reload thread crashed (see the log above)".to_owned())
}

/// Raises the calling thread's nice value by 10 (Linux: per thread). Best effort: where it is
/// refused the reload simply runs at the normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::nice(10) {
        tracing::debug!(error = %e, "cannot lower the reload thread's priority");
    }
}

/// 1. Stop scheduling (queued jobs that have not started are dropped with the queue);
/// 2. let running probes finish within the grace period, then abandon them (not recorded);
/// 3. flush every finished result through the writer.
async fn shutdown(
    ticker: Ticker,
    ctx: Arc<WorkerCtx>,
    mut workers: JoinSet<()>,
    writer: Writer,
    runner: &RunnerConfig,
    metrics: &Metrics,
    bus: &Bus,
) {
    ctx.stop.cancel();
    let Ticker { jobs, mut done, .. } = ticker;
    drop(jobs);
    let grace = tokio::time::sleep(runner.shutdown_grace);
    tokio::pin!(grace);
    let mut abandoned = false;
    loop {
        tokio::select! {
            joined = workers.join_next() => if joined.is_none() { break },
            Some(_) = done.recv() => {}
            _ = &mut grace, if !abandoned => {
                tracing::warn!(
                    in_flight = metrics.in_flight.load(Relaxed),
                    "shutdown grace period over: abandoning running probes (not recorded)"
                );
                ctx.abandon.cancel();
                abandoned = true;
            }
        }
    }
    drop(ctx);
    if let Err(e) = tokio::task::spawn_blocking(move || writer.finish()).await {
        tracing::error!(error = %e, "the writer did not finish cleanly");
    }
    metrics.log("daemon stopped", bus);
}

/// The targets the daemon should schedule: none when the config is globally disabled; of the
/// enabled monitors, those probed from this daemon's `location` (the others are counted in
/// one log line, here at start and on each reload).
fn active_targets(
    enabled: bool,
    monitors: Vec<Monitor>,
    prober: &Prober,
    location: &str,
) -> Vec<Arc<Target>> {
    if !enabled {
        tracing::info!("config has enabled = false: the daemon stays idle");
        return Vec::new();
    }
    let (mine, elsewhere): (Vec<Monitor>, Vec<Monitor>) = monitors
        .into_iter()
        .filter(|m| m.config.enabled)
        .partition(|m| m.config.probed_from(location));
    if !elsewhere.is_empty() {
        tracing::info!(
            location = %location,
            not_scheduled = elsewhere.len(),
            "monitors whose `locations` do not include this daemon's location are not scheduled here"
        );
    }
    prober.prepare(mine)
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
        let id = job.target.monitor.config.id.clone();
        run_job(&ctx, job).await;
        let _ = ctx.done.send(id);
    }
}

async fn run_job(ctx: &WorkerCtx, job: Job) {
    let id = job.target.monitor.config.id.clone();
    match ctx.prober.lock(&id, WhenBusy::Skip).await {
        Ok(Some(guard)) => {
            let lag = Instant::now().saturating_duration_since(job.due);
            ctx.metrics.started(lag <= ctx.tick);
            let mut results = tokio::select! {
                r = ctx.prober.probe_held(job.target, guard) => r,
                _ = ctx.abandon.cancelled() => return,
            };
            for r in &mut results {
                r.location.clone_from(&ctx.location);
                r.due_at = Some(job.slot);
            }
            for r in &results {
                ctx.metrics.finished(r);
                tracing::debug!(
                    monitor = %r.monitor, model = %r.model, status = %r.status,
                    kind = %r.kind, http = ?r.http_status, ttft_ms = ?r.ttft_ms,
                    latency_ms = ?r.latency_ms, ping_ms = ?r.ping_ms,
                    message = %r.message, "check finished"
                );
            }
            ctx.writer.write(results).await;
        }
        Ok(None) => {
            ctx.metrics.skipped_busy.fetch_add(1, Relaxed);
            tracing::debug!(monitor = %id, "skipped: another process is probing this monitor");
        }
        Err(e) => {
            tracing::error!(monitor = %id, error = %e, "cannot take the probe lock; check skipped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reload_work_runs_at_a_lower_priority_and_a_panic_is_an_error() {
        #[cfg(target_os = "linux")]
        {
            let mine = rustix::process::getpriority_process(None).expect("own priority");
            let theirs = in_background(|| rustix::process::getpriority_process(None))
                .await
                .expect("the closure ran")
                .expect("its priority");
            assert_eq!(
                theirs,
                (mine + 10).min(19),
                "nice +10 on the reload thread only"
            );
            let after = rustix::process::getpriority_process(None).expect("own priority");
            assert_eq!(after, mine, "the caller's priority is untouched");
        }
        assert_eq!(in_background(|| 41 + 1).await, Ok(42));
        let crashed = in_background(|| -> u32 { panic!("boom") }).await;
        assert!(crashed.unwrap_err().contains("crashed"));
    }
}
