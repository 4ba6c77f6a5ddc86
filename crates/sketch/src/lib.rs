//! DDSketch (Masson, Rim and Lee, VLDB 2019): a quantile sketch whose
//! answers are within a relative error α of the true quantile, whatever the
//! distribution, and which merges exactly — the sketch of two data sets is
//! the merge of their sketches (while their values span fewer than 8192
//! buckets, about 71 orders of magnitude at α = 1 %; beyond, the lowest
//! buckets are folded together). The SQL functions `sketch`,
//! `sketch_merge` and `sketch_quantile` use it; rollups are to keep one per
//! series, field and half-hour.
//!
//! Values are counted in logarithmic buckets: bucket i holds (γ^(i−1), γ^i]
//! with γ = (1 + α) / (1 − α), and answers with 2γ^i / (1 + γ), which is
//! within α of everything in the bucket. Negative values use a mirrored
//! store, values too close to 0 to index a zero count. Count, sum, min and
//! max are kept exactly.
//!
//! ```
//! use sketch::DDSketch;
//! let mut a = DDSketch::new(0.01).unwrap();
//! let mut b = DDSketch::new(0.01).unwrap();
//! for v in 1..=1000 { a.add(v as f64); }
//! for v in 1001..=2000 { b.add(v as f64); }
//! a.merge(&b).unwrap();
//! let median = a.quantile(0.5).unwrap().unwrap();
//! assert!((median - 1000.0).abs() / 1000.0 <= 0.01);
//! let bytes = a.encode();
//! assert_eq!(DDSketch::decode(&bytes).unwrap(), a);
//! ```

mod codec;
mod store;

pub use codec::DecodeError;
pub use store::MAX_BUCKETS;

use store::Store;

/// The relative accuracy weir's rollups use: 1 %.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// The finest and coarsest relative accuracy accepted.
const MIN_ALPHA: f64 = 1e-4;
const MAX_ALPHA: f64 = 0.5;

/// Magnitudes below this are counted as zero (they have no bucket).
const MIN_INDEXABLE: f64 = 1e-9;

/// A mergeable quantile sketch with relative accuracy α.
#[derive(Debug, Clone, PartialEq)]
pub struct DDSketch {
    alpha: f64,
    /// ln γ, and its inverse: the mapping's constants.
    ln_gamma: f64,
    positive: Store,
    negative: Store,
    zero: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

/// Why sketches cannot be built or merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SketchError {
    /// α must be from 0.0001 to 0.5.
    #[error("relative accuracy {0} is not from 0.0001 to 0.5")]
    Alpha(f64),
    /// Only sketches of the same accuracy merge.
    #[error("cannot merge a sketch of accuracy {0} into one of accuracy {1}")]
    Mismatch(f64, f64),
    /// q must be in [0, 1].
    #[error("quantile {0} is not between 0 and 1")]
    Quantile(f64),
}

impl Default for DDSketch {
    /// An empty sketch at [`DEFAULT_ALPHA`] (1 %), the accuracy of rollups.
    fn default() -> Self {
        DDSketch::with_alpha(DEFAULT_ALPHA)
    }
}

impl DDSketch {
    /// An empty sketch with relative accuracy `alpha`, from 0.0001 to 0.5
    /// (e.g. 0.01 for 1 %): finer would make buckets too many to be useful.
    pub fn new(alpha: f64) -> Result<DDSketch, SketchError> {
        if !(MIN_ALPHA..=MAX_ALPHA).contains(&alpha) {
            return Err(SketchError::Alpha(alpha));
        }
        Ok(DDSketch::with_alpha(alpha))
    }

