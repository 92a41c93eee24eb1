//! Replicas sharing the due checks through the database: the `schedule` table and its leases.
//!
//! One row per (monitor, location slot): `location` is '' for a monitor any replica may probe,
//! else one of the monitor's `locations`. `next_due` is the slot the row waits for (epoch ms
//! of the row: the first one soon after the monitor was scheduled (see
//! [`crate::store::first_slot`]), then every interval; the row is the one truth all replicas
//! share).
//!
//! A check is *claimed* by leasing its row (`FOR UPDATE SKIP LOCKED`, so concurrent claimers
//! never wait on each other nor take the same row) and *completed* in the transaction that
//! records its results: the row moves to its next slot only if this replica still holds the
//! lease on the slot the results were due for. A result whose lease was lost (it ran past its
//! lease and another replica re-claimed the slot) is not recorded: every slot is recorded once.
//! A replica killed mid-check loses only its leases; once they expire the slot is claimable
//! again and another replica runs it.

use ::postgres::{Client, Transaction};

use crate::model::{CheckResult, Timestamp};
use crate::store::{Claim, ReplicaInfo, ReplicaReport, ScheduleEntry, StoreError};

/// Makes the schedule hold exactly `entries`' rows: new ones wait for their first slot, rows
/// whose interval changed start again from a first slot, rows no longer wanted go.
/// Leases held by others are left alone.
pub(super) fn sync_schedule(
    c: &mut Client,
    entries: &[ScheduleEntry],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut tx = c.transaction()?;
    // In turn with the writers (which move schedule rows as they record results): replicas
    // starting together would otherwise lock schedule rows in different orders.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&super::write::WRITE_LOCK],
    )?;
    tx.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS want (
             id TEXT NOT NULL, location TEXT NOT NULL, interval_ms BIGINT NOT NULL,
             lease_ms BIGINT NOT NULL, first_due BIGINT NOT NULL) ON COMMIT DELETE ROWS",
    )?;
    for chunk in entries.chunks(2000) {
        let ids: Vec<&str> = chunk.iter().map(|e| e.monitor.as_str()).collect();
        let locs: Vec<&str> = chunk.iter().map(|e| e.location.as_str()).collect();
        let ivs: Vec<i64> = chunk.iter().map(|e| e.interval_ms).collect();
        let leases: Vec<i64> = chunk.iter().map(|e| e.lease_ms).collect();
        let firsts: Vec<i64> = chunk
            .iter()
            .map(|e| crate::store::first_slot(e.monitor.as_str(), e.interval_ms, now).millis())
            .collect();
        tx.execute(
            "INSERT INTO want SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])",
            &[&ids, &locs, &ivs, &leases, &firsts],
        )?;
    }
    tx.execute(
        "DELETE FROM schedule s WHERE NOT EXISTS (
             SELECT 1 FROM want w JOIN monitors m ON m.id = w.id
             WHERE m.pk = s.monitor AND w.location = s.location)",
        &[],
    )?;
    tx.execute(
        "INSERT INTO schedule (monitor, location, interval_ms, lease_ms, next_due)
         SELECT m.pk, w.location, w.interval_ms, w.lease_ms, w.first_due
         FROM want w JOIN monitors m ON m.id = w.id
         ON CONFLICT (monitor, location) DO UPDATE
         SET interval_ms = EXCLUDED.interval_ms, lease_ms = EXCLUDED.lease_ms,
             next_due = CASE WHEN schedule.interval_ms = EXCLUDED.interval_ms
                             THEN schedule.next_due ELSE EXCLUDED.next_due END
         WHERE schedule.interval_ms <> EXCLUDED.interval_ms
            OR schedule.lease_ms <> EXCLUDED.lease_ms",
        &[],
    )?;
    tx.commit()?;
    Ok(())
}

