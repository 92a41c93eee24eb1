//! The daemon's single database writer: a thread that owns the write connection and batches
//! results into one transaction per batch. Everything that writes in the daemon goes through
//! it (results, config re-syncs and status page readings), so there is never a second writer in this process.
//!
//! After each commit it publishes the batch's results and status changes on the bus and logs
//! the changes: an observer only ever sees what is durably stored.
//!
//! The channel into the thread is bounded ([`QUEUE`] messages, one per probe run): when the
//! database falls behind, the workers wait to hand over their results (backpressure, counted
//! in `writer_waits`) instead of memory growing without limit. The ticker never writes, so it
//! never waits here; nothing handed over is dropped.
//!
//! A database the store reports damaged is never retried: the writer drops what it holds
//! (counted as write failures), says so loudly, records why in [`Fatal`] and asks the daemon
//! to stop. The store itself refuses every later write.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::bus::{Bus, Event};
use super::tracker::StatusChange;
use crate::config::{Monitor, MonitorConfig};
use crate::keys;
use crate::model::CheckResult;
use crate::official::OfficialStatus;
use crate::runner::metrics::Metrics;
use crate::secret::MasterKey;
use crate::store::{Storage, StoreError};

/// Rows held in memory while the database refuses writes; beyond this the oldest are dropped
/// (and counted) rather than exhausting memory.
const MAX_PENDING: usize = 200_000;
/// Rows per transaction.
const BATCH: usize = 2_000;
/// Messages (one probe run's results, or a sync) waiting for the writer thread: several
/// seconds of results at 100,000 monitors a minute, a few MiB at most.
const QUEUE: usize = 8_192;

type SyncReply = oneshot::Sender<Result<Vec<Monitor>, StoreError>>;

/// Why the writer stopped writing for good (the database is damaged), once it has.
pub(crate) type Fatal = Arc<std::sync::OnceLock<String>>;

enum Msg {
    Results(Vec<CheckResult>),
    Sync(Vec<MonitorConfig>, SyncReply),
    /// A status page's latest reading: one small upsert, not retried (the next poll rewrites
    /// it).
    Official(OfficialStatus),
    /// New alert rules (a reload): results after this are decided with them.
    AlertPlan(Arc<crate::alert::AlertPlan>),
}

/// The writer thread. Dropping every handle and calling [`Writer::finish`] flushes what is
/// queued and stops the thread.
pub(crate) struct Writer {
    tx: mpsc::Sender<Msg>,
    thread: Option<thread::JoinHandle<()>>,
    /// Handed to each handle, which counts its waits on a full queue.
    metrics: Arc<Metrics>,
}

#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    metrics: Arc<Metrics>,
}

/// What the writer thread owns.
struct State {
    store: Box<dyn Storage>,
    key: MasterKey,
    metrics: Arc<Metrics>,
    bus: Arc<Bus>,
    /// Results received and not yet committed, oldest first.
    pending: Vec<CheckResult>,
    /// Consecutive failed commits, for the back-off.
    failures: u32,
    /// Set when the database is damaged: nothing is written any more.
    fatal: Fatal,
    /// Cancelled to ask the daemon to stop.
    stop: CancellationToken,
}

impl Writer {
    /// `stop` is cancelled, and `fatal` set, when the database turns out to be damaged.
    pub(crate) fn start(
        store: Box<dyn Storage>,
        key: MasterKey,
        metrics: Arc<Metrics>,
        bus: Arc<Bus>,
        fatal: Fatal,
        stop: CancellationToken,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let state = State {
            store,
            key,
            metrics: metrics.clone(),
            bus,
            pending: Vec::new(),
            failures: 0,
            fatal,
            stop,
        };
        let thread = thread::Builder::new()
            .name("chanmon-writer".into())
            .spawn(move || writer_loop(state, rx))?;
        Ok(Writer {
            tx,
            thread: Some(thread),
            metrics,
        })
    }

    pub(crate) fn handle(&self) -> WriterHandle {
        WriterHandle {
            tx: self.tx.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Writes everything queued so far, then stops. Blocks: call from a blocking context.
    pub(crate) fn finish(mut self) {
        let (tx, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the writer thread panicked; some results may be unwritten");
        }
    }
}

impl WriterHandle {
    /// Hands results to the writer thread, waiting while its queue is full.
    pub(crate) async fn write(&self, results: Vec<CheckResult>) {
        if results.is_empty() {
            return;
        }
        let msg = match self.tx.try_send(Msg::Results(results)) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(msg)) => {
                self.metrics.writer_waits.fetch_add(1, Relaxed);
                msg
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("results arrived after the writer stopped; they are lost");
                return;
            }
        };
        if self.tx.send(msg).await.is_err() {
            tracing::error!("results arrived after the writer stopped; they are lost");
        }
    }

    /// Hands a status page reading to the writer thread (waits while its queue is full: the
    /// poller has nothing else to do).
    pub(crate) async fn official(&self, status: OfficialStatus) {
        if self.tx.send(Msg::Official(status)).await.is_err() {
            tracing::debug!("a status page reading arrived after the writer stopped");
        }
    }

