//! When an incident opens, resolves or owes a reminder: pure decisions, no I/O.
//!
//! Per series (a model of a monitor) the store keeps an [`AlertState`] and calls [`step`] for
//! each result inside the transaction that writes the result. The counts are kept here rather
//! than taken from the status tracker because "failing" spans statuses (`failed` then `error`
//! is one run of failures) and ignored kinds count neither way.
//!
//! Counts stop growing once they can no longer change a decision, so a steady series leaves
//! its state unchanged and the store writes nothing for it. Results older than the newest
//! one applied never get here: the status tracker marks them stale first.

use std::time::Duration;

use super::Rule;
use crate::model::{CheckResult, Timestamp};

/// The alert state of one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AlertState {
    /// Failing results in a row (capped at the failure threshold).
    pub fail_run: u32,
    /// Passing results in a row (capped at the success threshold).
    pub ok_run: u32,
    /// `started_at` of the first result of the current failing run.
    pub fail_since: Option<Timestamp>,
    /// The open incident, if any (the store's key for it).
    pub incident: Option<i64>,
    /// When the open incident last notified (opened or reminded).
    pub notified_at: Option<Timestamp>,
    /// This series is down: its failing run crossed the failure threshold and it has not
    /// recovered since. With one location this is "its incident is open"; with several, the
    /// store opens the model's incident once enough of its series are down.
    pub down: bool,
}

/// How one result counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Failing,
    Passing,
    /// An ignored kind: counts neither way.
    Ignored,
}

pub(crate) fn classify(rule: &Rule, r: &CheckResult) -> Verdict {
    if rule.ignore.contains(&r.kind) {
        Verdict::Ignored
    } else if rule.failing.contains(&r.status) {
        Verdict::Failing
    } else {
        Verdict::Passing
    }
}

/// What a result does to the series' incident. `Open` and `Resolve` say the series went
/// down or came back up; with several locations the store decides from them whether the
/// model's incident opens or resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    /// Open an incident; the failing run began at `since`.
    Open {
        since: Timestamp,
    },
    /// Resolve the open incident.
    Resolve,
    /// The open incident owes a reminder.
    Remind,
}

/// The next state after `r`, and what it does to the incident. The caller sets `incident`
/// (and `notified_at`) once it has written the incident an `Open` asks for.
pub(crate) fn step(rule: &Rule, prev: &AlertState, r: &CheckResult) -> (AlertState, Transition) {
    let at = r.started_at;
    let mut s = *prev;
    match classify(rule, r) {
        Verdict::Ignored => (s, Transition::None),
        Verdict::Failing => {
            s.ok_run = 0;
            if s.fail_run == 0 {
                s.fail_since = Some(at);
            }
            s.fail_run = (s.fail_run + 1).min(rule.failure_threshold.max(1));
            if !s.down && s.fail_run >= rule.failure_threshold {
                s.down = true;
                let since = s.fail_since.unwrap_or(at);
                (s, Transition::Open { since })
            } else if s.incident.is_some() && reminder_due(rule.remind_every, s.notified_at, at) {
                s.notified_at = Some(at);
                (s, Transition::Remind)
            } else {
                (s, Transition::None)
            }
        }
        Verdict::Passing => {
            s.fail_run = 0;
            s.fail_since = None;
            s.ok_run = (s.ok_run + 1).min(rule.success_threshold.max(1));
            if s.down && s.ok_run >= rule.success_threshold {
                s.down = false;
                s.incident = None;
                s.notified_at = None;
                (s, Transition::Resolve)
            } else {
                (s, Transition::None)
            }
        }
    }
}

