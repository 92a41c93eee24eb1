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
             latency_sum, latency_n, ttft_sum, ttft_n, hist)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (series, bucket) DO UPDATE SET n_operational = excluded.n_operational,
             n_degraded = excluded.n_degraded, n_failed = excluded.n_failed, n_error = excluded.n_error,
             kinds = excluded.kinds, latency_sum = excluded.latency_sum, latency_n = excluded.latency_n,
             ttft_sum = excluded.ttft_sum, ttft_n = excluded.ttft_n, hist = excluded.hist",
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
    ])?;
    Ok(())
}

pub(super) const ROLLUP_COLS: &str = "n_operational, n_degraded, n_failed, n_error, kinds, latency_sum, latency_n, ttft_sum, ttft_n, hist";

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
        "SELECT status, kind, latency_ms, ttft_ms FROM history
         WHERE series = ?1 AND started_at >= ?2 AND started_at < ?3",
    )?;
    let mut total = Rollup::default();
    let mut rows = st.query(params![series, from, to])?;
    while let Some(r) = rows.next()? {
        let status = Status::from_code(r.get(0)?).unwrap_or(Status::Error);
        let kind = Kind::from_code(r.get(1)?).unwrap_or(Kind::Internal);
        total.add(status, kind, r.get(2)?, r.get(3)?);
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
