//! The status tracker: per series (a model of a monitor), the latest status and kind, since
//! when the status holds, and how many results in a row had it.
//!
//! Pure decisions, no I/O: a backend loads the previous state, calls [`advance`] for each
//! result inside the transaction that writes the result, and stores the new state beside it.
//! So a restart neither forgets nor re-announces a state, and `prune` (which deletes raw rows
//! only) cannot erase it. Whatever later decides from a change (incidents, an outbox) is
//! written in that same transaction.

use serde::Serialize;

use crate::model::{CheckResult, Kind, MonitorId, Status, Timestamp};

/// The tracker's state of one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeriesState {
    pub status: Status,
    /// The kind of the newest result (kinds may change within one status).
    pub kind: Kind,
    /// `started_at` of the first result of the current run of this status.
    pub since: Timestamp,
    /// `started_at` of the newest result applied; older results do not move the state.
    pub last_at: Timestamp,
    /// Results in a row with this status (at least 1).
    pub consecutive: u32,
}

/// A series changed status (or got its first result).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusChange {
    pub monitor: MonitorId,
    pub model: String,
    /// Where the results were probed from (`""`: no location named).
    pub location: String,
    /// The state before, `None` for the first result ever recorded.
    pub from: Option<SeriesState>,
    /// The state after (`consecutive` is 1, `since` the result's start).
    pub to: SeriesState,
}

/// What one result does to a series' state.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The result is older than the newest one applied: the state stays as it is (a `check`
    /// and the daemon may finish in either order).
    Stale,
    /// Same status as before: the run goes on.
    Same(SeriesState),
    /// A new status, or the first result.
    Changed(SeriesState),
}

/// The next state of a series after `r`.
pub fn advance(prev: Option<&SeriesState>, r: &CheckResult) -> Step {
    let fresh = SeriesState {
        status: r.status,
        kind: r.kind,
        since: r.started_at,
        last_at: r.started_at,
        consecutive: 1,
    };
    match prev {
        None => Step::Changed(fresh),
        Some(p) if r.started_at < p.last_at => Step::Stale,
        Some(p) if p.status == r.status => Step::Same(SeriesState {
            kind: r.kind,
            last_at: r.started_at,
            consecutive: p.consecutive.saturating_add(1),
            ..*p
        }),
        Some(_) => Step::Changed(fresh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(at: i64, status: Status, kind: Kind) -> CheckResult {
        CheckResult {
            monitor: MonitorId::parse("m").unwrap(),
            model: "a".into(),
            started_at: Timestamp(at),
            status,
            kind,
            http_status: None,
            ttft_ms: None,
            latency_ms: None,
            ping_ms: None,
            message: String::new(),
            facts: Default::default(),
            location: String::new(),
            due_at: None,
        }
    }

    fn run(results: &[CheckResult]) -> (Option<SeriesState>, usize) {
        let mut state = None;
        let mut changes = 0;
        for x in results {
            match advance(state.as_ref(), x) {
                Step::Stale => {}
                Step::Same(s) => state = Some(s),
                Step::Changed(s) => {
                    state = Some(s);
                    changes += 1;
                }
            }
        }
        (state, changes)
    }

    #[test]
    fn runs_count_and_since_stays_at_the_first_result() {
        let (s, changes) = run(&[
            r(10, Status::Operational, Kind::Ok),
            r(20, Status::Operational, Kind::Ok),
            r(30, Status::Error, Kind::Timeout),
            r(40, Status::Error, Kind::RateLimited),
            r(50, Status::Error, Kind::Timeout),
        ]);
        let s = s.unwrap();
        assert_eq!(changes, 2);
        assert_eq!(s.status, Status::Error);
        assert_eq!(s.kind, Kind::Timeout);
        assert_eq!(s.since, Timestamp(30));
        assert_eq!(s.last_at, Timestamp(50));
        assert_eq!(s.consecutive, 3);
    }

    #[test]
    fn older_results_do_not_move_the_state() {
        let (s, changes) = run(&[
            r(100, Status::Operational, Kind::Ok),
            r(50, Status::Failed, Kind::Empty),
        ]);
        let s = s.unwrap();
        assert_eq!(
            (changes, s.status, s.consecutive),
            (1, Status::Operational, 1)
        );
    }

    #[test]
    fn a_result_in_the_same_millisecond_counts() {
        let (s, _) = run(&[
            r(100, Status::Operational, Kind::Ok),
            r(100, Status::Operational, Kind::Ok),
        ]);
        assert_eq!(s.unwrap().consecutive, 2);
    }
}