pub(crate) fn reminder_due(
    every: Option<Duration>,
    last: Option<Timestamp>,
    at: Timestamp,
) -> bool {
    match (every, last) {
        (Some(every), Some(last)) => at.millis() - last.millis() >= every.as_millis() as i64,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, MonitorId, Status};

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

    /// Feeds results, pretending the store opens incident 1 on `Open`.
    fn run(rule: &Rule, results: &[CheckResult]) -> (AlertState, Vec<Transition>) {
        let mut s = AlertState::default();
        let mut out = Vec::new();
        for x in results {
            let (mut next, t) = step(rule, &s, x);
            if let Transition::Open { .. } = t {
                next.incident = Some(1);
                next.notified_at = Some(x.started_at);
            }
            if t != Transition::None {
                out.push(t);
            }
            s = next;
        }
        (s, out)
    }

    fn ok(at: i64) -> CheckResult {
        r(at, Status::Operational, Kind::Ok)
    }
    fn bad(at: i64) -> CheckResult {
        r(at, Status::Error, Kind::Timeout)
    }

    #[test]
    fn opens_at_the_threshold_across_failing_statuses_and_resolves_after_successes() {
        let rule = Rule::default();
        let (s, t) = run(
            &rule,
            &[
                ok(1),
                bad(2),
                r(3, Status::Failed, Kind::Empty),
                bad(4),
                bad(5),
                ok(6),
                ok(7),
                ok(8),
            ],
        );
        assert_eq!(
            t,
            vec![
                Transition::Open {
                    since: Timestamp(2)
                },
                Transition::Resolve
            ]
        );
        assert_eq!(s.incident, None);
    }

    #[test]
    fn a_single_success_does_not_resolve_and_a_flap_does_not_open() {
        let rule = Rule::default();
        let (_, t) = run(&rule, &[bad(1), bad(2), ok(3), bad(4), bad(5)]);
        assert!(t.is_empty(), "{t:?}");
        let (s, t) = run(&rule, &[bad(1), bad(2), bad(3), ok(4), bad(5), ok(6)]);
        assert_eq!(t.len(), 1);
        assert_eq!(
            s.incident,
            Some(1),
            "still open: never two successes in a row"
        );
    }

    #[test]
    fn ignored_kinds_and_degraded_count_as_configured() {
        let mut rule = Rule {
            ignore: vec![Kind::RateLimited],
            ..Rule::default()
        };
        let limited = |at| r(at, Status::Error, Kind::RateLimited);
        let (_, t) = run(&rule, &[bad(1), limited(2), bad(3), limited(4), bad(5)]);
        assert_eq!(t.len(), 1, "rate limits neither break nor extend the run");
        let slow = |at| r(at, Status::Degraded, Kind::Slow);
        let (_, t) = run(&rule, &[slow(1), slow(2), slow(3)]);
        assert!(t.is_empty(), "degraded passes by default");
        rule.failing.push(Status::Degraded);
        let (_, t) = run(&rule, &[slow(1), slow(2), slow(3)]);
        assert_eq!(t.len(), 1, "degraded fails on request");
    }

    #[test]
    fn reminders_come_at_the_interval_while_open() {
        let rule = Rule {
            remind_every: Some(Duration::from_millis(100)),
            failure_threshold: 1,
            ..Rule::default()
        };
        let results: Vec<_> = (0..10).map(|i| bad(i * 30)).collect();
        let (_, t) = run(&rule, &results);
        // opened at 0; reminders at 120 and 240 (the first result ≥ 100 ms after the last).
        assert_eq!(
            t,
            vec![
                Transition::Open {
                    since: Timestamp(0)
                },
                Transition::Remind,
                Transition::Remind
            ]
        );
    }

    #[test]
    fn a_steady_series_changes_nothing() {
        let rule = Rule::default();
        let (s, _) = run(&rule, &[ok(10), ok(20)]);
        let (again, t) = step(&rule, &s, &ok(30));
        assert_eq!((again, t), (s, Transition::None));
        let (open, _) = run(&rule, &[bad(1), bad(2), bad(3)]);
        let (again, t) = step(&rule, &open, &bad(4));
        assert_eq!((again, t), (open, Transition::None));
    }
}
