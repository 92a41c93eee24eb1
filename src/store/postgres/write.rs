//! The PostgreSQL writes: syncing monitors, inserting results with their rollups, tracker
//! state and alert incidents (with their outbox rows) in one transaction, and retention.
//! Every write is correct with several processes writing the same database at once: upserts
//! with `ON CONFLICT`, rollups merged under a row lock (see `rollups::merge_rollup`).

use std::collections::{BTreeMap, HashMap, HashSet};

use ::postgres::{Client, GenericClient, Row, Transaction};

use super::rollups;
use crate::alert::AlertPlan;
use crate::model::{CheckResult, Kind, Status, Timestamp};
use crate::pipeline::tracker::{self, SeriesState, StatusChange, Step};
use crate::store::window::Rollup;
use crate::store::{BUCKET_MS, MonitorRow, StoreError, SyncReport};

/// Rows deleted per prune transaction: small, so a concurrent writer never waits long.
const PRUNE_BATCH: i64 = 2_000;
/// Monitor rows per sync transaction.
const SYNC_BATCH: usize = 5_000;

pub(super) fn sync_monitors(c: &mut Client, rows: &[MonitorRow]) -> Result<SyncReport, StoreError> {
    let now = Timestamp::now().millis();
    let mut report = SyncReport::default();
    for batch in rows.chunks(SYNC_BATCH) {
        let mut tx = c.transaction()?;
        report.written += upsert_monitors(&mut tx, batch, now)?;
        tx.commit()?;
    }
    let mut tx = c.transaction()?;
    report.disabled = disable_missing(&mut tx, rows, now)?;
    tx.commit()?;
    Ok(report)
}

/// Upserts `rows`; only a row whose content changed is written (and counted).
fn upsert_monitors(
    tx: &mut Transaction<'_>,
    rows: &[MonitorRow],
    now: i64,
) -> Result<usize, StoreError> {
    let upsert = tx.prepare(
        "INSERT INTO monitors AS t (id, name, provider, api, endpoint, grp, enabled, interval_ms,
             models, sealed_key, sealed_headers, key_error, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, provider = excluded.provider,
             api = excluded.api, endpoint = excluded.endpoint, grp = excluded.grp,
             enabled = excluded.enabled, interval_ms = excluded.interval_ms,
             models = excluded.models, sealed_key = excluded.sealed_key,
             sealed_headers = excluded.sealed_headers, key_error = excluded.key_error,
             updated_at = excluded.updated_at
         WHERE (t.name, t.provider, t.api, t.endpoint, t.grp, t.enabled, t.interval_ms,
                t.models, t.sealed_key, t.sealed_headers, t.key_error)
           IS DISTINCT FROM
               (excluded.name, excluded.provider, excluded.api, excluded.endpoint, excluded.grp,
                excluded.enabled, excluded.interval_ms, excluded.models, excluded.sealed_key,
                excluded.sealed_headers, excluded.key_error)",
    )?;
    let series = tx.prepare(
        "INSERT INTO series (monitor, model) SELECT pk, $2 FROM monitors WHERE id = $1
         ON CONFLICT DO NOTHING",
    )?;
    let mut written = 0;
    for m in rows {
        let models = serde_json::to_string(&m.models).unwrap_or_else(|_| "[]".into());
        written += tx.execute(
            &upsert,
            &[
                &m.id.as_str(),
                &m.name,
                &m.provider,
                &m.api,
                &m.endpoint,
                &m.group,
                &m.enabled,
                &m.interval_ms,
                &models,
                &m.sealed_key,
                &m.sealed_headers,
                &m.key_error,
                &now,
            ],
        )? as usize;
        for model in &m.models {
            tx.execute(&series, &[&m.id.as_str(), model])?;
        }
    }
    Ok(written)
}