    /// An empty sketch for an `alpha` already checked to be in range.
    fn with_alpha(alpha: f64) -> DDSketch {
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        DDSketch {
            alpha,
            ln_gamma: gamma.ln(),
            positive: Store::default(),
            negative: Store::default(),
            zero: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// The relative accuracy α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The bucket of magnitude `v` (≥ [`MIN_INDEXABLE`]).
    fn index(&self, v: f64) -> i32 {
        // Finite for any finite v ≥ 1e-9: |ln v| < 710, ln γ ≥ 2e-16 only for
        // absurd α, so the cast saturates rather than wraps at worst.
        (v.ln() / self.ln_gamma).ceil() as i32
    }

    /// The value bucket `index` answers with.
    fn value(&self, index: i32) -> f64 {
        let gamma = self.ln_gamma.exp();
        2.0 * (f64::from(index) * self.ln_gamma).exp() / (1.0 + gamma)
    }

    /// Counts `v`; NaN and infinities are ignored.
    pub fn add(&mut self, v: f64) {
        self.add_n(v, 1);
    }

    /// Counts `v` `n` times; NaN and infinities are ignored.
    pub fn add_n(&mut self, v: f64, n: u64) {
        if !v.is_finite() || n == 0 {
            return;
        }
        if v >= MIN_INDEXABLE {
            let i = self.index(v);
            self.positive.add(i, n);
        } else if v <= -MIN_INDEXABLE {
            let i = self.index(-v);
            self.negative.add(i, n);
        } else {
            self.zero = self.zero.saturating_add(n);
        }
        self.count = self.count.saturating_add(n);
        self.sum += v * n as f64;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds everything `other` counted. Exact: merging the sketches of two
    /// data sets gives the sketch of their union.
    pub fn merge(&mut self, other: &DDSketch) -> Result<(), SketchError> {
        if other.alpha != self.alpha {
            return Err(SketchError::Mismatch(other.alpha, self.alpha));
        }
        for (i, c) in other.positive.buckets() {
            self.positive.add(i, c);
        }
        for (i, c) in other.negative.buckets() {
            self.negative.add(i, c);
        }
        self.zero = self.zero.saturating_add(other.zero);
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        Ok(())
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The smallest value counted, if any.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest value counted, if any.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The q-quantile (0 ≤ q ≤ 1): within α of the value of rank
    /// ⌊q·(count − 1)⌋ in sorted order, and never outside [min, max].
    /// `Ok(None)` for an empty sketch.
    pub fn quantile(&self, q: f64) -> Result<Option<f64>, SketchError> {
        if !(0.0..=1.0).contains(&q) {
            return Err(SketchError::Quantile(q));
        }
        if self.count == 0 {
            return Ok(None);
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        Ok(Some(self.at_rank(rank)))
    }

    /// The q-quantile interpolated linearly between the values of ranks
    /// ⌊r⌋ and ⌈r⌉, r = q·(count − 1), as SQL's `percentile_cont` does over
    /// the exact values: within α of that exact answer when the two values
    /// have the same sign (each end is within α of its value, so their
    /// weighted mean is within α of theirs); across zero no relative bound
    /// holds.
    /// `Ok(None)` for an empty sketch.
    pub fn quantile_interpolated(&self, q: f64) -> Result<Option<f64>, SketchError> {
        if !(0.0..=1.0).contains(&q) {
            return Err(SketchError::Quantile(q));
        }
        if self.count == 0 {
            return Ok(None);
        }
        let r = q * (self.count - 1) as f64;
        let below = r.floor();
        let low = self.at_rank(below as u64);
        let weight = r - below;
        if weight == 0.0 {
            return Ok(Some(low));
        }
        let high = self.at_rank(below as u64 + 1);
        Ok(Some(low + weight * (high - low)))
    }

    /// [`DDSketch::quantile`] of each of `qs`, in one pass over the buckets
    /// (a CDF asks for a hundred of them).
    pub fn quantiles(&self, qs: &[f64]) -> Result<Vec<Option<f64>>, SketchError> {
        let ranks = self.ranks(qs, |r| [r.floor() as u64, r.floor() as u64])?;
        Ok(ranks
            .into_iter()
            .map(|r| r.map(|(low, _, _)| low))
            .collect())
    }

    /// [`DDSketch::quantile_interpolated`] of each of `qs`, in one pass over
    /// the buckets.
    pub fn quantiles_interpolated(&self, qs: &[f64]) -> Result<Vec<Option<f64>>, SketchError> {
        let ranks = self.ranks(qs, |r| [r.floor() as u64, r.ceil() as u64])?;
        Ok(ranks
            .into_iter()
            .map(|r| r.map(|(low, high, weight)| low + weight * (high - low)))
            .collect())
    }

    /// For each q: the values of the two ranks `pick` chooses from
    /// r = q·(count − 1), and r's fractional part; `None` for an empty
    /// sketch.
    #[allow(clippy::type_complexity)]
    fn ranks(
        &self,
        qs: &[f64],
        pick: impl Fn(f64) -> [u64; 2],
    ) -> Result<Vec<Option<(f64, f64, f64)>>, SketchError> {
        if let Some(&q) = qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return Err(SketchError::Quantile(q));
        }
        if self.count == 0 {
            return Ok(vec![None; qs.len()]);
        }
        // Every rank asked for, with where its value goes, lowest first.
        let mut wanted: Vec<(u64, usize)> = Vec::with_capacity(2 * qs.len());
        for (i, &q) in qs.iter().enumerate() {
            let [low, high] = pick(q * (self.count - 1) as f64);
            wanted.push((low, 2 * i));
            wanted.push((high, 2 * i + 1));
        }
        wanted.sort_unstable();
        let mut values = vec![self.max; 2 * qs.len()];
        self.walk_ranks(&wanted, &mut values);
        Ok(qs
            .iter()
            .enumerate()
            .map(|(i, &q)| {
                let r = q * (self.count - 1) as f64;
                Some((values[2 * i], values[2 * i + 1], r - r.floor()))
            })
            .collect())
    }

    /// Writes the value of each rank of `wanted` (ascending) to its slot
    /// in `values`, walking the buckets once; ranks past the end keep what
    /// `values` holds.
    fn walk_ranks(&self, wanted: &[(u64, usize)], values: &mut [f64]) {
        let mut next = 0;
        let mut seen = 0u64;
        // Hands out the value `v` (computed only if needed) to every rank
        // below `seen`.
        let mut settle = |seen: u64, v: &dyn Fn() -> f64, next: &mut usize| {
            if wanted.get(*next).is_some_and(|&(r, _)| r < seen) {
                let v = v();
                while let Some(&(r, slot)) = wanted.get(*next) {
                    if r >= seen {
                        break;
                    }
                    values[slot] = v;
                    *next += 1;
                }
            }
        };
        for (i, c) in self.negative.buckets().rev() {
            seen = seen.saturating_add(c);
            settle(seen, &|| self.clamp(-self.value(i)), &mut next);
        }
        seen = seen.saturating_add(self.zero);
        settle(seen, &|| self.clamp(0.0), &mut next);
        for (i, c) in self.positive.buckets() {
            if next == wanted.len() {
                return;
            }
            seen = seen.saturating_add(c);
            settle(seen, &|| self.clamp(self.value(i)), &mut next);
        }
    }

    /// The estimate of the value of `rank` (0-based, < count) in sorted
    /// order, clamped to [min, max].
    fn at_rank(&self, rank: u64) -> f64 {
        let mut seen = 0u64;
        // Most negative first: the negative store in descending index.
        for (i, c) in self.negative.buckets().rev() {
            seen = seen.saturating_add(c);
            if seen > rank {
                return self.clamp(-self.value(i));
            }
        }
        seen = seen.saturating_add(self.zero);
        if seen > rank {
            return self.clamp(0.0);
        }
        for (i, c) in self.positive.buckets() {
            seen = seen.saturating_add(c);
            if seen > rank {
                return self.clamp(self.value(i));
            }
        }
        self.max
    }

    fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.min, self.max)
    }

    /// Memory held, in bytes.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.positive.size() + self.negative.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_quantiles_at_once_equal_one_at_a_time() {
        let mut s = DDSketch::new(0.01).unwrap();
        assert_eq!(s.quantiles(&[0.5]), Ok(vec![None]));
        for v in [-7.0, -0.5, 0.0, 0.0, 1.0, 2.0, 3.0, 1e3, 5e4, 5e4, 1e6] {
            s.add(v);
        }
        let qs: Vec<f64> = [1.0, 0.0, 0.5, 0.33, 0.999, 0.1, 0.5, 0.75]
            .into_iter()
            .chain((0..=100).map(|i| f64::from(i) / 100.0))
            .collect();
        let one_by_one: Vec<_> = qs.iter().map(|&q| s.quantile(q).unwrap()).collect();
        assert_eq!(s.quantiles(&qs).unwrap(), one_by_one);
        let one_by_one: Vec<_> = qs
            .iter()
            .map(|&q| s.quantile_interpolated(q).unwrap())
            .collect();
        assert_eq!(s.quantiles_interpolated(&qs).unwrap(), one_by_one);
        assert!(s.quantiles(&[0.5, 1.5]).is_err());
    }

    #[test]
    fn small_cases() {
        let mut s = DDSketch::new(0.01).unwrap();
        assert_eq!(s.quantile(0.5), Ok(None));
        s.add(-5.0);
        s.add(0.0);
        s.add(5.0);
        s.add(f64::NAN);
        assert_eq!(s.count(), 3);
        assert_eq!(s.quantile(0.0), Ok(Some(-5.0)));
        assert_eq!(s.quantile(0.5), Ok(Some(0.0)));
        assert_eq!(s.quantile(1.0), Ok(Some(5.0)));
        assert!(s.quantile(1.5).is_err());
        assert!(DDSketch::new(0.0).is_err());
        let other = DDSketch::new(0.02).unwrap();
        assert!(s.merge(&other).is_err());
    }
}
