//! The direct path: the two most common time-series questions, answered
//! without DataFusion —
//! - rows of one table bucketed by time and grouped by tags, numeric
//!   fields aggregated (`count`, `sum`, `min`, `max`, `avg`), filtered by a
//!   time range and tag values, sorted, limited;
//! - rows of one table as they are (`SELECT *` or some columns), filtered
//!   by a time range, tag values and comparisons of columns with numbers,
//!   sorted, limited.
//!
//! DataFusion spends 2–4 ms of CPU planning and setting up any query
//! before it reads a row, more than the whole answer costs when a
//! dashboard asks for one host's last hour. The direct path recognises
//! those shapes in the parsed SQL ([`shape`]), reads only the columns,
//! row groups and pages it needs ([`read`]), and aggregates ([`groups`])
//! or filters ([`rows`]) them itself, with DataFusion's semantics: the
//! same columns, names, types, nulls, bucket starts and order.
//!
//! Anything else — another shape, a column of another type, a comparison
//! DataFusion answers by converting the column, a sum that would overflow, a NaN, an infinity or -0.0 under `min`, `max` or `sum`,
//! too many groups, an unreadable file — makes it give up
//! and DataFusion answer, so the direct path never changes what a query
//! returns, only how fast — except the last bits of a floating-point sum
//! or average, which DataFusion adds up per scan partition, in no fixed
//! order. Tests hold both paths to the same answers.

mod groups;
mod read;
mod rows;
mod shape;

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn, SortOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use store::{Store, TableScan};

use groups::Grouping;
pub(crate) use read::MetadataCache;
use read::{ColumnList, Wanted};
pub(crate) use shape::recognise;
use shape::{BucketQuery, DirectQuery, Output};

/// The direct path does not answer this query; DataFusion does.
#[derive(Debug)]
pub(crate) struct GiveUp;

/// The answer to `query` over database `db` of `store`, or [`GiveUp`].
/// Stops, giving up, once `cancel` is set. With `most_rows`, reads nothing
/// if more rows than that are left to read once files are pruned, and
/// hands back the planned `scan` to run again with, elsewhere.
pub(crate) fn answer(
    store: &Store,
    cache: &MetadataCache,
    db: &str,
    query: &DirectQuery,
    cancel: &AtomicBool,
    most_rows: Option<usize>,
    scan: Option<TableScan>,
) -> Result<Outcome, GiveUp> {
    match query {
        DirectQuery::Buckets(q) => buckets(store, cache, db, q, cancel, most_rows, scan),
        DirectQuery::Rows(q) => rows::answer(store, cache, db, q, cancel, most_rows, scan),
    }
}

/// An answer: its schema and its one batch.
pub(crate) type Answer = (SchemaRef, RecordBatch);

/// What running a direct query came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    Answer(Answer),
    /// More rows to read than the budget allowed: the scan, as planned.
    TooBig(TableScan),
}

/// The scan of `table` (planned now, unless `scan` already is) and the
/// time range narrowed to its retention: rows of files before `keep_from`
/// are past it (memory has none).
fn planned(
    store: &Store,
    db: &str,
    table: &str,
    schema: &SchemaRef,
    time: &RangeInclusive<i64>,
    scan: Option<TableScan>,
) -> Result<(TableScan, RangeInclusive<i64>), GiveUp> {
    let scan = match scan {
        Some(scan) => scan,
        None => store
            .plan_scan(db, table, schema, time)
            .map_err(|_| GiveUp)?,
    };
    let from = (*time.start()).max(scan.keep_from.unwrap_or(i64::MIN));
    Ok((scan, from..=*time.end()))
}