fn disable_missing(
    tx: &mut Transaction<'_>,
    rows: &[MonitorRow],
    now: i64,
) -> Result<usize, StoreError> {
    let keep: HashSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let enabled: Vec<String> = tx
        .query("SELECT id FROM monitors WHERE enabled", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let gone: Vec<&String> = enabled
        .iter()
        .filter(|id| !keep.contains(id.as_str()))
        .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    let n = tx.execute(
        "UPDATE monitors SET enabled = false, updated_at = $2 WHERE id = ANY($1) AND enabled",
        &[&gone, &now],
    )?;
    Ok(n as usize)
}

type Slot = (Option<SeriesState>, Option<SeriesState>);

/// Writes results, their rollups, the tracker and (with a plan) incidents and their outbox
/// rows in one transaction.
pub(super) fn insert_results(
    c: &mut Client,
    cache: &mut HashMap<SeriesKey, i64>,
    results: &[CheckResult],
    plan: Option<&AlertPlan>,
    replica: Option<&str>,
) -> Result<Vec<StatusChange>, StoreError> {
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = c.transaction()?;
    // Replicas' writers take turns: one transaction-scoped lock for the whole batch. A batch
    // takes milliseconds, and taking turns settles every cross-replica ordering question at
    // once: a model's incident decided from the other locations' committed alert state,
    // rollup and tracker rows never locked in two orders (no deadlock aborts).
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
    // Which results to record: all, unless a replica lost a slot's lease meanwhile.
    let keep = match replica {
        Some(name) => {
            let keep = super::claims::complete(&mut tx, name, results, Timestamp::now())?;
            let dropped = keep.iter().filter(|k| !**k).count();
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "results of a slot whose lease this replica no longer held were not recorded (another replica ran that slot)"
                );
            }
            keep
        }
        None => vec![true; results.len()],
    };
    let mut new_series: HashMap<SeriesKey, i64> = HashMap::new();
    let mut deltas: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
    let mut states: HashMap<i64, Slot> = HashMap::new();
    let mut changes = Vec::new();
    for r in results
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(r, _)| r)
    {
        let k = (
            r.monitor.as_str().to_owned(),
            r.model.clone(),
            r.location.clone(),
        );
        let series = match cache.get(&k).or_else(|| new_series.get(&k)) {
            Some(s) => *s,
            None => {
                let s = series_pk(&mut tx, r.monitor.as_str(), &r.model, &r.location)?;
                new_series.insert(k, s);
                s
            }
        };
        let at = insert_row(&mut tx, series, r)?;
        let d = deltas
            .entry((series, at.div_euclid(BUCKET_MS)))
            .or_default();
        d.add(r.status, r.kind, r.latency_ms, r.ttft_ms);
        d.add_facts(&r.facts);
        let slot = match states.entry(series) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let loaded = load_state(&mut tx, series)?;
                e.insert((loaded, loaded))
            }
        };
        let step = tracker::advance(slot.1.as_ref(), r);
        if let Some(plan) = plan
            && step != Step::Stale
        {
            super::alerts::apply(
                &mut tx,
                plan,
                series,
                r,
                plan.muted(&r.monitor, r.started_at),
            )?;
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
        rollups::merge_rollup(&mut tx, series, bucket, &d)?;
    }
    for (series, (before, after)) in states {
        if let Some(s) = after.filter(|a| Some(*a) != before) {
            store_state(&mut tx, series, &s)?;
        }
    }
    tx.commit()?;
    cache.extend(new_series);
    Ok(changes)
}

fn opt(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

/// Inserts one history row; returns the `started_at` it was stored under (a second result of
/// one series in the same millisecond is nudged forward, as in SQLite).
fn insert_row(tx: &mut Transaction<'_>, series: i64, r: &CheckResult) -> Result<i64, StoreError> {
    let message = (!r.message.is_empty()).then_some(r.message.as_str());
    let mut at = r.started_at.millis();
    let (status, kind) = (i64::from(r.status.code()), i64::from(r.kind.code()));
    let http = r.http_status.map(i64::from);
    let cost = r.facts.cost_nano.map(|c| c.min(i64::MAX as u64) as i64);
    let tps = r.facts.tps.filter(|t| t.is_finite());
    loop {
        let n = tx.execute(
            "INSERT INTO history
             (series, started_at, status, kind, http, ttft_ms, latency_ms, ping_ms, message,
              answered_model, tokens_in, tokens_out, tokens_reasoning, cost_nano, tps, due_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             ON CONFLICT DO NOTHING",
            &[
                &series,
                &at,
                &status,
                &kind,
                &http,
                &opt(r.ttft_ms),
                &opt(r.latency_ms),
                &opt(r.ping_ms),
                &message,
                &r.facts.answered_model,
                &opt(r.facts.tokens_in),
                &opt(r.facts.tokens_out),
                &opt(r.facts.tokens_reasoning),
                &cost,
                &tps,
                &r.due_at.map(Timestamp::millis),
            ],
        )?;
        if n == 1 {
            return Ok(at);
        }
        at += 1;
    }
}

pub(super) const STATE_COLS: &str = "status, kind, since, last_at, consecutive";

/// A tracker state from columns `first..first + 5` (in `STATE_COLS` order).
pub(super) fn state_from_row(r: &Row, first: usize) -> Result<SeriesState, StoreError> {
    Ok(SeriesState {
        status: Status::from_code(r.try_get(first)?).unwrap_or(Status::Error),
        kind: Kind::from_code(r.try_get(first + 1)?).unwrap_or(Kind::Internal),
        since: Timestamp(r.try_get(first + 2)?),
        last_at: Timestamp(r.try_get(first + 3)?),
        consecutive: r.try_get::<_, i64>(first + 4)?.clamp(1, u32::MAX as i64) as u32,
    })
}

/// The tracker state of a series, its row locked until the transaction ends, so two writers
/// of one series advance it one after the other.
fn load_state(c: &mut impl GenericClient, series: i64) -> Result<Option<SeriesState>, StoreError> {
    let sql = format!("SELECT {STATE_COLS} FROM tracker WHERE series = $1 FOR UPDATE");
    c.query_opt(&sql, &[&series])?
        .map(|r| state_from_row(&r, 0))
        .transpose()
}

fn store_state(tx: &mut Transaction<'_>, series: i64, s: &SeriesState) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO tracker (series, {STATE_COLS}) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (series) DO UPDATE SET status = excluded.status, kind = excluded.kind,
                 since = excluded.since, last_at = excluded.last_at,
                 consecutive = excluded.consecutive"
        ),
        &[
            &series,
            &i64::from(s.status.code()),
            &i64::from(s.kind.code()),
            &s.since.millis(),
            &s.last_at.millis(),
            &i64::from(s.consecutive),
        ],
    )?;
    Ok(())
}

