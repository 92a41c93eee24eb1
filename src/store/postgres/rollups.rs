//! Rollups in PostgreSQL: merged under a row lock (so several writers never lose a count),
//! read whole or by the window plan; same blob formats as SQLite (`store::hist`).

use ::postgres::{GenericClient, Row, Statement};

use crate::model::{Kind, ReplyFacts, Status, Timestamp};
use crate::store::hist::{add_pairs, encode_pairs};
use crate::store::window::{Part, Rollup, WindowStats, plan};
use crate::store::{BUCKET_MS, BucketSummary, StoreError};

pub(super) const ROLLUP_COLS: &str = "n_operational, n_degraded, n_failed, n_error, kinds, latency_sum, latency_n, ttft_sum, ttft_n, hist, usage_n, tokens_in, tokens_out, tokens_reasoning, cost_n, cost_nano, tps_hist";

fn u(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// Adds `d` to the stored rollup of (series, bucket). The row is created empty if missing,
/// then locked (`FOR UPDATE`) and rewritten with the sum: a concurrent writer of the same
/// bucket waits for this transaction and then adds to what it wrote. Callers merge buckets
/// in key order, so two writers cannot deadlock on them.
pub(super) fn merge_rollup(
    c: &mut impl GenericClient,
    series: i64,
    bucket: i64,
    d: &Rollup,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO rollups (series, bucket, n_operational, n_degraded, n_failed, n_error, kinds,
             latency_sum, latency_n, ttft_sum, ttft_n, hist)
         VALUES ($1, $2, 0, 0, 0, 0, '\\x', 0, 0, 0, 0, '\\x') ON CONFLICT DO NOTHING",
        &[&series, &bucket],
    )?;
    let row = c.query_one(
        &format!("SELECT {ROLLUP_COLS} FROM rollups WHERE series = $1 AND bucket = $2 FOR UPDATE"),
        &[&series, &bucket],
    )?;
    let mut cur = Rollup::default();
    add_row(&mut cur, &row, 0)?;
    cur.merge(d);
    c.execute(
        "UPDATE rollups SET n_operational = $3, n_degraded = $4, n_failed = $5, n_error = $6,
             kinds = $7, latency_sum = $8, latency_n = $9, ttft_sum = $10, ttft_n = $11,
             hist = $12, usage_n = $13, tokens_in = $14, tokens_out = $15,
             tokens_reasoning = $16, cost_n = $17, cost_nano = $18, tps_hist = $19
         WHERE series = $1 AND bucket = $2",
        &[
            &series,
            &bucket,
            &u(cur.by_status[0]),
            &u(cur.by_status[1]),
            &u(cur.by_status[2]),
            &u(cur.by_status[3]),
            &encode_pairs(&cur.by_kind),
            &u(cur.latency_sum),
            &u(cur.latency_n),
            &u(cur.ttft_sum),
            &u(cur.ttft_n),
            &cur.latency_hist.encode(),
            &u(cur.usage_n),
            &u(cur.tokens_in),
            &u(cur.tokens_out),
            &u(cur.tokens_reasoning),
            &u(cur.cost_n),
            &u(cur.cost_nano),
            &cur.tps_hist.encode(),
        ],
    )?;
    Ok(())
}

/// Adds the rollup columns starting at `first` (in `ROLLUP_COLS` order) to `acc`.
pub(super) fn add_row(acc: &mut Rollup, r: &Row, first: usize) -> Result<(), StoreError> {
    let n =
        |i: usize| -> Result<u64, StoreError> { Ok(r.try_get::<_, i64>(first + i)?.max(0) as u64) };
    for (i, slot) in acc.by_status.iter_mut().enumerate() {
        *slot += n(i)?;
    }
    add_pairs(&mut acc.by_kind, r.try_get::<_, &[u8]>(first + 4)?);
    acc.latency_sum += n(5)?;
    acc.latency_n += n(6)?;
    acc.ttft_sum += n(7)?;
    acc.ttft_n += n(8)?;
    acc.latency_hist
        .merge_encoded(r.try_get::<_, &[u8]>(first + 9)?);
    acc.usage_n += n(10)?;
    acc.tokens_in += n(11)?;
    acc.tokens_out += n(12)?;
    acc.tokens_reasoning += n(13)?;
    acc.cost_n += n(14)?;
    acc.cost_nano += n(15)?;
    acc.tps_hist
        .merge_encoded(r.try_get::<_, &[u8]>(first + 16)?);
    Ok(())
}

/// The usage columns `tokens_in, tokens_out, tokens_reasoning, cost_nano, tps` from `first`.
pub(super) fn facts_from_row(r: &Row, first: usize) -> Result<ReplyFacts, StoreError> {
    let count = |i: usize| -> Result<Option<u32>, StoreError> {
        Ok(r.try_get::<_, Option<i64>>(first + i)?
            .and_then(|v| u32::try_from(v).ok()))
    };
    Ok(ReplyFacts {
        answered_model: None,
        tokens_in: count(0)?,
        tokens_out: count(1)?,
        tokens_reasoning: count(2)?,
        cost_nano: r
            .try_get::<_, Option<i64>>(first + 3)?
            .and_then(|v| u64::try_from(v).ok()),
        tps: r.try_get(first + 4)?,
    })
}

