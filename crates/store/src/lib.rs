//! weir's embedded storage engine: a catalog of typed columns, a write-ahead
//! log with group commit, a columnar (Arrow) write buffer, and Parquet files.
//!
//! A write is parsed, checked against the catalog (a field whose type
//! conflicts with its column rejects that line, the rest are kept), logged,
//! and acknowledged only once its log record is durable; by then its rows are
//! in the write buffer and every scan sees them. Reopening a data directory
//! replays the log, so nothing acknowledged is lost to a crash.
//!
//! When the buffer passes its budget (or its interval), a background thread
//! persists it: the log is cut at a segment boundary, the rows before the
//! cut are sorted by (series, time), deduplicated (a later write wins field
//! by field) and written as Parquet, one file per table and UTC day; the
//! manifest then names the files and the segments before the cut are
//! deleted. Scans read files, sealed and live buffer rows alike.
//!
//! A database may have a retention ([`Store::set_retention`]): older rows
//! are never returned from the moment it is set, are not persisted, and
//! their files are deleted by the next persist or the background thread.
//!
//! ```
//! use lineproto::Precision;
//! use store::{Store, StoreConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
//! let summary = store
//!     .write_lines("telemetry", b"cpu,host=a usage=0.5 1700000000\ncpu,host=b usage=oops", Precision::Seconds)
//!     .unwrap();
//! assert_eq!(summary.accepted, 1);
//! assert_eq!(summary.rejected[0].to_string(), r#"line 2, col 18: invalid field value "oops": expected a number, an integer (42i), an unsigned integer (42u), a boolean (t, T, true, True, TRUE, f, F, false, False, FALSE) or a "quoted string""#);
//!
//! let batches = store.scan("telemetry", "cpu").unwrap().unwrap();
//! assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
//! store.close();
//!
//! // Reopening replays the log: the acknowledged row is still there.
//! let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
//! assert_eq!(store.scan("telemetry", "cpu").unwrap().unwrap()[0].num_rows(), 1);
//! ```
//!
//! Files pile up one per persist; compaction (by the same background
//! thread, or [`Store::compact`]) merges a day's newest files, sorted and
//! deduplicated, once the day has [`COMPACT_AT_FILES`] files, size-tiered
//! so a large file is rewritten only when the newer data is comparable,
//! and a day that is over into one file.
//!
//! A point (series and time) written more than once is returned once, the
//! later write winning field by field: persist and compaction merge
//! duplicates for good, and scans ([`Store::plan_scan`]) merge the ones
//! still apart. Each file and buffer chunk knows whether it is *fresh*
//! (every row later than every earlier row of its series); only stale ones
//! are merged, with the earlier sources they overlap, so in-order ingest
//! costs queries nothing. Files a scan plans to read are leased, and
//! compaction or retention deletes a file only once its last lease is gone.
//!
//! The write buffer stays within its memory budget: a persist starts at
//! half of it, and writes wait while live and persisting rows fill it.
//!
//! Each persist also writes rollups of what it persists (per series,
//! bucket and numeric field: count, sum, min, max, DDSketch) at two grains,
//! half-hours and UTC days, read as tables `<table>_30m` and `<table>_1d`
//! with rows still in memory rolled up at scan time; compaction merges
//! their partial rows, and they have their own retention
//! ([`Store::set_rollup_retention`]). A database can keep none
//! ([`Store::set_rollups`]). A point written again after its first write
//! was sealed would be rolled up twice: its file is marked, the rollups do
//! not cover the table ([`Store::rollups_cover`]) until compaction merges
//! its day whole and rebuilds the day's rollups from it. See [`RollupGrain`].
//!
//! # On disk
//!
//! ```text
//! <data-dir>/LOCK                 held (flock) by the process that has the store open
//! <data-dir>/catalog.json         databases, tables, columns; replaced atomically
//! <data-dir>/manifest.json        Parquet files (table, time range, rows) and the last
//!                                 persisted log segment; replaced atomically
//! <data-dir>/wal/<20 digits>.wal  log segments after that one, replayed in order on open
//! <data-dir>/data/<12 digits>.parquet  rows of one table and UTC day, sorted by series
//!                                 and time; or the rollups of one table, grain and UTC day
//! ```

mod buffer;
pub mod catalog;
mod compact;
mod error;
mod last;
pub mod latency;
mod manifest;
mod merge;
mod persist;
mod rollup;
mod rows;
mod scan;
mod wal;

use std::fmt;
use std::fs::{self, File};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use lineproto::{Line, ParseOptions, Precision};

pub use buffer::{arrow_schema, arrow_type};
pub use catalog::{Catalog, Column, ColumnKind, FieldType, TableSchema};
pub use compact::{MAX_COLD_MERGE_BYTES, MAX_FILES_PER_DAY};
pub use error::StoreError;
pub use manifest::ParquetFile;
pub use rollup::{rollup_table_name, RollupGrain, ROLLUP_NANOS, ROLLUP_ROWS_COLUMN, ROLLUP_SUFFIX};
pub use rows::PREPARE_MIN_ROWS;
pub use scan::{FileLease, ScanFile, TableScan};
pub use wal::WalConfig;

use buffer::{align, Buffer};
use catalog::sync_dir;
use manifest::Manifest;
use rollup::RollupLayout;
use scan::FileLeases;
use wal::Wal;

/// How a store behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Write-ahead log settings: sync mode, flush interval, segment size.
    pub wal: WalConfig,
    /// Create a database on its first write; otherwise such a write fails
    /// with [`StoreError::DatabaseNotFound`].
    pub auto_create_databases: bool,
    /// Size limits for lines and tokens of incoming line protocol.
    pub max_line_bytes: usize,
    /// The longest token accepted in a line.
    pub max_token_bytes: usize,
    /// Memory budget of the write buffer, in bytes: rows of big writes
    /// (built into Arrow by their writer, or when the log is replayed) count
    /// their Arrow size, rows appended line by line (writes with fewer than
    /// [`PREPARE_MIN_ROWS`] rows of a table) the length of their line
    /// protocol.
    /// A persist starts when the rows
    /// written since the last one reach half of it, and while live and
    /// persisting rows together fill it, writes wait (with the background
    /// persister; at most [`MAX_WRITE_WAIT`], then they fail with
    /// [`StoreError::BufferFull`]). At most [`MAX_BUFFER_BUDGET_BYTES`]
    /// (a larger value counts as that).
    pub buffer_budget_bytes: usize,
    /// Persist buffered rows at least this often.
    pub persist_interval: Duration,
    /// Run the background persister; without it only [`Store::persist`]
    /// persists.
    pub background_persist: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            wal: WalConfig::default(),
            auto_create_databases: true,
            max_line_bytes: ParseOptions::DEFAULT_MAX_LINE_BYTES,
            max_token_bytes: ParseOptions::DEFAULT_MAX_TOKEN_BYTES,
            buffer_budget_bytes: 256 << 20,
            persist_interval: Duration::from_secs(600),
            background_persist: true,
        }
    }
}