/// The writers' turn-taking lock ("chanmon writer").
pub(super) const WRITE_LOCK: i64 = 0x6368_616e_7772_6974;

/// (monitor id, model, location): what identifies a series.
pub(super) type SeriesKey = (String, String, String);

fn series_pk(
    tx: &mut Transaction<'_>,
    monitor: &str,
    model: &str,
    location: &str,
) -> Result<i64, StoreError> {
    let mpk: i64 = tx
        .query_opt("SELECT pk FROM monitors WHERE id = $1", &[&monitor])?
        .ok_or_else(|| StoreError::UnknownMonitor(monitor.to_owned()))?
        .get(0);
    tx.execute(
        "INSERT INTO series (monitor, model, location) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[&mpk, &model, &location],
    )?;
    Ok(tx
        .query_one(
            "SELECT pk FROM series WHERE monitor = $1 AND model = $2 AND location = $3",
            &[&mpk, &model, &location],
        )?
        .get(0))
}

/// Deletes raw rows before `cutoff` (ms) in small batches, each its own short transaction.
pub(super) fn prune(c: &mut Client, cutoff: i64, dry_run: bool) -> Result<u64, StoreError> {
    if dry_run {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM history WHERE series IN (SELECT pk FROM series) AND started_at < $1",
                &[&cutoff],
            )?
            .get(0);
        return Ok(n as u64);
    }
    // Record first: from now on windows must not expect raw rows before the cutoff.
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('raw_from', $1)
         ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value, excluded.value)",
        &[&cutoff],
    )?;
    let series: Vec<i64> = c
        .query("SELECT pk FROM series ORDER BY pk", &[])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut deleted = 0u64;
    for s in series {
        loop {
            // Each statement is its own transaction: a batch of the oldest rows.
            let n = c.execute(
                "DELETE FROM history WHERE series = $1 AND started_at IN
                   (SELECT started_at FROM history WHERE series = $1 AND started_at < $2
                    ORDER BY started_at LIMIT $3)",
                &[&s, &cutoff, &PRUNE_BATCH],
            )?;
            deleted += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
    }
    Ok(deleted)
}

/// Deletes rollup buckets before `bucket`, in batches.
pub(super) fn prune_rollups(c: &mut Client, bucket: i64, dry_run: bool) -> Result<u64, StoreError> {
    if dry_run {
        let n: i64 = c
            .query_one("SELECT count(*) FROM rollups WHERE bucket < $1", &[&bucket])?
            .get(0);
        return Ok(n as u64);
    }
    let mut total = 0u64;
    loop {
        let n = c.execute(
            "DELETE FROM rollups WHERE (series, bucket) IN
               (SELECT series, bucket FROM rollups WHERE bucket < $1 LIMIT $2)",
            &[&bucket, &PRUNE_BATCH],
        )?;
        total += n;
        if n < PRUNE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Recomputes the rollups of every hour after `raw_from`'s hour from the raw rows, in one
/// transaction (the raw rows are read through a cursor, not all at once).
pub(super) fn rebuild_rollups(c: &mut Client, raw_from: i64) -> Result<u64, StoreError> {
    let first_bucket = if raw_from == i64::MIN {
        i64::MIN
    } else {
        raw_from.div_euclid(BUCKET_MS) + 1
    };
    let from_ms = first_bucket.saturating_mul(BUCKET_MS);
    let mut tx = c.transaction()?;
    tx.execute("DELETE FROM rollups WHERE bucket >= $1", &[&first_bucket])?;
    let mut deltas: BTreeMap<(i64, i64), Rollup> = BTreeMap::new();
    let portal = tx.bind(
        &format!(
            "SELECT series, started_at, {} FROM history WHERE started_at >= $1",
            rollups::RAW_COLS
        ),
        &[&from_ms],
    )?;
    loop {
        let rows = tx.query_portal(&portal, 10_000)?;
        for r in &rows {
            let at: i64 = r.try_get(1)?;
            let d = deltas
                .entry((r.try_get(0)?, at.div_euclid(BUCKET_MS)))
                .or_default();
            rollups::add_raw(d, r, 2)?;
        }
        if rows.len() < 10_000 {
            break;
        }
    }
    let n = deltas.len() as u64;
    for ((series, bucket), d) in deltas {
        rollups::merge_rollup(&mut tx, series, bucket, &d)?;
    }
    tx.commit()?;
    Ok(n)
}
