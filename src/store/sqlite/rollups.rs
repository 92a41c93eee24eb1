//! Reading and writing rollups in SQLite, and fetching the parts of a window that
//! `store::window::plan` decides on.

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{Kind, Status};
use crate::store::StoreError;
use crate::store::hist::{add_pairs, encode_pairs};
use crate::store::window::{Part, Rollup, WindowStats, plan};

/// Adds `d` to the stored rollup of (series, bucket).
pub(super) fn merge_rollup(
    conn: &Connection,
    series: i64,
    bucket: i64,
    d: &Rollup,
) -> Result<(), StoreError> {
    let mut cur = load_bucket(conn, series, bucket)?.unwrap_or_default();
    cur.merge(d);
    let mut st = conn.prepare_cached(
        "INSERT INTO rollups (series, bucket, n_operational, n_degraded, n_failed, n_error, kinds,
             latency_sum, latency_n, ttft_sum, ttft_n, hist,
             usage_n, tokens_in, tokens_out, tokens_reasoning, cost_n, cost_nano, tps_hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT (series, bucket) DO UPDATE SET n_operational = excluded.n_operational,
             n_degraded = excluded.n_degraded, n_failed = excluded.n_failed, n_error = excluded.n_error,
             kinds = excluded.kinds, latency_sum = excluded.latency_sum, latency_n = excluded.latency_n,
             ttft_sum = excluded.ttft_sum, ttft_n = excluded.ttft_n, hist = excluded.hist,
             usage_n = excluded.usage_n, tokens_in = excluded.tokens_in,
             tokens_out = excluded.tokens_out, tokens_reasoning = excluded.tokens_reasoning,
             cost_n = excluded.cost_n, cost_nano = excluded.cost_nano, tps_hist = excluded.tps_hist",
    )?;
    st.execute(params![
        series,
        bucket,
        cur.by_status[0] as i64,
        cur.by_status[1] as i64,
        cur.by_status[2] as i64,
        cur.by_status[3] as i64,
        encode_pairs(&cur.by_kind),
        cur.latency_sum as i64,
        cur.latency_n as i64,
        cur.ttft_sum as i64,
        cur.ttft_n as i64,
        cur.latency_hist.encode(),
        cur.usage_n as i64,
        cur.tokens_in as i64,
        cur.tokens_out as i64,
        cur.tokens_reasoning as i64,
        cur.cost_n as i64,
        cur.cost_nano.min(i64::MAX as u64) as i64,
        cur.tps_hist.encode(),
    ])?;
    Ok(())
}

pub(super) const ROLLUP_COLS: &str = "n_operational, n_degraded, n_failed, n_error, kinds, latency_sum, latency_n, ttft_sum, ttft_n, hist, usage_n, tokens_in, tokens_out, tokens_reasoning, cost_n, cost_nano, tps_hist";

/// Adds a stored rollup row to `acc` (decoding straight into it: a window reads hundreds).
pub(super) fn add_row(acc: &mut Rollup, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    for (i, slot) in acc.by_status.iter_mut().enumerate() {
        *slot += n(i)?;
    }
    let kinds = r.get_ref(4)?.as_blob().unwrap_or(&[]);
    add_pairs(&mut acc.by_kind, kinds);
    acc.latency_sum += n(5)?;
    acc.latency_n += n(6)?;
    acc.ttft_sum += n(7)?;
    acc.ttft_n += n(8)?;
    acc.latency_hist
        .merge_encoded(r.get_ref(9)?.as_blob().unwrap_or(&[]));
    acc.usage_n += n(10)?;
    acc.tokens_in += n(11)?;
    acc.tokens_out += n(12)?;
    acc.tokens_reasoning += n(13)?;
    acc.cost_n += n(14)?;
    acc.cost_nano += n(15)?;
    acc.tps_hist
        .merge_encoded(r.get_ref(16)?.as_blob().unwrap_or(&[]));
    Ok(())
}

fn load_bucket(conn: &Connection, series: i64, bucket: i64) -> Result<Option<Rollup>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ROLLUP_COLS} FROM rollups WHERE series = ?1 AND bucket = ?2"
    ))?;
    Ok(st
        .query_row(params![series, bucket], |r| {
            let mut acc = Rollup::default();
            add_row(&mut acc, r)?;
            Ok(acc)
        })
        .optional()?)
}

fn buckets(conn: &Connection, series: i64, lo: i64, hi: i64) -> Result<Rollup, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ROLLUP_COLS} FROM rollups WHERE series = ?1 AND bucket >= ?2 AND bucket < ?3"
    ))?;
    let mut total = Rollup::default();
    let mut rows = st.query(params![series, lo, hi])?;
    while let Some(r) = rows.next()? {
        add_row(&mut total, r)?;
    }
    Ok(total)
}

