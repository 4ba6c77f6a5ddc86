//! `quantiles` and `cdf` over rows written through the store, against the
//! same figures computed here from the values themselves, on several
//! distributions; grouping, empty groups and argument errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;
use lineproto::Precision;
use query::QueryEngine;
use store::{Store, StoreConfig};

/// Deterministic samples of five shapes (n each), by inverse transform of
/// a fixed low-discrepancy sequence.
fn distributions(n: usize) -> Vec<(&'static str, Vec<f64>)> {
    let u = |i: usize| ((i as f64 + 0.5) * 0.618_033_988_75).fract();
    let normal = |p: f64| {
        // Box–Muller with a second uniform from a different sequence.
        let v = ((p * 7919.0).fract()).max(1e-12);
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
    ]
}

fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

async fn engine_with(lines: &str) -> (tempfile::TempDir, QueryEngine) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).unwrap());
    let summary = store
        .write_lines("net", lines.as_bytes(), Precision::Nanoseconds)
        .unwrap();
    assert!(summary.rejected.is_empty(), "{:?}", summary.rejected);
    (dir, QueryEngine::new(store))
}

#[tokio::test]
async fn quantiles_and_cdf_are_exact_on_five_distributions() {
    let n = 2000;
    let mut lines = String::new();
    let dists = distributions(n);
    for (name, values) in &dists {
        for (i, v) in values.iter().enumerate() {
            lines.push_str(&format!("dl,dist={name} ttfb={v} {i}\n"));
        }
    }
    let (_dir, engine) = engine_with(&lines).await;
    let batches = engine
        .sql(
            "net",
            "SELECT dist, quantiles(ttfb, 0.0, 0.05, 0.5, 0.95, 0.99, 1.0) AS q, cdf(ttfb, 20) AS c \
             FROM dl GROUP BY dist ORDER BY dist",
        )
        .await
        .unwrap();
    let mut seen = 0;
    for batch in &batches {
        let q = batch.column(1).as_list::<i32>();
        let c = batch.column(2).as_list::<i32>();
        for row in 0..batch.num_rows() {
            let name = arrow::util::display::array_value_to_string(batch.column(0), row).unwrap();
            let name = name.as_str();
            let mut sorted = dists.iter().find(|(d, _)| *d == name).unwrap().1.clone();
            sorted.sort_by(f64::total_cmp);
            let got = q.value(row);
            let got = got.as_primitive::<Float64Type>();
            for (i, want_q) in [0.0, 0.05, 0.5, 0.95, 0.99, 1.0].iter().enumerate() {
                let want = exact_quantile(&sorted, *want_q);
                let rel = (got.value(i) - want).abs() / want.abs();
                assert!(rel < 1e-12, "{name} q{want_q}: {} vs {want}", got.value(i));
            }
            let points = c.value(row);
            let points = points.as_struct();
            let values = points.column(0).as_primitive::<Float64Type>();
            let fractions = points.column(1).as_primitive::<Float64Type>();
            assert_eq!(points.len(), 20);
            for i in 1..20 {
                assert!(
                    values.value(i) >= values.value(i - 1),
                    "{name}: value not monotone"
                );
                assert!(
                    fractions.value(i) > fractions.value(i - 1),
                    "{name}: fraction not monotone"
                );
            }
            assert_eq!(fractions.value(19), 1.0);
            assert_eq!(values.value(19), *sorted.last().unwrap());
            // Each point: exactly its share of the rows at or below it.
            for i in 0..20 {
                let below = sorted.iter().filter(|&&v| v <= values.value(i)).count();
                assert!(
                    below as f64 / n as f64 >= fractions.value(i),
                    "{name} point {i}"
                );
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 5);
}

#[tokio::test]
async fn empty_groups_give_null_and_bad_arguments_are_named() {
    let (_dir, engine) =
        engine_with("dl,dist=a ttfb=1 1\ndl,dist=a ttfb=3 2\ndl,dist=b ok=true 3\n").await;
    let batches = engine
        .sql(
            "net",
            "SELECT dist, quantiles(ttfb, 0.5) AS q FROM dl GROUP BY dist ORDER BY dist",
        )
        .await
        .unwrap();
    let q = batches[0].column(1).as_list::<i32>();
    assert_eq!(q.value(0).as_primitive::<Float64Type>().value(0), 2.0);
    assert!(q.is_null(1), "a group without values gives NULL");

    for (sql, words) in [
        ("SELECT quantiles(ttfb, 1.5) FROM dl", "from 0 to 1"),
        ("SELECT quantiles(ttfb, ttfb) FROM dl", "constant"),
        ("SELECT quantiles(ttfb) FROM dl", "at least one q"),
        ("SELECT quantiles(dist, 0.5) FROM dl", "numbers"),
        ("SELECT cdf(ttfb, 0) FROM dl", "from 1 to"),
        ("SELECT cdf(ttfb, 0.5) FROM dl", "integer"),
    ] {
        let err = engine.sql("net", sql).await.unwrap_err().to_string();
        assert!(err.contains(words), "{sql}: {err}");
    }
}

#[tokio::test]
async fn sketches_merge_across_groups_within_one_percent() {
    let n = 3000;
    let mut lines = String::new();
    let dists = distributions(n);
    for (name, values) in &dists {
        for (i, v) in values.iter().enumerate() {
            lines.push_str(&format!("dl,dist={name},host=h{} ttfb={v} {i}\n", i % 7));
        }
    }
    let (_dir, engine) = engine_with(&lines).await;
    for (name, values) in &dists {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        // Per-host sketches merged: the sketch of all rows of the distribution.
        let sql = format!(
            "SELECT sketch_quantile(sketch_merge(s), 0.5) AS p50, sketch_quantile(sketch_merge(s), 0.99) AS p99 \
             FROM (SELECT host, sketch(ttfb) AS s FROM dl WHERE dist = '{name}' GROUP BY host)"
        );
        let batches = engine.sql("net", &sql).await.unwrap();
        for (col, q) in [(0, 0.5), (1, 0.99)] {
            let got = batches[0]
                .column(col)
                .as_primitive::<Float64Type>()
                .value(0);
            let exact = sorted[(q * (n - 1) as f64).floor() as usize];
            assert!(
                (got - exact).abs() / exact.abs() <= 0.01,
                "{name} q{q}: {got} vs {exact}"
            );
        }
    }
    let err = engine
        .sql("net", "SELECT sketch_quantile(X'0102', 0.5)")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a sketch"), "{err}");
    let err = engine
        .sql("net", "SELECT sketch_merge(ttfb) FROM dl")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("sketches"), "{err}");
}

#[tokio::test]
async fn rollup_tables_answer_quantiles_and_cdf_within_one_percent() {
    // Five distributions over 24 series and 3 days; persisted in two parts
    // (so half-hours have partial rollups), a third part still in memory.
    let n = 6000;
    let dists = distributions(n);
    let (_dir, store) = common::manual_store();
    let store = Arc::new(store);
    let t0: i64 = 1_700_000_000_000_000_000;
    let step = 3 * 86_400_000_000_000 / n as i64;
    for part in 0..3 {
        let mut lines = String::new();
        for (name, values) in &dists {
            for (i, v) in values.iter().enumerate().filter(|(i, _)| i % 3 == part) {
                let t = t0 + i as i64 * step;
                lines.push_str(&format!("dl,dist={name},host=h{} ttfb={v} {t}\n", i % 24));
            }
        }
        store
            .write_lines("net", lines.as_bytes(), Precision::Nanoseconds)
            .unwrap();
        if part < 2 {
            store.persist().unwrap();
        }
    }
    let engine = QueryEngine::new(Arc::clone(&store));
    let qs = [0.01, 0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99];
    let q_list: Vec<String> = qs.iter().map(|q| format!("{q}")).collect();
    let sql = format!(
        "SELECT dist, quantiles(ttfb_sketch, {}) AS q, cdf(ttfb_sketch, 10) AS c, \
         CAST(sum(ttfb_count) AS BIGINT) AS n, min(ttfb_min) AS lo, max(ttfb_max) AS hi \
         FROM dl_30m GROUP BY dist ORDER BY dist",
        q_list.join(", ")
    );
    let batches = engine.sql("net", &sql).await.unwrap();
    let mut seen = 0;
    for batch in &batches {
        let q = batch.column(1).as_list::<i32>();
        let c = batch.column(2).as_list::<i32>();
        let counts = batch
            .column(3)
            .as_primitive::<arrow::datatypes::Int64Type>();
        for row in 0..batch.num_rows() {
            let name = arrow::util::display::array_value_to_string(batch.column(0), row).unwrap();
            let mut sorted = dists.iter().find(|(d, _)| *d == name).unwrap().1.clone();
            sorted.sort_by(f64::total_cmp);
            assert_eq!(
                counts.value(row),
                n as i64,
                "{name}: every row counted once"
            );
            assert_eq!(
                batch.column(4).as_primitive::<Float64Type>().value(row),
                sorted[0]
            );
            assert_eq!(
                batch.column(5).as_primitive::<Float64Type>().value(row),
                sorted[n - 1]
            );
            let got = q.value(row);
            let got = got.as_primitive::<Float64Type>();
            for (i, want_q) in qs.iter().enumerate() {
                // Within 1 % of the exact answer, interpolated between the
                // values of ranks ⌊q(n−1)⌋ and ⌈q(n−1)⌉ as over raw rows.
                let r = want_q * (n - 1) as f64;
                let (lo, w) = (r.floor() as usize, r - r.floor());
                let exact = sorted[lo] + w * (sorted[(lo + 1).min(n - 1)] - sorted[lo]);
                let rel = (got.value(i) - exact).abs() / exact.abs();
                assert!(
                    rel <= 0.0101,
                    "{name} q{want_q}: {} vs {exact}",
                    got.value(i)
                );
            }
            let points = c.value(row);
            let points = points.as_struct();
            let values = points.column(0).as_primitive::<Float64Type>();
            let fractions = points.column(1).as_primitive::<Float64Type>();
            assert_eq!(points.len(), 10);
            for i in 1..10 {
                assert!(values.value(i) >= values.value(i - 1), "{name}: monotone");
                assert!(fractions.value(i) > fractions.value(i - 1));
            }
            assert_eq!(fractions.value(9), 1.0, "{name}: ends at 1");
            seen += 1;
        }
    }
    assert_eq!(seen, 5);

    // Sketches merge exactly: the daily rollups give the very same
    // answers, and so does one group aggregated alone (no GROUP BY).
    let text = |sql: &str| {
        let engine = &engine;
        let sql = sql.to_owned();
        async move {
            let batches = engine.sql("net", &sql).await.unwrap();
            arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
        }
    };
    let per_dist = |table: &str| {
        format!(
            "SELECT dist, quantiles(ttfb_sketch, {}) AS q, cdf(ttfb_sketch, 10) AS c \
             FROM {table} GROUP BY dist ORDER BY dist",
            q_list.join(", ")
        )
    };
    let half_hours = text(&per_dist("dl_30m")).await;
    assert_eq!(half_hours, text(&per_dist("dl_1d")).await);
    let alone = text(&format!(
        "SELECT quantiles(ttfb_sketch, {}) AS q FROM dl_1d WHERE dist = '{}'",
        q_list.join(", "),
        dists[0].0
    ))
    .await;
    let alone_q = alone.lines().nth(3).unwrap().trim_matches('|').trim();
    assert!(alone_q.starts_with('['), "a list of quantiles: {alone}");
    assert!(half_hours.contains(alone_q), "{alone_q} in {half_hours}");
}
