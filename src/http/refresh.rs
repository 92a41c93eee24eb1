//! The task that keeps the read model current: a first load, then results as they are
//! committed (the daemon's result bus, or a poll of new rows when `chanmon serve` runs
//! without a daemon in the process), a new view at most once a second, and a reload from the
//! database every `reload` (windows slide, new monitors appear, the day bars shift).
//!
//! Every database read runs on a blocking thread through the store's read-only connection,
//! so the writer never waits for a reader and the runtime never waits for SQLite.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::model::Model;
use crate::model::{CheckResult, Timestamp};
use crate::pipeline::bus::{Event, Subscription};
use crate::store::{Database, HistoryQuery, OpenMode, Storage, StoreError};

/// Where new results come from between reloads.
pub(crate) enum Feed {
    /// The daemon's result bus (every committed result).
    Bus(Subscription),
    /// Poll the database for rows newer than the model's (`chanmon serve`).
    Poll(Duration),
}

/// How far back a poll looks: a probe's row is committed after it finishes, up to its
/// timeout after it started.
const POLL_LOOKBACK: Duration = Duration::from_secs(180);
/// Most rows one poll applies.
const POLL_LIMIT: usize = 20_000;
/// Most bus events applied in one batch.
const BATCH: usize = 1_000;

/// Called on a blocking thread after each new view: renders the bodies clients asked for
/// recently, so requests find them ready.
pub(crate) type Warm = Arc<dyn Fn() + Send + Sync>;

/// A new view at most this often: a second for small fleets, longer for large ones (5 ms per
/// monitor), so rendering a large page stays a small share of a core.
fn publish_every(monitors: usize) -> Duration {
    Duration::from_secs(1).max(Duration::from_millis(5) * monitors as u32)
}

/// Runs `warm` unless the previous one still runs.
fn spawn_warm(warm: &Warm, busy: &Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering::{AcqRel, Release};
    if busy.swap(true, AcqRel) {
        return;
    }
    let (warm, busy) = (warm.clone(), busy.clone());
    tokio::task::spawn_blocking(move || {
        warm();
        busy.store(false, Release);
    });
}

/// Runs until `stop`.
pub(crate) async fn run(
    model: Arc<Model>,
    database: Database,
    mut feed: Feed,
    reload: Duration,
    warm: Warm,
    stop: CancellationToken,
) {
    let warming = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut last_publish = tokio::time::Instant::now();
    let mut store: Option<Box<dyn Storage>> = None;
    let mut publish = tokio::time::interval(Duration::from_secs(1));
    publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut reloads = tokio::time::interval(reload);
    reloads.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let poll_every = match &feed {
        Feed::Poll(d) => *d,
        Feed::Bus(_) => Duration::from_secs(3600),
    };
    let mut polls = tokio::time::interval(poll_every);
    polls.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loaded_days = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(first) = next_event(&mut feed) => {
                let mut batch = vec![first];
                if let Feed::Bus(sub) = &mut feed {
                    while batch.len() < BATCH {
                        match sub.try_recv() {
                            Some(Event::Result(r)) => batch.push(r),
                            Some(Event::Change(_)) => {}
                            None => break,
                        }
                    }
                }
                model.apply(&batch, true);
            }
            _ = reloads.tick() => {
                let days = !loaded_days || model.day_turned();
                store = load(&model, &database, store, days).await;
                loaded_days |= store.is_some() && days;
                if store.is_some() {
                    last_publish = tokio::time::Instant::now();
                    spawn_warm(&warm, &warming);
                }
            }
            _ = polls.tick(), if matches!(feed, Feed::Poll(_)) => {
                store = poll(&model, store).await;
            }
            _ = publish.tick() => {
                if model.needs_reload() {
                    reloads.reset_immediately();
                }
                let every = publish_every(model.view().monitors.len());
                if last_publish.elapsed() >= every && model.publish() {
                    last_publish = tokio::time::Instant::now();
                    spawn_warm(&warm, &warming);
                }
            }
        }
    }
}

/// The next committed result from the bus (never, when polling).
async fn next_event(feed: &mut Feed) -> Option<Arc<CheckResult>> {
    match feed {
        Feed::Bus(sub) => loop {
            match sub.recv().await? {
                Event::Result(r) => return Some(r),
                Event::Change(_) => continue,
            }
        },
        Feed::Poll(_) => std::future::pending().await,
    }
}

/// Opens the read-only connection when there is none.
fn connect(
    database: &Database,
    store: Option<Box<dyn Storage>>,
) -> Result<Box<dyn Storage>, StoreError> {
    match store {
        Some(s) => Ok(s),
        None => crate::store::open(database, OpenMode::ReadOnly),
    }
}

/// A full load on a blocking thread; returns the connection (none after a failure, so the
/// next attempt reopens it).
async fn load(
    model: &Arc<Model>,
    database: &Database,
    store: Option<Box<dyn Storage>>,
    days: bool,
) -> Option<Box<dyn Storage>> {
    let (m, db) = (model.clone(), database.clone());
    let joined = tokio::task::spawn_blocking(move || {
        let s = connect(&db, store)?;
        m.load(s.as_ref(), days)?;
        Ok::<_, StoreError>(s)
    })
    .await;
    match joined {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            model
                .db_ok
                .store(false, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(error = %e, "http: cannot read the database for the status page");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "http: the status page's database load crashed");
            None
        }
    }
}

/// Applies rows committed since the last poll (`chanmon serve`).
async fn poll(model: &Arc<Model>, store: Option<Box<dyn Storage>>) -> Option<Box<dyn Storage>> {
    let s = store?;
    let joined = tokio::task::spawn_blocking(move || {
        let q = HistoryQuery {
            since: Some(Timestamp::now().saturating_sub(POLL_LOOKBACK)),
            limit: POLL_LIMIT,
            ..HistoryQuery::default()
        };
        let rows = s.history(&q);
        (s, rows)
    })
    .await;
    match joined {
        Ok((s, Ok(mut rows))) => {
            // Oldest first, so each series moves forward one result at a time.
            rows.reverse();
            let rows: Vec<Arc<CheckResult>> = rows.into_iter().map(Arc::new).collect();
            model.apply(&rows, false);
            Some(s)
        }
        Ok((_, Err(e))) => {
            tracing::warn!(error = %e, "http: cannot poll the database for new results");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "http: the poll for new results crashed");
            None
        }
    }
}
