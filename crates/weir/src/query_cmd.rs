//! `weir query`: SQL against a data directory, printed as a table.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use query::QueryEngine;
use store::{Store, StoreConfig};

/// Ask a SQL question of a data directory (offline) or a server.
#[derive(Debug, clap::Args)]
pub(crate) struct QueryArgs {
    /// Data directory to read directly; no server may have it open.
    #[arg(long, value_name = "DIR", required_unless_present = "url")]
    data_dir: Option<PathBuf>,
    /// URL of a weir server to ask (arrives with `weir server`).
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    url: Option<String>,
    /// Token for the server (with --url).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Database to query: its tables are the measurements written to it.
    #[arg(long, value_name = "NAME")]
    db: String,
    /// The SQL query, e.g. "SELECT host, avg(usage_user) FROM cpu GROUP BY host".
    sql: String,
}

impl QueryArgs {
    /// Whether the remote form (`--url`), which lands with the server, was asked for.
    pub(crate) fn wants_server(&self) -> bool {
        self.url.is_some()
    }
}

/// Runs the query and prints the result; errors name what failed.
pub(crate) fn run(args: QueryArgs) -> Result<()> {
    let Some(dir) = args.data_dir else {
        bail!("give --data-dir DIR (or, once it lands, --url URL)");
    };
    if args.token.is_some() {
        bail!("--token goes with --url; a data directory needs none");
    }
    if !dir.join("catalog.json").is_file() {
        bail!(
            "{} is not a weir data directory (it has no catalog.json)",
            dir.display()
        );
    }
    let store = Store::open(&dir, StoreConfig::default())
        .with_context(|| format!("opening data directory {}", dir.display()))?;
    let store = Arc::new(store);
    let engine = QueryEngine::new(Arc::clone(&store));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let batches = runtime.block_on(engine.sql(&args.db, &args.sql))?;
    let table =
        arrow::util::pretty::pretty_format_batches(&batches).context("formatting the result")?;
    println!("{table}");
    Ok(())
}
