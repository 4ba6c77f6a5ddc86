//! Bucket counts over a contiguous range of indices, bounded in length:
//! past [`MAX_BUCKETS`] the lowest buckets are folded together (the
//! collapsing-lowest store of the DDSketch paper), so high quantiles keep
//! their guarantee and memory stays bounded whatever the input.

/// The most buckets one store keeps: with α = 1 % that spans values over
/// 2 · 8192 · 0.01 ≈ 164 natural-log units, far more than any measurement.
pub const MAX_BUCKETS: usize = 8192;

/// Dense counts from `offset` upwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Store {
    offset: i32,
    counts: Vec<u64>,
}

impl Store {
    /// Adds `n` to bucket `index`.
    pub(crate) fn add(&mut self, index: i32, n: u64) {
        if n == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        let lo = i64::from(self.offset);
        let hi = lo + self.counts.len() as i64 - 1;
        let at = i64::from(index);
        if at < lo {
            if (hi - at + 1) as usize > MAX_BUCKETS {
                // No room below: the lowest bucket takes it.
                self.counts[0] = self.counts[0].saturating_add(n);
                return;
            }
            let grow = (lo - at) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        } else if at > hi {
            let want = (at - lo + 1) as usize;
            if want > MAX_BUCKETS {
                // Fold the lowest buckets so that the range ends at `index`.
                let new_lo = at - MAX_BUCKETS as i64 + 1;
                let fold = ((new_lo - lo) as usize).min(self.counts.len());
                let folded: u64 = self.counts.drain(..fold).fold(0, u64::saturating_add);
                // new_lo is within i32: it lies between lo and index.
                self.offset = new_lo as i32;
                if self.counts.is_empty() {
                    self.counts.push(0);
                }
                self.counts[0] = self.counts[0].saturating_add(folded);
            }
            let len = (at - i64::from(self.offset) + 1) as usize;
            self.counts.resize(len, 0);
        }
        let slot = (at - i64::from(self.offset)) as usize;
        self.counts[slot] = self.counts[slot].saturating_add(n);
    }

    /// Adds `n` to each bucket of `buckets`, given lowest index first.
    pub(crate) fn add_ascending(&mut self, buckets: &[(i32, u64)]) {
        let (Some(&(first, _)), Some(&(last, _))) = (buckets.first(), buckets.last()) else {
            return;
        };
        let lo = i64::from(self.offset);
        let hi = lo + self.counts.len() as i64 - 1;
        if self.counts.is_empty() || i64::from(first) < lo || i64::from(last) > hi {
            for &(index, n) in buckets {
                self.add(index, n);
            }
            return;
        }
        // All within the range kept: no growing, no folding.
        for &(index, n) in buckets {
            let slot = (i64::from(index) - lo) as usize;
            self.counts[slot] = self.counts[slot].saturating_add(n);
        }
    }

    /// The non-empty buckets, lowest index first.
    pub(crate) fn buckets(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (self.offset + i as i32, c))
    }

    /// Memory held, in bytes.
    pub(crate) fn size(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_run_equals_adding_each_bucket() {
        let runs: [&[(i32, u64)]; 4] = [
            &[(10, 1), (12, 2), (20, 3)],
            &[(11, 4), (19, 5)],
            &[(5, 6), (30, 7)],
            &[(0, 1), (MAX_BUCKETS as i32 + 40, 2)],
        ];
        let (mut one_by_one, mut by_runs) = (Store::default(), Store::default());
        for run in runs {
            for &(i, n) in run {
                one_by_one.add(i, n);
            }
            by_runs.add_ascending(run);
            assert_eq!(by_runs, one_by_one);
        }
    }

    #[test]
    fn grows_both_ways_and_folds_the_lowest() {
        let mut s = Store::default();
        s.add(10, 1);
        s.add(5, 2);
        s.add(12, 3);
        assert_eq!(s.buckets().collect::<Vec<_>>(), [(5, 2), (10, 1), (12, 3)]);
        s.add(12 + MAX_BUCKETS as i32, 4);
        let b: Vec<_> = s.buckets().collect();
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(
            b[0],
            (13, 6),
            "everything below folds into the lowest kept bucket"
        );
        assert_eq!(s.buckets().map(|(_, c)| c).sum::<u64>(), 10);
        s.add(-1_000_000, 5);
        assert_eq!(s.buckets().next(), Some((13, 11)));
    }
}
