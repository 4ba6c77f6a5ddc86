//! The latest row of every series of a table: "the current state of each
//! host, interface or path", without reading every row.
//!
//! A scan plan's sources (files and memory) hold every point once, so the
//! latest row of a series is the latest of each source's latest rows. A
//! Parquet file never changes, so its latest rows are computed once, on the
//! first request that needs them, and kept until the file leaves the
//! manifest; rows in memory are few and reduced on each request.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

use crate::buffer::align;
use crate::error::StoreError;
use crate::persist::{read_parquet_batches, sort_dedup, tag_columns};
use crate::scan::TableScan;

/// Latest rows per data file (by file name), as read with the file's
/// columns; aligned to a query's schema when used.
#[derive(Debug, Default)]
pub(crate) struct LastRowsCache(HashMap<String, RecordBatch>);

impl LastRowsCache {
    /// Forgets files no longer in the manifest.
    pub(crate) fn retain(&mut self, live: impl Fn(&str) -> bool) {
        self.0.retain(|name, _| live(name));
    }
}

/// The latest row of every series in `scan`, with exactly `schema`, sorted
/// by series; rows past the database's retention are left out.
pub(crate) fn last_rows(
    table: &str,
    schema: &SchemaRef,
    scan: &TableScan,
    cache: &std::sync::Mutex<LastRowsCache>,
) -> Result<RecordBatch, StoreError> {
    let mut candidates = Vec::new();
    for file in &scan.files {
        let cached = cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .get(&file.file.name)
            .cloned();
        let rows = match cached {
            Some(rows) => rows,
            None => {
                let rows = file_last_rows(table, schema, &file.path)?;
                cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .0
                    .insert(file.file.name.clone(), rows.clone());
                rows
            }
        };
        candidates.push(align(&rows, schema, table)?);
    }
    for batch in &scan.batches {
        let sorted = sort_dedup(table, schema, std::slice::from_ref(batch))?;
        candidates.push(latest_per_series(table, &sorted)?);
    }
    let sorted = sort_dedup(table, schema, &candidates)?;
    let latest = latest_per_series(table, &sorted)?;
    match scan.keep_from {
        // A series whose latest row is past retention has no row left.
        Some(cutoff) => crate::keep_after(&latest, Some(cutoff), table),
        None => Ok(latest),
    }
}

/// The latest row of every series in one data file, reading it one batch
/// at a time.
fn file_last_rows(
    table: &str,
    schema: &SchemaRef,
    path: &std::path::Path,
) -> Result<RecordBatch, StoreError> {
    let mut file_schema = None;
    let mut latest = Vec::new();
    for batch in read_parquet_batches(path)? {
        let batch = batch?;
        let batch_schema = batch.schema();
        let sorted = sort_dedup(table, &batch_schema, &[batch])?;
        latest.push(latest_per_series(table, &sorted)?);
        file_schema = Some(batch_schema);
    }
    let Some(file_schema) = file_schema else {
        return Ok(RecordBatch::new_empty(Arc::clone(schema)));
    };
    let sorted = sort_dedup(table, &file_schema, &latest)?;
    latest_per_series(table, &sorted)
}

/// The last row of each run of equal tags in `sorted` (sorted by tags, then
/// time: so the latest row of each series).
fn latest_per_series(table: &str, sorted: &RecordBatch) -> Result<RecordBatch, StoreError> {
    let n = sorted.num_rows();
    if n == 0 {
        return Ok(sorted.clone());
    }
    let arrow_err = |source| StoreError::Arrow {
        table: table.to_owned(),
        source,
    };
    let schema = sorted.schema();
    let tags = tag_columns(&schema);
    let last: Vec<u32> = if tags.is_empty() {
        vec![(n - 1) as u32]
    } else {
        let converter = RowConverter::new(
            tags.iter()
                .map(|&i| SortField::new(schema.field(i).data_type().clone()))
                .collect(),
        )
        .map_err(arrow_err)?;
        let columns: Vec<ArrayRef> = tags.iter().map(|&i| Arc::clone(sorted.column(i))).collect();
        let rows = converter.convert_columns(&columns).map_err(arrow_err)?;
        (0..n)
            .filter(|&i| i + 1 == n || rows.row(i) != rows.row(i + 1))
            .map(|i| i as u32)
            .collect()
    };
    let indices = UInt32Array::from(last);
    let columns = sorted
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &indices, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow_err)?;
    RecordBatch::try_new(schema, columns).map_err(arrow_err)
}
