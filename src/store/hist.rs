//! Fixed log-scale latency histogram kept in rollups, so percentiles survive after raw rows
//! are pruned.
//!
//! Bucket 0 holds 0 ms; bucket i ≥ 1 holds [1.1^(i-1), 1.1^i) ms and reads back as the
//! geometric midpoint 1.1^(i-0.5), so a percentile read from it is within 1.1^0.5 − 1 ≈ 4.9 %
//! of the exact one. Stored sparse: (bucket u8, count u32 LE) pairs, a few bytes per hour;
//! merged dense in memory, because a 30-day window merges hundreds of them per series.

const GROWTH: f64 = 1.1;
const BUCKETS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
        }
    }
}

pub(super) fn bucket_of(ms: u32) -> u8 {
    if ms == 0 {
        return 0;
    }
    let i = ((ms as f64).ln() / GROWTH.ln()).floor() as i64 + 1;
    i.clamp(1, BUCKETS as i64 - 1) as u8
}

fn value_of(bucket: usize) -> f64 {
    if bucket == 0 {
        0.0
    } else {
        GROWTH.powf(bucket as f64 - 0.5)
    }
}

impl Histogram {
    pub fn add(&mut self, ms: u32) {
        self.counts[bucket_of(ms) as usize] += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }

    /// Adds a stored (encoded) histogram without decoding it into a value of its own.
    pub fn merge_encoded(&mut self, bytes: &[u8]) {
        add_pairs(&mut self.counts[..], bytes);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Nearest-rank percentile (`q` in 0..=1), or `None` when empty.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(value_of(b));
            }
        }
        None
    }

    pub fn encode(&self) -> Vec<u8> {
        encode_pairs(&self.counts[..])
    }

    /// Decodes a stored histogram; damaged bytes decode to what can be read (never panic).
    pub fn decode(bytes: &[u8]) -> Histogram {
        let mut h = Histogram::default();
        h.merge_encoded(bytes);
        h
    }
}

/// Sparse (u8 key, u32 LE count) pairs of the non-zero entries of `counts`: used for
/// histograms and for per-kind counts.
pub(super) fn encode_pairs(counts: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, c) in counts.iter().enumerate().take(256) {
        if *c > 0 {
            out.push(k as u8);
            out.extend_from_slice(&(u32::try_from(*c).unwrap_or(u32::MAX)).to_le_bytes());
        }
    }
    out
}

/// Adds encoded pairs into `counts`; keys beyond its length are ignored.
pub(super) fn add_pairs(counts: &mut [u64], bytes: &[u8]) {
    for chunk in bytes.chunks_exact(5) {
        let c = u32::from_le_bytes([chunk[1], chunk[2], chunk[3], chunk[4]]);
        if let Some(slot) = counts.get_mut(chunk[0] as usize) {
            *slot += c as u64;
        }
    }
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
