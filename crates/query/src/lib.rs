//! SQL over weir's store, with Apache DataFusion.
//!
//! Each database of the store is a schema and each of its tables (InfluxDB
//! measurements) a table, so `SELECT … FROM cpu` reads table `cpu` of the
//! database a query is run against. `information_schema` lists tables and
//! columns; DataFusion's functions, `date_bin` among them, are all there.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use lineproto::Precision;
//! use query::QueryEngine;
//! use store::{Store, StoreConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).unwrap());
//! store.write_lines("net", b"ping,dst=a rtt=10 1\nping,dst=a rtt=30 2\nping,dst=b rtt=5 1", Precision::Seconds).unwrap();
//!
//! let engine = QueryEngine::new(Arc::clone(&store));
//! let batches = engine.sql("net", "SELECT dst, avg(rtt) AS rtt FROM ping GROUP BY dst ORDER BY dst").await.unwrap();
//! let text = arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
//! assert!(text.contains("| a   | 20.0 |"), "{text}");
//! # });
//! ```
//!
//! A table's rows come from two places, planned by the store for each
//! query ([`store::Store::plan_scan`]): persisted Parquet files, read by
//! DataFusion's Parquet scan (every filter of the query prunes files, row
//! groups and pages; only projected columns are decoded; the files' footers
//! and page indexes are parsed once and kept in DataFusion's metadata cache,
//! 50 MiB by default, across queries), and rows in memory. Files and memory
//! chunks outside the time range a query's `WHERE` clause implies are
//! skipped before either is read. A point written twice is returned once.
//!
//! The commonest questions — one table's rows bucketed by time and grouped
//! by tags, numeric fields aggregated; one table's rows as they are,
//! filtered — are answered without DataFusion, by a direct path with the
//! same answers and without DataFusion's few milliseconds of planning (see
//! [`QueryEngine::sql_stream`]).
//!
//! Distributions: `quantiles(field, q1, q2, …)` (a list of floats,
//! interpolated as `percentile_cont`) and `cdf(field, n)` (a list of
//! `{value, fraction}` at fractions 1/n … 1) are exact aggregates over the
//! rows they see, e.g. `SELECT country, cdf(ttfb_us, 100) FROM probe_http
//! GROUP BY country`. Sketches (DDSketch, 1 % relative accuracy):
//! `sketch(field)` and `sketch_merge(sketch)` aggregate to a binary sketch,
//! `sketch_quantile(sketch, q)` reads a quantile from one.
//!
//! [`analytics`] answers the network questions (CDFs, quantile bands, the
//! failure rainbow, pivots) from query-string parameters, for the server's
//! `/api/v1/cdf` and friends.
//!
//! `last_rows('table')` is the latest row of every series of a raw table: each
//! data file is read in full once, the first time it is needed, and its
//! latest rows are kept in memory. Queries only read: statements that would
//! create, change or write anything are refused.

pub mod analytics;
mod direct;
mod distribution;
mod last_rows;
mod parquet_reader;
mod sketches;
mod table;
mod time_filter;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use store::Store;

pub use distribution::{cdf_udaf, quantiles_udaf, MAX_CDF_POINTS};
use last_rows::LastRowsFunction;
pub use sketches::{sketch_merge_udaf, sketch_quantile_udf, sketch_udaf};
pub use table::{StoreSchema, StoreTable};

/// The catalog name under which every database appears.
pub const CATALOG: &str = "weir";

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The database does not exist.
    #[error("database {0:?} not found")]
    DatabaseNotFound(String),
    /// The query engine refused or failed the query; its message says why.
    #[error(transparent)]
    Engine(#[from] DataFusionError),
}

/// Limits for the queries an engine runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryConfig {
    /// The most memory that all of the engine's running queries together
    /// may reserve for sorts, aggregations and joins (DataFusion's memory
    /// pool); a query that needs more fails with a "resources exhausted"
    /// error. `None`: no limit. Rows read from the store are not counted.
    pub memory_limit_bytes: Option<usize>,
}

