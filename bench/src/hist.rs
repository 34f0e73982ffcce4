//! A log-linear histogram of non-negative integers (microseconds here), in
//! the manner of HdrHistogram: values below 256 are kept exactly, larger
//! ones in 128 buckets per power of two, so any quantile is within 0.8 % of
//! the true value while memory stays fixed (~60 KB) however many millions of
//! latencies a run records.

/// Values below `1 << SUB_BITS` get a bucket each.
const SUB_BITS: u32 = 8;
const HALF: usize = 1 << (SUB_BITS - 1);
/// Buckets needed to cover every `u64`.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * HALF + HALF;

/// Fixed-size histogram; see the module docs for its precision.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Adds one value.
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest value recorded (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0–1.0): the highest value of the bucket
    /// holding the `ceil(q * count)`-th smallest value, capped at the max.
    /// `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(highest(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Bucket of `v`: exact below 2^SUB_BITS; above, the top SUB_BITS bits of
/// `v` within its power of two.
fn index(v: u64) -> usize {
    if v < 1 << SUB_BITS {
        return v as usize;
    }
    let shift = 64 - v.leading_zeros() - SUB_BITS; // ≥ 1
    shift as usize * HALF + (v >> shift) as usize
}

/// Highest value that falls in bucket `i`.
fn highest(i: usize) -> u64 {
    if i < 1 << SUB_BITS {
        return i as u64;
    }
    let shift = (i / HALF - 1) as u32;
    let top = (i - shift as usize * HALF) as u64;
    (top << shift) + ((1 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut low = 0;
        for i in 0..BUCKETS {
            let high = highest(i);
            assert_eq!(index(low), i);
            assert_eq!(index(high), i);
            // Relative width under 1 %.
            assert!(
                (high - low) as f64 <= low as f64 / 100.0 + 1.0,
                "bucket {i}"
            );
            low = high.wrapping_add(1);
        }
        assert_eq!(low, 0, "the last bucket ends at u64::MAX");
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.quantile(0.1), Some(100));
        let p50 = h.quantile(0.5).unwrap();
        assert!((500..=504).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).unwrap();
        assert!((990..=997).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), Some(1000));
        assert_eq!(h.max(), 1000);
    }
}
