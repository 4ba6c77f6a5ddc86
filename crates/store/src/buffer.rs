//! The write buffer: per-table Arrow columns that rows join as soon as their
//! write is durable, so they are queryable the moment it is acknowledged.
//!
//! Each table appends into Arrow builders (tags dictionary-encoded) and
//! freezes them into an immutable [`RecordBatch`] every [`FREEZE_ROWS`]
//! rows, so a query copies at most one unfrozen chunk. Batches frozen before
//! a column existed lack it; [`align`] fills it with nulls at read time.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use lineproto::Line;

use crate::catalog::{ColumnKind, FieldType, TableSchema};
use crate::error::StoreError;
use crate::manifest::{Manifest, ParquetFile};
use crate::rows::{text_bytes, PreparedChunk, PreparedWrite, RowBuilder};

/// Rows per frozen chunk.
pub(crate) const FREEZE_ROWS: usize = 32 * 1024;
/// Text bytes (tag values and strings) per chunk: keeps every string column
/// of a chunk far below Arrow's 2 GiB offset limit.
pub(crate) const FREEZE_TEXT_BYTES: usize = 256 << 20;

/// The Arrow type of a column.
pub fn arrow_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Time => DataType::Timestamp(TimeUnit::Nanosecond, None),
        ColumnKind::Tag => {
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        }
        ColumnKind::Field(FieldType::Float) => DataType::Float64,
        ColumnKind::Field(FieldType::Integer) => DataType::Int64,
        ColumnKind::Field(FieldType::UInteger) => DataType::UInt64,
        ColumnKind::Field(FieldType::Boolean) => DataType::Boolean,
        ColumnKind::Field(FieldType::String) => DataType::Utf8,
    }
}

/// The Arrow schema of a table: `time` (never null), then tags and fields
/// in the order they first appeared.
pub fn arrow_schema(table: &TableSchema) -> SchemaRef {
    let fields: Vec<Field> = table
        .columns
        .iter()
        .map(|c| Field::new(&c.name, arrow_type(c.kind), c.kind != ColumnKind::Time))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Series whose latest time a table remembers before it forgets them all
/// (keeping only their maximum): bounds the memory of [`SeriesClock`].
const MAX_TRACKED_SERIES: usize = 1 << 20;

/// Every table's buffered rows, by database and table, and the persisted files.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    databases: HashMap<String, HashMap<String, TableBuffer>>,
    /// Generations sealed for persistence, oldest first. Scans still see
    /// them until their files are registered in the manifest.
    pub(crate) sealed: Vec<Arc<Sealed>>,
    next_generation: u64,
    /// Memory of the rows applied since the last seal, which the persister
    /// compares with its budget: the Arrow size of prepared chunks, and the
    /// length of the log record for rows appended line by line.
    pub(crate) applied_bytes: usize,
    /// The persisted files; changed together with `sealed` under one lock so
    /// a scan sees every row exactly once.
    pub(crate) manifest: Manifest,
}

/// An immutable run of one table's rows.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) batch: RecordBatch,
    /// Earliest and latest time, for pruning.
    pub(crate) range: RangeInclusive<i64>,
    /// Every row is later than every row of its series written before it,
    /// so no earlier write (nor another row here) holds the same series and
    /// time: scans need not deduplicate it against what came before.
    pub(crate) fresh: bool,
    /// Some row is no later than a row of its series in an earlier
    /// generation (sealed, maybe persisted): it may repeat that row, which
    /// rollups made apart would count twice.
    pub(crate) repeats: bool,
}

/// The chunks of one table, oldest first.
pub(crate) type Chunks = Vec<Chunk>;

/// Rows taken out of the live buffer to be persisted.
#[derive(Debug)]
pub(crate) struct Sealed {
    /// Which generation.
    pub(crate) id: u64,
    /// (database, table) → its chunks.
    pub(crate) tables: HashMap<(String, String), Chunks>,
    /// Memory of its rows, as [`Buffer::applied_bytes`] counts it.
    pub(crate) bytes: usize,
}

