//! Alerts in PostgreSQL: incidents and outbox rows decided inside the results' transaction
//! (the same pure rules and event wording as SQLite: `alert::rules`, `store::outbox`), and the
//! drainer's reads and writes of the outbox.
//!
//! Several drainers may share the outbox: `due` claims rows with `FOR UPDATE SKIP LOCKED` and
//! a lease (`claimed_until`, [`LEASE_MS`] ahead of the drainer's clock). A claimed row is not
//! handed out again until its lease runs out; `finish` clears the lease with the outcome, so a
//! drainer that dies mid-delivery delays its rows by one lease, never loses them.

use ::postgres::{Client, GenericClient, Transaction};

use crate::alert::rules::{self, AlertState, Transition};
use crate::alert::{AlertEvent, AlertPlan, EventKind, MonitorPlan};
use crate::model::{CheckResult, Kind, MonitorId, Status, Timestamp};
use crate::store::StoreError;
use crate::store::outbox::{
    Delivery, DeliveryOutcome, DeliveryRow, DeliveryState, IncidentQuery, IncidentRow,
    OutboxCounts, event, new_uid,
};

/// How long a drainer holds the rows it claimed.
pub(super) const LEASE_MS: i64 = 300_000;

/// Applies one (not stale) result to its series' alert state, and to its model's incident:
/// one per (monitor, model) across locations, opened when at least `min_failing_locations` of
/// the model's series are down and resolved when fewer are (the same rules as SQLite). The
/// caller holds the writers' lock ([`super::write`]), so replicas in several locations decide
/// one model's incident one after another, each seeing the others' committed alert state.
pub(super) fn apply(
    tx: &mut Transaction<'_>,
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
    match (t, open) {
        (Transition::Open { since }, None) => {
            let (down, first_since) = model.down_elsewhere(tx, series)?;
            if down + 1 >= min {
                let since = first_since.map_or(since, |f| f.min(since));
                let (pk, uid) = open_incident(tx, series, &model, r, since, muted)?;
                next.incident = Some(pk);
                next.notified_at = Some(r.started_at);
                if !muted {
                    let id = format!("{uid}:opened");
                    let e = event(mp, r, &uid, EventKind::Opened, since, id);
                    enqueue(tx, plan, mp, Some(pk), &e)?;
                }
            }
        }
        (Transition::Resolve, Some((pk, ..))) => {
            let (down, _) = model.down_elsewhere(tx, series)?;
            if down < min {
                tx.execute(
                    "UPDATE incidents SET resolved_at = $2 WHERE pk = $1",
                    &[&pk, &r.started_at.millis()],
                )?;
                let (uid, since, was_muted) = incident_key(tx, pk)?;
                if mp.rule.send_on_resolved && !was_muted {
                    let id = format!("{uid}:resolved");
                    let e = event(mp, r, &uid, EventKind::Resolved, since, id);
                    enqueue(tx, plan, mp, Some(pk), &e)?;
                }
            }
        }
        (_, Some((pk, notified_at))) if next.down => {
            next.incident = Some(pk);
            let failing = rules::classify(&mp.rule, r) == rules::Verdict::Failing;
            if failing && rules::reminder_due(mp.rule.remind_every, notified_at, r.started_at) {
                remind(tx, plan, mp, r, pk)?;
            }
        }
        _ => {}
    }
    if !next.down {
        next.incident = None;
    }
    if Some(next) != prev {
        store(tx, series, &next)?;
    }
    Ok(())
}

