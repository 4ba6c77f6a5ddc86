//! `weir-bench analytics`: CDFs and quantile bands over a month of probe
//! downloads, through the half-hour rollups and through raw rows, timed in
//! this process, with the rollups' relative error against the exact answers.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use query::analytics::{self, Answer, Params};
use query::QueryEngine;
use serde_json::Value;
use store::{RollupGrain, Store, StoreConfig};

use crate::ingest::disk_usage;
use crate::probes::ProbeMonth;

/// Loads `month` (unless `data_dir` already holds it), then times the
/// questions and writes a report to `out`.
pub fn run_analytics(
    month: &ProbeMonth,
    runs: usize,
    data_dir: Option<PathBuf>,
    only: &[String],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir().context("creating a temporary data directory")?;
    let dir = data_dir.unwrap_or_else(|| tmp.path().to_owned());
    let store = Arc::new(Store::open(&dir, StoreConfig::default())?);
    if !store.has_database("net") {
        let started = Instant::now();
        let mut rows = 0usize;
        month.generate(50_000, |batch| {
            let summary = store.write_lines("net", batch, lineproto::Precision::Nanoseconds)?;
            anyhow::ensure!(
                summary.rejected.is_empty(),
                "{:?}",
                summary.rejected.first()
            );
            rows += summary.accepted;
            Ok(())
        })?;
        store.persist()?;
        while store.compact()? > 0 {}
        writeln!(
            out,
            "loaded {rows} rows ({} vantage points x {} days, one per {} s) in {:.1} s",
            month.vantages,
            month.days,
            month.interval_s,
            started.elapsed().as_secs_f64()
        )?;
    }
    let raw: u64 = store.files().iter().map(|f| f.bytes).sum();
    let rollups = store.rollup_files();
    let mut rollup_text = Vec::new();
    for grain in RollupGrain::ALL {
        let table = grain.table_name("probe_http");
        let files: Vec<_> = rollups.iter().filter(|f| f.table == table).collect();
        rollup_text.push(format!(
            "{table} {:.1} MB, {} rows in {} files",
            files.iter().map(|f| f.bytes).sum::<u64>() as f64 / 1e6,
            files.iter().map(|f| f.rows).sum::<usize>(),
            files.len()
        ));
    }
    writeln!(
        out,
        "raw Parquet {:.1} MB in {} files; rollups: {}; data dir {:.1} MB",
        raw as f64 / 1e6,
        store.files().len(),
        rollup_text.join("; "),
        disk_usage(&dir)? as f64 / 1e6
    )?;

    let engine = QueryEngine::new(Arc::clone(&store));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let range = [
        ("start".to_owned(), month.start_s().to_string()),
        ("end".to_owned(), month.end_s.to_string()),
    ];
    let questions: [(&str, Vec<(&str, &str)>); 2] = [
        ("cdf", vec![("points", "100")]),
        ("quantiles", vec![("every", "1d")]),
    ];
    writeln!(
        out,
        "question (30 d, group_by=country, field=ttfb_us) | source (tables) | first ms | median ms | min ms | max ms | runs | CPU ms per run | max rel. error | median rel. error"
    )?;
    if let Some(unknown) = only.iter().find(|o| !questions.iter().any(|(k, _)| k == o)) {
        anyhow::bail!("--only {unknown:?}: the questions are cdf and quantiles");
    }
    for (kind, own) in questions {
        if !only.is_empty() && !only.iter().any(|o| o == kind) {
            continue;
        }
        let params = |source: &str| -> anyhow::Result<Params> {
            let mut pairs: Vec<(String, String)> = vec![
                ("db".into(), "net".into()),
                ("table".into(), "probe_http".into()),
                ("field".into(), "ttfb_us".into()),
                ("group_by".into(), "country".into()),
                ("source".into(), source.into()),
            ];
            pairs.extend(range.iter().cloned());
            pairs.extend(own.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            Params::from_pairs(&pairs, &["points", "source", "q"]).map_err(anyhow::Error::msg)
        };
        let ask = |p: &Params| -> anyhow::Result<(f64, Answer)> {
            let started = Instant::now();
            let answer = runtime.block_on(async {
                match kind {
                    "cdf" => analytics::cdf(&engine, p).await,
                    _ => analytics::quantiles(&engine, p).await,
                }
            })?;
            Ok((started.elapsed().as_secs_f64() * 1e3, answer))
        };
        let mut answers = Vec::new();
        for (source, n) in [("rollup", runs), ("raw", 3)] {
            let p = params(source)?;
            let (first, warm) = ask(&p)?;
            anyhow::ensure!(
                warm.json["source"] == source,
                "asked {source}, got {}",
                warm.json["source"]
            );
            let mut times = Vec::with_capacity(n);
            let cpu_before = process_cpu_seconds();
            for _ in 0..n {
                times.push(ask(&p)?.0);
            }
            let cpu_ms = (process_cpu_seconds() - cpu_before) * 1e3 / n as f64;
            times.sort_by(f64::total_cmp);
            answers.push((source, first, times, warm, cpu_ms));
        }
        let errors = relative_errors(&answers[0].3.json, &answers[1].3.json);
        let (max_err, median_err) = if errors.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (errors[errors.len() - 1], errors[errors.len() / 2])
        };
        for (i, (source, first, times, answer, cpu_ms)) in answers.iter().enumerate() {
            let tables = answer.json["rollup_tables"]
                .as_array()
                .map(|ts| {
                    let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
                    format!(" ({})", names.join(", "))
                })
                .unwrap_or_default();
            let error = if i == 0 {
                format!("{:.3} % | {:.3} %", max_err * 100.0, median_err * 100.0)
            } else {
                "exact | exact".to_owned()
            };
            writeln!(
                out,
                "{kind} | {source}{tables} | {first:.1} | {:.1} | {:.1} | {:.1} | {} | {cpu_ms:.1} | {error}",
                times[times.len() / 2],
                times[0],
                times[times.len() - 1],
                times.len(),
            )?;
        }
    }
    Ok(())
}