/// A line of a write that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLine {
    /// 1-based physical line of the batch.
    pub line: usize,
    /// 1-based byte column, when the problem has one position.
    pub column: Option<usize>,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for RejectedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(col) => write!(f, "line {}, col {col}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// What became of a write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Lines stored (durable when the write returned).
    pub accepted: usize,
    /// Lines refused, in input order.
    pub rejected: Vec<RejectedLine>,
}

/// What a persist did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistSummary {
    /// Rows written (after dropping duplicates).
    pub rows: usize,
    /// Raw data files written.
    pub files: usize,
    /// Bytes of raw data files written.
    pub bytes: u64,
    /// Rollup files written (one per table, grain and day with rows).
    pub rollup_files: usize,
}

/// The storage engine over one data directory.
#[derive(Debug)]
pub struct Store {
    inner: Arc<Inner>,
    persister: Option<Persister>,
}

/// The store's state, shared with the background persister.
#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    config: StoreConfig,
    catalog: Mutex<Catalog>,
    buffer: Arc<RwLock<Buffer>>,
    wal: Wal,
    /// Data files being read, kept from deletion until they are read.
    leases: Arc<FileLeases>,
    /// Serialises everything that changes the manifest (persist, compact,
    /// expire); holds when the last persist started.
    persist_lock: Mutex<Instant>,
    /// Wakes the persister (budget passed) or stops it (`true`).
    persist_signal: Arc<(Mutex<bool>, Condvar)>,
    /// Wakes writers waiting for room in the buffer after a persist.
    room: (Mutex<()>, Condvar),
    /// The latest row of each series in each data file, once asked for.
    last_rows: Mutex<last::LastRowsCache>,
    /// Held open for its lock for as long as the store is open.
    _lock: File,
}