/// The incident's reminder: one per `remind_every` for the model, however many of its
/// locations keep failing (the time is kept on the incident, not per series).
fn remind(
    tx: &mut Transaction<'_>,
    plan: &AlertPlan,
    mp: &MonitorPlan,
    r: &CheckResult,
    pk: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE incidents SET notified_at = $2 WHERE pk = $1",
        &[&pk, &r.started_at.millis()],
    )?;
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
    fn of(tx: &mut Transaction<'_>, series: i64) -> Result<ModelKey, StoreError> {
        let r = tx.query_one(
            "SELECT monitor, model FROM series WHERE pk = $1",
            &[&series],
        )?;
        Ok(ModelKey {
            monitor: r.try_get(0)?,
            model: r.try_get(1)?,
        })
    }

    /// The open incident (pk, when it last notified), if any.
    fn open_incident(
        &self,
        tx: &mut Transaction<'_>,
    ) -> Result<Option<(i64, Option<Timestamp>)>, StoreError> {
        let row = tx.query_opt(
            "SELECT pk, notified_at FROM incidents
             WHERE monitor = $1 AND model = $2 AND resolved_at IS NULL",
            &[&self.monitor, &self.model],
        )?;
        Ok(match row {
            Some(r) => Some((
                r.try_get(0)?,
                r.try_get::<_, Option<i64>>(1)?.map(Timestamp),
            )),
            None => None,
        })
    }

    /// How many of the model's other series are down, and the earliest start of their runs.
    fn down_elsewhere(
        &self,
        tx: &mut Transaction<'_>,
        series: i64,
    ) -> Result<(u32, Option<Timestamp>), StoreError> {
        let r = tx.query_one(
            "SELECT count(*), min(a.fail_since) FROM alert_state a JOIN series s ON s.pk = a.series
             WHERE s.monitor = $1 AND s.model = $2 AND a.series <> $3 AND a.down",
            &[&self.monitor, &self.model, &series],
        )?;
        Ok((
            r.try_get::<_, i64>(0)?.clamp(0, u32::MAX as i64) as u32,
            r.try_get::<_, Option<i64>>(1)?.map(Timestamp),
        ))
    }
}

fn open_incident(
    tx: &mut Transaction<'_>,
    series: i64,
    model: &ModelKey,
    r: &CheckResult,
    since: Timestamp,
    muted: bool,
) -> Result<(i64, String), StoreError> {
    let uid = new_uid();
    let pk: i64 = tx
        .query_one(
            "INSERT INTO incidents (uid, series, monitor, model, since, opened_at, notified_at,
                 status, kind, message, muted)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10) RETURNING pk",
            &[
                &uid,
                &series,
                &model.monitor,
                &model.model,
                &since.millis(),
                &r.started_at.millis(),
                &i64::from(r.status.code()),
                &i64::from(r.kind.code()),
                &r.message,
                &muted,
            ],
        )?
        .try_get(0)?;
    Ok((pk, uid))
}

fn incident_key(
    tx: &mut Transaction<'_>,
    pk: i64,
) -> Result<(String, Timestamp, bool), StoreError> {
    let r = tx.query_one(
        "SELECT uid, since, muted FROM incidents WHERE pk = $1",
        &[&pk],
    )?;
    Ok((r.try_get(0)?, Timestamp(r.try_get(1)?), r.try_get(2)?))
}

/// One outbox row per sink of the monitor's rule (grouping as in SQLite).
fn enqueue(
    tx: &mut Transaction<'_>,
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
                .query_one(
                    "SELECT max(next_at) FROM outbox
                     WHERE sink = $1 AND grp = $2 AND state = 0 AND attempts = 0 AND next_at > $3",
                    &[sink, &grp, &now],
                )?
                .try_get(0)?;
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
    tx: &mut impl GenericClient,
    sink: &str,
    incident: Option<i64>,
    e: &AlertEvent,
    grp: &str,
    payload: &str,
    now: i64,
    next_at: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO outbox (event_id, sink, incident, event, grp, payload, created_at, next_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id, sink) DO NOTHING",
        &[
            &e.event_id,
            &sink,
            &incident,
            &e.event.as_str(),
            &grp,
            &payload,
            &now,
            &next_at,
        ],
    )?;
    Ok(())
}

pub(super) fn enqueue_now(
    c: &mut Client,
    sinks: &[String],
    e: &AlertEvent,
) -> Result<(), StoreError> {
    let mut tx = c.transaction()?;
    let now = Timestamp::now().millis();
    let payload = serde_json::to_string(e).map_err(|x| StoreError::Backend(x.to_string()))?;
    for sink in sinks {
        let grp = format!("{}:{}", e.event.as_str(), e.event_id);
        insert_row(&mut tx, sink, None, e, &grp, &payload, now, now)?;
    }
    tx.commit()?;
    Ok(())
}

