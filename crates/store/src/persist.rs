//! Turning buffered rows into Parquet: sort by (series, time), drop
//! duplicates with the later write winning per field, split by UTC day, and
//! write ZSTD-compressed files with dictionary tags, delta-encoded time and
//! page-level statistics.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, TimestampNanosecondArray, UInt32Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::catalog::{sync_dir, TIME_COLUMN};
use crate::error::StoreError;

/// Rows per Parquet row group: small enough that a query's filters skip
/// most of a file and that DataFusion can read one file in parallel.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Rows per data page at most: a selective query decodes only the pages
/// its filters keep (by the page index), so smaller pages read less; on
/// TSBS cpu-only, 8 Ki rows instead of the ~18 Ki that fill 1 MiB took a
/// one-host hour from 3.0 to 2.3 ms and files from 0.355 to 0.378 bytes
/// per value.
const PAGE_ROWS: usize = 8 * 1024;

/// Nanoseconds in a UTC day: the time partition of persisted files.
pub(crate) const DAY_NANOS: i64 = 86_400_000_000_000;

fn arrow_err(table: &str) -> impl Fn(arrow::error::ArrowError) -> StoreError + '_ {
    move |source| StoreError::Arrow {
        table: table.to_owned(),
        source,
    }
}

fn parquet_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl Fn(parquet::errors::ParquetError) -> StoreError + 'a {
    move |e| StoreError::Parquet {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// The tag columns of `schema` (tags are dictionary-encoded), in order.
pub(crate) fn tag_columns(schema: &SchemaRef) -> Vec<usize> {
    schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.data_type(), DataType::Dictionary(..)))
        .map(|(i, _)| i)
        .collect()
}

/// The columns that identify a point — the tags in schema order, then
/// time — and a converter of them into comparable rows.
pub(crate) fn series_key(
    table: &str,
    schema: &SchemaRef,
) -> Result<(Vec<usize>, RowConverter), StoreError> {
    let key_columns: Vec<usize> = tag_columns(schema)
        .into_iter()
        .chain(schema.index_of(TIME_COLUMN).ok())
        .collect();
    let converter = RowConverter::new(
        key_columns
            .iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )
    .map_err(arrow_err(table))?;
    Ok((key_columns, converter))
}

/// All `batches` (already aligned to `schema`) as one batch sorted by the
/// tag columns in schema order, then time; rows with the same series and
/// time merge into one whose every field holds the last non-null value
/// written (InfluxDB's rule: a later write wins, field by field).
pub(crate) fn sort_dedup(
    table: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<RecordBatch, StoreError> {
    let all = concat_batches(schema, batches).map_err(arrow_err(table))?;
    let n = all.num_rows();
    if n == 0 {
        return Ok(all);
    }
    let (key_columns, converter) = series_key(table, schema)?;
    let keys: Vec<ArrayRef> = key_columns
        .iter()
        .map(|&i| Arc::clone(all.column(i)))
        .collect();
    let rows = converter.convert_columns(&keys).map_err(arrow_err(table))?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    // Stable: equal keys keep arrival order, so "last" means written last.
    order.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)));

    // Group boundaries: runs of equal (series, time).
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for i in 1..=n {
        if i == n || rows.row(order[i] as usize) != rows.row(order[start] as usize) {
            groups.push((start, i));
            start = i;
        }
    }
    if groups.len() == n {
        let indices = UInt32Array::from(order);
        return take_all(table, schema, &all, |_| &indices);
    }
    let columns: Vec<UInt32Array> = all
        .columns()
        .iter()
        .map(|column| {
            groups
                .iter()
                .map(|&(s, e)| {
                    let run = &order[s..e];
                    run.iter()
                        .rev()
                        .copied()
                        .find(|&r| column.is_valid(r as usize))
                        .unwrap_or(run[run.len() - 1])
                })
                .collect()
        })
        .collect();
    take_all(table, schema, &all, |c| &columns[c])
}

