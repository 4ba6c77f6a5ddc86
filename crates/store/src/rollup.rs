//! Rollups: per series, bucket and numeric field, the count, sum, minimum,
//! maximum and a DDSketch of the values, written by each persist beside the
//! raw rows (unless the database keeps none, `Store::set_rollups`) at two grains ([`RollupGrain`]): half-hours, exposed as table
//! `<table>_30m`, and UTC days, exposed as `<table>_1d` (48 times fewer rows
//! for questions over weeks and months).
//!
//! A persist rolls up only the rows it persists, so a bucket whose rows
//! arrive over several persists has several partial rows; they merge at
//! query time (sum of counts and sums, min of minima, max of maxima,
//! `sketch_merge` of sketches), and compaction merges them into one row
//! when it rewrites a day. Late data never rewrites earlier files.
//!
//! A rollup table's columns follow from its raw table's: the tags, `time`
//! (the start of the bucket), `_rows` (rows rolled up), then for each
//! numeric or boolean field `F`: `F_count`, `F_sum`, `F_min`, `F_max` (as
//! floats; a boolean counts as 0 or 1), and for numeric fields `F_sketch`
//! (the encoded DDSketch at 1 % relative accuracy). A generated name that
//! another column already has is left out.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, Float64Array, Float64Builder, TimestampNanosecondArray,
    UInt32Array, UInt64Array, UInt64Builder,
};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use sketch::DDSketch;

use crate::catalog::TIME_COLUMN;
use crate::error::StoreError;
use crate::persist::tag_columns;

/// The suffix that names a table's half-hour rollups: `probe_http` →
/// `probe_http_30m`.
pub const ROLLUP_SUFFIX: &str = "_30m";

/// The length of a half-hour rollup bucket, in nanoseconds.
pub const ROLLUP_NANOS: i64 = 30 * 60 * 1_000_000_000;

/// The bucket length of a rollup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RollupGrain {
    /// Half-hours (UTC), table `<raw>_30m`.
    HalfHour,
    /// UTC days, table `<raw>_1d`.
    Day,
}

impl RollupGrain {
    /// Every grain, finest first.
    pub const ALL: [RollupGrain; 2] = [RollupGrain::HalfHour, RollupGrain::Day];

    /// The suffix of its tables' names.
    pub fn suffix(self) -> &'static str {
        match self {
            RollupGrain::HalfHour => ROLLUP_SUFFIX,
            RollupGrain::Day => "_1d",
        }
    }

    /// The length of its buckets, in nanoseconds.
    pub fn nanos(self) -> i64 {
        match self {
            RollupGrain::HalfHour => ROLLUP_NANOS,
            RollupGrain::Day => 48 * ROLLUP_NANOS,
        }
    }

    /// The name of raw table `raw`'s rollup table at this grain.
    pub fn table_name(self, raw: &str) -> String {
        format!("{raw}{}", self.suffix())
    }

    /// The raw table and grain a rollup table's name stands for, if it
    /// ends with a grain's suffix.
    pub fn of_table(table: &str) -> Option<(&str, RollupGrain)> {
        RollupGrain::ALL
            .into_iter()
            .find_map(|g| Some((table.strip_suffix(g.suffix())?, g)))
    }

    /// The start of the bucket that holds `nanos`.
    pub fn floor(self, nanos: i64) -> i64 {
        nanos.div_euclid(self.nanos()).saturating_mul(self.nanos())
    }
}

/// The column of a rollup table that counts the raw rows of its bucket.
pub const ROLLUP_ROWS_COLUMN: &str = "_rows";

/// The name of the half-hour rollup table of raw table `table`.
pub fn rollup_table_name(table: &str) -> String {
    RollupGrain::HalfHour.table_name(table)
}

/// What one raw field becomes in the rollup table.
#[derive(Debug, Clone)]
struct RolledField {
    /// Its index in the raw schema.
    raw: usize,
    /// Whether it has a sketch (numbers do; booleans do not).
    sketch: bool,
}

/// The columns of a rollup table and where each comes from.
#[derive(Debug, Clone)]
pub(crate) struct RollupLayout {
    pub(crate) schema: SchemaRef,
    tags: Vec<usize>,
    fields: Vec<RolledField>,
}

