//! The SQLite writes: syncing monitors, inserting results with their rollups, tracker state
//! and alert incidents (with their outbox rows) in one transaction, and retention.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::rollups;
use crate::alert::AlertPlan;
use crate::model::{CheckResult, Kind, Status, Timestamp};
use crate::pipeline::tracker::{self, SeriesState, StatusChange, Step};
use crate::store::window::Rollup;
use crate::store::{BUCKET_MS, MonitorRow, StoreError, SyncReport};

/// Rows deleted per prune transaction: small, so a concurrent writer never waits long.
const PRUNE_BATCH: i64 = 2_000;

pub(super) fn sync_monitors(
    conn: &mut Connection,
    rows: &[MonitorRow],
) -> Result<SyncReport, StoreError> {
    let now = Timestamp::now().millis();
    let mut report = SyncReport::default();
    // Batches of rows, a transaction each: a 100,000-monitor sync never holds the write lock
    // long enough to stall a `chanmon check` writing beside the daemon. Each row stands alone,
    // so a sync cut short leaves rows of the old or the new config, and the next sync finishes.
    for batch in rows.chunks(SYNC_BATCH) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        report.written += upsert_monitors(&tx, batch, now)?;
        tx.commit()?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    report.disabled = disable_missing(&tx, rows, now)?;
    tx.commit()?;
    Ok(report)
}

/// Monitor rows per sync transaction.
const SYNC_BATCH: usize = 5_000;

/// Upserts `rows`, returning how many were written: only a row whose content changed is
/// (and gets a new `updated_at`).
fn upsert_monitors(
    tx: &Transaction<'_>,
    rows: &[MonitorRow],
    now: i64,
) -> Result<usize, StoreError> {
    let mut written = 0;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO monitors (id, name, provider, api, endpoint, grp, enabled, interval_ms,
             models, sealed_key, sealed_headers, key_error, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, provider = excluded.provider,
             api = excluded.api, endpoint = excluded.endpoint, grp = excluded.grp,
             enabled = excluded.enabled, interval_ms = excluded.interval_ms,
             models = excluded.models, sealed_key = excluded.sealed_key,
             sealed_headers = excluded.sealed_headers, key_error = excluded.key_error,
             updated_at = excluded.updated_at
         WHERE name IS NOT excluded.name OR provider IS NOT excluded.provider
             OR api IS NOT excluded.api OR endpoint IS NOT excluded.endpoint
             OR grp IS NOT excluded.grp OR enabled IS NOT excluded.enabled
             OR interval_ms IS NOT excluded.interval_ms OR models IS NOT excluded.models
             OR sealed_key IS NOT excluded.sealed_key
             OR sealed_headers IS NOT excluded.sealed_headers
             OR key_error IS NOT excluded.key_error",
    )?;
    let mut series = tx.prepare_cached(
        "INSERT OR IGNORE INTO series (monitor, model) SELECT pk, ?2 FROM monitors WHERE id = ?1",
    )?;
    for m in rows {
        let models = serde_json::to_string(&m.models).unwrap_or_else(|_| "[]".into());
        written += upsert.execute(params![
            m.id.as_str(),
            m.name,
            m.provider,
            m.api,
            m.endpoint,
            m.group,
            m.enabled,
            m.interval_ms,
            models,
            m.sealed_key,
            m.sealed_headers,
            m.key_error,
            now,
        ])?;
        for model in &m.models {
            series.execute(params![m.id.as_str(), model])?;
        }
    }
    Ok(written)
}