fn opt_u32(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

/// Status, kind, latency, ttft and the usage columns of a raw row from `first` on.
pub(super) fn add_raw(acc: &mut Rollup, r: &Row, first: usize) -> Result<(), StoreError> {
    let status = Status::from_code(r.try_get(first)?).unwrap_or(Status::Error);
    let kind = Kind::from_code(r.try_get(first + 1)?).unwrap_or(Kind::Internal);
    acc.add(
        status,
        kind,
        opt_u32(r.try_get(first + 2)?),
        opt_u32(r.try_get(first + 3)?),
    );
    acc.add_facts(&facts_from_row(r, first + 4)?);
    Ok(())
}

pub(super) const RAW_COLS: &str =
    "status, kind, latency_ms, ttft_ms, tokens_in, tokens_out, tokens_reasoning, cost_nano, tps";

/// The two window reads, prepared once per call that makes many of them (`status` reads
/// three windows of every series): each read is then one round trip, not two.
pub(super) struct WindowReads {
    raw: Statement,
    buckets: Statement,
}

impl WindowReads {
    pub(super) fn prepare(c: &mut impl GenericClient) -> Result<WindowReads, StoreError> {
        Ok(WindowReads {
            raw: c.prepare(&format!(
                "SELECT {RAW_COLS} FROM history
                 WHERE series = $1 AND started_at >= $2 AND started_at < $3"
            ))?,
            buckets: c.prepare(&format!(
                "SELECT {ROLLUP_COLS} FROM rollups
                 WHERE series = $1 AND bucket >= $2 AND bucket < $3"
            ))?,
        })
    }

    fn raw_rollup(
        &self,
        c: &mut impl GenericClient,
        series: i64,
        from: i64,
        to: i64,
    ) -> Result<Rollup, StoreError> {
        let mut total = Rollup::default();
        for r in &c.query(&self.raw, &[&series, &from, &to])? {
            add_raw(&mut total, r, 0)?;
        }
        Ok(total)
    }

    fn buckets(
        &self,
        c: &mut impl GenericClient,
        series: i64,
        lo: i64,
        hi: i64,
    ) -> Result<Rollup, StoreError> {
        let mut total = Rollup::default();
        for r in &c.query(&self.buckets, &[&series, &lo, &hi])? {
            add_row(&mut total, r, 0)?;
        }
        Ok(total)
    }

    /// A raw scan of [from, to).
    pub(super) fn raw(
        &self,
        c: &mut impl GenericClient,
        series: i64,
        from: i64,
        to: i64,
    ) -> Result<WindowStats, StoreError> {
        Ok(WindowStats {
            rollup: self.raw_rollup(c, series, from, to)?,
        })
    }

    /// [from, to) as `store::window::plan` splits it.
    pub(super) fn stats(
        &self,
        c: &mut impl GenericClient,
        series: i64,
        from: i64,
        to: i64,
        raw_from: i64,
    ) -> Result<WindowStats, StoreError> {
        let mut total = Rollup::default();
        for part in plan(from, to, raw_from) {
            let r = match part {
                Part::Raw { from, to } => self.raw_rollup(c, series, from, to)?,
                Part::Buckets { lo, hi } => self.buckets(c, series, lo, hi)?,
            };
            total.merge(&r);
        }
        Ok(WindowStats { rollup: total })
    }
}

/// Checks by status and latency sums per series and hour (or UTC day), from `from` on.
pub(super) fn bucket_summaries(
    c: &mut impl GenericClient,
    from: Timestamp,
    daily: bool,
) -> Result<Vec<BucketSummary>, StoreError> {
    let hours: i64 = if daily { 24 } else { 1 };
    let first = from.millis().div_euclid(BUCKET_MS);
    let rows = c.query(
        "SELECT m.id, s.model, r.bucket / $2 AS b,
             sum(r.n_operational)::bigint, sum(r.n_degraded)::bigint, sum(r.n_failed)::bigint,
             sum(r.n_error)::bigint, sum(r.latency_sum)::bigint, sum(r.latency_n)::bigint,
             s.location
         FROM rollups r JOIN series s ON s.pk = r.series JOIN monitors m ON m.pk = s.monitor
         WHERE r.bucket >= $1
         GROUP BY r.series, m.id, s.model, s.location, b
         ORDER BY r.series, b",
        &[&first, &hours],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let n = |i: usize| -> Result<u64, StoreError> { Ok(r.try_get::<_, i64>(i)?.max(0) as u64) };
        let Ok(monitor) = crate::model::MonitorId::parse(r.try_get::<_, &str>(0)?) else {
            continue;
        };
        out.push(BucketSummary {
            monitor,
            model: r.try_get(1)?,
            start: Timestamp(r.try_get::<_, i64>(2)? * hours * BUCKET_MS),
            by_status: [n(3)?, n(4)?, n(5)?, n(6)?],
            latency_sum: n(7)?,
            latency_n: n(8)?,
            location: r.try_get(9)?,
        });
    }
    Ok(out)
}