/// The background thread that persists when the buffer passes its budget
/// or its interval.
#[derive(Debug)]
struct Persister {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    fn start(inner: Arc<Inner>) -> Result<Self, StoreError> {
        let stop = Arc::clone(&inner.persist_signal);
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("weir-persist".into())
            .spawn(move || {
                let mut wakes: u64 = 0;
                loop {
                    let (flag, wake) = &*signal;
                    let stopped = lock(flag);
                    // A stop that came while persisting must not wait out the timeout.
                    if *stopped {
                        return;
                    }
                    let (stopped, _) = wake
                        .wait_timeout(stopped, Duration::from_secs(1))
                        .unwrap_or_else(|p| p.into_inner());
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    wakes += 1;
                    // A panic must not end background persistence unnoticed.
                    let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let persisted = inner.needs_persist();
                        if persisted {
                            if let Err(e) = inner.persist() {
                                tracing::error!("persisting the write buffer: {e}");
                            }
                        }
                        // Also soon after opening: a day left with
                        // overlapping files by the last run's final persist
                        // is merged at query time until compaction runs.
                        if persisted || wakes == 1 || wakes.is_multiple_of(60) {
                            if let Err(e) = inner.expire() {
                                tracing::error!("deleting expired files: {e}");
                            }
                            if let Err(e) = inner.compact() {
                                tracing::error!("compacting files: {e}");
                            }
                        }
                    }));
                    if round.is_err() {
                        tracing::error!("the persister panicked; it carries on");
                    }
                }
            })
            .map_err(|e| StoreError::io("starting the persister for", &PathBuf::new(), e))?;
        Ok(Persister {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        let (flag, wake) = &*self.stop;
        *lock(flag) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the persister thread panicked");
            }
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and replays its log.
    /// Fails if another process has it open.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        let inner = Arc::new(Inner::open(dir, config)?);
        let persister = if config.background_persist {
            Some(Persister::start(Arc::clone(&inner))?)
        } else {
            None
        };
        Ok(Store { inner, persister })
    }

    /// Stores the lines of `body` in database `db`. Lines without a
    /// timestamp get the current time. Bad lines are reported in the
    /// summary and the rest are stored; the call returns once they are
    /// durable and visible to scans.
    pub fn write_lines(
        &self,
        db: &str,
        body: &[u8],
        precision: Precision,
    ) -> Result<WriteSummary, StoreError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        let now = i64::try_from(now).unwrap_or(i64::MAX - 1);
        self.inner.write_lines_at(db, body, precision, now)
    }

    /// [`Store::write_lines`] with `default_time` (ns) for lines without a
    /// timestamp.
    pub fn write_lines_at(
        &self,
        db: &str,
        body: &[u8],
        precision: Precision,
        default_time: i64,
    ) -> Result<WriteSummary, StoreError> {
        self.inner.write_lines_at(db, body, precision, default_time)
    }

    /// Creates database `db` if it does not exist; returns whether it is new.
    pub fn create_database(&self, db: &str) -> Result<bool, StoreError> {
        self.inner.create_database(db)
    }

    /// A copy of the catalog.
    pub fn catalog(&self) -> Catalog {
        lock(&self.inner.catalog).clone()
    }

    /// Whether database `db` exists (without copying the catalog).
    pub fn has_database(&self, db: &str) -> bool {
        lock(&self.inner.catalog).databases.contains_key(db)
    }

    /// The names of every database, in order.
    pub fn database_names(&self) -> Vec<String> {
        lock(&self.inner.catalog)
            .databases
            .keys()
            .cloned()
            .collect()
    }

    /// How long each fsync of the write-ahead log took (none are counted
    /// when [`WalConfig::sync`] is off).
    pub fn wal_sync_latency(&self) -> &latency::LatencyHistogram {
        self.inner.wal.sync_latency()
    }

    /// The names of the tables of database `db`, in order (none if there
    /// is no such database).
    /// Each raw table `t` has rollup tables `t_30m` and `t_1d` (unless a
    /// raw table has that name).
    pub fn table_names(&self, db: &str) -> Vec<String> {
        let catalog = lock(&self.inner.catalog);
        let Some(database) = catalog.databases.get(db) else {
            return Vec::new();
        };
        let mut names: Vec<String> = database.tables.keys().cloned().collect();
        let rollups: Vec<String> = names
            .iter()
            .flat_map(|t| RollupGrain::ALL.map(|g| g.table_name(t)))
            .filter(|r| !database.tables.contains_key(r))
            .collect();
        names.extend(rollups);
        names.sort();
        names
    }

    /// The Arrow schema of `db.table`, if the table exists: a raw table's
    /// from the catalog, a rollup table's (`<raw>_30m`, `<raw>_1d`) derived
    /// from its raw table's (see [`RollupGrain`]).
    pub fn table_schema(&self, db: &str, table: &str) -> Option<SchemaRef> {
        match resolve_table(&lock(&self.inner.catalog), db, table)? {
            TableKind::Raw(schema) => Some(schema),
            TableKind::Rollup { layout, .. } => Some(layout.schema),
        }
    }

    /// Whether every UTC day of raw table `db.table` that has persisted
    /// files also has rollup files at `grain` (false for data stored before
    /// weir wrote them, until compaction derives them or the day is
    /// rewritten), no raw file was written while the database kept no
    /// rollups ([`Store::set_rollups`]), and no rows that may repeat
    /// persisted ones (same series and time, written again: the rollups
    /// would count both) wait, in memory or in a file, for compaction to
    /// rebuild their day's rollups. For daily rollups a day counts when it has raw or
    /// half-hour files and starts at or after [`Store::first_whole_rollup_day`].
    pub fn rollups_cover(&self, db: &str, table: &str, grain: RollupGrain) -> bool {
        self.rollups_cover_range(db, table, grain, i64::MIN..i64::MAX)
    }

    /// [`Store::rollups_cover`] for the rows in `time` (ns, end exclusive)
    /// only: whether the rollups answer a question about those.
    pub fn rollups_cover_range(
        &self,
        db: &str,
        table: &str,
        grain: RollupGrain,
        time: std::ops::Range<i64>,
    ) -> bool {
        let from = self.first_whole_rollup_day(db);
        let rollup = grain.table_name(table);
        let half_hour = RollupGrain::HalfHour.table_name(table);
        let buffer = read_lock(&self.inner.buffer);
        let files = &buffer.manifest.files;
        let day = |f: &ParquetFile| f.min_time.div_euclid(persist::DAY_NANOS);
        let rolled: std::collections::HashSet<i64> = files
            .iter()
            .filter(|f| f.rollup && f.db == db && f.table == rollup)
            .map(day)
            .collect();
        files
            .iter()
            .filter(|f| {
                f.db == db
                    && ((!f.rollup && f.table == table)
                        || (grain == RollupGrain::Day && f.rollup && f.table == half_hour))
            })
            .filter(|f| f.min_time < time.end && time.start <= f.max_time)
            .filter(|f| {
                grain != RollupGrain::Day || day(f).saturating_mul(persist::DAY_NANOS) >= from
            })
            .all(|f| !f.unrolled && !f.repeats && rolled.contains(&day(f)))
            && !buffer.may_repeat_persisted(db, table, &time)
    }

    /// The first UTC midnight (ns) from which database `db`'s daily rollup
    /// rows are whole: the day that holds the rollup retention's cutoff
    /// keeps only its half-hours after it, so its daily row is dropped.
    pub fn first_whole_rollup_day(&self, db: &str) -> i64 {
        rollup_cutoff(&lock(&self.inner.catalog), db).map_or(i64::MIN, |c| {
            RollupGrain::Day
                .floor(c)
                .saturating_add(if c.rem_euclid(persist::DAY_NANOS) == 0 {
                    0
                } else {
                    persist::DAY_NANOS
                })
        })
    }

    /// Whether `db.table` is a rollup table (`<raw>_30m` or `<raw>_1d`,
    /// no raw table of that name).
    pub fn is_rollup_table(&self, db: &str, table: &str) -> bool {
        matches!(
            resolve_table(&lock(&self.inner.catalog), db, table),
            Some(TableKind::Rollup { .. })
        )
    }

    /// Every stored row of `db.table` (each point once) as record batches
    /// with the table's current schema, or `None` if there is no such
    /// table. Reads every file into memory: for tools and tests; queries
    /// use [`Store::plan_scan`].
    pub fn scan(&self, db: &str, table: &str) -> Result<Option<Vec<RecordBatch>>, StoreError> {
        let Some(schema) = self.table_schema(db, table) else {
            return Ok(None);
        };
        let plan = self
            .inner
            .plan_scan(db, table, &schema, &(i64::MIN..=i64::MAX))?;
        let mut batches = Vec::new();
        for file in &plan.files {
            for batch in persist::read_parquet(&file.path)? {
                let batch = align(&batch, &schema, table)?;
                batches.push(keep_after(&batch, plan.keep_from, table)?);
            }
        }
        batches.extend(plan.batches);
        Ok(Some(batches))
    }

    /// What a query of `db.table` reads: Parquet files to read as they are
    /// and rows from memory, together every point once, with exactly
    /// `schema` (columns it lacks read as null, columns added since are left
    /// out: what a query planned against an earlier schema needs). Files and
    /// chunks holding no row in `time` (nanoseconds, inclusive) are skipped;
    /// the rest may still hold rows outside it.
    pub fn plan_scan(
        &self,
        db: &str,
        table: &str,
        schema: &SchemaRef,
        time: &RangeInclusive<i64>,
    ) -> Result<TableScan, StoreError> {
        self.inner.plan_scan(db, table, schema, time)
    }

    /// The latest row of every series of `db.table` (the current state of
    /// each host, interface, path …), with exactly `schema` (as
    /// [`Store::plan_scan`]), sorted by series. Each data file is read in
    /// full the first time it is needed (a new persist or compaction output
    /// is read by the next call) and its latest rows are kept while the
    /// file lives; rows in memory are reduced on every call. Series whose
    /// latest row is past the database's retention are left out. The work
    /// runs to its end even if the query that asked is cancelled.
    pub fn last_rows(
        &self,
        db: &str,
        table: &str,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, StoreError> {
        let scan = self
            .inner
            .plan_scan(db, table, schema, &(i64::MIN..=i64::MAX))?;
        let rows = last::last_rows(table, schema, &scan, &self.inner.last_rows)?;
        // Forget files compaction or retention has dropped meanwhile.
        let live: std::collections::HashSet<String> =
            self.files().into_iter().map(|f| f.name).collect();
        lock(&self.inner.last_rows).retain(|name| live.contains(name));
        Ok(rows)
    }

    /// Sets how long raw rows of database `db` are kept (`None`: forever).
    /// Older rows are never returned from then on; their files are deleted
    /// by the next persist or the background persister.
    pub fn set_retention(&self, db: &str, retention: Option<Duration>) -> Result<(), StoreError> {
        self.save_retention(db, retention, |d| &mut d.retention_secs)
    }

    /// Sets how long the rollups (every grain) of database `db` are kept
    /// (`None`: forever), separately from its raw rows.
    pub fn set_rollup_retention(
        &self,
        db: &str,
        retention: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.save_retention(db, retention, |d| &mut d.rollup_retention_secs)
    }

    /// Sets whether persists write rollups of database `db`'s tables (on
    /// for a new database). Rows persisted while they are off are not in
    /// the rollups: [`Store::rollups_cover`] is false for their tables
    /// until, rollups on again, compaction rolls up their days (those
    /// wholly within the raw retention), or retention deletes the rows.
    pub fn set_rollups(&self, db: &str, on: bool) -> Result<(), StoreError> {
        self.update_database(db, |d| d.rollups_off = !on)
    }

    /// Whether persists write rollups of database `db`'s tables.
    pub fn keeps_rollups(&self, db: &str) -> bool {
        keeps_rollups(&lock(&self.inner.catalog), db)
    }

    /// Sets the retention `slot` picks in database `db`'s catalog entry and
    /// saves the catalog.
    fn save_retention(
        &self,
        db: &str,
        retention: Option<Duration>,
        slot: fn(&mut catalog::DatabaseSchema) -> &mut Option<u64>,
    ) -> Result<(), StoreError> {
        if retention.is_some_and(|d| d.as_secs() == 0) {
            return Err(StoreError::InvalidRetention);
        }
        self.update_database(db, |d| *slot(d) = retention.map(|d| d.as_secs()))
    }

    /// Changes database `db`'s catalog entry with `change` and saves the
    /// catalog.
    fn update_database(
        &self,
        db: &str,
        change: impl FnOnce(&mut catalog::DatabaseSchema),
    ) -> Result<(), StoreError> {
        let mut catalog = lock(&self.inner.catalog);
        let mut next = catalog.clone();
        let database = next
            .databases
            .get_mut(db)
            .ok_or_else(|| StoreError::DatabaseNotFound(db.to_owned()))?;
        change(database);
        next.save(&self.inner.dir.join("catalog.json"))?;
        *catalog = next;
        Ok(())
    }

    /// Merges the files of each (database, table, day) that has piled up
    /// files into one, dropping duplicates (for rollup tables: merging the
    /// partial rows of each series and bucket); returns how many
    /// (table, day) pairs it merged, rollup tables included. A raw day
    /// whose rows are not in its rollups once each (points written again,
    /// rows persisted while rollups were off) is merged whole and its
    /// rollups are rebuilt from it, counting as one pair.
    /// The background persister does this by itself.
    pub fn compact(&self) -> Result<usize, StoreError> {
        self.inner.compact()
    }

    /// Deletes the files whose rows are all past their database's
    /// retention; returns how many.
    pub fn expire(&self) -> Result<usize, StoreError> {
        self.inner.expire()
    }

    /// Writes every buffered row to Parquet now, then releases the log
    /// segments that held them.
    pub fn persist(&self) -> Result<PersistSummary, StoreError> {
        self.inner.persist()
    }

    /// The persisted Parquet files of raw rows.
    pub fn files(&self) -> Vec<ParquetFile> {
        let buffer = read_lock(&self.inner.buffer);
        buffer
            .manifest
            .files
            .iter()
            .filter(|f| !f.rollup)
            .cloned()
            .collect()
    }

    /// The persisted Parquet files of rollups, every grain.
    pub fn rollup_files(&self) -> Vec<ParquetFile> {
        let buffer = read_lock(&self.inner.buffer);
        buffer
            .manifest
            .files
            .iter()
            .filter(|f| f.rollup)
            .cloned()
            .collect()
    }

    /// Rows held in memory (not yet persisted), across all tables.
    pub fn buffered_rows(&self) -> usize {
        read_lock(&self.inner.buffer).rows()
    }

    /// Memory of the rows held in the write buffer, live and being
    /// persisted, counted as [`StoreConfig::buffer_budget_bytes`] says:
    /// what that budget bounds.
    pub fn buffered_bytes(&self) -> usize {
        read_lock(&self.inner.buffer).buffered_bytes()
    }

    /// Stops the persister, commits queued writes and closes the log.
    /// Buffered rows stay in the log and are replayed on the next open.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut persister) = self.persister.take() {
            persister.stop();
        }
        self.inner.wal.close();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The largest write buffer budget: its text columns (never more bytes
/// than the budget counts) must stay below Arrow's 2 GiB offsets. A persist
/// sorts one generation (up to half the budget, counted as the budget
/// counts) in memory, and its sort keys spell tags out in full per row, so
/// it can take a few times that at its peak.
pub const MAX_BUFFER_BUDGET_BYTES: usize = 1 << 30;

/// The longest a write waits for room in a full write buffer.
pub const MAX_WRITE_WAIT: Duration = Duration::from_secs(30);

/// A day with this many files is compacted (size-tiered) even while it is
/// current.
pub const COMPACT_AT_FILES: usize = 8;

/// The largest line a store accepts, whatever its configuration says.
const MAX_LINE_BYTES: usize = 64 << 20;
/// The largest write (as logged) a store accepts: one log record.
const MAX_WRITE_BYTES: usize = wal::MAX_RECORD_BYTES;

/// Version byte of log records that hold re-encoded lines, timestamps in
/// nanoseconds (written before weir logged lines as received; still read).
const RECORD_LINES_V1: u8 = 1;
/// Version byte of log records that hold lines as received, with their
/// precision and the time of lines without one.
const RECORD_LINES_V2: u8 = 2;

impl Inner {
    fn open(dir: &Path, mut config: StoreConfig) -> Result<Inner, StoreError> {
        config.buffer_budget_bytes = config.buffer_budget_bytes.min(MAX_BUFFER_BUDGET_BYTES);
        fs::create_dir_all(dir).map_err(|e| StoreError::io("creating data directory", dir, e))?;
        // Files are handed to readers by path (DataFusion needs absolute
        // ones), and a later change of working directory must not move them.
        let dir = &std::path::absolute(dir)
            .map_err(|e| StoreError::io("resolving data directory", dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path)
            .map_err(|e| StoreError::io("creating lock file", &lock_path, e))?;
        lock.try_lock()
            .map_err(|_| StoreError::Locked(dir.to_owned()))?;

        let catalog_path = dir.join("catalog.json");
        let mut catalog = Catalog::load(&catalog_path)?;
        let before = catalog.clone();
        let data_dir = dir.join("data");
        fs::create_dir_all(&data_dir)
            .map_err(|e| StoreError::io("creating data directory", &data_dir, e))?;
        sync_dir(dir)?;
        let manifest_path = dir.join("manifest.json");
        let manifest = Manifest::load(&manifest_path)?;
        remove_orphan_files(&data_dir, &manifest, manifest_path.exists())?;
        // Written before any persist, so a first persist that crashes
        // leaves orphans to remove rather than a missing manifest.
        if !manifest_path.exists() {
            manifest.save(&manifest_path)?;
        }
        let buffer = Arc::new(RwLock::new(Buffer::default()));
        let leases = Arc::new(FileLeases::new(&data_dir));
        let sink = Arc::clone(&buffer);
        let sealer = Arc::clone(&buffer);
        let persist_signal = Arc::new((Mutex::new(false), Condvar::new()));
        let wake = Arc::clone(&persist_signal);
        let persist_at = config.buffer_budget_bytes / 2;
        let mut replayed = Buffer::new(manifest);
        let wal = Wal::open(
            &dir.join("wal"),
            config.wal,
            replayed.manifest.persisted_through_segment,
            |payload| replay_record(payload, &mut catalog, &mut replayed),
            Box::new(move |payload, prepared| {
                if apply_record(payload, prepared, &sink) >= persist_at {
                    wake.1.notify_all();
                }
            }),
            Box::new(move || write_lock(&sealer).seal()),
        )?;
        *write_lock(&buffer) = replayed;
        // Saved even when empty: its presence marks a weir data directory.
        if catalog != before || !catalog_path.exists() {
            catalog.save(&catalog_path)?;
        }
        Ok(Inner {
            dir: dir.to_owned(),
            config,
            catalog: Mutex::new(catalog),
            buffer,
            wal,
            leases,
            persist_lock: Mutex::new(Instant::now()),
            persist_signal,
            room: (Mutex::new(()), Condvar::new()),
            last_rows: Mutex::default(),
            _lock: lock,
        })
    }

    /// Whether the buffer passed its budget, or holds rows and the last
    /// persist (or the open) began at least the persist interval ago.
    fn needs_persist(&self) -> bool {
        let (bytes, rows, sealed) = {
            let buffer = read_lock(&self.buffer);
            (
                buffer.buffered_bytes(),
                buffer.rows(),
                !buffer.sealed.is_empty(),
            )
        };
        let last = *lock(&self.persist_lock);
        // Sealed rows left by a failed persist are retried (once a second
        // at most: the persister's wake interval), or writes would wait for
        // room that never comes.
        bytes >= self.config.buffer_budget_bytes / 2
            || sealed
            || (rows > 0 && last.elapsed() >= self.config.persist_interval)
    }

    /// Seals the buffer at a log segment boundary, writes the sealed rows
    /// to Parquet, registers the files, then drops the sealed rows and the
    /// segments that held them. A crash at any point loses nothing: until
    /// the manifest names the files, the log still holds their rows.
    fn persist(&self) -> Result<PersistSummary, StoreError> {
        let mut last = lock(&self.persist_lock);
        *last = Instant::now();
        // Under the catalog lock no writer is between its schema check and
        // its log submission, so the rotation cuts between whole writes.
        let closed = {
            let _writers = lock(&self.catalog);
            self.wal.rotate()?
        };
        let catalog = lock(&self.catalog).clone();
        let (sealed, mut next_file) = {
            let buffer = read_lock(&self.buffer);
            (buffer.sealed.clone(), buffer.manifest.next_file)
        };
        let mut summary = PersistSummary::default();
        let mut files = Vec::new();
        // Days persisted before weir wrote daily rollups: compaction
        // derives their daily rows from all their half-hour rows at once, so
        // a late row for one must not start a daily file of its own.
        let undaily = read_lock(&self.buffer)
            .manifest
            .days_without_daily_rollups();
        for generation in &sealed {
            let mut tables: Vec<_> = generation.tables.iter().collect();
            tables.sort_by(|a, b| a.0.cmp(b.0));
            for ((db, table), chunks) in tables {
                // Cannot happen (lines are admitted before they are logged);
                // failing keeps the generation and its log segments.
                let Some(schema) = catalog.table(db, table).map(arrow_schema) else {
                    return Err(StoreError::CorruptCatalog {
                        path: self.dir.join("catalog.json"),
                        reason: format!("table {db}.{table} is buffered but not in the catalog"),
                    });
                };
                let cutoff = retention_cutoff(&catalog, db);
                let batches = chunks
                    .iter()
                    .map(|c| align(&c.batch, &schema, table))
                    .collect::<Result<Vec<_>, _>>()?;
                let fresh = chunks.iter().all(|c| c.fresh);
                let may_repeat = chunks.iter().any(|c| c.repeats);
                let sorted = persist::sort_dedup(table, &schema, &batches)?;
                let layout = RollupLayout::of(&schema);
                let keeps_rollups = keeps_rollups(&catalog, db);
                for day in persist::split_by_day(table, &sorted)? {
                    // Rollups may outlive raw rows: each has its own cutoff.
                    let mut rollups = Vec::with_capacity(RollupGrain::ALL.len());
                    let day_number =
                        persist::time_bounds(&day).map(|(t, _)| t.div_euclid(persist::DAY_NANOS));
                    let grains = if keeps_rollups {
                        &RollupGrain::ALL[..]
                    } else {
                        &[]
                    };
                    for &grain in grains {
                        let pre_daily = day_number
                            .is_some_and(|d| undaily.contains(&(db.clone(), table.clone(), d)));
                        if grain == RollupGrain::Day && pre_daily {
                            continue;
                        }
                        let rolled = layout.summarise(table, &day, grain)?;
                        let kept = keep_after(&rolled, rollup_cutoff(&catalog, db), table)?;
                        rollups.push((grain.table_name(table), kept));
                    }
                    // A day over the time of an earlier raw file may repeat
                    // its rows, which these rollups would count again. (The
                    // manifest changes only under `persist_lock`, held here.)
                    let repeats = keeps_rollups
                        && may_repeat
                        && persist::time_bounds(&day).is_some_and(|(min, max)| {
                            let buffer = read_lock(&self.buffer);
                            buffer.manifest.files.iter().chain(&files).any(|f| {
                                !f.rollup
                                    && f.db == *db
                                    && f.table == *table
                                    && f.min_time <= max
                                    && min <= f.max_time
                            })
                        });
                    let day = std::iter::once(keep_after(&day, cutoff, table));
                    if let Some(mut file) =
                        self.write_file((db, table), next_file + 1, &schema, day, fresh, false)?
                    {
                        file.unrolled = !keeps_rollups;
                        file.repeats = repeats;
                        next_file += 1;
                        summary.rows += file.rows;
                        summary.files += 1;
                        summary.bytes += file.bytes;
                        files.push(file);
                    }
                    for (rollup_table, rows) in rollups {
                        let written = self.write_file(
                            (db, &rollup_table),
                            next_file + 1,
                            &layout.schema,
                            std::iter::once(Ok(rows)),
                            true,
                            true,
                        )?;
                        if let Some(file) = written {
                            next_file += 1;
                            summary.rollup_files += 1;
                            files.push(file);
                        }
                    }
                }
            }
        }
        // Whatever changes the manifest holds `persist_lock`, as we do:
        // it can be saved before the swap, outside the buffer lock.
        let mut manifest = read_lock(&self.buffer).manifest.clone();
        manifest.files.extend(files);
        manifest.next_file = next_file;
        manifest.persisted_through_segment = closed;
        self.save_manifest(&manifest)?;
        {
            let mut buffer = write_lock(&self.buffer);
            buffer.manifest = manifest;
            let done: Vec<u64> = sealed.iter().map(|g| g.id).collect();
            buffer.sealed.retain(|g| !done.contains(&g.id));
        }
        self.room.1.notify_all();
        self.wal.remove_through(closed)?;
        if let Err(e) = self.expire_locked() {
            tracing::error!("deleting expired files: {e}");
        }
        Ok(summary)
    }

    /// The earliest time (ns) database `db` still returns, if it has a
    /// retention.
    fn cutoff(&self, db: &str) -> Option<i64> {
        retention_cutoff(&lock(&self.catalog), db)
    }

    /// The path of data file `name`.
    fn data_file(&self, name: &str) -> PathBuf {
        self.dir.join("data").join(name)
    }

    /// Writes `batches` (one table, one day, sorted, with `schema`) as data
    /// file `number`; `None` if they hold no row. `fresh` and `rollup`: see
    /// [`ParquetFile`].
    fn write_file(
        &self,
        (db, table): (&str, &str),
        number: u64,
        schema: &SchemaRef,
        batches: impl IntoIterator<Item = Result<RecordBatch, StoreError>>,
        fresh: bool,
        rollup: bool,
    ) -> Result<Option<ParquetFile>, StoreError> {
        let name = format!("{number:012}.parquet");
        let daily = rollup && matches!(RollupGrain::of_table(table), Some((_, RollupGrain::Day)));
        let Some(written) = persist::write_parquet(&self.data_file(&name), schema, batches, daily)?
        else {
            return Ok(None);
        };
        Ok(Some(ParquetFile {
            db: db.to_owned(),
            table: table.to_owned(),
            name,
            min_time: written.min_time,
            max_time: written.max_time,
            rows: written.rows,
            bytes: written.bytes,
            fresh,
            rollup,
            unrolled: false,
            repeats: false,
        }))
    }

    /// Saves `manifest`; after a failure (the save may still have landed)
    /// the numbers it used are never handed out again.
    fn save_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let saved = manifest.save(&self.dir.join("manifest.json"));
        if saved.is_err() {
            let mut buffer = write_lock(&self.buffer);
            buffer.manifest.next_file = buffer.manifest.next_file.max(manifest.next_file);
        }
        saved
    }

    fn write_lines_at(
        &self,
        db: &str,
        body: &[u8],
        precision: Precision,
        default_time: i64,
    ) -> Result<WriteSummary, StoreError> {
        check_database_name(db)?;
        let opts = ParseOptions {
            precision,
            // Capped so one column of one buffer chunk stays far below
            // Arrow's 2 GiB offset limit.
            max_line_bytes: self.config.max_line_bytes.min(MAX_LINE_BYTES),
            max_token_bytes: self.config.max_token_bytes.min(MAX_LINE_BYTES),
        };
        let mut summary = WriteSummary::default();
        // Parse outside the lock; only the schema check and the queueing
        // are serialised between writers. The log record holds the lines as
        // written, with what is needed to read them again the same way.
        let mut encoded = record_header(db, precision, default_time);
        let mut parsed = Vec::new();
        let mut lines = opts.parse(body);
        let default_time_ok = (lineproto::MIN_TIMESTAMP_NANOS..=lineproto::MAX_TIMESTAMP_NANOS)
            .contains(&default_time);
        while let Some(item) = lines.next() {
            match item {
                Ok(line) if line.timestamp.is_none() && !default_time_ok => {
                    summary.rejected.push(RejectedLine {
                        line: lines.line_number(),
                        column: None,
                        reason: format!(
                            "the line has no timestamp and the write time ({default_time} ns) is outside the accepted range"
                        ),
                    });
                }
                Ok(mut line) => {
                    line.timestamp.get_or_insert(default_time);
                    let start = encoded.len();
                    encoded.extend_from_slice(body.get(lines.span()).unwrap_or_default());
                    parsed.push((lines.line_number(), line, start..encoded.len()));
                }
                Err(e) => summary.rejected.push(RejectedLine {
                    line: e.line,
                    column: Some(e.column),
                    reason: e.kind.to_string(),
                }),
            }
        }

        if encoded.len() > MAX_WRITE_BYTES {
            return Err(StoreError::WriteTooLarge {
                bytes: encoded.len(),
                limit: MAX_WRITE_BYTES,
            });
        }
        if !parsed.is_empty() {
            self.wait_for_room()?;
        }
        // Big writes are built into Arrow here, by each writer in parallel,
        // rather than by the one log thread once they are durable.
        let mut prepared =
            rows::prepare(parsed.iter().map(|(_, line, _)| line)).unwrap_or_else(|e| {
                tracing::warn!("building a write's rows ahead of the log: {e}");
                None
            });
        let pending = {
            let mut catalog = lock(&self.catalog);
            let mut changed = false;
            if !catalog.databases.contains_key(db) {
                if !self.config.auto_create_databases {
                    return Err(StoreError::DatabaseNotFound(db.to_owned()));
                }
                changed |= catalog.create_database(db);
            }
            // Built only once a line is refused; until then `encoded` is it.
            let mut payload: Option<Vec<u8>> = None;
            catalog.admit_all(db, parsed.iter().map(|(_, line, _)| line), |i, verdict| {
                let (line_number, _, range) = &parsed[i];
                match verdict {
                    Ok(c) => {
                        changed |= c;
                        summary.accepted += 1;
                        if let Some(p) = &mut payload {
                            p.extend_from_slice(&encoded[range.clone()]);
                        }
                    }
                    Err(conflict) => {
                        summary.rejected.push(RejectedLine {
                            line: *line_number,
                            column: None,
                            reason: conflict.to_string(),
                        });
                        // Everything before this line was accepted; the
                        // rows built ahead hold this one, so the record is
                        // applied from its lines instead.
                        payload.get_or_insert_with(|| encoded[..range.start].to_vec());
                        prepared = None;
                    }
                }
            });
            if changed {
                catalog.save(&self.dir.join("catalog.json"))?;
            }
            // Queued under the catalog lock so the log's order is the order
            // in which lines were checked against the schema.
            if summary.accepted > 0 {
                Some(self.wal.submit(payload.unwrap_or(encoded), prepared)?)
            } else {
                None
            }
        };
        summary.rejected.sort_by_key(|r| r.line);
        if let Some(pending) = pending {
            pending.wait()?;
        }
        Ok(summary)
    }

    /// Waits while the write buffer is full (live and persisting rows
    /// together reach the budget) for the background persister to make
    /// room; without one, never waits.
    fn wait_for_room(&self) -> Result<(), StoreError> {
        if !self.config.background_persist {
            return Ok(());
        }
        let full = || read_lock(&self.buffer).buffered_bytes() >= self.config.buffer_budget_bytes;
        if !full() {
            return Ok(());
        }
        let started = Instant::now();
        let (mutex, condvar) = &self.room;
        let mut guard = lock(mutex);
        while full() {
            let waited = started.elapsed();
            if waited >= MAX_WRITE_WAIT {
                return Err(StoreError::BufferFull { waited });
            }
            // Wake the persister in case the last apply's signal was missed.
            self.persist_signal.1.notify_all();
            // Bounded, so a wake-up between the check and the wait is late, not lost.
            guard = condvar
                .wait_timeout(guard, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    fn create_database(&self, db: &str) -> Result<bool, StoreError> {
        check_database_name(db)?;
        let mut catalog = lock(&self.catalog);
        if !catalog.create_database(db) {
            return Ok(false);
        }
        catalog.save(&self.dir.join("catalog.json"))?;
        Ok(true)
    }
}

/// Locks `m`, recovering the data if another thread panicked holding it:
/// the catalog and buffer stay consistent between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn write_lock(b: &RwLock<Buffer>) -> std::sync::RwLockWriteGuard<'_, Buffer> {
    b.write().unwrap_or_else(|p| p.into_inner())
}

fn read_lock(b: &RwLock<Buffer>) -> std::sync::RwLockReadGuard<'_, Buffer> {
    b.read().unwrap_or_else(|p| p.into_inner())
}

/// The earliest time (ns) database `db` of `catalog` still returns, if it
/// has a retention.
fn retention_cutoff(catalog: &Catalog, db: &str) -> Option<i64> {
    Some(cutoff_for(catalog.databases.get(db)?.retention_secs?))
}

/// Whether persists write rollups of database `db`'s tables.
fn keeps_rollups(catalog: &Catalog, db: &str) -> bool {
    catalog.databases.get(db).is_none_or(|d| !d.rollups_off)
}

/// The earliest rollup time (ns) database `db` of `catalog` still returns,
/// if its rollups have a retention.
fn rollup_cutoff(catalog: &Catalog, db: &str) -> Option<i64> {
    Some(cutoff_for(
        catalog.databases.get(db)?.rollup_retention_secs?,
    ))
}

/// What a table name of a database stands for.
enum TableKind {
    /// A table of written rows, with its Arrow schema.
    Raw(SchemaRef),
    /// The rollups of raw table `raw` at `grain`.
    Rollup {
        raw: String,
        raw_schema: SchemaRef,
        layout: RollupLayout,
        grain: RollupGrain,
    },
}

/// Resolves `db.table`: a raw table, else the rollups of the raw table it
/// names with a grain's suffix; `None` if neither exists.
fn resolve_table(catalog: &Catalog, db: &str, table: &str) -> Option<TableKind> {
    if let Some(raw) = catalog.table(db, table) {
        return Some(TableKind::Raw(arrow_schema(raw)));
    }
    let (raw, grain) = RollupGrain::of_table(table)?;
    let raw_schema = arrow_schema(catalog.table(db, raw)?);
    Some(TableKind::Rollup {
        raw: raw.to_owned(),
        layout: RollupLayout::of(&raw_schema),
        raw_schema,
        grain,
    })
}

/// The earliest time (ns) a retention of `secs` keeps, now; may be before 1970.
fn cutoff_for(secs: u64) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let cutoff = now - i128::from(secs) * 1_000_000_000;
    i64::try_from(cutoff.max(i128::from(i64::MIN))).unwrap_or(i64::MIN)
}

/// The rows of `batch` at or after `cutoff` (ns); all of them without one.
fn keep_after(
    batch: &RecordBatch,
    cutoff: Option<i64>,
    table: &str,
) -> Result<RecordBatch, StoreError> {
    match cutoff {
        Some(cutoff) => keep_within(batch, &(cutoff..=i64::MAX), table),
        None => Ok(batch.clone()),
    }
}

/// The rows of `batch` whose time (ns) is in `range`.
fn keep_within(
    batch: &RecordBatch,
    range: &RangeInclusive<i64>,
    table: &str,
) -> Result<RecordBatch, StoreError> {
    use arrow::array::{Scalar, TimestampNanosecondArray};
    use arrow::compute::kernels::{boolean, cmp};
    let Some(time) = batch.column_by_name(catalog::TIME_COLUMN) else {
        return Ok(batch.clone());
    };
    if *range == (i64::MIN..=i64::MAX) {
        return Ok(batch.clone());
    }
    let arrow_err = |source| StoreError::Arrow {
        table: table.to_owned(),
        source,
    };
    let bound = |t: i64| Scalar::new(TimestampNanosecondArray::from(vec![t]));
    let keep = boolean::and(
        &cmp::gt_eq(time, &bound(*range.start())).map_err(arrow_err)?,
        &cmp::lt_eq(time, &bound(*range.end())).map_err(arrow_err)?,
    )
    .map_err(arrow_err)?;
    arrow::compute::filter_record_batch(batch, &keep).map_err(arrow_err)
}

/// Deletes the data files the manifest does not name: written by a persist
/// or compaction that never registered them (their rows are still in the
/// log or the files they were to replace), or replaced and not yet deleted
/// when the process stopped. Refuses to open when the manifest is missing
/// but data files exist, rather than take them all for orphans.
fn remove_orphan_files(
    data_dir: &Path,
    manifest: &Manifest,
    manifest_exists: bool,
) -> Result<(), StoreError> {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return Ok(());
    };
    let mut orphans = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(number) = name.to_str().and_then(|n| {
            let stem = n
                .strip_suffix(".parquet.tmp")
                .or_else(|| n.strip_suffix(".parquet"))?;
            stem.parse::<u64>().ok()
        }) else {
            continue;
        };
        if !manifest_exists {
            return Err(StoreError::CorruptCatalog {
                path: data_dir.with_file_name("manifest.json"),
                reason: format!(
                    "the manifest is missing but {} holds Parquet files; restore it",
                    data_dir.display()
                ),
            });
        }
        let listed = manifest
            .files
            .iter()
            .any(|f| f.name == name.to_string_lossy());
        if !listed {
            orphans.push((number, entry.path()));
        }
    }
    for (number, path) in orphans {
        if number > manifest.next_file {
            tracing::warn!("removing {}: no persist registered it", path.display());
        }
        fs::remove_file(&path).map_err(|e| StoreError::io("removing", &path, e))?;
    }
    Ok(())
}

