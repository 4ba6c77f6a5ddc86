//! The write buffer: per-table Arrow columns that rows join as soon as their
//! write is durable, so they are queryable the moment it is acknowledged.
//!
//! Each table appends into Arrow builders (tags dictionary-encoded) and
//! freezes them into an immutable [`RecordBatch`] every [`FREEZE_ROWS`]
//! rows, so a query copies at most one unfrozen chunk. Batches frozen before
//! a column existed lack it; [`align`] fills it with nulls at read time.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::RangeInclusive;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondArray, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use lineproto::{FieldValue, Line};

use crate::catalog::{ColumnKind, FieldType, TableSchema, TIME_COLUMN};
use crate::error::StoreError;
use crate::manifest::{Manifest, ParquetFile};

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
    /// compares with its budget: the Arrow size of chunks built by writers,
    /// and the length of the log record (more than Arrow takes) for rows
    /// appended line by line.
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
    /// Bytes of the log records it holds.
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

    /// Appends the chunks a writer built for `db` (see [`prepare`]).
    pub(crate) fn apply_prepared(&mut self, db: &str, prepared: PreparedWrite) {
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
            });
        }
        Ok(plan)
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

    /// Bytes of log records held in memory, live and sealed: what the
    /// memory budget is measured in.
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

/// A column being appended to.
enum ColumnBuilder {
    Tag(StringDictionaryBuilder<Int32Type>),
    Float(Float64Builder),
    Integer(Int64Builder),
    UInteger(UInt64Builder),
    Boolean(BooleanBuilder),
    String(StringBuilder),
}

impl std::fmt::Debug for ColumnBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ColumnBuilder({:?})", self.kind())
    }
}

impl ColumnBuilder {
    /// An empty column with room for `rows` values (0: grow as needed).
    fn new(kind: ColumnKind, rows: usize) -> Self {
        match kind {
            ColumnKind::Tag | ColumnKind::Time => {
                ColumnBuilder::Tag(StringDictionaryBuilder::with_capacity(rows, 0, 0))
            }
            ColumnKind::Field(FieldType::Float) => {
                ColumnBuilder::Float(Float64Builder::with_capacity(rows))
            }
            ColumnKind::Field(FieldType::Integer) => {
                ColumnBuilder::Integer(Int64Builder::with_capacity(rows))
            }
            ColumnKind::Field(FieldType::UInteger) => {
                ColumnBuilder::UInteger(UInt64Builder::with_capacity(rows))
            }
            ColumnKind::Field(FieldType::Boolean) => {
                ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows))
            }
            ColumnKind::Field(FieldType::String) => {
                ColumnBuilder::String(StringBuilder::with_capacity(rows, 0))
            }
        }
    }

    fn kind(&self) -> ColumnKind {
        match self {
            ColumnBuilder::Tag(_) => ColumnKind::Tag,
            ColumnBuilder::Float(_) => ColumnKind::Field(FieldType::Float),
            ColumnBuilder::Integer(_) => ColumnKind::Field(FieldType::Integer),
            ColumnBuilder::UInteger(_) => ColumnKind::Field(FieldType::UInteger),
            ColumnBuilder::Boolean(_) => ColumnKind::Field(FieldType::Boolean),
            ColumnBuilder::String(_) => ColumnKind::Field(FieldType::String),
        }
    }

    fn append_nulls(&mut self, n: usize) {
        for _ in 0..n {
            self.append_null();
        }
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Tag(b) => b.append_null(),
            ColumnBuilder::Float(b) => b.append_null(),
            ColumnBuilder::Integer(b) => b.append_null(),
            ColumnBuilder::UInteger(b) => b.append_null(),
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::String(b) => b.append_null(),
        }
    }

    fn append_tag(&mut self, value: &str) {
        match self {
            ColumnBuilder::Tag(b) => {
                b.append_value(value);
            }
            other => other.append_null(),
        }
    }

    /// Appends `value`, or a null if its type is not this column's (which
    /// the catalog prevents; a damaged catalog must not take the store down).
    fn append_field(&mut self, value: &FieldValue<'_>) {
        match (self, value) {
            (ColumnBuilder::Float(b), FieldValue::Float(v)) => b.append_value(*v),
            (ColumnBuilder::Integer(b), FieldValue::Integer(v)) => b.append_value(*v),
            (ColumnBuilder::UInteger(b), FieldValue::UInteger(v)) => b.append_value(*v),
            (ColumnBuilder::Boolean(b), FieldValue::Boolean(v)) => b.append_value(*v),
            (ColumnBuilder::String(b), FieldValue::String(v)) => b.append_value(v),
            (other, _) => other.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Tag(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Integer(b) => Arc::new(b.finish()),
            ColumnBuilder::UInteger(b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::String(b) => Arc::new(b.finish()),
        }
    }

    fn finish_cloned(&self) -> ArrayRef {
        match self {
            ColumnBuilder::Tag(b) => Arc::new(b.finish_cloned()),
            ColumnBuilder::Float(b) => Arc::new(b.finish_cloned()),
            ColumnBuilder::Integer(b) => Arc::new(b.finish_cloned()),
            ColumnBuilder::UInteger(b) => Arc::new(b.finish_cloned()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish_cloned()),
            ColumnBuilder::String(b) => Arc::new(b.finish_cloned()),
        }
    }
}

/// Hashes one tag of a series key; fixed so hashes agree across the process.
const SERIES_HASH: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x7765_6972);

