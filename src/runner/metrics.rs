//! The daemon's counters, kept in one place (lock-free atomics). [`Metrics::snapshot`] exports
//! them as plain values (for tests, and `/metrics` later); [`Metrics::log`] writes them as
//! structured log fields (`dropped=3`, or JSON keys with `--log-format json`), never as prose.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::model::{CheckResult, Kind, Status};
use crate::pipeline::bus::Bus;

#[derive(Debug, Default)]
pub struct Metrics {
    pub checks_started: AtomicU64,
    /// Indexed by `Status::code()`; one per model result.
    finished: [AtomicU64; 4],
    /// Jobs dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Jobs skipped because another process (a shell `chanmon check`) was probing the monitor.
    pub skipped_busy: AtomicU64,
    /// Probes whose worker started them within one tick of their due time.
    pub started_on_time: AtomicU64,
    pub started_late: AtomicU64,
    /// Probes that panicked (recorded as error/internal).
    pub panics: AtomicU64,
    /// Results that could not be written even after retries.
    pub write_failures: AtomicU64,
    pub in_flight: AtomicU64,
    pub queue_depth: AtomicU64,
    /// Times a worker found the writer's queue full and waited to hand its results over (the
    /// database is behind; nothing is dropped).
    pub writer_waits: AtomicU64,
    /// Wall-clock ms of the ticker's last run (0: not yet): `/healthz` and `/metrics` read it.
    pub last_tick_ms: AtomicU64,
    /// Replicas (PostgreSQL): those alive at the last heartbeat, this one included (0: not a
    /// replica), and how many of them run a config other than this one's.
    pub replicas_alive: AtomicU64,
    pub replica_config_mismatch: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub checks_started: u64,
    pub finished_operational: u64,
    pub finished_degraded: u64,
    pub finished_failed: u64,
    pub finished_error: u64,
    pub dropped: u64,
    pub skipped_busy: u64,
    pub started_on_time: u64,
    pub started_late: u64,
    pub panics: u64,
    pub write_failures: u64,
    pub in_flight: u64,
    pub queue_depth: u64,
    pub writer_waits: u64,
    pub replicas_alive: u64,
    pub replica_config_mismatch: u64,
}

impl Metrics {
    /// A probe started, within one tick of its due time or later.
    pub fn started(&self, on_time: bool) {
        self.checks_started.fetch_add(1, Relaxed);
        if on_time {
            self.started_on_time.fetch_add(1, Relaxed);
        } else {
            self.started_late.fetch_add(1, Relaxed);
        }
    }

    /// One model's result came back from a probe.
    pub fn finished(&self, r: &CheckResult) {
        self.finished[r.status.code() as usize].fetch_add(1, Relaxed);
        if r.kind == Kind::Internal {
            self.panics.fetch_add(1, Relaxed);
        }
    }

    /// Logs every counter as a structured field, with the bus's published and lagged events.
    pub fn log(&self, message: &str, bus: &Bus) {
        let s = self.snapshot();
        tracing::info!(
            checks_started = s.checks_started,
            finished_operational = s.finished_operational,
            finished_degraded = s.finished_degraded,
            finished_failed = s.finished_failed,
            finished_error = s.finished_error,
            dropped = s.dropped,
            skipped_busy = s.skipped_busy,
            started_on_time = s.started_on_time,
            started_late = s.started_late,
            panics = s.panics,
            write_failures = s.write_failures,
            in_flight = s.in_flight,
            queue_depth = s.queue_depth,
            writer_waits = s.writer_waits,
            bus_published = bus.published(),
            bus_lagged = bus.lagged(),
            "{message}"
        );
    }

    pub fn snapshot(&self) -> Snapshot {
        let f = |s: Status| self.finished[s.code() as usize].load(Relaxed);
        Snapshot {
            checks_started: self.checks_started.load(Relaxed),
            finished_operational: f(Status::Operational),
            finished_degraded: f(Status::Degraded),
            finished_failed: f(Status::Failed),
            finished_error: f(Status::Error),
            dropped: self.dropped.load(Relaxed),
            skipped_busy: self.skipped_busy.load(Relaxed),
            started_on_time: self.started_on_time.load(Relaxed),
            started_late: self.started_late.load(Relaxed),
            panics: self.panics.load(Relaxed),
            write_failures: self.write_failures.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            queue_depth: self.queue_depth.load(Relaxed),
            writer_waits: self.writer_waits.load(Relaxed),
            replicas_alive: self.replicas_alive.load(Relaxed),
            replica_config_mismatch: self.replica_config_mismatch.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_counts_by_status() {
        let m = Metrics::default();
        let r = |kind: Kind| {
            CheckResult::error(
                crate::model::MonitorId::parse("m").unwrap(),
                "a".into(),
                crate::model::Timestamp(0),
                kind,
                String::new(),
            )
        };
        let slow = r(Kind::Slow);
        m.finished(&slow);
        m.finished(&slow);
        m.finished(&r(Kind::Internal));
        let s = m.snapshot();
        assert_eq!(
            (
                s.finished_degraded,
                s.finished_error,
                s.finished_operational
            ),
            (2, 1, 0)
        );
        assert_eq!(s.panics, 1);
    }
}
