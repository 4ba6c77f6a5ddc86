//! Row queries: the rows of one table that pass a time range, tag values
//! and comparisons of columns with numbers, as they are, sorted and
//! limited. Comparisons use Arrow's kernels, as DataFusion does; a
//! comparison DataFusion would answer by converting the column (an integer
//! column against a fraction, an unsigned one) is left to it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, BooleanArray, Datum, Float64Array, Int64Array, TimestampNanosecondArray,
};
use arrow::compute::kernels::cmp;
use arrow::compute::{and, concat_batches, filter};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::BinaryOperator;
use store::{Store, TableScan};

use super::groups::{per_row, tag_passes};
use super::read::{self, ColumnList, Columns, MetadataCache, Wanted};
use super::shape::{Number, OrderKey, RowQuery};
use super::{GiveUp, Outcome};

/// Most rows a row query collects; past this it gives up, and DataFusion,
/// which streams rows to the client instead of holding them, answers.
const MAX_ROWS: usize = 1 << 20;

/// A comparison ready to run: the column's position among the read
/// columns, the operator, the number as a scalar of the column's type.
type Compare = (usize, BinaryOperator, Arc<dyn Datum>);

/// The answer to `query` over database `db` of `store`, as
/// [`super::answer`].
pub(crate) fn answer(
    store: &Store,
    cache: &MetadataCache,
    db: &str,
    query: &RowQuery,
    cancel: &AtomicBool,
    most_rows: Option<usize>,
    scan: Option<TableScan>,
) -> Result<Outcome, GiveUp> {
    let table = store.table_schema(db, &query.table).ok_or(GiveUp)?;
    let selected: Vec<usize> = match &query.columns {
        None => (0..table.fields().len()).collect(),
        Some(names) => names
            .iter()
            .map(|n| table.index_of(n).map_err(|_| GiveUp))
            .collect::<Result<_, _>>()?,
    };
    let schema = Arc::new(table.project(&selected).map_err(|_| GiveUp)?);
    // The columns to read, each once: `time`, the selected ones, then those
    // only filtered on.
    let mut columns = ColumnList::new();
    let outputs: Vec<usize> = schema
        .fields()
        .iter()
        .map(|f| columns.at(f.name()))
        .collect();
    let mut filters = Vec::new();
    for filter in &query.filters {
        let field = table.field_with_name(&filter.column).map_err(|_| GiveUp)?;
        if !matches!(field.data_type(), DataType::Dictionary(..)) {
            return Err(GiveUp);
        }
        filters.push((columns.at(&filter.column), filter.values.clone()));
    }
    let mut compares: Vec<Compare> = Vec::new();
    for c in &query.comparisons {
        let field = table.field_with_name(&c.column).map_err(|_| GiveUp)?;
        let scalar: Arc<dyn Datum> = match (field.data_type(), c.number) {
            (DataType::Float64, Number::Float(f)) => Arc::new(Float64Array::new_scalar(f)),
            (DataType::Float64, Number::Int(i)) => Arc::new(Float64Array::new_scalar(i as f64)),
            (DataType::Int64, Number::Int(i)) => Arc::new(Int64Array::new_scalar(i)),
            _ => return Err(GiveUp),
        };
        compares.push((columns.at(&c.column), c.op.clone(), scalar));
    }
    let order = sort_keys(query, &schema)?;
    let (scan, time) = super::planned(store, db, &query.table, &table, &query.time, scan)?;
    let wanted = Wanted {
        columns: columns.names(),
        time: time.clone(),
        filters: &filters,
    };
    let (mut kept, mut total) = (Vec::new(), 0);
    let read = read::read(&scan, &wanted, cache, cancel, most_rows, |batch, _| {
        let mask = mask(batch, &time, &filters, &compares)?;
        let rows = mask.true_count();
        if rows == 0 {
            return Ok(());
        }
        total += rows;
        if total > MAX_ROWS {
            return Err(GiveUp);
        }
        let arrays = outputs
            .iter()
            .zip(schema.fields())
            .map(|(&c, field)| match &batch[c] {
                Some(column) => filter(column, &mask).map_err(|_| GiveUp),
                None => Ok(new_null_array(field.data_type(), rows)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        kept.push(RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(|_| GiveUp)?);
        Ok(())
    })?;
    if !read {
        return Ok(Outcome::TooBig(scan));
    }
    drop(scan);
    let all = concat_batches(&schema, &kept).map_err(|_| GiveUp)?;
    let batch = super::sort_and_limit(all, &order, query.limit)?;
    Ok(Outcome::Answer((schema, batch)))
}

/// `ORDER BY` keys as columns of the answer; a name not among them (which
/// DataFusion would sort by anyway) gives up.
fn sort_keys(
    query: &RowQuery,
    schema: &Schema,
) -> Result<Vec<(usize, arrow::compute::SortOptions)>, GiveUp> {
    query
        .order
        .iter()
        .map(|(key, options)| {
            let at = match key {
                OrderKey::Position(p) => Some(*p).filter(|&p| p < schema.fields().len()),
                OrderKey::Name(name) => schema.index_of(name).ok(),
            };
            at.map(|at| (at, *options)).ok_or(GiveUp)
        })
        .collect()
}

/// Which rows of a batch pass the time range, the tag filters and the
/// comparisons.
fn mask(
    batch: &Columns,
    time: &std::ops::RangeInclusive<i64>,
    filters: &[(usize, Vec<String>)],
    compares: &[Compare],
) -> Result<BooleanArray, GiveUp> {
    let times = batch[0]
        .as_ref()
        .and_then(|t| t.as_any().downcast_ref::<TimestampNanosecondArray>())
        .ok_or(GiveUp)?;
    let mut mask: BooleanArray = times
        .iter()
        .map(|t| Some(t.is_some_and(|t| time.contains(&t))))
        .collect();
    for (column, values) in filters {
        let Some(column) = &batch[*column] else {
            return Ok(BooleanArray::from(vec![false; times.len()]));
        };
        let (keys, pass) = tag_passes(column, |v| values.iter().any(|w| w == v))?;
        let rows = (0..times.len())
            .map(|i| per_row(keys, &pass, i).map(|p| Some(p == Some(true))))
            .collect::<Result<BooleanArray, GiveUp>>()?;
        mask = and(&mask, &rows).map_err(|_| GiveUp)?;
    }
    for (column, op, scalar) in compares {
        let Some(column) = &batch[*column] else {
            return Ok(BooleanArray::from(vec![false; times.len()]));
        };
        let scalar = scalar.as_ref();
        let passed = match op {
            BinaryOperator::Gt => cmp::gt(column, scalar),
            BinaryOperator::GtEq => cmp::gt_eq(column, scalar),
            BinaryOperator::Lt => cmp::lt(column, scalar),
            BinaryOperator::LtEq => cmp::lt_eq(column, scalar),
            BinaryOperator::Eq => cmp::eq(column, scalar),
            BinaryOperator::NotEq => cmp::neq(column, scalar),
            _ => return Err(GiveUp),
        }
        .map_err(|_| GiveUp)?;
        mask = and(&mask, &passed).map_err(|_| GiveUp)?;
    }
    // A null comparison (a null value) is no pass.
    Ok(match mask.nulls() {
        Some(_) => mask.iter().map(|m| Some(m == Some(true))).collect(),
        None => mask,
    })
}