/// Marks a slot as holding field `i` of the line rather than tag `i`.
const FIELD_SLOT: u32 = 1 << 31;
/// Marks a column the current line does not set.
const EMPTY_SLOT: u32 = u32::MAX;

/// One table's buffered rows: an open run being appended to, and frozen
/// chunks.
#[derive(Debug)]
struct TableBuffer {
    open: RowBuilder,
    /// Whether every open row is fresh (see [`Chunk::fresh`]).
    open_fresh: bool,
    frozen: Chunks,
    frozen_rows: usize,
    /// Kept across seals: tells whether a row is fresh.
    clock: SeriesClock,
}

/// Rows of one table appended into Arrow builders, in the order written.
#[derive(Debug)]
struct RowBuilder {
    /// Rows each new column makes room for.
    capacity: usize,
    table: String,
    time: TimestampNanosecondBuilder,
    names: Vec<String>,
    columns: Vec<ColumnBuilder>,
    index: HashMap<String, usize>,
    rows: usize,
    /// Text bytes (tag values and strings) among the rows.
    text: usize,
    /// Earliest and latest time among the rows.
    min: i64,
    max: i64,
    /// Per column, which tag or field of the line being appended sets it.
    slots: Vec<u32>,
    /// The columns of the previous line's tags and fields, by position:
    /// lines of a table mostly repeat the same keys in the same order, and
    /// comparing a key with its column's name is cheaper than hashing it.
    last_tags: Vec<usize>,
    last_fields: Vec<usize>,
}

/// The latest time written to each series of a table (by a hash of its tag
/// set), to tell whether a new row could duplicate an earlier one. Hash
/// collisions only make rows look stale, which costs a deduplication at
/// query time, never a wrong answer.
#[derive(Debug)]
struct SeriesClock {
    latest: HashMap<u64, i64, foldhash::fast::FixedState>,
    /// Latest time of the rows written before the clock began, or of the
    /// series it forgot.
    floor: i64,
}

impl SeriesClock {
    /// Records a row of `series` at `time`; returns whether it is later
    /// than every earlier row of the series.
    fn observe(&mut self, series: u64, time: i64) -> bool {
        let floor = self.floor;
        let latest = self.latest.entry(series).or_insert(floor);
        let fresh = time > *latest;
        *latest = (*latest).max(time);
        if self.latest.len() > MAX_TRACKED_SERIES {
            self.floor = self.latest.values().copied().fold(floor, i64::max);
            self.latest.clear();
        }
        fresh
    }
}

impl TableBuffer {
    fn new(name: &str, floor: i64) -> Self {
        TableBuffer {
            open: RowBuilder::new(name),
            open_fresh: true,
            frozen: Vec::new(),
            frozen_rows: 0,
            clock: SeriesClock {
                latest: HashMap::default(),
                floor,
            },
        }
    }

    /// Takes the frozen chunks and starts over with no columns, keeping
    /// the series clock. Call with no open rows.
    fn reset(&mut self) -> Chunks {
        self.open = RowBuilder::new(&self.open.table);
        self.open_fresh = true;
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
        self.open_fresh &= self.clock.observe(series, time) && !repeated;
        if self.open.rows >= FREEZE_ROWS {
            self.freeze();
        }
    }

    /// Appends a chunk built by [`prepare`] after the rows before it.
    fn push_prepared(&mut self, chunk: PreparedChunk) {
        if self.open.rows > 0 {
            self.freeze();
        }
        let mut fresh = !chunk.repeated;
        if let Some(times) = chunk
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
        {
            for (&series, &time) in chunk.series.iter().zip(times.values()) {
                // Every row is observed, fresh or not, to keep the clock whole.
                fresh &= self.clock.observe(series, time);
            }
        } else {
            fresh = false;
        }
        self.frozen_rows += chunk.batch.num_rows();
        self.frozen.push(Chunk {
            batch: chunk.batch,
            range: chunk.range,
            fresh,
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
                });
                self.open_fresh = true;
            }
            Err(e) => tracing::error!("freezing the buffer of table {:?}: {e}", self.open.table),
        }
    }
}