fn check_database_name(db: &str) -> Result<(), StoreError> {
    let bad = db.is_empty()
        || db.len() > 255
        || db == "."
        || db == ".."
        || db.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(StoreError::InvalidDatabaseName(db.to_owned()));
    }
    Ok(())
}

/// A log record's payload starts with a version byte and the database name.
fn record_header(db: &str, precision: Precision, default_time: i64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4096);
    payload.push(RECORD_LINES_V2);
    // Database names are at most 255 bytes (checked before), so this fits.
    payload.extend_from_slice(&(db.len() as u16).to_le_bytes());
    payload.extend_from_slice(db.as_bytes());
    payload.push(precision_code(precision));
    payload.extend_from_slice(&default_time.to_le_bytes());
    payload
}

/// The byte a log record stores for `precision`.
fn precision_code(precision: Precision) -> u8 {
    match precision {
        Precision::Nanoseconds => 0,
        Precision::Microseconds => 1,
        Precision::Milliseconds => 2,
        Precision::Seconds => 3,
        Precision::Minutes => 4,
        Precision::Hours => 5,
        Precision::Auto => 6,
    }
}

/// The precision stored as `code` by [`precision_code`].
fn precision_of_code(code: u8) -> Option<Precision> {
    Some(match code {
        0 => Precision::Nanoseconds,
        1 => Precision::Microseconds,
        2 => Precision::Milliseconds,
        3 => Precision::Seconds,
        4 => Precision::Minutes,
        5 => Precision::Hours,
        6 => Precision::Auto,
        _ => return None,
    })
}

