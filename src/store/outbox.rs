//! What crosses the storage boundary for alerts: incidents as read back, outbox rows handed
//! to the drainer, and what a delivery attempt came to.
//!
//! The outbox holds one row per (incident event × sink), written in the same transaction as
//! the result that caused it; a row is pending until a delivery commits it `delivered`, or
//! retries run out and it is `dead` (a dead letter, logged and counted).

use crate::alert::{AlertEvent, EventKind, MonitorPlan};
use crate::model::{CheckResult, MonitorId, Timestamp};

/// One pending outbox row, due now.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub pk: i64,
    pub sink: String,
    /// Rows with the same sink and group (a monitor and an event kind, within the group
    /// window) go out as one notification.
    pub group: String,
    pub event: AlertEvent,
    /// Attempts so far.
    pub attempts: u32,
    /// When it is due.
    pub next_at: Timestamp,
}

/// What a delivery attempt came to; written in its own commit.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered { at: Timestamp },
    /// Try again at `next_at`.
    Retry { next_at: Timestamp, error: String },
    /// No more tries: a dead letter.
    Dead { error: String },
}

/// State of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryState {
    pub fn code(self) -> i64 {
        match self {
            DeliveryState::Pending => 0,
            DeliveryState::Delivered => 1,
            DeliveryState::Dead => 2,
        }
    }

    pub fn from_code(c: i64) -> DeliveryState {
        match c {
            1 => DeliveryState::Delivered,
            2 => DeliveryState::Dead,
            _ => DeliveryState::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

/// One outbox row as `chanmon incidents` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub sink: String,
    pub event: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub done_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// An incident of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    /// Stable id (event ids and PagerDuty's `dedup_key` derive from it).
    pub uid: String,
    pub monitor: MonitorId,
    pub model: String,
    /// The failing run began here.
    pub since: Timestamp,
    /// The result that crossed the threshold.
    pub opened_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub status: String,
    pub kind: String,
    pub message: String,
    /// Opened during a maintenance window: recorded, never announced.
    pub muted: bool,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    pub open_only: bool,
    /// Incidents still open at or resolved after this time.
    pub since: Option<Timestamp>,
    pub monitor: Option<MonitorId>,
    /// Newest first, at most this many (0: all).
    pub limit: usize,
}

/// Outbox rows by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub delivered: u64,
    pub dead: u64,
}

// What every backend builds the same way inside its results' transaction (moved out of the
// SQLite backend so PostgreSQL decides and words events identically).

/// The event one result causes for an incident.
pub(crate) fn event(
    mp: &MonitorPlan,
    r: &CheckResult,
    uid: &str,
    kind: EventKind,
    since: Timestamp,
    event_id: String,
) -> AlertEvent {
    AlertEvent {
        event_id,
        event: kind,
        incident: uid.to_owned(),
        monitor: r.monitor.as_str().to_owned(),
        monitor_name: mp.name.clone(),
        model: r.model.clone(),
        status: r.status.as_str().to_owned(),
        kind: r.kind.as_str().to_owned(),
        message: r.message.clone(),
        since_ms: since.millis(),
        at_ms: r.started_at.millis(),
        duration_ms: r.started_at.millis().saturating_sub(since.millis()),
    }
}

/// A random, stable id for a new incident (hex, 128 bits).
pub(crate) fn new_uid() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}
