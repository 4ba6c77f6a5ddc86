//! weir's embedded storage engine: a catalog of typed columns, a write-ahead
//! log with group commit, and a columnar (Arrow) write buffer.
//!
//! A write is parsed, checked against the catalog (a field whose type
//! conflicts with its column rejects that line, the rest are kept), logged,
//! and acknowledged only once its log record is durable; by then its rows are
//! in the write buffer and every scan sees them. Reopening a data directory
//! replays the log, so nothing acknowledged is lost to a crash.
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
//! Not built yet (the rest of the storage issue): persisting the buffer to
//! Parquet, compaction, retention and the DataFusion table providers. Until
//! then the buffer and the log grow with every write.
//!
//! # On disk
//!
//! ```text
//! <data-dir>/LOCK            held (flock) by the process that has the store open
//! <data-dir>/catalog.json    databases, tables, columns; replaced atomically
//! <data-dir>/wal/NNNN.wal    log segments, replayed in order on open
//! ```

mod buffer;
pub mod catalog;
mod error;
mod wal;

use std::fmt;
use std::fs::{self, File};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use lineproto::{Line, ParseOptions, Precision};

pub use buffer::{arrow_schema, arrow_type};
pub use catalog::{Catalog, Column, ColumnKind, FieldType, TableSchema};
pub use error::StoreError;
pub use wal::WalConfig;

use buffer::Buffer;
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
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            wal: WalConfig::default(),
            auto_create_databases: true,
            max_line_bytes: ParseOptions::DEFAULT_MAX_LINE_BYTES,
            max_token_bytes: ParseOptions::DEFAULT_MAX_TOKEN_BYTES,
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

/// The storage engine over one data directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    config: StoreConfig,
    catalog: Mutex<Catalog>,
    buffer: Arc<RwLock<Buffer>>,
    wal: Wal,
    /// Held open for its lock for as long as the store is open.
    _lock: File,
}

/// Version byte that starts every log record's payload.
const RECORD_LINES_V1: u8 = 1;