    /// Hands new alert rules to the writer (config reload).
    pub(crate) async fn alert_plan(&self, plan: Arc<crate::alert::AlertPlan>) {
        if self.tx.send(Msg::AlertPlan(plan)).await.is_err() {
            tracing::debug!("alert rules arrived after the writer stopped");
        }
    }

    /// Re-syncs monitor definitions through the writer (config reload).
    pub(crate) async fn sync(
        &self,
        monitors: Vec<MonitorConfig>,
    ) -> Result<Vec<Monitor>, SyncError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Sync(monitors, tx))
            .await
            .map_err(|_| SyncError::Stopped)?;
        rx.await
            .map_err(|_| SyncError::Stopped)?
            .map_err(SyncError::Store)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error("the database writer has stopped")]
    Stopped,
    #[error(transparent)]
    Store(StoreError),
}

fn writer_loop(mut st: State, mut rx: mpsc::Receiver<Msg>) {
    loop {
        // Block for the first message unless rows are waiting for a retry.
        let first = if st.pending.is_empty() {
            match rx.blocking_recv() {
                Some(m) => Some(m),
                None => break,
            }
        } else {
            match rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        };
        let mut next = first;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Results(r) => st.pending.extend(r),
                Msg::Sync(monitors, reply) => {
                    st.flush();
                    let synced = keys::sync(st.store.as_mut(), &monitors, &st.key);
                    if let Err(e) = &synced
                        && e.is_damaged()
                    {
                        st.damaged(e);
                    }
                    let _ = reply.send(synced);
                }
                Msg::AlertPlan(plan) => {
                    // Results queued before the reload are decided with the old rules.
                    st.flush();
                    st.store.set_alert_plan(plan);
                }
                Msg::Official(status) => {
                    if let Err(e) = st.store.put_official_status(&status) {
                        tracing::warn!(error = %e, url = %status.url, "writing a status page reading failed");
                    }
                }
            }
            if st.pending.len() >= BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        st.flush();
        if !st.pending.is_empty() {
            // The database refused the batch (locked, disk full): back off, keep the rows.
            let wait = Duration::from_millis(100u64 << st.failures.min(6));
            thread::sleep(wait);
        }
    }
    // Shutdown: a last few attempts for what is left.
    for _ in 0..5 {
        st.flush();
        if st.pending.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    if !st.pending.is_empty() {
        st.metrics
            .write_failures
            .fetch_add(st.pending.len() as u64, Relaxed);
        tracing::error!(
            rows = st.pending.len(),
            "results could not be written at shutdown"
        );
    }
}

impl State {
    /// Commits pending rows batch by batch; stops at the first failure (rows kept for a retry).
    fn flush(&mut self) {
        while !self.pending.is_empty() {
            let n = self.pending.len().min(BATCH);
            match self.store.insert_results(&self.pending[..n]) {
                Ok(changes) => {
                    let batch: Vec<CheckResult> = self.pending.drain(..n).collect();
                    self.failures = 0;
                    self.publish(batch, changes);
                }
                Err(e) if e.is_damaged() => {
                    self.damaged(&e);
                    return;
                }
                Err(e) => {
                    self.failures += 1;
                    tracing::error!(error = %e, rows = self.pending.len(), attempt = self.failures, "writing results failed; will retry");
                    if self.pending.len() > MAX_PENDING {
                        let excess = self.pending.len() - MAX_PENDING;
                        self.pending.drain(..excess);
                        self.metrics
                            .write_failures
                            .fetch_add(excess as u64, Relaxed);
                    }
                    return;
                }
            }
        }
    }

    /// The database is damaged: drop what is pending (counted), never retry; the first time,
    /// say so loudly and ask the daemon to stop.
    fn damaged(&mut self, e: &StoreError) {
        let dropped = self.pending.len();
        self.pending.clear();
        self.metrics
            .write_failures
            .fetch_add(dropped as u64, Relaxed);
        if self.fatal.set(e.to_string()).is_ok() {
            tracing::error!(
                error = %e,
                rows_dropped = dropped,
                "THE DATABASE IS DAMAGED: chanmon writes nothing more to it and stops; run `chanmon verify`, then restore a backup"
            );
            self.stop.cancel();
        }
    }

    fn publish(&self, batch: Vec<CheckResult>, changes: Vec<StatusChange>) {
        // With nobody listening (the usual daemon), skip the per-result allocations.
        let listened = self.bus.has_subscribers();
        if listened {
            for r in batch {
                self.bus.publish(Event::Result(Arc::new(r)));
            }
        }
        for c in changes {
            let from = c.from.map_or("unknown", |s| s.status.as_str());
            tracing::info!(
                monitor = %c.monitor, model = %c.model, from, to = %c.to.status,
                kind = %c.to.kind, "status changed"
            );
            if listened {
                self.bus.publish(Event::Change(Arc::new(c)));
            }
        }
    }
}