/// Runs SQL against the databases of a [`Store`].
#[derive(Clone)]
pub struct QueryEngine {
    store: Arc<Store>,
    /// Shared by every query, so caches (Parquet footers and page indexes)
    /// outlive one query and its memory pool bounds all queries together.
    runtime: Arc<RuntimeEnv>,
    /// One session per database, built on its first query: building one
    /// registers hundreds of functions, which costs more than planning a
    /// small query. Sessions are shared safely: queries may not change
    /// them (see [`read_only`]), and each takes its own snapshot of the
    /// state, with its own start time for `now()`.
    sessions: Arc<Mutex<HashMap<String, SessionContext>>>,
    /// Footers and page indexes for the direct path (see [`QueryEngine::sql`]).
    direct_files: Arc<direct::MetadataCache>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("QueryEngine")
            .field("store", &self.store)
            .field("sessions", &sessions.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// An engine over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        QueryEngine {
            store,
            runtime: Arc::new(RuntimeEnv::default()),
            sessions: Arc::default(),
            direct_files: Arc::default(),
        }
    }

    /// An engine over `store` with the limits of `config`.
    pub fn with_config(store: Arc<Store>, config: QueryConfig) -> Result<Self, QueryError> {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = config.memory_limit_bytes {
            runtime = runtime.with_memory_limit(limit, 1.0);
        }
        Ok(QueryEngine {
            store,
            runtime: runtime.build_arc()?,
            sessions: Arc::default(),
            direct_files: Arc::default(),
        })
    }

    /// A DataFusion session whose default schema is database `db`: a copy
    /// of the engine's, so settings and functions a caller adds stay in it
    /// (its catalog is the engine's, whose tables come from the store).
    pub fn context(&self, db: &str) -> Result<SessionContext, QueryError> {
        Ok(SessionContext::new_with_state(self.session(db)?.state()))
    }

    /// The engine's session for database `db`, built on its first query.
    fn session(&self, db: &str) -> Result<SessionContext, QueryError> {
        if !self.store.has_database(db) {
            return Err(QueryError::DatabaseNotFound(db.to_owned()));
        }
        if let Some(ctx) = self.sessions_lock().get(db) {
            return Ok(ctx.clone());
        }
        // Built outside the lock: queries of other databases need not wait.
        let ctx = self.new_context(db)?;
        Ok(self
            .sessions_lock()
            .entry(db.to_owned())
            .or_insert(ctx)
            .clone())
    }

    fn sessions_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionContext>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for database `db`.
    fn new_context(&self, db: &str) -> Result<SessionContext, QueryError> {
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false)
            .with_default_catalog_and_schema(CATALOG, db);
        // Filters are evaluated while decoding, so rows they reject never
        // have their other columns decoded.
        let parquet = &mut config.options_mut().execution.parquet;
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
        // weir writes no bloom filters: looking for them costs each file
        // open a read for nothing.
        parquet.bloom_filter_on_read = false;
        // Partial aggregates still run in every scan partition; only the
        // final merge of their groups runs in one, which spares small
        // queries a hash repartition and its hand-offs between threads (a
        // trade: a final merge of very many groups gets one thread).
        config.options_mut().optimizer.repartition_aggregations = false;
        let ctx = SessionContext::new_with_config_rt(config, Arc::clone(&self.runtime));
        let catalog = MemoryCatalogProvider::new();
        catalog.register_schema(db, Arc::new(StoreSchema::new(Arc::clone(&self.store), db)))?;
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        ctx.register_udaf(distribution::quantiles_udaf());
        ctx.register_udaf(distribution::cdf_udaf());
        ctx.register_udaf(sketches::sketch_udaf());
        ctx.register_udaf(sketches::sketch_merge_udaf());
        ctx.register_udf(sketches::sketch_quantile_udf());
        ctx.register_udtf(
            "last_rows",
            Arc::new(LastRowsFunction::new(Arc::clone(&self.store), db)),
        );
        Ok(ctx)
    }

    /// Runs `sql` against database `db` and streams the result. Queries
    /// only read: statements that would create, change or write anything
    /// are refused.
    ///
    /// Time-bucketed aggregates of one table — `SELECT date_bin(INTERVAL
    /// '1 minute', time) AS minute, host, max(usage) AS peak FROM cpu WHERE
    /// host IN ('a', 'b') AND time >= '…' AND time < '…' GROUP BY 1, 2 ORDER
    /// BY 1, 2` and the like (`count`, `sum`, `min`, `max`, `avg` of numeric
    /// fields; tags by `=` or `IN`; `ORDER BY` and `LIMIT`; every computed
    /// column named with `AS`) and filtered rows of one table — `SELECT *
    /// FROM cpu WHERE usage > 90 AND host = 'a' AND time >= '…' ORDER BY
    /// time DESC LIMIT 10` and the like (`*` or plain columns; tags by `=`
    /// or `IN`; columns compared with numbers) — take a direct path that
    /// skips DataFusion's planning, which costs more than such a query's
    /// reading. Its answers are DataFusion's, column for column
    /// (floating-point sums and averages to the last bits, which depend on
    /// the order of addition, in DataFusion too); any other query, or one
    /// it cannot finish (an integer sum overflowing, over a million groups
    /// or rows), goes to DataFusion.
    pub async fn sql_stream(
        &self,
        db: &str,
        sql: &str,
    ) -> Result<SendableRecordBatchStream, QueryError> {
        if let Some((schema, batch)) = self.direct(db, sql).await {
            return Ok(Box::pin(MemoryStream::try_new(vec![batch], schema, None)?));
        }
        let df = self.session(db)?.sql_with_options(sql, read_only()).await?;
        Ok(df.execute_stream().await?)
    }

    /// Runs `sql` against database `db` and collects the result, as
    /// [`QueryEngine::sql_stream`].
    pub async fn sql(&self, db: &str, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        if let Some((_, batch)) = self.direct(db, sql).await {
            return Ok(vec![batch]);
        }
        self.sql_datafusion(db, sql).await
    }

    /// Runs `sql` with DataFusion alone, never the direct path: for tests
    /// and benchmarks that compare the two.
    pub async fn sql_datafusion(
        &self,
        db: &str,
        sql: &str,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let df = self.session(db)?.sql_with_options(sql, read_only()).await?;
        Ok(df.collect().await?)
    }

    /// Runs `sql` on the direct path alone: `None` if it does not take
    /// queries of this shape or gave up on this one (then
    /// [`QueryEngine::sql`] has DataFusion answer). For tests and
    /// benchmarks.
    pub async fn sql_direct(&self, db: &str, sql: &str) -> Option<RecordBatch> {
        self.direct(db, sql).await.map(|(_, batch)| batch)
    }

    /// The direct path's answer, if it gives one. One that reads few rows
    /// runs right here: a hop to a blocking thread and back would cost more.
    /// A bigger one runs on a blocking thread (it reads files) and stops if
    /// this future is dropped (a query timeout, a client gone).
    async fn direct(&self, db: &str, sql: &str) -> Option<(SchemaRef, RecordBatch)> {
        if !self.store.has_database(db) {
            return None;
        }
        let query = direct::recognise(sql)?;
        // A panic here (none is known) must not fail the query: DataFusion
        // answers instead, as it does when the blocking thread panics.
        let here = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            direct::answer(
                &self.store,
                &self.direct_files,
                db,
                &query,
                &AtomicBool::new(false),
                Some(DIRECT_INLINE_ROWS),
                None,
            )
        }));
        let scan = match here.ok()?.ok()? {
            direct::Outcome::Answer(answer) => return Some(answer),
            direct::Outcome::TooBig(scan) => scan,
        };
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&cancel.0);
        let (store, files, db) = (
            Arc::clone(&self.store),
            Arc::clone(&self.direct_files),
            db.to_owned(),
        );
        let answer = tokio::task::spawn_blocking(move || {
            direct::answer(&store, &files, &db, &query, &flag, None, Some(scan))
        });
        match answer.await.ok()?.ok()? {
            direct::Outcome::Answer(answer) => Some(answer),
            direct::Outcome::TooBig(_) => None,
        }
    }
}

/// Rows the direct path reads on the calling task; a query with more goes
/// to a blocking thread. 64 Ki rows take about a millisecond.
const DIRECT_INLINE_ROWS: usize = 64 * 1024;

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What a query may do: read. `CREATE`, `DROP`, `INSERT`, `COPY … TO` (which
/// would write files on the server) and `SET` are refused.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}
