//! Alerts in SQLite: incidents and outbox rows decided inside the results' transaction, and
//! the drainer's reads and writes of the outbox.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::alert::rules::{self, AlertState, Transition};
use crate::alert::{AlertEvent, AlertPlan, EventKind, MonitorPlan};
use crate::model::{CheckResult, Kind, MonitorId, Status, Timestamp};
use crate::store::StoreError;
use crate::store::outbox::{
    Delivery, DeliveryOutcome, DeliveryRow, DeliveryState, IncidentQuery, IncidentRow,
    OutboxCounts, event, new_uid,
};

/// Applies one result (already known not to be stale) to its series' alert state, and to its
/// model's incident: one per (monitor, model) across locations, opened when at least
/// `min_failing_locations` of the model's series are down and resolved when fewer are. An
/// incident and its outbox rows are written when the result opens, resolves or reminds.
pub(super) fn apply(
    tx: &Transaction<'_>,
    plan: &AlertPlan,
    series: i64,
    r: &CheckResult,
    muted: bool,
) -> Result<(), StoreError> {
    let Some(mp) = plan.monitors.get(&r.monitor) else {
        return Ok(());
    };
    let prev = load(tx, series)?;
    let (mut next, t) = rules::step(&mp.rule, &prev.unwrap_or_default(), r);
    let min = mp.rule.min_failing_locations.max(1);
    let model = ModelKey::of(tx, series)?;
    let open = model.open_incident(tx)?;
    // The model's open incident once this result is applied.
    let mut current = open.map(|(pk, _)| pk);
    match (t, open) {
        (Transition::Open { since }, None) => {
            let (down, first_since) = model.down_elsewhere(tx, series)?;
            if down + 1 >= min {
                let since = first_since.map_or(since, |f| f.min(since));
                let (pk, uid) = open_incident(tx, series, &model, r, since, muted)?;
                current = Some(pk);
                next.notified_at = Some(r.started_at);
                if !muted {
                    let id = format!("{uid}:opened");
                    let e = event(mp, r, &uid, EventKind::Opened, since, id);
                    enqueue(tx, plan, mp, Some(pk), &e)?;
                }
            }
        }
        (Transition::Resolve, Some((pk, _))) => {
            let (down, _) = model.down_elsewhere(tx, series)?;
            if down < min {
                current = None;
                let (uid, since, was_muted) = resolve_incident(tx, pk, r.started_at)?;
                if mp.rule.send_on_resolved && !was_muted {
                    let id = format!("{uid}:resolved");
                    let e = event(mp, r, &uid, EventKind::Resolved, since, id);
                    enqueue(tx, plan, mp, Some(pk), &e)?;
                }
            }
        }
        (_, Some((pk, notified_at))) if next.down => {
            let failing = rules::classify(&mp.rule, r) == rules::Verdict::Failing;
            if failing && rules::reminder_due(mp.rule.remind_every, notified_at, r.started_at) {
                remind(tx, plan, mp, r, pk)?;
            }
        }
        _ => {}
    }
    // A series points at the model's open incident while it is down (with one location:
    // exactly while the incident is open, as before locations).
    next.incident = current.filter(|_| next.down);
    if Some(next) != prev {
        store(tx, series, &next)?;
    }
    Ok(())
}

/// The incident's reminder: one per `remind_every` for the model, however many of its
/// locations keep failing (the time is kept on the incident, not per series).
fn remind(
    tx: &Transaction<'_>,
    plan: &AlertPlan,
    mp: &MonitorPlan,
    r: &CheckResult,
    pk: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE incidents SET notified_at = ?2 WHERE pk = ?1")?
        .execute(params![pk, r.started_at.millis()])?;
    let (uid, since, was_muted) = incident_key(tx, pk)?;
    if !was_muted {
        let id = format!("{uid}:reminder:{}", r.started_at.millis());
        let e = event(mp, r, &uid, EventKind::Reminder, since, id);
        enqueue(tx, plan, mp, Some(pk), &e)?;
    }
    Ok(())
}

