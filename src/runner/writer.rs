//! The daemon's single SQLite writer: a thread that owns the write connection and batches
//! results into one transaction per batch. Everything that writes in the daemon goes through
//! it (results and config re-syncs), so there is never a second writer in this process.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::config::{Monitor, MonitorConfig};
use crate::model::CheckResult;
use crate::runner::metrics::Metrics;
use crate::secret::MasterKey;
use crate::store::{Store, StoreError};

/// Rows held in memory while the database refuses writes; beyond this the oldest are dropped
/// (and counted) rather than exhausting memory.
const MAX_PENDING: usize = 200_000;
/// Rows per transaction.
const BATCH: usize = 2_000;

enum Msg {
    Results(Vec<CheckResult>),
    Sync(
        Vec<MonitorConfig>,
        oneshot::Sender<Result<Vec<Monitor>, StoreError>>,
    ),
}

/// Handle to the writer thread. Dropping every handle and calling [`Writer::finish`] flushes
/// what is queued and stops the thread.
pub struct Writer {
    tx: mpsc::UnboundedSender<Msg>,
    thread: Option<thread::JoinHandle<()>>,
}

#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Writer {
    pub fn start(store: Store, key: MasterKey, metrics: Arc<Metrics>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = thread::Builder::new()
            .name("chanmon-writer".into())
            .spawn(move || writer_loop(store, key, rx, metrics))?;
        Ok(Writer {
            tx,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> WriterHandle {
        WriterHandle {
            tx: self.tx.clone(),
        }
    }

    /// Writes everything queued so far, then stops. Blocks: call from a blocking context.
    pub fn finish(mut self) {
        let (tx, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the writer thread panicked; some results may be unwritten");
        }
    }
}

impl WriterHandle {
    pub fn write(&self, results: Vec<CheckResult>) {
        if !results.is_empty() && self.tx.send(Msg::Results(results)).is_err() {
            tracing::error!("results arrived after the writer stopped; they are lost");
        }
    }

    /// Re-syncs monitor definitions through the writer (config reload).
    pub async fn sync(&self, monitors: Vec<MonitorConfig>) -> Result<Vec<Monitor>, SyncError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Sync(monitors, tx))
            .map_err(|_| SyncError::Stopped)?;
        rx.await
            .map_err(|_| SyncError::Stopped)?
            .map_err(SyncError::Store)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the database writer has stopped")]
    Stopped,
    #[error(transparent)]
    Store(StoreError),
}

fn writer_loop(
    mut store: Store,
    key: MasterKey,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    metrics: Arc<Metrics>,
) {
    let mut pending: Vec<CheckResult> = Vec::new();
    let mut failures = 0u32;
    loop {
        // Block for the first message unless rows are waiting for a retry.
        let first = if pending.is_empty() {
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
                Msg::Results(r) => pending.extend(r),
                Msg::Sync(monitors, reply) => {
                    flush(&mut store, &mut pending, &mut failures, &metrics);
                    let _ = reply.send(store.sync_monitors(&monitors, &key));
                }
            }
            if pending.len() >= BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        flush(&mut store, &mut pending, &mut failures, &metrics);
        if !pending.is_empty() {
            // The database refused the batch (locked, disk full): back off, keep the rows.
            let wait = Duration::from_millis(100u64 << failures.min(6));
            thread::sleep(wait);
        }
    }
    // Shutdown: a last few attempts for what is left.
    for _ in 0..5 {
        flush(&mut store, &mut pending, &mut failures, &metrics);
        if pending.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    if !pending.is_empty() {
        metrics
            .write_failures
            .fetch_add(pending.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(
            rows = pending.len(),
            "results could not be written at shutdown"
        );
    }
}

fn flush(store: &mut Store, pending: &mut Vec<CheckResult>, failures: &mut u32, metrics: &Metrics) {
    while !pending.is_empty() {
        let n = pending.len().min(BATCH);
        match store.insert_results(&pending[..n]) {
            Ok(()) => {
                pending.drain(..n);
                *failures = 0;
            }
            Err(e) => {
                *failures += 1;
                tracing::error!(error = %e, rows = pending.len(), attempt = *failures, "writing results failed; will retry");
                if pending.len() > MAX_PENDING {
                    let excess = pending.len() - MAX_PENDING;
                    pending.drain(..excess);
                    metrics
                        .write_failures
                        .fetch_add(excess as u64, std::sync::atomic::Ordering::Relaxed);
                }
                return;
            }
        }
    }
}