/// Leases at most `limit` due checks to `replica` (a replica named `location`, or none).
pub(super) fn claim(
    c: &mut Client,
    replica: &str,
    location: &str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Claim>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let now = now.millis();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c.query(
        "WITH due AS (
             SELECT monitor, location FROM schedule
             WHERE next_due <= $1 AND (location = '' OR location = $3)
               AND (lease_until IS NULL OR lease_until <= $1)
             ORDER BY next_due
             LIMIT $4
             FOR UPDATE SKIP LOCKED)
         UPDATE schedule s
         SET lease_owner = $2, lease_until = $1 + s.lease_ms
         FROM due, monitors m
         WHERE s.monitor = due.monitor AND s.location = due.location AND m.pk = s.monitor
         RETURNING m.id, s.location, s.next_due, s.lease_until",
        &[&now, &replica, &location, &limit],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Claim {
                monitor: crate::model::MonitorId::parse(&r.get::<_, String>(0))
                    .map_err(|e| StoreError::Backend(format!("schedule row: {e}")))?,
                location: r.get(1),
                slot: Timestamp(r.get(2)),
                lease_until: Timestamp(r.get(3)),
            })
        })
        .collect()
}

/// Completes the claims `results` were due for, inside the transaction that records them.
/// Returns which results may be recorded: those without a slot (a shell `check`), and those
/// whose slot this replica still held. The row moves to its next slot that is not
/// more than one interval in the past (slots missed while nobody could run them are skipped,
/// not run in a burst).
pub(super) fn complete(
    tx: &mut Transaction<'_>,
    replica: &str,
    results: &[CheckResult],
    now: Timestamp,
) -> Result<Vec<bool>, StoreError> {
    let mut keep = vec![true; results.len()];
    let mut done: Vec<(&str, &str, i64, bool)> = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let Some(slot) = r.due_at else { continue };
        let key = (r.monitor.as_str(), r.location.as_str(), slot.millis());
        if let Some(d) = done.iter().find(|d| (d.0, d.1, d.2) == key) {
            keep[i] = d.3;
            continue;
        }
        let n = tx.execute(
            "UPDATE schedule s
             SET next_due = s.next_due
                     + s.interval_ms * greatest(1, ($4 - s.next_due) / s.interval_ms),
                 lease_owner = NULL, lease_until = NULL
             FROM monitors m
             WHERE m.pk = s.monitor AND m.id = $1 AND s.location IN ('', $2)
               AND s.next_due = $3 AND s.lease_owner = $5",
            &[&key.0, &key.1, &key.2, &now.millis(), &replica],
        )?;
        keep[i] = n > 0;
        done.push((key.0, key.1, key.2, n > 0));
    }
    Ok(keep)
}

/// Records this replica as alive with its config hash; returns every replica seen within
/// `window_ms`, this one included.
pub(super) fn heartbeat(
    c: &mut Client,
    me: &ReplicaReport,
    now: Timestamp,
    window_ms: i64,
) -> Result<Vec<ReplicaInfo>, StoreError> {
    let now = now.millis();
    c.execute(
        "INSERT INTO replicas (name, location, config_hash, version, started_at, seen_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (name) DO UPDATE
         SET location = EXCLUDED.location, config_hash = EXCLUDED.config_hash,
             version = EXCLUDED.version, seen_at = EXCLUDED.seen_at",
        &[&me.name, &me.location, &me.config_hash, &me.version, &now],
    )?;
    c.execute(
        "DELETE FROM replicas WHERE seen_at < $1",
        &[&(now - 7 * 86_400_000)],
    )?;
    replicas(c, now - window_ms)
}

/// The replicas seen since `since`.
pub(super) fn replicas(c: &mut Client, since: i64) -> Result<Vec<ReplicaInfo>, StoreError> {
    let rows = c.query(
        "SELECT name, location, config_hash, version, seen_at FROM replicas
         WHERE seen_at >= $1 ORDER BY name",
        &[&since],
    )?;
    Ok(rows
        .iter()
        .map(|r| ReplicaInfo {
            name: r.get(0),
            location: r.get(1),
            config_hash: r.get(2),
            version: r.get(3),
            seen_at: Timestamp(r.get(4)),
        })
        .collect())
}