/// A model of a monitor: what an incident belongs to.
struct ModelKey {
    monitor: i64,
    model: String,
}

impl ModelKey {
    fn of(tx: &Transaction<'_>, series: i64) -> Result<ModelKey, StoreError> {
        let mut st = tx.prepare_cached("SELECT monitor, model FROM series WHERE pk = ?1")?;
        Ok(st.query_row(params![series], |r| {
            Ok(ModelKey {
                monitor: r.get(0)?,
                model: r.get(1)?,
            })
        })?)
    }

    /// The open incident (pk, when it last notified), if any.
    fn open_incident(
        &self,
        tx: &Transaction<'_>,
    ) -> Result<Option<(i64, Option<Timestamp>)>, StoreError> {
        let mut st = tx.prepare_cached(
            "SELECT pk, notified_at FROM incidents
             WHERE monitor = ?1 AND model = ?2 AND resolved_at IS NULL",
        )?;
        Ok(st
            .query_row(params![self.monitor, self.model], |r| {
                Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.map(Timestamp)))
            })
            .optional()?)
    }

    /// How many of the model's other series are down, and the earliest start of their runs.
    fn down_elsewhere(
        &self,
        tx: &Transaction<'_>,
        series: i64,
    ) -> Result<(u32, Option<Timestamp>), StoreError> {
        let mut st = tx.prepare_cached(
            "SELECT count(*), min(a.fail_since) FROM alert_state a JOIN series s ON s.pk = a.series
             WHERE s.monitor = ?1 AND s.model = ?2 AND a.series <> ?3 AND a.down = 1",
        )?;
        Ok(
            st.query_row(params![self.monitor, self.model, series], |r| {
                Ok((
                    r.get::<_, i64>(0)?.clamp(0, u32::MAX as i64) as u32,
                    r.get::<_, Option<i64>>(1)?.map(Timestamp),
                ))
            })?,
        )
    }
}

fn open_incident(
    tx: &Transaction<'_>,
    series: i64,
    model: &ModelKey,
    r: &CheckResult,
    since: Timestamp,
    muted: bool,
) -> Result<(i64, String), StoreError> {
    let uid = new_uid();
    let mut st = tx.prepare_cached(
        "INSERT INTO incidents (uid, series, monitor, model, since, opened_at, notified_at,
             status, kind, message, muted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10)",
    )?;
    st.execute(params![
        uid,
        series,
        model.monitor,
        model.model,
        since.millis(),
        r.started_at.millis(),
        r.status.code(),
        r.kind.code(),
        r.message,
        muted
    ])?;
    Ok((tx.last_insert_rowid(), uid))
}

/// The incident's uid, since and muted flag.
fn incident_key(tx: &Transaction<'_>, pk: i64) -> Result<(String, Timestamp, bool), StoreError> {
    let mut st = tx.prepare_cached("SELECT uid, since, muted FROM incidents WHERE pk = ?1")?;
    Ok(st.query_row(params![pk], |r| {
        Ok((r.get(0)?, Timestamp(r.get(1)?), r.get(2)?))
    })?)
}

fn resolve_incident(
    tx: &Transaction<'_>,
    pk: i64,
    at: Timestamp,
) -> Result<(String, Timestamp, bool), StoreError> {
    tx.prepare_cached("UPDATE incidents SET resolved_at = ?2 WHERE pk = ?1")?
        .execute(params![pk, at.millis()])?;
    incident_key(tx, pk)
}