/// What a scan must read, in the order the rows were written: Parquet
/// files (manifest order), then buffered chunks (each with exactly the
/// scan's schema).
#[derive(Debug, Default)]
pub(crate) struct ScanPlan {
    pub(crate) files: Vec<ParquetFile>,
    pub(crate) chunks: Vec<Chunk>,
}

impl Buffer {
    /// An empty buffer over the persisted files of `manifest`.
    pub(crate) fn new(manifest: Manifest) -> Self {
        Buffer {
            manifest,
            ..Buffer::default()
        }
    }

    /// Appends `lines` (already admitted by the catalog, timestamps set) to
    /// their tables in `db`.
    pub(crate) fn apply<'a>(&mut self, db: &str, lines: impl Iterator<Item = Line<'a>>) {
        for line in lines {
            self.table(db, &line.measurement).push(&line);
        }
    }

    /// Appends the rows of a log record of `record_bytes` for `db`: the
    /// chunks built for it if any, else its `lines`; counts their memory
    /// in [`Buffer::applied_bytes`].
    pub(crate) fn apply_record<'a>(
        &mut self,
        db: &str,
        record_bytes: usize,
        prepared: Option<PreparedWrite>,
        lines: impl Iterator<Item = Line<'a>>,
    ) {
        match prepared {
            Some(prepared) => {
                self.applied_bytes += prepared.memory_bytes();
                self.apply_prepared(db, prepared);
            }
            None => {
                self.applied_bytes += record_bytes;
                self.apply(db, lines);
            }
        }
    }

    /// Appends the chunks a writer built for `db` (see [`crate::rows::prepare`]).
    fn apply_prepared(&mut self, db: &str, prepared: PreparedWrite) {
        for (name, chunks) in prepared.tables {
            let table = self.table(db, &name);
            for chunk in chunks {
                table.push_prepared(chunk);
            }
        }
    }

    /// The buffer of `db.table`, created if new.
    fn table(&mut self, db: &str, table: &str) -> &mut TableBuffer {
        let manifest = &self.manifest;
        if !self.databases.contains_key(db) {
            self.databases.insert(db.to_owned(), HashMap::new());
        }
        let Some(tables) = self.databases.get_mut(db) else {
            unreachable!("inserted above")
        };
        if !tables.contains_key(table) {
            // Rows persisted before the store opened are older than
            // anything the clock remembers: it starts after them.
            let floor = manifest
                .files
                .iter()
                .filter(|f| f.db == db && f.table == table)
                .map(|f| f.max_time)
                .max()
                .unwrap_or(i64::MIN);
            tables.insert(table.to_owned(), TableBuffer::new(table, floor));
        }
        tables
            .get_mut(table)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// What holds rows of `db.table` in `time`: persisted files, sealed and
    /// live chunks (each batch with exactly `schema`). Chunks and files with
    /// no row in `time` are skipped; the others are returned whole (the
    /// caller filters rows).
    pub(crate) fn scan(
        &self,
        db: &str,
        table: &str,
        schema: &SchemaRef,
        time: &RangeInclusive<i64>,
    ) -> Result<ScanPlan, StoreError> {
        let overlaps = |r: &RangeInclusive<i64>| r.start() <= time.end() && time.start() <= r.end();
        let aligned = |chunk: &Chunk| -> Result<Chunk, StoreError> {
            Ok(Chunk {
                batch: align(&chunk.batch, schema, table)?,
                ..chunk.clone()
            })
        };
        let mut plan = ScanPlan {
            chunks: Vec::new(),
            files: self
                .manifest
                .files
                .iter()
                .filter(|f| {
                    !f.rollup
                        && f.db == db
                        && f.table == table
                        && overlaps(&(f.min_time..=f.max_time))
                })
                .cloned()
                .collect(),
        };
        let key = (db.to_owned(), table.to_owned());
        for generation in &self.sealed {
            for chunk in generation.tables.get(&key).into_iter().flatten() {
                if overlaps(&chunk.range) {
                    plan.chunks.push(aligned(chunk)?);
                }
            }
        }
        let Some(buffer) = self.databases.get(db).and_then(|t| t.get(table)) else {
            return Ok(plan);
        };
        for chunk in &buffer.frozen {
            if overlaps(&chunk.range) {
                plan.chunks.push(aligned(chunk)?);
            }
        }
        let open = &buffer.open;
        if open.rows > 0 && overlaps(&(open.min..=open.max)) {
            plan.chunks.push(Chunk {
                batch: align(&open.snapshot()?, schema, table)?,
                range: open.min..=open.max,
                fresh: buffer.open_fresh,
                repeats: buffer.open_repeats,
            });
        }
        Ok(plan)
    }

    /// Whether a buffered chunk of `db.table` with rows that may repeat
    /// earlier generations' meets the time of a persisted raw file of that
    /// table that has rows in `time`: the table's rollups would count such
    /// rows twice.
    pub(crate) fn may_repeat_persisted(
        &self,
        db: &str,
        table: &str,
        time: &std::ops::Range<i64>,
    ) -> bool {
        let persisted: Vec<RangeInclusive<i64>> = self
            .manifest
            .files
            .iter()
            .filter(|f| !f.rollup && f.db == db && f.table == table)
            .filter(|f| f.min_time < time.end && time.start <= f.max_time)
            .map(|f| f.min_time..=f.max_time)
            .collect();
        if persisted.is_empty() {
            return false;
        }
        let meets = |r: &RangeInclusive<i64>| {
            *r.start() < time.end
                && time.start <= *r.end()
                && persisted
                    .iter()
                    .any(|p| p.start() <= r.end() && r.start() <= p.end())
        };
        let key = (db.to_owned(), table.to_owned());
        let live = self.databases.get(db).and_then(|t| t.get(table));
        let mut chunks = self
            .sealed
            .iter()
            .flat_map(|g| g.tables.get(&key).into_iter().flatten())
            .chain(live.into_iter().flat_map(|l| &l.frozen));
        chunks.any(|c| c.repeats && meets(&c.range))
            || live.is_some_and(|l| {
                l.open.rows > 0 && l.open_repeats && meets(&(l.open.min..=l.open.max))
            })
    }

    /// Moves every live row into a new sealed generation, to be persisted.
    pub(crate) fn seal(&mut self) {
        let mut tables = HashMap::new();
        for (db, buffers) in &mut self.databases {
            for (table, buffer) in buffers.iter_mut() {
                if buffer.open.rows > 0 {
                    buffer.freeze();
                }
                let frozen = buffer.reset();
                if !frozen.is_empty() {
                    tables.insert((db.clone(), table.clone()), frozen);
                }
            }
        }
        let bytes = std::mem::take(&mut self.applied_bytes);
        if tables.is_empty() {
            return;
        }
        self.next_generation += 1;
        self.sealed.push(Arc::new(Sealed {
            id: self.next_generation,
            tables,
            bytes,
        }));
    }

    /// Memory of the rows held, live and sealed, as the budget counts it
    /// (see [`Buffer::applied_bytes`]).
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.applied_bytes + self.sealed.iter().map(|g| g.bytes).sum::<usize>()
    }

    /// Rows buffered across every table.
    pub(crate) fn rows(&self) -> usize {
        self.databases
            .values()
            .flat_map(|t| t.values())
            .map(|t| t.frozen_rows + t.open.rows)
            .sum::<usize>()
            + self
                .sealed
                .iter()
                .flat_map(|g| g.tables.values().flatten())
                .map(|c| c.batch.num_rows())
                .sum::<usize>()
    }
}