/// A log record: its database and its lines, with how to read them.
struct Record<'a> {
    db: &'a str,
    body: &'a [u8],
    precision: Precision,
    /// The time of lines without one (none in version 1 records).
    default_time: Option<i64>,
}

/// Splits a log record's payload; `None` if it is of no known format.
fn split_record(payload: &[u8]) -> Option<Record<'_>> {
    let (&version, rest) = payload.split_first()?;
    if !matches!(version, RECORD_LINES_V1 | RECORD_LINES_V2) {
        return None;
    }
    let len = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]) as usize;
    let db = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
    let rest = rest.get(2 + len..)?;
    if version == RECORD_LINES_V1 {
        return Some(Record {
            db,
            body: rest,
            precision: Precision::Nanoseconds,
            default_time: None,
        });
    }
    let (&code, rest) = rest.split_first()?;
    let time = rest.get(..8)?.try_into().ok()?;
    Some(Record {
        db,
        body: rest.get(8..)?,
        precision: precision_of_code(code)?,
        default_time: Some(i64::from_le_bytes(time)),
    })
}

impl<'a> Record<'a> {
    /// The record's lines, timestamps set.
    fn lines(&self) -> impl Iterator<Item = Line<'a>> + use<'a> {
        // Logged lines were accepted by the store, so they parse; no size
        // limit applies (version 1 records re-encoded lines, which may have
        // lengthened them). A line that does not parse is skipped rather
        // than stopping recovery.
        let options = ParseOptions {
            precision: self.precision,
            max_line_bytes: usize::MAX,
            max_token_bytes: usize::MAX,
        };
        let default_time = self.default_time;
        options.parse(self.body).filter_map(move |item| match item {
            Ok(mut line) => {
                if let Some(t) = default_time {
                    line.timestamp.get_or_insert(t);
                }
                Some(line)
            }
            Err(e) => {
                tracing::warn!("skipping unreadable logged line: {e}");
                None
            }
        })
    }
}

