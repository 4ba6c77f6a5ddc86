//! The statistics of one estimation interval: a running mean and variance
//! of the sampled rate, the log-normal fitted to them by moments, and the
//! risk that the rate exceeds a share of the line rate.
//!
//! The SICS original computed the variance as `E[x²] − E[x]²`, which cancels
//! catastrophically when the mean is large next to the spread (a busy
//! 10 Gbit/s link) and produced the negative variances its authors could
//! not explain. Welford's update never subtracts two large sums.

/// A running weighted mean and variance (Welford's update, in West's
/// weighted form).
///
/// Each sampled rate is weighted by the time it covers, so that a sample
/// taken after a missed deadline (covering two periods) counts twice as
/// much as its neighbours and the mean stays bytes ÷ seconds of the whole
/// interval. With equal weights this is exactly Welford's method.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    count: u64,
    weight: f64,
    mean: f64,
    /// Sum of weighted squared deviations from the running mean.
    m2: f64,
}

impl Welford {
    /// An empty accumulator.
    pub fn new() -> Self {
        Welford::default()
    }

    /// Adds `x` with weight 1.
    pub fn push(&mut self, x: f64) {
        self.push_weighted(x, 1.0);
    }

    /// Adds `x` with weight `w`; a weight that is not positive and finite
    /// is ignored (so is a value that is not finite).
    pub fn push_weighted(&mut self, x: f64, w: f64) {
        if !(w > 0.0 && w.is_finite() && x.is_finite()) {
            return;
        }
        self.count += 1;
        self.weight += w;
        let delta = x - self.mean;
        self.mean += delta * (w / self.weight);
        self.m2 += w * delta * (x - self.mean);
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The (weighted) mean; 0 when empty.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The (weighted) population variance, Σw(x−m)² ÷ Σw; 0 when empty.
    /// Never negative.
    pub fn variance(&self) -> f64 {
        if self.weight > 0.0 {
            (self.m2 / self.weight).max(0.0)
        } else {
            0.0
        }
    }
}

/// A log-normal distribution: ln X ~ N(μ, σ²).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormal {
    /// The location μ (mean of ln X).
    pub mu: f64,
    /// The shape σ² (variance of ln X).
    pub sigma2: f64,
}

impl LogNormal {
    /// The log-normal with mean `m` and variance `v` (method of moments):
    /// σ² = ln(1 + v/m²), μ = ln m − σ²/2. `None` when `m` is not positive
    /// (no log-normal has such a mean) or either input is not finite.
    pub fn by_moments(m: f64, v: f64) -> Option<LogNormal> {
        if !(m > 0.0 && m.is_finite() && v.is_finite() && v >= 0.0) {
            return None;
        }
        // ln_1p keeps precision when v/m² is tiny (a steady link).
        let sigma2 = (v / (m * m)).ln_1p();
        Some(LogNormal {
            mu: m.ln() - sigma2 / 2.0,
            sigma2,
        })
    }

    /// P(X > x) in percent: 50·erfc((ln x − μ)/(σ√2)). With σ² = 0 the
    /// distribution is a point at e^μ: 100 when it lies above `x`, else 0.
    pub fn exceedance_percent(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 100.0;
        }
        if self.sigma2 <= 0.0 {
            return if self.mu > x.ln() { 100.0 } else { 0.0 };
        }
        let z = (x.ln() - self.mu) / (self.sigma2.sqrt() * std::f64::consts::SQRT_2);
        50.0 * libm::erfc(z)
    }
}

/// The overload risk in percent: the chance that the rate exceeds
/// `cutoff` × `linerate` under the log-normal with mean `m` and variance
/// `v`. DESIGN's special cases: m = 0 → 0 (an idle link does not overload);
/// v = 0 → 100 if m > cutoff × linerate else 0 (compared on the mean
/// itself, not through a logarithm, so the boundary is exact).
pub fn overload_risk(m: f64, v: f64, linerate: f64, cutoff: f64) -> f64 {
    let limit = cutoff * linerate;
    if m <= 0.0 {
        return 0.0;
    }
    if v <= 0.0 {
        return if m > limit { 100.0 } else { 0.0 };
    }
    match LogNormal::by_moments(m, v) {
        Some(dist) => dist.exceedance_percent(limit),
        None => 0.0,
    }
}

/// What one estimation interval found for one direction (rx or tx).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Mean rate, bytes/s.
    pub mean: f64,
    /// Population variance of the rate, (bytes/s)².
    pub variance: f64,
    /// The fitted log-normal; `None` when the mean is 0.
    pub fit: Option<LogNormal>,
    /// Overload risk in percent; `None` without a line rate.
    pub risk: Option<f64>,
    /// Whether the risk passed the alarm trigger; `None` without a line rate.
    pub alarm: Option<bool>,
}

impl Estimate {
    /// The estimate of an interval's statistics against a line rate
    /// (bytes/s; `None` when unknown), a cutoff (a fraction) and an alarm
    /// trigger (percent).
    pub fn from_stats(
        stats: &Welford,
        linerate: Option<f64>,
        cutoff: f64,
        alarm_trigger: f64,
    ) -> Estimate {
        let (mean, variance) = (stats.mean(), stats.variance());
        let risk = linerate.map(|l| overload_risk(mean, variance, l, cutoff));
        Estimate {
            mean,
            variance,
            fit: LogNormal::by_moments(mean, variance),
            risk,
            alarm: risk.map(|r| r > alarm_trigger),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_the_two_pass_formula() {
        let xs = [3.0, 7.0, 7.0, 19.0];
        let mut w = Welford::new();
        xs.iter().for_each(|&x| w.push(x));
        assert_eq!(w.mean(), 9.0);
        assert!((w.variance() - 36.0).abs() < 1e-12, "{}", w.variance());
    }

    #[test]
    fn a_weight_of_two_is_the_value_twice() {
        let mut once = Welford::new();
        once.push_weighted(1.0, 1.0);
        once.push_weighted(5.0, 2.0);
        let mut twice = Welford::new();
        [1.0, 5.0, 5.0].iter().for_each(|&x| twice.push(x));
        assert!((once.mean() - twice.mean()).abs() < 1e-12);
        assert!((once.variance() - twice.variance()).abs() < 1e-12);
    }

    #[test]
    fn bad_weights_and_values_are_ignored() {
        let mut w = Welford::new();
        w.push_weighted(1.0, 0.0);
        w.push_weighted(f64::NAN, 1.0);
        w.push_weighted(1.0, f64::INFINITY);
        assert_eq!(w.count(), 0);
        assert_eq!(w.variance(), 0.0);
    }

    #[test]
    fn no_line_rate_no_risk() {
        let mut w = Welford::new();
        w.push(10.0);
        let e = Estimate::from_stats(&w, None, 0.99, 95.0);
        assert_eq!((e.risk, e.alarm), (None, None));
        assert_eq!(e.mean, 10.0);
    }

    #[test]
    fn alarm_is_strictly_above_the_trigger() {
        let mut w = Welford::new();
        w.push(200.0);
        // v = 0, m above the cutoff: risk 100 > 95.
        let e = Estimate::from_stats(&w, Some(100.0), 0.99, 95.0);
        assert_eq!((e.risk, e.alarm), (Some(100.0), Some(true)));
        let e = Estimate::from_stats(&w, Some(100.0), 0.99, 100.0);
        assert_eq!(e.alarm, Some(false));
    }
}