/// Gives `batch` exactly the columns of `schema`: missing ones are all null.
pub(crate) fn align(
    batch: &RecordBatch,
    schema: &SchemaRef,
    table: &str,
) -> Result<RecordBatch, StoreError> {
    if batch.schema() == *schema {
        return Ok(batch.clone());
    }
    let rows = batch.num_rows();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Arc::clone(c),
            _ => new_null_array(f.data_type(), rows),
        })
        .collect();
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|source| StoreError::Arrow {
        table: table.to_owned(),
        source,
    })
}

/// One table's buffered rows: an open run being appended to, and frozen
/// chunks.
#[derive(Debug)]
struct TableBuffer {
    open: RowBuilder,
    /// Whether every open row is fresh (see [`Chunk::fresh`]).
    open_fresh: bool,
    /// Whether an open row may repeat an earlier generation's (see
    /// [`Chunk::repeats`]).
    open_repeats: bool,
    frozen: Chunks,
    frozen_rows: usize,
    /// Kept across seals: tells whether a row is fresh.
    clock: SeriesClock,
}

/// The latest time written to each series of a table (by a hash of its tag
/// set), to tell whether a new row could duplicate an earlier one. Hash
/// collisions only make rows look stale, which costs a deduplication at
/// query time, never a wrong answer.
#[derive(Debug)]
struct SeriesClock {
    latest: HashMap<u64, SeriesTimes, foldhash::fast::FixedState>,
    /// Latest time of the rows written before the clock began, or of the
    /// series it forgot.
    floor: i64,
    /// The same for rows of earlier generations only: a series it does not
    /// know repeats only at or before this, so forgetting series does not
    /// mark every later row that lags the newest one.
    sealed_floor: i64,
    /// The generation being written: one more at each seal.
    generation: u32,
}

