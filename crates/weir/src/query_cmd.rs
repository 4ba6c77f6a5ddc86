//! `weir query`: SQL against a data directory or a server, printed as a
//! table, JSON, JSON lines or CSV.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use query::QueryEngine;
use server::client::Client;
use server::format::{Encoder, OutputFormat};
use store::{Store, StoreConfig};

/// Ask a SQL question of a data directory (offline) or a server.
#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// Data directory to read directly; no server may have it open.
    #[arg(long, value_name = "DIR", required_unless_present = "url")]
    data_dir: Option<PathBuf>,
    /// URL of a weir server to ask, e.g. http://127.0.0.1:8086.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    url: Option<String>,
    /// Token for the server (with --url); also read from $WEIR_TOKEN.
    #[arg(long, value_name = "TOKEN", env = "WEIR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Database to query: its tables are the measurements written to it.
    #[arg(long, value_name = "NAME")]
    db: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The SQL query, e.g. "SELECT host, avg(usage_user) FROM cpu GROUP BY host".
    sql: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A text table.
    Table,
    /// A JSON array of row objects.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header line.
    Csv,
}

impl Format {
    fn output(self) -> Option<OutputFormat> {
        match self {
            Format::Table => None,
            Format::Json => Some(OutputFormat::Json),
            Format::Jsonl => Some(OutputFormat::Jsonl),
            Format::Csv => Some(OutputFormat::Csv),
        }
    }
}

/// Runs the query and prints the result; errors name what failed.
pub(crate) fn run(args: QueryArgs) -> Result<()> {
    match (&args.url, &args.data_dir) {
        (Some(url), _) => remote(url, &args),
        (None, Some(dir)) => local(dir, &args),
        (None, None) => bail!("give --data-dir DIR or --url URL"),
    }
}

/// Asks a server: Arrow for a table, the format itself otherwise, streamed
/// to stdout.
fn remote(url: &str, args: &QueryArgs) -> Result<()> {
    let client = Client::new(url, args.token.as_deref())?;
    match args.format.output() {
        None => {
            let batches = client.query_batches(&args.db, &args.sql)?;
            print_table(&batches)
        }
        Some(format) => {
            let mut response = client.query(&args.db, &args.sql, format)?;
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut response, &mut out)
                .context("reading the result (the server may have cut it off)")?;
            end_line(format, &mut out)
        }
    }
}

fn local(dir: &std::path::Path, args: &QueryArgs) -> Result<()> {
    if std::env::var_os("WEIR_TOKEN").is_none() && args.token.is_some() {
        bail!("--token goes with --url; a data directory needs none");
    }
    if !dir.join("catalog.json").is_file() {
        bail!(
            "{} is not a weir data directory (it has no catalog.json)",
            dir.display()
        );
    }
    // A one-off read: no background persist or compaction to wait for at exit.
    let config = StoreConfig {
        background_persist: false,
        ..StoreConfig::default()
    };
    let store = Store::open(dir, config)
        .with_context(|| format!("opening data directory {}", dir.display()))?;
    let store = Arc::new(store);
    let engine = QueryEngine::new(Arc::clone(&store));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    runtime.block_on(async {
        let Some(format) = args.format.output() else {
            let batches = engine.sql(&args.db, &args.sql).await?;
            return print_table(&batches);
        };
        let mut stream = engine.sql_stream(&args.db, &args.sql).await?;
        let mut encoder = Encoder::new(format, &stream.schema())?;
        let mut out = std::io::stdout().lock();
        out.write_all(&encoder.start())?;
        while let Some(batch) = stream.next().await {
            out.write_all(&encoder.encode(&batch?)?)?;
        }
        out.write_all(&encoder.finish()?)?;
        end_line(format, &mut out)
    })
}

fn print_table(batches: &[arrow::record_batch::RecordBatch]) -> Result<()> {
    let table =
        arrow::util::pretty::pretty_format_batches(batches).context("formatting the result")?;
    println!("{table}");
    Ok(())
}

/// A JSON array ends without a line break; a terminal wants one.
fn end_line(format: OutputFormat, out: &mut impl Write) -> Result<()> {
    if format == OutputFormat::Json {
        writeln!(out)?;
    }
    out.flush().context("writing the result")
}
