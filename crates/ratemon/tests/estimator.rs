//! The estimator against values computed independently (scipy's lognorm
//! and exact rational arithmetic, in `fixtures/gen_reference.py`, whose
//! output `fixtures/reference.json` is committed), and the whole monitor
//! fed synthetic counters whose per-sample rates are log-normal with a
//! known μ and σ².

use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal as LogNormalDist};
use ratemon::{overload_risk, Counters, LogNormal, Monitor, Settings, Welford};
use serde_json::Value;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reference.json"
    ))
    .expect("reference.json");
    serde_json::from_str(&text).expect("reference.json is JSON")
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// |a − b| ≤ rel·|b| (or both tiny).
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

#[test]
fn risk_matches_scipy_on_every_reference_case() {
    let cases = reference()["risk_cases"]
        .as_array()
        .expect("risk_cases")
        .clone();
    assert!(cases.len() >= 10, "{} cases", cases.len());
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let (m, v, l, c) = (
            f(case, "m"),
            f(case, "v"),
            f(case, "linerate"),
            f(case, "cutoff"),
        );
        let risk = overload_risk(m, v, l, c);
        let want = f(case, "risk");
        // erfc in the far tail is accurate to a few ulps relative.
        assert!(
            close(risk, want, 1e-9) || (risk - want).abs() < 1e-12,
            "{name}: risk {risk} vs scipy {want}"
        );
        let fit = LogNormal::by_moments(m, v);
        match (case["mu"].as_f64(), case["sigma2"].as_f64(), fit) {
            (None, None, None) => {}
            (Some(mu), Some(sigma2), Some(fit)) => {
                assert!(close(fit.mu, mu, 1e-12), "{name}: mu {} vs {mu}", fit.mu);
                assert!(
                    close(fit.sigma2, sigma2, 1e-12) || (fit.sigma2 - sigma2).abs() < 1e-18,
                    "{name}: sigma2 {} vs {sigma2}",
                    fit.sigma2
                );
            }
            other => panic!("{name}: fit {other:?}"),
        }
    }
}

#[test]
fn welford_matches_exact_and_numpy_variances() {
    let cases = reference()["welford_cases"]
        .as_array()
        .expect("welford_cases")
        .clone();
    assert!(cases.len() >= 5);
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let mut w = Welford::new();
        for x in case["samples"].as_array().expect("samples") {
            w.push(x.as_f64().expect("number"));
        }
        let (mean, var) = (f(case, "mean"), f(case, "variance"));
        assert!(
            close(w.mean(), mean, 1e-12),
            "{name}: mean {} vs {mean}",
            w.mean()
        );
        if var == 0.0 {
            assert_eq!(w.variance(), 0.0, "{name}");
        } else {
            assert!(
                close(w.variance(), var, 1e-9),
                "{name}: variance {} vs {var}",
                w.variance()
            );
        }
    }
}

#[test]
fn the_naive_formula_fails_where_welford_does_not() {
    // 1e9 + 0..9 repeated: the true variance is 8.25.
    let xs: Vec<f64> = (0..200).map(|i| 1e9 + f64::from(i % 10)).collect();
    let n = xs.len() as f64;
    let naive = xs.iter().map(|x| x * x).sum::<f64>() / n - (xs.iter().sum::<f64>() / n).powi(2);
    let mut w = Welford::new();
    xs.iter().for_each(|&x| w.push(x));
    assert!(
        (w.variance() - 8.25).abs() < 1e-6,
        "welford {}",
        w.variance()
    );
    assert!(
        (naive - 8.25).abs() > 1.0,
        "the naive formula happened to work: {naive}"
    );
}

/// Drives a monitor at 1 kHz of synthetic time for `seconds`, each
/// sample's counter increment drawn so that its rate is log-normal.
fn simulate(mu: f64, sigma2: f64, seconds: f64, seed: u64) -> ratemon::Record {
    let settings = Settings {
        interface: "synthetic0".into(),
        sample_rate: 1000.0,
        estimation_interval: seconds,
        meter_interval: seconds,
        link_speed: Some(1000.0),
        ..Settings::default()
    };
    let dist = LogNormalDist::new(mu, sigma2.sqrt()).expect("lognormal");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut monitor = Monitor::new(settings, Some(125e6), 0);
    let period_ns = 1_000_000u64;
    // Start near the top of u64 so that the counters wrap on the way.
    let mut c = Counters {
        rx_bytes: u64::MAX - 1_000_000_000,
        tx_bytes: u64::MAX - 7,
    };
    let mut record = None;
    let mut residue = 0.0f64;
    for k in 1..=(seconds * 1000.0) as u64 {
        let rate = dist.sample(&mut rng);
        // Carry the fraction of a byte so that rates stay exact on average.
        let bytes = rate * 1e-3 + residue;
        let whole = bytes.floor();
        residue = bytes - whole;
        c.tx_bytes = c.tx_bytes.wrapping_add(whole as u64);
        c.rx_bytes = c.rx_bytes.wrapping_add((whole as u64) / 2);
        if let Some(r) = monitor.sample(k * period_ns, 0, c, || 0) {
            record = Some(r);
        }
    }
    record.expect("a record at the end of the meter interval")
}