fn raw_rollup(conn: &Connection, series: i64, from: i64, to: i64) -> Result<Rollup, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT status, kind, latency_ms, ttft_ms, tokens_in, tokens_out, tokens_reasoning,
             cost_nano, tps FROM history
         WHERE series = ?1 AND started_at >= ?2 AND started_at < ?3",
    )?;
    let mut total = Rollup::default();
    let mut rows = st.query(params![series, from, to])?;
    while let Some(r) = rows.next()? {
        let status = Status::from_code(r.get(0)?).unwrap_or(Status::Error);
        let kind = Kind::from_code(r.get(1)?).unwrap_or(Kind::Internal);
        total.add(status, kind, r.get(2)?, r.get(3)?);
        total.add_facts(&facts_from_row(r, 4)?);
    }
    Ok(total)
}

/// A raw scan of [from, to).
pub(super) fn raw(
    conn: &Connection,
    series: i64,
    from: i64,
    to: i64,
) -> Result<WindowStats, StoreError> {
    Ok(WindowStats {
        rollup: raw_rollup(conn, series, from, to)?,
    })
}

/// [from, to) as `plan` splits it.
pub(super) fn stats(
    conn: &Connection,
    series: i64,
    from: i64,
    to: i64,
    raw_from: i64,
) -> Result<WindowStats, StoreError> {
    let mut total = Rollup::default();
    for part in plan(from, to, raw_from) {
        let r = match part {
            Part::Raw { from, to } => raw_rollup(conn, series, from, to)?,
            Part::Buckets { lo, hi } if hi == lo + 1 => {
                load_bucket(conn, series, lo)?.unwrap_or_default()
            }
            Part::Buckets { lo, hi } => buckets(conn, series, lo, hi)?,
        };
        total.merge(&r);
    }
    Ok(WindowStats { rollup: total })
}

/// The usage columns `tokens_in, tokens_out, tokens_reasoning, cost_nano, tps` from `first` on
/// (the answered model is not needed for sums). A negative count from a damaged row reads as
/// not recorded rather than as a huge number.
pub(super) fn facts_from_row(
    r: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<crate::model::ReplyFacts> {
    let count = |i: usize| -> rusqlite::Result<Option<u32>> {
        Ok(r.get::<_, Option<i64>>(first + i)?
            .and_then(|v| u32::try_from(v).ok()))
    };
    Ok(crate::model::ReplyFacts {
        answered_model: None,
        tokens_in: count(0)?,
        tokens_out: count(1)?,
        tokens_reasoning: count(2)?,
        cost_nano: r
            .get::<_, Option<i64>>(first + 3)?
            .and_then(|v| u64::try_from(v).ok()),
        tps: r.get::<_, Option<f64>>(first + 4)?,
    })
}

/// Checks by status and latency sums per series and hour (or UTC day), from `from` on: one
/// grouped scan of the rollups (series × buckets rows), never of the raw history.
pub(super) fn bucket_summaries(
    conn: &Connection,
    from: crate::model::Timestamp,
    daily: bool,
) -> Result<Vec<crate::store::BucketSummary>, StoreError> {
    let hours: i64 = if daily { 24 } else { 1 };
    let first = from.millis().div_euclid(crate::store::BUCKET_MS);
    let mut st = conn.prepare_cached(
        "SELECT m.id, s.model, r.bucket / ?2 AS b,
             sum(r.n_operational), sum(r.n_degraded), sum(r.n_failed), sum(r.n_error),
             sum(r.latency_sum), sum(r.latency_n), s.location
         FROM rollups r JOIN series s ON s.pk = r.series JOIN monitors m ON m.pk = s.monitor
         WHERE r.bucket >= ?1
         GROUP BY r.series, b
         ORDER BY r.series, b",
    )?;
    let mut rows = st.query(params![first, hours])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
        // Ids in the database were validated when written; skip anything foreign.
        let Ok(monitor) = crate::model::MonitorId::parse(&r.get::<_, String>(0)?) else {
            continue;
        };
        out.push(crate::store::BucketSummary {
            monitor,
            model: r.get(1)?,
            location: r.get(9)?,
            start: crate::model::Timestamp(r.get::<_, i64>(2)? * hours * crate::store::BUCKET_MS),
            by_status: [n(3)?, n(4)?, n(5)?, n(6)?],
            latency_sum: n(7)?,
            latency_n: n(8)?,
        });
    }
    Ok(out)
}
