//! A month of probe downloads from many vantage points: the data set of the
//! analytics benchmark (`weir-bench analytics`).
//!
//! Each vantage point has fixed dimensions — `vantage`, `country`, `asn`,
//! `target`, `proxy`, `version` — and downloads once per interval. TTFB and
//! TTLB are log-normal around a per-country median (so countries differ),
//! with a daily swing; about 3 % of downloads fail with a class (`error`
//! tag) and have no TTLB.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Countries and their median TTFB in microseconds.
pub const COUNTRIES: [(&str, f64); 12] = [
    ("IR", 900_000.0),
    ("CN", 700_000.0),
    ("RU", 400_000.0),
    ("TR", 300_000.0),
    ("EG", 350_000.0),
    ("VN", 250_000.0),
    ("IN", 220_000.0),
    ("BR", 180_000.0),
    ("US", 90_000.0),
    ("DE", 60_000.0),
    ("NL", 50_000.0),
    ("JP", 80_000.0),
];

const ERRORS: [&str; 5] = ["TIMEOUT", "STALLOUT", "RESET", "HTTP_503", "PROXY_CONNECT"];

/// The probe data set: `vantages` points, one download each `interval_s`,
/// for `days` days ending at `end_s` (Unix seconds).
#[derive(Debug, Clone)]
pub struct ProbeMonth {
    /// Vantage points.
    pub vantages: usize,
    /// Days of data.
    pub days: u32,
    /// Seconds between two downloads of one vantage point.
    pub interval_s: i64,
    /// The end of the data (exclusive), Unix seconds.
    pub end_s: i64,
    /// Seed of the value generator.
    pub seed: u64,
}

/// One vantage point's fixed dimensions.
#[derive(Debug, Clone)]
struct Vantage {
    tags: String,
    median: f64,
}

impl ProbeMonth {
    /// Rows in the data set.
    pub fn rows(&self) -> usize {
        self.vantages * self.ticks() as usize
    }

    /// Downloads per vantage point.
    pub fn ticks(&self) -> i64 {
        i64::from(self.days) * 86_400 / self.interval_s
    }

    /// The first timestamp, Unix seconds.
    pub fn start_s(&self) -> i64 {
        self.end_s - i64::from(self.days) * 86_400
    }

    fn vantage_points(&self, rng: &mut StdRng) -> Vec<Vantage> {
        (0..self.vantages)
            .map(|v| {
                // Skewed: the first countries have more vantage points.
                let c = (rng.gen::<f64>().powi(2) * COUNTRIES.len() as f64) as usize;
                let (country, median) = COUNTRIES[c.min(COUNTRIES.len() - 1)];
                let tags = format!(
                    "vantage=v{v:04},country={country},asn=AS{},target=t{},proxy=pool{},version=1.{}",
                    64_500 + rng.gen_range(0..200),
                    v % 4,
                    rng.gen_range(0..5),
                    rng.gen_range(0..3),
                );
                let median = median * (0.7 + 0.6 * rng.gen::<f64>());
                Vantage { tags, median }
            })
            .collect()
    }

    /// Calls `sink` with batches of line protocol (nanosecond timestamps),
    /// in time order, about `batch_rows` rows each.
    pub fn generate(
        &self,
        batch_rows: usize,
        mut sink: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let vantages = self.vantage_points(&mut rng);
        let mut out = Vec::with_capacity(batch_rows * 200);
        let mut rows = 0;
        let start = self.start_s();
        for tick in 0..self.ticks() {
            let t = start + tick * self.interval_s;
            let day_phase = ((t % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU).sin();
            for v in &vantages {
                let at = t + rng.gen_range(0..self.interval_s.min(60));
                let normal = gaussian(&mut rng);
                let ttfb = (v.median * (1.0 + 0.3 * day_phase) * (0.5 * normal).exp()).max(1.0);
                out.extend_from_slice(b"probe_http,");
                out.extend_from_slice(v.tags.as_bytes());
                if rng.gen::<f64>() < 0.03 {
                    let e = ERRORS[rng.gen_range(0..ERRORS.len())];
                    out.extend_from_slice(format!(",error={e}").as_bytes());
                    out.extend_from_slice(
                        format!(
                            " ttfb_us={}i,ok=false,partial={} {}\n",
                            ttfb as i64,
                            e == "RESET",
                            at * 1_000_000_000
                        )
                        .as_bytes(),
                    );
                } else {
                    let ttlb = ttfb + 5.0 * v.median * (0.4 * gaussian(&mut rng)).exp();
                    let bps = 5.0 * 1_048_576.0 * 8.0 / ((ttlb - ttfb) / 1e6);
                    out.extend_from_slice(
                        format!(
                            " ttfb_us={}i,ttlb_us={}i,dl_last_mib_bps={bps:.0},ok=true,partial=false {}\n",
                            ttfb as i64,
                            ttlb as i64,
                            at * 1_000_000_000
                        )
                        .as_bytes(),
                    );
                }
                rows += 1;
                if rows >= batch_rows {
                    sink(&out)?;
                    out.clear();
                    rows = 0;
                }
            }
        }
        if !out.is_empty() {
            sink(&out)?;
        }
        Ok(())
    }
}

/// A standard normal sample (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f64 {
    let u: f64 = rng.gen::<f64>().max(1e-12);
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_row_parses_and_the_count_is_right() {
        let month = ProbeMonth {
            vantages: 7,
            days: 1,
            interval_s: 3600,
            end_s: 1_700_006_400,
            seed: 3,
        };
        let mut lines = 0;
        month
            .generate(10, |batch| {
                for line in lineproto::ParseOptions::default().parse(batch) {
                    let line = line.unwrap();
                    assert_eq!(line.measurement, "probe_http");
                    assert!(line.tags.len() >= 6);
                    lines += 1;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(lines, month.rows());
        assert_eq!(lines, 7 * 24);
    }
}
