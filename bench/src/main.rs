//! `weir-bench`: writes weir's benchmark data sets to standard output.
//!
//! ```text
//! weir-bench gen tsbs-cpu [--hosts 100] [--hours 24] [--seed 1] > cpu.lp
//! weir-bench gen mixed [--lines 100000] [--seed 1] | curl --data-binary @- …
//! weir-bench ingest [--hosts 100] [--hours 24] [--batch 10000] [--writers 4] [--no-sync]
//! weir-bench query [--data-dir DIR] [--runs 10] [--seed 1] [--only NAME]…
//! weir-bench queries [--hosts 100] [--hours 24] [--runs 10] [--seed 1] > queries.jsonl
//! weir-bench analytics [--vantages 1000] [--days 30] [--interval 300] [--runs 10] [--data-dir DIR] [--only cdf|quantiles]
//! ```

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use weir_bench::analytics::run_analytics;
use weir_bench::ingest::{disk_usage, ingest_tsbs, peak_rss_bytes};
use weir_bench::mixed::mixed_corpus;
use weir_bench::probes::ProbeMonth;
use weir_bench::queries::{influxql, metricsql, sql, QueryGenerator, QueryKind};
use weir_bench::tsbs::CpuOnly;

/// Points generated per batch when streaming the TSBS data set (about 3.5 MB).
const TSBS_BATCH_POINTS: usize = 10_000;