/// Disables (never deletes) stored monitors that are not among `rows`.
fn disable_missing(
    tx: &Transaction<'_>,
    rows: &[MonitorRow],
    now: i64,
) -> Result<usize, StoreError> {
    let keep: std::collections::HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let enabled: Vec<String> = {
        let mut st = tx.prepare("SELECT id FROM monitors WHERE enabled = 1")?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for id in enabled.iter().filter(|id| !keep.contains(id.as_str())) {
        n += tx.execute(
            "UPDATE monitors SET enabled = 0, updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
    }
    Ok(n)
}

/// Writes results, their rollups, the tracker and (with a plan) incidents and their outbox
/// rows in one transaction.
pub(super) fn insert_results(
    conn: &mut Connection,
    cache: &mut HashMap<SeriesKey, i64>,
    results: &[CheckResult],
    plan: Option<&AlertPlan>,
) -> Result<Vec<StatusChange>, StoreError> {
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut new_series: HashMap<SeriesKey, i64> = HashMap::new();
    let mut deltas: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
    let mut states: HashMap<i64, (Option<SeriesState>, Option<SeriesState>)> = HashMap::new();
    let mut changes = Vec::new();
    for r in results {
        let k = (
            r.monitor.as_str().to_owned(),
            r.model.clone(),
            r.location.clone(),
        );
        let series = match cache.get(&k).or_else(|| new_series.get(&k)) {
            Some(s) => *s,
            None => {
                let s = series_pk(&tx, r.monitor.as_str(), &r.model, &r.location)?;
                new_series.insert(k, s);
                s
            }
        };
        let at = insert_row(&tx, series, r)?;
        deltas
            .entry((series, at.div_euclid(BUCKET_MS)))
            .or_default()
            .add(r.status, r.kind, r.latency_ms, r.ttft_ms);
        deltas
            .entry((series, at.div_euclid(BUCKET_MS)))
            .or_default()
            .add_facts(&r.facts);
        let slot = match states.entry(series) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let loaded = load_state(&tx, series)?;
                e.insert((loaded, loaded))
            }
        };
        let step = tracker::advance(slot.1.as_ref(), r);
        if let Some(plan) = plan
            && step != Step::Stale
        {
            super::alerts::apply(&tx, plan, series, r, plan.muted(&r.monitor, r.started_at))?;
        }
        match step {
            Step::Stale => {}
            Step::Same(s) => slot.1 = Some(s),
            Step::Changed(s) => {
                changes.push(StatusChange {
                    monitor: r.monitor.clone(),
                    model: r.model.clone(),
                    location: r.location.clone(),
                    from: slot.1,
                    to: s,
                });
                slot.1 = Some(s);
            }
        }
    }
    for ((series, bucket), d) in deltas {
        rollups::merge_rollup(&tx, series, bucket, &d)?;
    }
    for (series, (before, after)) in states {
        if let Some(s) = after.filter(|a| Some(*a) != before) {
            store_state(&tx, series, &s)?;
        }
    }
    tx.commit()?;
    cache.extend(new_series);
    Ok(changes)
}

/// Inserts one history row; returns the `started_at` it was stored under. Two results of one
/// series in the same millisecond: the later one is nudged forward.
fn insert_row(tx: &Transaction<'_>, series: i64, r: &CheckResult) -> Result<i64, StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO history
         (series, started_at, status, kind, http, ttft_ms, latency_ms, ping_ms, message,
          answered_model, tokens_in, tokens_out, tokens_reasoning, cost_nano, tps, due_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    let message = (!r.message.is_empty()).then_some(r.message.as_str());
    let mut at = r.started_at.millis();
    loop {
        let n = insert.execute(params![
            series,
            at,
            r.status.code(),
            r.kind.code(),
            r.http_status,
            r.ttft_ms,
            r.latency_ms,
            r.ping_ms,
            message,
            r.facts.answered_model,
            r.facts.tokens_in,
            r.facts.tokens_out,
            r.facts.tokens_reasoning,
            r.facts.cost_nano.map(|c| c.min(i64::MAX as u64) as i64),
            r.facts.tps.filter(|t| t.is_finite()),
            r.due_at.map(Timestamp::millis),
        ])?;
        if n == 1 {
            return Ok(at);
        }
        at += 1;
    }
}

const STATE_COLS: &str = "status, kind, since, last_at, consecutive";

/// Reads a tracker state from columns `first..first + 5` (in `STATE_COLS` order).
pub(super) fn state_from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<SeriesState> {
    Ok(SeriesState {
        status: Status::from_code(r.get(first)?).unwrap_or(Status::Error),
        kind: Kind::from_code(r.get(first + 1)?).unwrap_or(Kind::Internal),
        since: Timestamp(r.get(first + 2)?),
        last_at: Timestamp(r.get(first + 3)?),
        consecutive: r.get::<_, i64>(first + 4)?.clamp(1, u32::MAX as i64) as u32,
    })
}

pub(super) fn load_state(
    conn: &Connection,
    series: i64,
) -> Result<Option<SeriesState>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {STATE_COLS} FROM tracker WHERE series = ?1"
    ))?;
    Ok(st
        .query_row(params![series], |r| state_from_row(r, 0))
        .optional()?)
}

