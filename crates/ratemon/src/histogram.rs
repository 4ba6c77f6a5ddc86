//! A fixed-size histogram of sample lateness in microseconds: exact below
//! 1024 µs, within 0.2 % above, 48 KiB whatever the sample rate and meter
//! interval (a list of every sample would grow to gigabytes at 100 kHz
//! over a day).

/// Values below this are counted exactly.
const LINEAR: u32 = 1024;
/// Sub-buckets per power of two above [`LINEAR`].
const SUB: u32 = 512;
/// Buckets for every u32: 1024 exact, then 22 powers of two × 512.
const BUCKETS: usize = (LINEAR + 22 * SUB) as usize;

/// Counts of values by bucket.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Box<[u32]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
        }
    }
}

fn bucket(v: u32) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    // v in [2^(9+shift), 2^(10+shift)): keep its top 10 bits.
    let shift = 31 - v.leading_zeros() - 9;
    (LINEAR + (shift - 1) * SUB + ((v >> shift) - SUB)) as usize
}

/// The smallest value of bucket `i`.
fn low(i: usize) -> u32 {
    let i = i as u32;
    if i < LINEAR {
        return i;
    }
    let shift = (i - LINEAR) / SUB + 1;
    ((i - LINEAR) % SUB + SUB) << shift
}

impl Histogram {
    /// Counts one value.
    pub(crate) fn record(&mut self, v: u32) {
        if let Some(c) = self.counts.get_mut(bucket(v)) {
            *c = c.saturating_add(1);
            self.total += 1;
        }
    }

    /// The value at quantile `q` (0..=1), as its bucket's lower bound; 0
    /// when empty.
    pub(crate) fn quantile(&self, q: f64) -> u32 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total - 1) as f64 * q.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen > rank {
                return low(i);
            }
        }
        low(BUCKETS - 1)
    }

    /// Forgets every value.
    pub(crate) fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_u32_in_order_and_within_a_fifth_of_a_percent() {
        let mut last = 0;
        for v in (0..5000).chain([65_535, 1 << 20, 123_456_789, u32::MAX - 1, u32::MAX]) {
            let b = bucket(v);
            assert!(b < BUCKETS && b >= last, "{v} → {b}");
            last = b;
            let l = low(b);
            assert!(
                l <= v && f64::from(v - l) <= f64::from(v) * 0.002,
                "{v}: low {l}"
            );
        }
    }

    #[test]
    fn quantiles_of_known_values() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        (1..=100).for_each(|v| h.record(v));
        assert_eq!(h.quantile(0.5), 51);
        assert_eq!(h.quantile(0.99), 99);
        h.record(2_000_000);
        assert!(h.quantile(1.0) >= 1_996_000);
        h.clear();
        assert_eq!(h.quantile(0.99), 0);
    }
}
