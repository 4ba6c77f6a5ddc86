//! DDSketch against exact quantiles on five distributions: every answer
//! within 1 % of the value of the same rank; merging sketches of parts
//! equals the sketch of the whole; the binary form round-trips and never
//! panics on damage.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sketch::DDSketch;

fn samples(n: usize) -> Vec<(&'static str, Vec<f64>)> {
    let u = |i: usize| ((i as f64 + 0.5) * 0.618_033_988_75).fract();
    let normal = |p: f64| {
        let v = (p * 7919.0).fract().max(1e-12);
        (-2.0 * p.max(1e-12).ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    vec![
        ("uniform", (0..n).map(|i| 1.0 + 99.0 * u(i)).collect()),
        (
            "normal",
            (0..n).map(|i| 200.0 + 30.0 * normal(u(i))).collect(),
        ),
        (
            "lognormal",
            (0..n).map(|i| (5.0 + 0.8 * normal(u(i))).exp()).collect(),
        ),
        (
            "exponential",
            (0..n).map(|i| -50.0 * (1.0 - u(i)).ln()).collect(),
        ),
        (
            "pareto",
            (0..n)
                .map(|i| 10.0 / (1.0 - u(i)).powf(1.0 / 1.5))
                .collect(),
        ),
        ("signed", (0..n).map(|i| 100.0 * normal(u(i))).collect()),
    ]
}

#[test]
fn quantiles_are_within_one_percent_on_every_distribution() {
    for (name, values) in samples(50_000) {
        let mut s = DDSketch::new(0.01).unwrap();
        for &v in &values {
            s.add(v);
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for k in 0..=100 {
            let q = k as f64 / 100.0;
            let exact = sorted[(q * (sorted.len() - 1) as f64).floor() as usize];
            let got = s.quantile(q).unwrap().unwrap();
            let rel = (got - exact).abs() / exact.abs();
            assert!(rel <= 0.01 + 1e-12, "{name} q{q}: {got} vs {exact} ({rel})");
        }
        assert_eq!(s.count(), values.len() as u64);
        assert_eq!(s.min(), sorted.first().copied());
        assert_eq!(s.max(), sorted.last().copied());
        // About 4 bytes per non-empty bucket, not per value.
        assert!(
            s.encode().len() < 8_000,
            "{name}: {} bytes",
            s.encode().len()
        );
    }
}

#[test]
fn interpolated_quantiles_are_within_one_percent_of_percentile_cont() {
    // Between two values of one sign; `signed` straddles zero, where no
    // relative bound exists.
    for (name, values) in samples(20_000).into_iter().filter(|(n, _)| *n != "signed") {
        let mut s = DDSketch::new(0.01).unwrap();
        for &v in &values {
            s.add(v);
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for k in 0..=200 {
            let q = k as f64 / 200.0;
            let r = q * (sorted.len() - 1) as f64;
            let (lo, w) = (r.floor() as usize, r - r.floor());
            let exact = match sorted.get(lo + 1) {
                Some(hi) if w > 0.0 => sorted[lo] + w * (hi - sorted[lo]),
                _ => sorted[lo],
            };
            let got = s.quantile_interpolated(q).unwrap().unwrap();
            let rel = (got - exact).abs() / exact.abs();
            assert!(rel <= 0.01 + 1e-12, "{name} q{q}: {got} vs {exact} ({rel})");
        }
    }
    assert_eq!(
        DDSketch::new(0.01).unwrap().quantile_interpolated(0.5),
        Ok(None)
    );
    assert!(DDSketch::new(0.01)
        .unwrap()
        .quantile_interpolated(-0.1)
        .is_err());
}

#[test]
fn merging_parts_equals_the_whole() {
    for (name, values) in samples(10_000) {
        let mut whole = DDSketch::new(0.01).unwrap();
        let mut parts: Vec<DDSketch> = (0..7).map(|_| DDSketch::new(0.01).unwrap()).collect();
        for (i, &v) in values.iter().enumerate() {
            whole.add(v);
            parts[i % 7].add(v);
        }
        let mut merged = DDSketch::new(0.01).unwrap();
        for p in &parts {
            merged
                .merge(&DDSketch::decode(&p.encode()).unwrap())
                .unwrap();
        }
        for k in 0..=20 {
            let q = k as f64 / 20.0;
            assert_eq!(merged.quantile(q), whole.quantile(q), "{name} q{q}");
        }
        assert_eq!(merged.count(), whole.count());
        assert!((merged.sum() - whole.sum()).abs() <= 1e-6 * whole.sum().abs().max(1.0));
    }
}

proptest! {
    #[test]
    fn any_values_round_trip(values in proptest::collection::vec(-1e12f64..1e12, 0..300)) {
        let mut s = DDSketch::new(0.01).unwrap();
        for v in &values {
            s.add(*v);
        }
        prop_assert_eq!(DDSketch::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(s) = DDSketch::decode(&bytes) {
            let _ = s.quantile(0.5);
            prop_assert_eq!(DDSketch::decode(&s.encode()).unwrap(), s);
        }
    }
}