/// One outbox row per sink of the monitor's rule. A sink that groups joins a group of the
/// same monitor and event kind still waiting for its window; else it starts one, due when the
/// window ends.
fn enqueue(
    tx: &Transaction<'_>,
    plan: &AlertPlan,
    mp: &MonitorPlan,
    incident: Option<i64>,
    e: &AlertEvent,
) -> Result<(), StoreError> {
    let now = Timestamp::now().millis();
    let payload = serde_json::to_string(e).map_err(|x| StoreError::Backend(x.to_string()))?;
    let group = format!("{}:{}", e.monitor, e.event.as_str());
    let window = mp.rule.group_window.as_millis() as i64;
    for sink in &mp.rule.sinks {
        let groups = plan.grouping.get(sink).copied().unwrap_or(true) && window > 0;
        let grp = if groups {
            group.clone()
        } else {
            format!("{group}:{}", e.event_id)
        };
        let next_at = if groups {
            let joined: Option<i64> = tx
                .prepare_cached(
                    "SELECT max(next_at) FROM outbox
                     WHERE sink = ?1 AND grp = ?2 AND state = 0 AND attempts = 0 AND next_at > ?3",
                )?
                .query_row(params![sink, grp, now], |r| r.get(0))?;
            joined.unwrap_or(now + window)
        } else {
            now
        };
        insert_row(tx, sink, incident, e, &grp, &payload, now, next_at)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_row(
    tx: &Connection,
    sink: &str,
    incident: Option<i64>,
    e: &AlertEvent,
    grp: &str,
    payload: &str,
    now: i64,
    next_at: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (event_id, sink, incident, event, grp, payload, created_at, next_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![e.event_id, sink, incident, e.event.as_str(), grp, payload, now, next_at])?;
    Ok(())
}

/// Queues `event` for `sinks` at once, outside any result (self-alerts).
pub(super) fn enqueue_now(
    conn: &mut Connection,
    sinks: &[String],
    e: &AlertEvent,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = Timestamp::now().millis();
    let payload = serde_json::to_string(e).map_err(|x| StoreError::Backend(x.to_string()))?;
    for sink in sinks {
        let grp = format!("{}:{}", e.event.as_str(), e.event_id);
        insert_row(&tx, sink, None, e, &grp, &payload, now, now)?;
    }
    tx.commit()?;
    Ok(())
}

fn load(tx: &Transaction<'_>, series: i64) -> Result<Option<AlertState>, StoreError> {
    let mut st = tx.prepare_cached(
        "SELECT fail_run, ok_run, fail_since, incident, notified_at, down FROM alert_state
         WHERE series = ?1",
    )?;
    Ok(st
        .query_row(params![series], |r| {
            Ok(AlertState {
                fail_run: r.get::<_, i64>(0)?.clamp(0, u32::MAX as i64) as u32,
                ok_run: r.get::<_, i64>(1)?.clamp(0, u32::MAX as i64) as u32,
                fail_since: r.get::<_, Option<i64>>(2)?.map(Timestamp),
                incident: r.get(3)?,
                notified_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
                down: r.get(5)?,
            })
        })
        .optional()?)
}

fn store(tx: &Transaction<'_>, series: i64, s: &AlertState) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO alert_state (series, fail_run, ok_run, fail_since, incident, notified_at, down)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (series) DO UPDATE SET fail_run = excluded.fail_run, ok_run = excluded.ok_run,
             fail_since = excluded.fail_since, incident = excluded.incident,
             notified_at = excluded.notified_at, down = excluded.down",
    )?
    .execute(params![
        series,
        s.fail_run,
        s.ok_run,
        s.fail_since.map(Timestamp::millis),
        s.incident,
        s.notified_at.map(Timestamp::millis),
        s.down
    ])?;
    Ok(())
}

/// Pending rows due at `now`, oldest first. A row whose payload no longer parses is returned
/// dead at once (it could never be sent).
pub(super) fn due(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT pk, sink, grp, payload, attempts, next_at FROM outbox
         WHERE state = 0 AND next_at <= ?1 ORDER BY next_at, pk LIMIT ?2",
    )?;
    let rows = st.query_map(params![now.millis(), limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            Timestamp(r.get(5)?),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (pk, sink, group, payload, attempts, next_at) = row?;
        match serde_json::from_str::<AlertEvent>(&payload) {
            Ok(event) => out.push(Delivery {
                pk,
                sink,
                group,
                event,
                attempts: attempts.clamp(0, u32::MAX as i64) as u32,
                next_at,
            }),
            Err(e) => {
                tracing::error!(outbox = pk, error = %e, "an outbox row does not parse; skipped")
            }
        }
    }
    Ok(out)
}

/// Records what a delivery attempt of `pks` came to, in one commit.
pub(super) fn finish(
    conn: &mut Connection,
    pks: &[i64],
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for pk in pks {
        match outcome {
            DeliveryOutcome::Delivered { at } => tx.execute(
                "UPDATE outbox SET state = 1, attempts = attempts + 1, done_at = ?2, last_error = NULL
                 WHERE pk = ?1 AND state = 0",
                params![pk, at.millis()],
            )?,
            DeliveryOutcome::Retry { next_at, error } => tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_at = ?2, last_error = ?3
                 WHERE pk = ?1 AND state = 0",
                params![pk, next_at.millis(), error],
            )?,
            DeliveryOutcome::Dead { error } => tx.execute(
                "UPDATE outbox SET state = 2, attempts = attempts + 1, done_at = ?2, last_error = ?3
                 WHERE pk = ?1 AND state = 0",
                params![pk, Timestamp::now().millis(), error],
            )?,
        };
    }
    tx.commit()?;
    Ok(())
}