fn store_state(tx: &Transaction<'_>, series: i64, s: &SeriesState) -> Result<(), StoreError> {
    let mut st = tx.prepare_cached(&format!(
        "INSERT INTO tracker (series, {STATE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (series) DO UPDATE SET status = excluded.status, kind = excluded.kind,
             since = excluded.since, last_at = excluded.last_at, consecutive = excluded.consecutive"
    ))?;
    st.execute(params![
        series,
        s.status.code(),
        s.kind.code(),
        s.since.millis(),
        s.last_at.millis(),
        s.consecutive as i64,
    ])?;
    Ok(())
}

/// (monitor id, model, location): what identifies a series.
pub(super) type SeriesKey = (String, String, String);

fn series_pk(
    tx: &Transaction<'_>,
    monitor: &str,
    model: &str,
    location: &str,
) -> Result<i64, StoreError> {
    let mpk: i64 = tx
        .query_row(
            "SELECT pk FROM monitors WHERE id = ?1",
            params![monitor],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::UnknownMonitor(monitor.to_owned()))?;
    tx.execute(
        "INSERT OR IGNORE INTO series (monitor, model, location) VALUES (?1, ?2, ?3)",
        params![mpk, model, location],
    )?;
    Ok(tx.query_row(
        "SELECT pk FROM series WHERE monitor = ?1 AND model = ?2 AND location = ?3",
        params![mpk, model, location],
        |r| r.get(0),
    )?)
}

/// Deletes raw rows before `cutoff` (ms) in small batches, each its own short transaction.
/// Rollups always cover what is deleted (they are written with the rows), and the tracker
/// lives in its own table.
pub(super) fn prune(conn: &mut Connection, cutoff: i64, dry_run: bool) -> Result<u64, StoreError> {
    if dry_run {
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM history WHERE series IN (SELECT pk FROM series) AND started_at < ?1",
            params![cutoff],
            |r| r.get(0),
        )?;
        return Ok(n as u64);
    }
    {
        // Record first: from now on windows must not expect raw rows before the cutoff.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('raw_from', ?1)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            params![cutoff],
        )?;
        tx.commit()?;
    }
    let series: Vec<i64> = {
        let mut st = conn.prepare("SELECT pk FROM series")?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let mut deleted = 0u64;
    for s in series {
        deleted += prune_series(conn, s, cutoff)?;
    }
    Ok(deleted)
}

fn prune_series(conn: &mut Connection, series: i64, cutoff: i64) -> Result<u64, StoreError> {
    let mut deleted = 0u64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The batch ends at the PRUNE_BATCH-th oldest row below the cutoff, if any.
        let bound: Option<i64> = tx
            .query_row(
                "SELECT started_at FROM history WHERE series = ?1 AND started_at < ?2
                 ORDER BY started_at LIMIT 1 OFFSET ?3",
                params![series, cutoff, PRUNE_BATCH - 1],
                |r| r.get(0),
            )
            .optional()?;
        let n = match bound {
            Some(b) => tx.execute(
                "DELETE FROM history WHERE series = ?1 AND started_at <= ?2",
                params![series, b],
            )?,
            None => tx.execute(
                "DELETE FROM history WHERE series = ?1 AND started_at < ?2",
                params![series, cutoff],
            )?,
        };
        tx.commit()?;
        deleted += n as u64;
        // Checkpoint here, off the writer's path: otherwise the daemon's next commit finds a
        // WAL full of deletions and pays for the checkpoint itself.
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        if bound.is_none() {
            return Ok(deleted);
        }
    }
}