impl RollupLayout {
    /// The rollup layout of a raw table with Arrow schema `raw`.
    pub(crate) fn of(raw: &SchemaRef) -> RollupLayout {
        let tags = tag_columns(raw);
        let mut columns: Vec<Field> = tags.iter().map(|&i| raw.field(i).clone()).collect();
        columns.push(Field::new(
            TIME_COLUMN,
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ));
        columns.push(Field::new(ROLLUP_ROWS_COLUMN, DataType::UInt64, true));
        let mut taken: std::collections::HashSet<String> =
            columns.iter().map(|f| f.name().clone()).collect();
        let mut fields = Vec::new();
        for (i, field) in raw.fields().iter().enumerate() {
            let sketch = match field.data_type() {
                DataType::Float64 | DataType::Int64 | DataType::UInt64 => true,
                DataType::Boolean => false,
                _ => continue,
            };
            let name = field.name();
            let mut generated = vec![
                Field::new(format!("{name}_count"), DataType::UInt64, true),
                Field::new(format!("{name}_sum"), DataType::Float64, true),
                Field::new(format!("{name}_min"), DataType::Float64, true),
                Field::new(format!("{name}_max"), DataType::Float64, true),
            ];
            if sketch {
                generated.push(Field::new(format!("{name}_sketch"), DataType::Binary, true));
            }
            if generated.iter().any(|f| taken.contains(f.name())) {
                continue;
            }
            taken.extend(generated.iter().map(|f| f.name().clone()));
            columns.extend(generated);
            fields.push(RolledField { raw: i, sketch });
        }
        RollupLayout {
            schema: Arc::new(Schema::new(columns)),
            tags,
            fields,
        }
    }

    /// The rollup rows of `sorted` at `grain`: raw rows with this layout's
    /// raw schema, sorted by tags then time (as persist sorts them). One
    /// row per series and bucket, in the same order.
    pub(crate) fn summarise(
        &self,
        table: &str,
        sorted: &RecordBatch,
        grain: RollupGrain,
    ) -> Result<RecordBatch, StoreError> {
        let arrow_err = |source| StoreError::Arrow {
            table: table.to_owned(),
            source,
        };
        let Some(time) = sorted
            .column_by_name(TIME_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
        else {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.schema)));
        };
        let runs = self.runs(sorted, time, grain).map_err(arrow_err)?;
        let firsts = UInt32Array::from_iter_values(runs.iter().map(|r| r.0 as u32));
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for &tag in &self.tags {
            columns.push(take(sorted.column(tag).as_ref(), &firsts, None).map_err(arrow_err)?);
        }
        let buckets = runs
            .iter()
            .map(|&(start, _)| grain.floor(time.value(start)));
        columns.push(Arc::new(TimestampNanosecondArray::from_iter_values(
            buckets,
        )));
        columns.push(Arc::new(UInt64Array::from_iter_values(
            runs.iter().map(|&(s, e)| (e - s) as u64),
        )));
        for field in &self.fields {
            let values = cast(sorted.column(field.raw), &DataType::Float64).map_err(arrow_err)?;
            let values = values
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| StoreError::Arrow {
                    table: table.to_owned(),
                    source: arrow::error::ArrowError::CastError("not a float column".into()),
                })?;
            columns.extend(summarise_field(values, &runs, field.sketch));
        }
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(arrow_err)
    }

    /// The runs of rows of one series and bucket, as index ranges.
    fn runs(
        &self,
        sorted: &RecordBatch,
        time: &TimestampNanosecondArray,
        grain: RollupGrain,
    ) -> Result<Vec<(usize, usize)>, arrow::error::ArrowError> {
        let n = sorted.num_rows();
        if n == 0 {
            return Ok(Vec::new());
        }
        let converter = RowConverter::new(
            self.tags
                .iter()
                .map(|&i| SortField::new(sorted.schema().field(i).data_type().clone()))
                .collect(),
        )?;
        let keys: Vec<ArrayRef> = self
            .tags
            .iter()
            .map(|&i| Arc::clone(sorted.column(i)))
            .collect();
        let rows = converter.convert_columns(&keys)?;
        let bucket = |i: usize| time.value(i).div_euclid(grain.nanos());
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=n {
            if i == n || bucket(i) != bucket(start) || rows.row(i) != rows.row(start) {
                runs.push((start, i));
                start = i;
            }
        }
        Ok(runs)
    }
}