/// The series' alert state, its row locked until the transaction ends.
fn load(tx: &mut Transaction<'_>, series: i64) -> Result<Option<AlertState>, StoreError> {
    let Some(r) = tx.query_opt(
        "SELECT fail_run, ok_run, fail_since, incident, notified_at, down FROM alert_state
         WHERE series = $1 FOR UPDATE",
        &[&series],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(AlertState {
        fail_run: r.try_get::<_, i64>(0)?.clamp(0, u32::MAX as i64) as u32,
        ok_run: r.try_get::<_, i64>(1)?.clamp(0, u32::MAX as i64) as u32,
        fail_since: r.try_get::<_, Option<i64>>(2)?.map(Timestamp),
        incident: r.try_get(3)?,
        notified_at: r.try_get::<_, Option<i64>>(4)?.map(Timestamp),
        down: r.try_get(5)?,
    }))
}

fn store(tx: &mut Transaction<'_>, series: i64, s: &AlertState) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO alert_state (series, fail_run, ok_run, fail_since, incident, notified_at, down)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (series) DO UPDATE SET fail_run = excluded.fail_run,
             ok_run = excluded.ok_run, fail_since = excluded.fail_since,
             incident = excluded.incident, notified_at = excluded.notified_at,
             down = excluded.down",
        &[
            &series,
            &i64::from(s.fail_run),
            &i64::from(s.ok_run),
            &s.fail_since.map(Timestamp::millis),
            &s.incident,
            &s.notified_at.map(Timestamp::millis),
            &s.down,
        ],
    )?;
    Ok(())
}

/// Claims pending rows due at `now` (skipping rows another drainer holds), oldest first.
pub(super) fn due(
    c: &mut Client,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let now = now.millis();
    let rows = c.query(
        "UPDATE outbox SET claimed_until = $1 + $3 WHERE pk IN (
             SELECT pk FROM outbox
             WHERE state = 0 AND next_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
             ORDER BY next_at, pk LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING pk, sink, grp, payload, attempts, next_at",
        &[&now, &(limit.min(i64::MAX as usize) as i64), &LEASE_MS],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let pk: i64 = r.try_get(0)?;
        let payload: &str = r.try_get(3)?;
        match serde_json::from_str::<AlertEvent>(payload) {
            Ok(event) => out.push(Delivery {
                pk,
                sink: r.try_get(1)?,
                group: r.try_get(2)?,
                event,
                attempts: r.try_get::<_, i64>(4)?.clamp(0, u32::MAX as i64) as u32,
                next_at: Timestamp(r.try_get(5)?),
            }),
            Err(e) => {
                tracing::error!(outbox = pk, error = %e, "an outbox row does not parse; skipped")
            }
        }
    }
    out.sort_by_key(|d| (d.next_at, d.pk));
    Ok(out)
}

/// Records what a delivery attempt of `pks` came to, in one commit (and ends their lease).
pub(super) fn finish(
    c: &mut Client,
    pks: &[i64],
    outcome: &DeliveryOutcome,
) -> Result<(), StoreError> {
    let mut tx = c.transaction()?;
    let pks: Vec<i64> = pks.to_vec();
    match outcome {
        DeliveryOutcome::Delivered { at } => tx.execute(
            "UPDATE outbox SET state = 1, attempts = attempts + 1, done_at = $2,
                 last_error = NULL, claimed_until = NULL
             WHERE pk = ANY($1) AND state = 0",
            &[&pks, &at.millis()],
        )?,
        DeliveryOutcome::Retry { next_at, error } => tx.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_at = $2, last_error = $3,
                 claimed_until = NULL
             WHERE pk = ANY($1) AND state = 0",
            &[&pks, &next_at.millis(), error],
        )?,
        DeliveryOutcome::Dead { error } => tx.execute(
            "UPDATE outbox SET state = 2, attempts = attempts + 1, done_at = $2, last_error = $3,
                 claimed_until = NULL
             WHERE pk = ANY($1) AND state = 0",
            &[&pks, &Timestamp::now().millis(), error],
        )?,
    };
    tx.commit()?;
    Ok(())
}