/// Deletes delivered and dead outbox rows finished before `cutoff` (ms), in small batches.
pub(super) fn prune_outbox(conn: &Connection, cutoff: i64) -> Result<u64, StoreError> {
    let mut total = 0u64;
    loop {
        let n = conn.execute(
            "DELETE FROM outbox WHERE pk IN
               (SELECT pk FROM outbox WHERE state <> 0 AND done_at < ?1 LIMIT 2000)",
            params![cutoff],
        )?;
        total += n as u64;
        if n < 2000 {
            return Ok(total);
        }
    }
}

pub(super) fn counts(conn: &Connection) -> Result<OutboxCounts, StoreError> {
    let mut c = OutboxCounts::default();
    let mut st = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
    let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        match DeliveryState::from_code(state) {
            DeliveryState::Pending => c.pending = n as u64,
            DeliveryState::Delivered => c.delivered = n as u64,
            DeliveryState::Dead => c.dead = n as u64,
        }
    }
    Ok(c)
}

pub(super) fn incidents(
    conn: &Connection,
    q: &IncidentQuery,
) -> Result<Vec<IncidentRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT i.pk, i.uid, m.id, s.model, i.since, i.opened_at, i.resolved_at, i.status, i.kind,
                i.message, i.muted
         FROM incidents i JOIN series s ON s.pk = i.series JOIN monitors m ON m.pk = s.monitor
         WHERE (?1 = 0 OR i.resolved_at IS NULL)
           AND (?2 IS NULL OR i.resolved_at IS NULL OR i.resolved_at >= ?2)
           AND (?3 IS NULL OR m.id = ?3)
         ORDER BY i.opened_at DESC, i.pk DESC LIMIT ?4",
    )?;
    let limit = if q.limit == 0 { -1 } else { q.limit as i64 };
    let rows = st.query_map(
        params![
            q.open_only,
            q.since.map(Timestamp::millis),
            q.monitor.as_ref().map(MonitorId::as_str),
            limit
        ],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                IncidentRow {
                    uid: r.get(1)?,
                    monitor: MonitorId::parse(&r.get::<_, String>(2)?)
                        .unwrap_or_else(|_| MonitorId::parse("unknown").expect("a valid id")),
                    model: r.get(3)?,
                    since: Timestamp(r.get(4)?),
                    opened_at: Timestamp(r.get(5)?),
                    resolved_at: r.get::<_, Option<i64>>(6)?.map(Timestamp),
                    status: Status::from_code(r.get(7)?)
                        .map_or("unknown", Status::as_str)
                        .to_owned(),
                    kind: Kind::from_code(r.get(8)?)
                        .map_or("unknown", Kind::as_str)
                        .to_owned(),
                    message: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                    muted: r.get(10)?,
                    deliveries: Vec::new(),
                },
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (pk, mut inc) = row?;
        inc.deliveries = deliveries_of(conn, pk)?;
        out.push(inc);
    }
    Ok(out)
}

