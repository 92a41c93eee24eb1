//! The result bus: after the writer commits, every result and every status change is
//! published to observers that may fall behind (metrics, a live page).
//!
//! Each subscriber has its own bounded queue. Publishing never waits: when a subscriber's
//! queue is full the event is dropped for that subscriber only and counted (per subscriber
//! and in total), so a slow or stuck observer can never slow probes or the writer, and its
//! lag is bounded by its queue. The lossless path is the writer's transaction, not the bus.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::model::CheckResult;
use crate::pipeline::tracker::StatusChange;

/// What the bus carries.
#[derive(Debug, Clone)]
pub enum Event {
    /// A result, once committed.
    Result(Arc<CheckResult>),
    /// A status change, once committed.
    Change(Arc<StatusChange>),
}

struct Subscriber {
    name: String,
    tx: mpsc::Sender<Event>,
    lagged: Arc<AtomicU64>,
}

/// Fan-out to subscribers. Cheap to share (`Arc<Bus>`).
#[derive(Default)]
pub struct Bus {
    subscribers: Mutex<Vec<Subscriber>>,
    /// Events dropped because a subscriber's queue was full, all subscribers together.
    lagged_total: AtomicU64,
    published: AtomicU64,
}

/// One subscriber's end of the bus. Dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<Event>,
    lagged: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Events this subscriber missed because its queue was full.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Relaxed)
    }
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Subscribes with a queue of `capacity` events (at least 1). `name` appears in the log
    /// when this subscriber starts to lag.
    pub fn subscribe(&self, name: &str, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lagged = Arc::new(AtomicU64::new(0));
        self.lock().push(Subscriber {
            name: name.to_owned(),
            tx,
            lagged: lagged.clone(),
        });
        Subscription { rx, lagged }
    }

    /// Hands `event` to every subscriber that has room; never waits.
    pub fn publish(&self, event: Event) {
        self.published.fetch_add(1, Relaxed);
        let mut subs = self.lock();
        subs.retain(|s| match s.tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if s.lagged.fetch_add(1, Relaxed) == 0 {
                    tracing::warn!(subscriber = %s.name, "a bus subscriber is falling behind; its events are dropped and counted");
                }
                self.lagged_total.fetch_add(1, Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Whether anyone is subscribed (publishers may skip building events otherwise).
    pub fn has_subscribers(&self) -> bool {
        !self.lock().is_empty()
    }

    /// Events dropped for full subscriber queues, in total.
    pub fn lagged(&self) -> u64 {
        self.lagged_total.load(Relaxed)
    }

    /// Events published (each counted once, whatever the number of subscribers).
    pub fn published(&self) -> u64 {
        self.published.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        // A panic while holding this lock leaves the list intact: keep using it.
        self.subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, MonitorId, Status, Timestamp};

    fn ev(i: i64) -> Event {
        Event::Result(Arc::new(CheckResult {
            monitor: MonitorId::parse("m").unwrap(),
            model: "a".into(),
            started_at: Timestamp(i),
            status: Status::Operational,
            kind: Kind::Ok,
            http_status: None,
            ttft_ms: None,
            latency_ms: None,
            ping_ms: None,
            message: String::new(),
            facts: Default::default(),
            location: String::new(),
            due_at: None,
        }))
    }

    #[tokio::test]
    async fn a_full_subscriber_lags_without_blocking_the_others() {
        let bus = Bus::new();
        let mut fast = bus.subscribe("fast", 100);
        let stuck = bus.subscribe("stuck", 2);
        for i in 0..10 {
            bus.publish(ev(i));
        }
        assert_eq!(stuck.lagged(), 8);
        assert_eq!(bus.lagged(), 8);
        assert_eq!(fast.lagged(), 0);
        let mut seen = 0;
        while fast.try_recv().is_some() {
            seen += 1;
        }
        assert_eq!(seen, 10);
    }

    #[tokio::test]
    async fn dropped_subscriptions_are_forgotten() {
        let bus = Bus::new();
        let s = bus.subscribe("gone", 1);
        assert!(bus.has_subscribers());
        drop(s);
        bus.publish(ev(1));
        bus.publish(ev(2));
        assert_eq!(bus.lagged(), 0);
        assert!(!bus.has_subscribers(), "the closed subscriber was removed");
    }
}