/// What the clock knows of one series since it began (or last forgot):
/// the floors stand for everything before.
#[derive(Debug, Clone, Copy)]
struct SeriesTimes {
    /// Its latest time.
    latest: i64,
    /// Its latest time in generations before `generation`.
    sealed: i64,
    /// The generation `sealed` is before.
    generation: u32,
}

/// What [`SeriesClock::observe`] tells of a row.
#[derive(Debug, Clone, Copy)]
struct Observed {
    /// Later than every earlier row of its series.
    fresh: bool,
    /// No later than a row of its series in an earlier generation.
    repeats: bool,
}

impl SeriesClock {
    fn new(floor: i64) -> Self {
        SeriesClock {
            latest: HashMap::default(),
            floor,
            sealed_floor: floor,
            generation: 0,
        }
    }

    /// Records a row of `series` at `time`.
    fn observe(&mut self, series: u64, time: i64) -> Observed {
        let generation = self.generation;
        let times = self.latest.entry(series).or_insert(SeriesTimes {
            latest: i64::MIN,
            sealed: i64::MIN,
            generation,
        });
        if times.generation != generation {
            times.sealed = times.latest;
            times.generation = generation;
        }
        let observed = Observed {
            fresh: time > times.latest.max(self.floor),
            repeats: time <= times.sealed.max(self.sealed_floor),
        };
        times.latest = times.latest.max(time);
        if self.latest.len() > MAX_TRACKED_SERIES {
            for t in self.latest.values() {
                self.floor = self.floor.max(t.latest);
                let sealed = if t.generation == generation {
                    t.sealed
                } else {
                    t.latest
                };
                self.sealed_floor = self.sealed_floor.max(sealed);
            }
            self.latest.clear();
        }
        observed
    }

    /// Starts the next generation: every row written so far is sealed.
    fn seal(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }
}

impl TableBuffer {
    fn new(name: &str, floor: i64) -> Self {
        TableBuffer {
            open: RowBuilder::new(name),
            open_fresh: true,
            open_repeats: false,
            frozen: Vec::new(),
            frozen_rows: 0,
            clock: SeriesClock::new(floor),
        }
    }

