//! Rollups and windows: hourly aggregates, and the plan that answers statistics over any
//! [from, to) so that they equal a scan of the raw rows while those exist.
//!
//! A window is answered as full hours from rollups plus the partial hours at its edges from
//! raw rows. Where an edge lies before the last prune (`raw_from`), its raw rows are gone and
//! the whole hour's rollup stands in for it. [`plan`] decides which is which; a backend only
//! fetches the parts. Pure code: no SQL here.

use super::BUCKET_MS;
use super::hist::Histogram;
use crate::model::{Kind, ReplyFacts, Status};

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
    /// Checks that reported any token count (schema 3 on; older hours have none).
    pub usage_n: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub tokens_reasoning: u64,
    /// Checks whose cost was computed (a price was configured and usage reported).
    pub cost_n: u64,
    /// Sum of `ReplyFacts::cost_nano`: integers, so sums are exact however they are grouped.
    pub cost_nano: u64,
    /// Throughput in tenths of a token per second, on the latency histogram's log scale.
    pub tps_hist: Histogram,
}

/// Throughput is kept in tenths of a token per second in `Rollup::tps_hist`.
pub(crate) const TPS_SCALE: f64 = 10.0;

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

    /// Adds what a check used and how fast it wrote, whatever its status: a failed probe
    /// costs tokens too.
    pub fn add_facts(&mut self, f: &ReplyFacts) {
        if f.tokens_in.is_some() || f.tokens_out.is_some() || f.tokens_reasoning.is_some() {
            self.usage_n += 1;
            self.tokens_in += u64::from(f.tokens_in.unwrap_or(0));
            self.tokens_out += u64::from(f.tokens_out.unwrap_or(0));
            self.tokens_reasoning += u64::from(f.tokens_reasoning.unwrap_or(0));
        }
        if let Some(c) = f.cost_nano {
            self.cost_n += 1;
            self.cost_nano += c;
        }
        if let Some(t) = f.tps.filter(|t| t.is_finite() && *t >= 0.0) {
            self.tps_hist
                .add((t * TPS_SCALE).round().min(f64::from(u32::MAX)) as u32);
        }
    }

    pub fn merge(&mut self, o: &Rollup) {
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
        self.usage_n += o.usage_n;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.tokens_reasoning += o.tokens_reasoning;
        self.cost_n += o.cost_n;
        self.cost_nano += o.cost_nano;
        self.tps_hist.merge(&o.tps_hist);
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

    /// (prompt, completion) tokens, or `None` when no check in the window recorded usage.
    pub fn tokens(&self) -> Option<(u64, u64)> {
        (self.rollup.usage_n > 0).then_some((self.rollup.tokens_in, self.rollup.tokens_out))
    }

    /// Total cost in the price's unit, or `None` when no check in the window has one.
    pub fn cost(&self) -> Option<f64> {
        (self.rollup.cost_n > 0).then(|| self.rollup.cost_nano as f64 / 1e9)
    }

    /// Throughput percentile (tokens per second) of streamed answers, within 5 %.
    pub fn tps_percentile(&self, q: f64) -> Option<f64> {
        self.rollup.tps_hist.percentile(q).map(|v| v / TPS_SCALE)
    }

    /// Latency percentile of answered checks, within 5 % (histogram buckets).
    pub fn latency_percentile(&self, q: f64) -> Option<f64> {
        self.rollup.latency_hist.percentile(q)
    }
}

/// One part of a window, to be fetched by a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// Raw rows with `from <= started_at < to` (milliseconds).
    Raw { from: i64, to: i64 },
    /// Rollup buckets `lo <= bucket < hi` (hour numbers).
    Buckets { lo: i64, hi: i64 },
}

/// The parts that make up [from, to): full hours from rollups, partial hours from raw rows
/// when all of them still exist (`from >= raw_from`), else that hour's whole rollup.
pub(super) fn plan(from: i64, to: i64, raw_from: i64) -> Vec<Part> {
    let mut parts = Vec::with_capacity(3);
    if from >= to {
        return parts;
    }
    let first_full = from.div_euclid(BUCKET_MS) + i64::from(from.rem_euclid(BUCKET_MS) != 0);
    let end_full = to.div_euclid(BUCKET_MS);
    if first_full >= end_full {
        edge(&mut parts, from, to, raw_from);
    } else {
        edge(&mut parts, from, first_full * BUCKET_MS, raw_from);
        parts.push(Part::Buckets {
            lo: first_full,
            hi: end_full,
        });
        edge(&mut parts, end_full * BUCKET_MS, to, raw_from);
    }
    parts
}

/// A part of one hour: raw rows when they are all still there, else that hour's rollup.
fn edge(parts: &mut Vec<Part>, from: i64, to: i64, raw_from: i64) {
    if from >= to {
        return;
    }
    if from >= raw_from {
        parts.push(Part::Raw { from, to });
    } else {
        let bucket = from.div_euclid(BUCKET_MS);
        parts.push(Part::Buckets {
            lo: bucket,
            hi: bucket + 1,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = BUCKET_MS;

    #[test]
    fn full_hours_come_from_rollups_and_edges_from_raw_rows() {
        assert_eq!(
            plan(H / 2, 3 * H + 10, i64::MIN),
            vec![
                Part::Raw { from: H / 2, to: H },
                Part::Buckets { lo: 1, hi: 3 },
                Part::Raw {
                    from: 3 * H,
                    to: 3 * H + 10
                },
            ]
        );
        assert_eq!(
            plan(H, 3 * H, i64::MIN),
            vec![Part::Buckets { lo: 1, hi: 3 }]
        );
    }

    #[test]
    fn a_window_inside_one_hour_is_raw() {
        assert_eq!(
            plan(H + 5, H + 50, i64::MIN),
            vec![Part::Raw {
                from: H + 5,
                to: H + 50
            }]
        );
        assert!(plan(10, 10, i64::MIN).is_empty());
        assert!(plan(10, 5, i64::MIN).is_empty());
    }

    #[test]
    fn an_edge_before_the_prune_watermark_uses_its_whole_hour() {
        assert_eq!(
            plan(H / 2, 2 * H, H),
            vec![
                Part::Buckets { lo: 0, hi: 1 },
                Part::Buckets { lo: 1, hi: 2 },
            ]
        );
        // The right edge is after the watermark: raw.
        assert_eq!(
            plan(H / 2, 2 * H + 7, H)[2],
            Part::Raw {
                from: 2 * H,
                to: 2 * H + 7
            }
        );
    }
}