/// Deletes delivered and dead outbox rows finished before `cutoff` (ms), in small batches.
pub(super) fn prune_outbox(c: &mut Client, cutoff: i64) -> Result<u64, StoreError> {
    let mut total = 0u64;
    loop {
        let n = c.execute(
            "DELETE FROM outbox WHERE pk IN
               (SELECT pk FROM outbox WHERE state <> 0 AND done_at < $1 LIMIT 2000)",
            &[&cutoff],
        )?;
        total += n;
        if n < 2000 {
            return Ok(total);
        }
    }
}

pub(super) fn counts(c: &mut Client) -> Result<OutboxCounts, StoreError> {
    let mut out = OutboxCounts::default();
    for r in c.query("SELECT state, count(*) FROM outbox GROUP BY state", &[])? {
        let n = r.try_get::<_, i64>(1)?.max(0) as u64;
        match DeliveryState::from_code(r.try_get(0)?) {
            DeliveryState::Pending => out.pending = n,
            DeliveryState::Delivered => out.delivered = n,
            DeliveryState::Dead => out.dead = n,
        }
    }
    Ok(out)
}

pub(super) fn incidents(c: &mut Client, q: &IncidentQuery) -> Result<Vec<IncidentRow>, StoreError> {
    let limit = if q.limit == 0 {
        i64::MAX
    } else {
        q.limit as i64
    };
    let rows = c.query(
        "SELECT i.pk, i.uid, m.id, s.model, i.since, i.opened_at, i.resolved_at, i.status,
                i.kind, i.message, i.muted
         FROM incidents i JOIN series s ON s.pk = i.series JOIN monitors m ON m.pk = s.monitor
         WHERE (NOT $1 OR i.resolved_at IS NULL)
           AND ($2::bigint IS NULL OR i.resolved_at IS NULL OR i.resolved_at >= $2)
           AND ($3::text IS NULL OR m.id = $3)
         ORDER BY i.opened_at DESC, i.pk DESC LIMIT $4",
        &[
            &q.open_only,
            &q.since.map(Timestamp::millis),
            &q.monitor.as_ref().map(MonitorId::as_str),
            &limit,
        ],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let pk: i64 = r.try_get(0)?;
        let Ok(monitor) = MonitorId::parse(r.try_get::<_, &str>(2)?) else {
            continue;
        };
        let deliveries = c
            .query(
                "SELECT sink, event, state, attempts, done_at, last_error FROM outbox
                 WHERE incident = $1 ORDER BY pk",
                &[&pk],
            )?
            .iter()
            .map(|d| {
                Ok(DeliveryRow {
                    sink: d.try_get(0)?,
                    event: d.try_get(1)?,
                    state: DeliveryState::from_code(d.try_get(2)?),
                    attempts: d.try_get::<_, i64>(3)?.clamp(0, u32::MAX as i64) as u32,
                    done_at: d.try_get::<_, Option<i64>>(4)?.map(Timestamp),
                    last_error: d.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.push(IncidentRow {
            uid: r.try_get(1)?,
            monitor,
            model: r.try_get(3)?,
            since: Timestamp(r.try_get(4)?),
            opened_at: Timestamp(r.try_get(5)?),
            resolved_at: r.try_get::<_, Option<i64>>(6)?.map(Timestamp),
            status: Status::from_code(r.try_get(7)?)
                .map_or("unknown", Status::as_str)
                .to_owned(),
            kind: Kind::from_code(r.try_get(8)?)
                .map_or("unknown", Kind::as_str)
                .to_owned(),
            message: r.try_get::<_, Option<String>>(9)?.unwrap_or_default(),
            muted: r.try_get(10)?,
            deliveries,
        });
    }
    Ok(out)
}