/// Generates the data sets that weir's benchmarks load, as line protocol.
#[derive(Debug, Parser)]
#[command(name = "weir-bench", version)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Write a data set as line protocol (nanosecond timestamps) to standard output.
    Gen {
        /// Which data set.
        #[command(subcommand)]
        data: DataSet,
    },
    /// Load the TSBS cpu-only data set into a fresh store in this process and report the rate.
    Ingest {
        /// Number of simulated hosts.
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        /// Hours of data (360 points per host and hour).
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Lines per write.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// Concurrent writers.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Acknowledge writes without fsync (the store's `wal_sync = false`).
        #[arg(long)]
        no_sync: bool,
        /// Data directory (must not exist or be empty); a temporary one by default.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
    },
    /// Time the TSBS devops queries as SQL in this process, over a data directory
    /// that `ingest --data-dir` filled (or a fresh ingest of the default data set).
    Query {
        /// Data directory holding the TSBS cpu-only data set; without it, one is ingested first.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Number of simulated hosts in the data set.
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        /// Hours in the data set.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Timed runs per query kind (after one untimed warm-up), each with new parameters.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Seed of the query parameters.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only these query kinds (TSBS names, e.g. high-cpu-1); all by default.
        #[arg(long)]
        only: Vec<String>,
        /// Print each query's SQL once.
        #[arg(long)]
        show_sql: bool,
    },
    /// Load a month of probe downloads (many vantage points, six dimensions) into
    /// a store in this process, then time the analytics CDF and quantile bands
    /// over the whole month grouped by country, through rollups and through raw
    /// rows, and report the rollups' error against the exact answers.
    Analytics {
        /// Vantage points.
        #[arg(long, default_value_t = 1000)]
        vantages: usize,
        /// Days of data.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Seconds between two downloads of a vantage point.
        #[arg(long, default_value_t = 300)]
        interval: i64,
        /// Timed runs of each rollup query (after one warm-up); raw ones run 3 times.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Reuse (or fill, if empty) this data directory.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Ask only these questions (`cdf`, `quantiles`; repeatable): for
        /// profiling one of them.
        #[arg(long)]
        only: Vec<String>,
    },
    /// Print the TSBS devops queries for every system, one JSON object per line:
    /// `{"kind", "run", "warmup", "sql", "influxql", "metricsql": {"query", "start",
    /// "end", "step"} | null}`. Per kind, run 0 is the untimed warm-up and runs 1 to
    /// `--runs` are timed; the parameters are those `query` draws with the same seed.
    Queries {
        /// Number of simulated hosts in the data set.
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        /// Hours in the data set.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Timed runs per query kind (after one warm-up), each with new parameters.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Seed of the query parameters.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// The data sets `gen` can write.
#[derive(Debug, Subcommand)]
enum DataSet {
    /// TSBS "devops cpu-only": one `cpu` point per host every 10 s from 2016-01-01.
    TsbsCpu {
        /// Number of simulated hosts.
        #[arg(long, default_value_t = 100)]
        hosts: usize,
        /// Hours of data (360 points per host and hour).
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Seed of the random generator; the same seed gives the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// A corpus that uses all of line protocol: escapes, every value type, strings with line breaks.
    Mixed {
        /// Number of points (a point may span several lines through line breaks inside strings).
        #[arg(long, default_value_t = 100_000)]
        lines: usize,
        /// Seed of the random generator; the same seed gives the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`weir-bench gen … | head`): that is its choice, not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Carries out the command line.
fn run(cli: Cli) -> anyhow::Result<()> {
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 20, stdout);
    match cli.command {
        Command::Analytics {
            vantages,
            days,
            interval,
            runs,
            data_dir,
            only,
        } => {
            let month = ProbeMonth {
                vantages,
                days,
                interval_s: interval,
                // Whole days, ending at the last midnight: days that are over.
                end_s: {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_secs() as i64;
                    now - now % 86_400
                },
                seed: 1,
            };
            run_analytics(&month, runs, data_dir, &only, &mut out)?;
        }
        Command::Ingest {
            hosts,
            hours,
            batch,
            writers,
            no_sync,
            data_dir,
        } => {
            let tmp = tempfile::tempdir().context("creating a temporary data directory")?;
            let dir = data_dir.unwrap_or_else(|| tmp.path().to_owned());
            if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
                anyhow::bail!(
                    "{} is not empty: ingest measures a fresh store",
                    dir.display()
                );
            }
            let mut config = store::StoreConfig::default();
            config.wal.sync = !no_sync;
            let store = std::sync::Arc::new(store::Store::open(&dir, config)?);
            let report = ingest_tsbs(&store, CpuOnly::new(hosts, hours, 1), batch, writers)?;
            let started = std::time::Instant::now();
            store.persist()?;
            store.compact()?;
            let persist_seconds = started.elapsed().as_secs_f64();
            let files = store.files();
            let parquet: u64 = files.iter().map(|f| f.bytes).sum();
            writeln!(
                out,
                "ingest tsbs cpu-only: {hosts} hosts x {hours} h, batch {batch}, {writers} writers, sync {}\n\
                 lines {} values {} in {:.2} s: {:.0} values/s, {:.0} lines/s, {:.1} MB/s of line protocol\n\
                 final persist + compaction {:.2} s; Parquet {} bytes in {} files = {:.3} bytes/value; data dir {} bytes; peak RSS {} MiB",
                !no_sync,
                report.lines,
                report.values,
                report.seconds,
                report.values_per_second(),
                report.lines_per_second(),
                report.input_bytes as f64 / report.seconds / 1e6,
                persist_seconds,
                parquet,
                files.len(),
                parquet as f64 / report.values as f64,
                disk_usage(&dir)?,
                peak_rss_bytes().map_or("?".to_owned(), |b| (b >> 20).to_string()),
            )?;
        }
        Command::Query {
            data_dir,
            hosts,
            hours,
            runs,
            seed,
            only,
            show_sql,
        } => {
            let kinds = only
                .iter()
                .map(|name| {
                    QueryKind::from_name(name)
                        .with_context(|| format!("no query kind named {name:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let kinds = if kinds.is_empty() {
                QueryKind::ALL.to_vec()
            } else {
                kinds
            };
            let data = CpuOnly::new(hosts, hours, 1);
            let tmp = tempfile::tempdir().context("creating a temporary data directory")?;
            let config = store::StoreConfig::default();
            let store = match data_dir {
                Some(dir) => store::Store::open(&dir, config)
                    .with_context(|| format!("opening {}", dir.display()))?,
                None => {
                    let store = std::sync::Arc::new(store::Store::open(tmp.path(), config)?);
                    ingest_tsbs(&store, data, 10_000, 4)?;
                    store.persist()?;
                    store.compact()?;
                    std::sync::Arc::into_inner(store).context("the store is still shared")?
                }
            };
            let engine = query::QueryEngine::new(std::sync::Arc::new(store));
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the query runtime")?;
            let mut params = QueryGenerator::new(data, seed);
            writeln!(
                out,
                "TSBS devops queries over cpu-only {hosts} hosts x {hours} h, {runs} runs each (ms)\n\
                 {:<24} {:>9} {:>9} {:>9} {:>7}",
                "query", "median", "min", "max", "rows"
            )?;
            for kind in kinds {
                let mut times = Vec::with_capacity(runs);
                let mut rows = 0;
                for run in 0..=runs {
                    let text = sql(kind, &params.params(kind));
                    if show_sql && run == 0 {
                        writeln!(out, "-- {}: {text}", kind.name())?;
                    }
                    let started = std::time::Instant::now();
                    let batches = runtime
                        .block_on(engine.sql(weir_bench::ingest::DATABASE, &text))
                        .with_context(|| format!("{}: {text}", kind.name()))?;
                    let elapsed = started.elapsed().as_secs_f64() * 1e3;
                    rows = batches.iter().map(|b| b.num_rows()).sum::<usize>();
                    // Run 0 warms caches up and is not counted.
                    if run > 0 {
                        times.push(elapsed);
                    }
                }
                times.sort_by(f64::total_cmp);
                let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
                writeln!(
                    out,
                    "{:<24} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                    kind.name(),
                    median,
                    times.first().copied().unwrap_or(f64::NAN),
                    times.last().copied().unwrap_or(f64::NAN),
                    rows
                )?;
                out.flush()?;
            }
        }
        Command::Queries {
            hosts,
            hours,
            runs,
            seed,
        } => {
            let mut params = QueryGenerator::new(CpuOnly::new(hosts, hours, 1), seed);
            for kind in QueryKind::ALL {
                for run in 0..=runs {
                    let p = params.params(kind);
                    let range = metricsql(kind, &p).map(|r| {
                        serde_json::json!({
                            "query": r.query,
                            "start": r.start,
                            "end": r.end,
                            "step": r.step,
                        })
                    });
                    let line = serde_json::json!({
                        "kind": kind.name(),
                        "run": run,
                        "warmup": run == 0,
                        "sql": sql(kind, &p),
                        "influxql": influxql(kind, &p),
                        "metricsql": range,
                    });
                    writeln!(out, "{line}")?;
                }
            }
        }
        Command::Gen { data } => match data {
            DataSet::TsbsCpu { hosts, hours, seed } => {
                write_tsbs(&mut out, CpuOnly::new(hosts, hours, seed))?
            }
            DataSet::Mixed { lines, seed } => out
                .write_all(&mixed_corpus(lines, seed))
                .context("writing to standard output")?,
        },
    }
    out.flush().context("writing to standard output")
}

/// Streams the TSBS data set to `out` in batches.
fn write_tsbs(out: &mut impl Write, config: CpuOnly) -> anyhow::Result<()> {
    let mut stream = config.stream();
    let mut batch = Vec::new();
    while stream.write_points(&mut batch, TSBS_BATCH_POINTS) > 0 {
        out.write_all(&batch)
            .context("writing to standard output")?;
        batch.clear();
    }
    Ok(())
}

/// Whether `e` comes from writing to a pipe whose reader has gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
