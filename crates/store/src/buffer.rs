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
    new_null_array, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondBuilder, UInt64Builder,
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
    /// Bytes of log records applied since the last seal: a proxy for the
    /// buffer's memory that the persister compares with its budget.
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
        let manifest = &self.manifest;
        let tables = match self.databases.get_mut(db) {
            Some(t) => t,
            None => self.databases.entry(db.to_owned()).or_default(),
        };
        for line in lines {
            let table = match tables.get_mut(line.measurement.as_ref()) {
                Some(t) => t,
                None => {
                    // Rows persisted before the store opened are older than
                    // anything the clock remembers: it starts after them.
                    let floor = manifest
                        .files
                        .iter()
                        .filter(|f| f.db == db && f.table == line.measurement.as_ref())
                        .map(|f| f.max_time)
                        .max()
                        .unwrap_or(i64::MIN);
                    tables
                        .entry(line.measurement.to_string())
                        .or_insert_with(|| TableBuffer::new(&line.measurement, floor))
                }
            };
            table.push(&line);
        }
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
        if buffer.rows > 0 && overlaps(&(buffer.open_min..=buffer.open_max)) {
            plan.chunks.push(Chunk {
                batch: align(&buffer.snapshot()?, schema, table)?,
                range: buffer.open_min..=buffer.open_max,
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
                if buffer.rows > 0 {
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
            .map(|t| t.frozen_rows + t.rows)
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
    fn new(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Tag | ColumnKind::Time => {
                ColumnBuilder::Tag(StringDictionaryBuilder::new())
            }
            ColumnKind::Field(FieldType::Float) => ColumnBuilder::Float(Float64Builder::new()),
            ColumnKind::Field(FieldType::Integer) => ColumnBuilder::Integer(Int64Builder::new()),
            ColumnKind::Field(FieldType::UInteger) => ColumnBuilder::UInteger(UInt64Builder::new()),
            ColumnKind::Field(FieldType::Boolean) => ColumnBuilder::Boolean(BooleanBuilder::new()),
            ColumnKind::Field(FieldType::String) => ColumnBuilder::String(StringBuilder::new()),
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

/// One table's buffered rows.
#[derive(Debug)]
struct TableBuffer {
    name: String,
    time: TimestampNanosecondBuilder,
    names: Vec<String>,
    columns: Vec<ColumnBuilder>,
    index: HashMap<String, usize>,
    /// Unfrozen rows.
    rows: usize,
    /// Text bytes among the unfrozen rows.
    open_text: usize,
    /// Earliest and latest time among the unfrozen rows.
    open_min: i64,
    open_max: i64,
    /// Whether every unfrozen row is fresh (see [`Chunk::fresh`]).
    open_fresh: bool,
    frozen: Chunks,
    frozen_rows: usize,
    /// Per column, which tag or field of the line being appended sets it.
    slots: Vec<u32>,
    /// Kept across seals: tells whether a row is fresh.
    clock: SeriesClock,
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
            name: name.to_owned(),
            time: TimestampNanosecondBuilder::new(),
            names: Vec::new(),
            columns: Vec::new(),
            index: HashMap::new(),
            rows: 0,
            open_text: 0,
            open_min: i64::MAX,
            open_max: i64::MIN,
            open_fresh: true,
            frozen: Vec::new(),
            frozen_rows: 0,
            slots: Vec::new(),
            clock: SeriesClock {
                latest: HashMap::default(),
                floor,
            },
        }
    }

    /// Takes the frozen chunks and starts over with no columns, keeping
    /// the series clock. Call with no unfrozen rows.
    fn reset(&mut self) -> Chunks {
        let clock = std::mem::replace(
            &mut self.clock,
            SeriesClock {
                latest: HashMap::default(),
                floor: i64::MIN,
            },
        );
        let empty = TableBuffer::new(&self.name, i64::MIN);
        let old = std::mem::replace(self, empty);
        self.clock = clock;
        old.frozen
    }

    /// The column for `key`, created (null for earlier rows) if new.
    fn column(&mut self, key: &str, kind: ColumnKind) -> usize {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let mut builder = ColumnBuilder::new(kind);
        builder.append_nulls(self.rows);
        self.columns.push(builder);
        self.names.push(key.to_owned());
        self.slots.push(EMPTY_SLOT);
        self.index.insert(key.to_owned(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    fn push(&mut self, line: &Line<'_>) {
        let text: usize = line.tags.iter().map(|(_, v)| v.len()).sum::<usize>()
            + line
                .fields
                .iter()
                .map(|(_, v)| match v {
                    FieldValue::String(s) => s.len(),
                    _ => 0,
                })
                .sum::<usize>();
        if self.rows > 0 && self.open_text + text > FREEZE_TEXT_BYTES {
            self.freeze();
        }
        self.open_text += text;
        // A line without timestamp never gets here: the store sets one.
        let time = line.timestamp.unwrap_or_default();
        self.time.append_value(time);
        self.open_min = self.open_min.min(time);
        self.open_max = self.open_max.max(time);
        self.slots.iter_mut().for_each(|s| *s = EMPTY_SLOT);
        // The series is the tag set whatever its order: hashes of the tags
        // are summed. A repeated tag key keeps its last value in the row,
        // which the hash would not see, so such a row counts as stale.
        let mut series: u64 = 0;
        let mut repeated = false;
        for (i, (key, value)) in line.tags.iter().enumerate() {
            let c = self.column(key, ColumnKind::Tag);
            repeated |= self.slots[c] != EMPTY_SLOT;
            self.slots[c] = i as u32;
            series = series.wrapping_add(SERIES_HASH.hash_one((key.as_ref(), value.as_ref())));
        }
        let fresh = self.clock.observe(series, time) && !repeated;
        self.open_fresh &= fresh;
        for (i, (key, value)) in line.fields.iter().enumerate() {
            let c = self.column(key, ColumnKind::Field(FieldType::of(value)));
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
        if self.rows >= FREEZE_ROWS {
            self.freeze();
        }
    }

    /// Moves the unfrozen rows into an immutable batch.
    fn freeze(&mut self) {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.time.finish())];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        match self.batch(arrays) {
            Ok(batch) => {
                self.frozen_rows += batch.num_rows();
                self.frozen.push(Chunk {
                    batch,
                    range: self.open_min..=self.open_max,
                    fresh: self.open_fresh,
                });
                self.open_fresh = true;
                self.rows = 0;
                self.open_text = 0;
                self.open_min = i64::MAX;
                self.open_max = i64::MIN;
            }
            Err(e) => tracing::error!("freezing the buffer of table {:?}: {e}", self.name),
        }
    }

    /// The unfrozen rows as a batch, leaving them in place.
    fn snapshot(&self) -> Result<RecordBatch, StoreError> {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.time.finish_cloned())];
        arrays.extend(self.columns.iter().map(ColumnBuilder::finish_cloned));
        self.batch(arrays)
    }

    /// A batch of `arrays`: time, then the buffer's columns.
    fn batch(&self, arrays: Vec<ArrayRef>) -> Result<RecordBatch, StoreError> {
        let mut fields = vec![Field::new(TIME_COLUMN, arrow_type(ColumnKind::Time), false)];
        for (name, column) in self.names.iter().zip(&self.columns) {
            fields.push(Field::new(name, arrow_type(column.kind()), true));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|source| {
            StoreError::Arrow {
                table: self.name.clone(),
                source,
            }
        })
    }
}