/// Applies a freshly durable record to the shared buffer, from the rows its
/// writer built or else from its lines; returns the bytes applied since the
/// last seal.
fn apply_record(
    payload: &[u8],
    prepared: Option<rows::PreparedWrite>,
    buffer: &RwLock<Buffer>,
) -> usize {
    let Some(record) = split_record(payload) else {
        tracing::error!("skipping a log record of unknown format");
        return read_lock(buffer).applied_bytes;
    };
    let mut buffer = write_lock(buffer);
    buffer.apply_record(record.db, payload.len(), prepared, record.lines());
    buffer.applied_bytes
}

/// Applies a replayed record, re-admitting its lines to the catalog (a
/// catalog saved before the crash has them already; this makes the log
/// alone enough to rebuild it).
fn replay_record(payload: &[u8], catalog: &mut Catalog, buffer: &mut Buffer) {
    let Some(record) = split_record(payload) else {
        tracing::warn!("skipping a log record of unknown format");
        return;
    };
    let db = record.db;
    catalog.create_database(db);
    let admitted = record.lines().filter(|line| match catalog.admit(db, line) {
        Ok(_) => true,
        Err(conflict) => {
            tracing::warn!("skipping logged line that conflicts with the catalog: {conflict}");
            false
        }
    });
    let lines: Vec<Line<'_>> = admitted.collect();
    // Big records are built as a live write would have been, so that the
    // budget counts them the same way after a restart.
    let prepared = rows::prepare(lines.iter()).ok().flatten();
    buffer.apply_record(db, payload.len(), prepared, lines.into_iter());
}