impl Store {
    /// Opens (creating if needed) the store in `dir` and replays its log.
    /// Fails if another process has it open.
    pub fn open(dir: &Path, config: StoreConfig) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io("creating data directory", dir, e))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path)
            .map_err(|e| StoreError::io("creating lock file", &lock_path, e))?;
        lock.try_lock()
            .map_err(|_| StoreError::Locked(dir.to_owned()))?;

        let catalog_path = dir.join("catalog.json");
        let mut catalog = Catalog::load(&catalog_path)?;
        let before = catalog.clone();
        let buffer = Arc::new(RwLock::new(Buffer::default()));
        let sink = Arc::clone(&buffer);
        let mut replayed = Buffer::default();
        let wal = Wal::open(
            &dir.join("wal"),
            config.wal,
            |payload| replay_record(payload, &mut catalog, &mut replayed),
            Box::new(move |payload| apply_record(payload, &sink)),
        )?;
        *write_lock(&buffer) = replayed;
        if catalog != before {
            catalog.save(&catalog_path)?;
        }
        Ok(Store {
            dir: dir.to_owned(),
            config,
            catalog: Mutex::new(catalog),
            buffer,
            wal,
            _lock: lock,
        })
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
        self.write_lines_at(db, body, precision, now)
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
        check_database_name(db)?;
        let opts = ParseOptions {
            precision,
            max_line_bytes: self.config.max_line_bytes,
            max_token_bytes: self.config.max_token_bytes,
        };
        let mut summary = WriteSummary::default();
        // Parse and encode outside the lock; only the schema check and the
        // queueing are serialised between writers.
        let mut encoded = record_header(db);
        let mut parsed = Vec::new();
        let mut lines = opts.parse(body);
        while let Some(item) = lines.next() {
            let mut line = match item {
                Ok(line) => line,
                Err(e) => {
                    summary.rejected.push(RejectedLine {
                        line: e.line,
                        column: Some(e.column),
                        reason: e.kind.to_string(),
                    });
                    continue;
                }
            };
            line.timestamp.get_or_insert(default_time);
            let start = encoded.len();
            if let Err(e) = line.encode(&mut encoded) {
                summary.rejected.push(RejectedLine {
                    line: lines.line_number(),
                    column: None,
                    reason: e.to_string(),
                });
                continue;
            }
            parsed.push((lines.line_number(), line, start..encoded.len()));
        }

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
            for (line_number, line, range) in &parsed {
                match catalog.admit(db, line) {
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
                        // Everything before this line was accepted.
                        payload.get_or_insert_with(|| encoded[..range.start].to_vec());
                    }
                }
            }
            if changed {
                catalog.save(&self.dir.join("catalog.json"))?;
            }
            // Queued under the catalog lock so the log's order is the order
            // in which lines were checked against the schema.
            if summary.accepted > 0 {
                Some(self.wal.submit(payload.unwrap_or(encoded))?)
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

    /// Creates database `db` if it does not exist; returns whether it is new.
    pub fn create_database(&self, db: &str) -> Result<bool, StoreError> {
        check_database_name(db)?;
        let mut catalog = lock(&self.catalog);
        if !catalog.create_database(db) {
            return Ok(false);
        }
        catalog.save(&self.dir.join("catalog.json"))?;
        Ok(true)
    }

    /// A copy of the catalog.
    pub fn catalog(&self) -> Catalog {
        lock(&self.catalog).clone()
    }

    /// The Arrow schema of `db.table`, if the table exists.
    pub fn table_schema(&self, db: &str, table: &str) -> Option<SchemaRef> {
        lock(&self.catalog).table(db, table).map(arrow_schema)
    }

    /// Every stored row of `db.table` as record batches with the table's
    /// current schema, or `None` if there is no such table.
    pub fn scan(&self, db: &str, table: &str) -> Result<Option<Vec<RecordBatch>>, StoreError> {
        let Some(schema) = self.table_schema(db, table) else {
            return Ok(None);
        };
        let buffer = self.buffer.read().unwrap_or_else(|p| p.into_inner());
        buffer
            .scan(db, table, &schema, &(i64::MIN..=i64::MAX))
            .map(Some)
    }

    /// The rows of `db.table` as batches with exactly `schema` (columns it
    /// lacks read as null, columns added since are left out): what a query
    /// planned against an earlier schema needs. Chunks holding no row in
    /// `time` (nanoseconds, inclusive) are skipped; returned batches may
    /// still hold rows outside it.
    pub fn scan_with_schema(
        &self,
        db: &str,
        table: &str,
        schema: &SchemaRef,
        time: &RangeInclusive<i64>,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let buffer = self.buffer.read().unwrap_or_else(|p| p.into_inner());
        buffer.scan(db, table, schema, time)
    }

    /// Rows held in the write buffer, across all tables.
    pub fn buffered_rows(&self) -> usize {
        self.buffer.read().unwrap_or_else(|p| p.into_inner()).rows()
    }

    /// Commits queued writes and closes the log.
    pub fn close(mut self) {
        self.wal.close();
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
fn record_header(db: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4096);
    payload.push(RECORD_LINES_V1);
    // Database names are at most 255 bytes (checked before), so this fits.
    payload.extend_from_slice(&(db.len() as u16).to_le_bytes());
    payload.extend_from_slice(db.as_bytes());
    payload
}

/// Splits a payload into database name and line protocol (ns timestamps).
fn split_record(payload: &[u8]) -> Option<(&str, &[u8])> {
    let (&version, rest) = payload.split_first()?;
    if version != RECORD_LINES_V1 || rest.len() < 2 {
        return None;
    }
    let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
    let db = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
    Some((db, rest.get(2 + len..)?))
}

fn record_lines(body: &[u8]) -> impl Iterator<Item = Line<'_>> {
    // Logged lines were encoded by the store itself, so they parse; a line
    // that does not is skipped rather than stopping recovery.
    lineproto::parse_lines(body).filter_map(|item| match item {
        Ok(line) => Some(line),
        Err(e) => {
            tracing::warn!("skipping unreadable logged line: {e}");
            None
        }
    })
}

/// Applies a freshly durable record to the shared buffer.
fn apply_record(payload: &[u8], buffer: &RwLock<Buffer>) {
    match split_record(payload) {
        Some((db, body)) => write_lock(buffer).apply(db, record_lines(body)),
        None => tracing::error!("skipping a log record of unknown format"),
    }
}

/// Applies a replayed record, re-admitting its lines to the catalog (a
/// catalog saved before the crash has them already; this makes the log
/// alone enough to rebuild it).
fn replay_record(payload: &[u8], catalog: &mut Catalog, buffer: &mut Buffer) {
    let Some((db, body)) = split_record(payload) else {
        tracing::warn!("skipping a log record of unknown format");
        return;
    };
    catalog.create_database(db);
    let admitted = record_lines(body).filter(|line| match catalog.admit(db, line) {
        Ok(_) => true,
        Err(conflict) => {
            tracing::warn!("skipping logged line that conflicts with the catalog: {conflict}");
            false
        }
    });
    buffer.apply(db, admitted.collect::<Vec<_>>().into_iter());
}