fn deliveries_of(conn: &Connection, incident: i64) -> Result<Vec<DeliveryRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT sink, event, state, attempts, done_at, last_error FROM outbox
         WHERE incident = ?1 ORDER BY pk",
    )?;
    let rows = st.query_map(params![incident], |r| {
        Ok(DeliveryRow {
            sink: r.get(0)?,
            event: r.get(1)?,
            state: DeliveryState::from_code(r.get(2)?),
            attempts: r.get::<_, i64>(3)?.clamp(0, u32::MAX as i64) as u32,
            done_at: r.get::<_, Option<i64>>(4)?.map(Timestamp),
            last_error: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::alert::{AlertPlan, MonitorPlan, Rule};
    use crate::model::{CheckResult, Kind, MonitorId, Status, Timestamp};
    use crate::store::{
        Database, DeliveryOutcome, IncidentQuery, MonitorRow, OpenMode, Storage, open,
    };

    fn result(model: &str, at: i64, ok: bool) -> CheckResult {
        let (status, kind) = if ok {
            (Status::Operational, Kind::Ok)
        } else {
            (Status::Error, Kind::Timeout)
        };
        CheckResult {
            monitor: MonitorId::parse("m").unwrap(),
            model: model.into(),
            started_at: Timestamp(at),
            status,
            kind,
            http_status: None,
            ttft_ms: None,
            latency_ms: None,
            ping_ms: None,
            message: if ok {
                String::new()
            } else {
                "timed out".into()
            },
            facts: Default::default(),
            location: String::new(),
            due_at: None,
        }
    }

    fn store(window: Duration) -> (tempfile::TempDir, Box<dyn Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(&Database::Sqlite(dir.path().join("a.db")), OpenMode::Create).unwrap();
        s.sync_monitors(&[MonitorRow {
            id: MonitorId::parse("m").unwrap(),
            name: "M".into(),
            provider: "openai".into(),
            api: "chat".into(),
            endpoint: "https://h".into(),
            group: None,
            enabled: true,
            interval_ms: 60_000,
            models: vec!["a".into(), "b".into()],
            sealed_key: None,
            sealed_headers: None,
            key_error: None,
        }])
        .unwrap();
        let mut plan = AlertPlan::default();
        plan.monitors.insert(
            MonitorId::parse("m").unwrap(),
            MonitorPlan {
                name: "M".into(),
                rule: Rule {
                    sinks: vec!["hook".into(), "pd".into()],
                    failure_threshold: 2,
                    group_window: window,
                    ..Rule::default()
                },
                maintenance: vec![],
            },
        );
        plan.grouping.insert("hook".into(), true);
        plan.grouping.insert("pd".into(), false);
        s.set_alert_plan(Arc::new(plan));
        (dir, s)
    }

    #[test]
    fn incidents_and_outbox_rows_are_written_with_the_results() {
        let (_dir, mut s) = store(Duration::from_secs(60));
        s.insert_results(&[result("a", 1, false), result("b", 1, false)])
            .unwrap();
        assert!(s.incidents(&IncidentQuery::default()).unwrap().is_empty());
        // One batch crossing the threshold for both models, then an older straggler.
        s.insert_results(&[
            result("a", 2, false),
            result("b", 2, false),
            result("a", 0, true),
        ])
        .unwrap();
        let inc = s
            .incidents(&IncidentQuery {
                open_only: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(inc.len(), 2);
        assert_eq!(
            inc[0].since,
            Timestamp(1),
            "since the first failure of the run"
        );
        assert_eq!(
            s.outbox_counts().unwrap().pending,
            4,
            "two incidents × two sinks"
        );
        // The grouping sink's two rows wait for the window together; PagerDuty's are due now.
        let far = Timestamp::now().saturating_add(Duration::from_secs(120));
        let due = s.due_deliveries(far, 100).unwrap();
        let hook: Vec<_> = due.iter().filter(|d| d.sink == "hook").collect();
        assert_eq!(hook.len(), 2);
        assert_eq!(hook[0].group, hook[1].group);
        let now_due = s.due_deliveries(Timestamp::now(), 100).unwrap();
        assert!(now_due.iter().all(|d| d.sink == "pd") && now_due.len() == 2);
        assert_ne!(now_due[0].group, now_due[1].group, "never grouped");
        // Resolve a: two passes.
        s.insert_results(&[result("a", 3, true)]).unwrap();
        s.insert_results(&[result("a", 4, true)]).unwrap();
        let open = s
            .incidents(&IncidentQuery {
                open_only: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].model, "b");
        assert_eq!(s.outbox_counts().unwrap().pending, 6);
    }

    #[test]
    fn delivered_rows_are_never_due_again_and_retries_wait() {
        let (_dir, mut s) = store(Duration::ZERO);
        s.insert_results(&[result("a", 1, false), result("a", 2, false)])
            .unwrap();
        let due = s.due_deliveries(Timestamp::now(), 100).unwrap();
        assert_eq!(due.len(), 2);
        s.finish_deliveries(
            &[due[0].pk],
            &DeliveryOutcome::Delivered {
                at: Timestamp::now(),
            },
        )
        .unwrap();
        let later = Timestamp::now().saturating_add(Duration::from_secs(60));
        s.finish_deliveries(
            &[due[1].pk],
            &DeliveryOutcome::Retry {
                next_at: later,
                error: "HTTP 503".into(),
            },
        )
        .unwrap();
        assert!(s.due_deliveries(Timestamp::now(), 100).unwrap().is_empty());
        let again = s.due_deliveries(later, 100).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].pk, again[0].attempts), (due[1].pk, 1));
        // A late "delivered" for a row already dead or delivered changes nothing.
        s.finish_deliveries(&[due[0].pk], &DeliveryOutcome::Dead { error: "x".into() })
            .unwrap();
        let c = s.outbox_counts().unwrap();
        assert_eq!((c.delivered, c.pending, c.dead), (1, 1, 0));
        // Prune takes the finished row with old history, never the pending one.
        s.prune(
            Timestamp::now().saturating_add(Duration::from_secs(3600)),
            Duration::from_secs(60),
            false,
        )
        .unwrap();
        let c = s.outbox_counts().unwrap();
        assert_eq!((c.delivered, c.pending), (0, 1));
    }

    /// Two locations of one model: an incident only once both are down, reminders once per
    /// `remind_every` for the model (not per location), resolved when one recovers, and a new
    /// incident when it fails again while the other still does.
    #[test]
    fn locations_share_one_incident_per_model() {
        let (_dir, mut s) = store(Duration::ZERO);
        let mut plan = AlertPlan::default();
        plan.monitors.insert(
            MonitorId::parse("m").unwrap(),
            MonitorPlan {
                name: "M".into(),
                rule: Rule {
                    sinks: vec!["pd".into()],
                    failure_threshold: 1,
                    success_threshold: 1,
                    min_failing_locations: 2,
                    remind_every: Some(Duration::from_millis(100)),
                    group_window: Duration::ZERO,
                    ..Rule::default()
                },
                maintenance: vec![],
            },
        );
        plan.grouping.insert("pd".into(), false);
        s.set_alert_plan(Arc::new(plan));
        let at = |loc: &str, t: i64, ok: bool| CheckResult {
            location: loc.into(),
            ..result("a", t, ok)
        };
        let steps = [
            at("x", 10, false),
            at("y", 11, true),
            at("y", 20, false), // both down: opened
            at("x", 30, false),
            at("y", 31, false),
            at("x", 130, false), // reminder
            at("y", 131, false), // not another one for y
            at("x", 140, true),  // one left: resolved
            at("y", 150, false),
            at("x", 160, false), // both again: a new incident
        ];
        for r in steps {
            s.insert_results(&[r]).unwrap();
        }
        let events: Vec<String> = s
            .due_deliveries(Timestamp(i64::MAX), 100)
            .unwrap()
            .into_iter()
            .map(|d| d.event.event.as_str().to_owned())
            .collect();
        assert_eq!(events, ["opened", "reminder", "resolved", "opened"]);
        let all = s.incidents(&IncidentQuery::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all.iter().filter(|i| i.resolved_at.is_none()).count(), 1);
        assert!(all.iter().all(|i| i.model == "a"));
    }
}