/// Deletes rollup buckets before `bucket`.
pub(super) fn prune_rollups(
    conn: &Connection,
    bucket: i64,
    dry_run: bool,
) -> Result<u64, StoreError> {
    if dry_run {
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM rollups WHERE bucket < ?1",
            params![bucket],
            |r| r.get(0),
        )?;
        return Ok(n as u64);
    }
    let mut total = 0u64;
    loop {
        let n = conn.execute(
            "DELETE FROM rollups WHERE (series, bucket) IN
               (SELECT series, bucket FROM rollups WHERE bucket < ?1 LIMIT ?2)",
            params![bucket, PRUNE_BATCH],
        )?;
        total += n as u64;
        if n < PRUNE_BATCH as usize {
            return Ok(total);
        }
    }
}

/// Recomputes the rollups of every hour after `raw_from`'s hour from the raw rows.
pub(super) fn rebuild_rollups(conn: &mut Connection, raw_from: i64) -> Result<u64, StoreError> {
    let first_bucket = if raw_from == i64::MIN {
        i64::MIN
    } else {
        raw_from.div_euclid(BUCKET_MS) + 1
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM rollups WHERE bucket >= ?1",
        params![first_bucket],
    )?;
    let from_ms = first_bucket.saturating_mul(BUCKET_MS);
    let mut deltas: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
    {
        let mut st = tx.prepare(
            "SELECT series, started_at, status, kind, ttft_ms, latency_ms, tokens_in, tokens_out,
                 tokens_reasoning, cost_nano, tps FROM history WHERE started_at >= ?1",
        )?;
        let mut rows = st.query(params![from_ms])?;
        while let Some(r) = rows.next()? {
            let status = Status::from_code(r.get(2)?).unwrap_or(Status::Error);
            let kind = Kind::from_code(r.get(3)?).unwrap_or(Kind::Internal);
            let at: i64 = r.get(1)?;
            let d = deltas
                .entry((r.get(0)?, at.div_euclid(BUCKET_MS)))
                .or_default();
            d.add(status, kind, r.get(5)?, r.get(4)?);
            d.add_facts(&rollups::facts_from_row(r, 6)?);
        }
    }
    let n = deltas.len() as u64;
    for ((series, bucket), d) in deltas {
        rollups::merge_rollup(&tx, series, bucket, &d)?;
    }
    tx.commit()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MonitorId;
    use crate::store::OpenMode;

    fn row(i: usize) -> MonitorRow {
        MonitorRow {
            id: MonitorId::parse(&format!("m{i:05}")).unwrap(),
            name: format!("m{i}"),
            provider: "openai".into(),
            api: "chat".into(),
            endpoint: "https://api.example.com".into(),
            group: None,
            enabled: true,
            interval_ms: 60_000,
            models: vec!["gpt-4o-mini".into()],
            sealed_key: Some(vec![1, 2, 3]),
            sealed_headers: None,
            key_error: None,
        }
    }

    #[test]
    fn a_sync_larger_than_a_batch_writes_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn =
            super::super::schema::open(&dir.path().join("c.db"), OpenMode::Create).unwrap();
        let n = SYNC_BATCH * 2 + 7;
        let mut rows: Vec<MonitorRow> = (0..n).map(row).collect();
        let first = sync_monitors(&mut conn, &rows).unwrap();
        assert_eq!((first.written, first.disabled), (n, 0));
        let again = sync_monitors(&mut conn, &rows).unwrap();
        assert_eq!(again.written, 0, "an unchanged config rewrites nothing");
        rows[SYNC_BATCH + 1].name = "renamed".into();
        rows.truncate(n - 3);
        let changed = sync_monitors(&mut conn, &rows).unwrap();
        assert_eq!((changed.written, changed.disabled), (1, 3));
        let series: i64 = conn
            .query_row("SELECT count(*) FROM series", [], |r| r.get(0))
            .unwrap();
        assert_eq!(series, n as i64, "one series per monitor and model");
    }
}