fn take_all<'i>(
    table: &str,
    schema: &SchemaRef,
    all: &RecordBatch,
    indices: impl Fn(usize) -> &'i UInt32Array,
) -> Result<RecordBatch, StoreError> {
    let columns = all
        .columns()
        .iter()
        .enumerate()
        .map(|(c, column)| take(column.as_ref(), indices(c), None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow_err(table))?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(arrow_err(table))
}

/// Splits a sorted batch by UTC day of its time column, keeping row order.
pub(crate) fn split_by_day(
    table: &str,
    batch: &RecordBatch,
) -> Result<Vec<RecordBatch>, StoreError> {
    let Some(time) = batch
        .column_by_name(TIME_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
    else {
        return Ok(vec![batch.clone()]);
    };
    let mut days: std::collections::BTreeMap<i64, Vec<u32>> = Default::default();
    for (i, t) in time.values().iter().enumerate() {
        days.entry(t.div_euclid(DAY_NANOS))
            .or_default()
            .push(i as u32);
    }
    if days.len() <= 1 {
        return Ok(vec![batch.clone()]);
    }
    days.into_values()
        .map(|rows| {
            let indices = UInt32Array::from(rows);
            take_all(table, &batch.schema(), batch, |_| &indices)
        })
        .collect()
}

/// The earliest and latest time of a batch with rows.
pub(crate) fn time_bounds(batch: &RecordBatch) -> Option<(i64, i64)> {
    let time = batch
        .column_by_name(TIME_COLUMN)?
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()?;
    let min = time.values().iter().min()?;
    let max = time.values().iter().max()?;
    Some((*min, *max))
}

/// What a written data file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) bytes: u64,
    pub(crate) rows: usize,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
}

/// Writes `batches` (with `schema`) to `path` durably (temporary file,
/// fsync, rename, fsync of the directory), one batch in memory at a time;
/// `None`, and no file, if they hold no row. Data is compressed with zstd,
/// except daily rollups (`fast_to_read`), with LZ4: month-long questions
/// read those files whole, mostly their sketches; LZ4 decodes them faster,
/// and parquet's zstd codec also builds a compression and a decompression
/// context for every column chunk it reads. (It costs ~35 % more bytes
/// than zstd on files that are ~1/10 of the half-hour rollups.)
pub(crate) fn write_parquet(
    path: &Path,
    schema: &SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch, StoreError>>,
    fast_to_read: bool,
) -> Result<Option<Written>, StoreError> {
    let compression = if fast_to_read {
        Compression::LZ4_RAW
    } else {
        Compression::ZSTD(ZstdLevel::default())
    };
    let mut props = WriterProperties::builder()
        .set_compression(compression)
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS);
    // Time and integer fields, sorted by series, change by small steps:
    // deltas pack them far tighter than a dictionary does.
    for field in schema.fields() {
        let column = parquet::schema::types::ColumnPath::from(field.name().as_str());
        match field.data_type() {
            DataType::Int64 | DataType::UInt64 | DataType::Timestamp(..) => {
                props = props
                    .set_column_dictionary_enabled(column.clone(), false)
                    .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
            }
            // Rollup sketches differ row by row: a dictionary only costs
            // time to build and to read through.
            DataType::Binary => props = props.set_column_dictionary_enabled(column, false),
            _ => {}
        }
    }
    let props = props.build();
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).map_err(|e| StoreError::io("creating", &tmp, e))?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(schema), Some(props))
        .map_err(parquet_err("starting to write", &tmp))?;
    let mut written = Written {
        bytes: 0,
        rows: 0,
        min_time: i64::MAX,
        max_time: i64::MIN,
    };
    let result = batches.into_iter().try_for_each(|batch| {
        let batch = batch?;
        if let Some((min, max)) = time_bounds(&batch) {
            written.min_time = written.min_time.min(min);
            written.max_time = written.max_time.max(max);
        }
        written.rows += batch.num_rows();
        writer.write(&batch).map_err(parquet_err("writing", &tmp))
    });
    if let Err(e) = result {
        drop(writer);
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let file = writer
        .into_inner()
        .map_err(parquet_err("finishing", &tmp))?;
    if written.rows == 0 {
        drop(file);
        std::fs::remove_file(&tmp).map_err(|e| StoreError::io("removing", &tmp, e))?;
        return Ok(None);
    }
    file.sync_all()
        .map_err(|e| StoreError::io("syncing", &tmp, e))?;
    written.bytes = file
        .metadata()
        .map_err(|e| StoreError::io("reading the size of", &tmp, e))?
        .len();
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io("renaming into place", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(Some(written))
}

/// The rows of the Parquet file at `path`, one batch at a time.
pub(crate) fn read_parquet_batches(
    path: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, StoreError>> + Send + 'static, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io("opening", path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_err("reading", path))?
        .with_batch_size(8192)
        .build()
        .map_err(parquet_err("reading", path))?;
    let path = path.to_owned();
    Ok(reader.map(move |batch| {
        batch.map_err(|e| StoreError::Parquet {
            what: "reading",
            path: path.clone(),
            reason: e.to_string(),
        })
    }))
}

/// Reads every row of the Parquet file at `path`.
pub(crate) fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, StoreError> {
    read_parquet_batches(path)?.collect()
}