#[test]
fn synthetic_lognormal_rates_give_back_their_parameters() {
    // Tolerances: with 60 000 samples the method-of-moments σ² has a
    // relative standard error of ~1 % (σ² = 0.25) to ~3 % (σ² = 1), μ an
    // absolute one below 0.01; the bounds are about four of them.
    for (i, &(mu, sigma2, tol_mu, tol_s2)) in [
        (17.0, 0.04, 0.01, 0.03),
        (15.5, 0.25, 0.02, 0.05),
        (14.0, 1.0, 0.05, 0.12),
    ]
    .iter()
    .enumerate()
    {
        let r = simulate(mu, sigma2, 60.0, 42 + i as u64);
        let got_mu = r.mu_tx.expect("mu_tx");
        let got_s2 = r.sigma2_tx.expect("sigma2_tx");
        assert!((got_mu - mu).abs() < tol_mu, "mu {got_mu} vs {mu}");
        assert!(
            ((got_s2 - sigma2) / sigma2).abs() < tol_s2,
            "sigma2 {got_s2} vs {sigma2}"
        );
        // The mean is E[X] = e^(μ + σ²/2).
        let mean = (mu + sigma2 / 2.0).exp();
        assert!(((r.tx - mean) / mean).abs() < 0.05, "tx {} vs {mean}", r.tx);
        assert_eq!(r.counter_resets, 0, "a u64 wrap is not a reset");
        // The risk is the formula's on the estimated moments.
        let want = overload_risk(r.tx, r.var_tx, 125e6, 0.99);
        assert_eq!(r.overload_risk_tx, Some(want));
        assert_eq!(r.alarm_tx, Some(want > 95.0));
        assert_eq!(r.samples, 60_000);
        assert!((r.achieved_sample_rate - 1000.0).abs() < 1e-6);
    }
}

#[test]
fn a_counter_that_goes_back_is_a_reset_not_a_huge_rate() {
    let settings = Settings {
        interface: "x".into(),
        estimation_interval: 0.01,
        meter_interval: 0.01,
        ..Settings::default()
    };
    let mut m = Monitor::new(settings, None, 0);
    let mut last = None;
    for (k, tx) in [
        (1u64, 5_000u64),
        (2, 6_000),
        (3, 10),
        (4, 1_010),
        (10, 2_010),
        (11, 2_010),
    ] {
        let c = Counters {
            rx_bytes: 0,
            tx_bytes: tx,
        };
        if let Some(r) = m.sample(k * 1_000_000, 0, c, || 0) {
            last = Some(r);
        }
    }
    let r = last.expect("a record");
    assert_eq!(r.counter_resets, 1);
    assert_eq!(r.linerate, None);
    assert_eq!((r.overload_risk_tx, r.alarm_tx), (None, None));
    // The interval ends at 10 ms: 1000 B in each of the samples at 2, 4
    // and 10 ms (the last covering 6 ms); the reset's millisecond is not
    // counted. Time-weighted mean: 3000 B over 8 ms.
    assert!((r.tx - 3000.0 / 0.008).abs() < 1e-3, "{}", r.tx);
}

/// Feeds 4 s at 1 kHz of counters that move per `moves(ms)`, and returns
/// what the monitor concluded about the driver's refresh.
fn refresh_verdict(moves: impl Fn(u64) -> bool) -> ratemon::CounterRefresh {
    let settings = Settings {
        interface: "x".into(),
        ..Settings::default()
    };
    let mut m = Monitor::new(settings, None, 0);
    let mut c = Counters::default();
    let mut verdict = None;
    for ms in 1..=4000u64 {
        if moves(ms) {
            c.tx_bytes += 1500;
        }
        m.sample(ms * 1_000_000, 0, c, || 0);
        verdict = verdict.or(m.take_refresh());
    }
    verdict.expect("a verdict after 3 s")
}

#[test]
fn a_driver_refreshing_on_a_timer_is_told_from_live_and_from_idle_counters() {
    use ratemon::CounterRefresh;
    match refresh_verdict(|ms| ms % 100 == 0) {
        CounterRefresh::Every(s) => assert!((s - 0.1).abs() < 1e-9, "{s}"),
        other => panic!("a 100 ms refresh read as {other:?}"),
    }
    assert_eq!(refresh_verdict(|ms| ms % 3 != 0), CounterRefresh::Live);
    assert_eq!(
        refresh_verdict(|ms| ms == 500 || ms == 2000),
        CounterRefresh::Unknown
    );
    // Sparse, irregular traffic is not mistaken for a timer.
    let irregular = [7u64, 130, 190, 800, 1450, 1460, 2300, 2950];
    assert_ne!(
        std::mem::discriminant(&refresh_verdict(|ms| irregular.contains(&ms))),
        std::mem::discriminant(&CounterRefresh::Every(0.0))
    );
}
