//! Rollups and windows: hourly aggregates, and statistics over any [from, to) that equal a
//! scan of the raw rows while those exist.
//!
//! A window is answered as full hours from `rollups` plus the partial hours at its edges from
//! raw rows. Where the left edge lies before the last prune (`raw_from`), its raw rows are
//! gone and the whole hour's rollup stands in for it.

use rusqlite::{Connection, OptionalExtension, params};

use super::hist::{Histogram, add_pairs, encode_pairs};
use super::{BUCKET_MS, StoreError};
use crate::model::{Kind, Status};

/// Aggregates of one bucket (or of a whole window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    pub by_status: [u64; 4],
    /// Indexed by `Kind::code()`.
    pub by_kind: [u64; 32],
    pub latency_sum: u64,
    pub latency_n: u64,
    pub ttft_sum: u64,
    pub ttft_n: u64,
    pub latency_hist: Histogram,
}

impl Rollup {
    pub fn add(
        &mut self,
        status: Status,
        kind: Kind,
        latency_ms: Option<u32>,
        ttft_ms: Option<u32>,
    ) {
        self.by_status[status.code() as usize] += 1;
        self.by_kind[kind.code() as usize] += 1;
        // Latency statistics describe answers: only operational and degraded checks count.
        if status.is_up() {
            if let Some(l) = latency_ms {
                self.latency_sum += l as u64;
                self.latency_n += 1;
                self.latency_hist.add(l);
            }
            if let Some(t) = ttft_ms {
                self.ttft_sum += t as u64;
                self.ttft_n += 1;
            }
        }
    }

    fn merge(&mut self, o: &Rollup) {
        for i in 0..4 {
            self.by_status[i] += o.by_status[i];
        }
        for (a, b) in self.by_kind.iter_mut().zip(o.by_kind) {
            *a += b;
        }
        self.latency_sum += o.latency_sum;
        self.latency_n += o.latency_n;
        self.ttft_sum += o.ttft_sum;
        self.ttft_n += o.ttft_n;
        self.latency_hist.merge(&o.latency_hist);
    }
}

/// Statistics over a window, as `status` shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowStats {
    pub rollup: Rollup,
}

impl WindowStats {
    pub fn total(&self) -> u64 {
        self.rollup.by_status.iter().sum()
    }

    pub fn count(&self, s: Status) -> u64 {
        self.rollup.by_status[s.code() as usize]
    }

    pub fn count_kind(&self, k: Kind) -> u64 {
        self.rollup.by_kind[k.code() as usize]
    }

    /// (operational + degraded) / all, or `None` with no checks.
    pub fn availability(&self) -> Option<f64> {
        let n = self.total();
        (n > 0).then(|| {
            (self.count(Status::Operational) + self.count(Status::Degraded)) as f64 / n as f64
        })
    }

    pub fn avg_latency_ms(&self) -> Option<f64> {
        (self.rollup.latency_n > 0)
            .then(|| self.rollup.latency_sum as f64 / self.rollup.latency_n as f64)
    }

    pub fn avg_ttft_ms(&self) -> Option<f64> {
        (self.rollup.ttft_n > 0).then(|| self.rollup.ttft_sum as f64 / self.rollup.ttft_n as f64)
    }

    /// Latency percentile of answered checks, within 5 % (histogram buckets).
    pub fn latency_percentile(&self, q: f64) -> Option<f64> {
        self.rollup.latency_hist.percentile(q)
    }
}

/// Adds `d` to the stored rollup of (series, bucket).
pub fn merge_rollup(
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

const ROLLUP_COLS: &str = "n_operational, n_degraded, n_failed, n_error, kinds, latency_sum, latency_n, ttft_sum, ttft_n, hist";

/// Adds a stored rollup row to `acc` (decoding straight into it: a window reads hundreds).
fn add_row(acc: &mut Rollup, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
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
pub fn raw(conn: &Connection, series: i64, from: i64, to: i64) -> Result<WindowStats, StoreError> {
    Ok(WindowStats {
        rollup: raw_rollup(conn, series, from, to)?,
    })
}

/// [from, to) from rollups (full hours) and raw rows (partial hours), see the module header.
pub fn stats(
    conn: &Connection,
    series: i64,
    from: i64,
    to: i64,
    raw_from: i64,
) -> Result<WindowStats, StoreError> {
    if from >= to {
        return Ok(WindowStats::default());
    }
    let first_full = from.div_euclid(BUCKET_MS) + i64::from(from.rem_euclid(BUCKET_MS) != 0);
    let end_full = to.div_euclid(BUCKET_MS);
    let mut total = Rollup::default();
    if first_full >= end_full {
        total.merge(&edge(conn, series, from, to, raw_from)?);
    } else {
        total.merge(&edge(conn, series, from, first_full * BUCKET_MS, raw_from)?);
        total.merge(&buckets(conn, series, first_full, end_full)?);
        total.merge(&edge(conn, series, end_full * BUCKET_MS, to, raw_from)?);
    }
    Ok(WindowStats { rollup: total })
}

/// A part of one hour: raw rows when they are all still there, else that hour's rollup.
fn edge(
    conn: &Connection,
    series: i64,
    from: i64,
    to: i64,
    raw_from: i64,
) -> Result<Rollup, StoreError> {
    if from >= to {
        return Ok(Rollup::default());
    }
    if from >= raw_from {
        return raw_rollup(conn, series, from, to);
    }
    let bucket = from.div_euclid(BUCKET_MS);
    Ok(load_bucket(conn, series, bucket)?.unwrap_or_default())
}
