//! Rows of one table appended into Arrow columns, in the order written:
//! the builder the write buffer appends to line by line, and the chunks
//! writers build from big writes before they are logged ([`prepare`]).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::RangeInclusive;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, StringDictionaryBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{Field, Int32Type, Schema};
use arrow::record_batch::RecordBatch;
use lineproto::{FieldValue, Line};

use crate::buffer::{arrow_type, FREEZE_ROWS, FREEZE_TEXT_BYTES};
use crate::catalog::{ColumnKind, FieldType, TIME_COLUMN};
use crate::error::StoreError;

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

/// Rows of one table appended into Arrow builders, in the order written.
#[derive(Debug)]
pub(crate) struct RowBuilder {
    /// Rows each new column makes room for.
    capacity: usize,
    pub(crate) table: String,
    time: TimestampNanosecondBuilder,
    names: Vec<String>,
    columns: Vec<ColumnBuilder>,
    index: HashMap<String, usize>,
    pub(crate) rows: usize,
    /// Text bytes (tag values and strings) among the rows.
    pub(crate) text: usize,
    /// Earliest and latest time among the rows.
    pub(crate) min: i64,
    pub(crate) max: i64,
    /// Per column, which tag or field of the line being appended sets it.
    slots: Vec<u32>,
    /// The columns of the previous line's tags and fields, by position:
    /// lines of a table mostly repeat the same keys in the same order, and
    /// comparing a key with its column's name is cheaper than hashing it.
    last_tags: Vec<usize>,
    last_fields: Vec<usize>,
}

/// Text bytes (tag values and string fields) of `line`.
pub(crate) fn text_bytes(line: &Line<'_>) -> usize {
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
    pub(crate) fn new(table: &str) -> Self {
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
    pub(crate) fn push(&mut self, line: &Line<'_>, text: usize) -> (u64, bool) {
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
    pub(crate) fn finish(&mut self) -> Result<RecordBatch, StoreError> {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.time.finish())];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        self.rows = 0;
        self.text = 0;
        self.min = i64::MAX;
        self.max = i64::MIN;
        self.batch(arrays)
    }

    /// The rows as a batch, leaving them in place.
    pub(crate) fn snapshot(&self) -> Result<RecordBatch, StoreError> {
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

/// A write is built into Arrow by its writer itself when each of its
/// tables has at least this many rows; other writes (and a write with a
/// line the schema check refuses) are appended row by row to their tables'
/// open runs, so frequent small writes do not leave a trail of tiny chunks.
pub const PREPARE_MIN_ROWS: usize = 1024;

/// A write's rows built into Arrow chunks by its writer before the log
/// record is durable, so the log thread only links them into the buffer.
#[derive(Debug)]
pub(crate) struct PreparedWrite {
    pub(crate) tables: Vec<(String, Vec<PreparedChunk>)>,
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
pub(crate) struct PreparedChunk {
    pub(crate) batch: RecordBatch,
    pub(crate) range: RangeInclusive<i64>,
    /// Each row's series hash.
    pub(crate) series: Vec<u64>,
    /// Whether a row repeats a tag key (so cannot count as fresh).
    pub(crate) repeated: bool,
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