/// User and system CPU time of this process so far, in seconds (from
/// `/proc/self/stat`, in ticks of 10 ms; 0 where it cannot be read).
fn process_cpu_seconds() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which ends at the last ')': utime is
    // field 14 and stime 15 (state, field 3, comes first).
    let after = text.rfind(')').map_or("", |i| &text[i + 1..]);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The relative differences, sorted, between every value of `approx` and
/// the same value of `exact` (same groups, buckets and points).
fn relative_errors(approx: &Value, exact: &Value) -> Vec<f64> {
    let mut errors = Vec::new();
    let mut walk = |a: &Value, e: &Value| {
        if let (Some(a), Some(e)) = (a.as_f64(), e.as_f64()) {
            if e != 0.0 {
                errors.push((a - e).abs() / e.abs());
            }
        }
    };
    let empty = Vec::new();
    if let (Some(ga), Some(ge)) = (approx["groups"].as_array(), exact["groups"].as_array()) {
        for (a, e) in ga.iter().zip(ge) {
            let (pa, pe) = (
                a["points"].as_array().unwrap_or(&empty),
                e["points"].as_array().unwrap_or(&empty),
            );
            for (a, e) in pa.iter().zip(pe) {
                walk(&a["value"], &e["value"]);
            }
        }
    }
    if let (Some(sa), Some(se)) = (approx["series"].as_array(), exact["series"].as_array()) {
        for (a, e) in sa.iter().zip(se) {
            let (ba, be) = (
                a["buckets"].as_array().unwrap_or(&empty),
                e["buckets"].as_array().unwrap_or(&empty),
            );
            for (a, e) in ba.iter().zip(be) {
                let (va, ve) = (
                    a["values"].as_array().unwrap_or(&empty),
                    e["values"].as_array().unwrap_or(&empty),
                );
                for (a, e) in va.iter().zip(ve) {
                    walk(a, e);
                }
            }
        }
    }
    errors.sort_by(f64::total_cmp);
    errors
}