/// Text bytes (tag values and string fields) of `line`.
fn text_bytes(line: &Line<'_>) -> usize {
    line.tags.iter().map(|(_, v)| v.len()).sum::<usize>()
        + line
            .fields
            .iter()
            .map(|(_, v)| match v {
                FieldValue::String(s) => s.len(),
                _ => 0,
            })
            .sum::<usize>()
}

impl RowBuilder {
    fn new(table: &str) -> Self {
        RowBuilder::with_capacity(table, 0)
    }

    /// A builder that allocates room for `rows` rows at once (0: grow as
    /// needed), so a chunk of known size holds no spare capacity.
    fn with_capacity(table: &str, rows: usize) -> Self {
        RowBuilder {
            capacity: rows,
            table: table.to_owned(),
            time: TimestampNanosecondBuilder::with_capacity(rows),
            names: Vec::new(),
            columns: Vec::new(),
            index: HashMap::new(),
            rows: 0,
            text: 0,
            min: i64::MAX,
            max: i64::MIN,
            slots: Vec::new(),
            last_tags: Vec::new(),
            last_fields: Vec::new(),
        }
    }

    /// The column for `key`, created (null for earlier rows) if new;
    /// `guess` is the column the same position of the previous line had.
    fn column_at(&mut self, guess: Option<usize>, key: &str, kind: ColumnKind) -> usize {
        match guess {
            Some(c) if self.names[c] == key && self.columns[c].kind() == kind => c,
            _ => self.column(key, kind),
        }
    }

    /// The column for `key`, created (null for earlier rows) if new.
    fn column(&mut self, key: &str, kind: ColumnKind) -> usize {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let mut builder = ColumnBuilder::new(kind, self.capacity);
        builder.append_nulls(self.rows);
        self.columns.push(builder);
        self.names.push(key.to_owned());
        self.slots.push(EMPTY_SLOT);
        self.index.insert(key.to_owned(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    /// Appends `line` (with `text` bytes of text); returns the hash of its
    /// series and whether it repeats a tag key.
    fn push(&mut self, line: &Line<'_>, text: usize) -> (u64, bool) {
        self.text += text;
        // A line without timestamp never gets here: the store sets one.
        let time = line.timestamp.unwrap_or_default();
        self.time.append_value(time);
        self.min = self.min.min(time);
        self.max = self.max.max(time);
        self.slots.iter_mut().for_each(|s| *s = EMPTY_SLOT);
        // The series is the tag set whatever its order: hashes of the tags
        // are summed. A repeated tag key keeps its last value in the row,
        // which the hash would not see, so such a row counts as stale.
        let mut series: u64 = 0;
        let mut repeated = false;
        self.last_tags.resize(line.tags.len(), usize::MAX);
        for (i, (key, value)) in line.tags.iter().enumerate() {
            let guess = Some(self.last_tags[i]).filter(|&c| c < self.columns.len());
            let c = self.column_at(guess, key, ColumnKind::Tag);
            self.last_tags[i] = c;
            repeated |= self.slots[c] != EMPTY_SLOT;
            self.slots[c] = i as u32;
            series = series.wrapping_add(SERIES_HASH.hash_one((key.as_ref(), value.as_ref())));
        }
        self.last_fields.resize(line.fields.len(), usize::MAX);
        for (i, (key, value)) in line.fields.iter().enumerate() {
            let guess = Some(self.last_fields[i]).filter(|&c| c < self.columns.len());
            let c = self.column_at(guess, key, ColumnKind::Field(FieldType::of(value)));
            self.last_fields[i] = c;
            // A repeated key: the last value wins, as in InfluxDB.
            self.slots[c] = FIELD_SLOT | i as u32;
        }
        for (column, &slot) in self.columns.iter_mut().zip(&self.slots) {
            if slot == EMPTY_SLOT {
                column.append_null();
            } else if slot & FIELD_SLOT != 0 {
                column.append_field(&line.fields[(slot & !FIELD_SLOT) as usize].1);
            } else {
                column.append_tag(&line.tags[slot as usize].1);
            }
        }
        self.rows += 1;
        (series, repeated)
    }

    /// The rows as a batch; the builder is left empty, with its columns.
    fn finish(&mut self) -> Result<RecordBatch, StoreError> {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.time.finish())];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        self.rows = 0;
        self.text = 0;
        self.min = i64::MAX;
        self.max = i64::MIN;
        self.batch(arrays)
    }

    /// The rows as a batch, leaving them in place.
    fn snapshot(&self) -> Result<RecordBatch, StoreError> {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.time.finish_cloned())];
        arrays.extend(self.columns.iter().map(ColumnBuilder::finish_cloned));
        self.batch(arrays)
    }

    /// A batch of `arrays`: time, then the builder's columns.
    fn batch(&self, arrays: Vec<ArrayRef>) -> Result<RecordBatch, StoreError> {
        let mut fields = vec![Field::new(TIME_COLUMN, arrow_type(ColumnKind::Time), false)];
        for (name, column) in self.names.iter().zip(&self.columns) {
            fields.push(Field::new(name, arrow_type(column.kind()), true));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|source| {
            StoreError::Arrow {
                table: self.table.clone(),
                source,
            }
        })
    }
}