    /// Takes the frozen chunks and starts over with no columns, keeping
    /// the series clock. Call with no open rows.
    fn reset(&mut self) -> Chunks {
        self.open = RowBuilder::new(&self.open.table);
        self.open_fresh = true;
        self.open_repeats = false;
        self.clock.seal();
        self.frozen_rows = 0;
        std::mem::take(&mut self.frozen)
    }

    fn push(&mut self, line: &Line<'_>) {
        let text = text_bytes(line);
        if self.open.rows > 0 && self.open.text + text > FREEZE_TEXT_BYTES {
            self.freeze();
        }
        let time = line.timestamp.unwrap_or_default();
        let (series, repeated) = self.open.push(line, text);
        let observed = self.clock.observe(series, time);
        self.open_fresh &= observed.fresh && !repeated;
        self.open_repeats |= observed.repeats;
        if self.open.rows >= FREEZE_ROWS {
            self.freeze();
        }
    }

    /// Appends a chunk built by [`crate::rows::prepare`] after the rows before it.
    fn push_prepared(&mut self, chunk: PreparedChunk) {
        if self.open.rows > 0 {
            self.freeze();
        }
        let mut fresh = !chunk.repeated;
        let mut repeats = false;
        if let Some(times) = chunk
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
        {
            for (&series, &time) in chunk.series.iter().zip(times.values()) {
                // Every row is observed, fresh or not, to keep the clock whole.
                let observed = self.clock.observe(series, time);
                fresh &= observed.fresh;
                repeats |= observed.repeats;
            }
        } else {
            fresh = false;
            repeats = true;
        }
        self.frozen_rows += chunk.batch.num_rows();
        self.frozen.push(Chunk {
            batch: chunk.batch,
            range: chunk.range,
            fresh,
            repeats,
        });
    }

    /// Moves the open rows into an immutable chunk.
    fn freeze(&mut self) {
        let range = self.open.min..=self.open.max;
        match self.open.finish() {
            Ok(batch) => {
                self.frozen_rows += batch.num_rows();
                self.frozen.push(Chunk {
                    batch,
                    range,
                    fresh: self.open_fresh,
                    repeats: self.open_repeats,
                });
                self.open_fresh = true;
                self.open_repeats = false;
            }
            Err(e) => tracing::error!("freezing the buffer of table {:?}: {e}", self.open.table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_repeats_only_at_or_before_its_series_latest_in_earlier_generations() {
        // Rows up to 100 were persisted before the clock began.
        let mut clock = SeriesClock::new(100);
        let row = |clock: &mut SeriesClock, series, time| {
            let o = clock.observe(series, time);
            (o.fresh, o.repeats)
        };
        assert_eq!(row(&mut clock, 1, 100), (false, true), "maybe persisted");
        assert_eq!(row(&mut clock, 1, 150), (true, false));
        // The same point again in the same generation: stale, deduplicated
        // before anything is rolled up, so no repeat.
        assert_eq!(row(&mut clock, 1, 150), (false, false));
        clock.seal();
        assert_eq!(row(&mut clock, 1, 150), (false, true), "sealed before");
        assert_eq!(row(&mut clock, 1, 160), (true, false));
        // Another series lagging series 1 repeats nothing of its own.
        assert_eq!(row(&mut clock, 2, 120), (true, false));
    }

    #[test]
    fn forgetting_series_keeps_rows_newer_than_the_sealed_ones_unmarked() {
        let mut clock = SeriesClock::new(i64::MIN);
        clock.observe(0, 1_000);
        clock.seal();
        // This generation reaches 5 000; then the clock forgets everything.
        clock.observe(0, 5_000);
        for series in 1..=MAX_TRACKED_SERIES as u64 {
            clock.observe(series, 2_000);
        }
        assert!(clock.latest.is_empty(), "forgot");
        // A row of a series lagging the newest one is stale but, being
        // later than every sealed row, repeats nothing.
        let lagging = clock.observe(7, 3_000);
        assert!(!lagging.fresh && !lagging.repeats);
        let old = clock.observe(8, 1_000);
        assert!(!old.fresh && old.repeats);
    }
}