/// The count, sum, min, max (and sketch) columns of one field over `runs`.
fn summarise_field(values: &Float64Array, runs: &[(usize, usize)], sketch: bool) -> Vec<ArrayRef> {
    let mut count = UInt64Builder::with_capacity(runs.len());
    let mut sum = Float64Builder::with_capacity(runs.len());
    let mut min = Float64Builder::with_capacity(runs.len());
    let mut max = Float64Builder::with_capacity(runs.len());
    let mut sketches = BinaryBuilder::new();
    for &(start, end) in runs {
        let mut n = 0u64;
        let (mut s, mut lo, mut hi) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        let mut dd = sketch.then(DDSketch::default);
        for i in start..end {
            if values.is_null(i) {
                continue;
            }
            let v = values.value(i);
            n += 1;
            s += v;
            lo = lo.min(v);
            hi = hi.max(v);
            if let Some(dd) = &mut dd {
                dd.add(v);
            }
        }
        if n == 0 {
            count.append_null();
            sum.append_null();
            min.append_null();
            max.append_null();
            sketches.append_null();
            continue;
        }
        count.append_value(n);
        sum.append_value(s);
        min.append_value(lo);
        max.append_value(hi);
        match dd {
            Some(dd) => sketches.append_value(dd.encode()),
            None => sketches.append_null(),
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(count.finish()),
        Arc::new(sum.finish()),
        Arc::new(min.finish()),
        Arc::new(max.finish()),
    ];
    if sketch {
        columns.push(Arc::new(sketches.finish()));
    }
    columns
}

/// Merges rollup rows (any order, any number of partial rows per series
/// and bucket, all with `layout`'s schema) into one row per series and
/// bucket, sorted by tags then time: what compaction writes.
pub(crate) fn merge_partials(
    table: &str,
    layout: &RollupLayout,
    batch: &RecordBatch,
) -> Result<RecordBatch, StoreError> {
    let arrow_err = |source| StoreError::Arrow {
        table: table.to_owned(),
        source,
    };
    let schema = &layout.schema;
    let key_columns: Vec<usize> = (0..=layout.tags.len()).collect();
    let converter = RowConverter::new(
        key_columns
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )
    .map_err(arrow_err)?;
    let keys: Vec<ArrayRef> = key_columns
        .iter()
        .map(|&i| Arc::clone(batch.column(i)))
        .collect();
    let rows = converter.convert_columns(&keys).map_err(arrow_err)?;
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));
    let mut groups: Vec<Vec<u32>> = Vec::new();
    for &i in &order {
        match groups.last_mut() {
            Some(g) if rows.row(g[0] as usize) == rows.row(i as usize) => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    let firsts = UInt32Array::from_iter_values(groups.iter().map(|g| g[0]));
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for &c in &key_columns {
        columns.push(take(batch.column(c).as_ref(), &firsts, None).map_err(arrow_err)?);
    }
    for (c, field) in schema.fields().iter().enumerate().skip(key_columns.len()) {
        let column = batch.column(c);
        let merged: ArrayRef = match field.data_type() {
            DataType::UInt64 => {
                let a = downcast::<UInt64Array>(column, table)?;
                Arc::new(UInt64Array::from_iter(groups.iter().map(|g| {
                    g.iter()
                        .filter(|&&i| a.is_valid(i as usize))
                        .map(|&i| a.value(i as usize))
                        .reduce(u64::saturating_add)
                })))
            }
            DataType::Float64 => {
                let a = downcast::<Float64Array>(column, table)?;
                let combine: fn(f64, f64) -> f64 = if field.name().ends_with("_min") {
                    f64::min
                } else if field.name().ends_with("_max") {
                    f64::max
                } else {
                    |x, y| x + y
                };
                Arc::new(Float64Array::from_iter(groups.iter().map(|g| {
                    g.iter()
                        .filter(|&&i| a.is_valid(i as usize))
                        .map(|&i| a.value(i as usize))
                        .reduce(combine)
                })))
            }
            DataType::Binary => {
                let a = downcast::<arrow::array::BinaryArray>(column, table)?;
                let mut out = BinaryBuilder::new();
                for g in &groups {
                    let mut merged: Option<DDSketch> = None;
                    for &i in g {
                        if a.is_null(i as usize) {
                            continue;
                        }
                        let sketch = DDSketch::decode(a.value(i as usize)).map_err(|e| {
                            StoreError::CorruptRollup {
                                table: table.to_owned(),
                                reason: e.to_string(),
                            }
                        })?;
                        match &mut merged {
                            Some(m) => m.merge(&sketch).map_err(|e| StoreError::CorruptRollup {
                                table: table.to_owned(),
                                reason: e.to_string(),
                            })?,
                            None => merged = Some(sketch),
                        }
                    }
                    match merged {
                        Some(m) => out.append_value(m.encode()),
                        None => out.append_null(),
                    }
                }
                Arc::new(out.finish())
            }
            other => {
                return Err(StoreError::CorruptRollup {
                    table: table.to_owned(),
                    reason: format!("column {} has unexpected type {other}", field.name()),
                })
            }
        };
        columns.push(merged);
    }
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(arrow_err)
}

/// The rollup rows of `batch` (any grain finer than `grain`, `layout`'s
/// schema) at `grain`: times floored to its buckets, then merged.
pub(crate) fn coarsen(
    table: &str,
    layout: &RollupLayout,
    batch: &RecordBatch,
    grain: RollupGrain,
) -> Result<RecordBatch, StoreError> {
    let at = layout.tags.len();
    let time = downcast::<TimestampNanosecondArray>(batch.column(at), table)?;
    let floored =
        TimestampNanosecondArray::from_iter_values(time.values().iter().map(|&t| grain.floor(t)));
    let mut columns = batch.columns().to_vec();
    columns[at] = Arc::new(floored);
    let coarse =
        RecordBatch::try_new(batch.schema(), columns).map_err(|source| StoreError::Arrow {
            table: table.to_owned(),
            source,
        })?;
    merge_partials(table, layout, &coarse)
}

fn downcast<'a, T: 'static>(column: &'a ArrayRef, table: &str) -> Result<&'a T, StoreError> {
    column
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| StoreError::CorruptRollup {
            table: table.to_owned(),
            reason: format!("a column is not {}", std::any::type_name::<T>()),
        })
}