/// A table's share of a write needs at least this many rows to be built
/// into Arrow by the writer ([`prepare`]); smaller shares are appended row
/// by row to the table's open run, so frequent small writes do not leave
/// a trail of tiny chunks.
pub const PREPARE_MIN_ROWS: usize = 1024;

/// A write's rows built into Arrow chunks by its writer before the log
/// record is durable, so the log thread only links them into the buffer.
#[derive(Debug)]
pub(crate) struct PreparedWrite {
    tables: Vec<(String, Vec<PreparedChunk>)>,
}

impl PreparedWrite {
    /// The memory its rows take in the buffer.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.tables
            .iter()
            .flat_map(|(_, chunks)| chunks)
            .map(|c| c.batch.get_array_memory_size())
            .sum()
    }
}

/// One chunk of a [`PreparedWrite`], with what the series clock needs.
#[derive(Debug)]
struct PreparedChunk {
    batch: RecordBatch,
    range: RangeInclusive<i64>,
    /// Each row's series hash.
    series: Vec<u64>,
    /// Whether a row repeats a tag key (so cannot count as fresh).
    repeated: bool,
}

/// Builds `lines` (admitted, timestamps set) into chunks per table, or
/// `None` when some table has fewer than [`PREPARE_MIN_ROWS`] of them:
/// such a write is applied row by row from its log record.
pub(crate) fn prepare<'a>(
    lines: impl Iterator<Item = &'a Line<'a>> + Clone,
) -> Result<Option<PreparedWrite>, StoreError> {
    // Writes mostly hold runs of one table: count runs, not lines.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut run: Option<(&str, usize)> = None;
    for line in lines.clone() {
        let name = line.measurement.as_ref();
        match &mut run {
            Some((table, n)) if *table == name => *n += 1,
            _ => {
                if let Some((table, n)) = run.replace((name, 1)) {
                    *counts.entry(table).or_default() += n;
                }
            }
        }
    }
    if let Some((table, n)) = run {
        *counts.entry(table).or_default() += n;
    }
    if counts.values().any(|&n| n < PREPARE_MIN_ROWS) {
        return Ok(None);
    }
    struct Building {
        open: RowBuilder,
        series: Vec<u64>,
        repeated: bool,
        done: Vec<PreparedChunk>,
    }
    impl Building {
        fn cut(&mut self) -> Result<(), StoreError> {
            let range = self.open.min..=self.open.max;
            let batch = self.open.finish()?;
            self.done.push(PreparedChunk {
                batch,
                range,
                series: std::mem::take(&mut self.series),
                repeated: std::mem::take(&mut self.repeated),
            });
            Ok(())
        }
    }
    let mut tables: Vec<Building> = Vec::with_capacity(counts.len());
    let mut slot: HashMap<&str, usize> = HashMap::with_capacity(counts.len());
    let mut last: Option<(&str, usize)> = None;
    for line in lines {
        let name = line.measurement.as_ref();
        let i = match last {
            Some((table, i)) if table == name => i,
            _ => *slot.entry(name).or_insert_with(|| {
                tables.push(Building {
                    open: RowBuilder::with_capacity(name, counts[name].min(FREEZE_ROWS)),
                    series: Vec::with_capacity(counts[name].min(FREEZE_ROWS)),
                    repeated: false,
                    done: Vec::new(),
                });
                tables.len() - 1
            }),
        };
        last = Some((name, i));
        let table = &mut tables[i];
        let text = text_bytes(line);
        if table.open.rows > 0 && table.open.text + text > FREEZE_TEXT_BYTES {
            table.cut()?;
        }
        let (series, repeated) = table.open.push(line, text);
        table.series.push(series);
        table.repeated |= repeated;
        if table.open.rows >= FREEZE_ROWS {
            table.cut()?;
        }
    }
    let mut prepared = Vec::with_capacity(tables.len());
    for mut table in tables {
        if table.open.rows > 0 {
            table.cut()?;
        }
        prepared.push((table.open.table, table.done));
    }
    Ok(Some(PreparedWrite { tables: prepared }))
}