/// The answer to a bucket query.
fn buckets(
    store: &Store,
    cache: &MetadataCache,
    db: &str,
    query: &BucketQuery,
    cancel: &AtomicBool,
    most_rows: Option<usize>,
    scan: Option<TableScan>,
) -> Result<Outcome, GiveUp> {
    let table = store.table_schema(db, &query.table).ok_or(GiveUp)?;
    if query
        .by_alias
        .iter()
        .any(|name| table.field_with_name(name).is_ok())
    {
        return Err(GiveUp);
    }
    let data_type = |name: &str| {
        table
            .field_with_name(name)
            .map(|f| f.data_type().clone())
            .map_err(|_| GiveUp)
    };
    let is_tag = |name: &str| {
        data_type(name).and_then(|t| match t {
            DataType::Dictionary(..) => Ok(()),
            _ => Err(GiveUp),
        })
    };
    // The columns to read, each once; `time` first.
    let mut columns = ColumnList::new();
    let mut stride = None;
    let (mut tags, mut aggregates, mut types) = (Vec::new(), Vec::new(), Vec::new());
    for (_, output) in &query.outputs {
        match output {
            Output::Bucket(s) if stride.is_none() => stride = Some(*s),
            Output::Bucket(_) => return Err(GiveUp),
            Output::Tag(name) => {
                is_tag(name)?;
                tags.push(columns.at(name));
            }
            Output::Aggregate(function, column) => {
                let column = match column {
                    Some(name) => {
                        types.push(Some(data_type(name)?));
                        Some(columns.at(name))
                    }
                    None => {
                        types.push(None);
                        None
                    }
                };
                aggregates.push((column, *function));
            }
        }
    }
    let mut filters = Vec::new();
    for filter in &query.filters {
        is_tag(&filter.column)?;
        filters.push((columns.at(&filter.column), filter.values.clone()));
    }
    let with_types: Vec<_> = aggregates
        .iter()
        .zip(&types)
        .map(|(&(column, function), t)| (column, function, t.as_ref()))
        .collect();
    let allowed = filters
        .iter()
        .map(|(c, values)| (*c, values.iter().cloned().collect::<HashSet<_>>()))
        .collect();
    let (scan, time) = planned(store, db, &query.table, &table, &query.time, scan)?;
    let mut grouping = Grouping::new(stride, time.clone(), tags, allowed, &with_types)?;
    let wanted = Wanted {
        columns: columns.names(),
        time,
        filters: &filters,
    };
    let read = read::read(&scan, &wanted, cache, cancel, most_rows, |batch, sorted| {
        grouping.add(batch, sorted)
    })?;
    if !read {
        return Ok(Outcome::TooBig(scan));
    }
    drop(scan);
    output(query, &mut grouping).map(Outcome::Answer)
}

/// The answer's batch: the groups' columns in select-list order, sorted and
/// limited.
fn output(query: &BucketQuery, grouping: &mut Grouping) -> Result<Answer, GiveUp> {
    let (mut fields, mut arrays): (Vec<Field>, Vec<ArrayRef>) = (Vec::new(), Vec::new());
    let (mut tag, mut aggregate) = (0, 0);
    for (name, output) in &query.outputs {
        let (array, nullable) = match output {
            Output::Bucket(_) => (grouping.buckets(), true),
            Output::Tag(_) => {
                tag += 1;
                (grouping.tag(tag - 1)?, true)
            }
            Output::Aggregate(function, _) => {
                aggregate += 1;
                let counts = *function == shape::Aggregate::Count;
                (grouping.aggregate(aggregate - 1), !counts)
            }
        };
        let data_type = match output {
            Output::Bucket(_) => DataType::Timestamp(TimeUnit::Nanosecond, None),
            _ => array.data_type().clone(),
        };
        fields.push(Field::new(name, data_type, nullable));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(|_| GiveUp)?;
    let batch = sort_and_limit(batch, &query.order, query.limit)?;
    Ok((schema, batch))
}

/// `batch` sorted by `order` (column, options), then cut to `limit` rows.
fn sort_and_limit(
    batch: RecordBatch,
    order: &[(usize, SortOptions)],
    limit: Option<usize>,
) -> Result<RecordBatch, GiveUp> {
    if order.is_empty() {
        let rows = limit.unwrap_or(usize::MAX).min(batch.num_rows());
        return Ok(batch.slice(0, rows));
    }
    let keys: Vec<SortColumn> = order
        .iter()
        .map(|&(column, options)| SortColumn {
            values: Arc::clone(batch.column(column)),
            options: Some(options),
        })
        .collect();
    let indices = lexsort_to_indices(&keys, limit).map_err(|_| GiveUp)?;
    take_record_batch(&batch, &indices).map_err(|_| GiveUp)
}
