//! Fixed log-scale latency histogram kept in rollups, so percentiles survive after raw rows
//! are pruned.
//!
//! Bucket 0 holds 0 ms; bucket i ≥ 1 holds [1.1^(i-1), 1.1^i) ms and reads back as the
//! geometric midpoint 1.1^(i-0.5), so a percentile read from it is within 1.1^0.5 − 1 ≈ 4.9 %
//! of the exact one. Stored sparse: (bucket u8, count u32 LE) pairs, a few bytes per hour.

use std::collections::BTreeMap;

const GROWTH: f64 = 1.1;
const MAX_BUCKET: u8 = 255;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: BTreeMap<u8, u32>,
}

pub fn bucket_of(ms: u32) -> u8 {
    if ms == 0 {
        return 0;
    }
    let i = ((ms as f64).ln() / GROWTH.ln()).floor() as i64 + 1;
    i.clamp(1, MAX_BUCKET as i64) as u8
}

fn value_of(bucket: u8) -> f64 {
    if bucket == 0 {
        0.0
    } else {
        GROWTH.powf(bucket as f64 - 0.5)
    }
}

impl Histogram {
    pub fn add(&mut self, ms: u32) {
        *self.counts.entry(bucket_of(ms)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (b, c) in &other.counts {
            *self.counts.entry(*b).or_default() += c;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.values().map(|&c| c as u64).sum()
    }

    /// Nearest-rank percentile (`q` in 0..=1), or `None` when empty.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (b, c) in &self.counts {
            seen += *c as u64;
            if seen >= rank {
                return Some(value_of(*b));
            }
        }
        None
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_pairs(&self.counts)
    }

    /// Decodes a stored histogram; damaged bytes decode to what can be read (never panic).
    pub fn decode(bytes: &[u8]) -> Histogram {
        Histogram {
            counts: decode_pairs(bytes),
        }
    }
}

/// Sparse (u8 key, u32 LE count) pairs: used for histograms and for per-kind counts.
pub fn encode_pairs(m: &BTreeMap<u8, u32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len() * 5);
    for (k, c) in m {
        if *c > 0 {
            out.push(*k);
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    out
}

pub fn decode_pairs(bytes: &[u8]) -> BTreeMap<u8, u32> {
    let mut m = BTreeMap::new();
    for chunk in bytes.chunks_exact(5) {
        let c = u32::from_le_bytes([chunk[1], chunk[2], chunk[3], chunk[4]]);
        *m.entry(chunk[0]).or_default() += c;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact(mut v: Vec<u32>, q: f64) -> f64 {
        v.sort_unstable();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1] as f64
    }

    proptest! {
        #[test]
        fn percentiles_are_within_five_percent(v in proptest::collection::vec(1u32..600_000, 1..400), q in 0.01f64..1.0) {
            let mut h = Histogram::default();
            for x in &v { h.add(*x); }
            let got = h.percentile(q).unwrap();
            let want = exact(v, q);
            prop_assert!((got - want).abs() / want <= 0.05, "got {got} want {want}");
        }

        #[test]
        fn encoding_round_trips(v in proptest::collection::vec(0u32..10_000_000, 0..200)) {
            let mut h = Histogram::default();
            for x in &v { h.add(*x); }
            prop_assert_eq!(Histogram::decode(&h.encode()), h);
        }
    }

    #[test]
    fn merge_adds_counts_and_garbage_never_panics() {
        let mut a = Histogram::default();
        a.add(100);
        let mut b = Histogram::default();
        b.add(100);
        b.add(0);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.percentile(0.01), Some(0.0));
        let _ = Histogram::decode(&[1, 2, 3]);
    }
}
