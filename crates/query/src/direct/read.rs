//! Reading the rows a bucket query needs: only its columns, and of the
//! persisted files only the row groups and pages whose statistics say they
//! may hold rows in its time range with its tag values. Rows come back in
//! batches; the caller still checks every row.

use std::collections::HashMap;
use std::fs::File;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, RowGroupMetaData};
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use datafusion::parquet::file::statistics::Statistics;
use store::catalog::TIME_COLUMN;
use store::TableScan;

use super::GiveUp;

/// Batches decoded at a time: a data page of persisted files holds 8192 rows.
const BATCH_ROWS: usize = 8192;

/// Files whose footer and page index are kept; past this the cache starts
/// over (files are immutable and never renamed, so entries never go stale,
/// but deleted files leave theirs behind).
const CACHED_FILES: usize = 256;

/// What to read of a table.
#[derive(Debug)]
pub(crate) struct Wanted<'a> {
    /// Distinct column names; the first is `time`.
    pub(crate) columns: &'a [String],
    /// Rows in this range of `time`, both ends included (the caller has
    /// narrowed it to the scan's retention, `keep_from`).
    pub(crate) time: RangeInclusive<i64>,
    /// Rows whose column (an index into `columns`) holds one of the values.
    pub(crate) filters: &'a [(usize, Vec<String>)],
}

/// The columns a query reads, each once, `time` first.
#[derive(Debug)]
pub(crate) struct ColumnList(Vec<String>);

impl ColumnList {
    /// Just `time`.
    pub(crate) fn new() -> Self {
        ColumnList(vec![TIME_COLUMN.to_owned()])
    }

    /// The position of column `name`, added if new.
    pub(crate) fn at(&mut self, name: &str) -> usize {
        match self.0.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.0.push(name.to_owned());
                self.0.len() - 1
            }
        }
    }

    /// The names, in position order.
    pub(crate) fn names(&self) -> &[String] {
        &self.0
    }
}

/// One batch of rows: the wanted columns in order, `None` where a file
/// predates a column (its rows hold null there).
pub(crate) type Columns = Vec<Option<ArrayRef>>;

/// Footers and page indexes of persisted files, parsed once.
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    files: Mutex<HashMap<PathBuf, ArrowReaderMetadata>>,
}

impl MetadataCache {
    fn get(&self, path: &Path) -> Result<ArrowReaderMetadata, GiveUp> {
        let lock = || self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(meta) = lock().get(path) {
            return Ok(meta.clone());
        }
        let file = File::open(path).map_err(|_| GiveUp)?;
        let meta = ArrowReaderMetadata::load(
            &file,
            ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
        )
        .map_err(|_| GiveUp)?;
        let mut files = lock();
        if files.len() >= CACHED_FILES {
            files.clear();
        }
        files.insert(path.to_owned(), meta.clone());
        Ok(meta)
    }
}

/// Hands every batch of `scan` that may hold wanted rows to `each`, files
/// first, then memory, with whether the batch is sorted by series (tags in
/// schema order) then time, as files are. Stops early, giving up, if
/// `cancel` is set.
///
/// With `most_rows`, reads nothing and returns `false` if the rows left
/// after pruning are more than that.
pub(crate) fn read(
    scan: &TableScan,
    wanted: &Wanted<'_>,
    cache: &MetadataCache,
    cancel: &AtomicBool,
    most_rows: Option<usize>,
    mut each: impl FnMut(&Columns, bool) -> Result<(), GiveUp>,
) -> Result<bool, GiveUp> {
    let mut plans = Vec::with_capacity(scan.files.len());
    let mut rows: usize = scan.batches.iter().map(RecordBatch::num_rows).sum();
    for file in &scan.files {
        if let Some(plan) = plan_file(&file.path, wanted, cache)? {
            rows += plan.selected_rows;
            plans.push(plan);
        }
    }
    if most_rows.is_some_and(|most| rows > most) {
        return Ok(false);
    }
    for plan in plans {
        read_file(plan, wanted, cancel, &mut each)?;
    }
    for batch in &scan.batches {
        hand_over(batch, wanted, false, cancel, &mut each)?;
    }
    Ok(true)
}

/// Gives `each` the wanted columns of `batch`, unless cancelled.
fn hand_over(
    batch: &RecordBatch,
    wanted: &Wanted<'_>,
    sorted: bool,
    cancel: &AtomicBool,
    each: &mut impl FnMut(&Columns, bool) -> Result<(), GiveUp>,
) -> Result<(), GiveUp> {
    if cancel.load(Ordering::Relaxed) {
        return Err(GiveUp);
    }
    let columns = wanted
        .columns
        .iter()
        .map(|c| batch.column_by_name(c).cloned())
        .collect();
    each(&columns, sorted)
}

/// What to read of one file.
struct FilePlan<'a> {
    path: &'a Path,
    meta: ArrowReaderMetadata,
    /// The file's position of each wanted column, if it has it.
    at: Vec<Option<usize>>,
    row_groups: Vec<usize>,
    /// Rows to read, counted across `row_groups` (of `rows` rows).
    selected: Vec<Range<usize>>,
    rows: usize,
    selected_rows: usize,
}

/// The row groups and pages of a file that may hold wanted rows; `None`
/// if none may.
fn plan_file<'a>(
    path: &'a Path,
    wanted: &Wanted<'_>,
    cache: &MetadataCache,
) -> Result<Option<FilePlan<'a>>, GiveUp> {
    let meta = cache.get(path)?;
    let at: Vec<Option<usize>> = wanted
        .columns
        .iter()
        .map(|c| meta.schema().index_of(c).ok())
        .collect();
    let time_at = at[0].ok_or(GiveUp)?;
    let mut filters: Vec<(usize, &[String])> = Vec::new();
    for (i, values) in wanted.filters {
        match at[*i] {
            Some(column) => filters.push((column, values.as_slice())),
            // A filtered column the file lacks is null in all its rows.
            None => return Ok(None),
        }
    }
    let metadata = meta.metadata();
    let (mut row_groups, mut selected, mut rows) = (Vec::new(), Vec::new(), 0);
    for (g, group) in metadata.row_groups().iter().enumerate() {
        if !group_may_match(group, time_at, &wanted.time, &filters) {
            continue;
        }
        let group_rows = usize::try_from(group.num_rows()).map_err(|_| GiveUp)?;
        let mut ranges: Vec<Range<usize>> = std::iter::once(0..group_rows).collect();
        ranges = intersect(
            &ranges,
            &page_ranges(metadata, g, time_at, group_rows, |index, p| {
                time_page_may_match(index, p, &wanted.time)
            }),
        );
        for (column, values) in &filters {
            ranges = intersect(
                &ranges,
                &page_ranges(metadata, g, *column, group_rows, |index, p| {
                    tag_page_may_match(index, p, values)
                }),
            );
        }
        if ranges.is_empty() {
            continue;
        }
        row_groups.push(g);
        selected.extend(ranges.into_iter().map(|r| rows + r.start..rows + r.end));
        rows += group_rows;
    }
    if row_groups.is_empty() {
        return Ok(None);
    }
    let selected_rows = selected.iter().map(ExactSizeIterator::len).sum();
    Ok(Some(FilePlan {
        path,
        meta,
        at,
        row_groups,
        selected,
        rows,
        selected_rows,
    }))
}

fn read_file(
    plan: FilePlan<'_>,
    wanted: &Wanted<'_>,
    cancel: &AtomicBool,
    each: &mut impl FnMut(&Columns, bool) -> Result<(), GiveUp>,
) -> Result<(), GiveUp> {
    let mask = ProjectionMask::roots(
        plan.meta.parquet_schema(),
        plan.at.iter().flatten().copied(),
    );
    let file = File::open(plan.path).map_err(|_| GiveUp)?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, plan.meta)
        .with_projection(mask)
        .with_row_groups(plan.row_groups)
        .with_row_selection(RowSelection::from_consecutive_ranges(
            plan.selected.into_iter(),
            plan.rows,
        ))
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|_| GiveUp)?;
    for batch in reader {
        hand_over(&batch.map_err(|_| GiveUp)?, wanted, true, cancel, each)?;
    }
    Ok(())
}

/// Whether a row group's chunk statistics allow wanted rows.
fn group_may_match(
    group: &RowGroupMetaData,
    time_at: usize,
    time: &RangeInclusive<i64>,
    filters: &[(usize, &[String])],
) -> bool {
    if let Some(Statistics::Int64(s)) = group.column(time_at).statistics() {
        if let (Some(min), Some(max)) = (s.min_opt(), s.max_opt()) {
            if max < time.start() || min > time.end() {
                return false;
            }
        }
    }
    filters.iter().all(|(column, values)| {
        let Some(stats) = group.column(*column).statistics() else {
            return true;
        };
        if stats.null_count_opt() == Some(group.num_rows().unsigned_abs()) {
            return false;
        }
        match (stats.min_bytes_opt(), stats.max_bytes_opt()) {
            (Some(min), Some(max)) => any_between(values, min, max),
            _ => true,
        }
    })
}

fn any_between(values: &[String], min: &[u8], max: &[u8]) -> bool {
    values
        .iter()
        .any(|v| min <= v.as_bytes() && v.as_bytes() <= max)
}

fn time_page_may_match(
    index: &ColumnIndexMetaData,
    page: usize,
    time: &RangeInclusive<i64>,
) -> bool {
    match index {
        ColumnIndexMetaData::INT64(ix) => match (ix.min_value(page), ix.max_value(page)) {
            (Some(min), Some(max)) => max >= time.start() && min <= time.end(),
            _ => true,
        },
        _ => true,
    }
}

fn tag_page_may_match(index: &ColumnIndexMetaData, page: usize, values: &[String]) -> bool {
    match index {
        ColumnIndexMetaData::BYTE_ARRAY(ix) => {
            if ix.is_null_page(page) {
                return false;
            }
            match (ix.min_value(page), ix.max_value(page)) {
                (Some(min), Some(max)) => any_between(values, min, max),
                _ => true,
            }
        }
        _ => true,
    }
}

/// The rows (relative to the row group) of the pages of one column that
/// `keep` keeps; all rows without a page index.
fn page_ranges(
    metadata: &ParquetMetaData,
    group: usize,
    column: usize,
    group_rows: usize,
    keep: impl Fn(&ColumnIndexMetaData, usize) -> bool,
) -> Vec<Range<usize>> {
    let index = metadata
        .column_index()
        .and_then(|i| i.get(group)?.get(column));
    let offsets = metadata
        .offset_index()
        .and_then(|i| i.get(group)?.get(column));
    let (Some(index), Some(offsets)) = (index, offsets) else {
        return std::iter::once(0..group_rows).collect();
    };
    let pages = offsets.page_locations();
    let all = || std::iter::once(0..group_rows).collect();
    let Some(starts) = pages
        .iter()
        .map(|p| usize::try_from(p.first_row_index).ok())
        .collect::<Option<Vec<usize>>>()
    else {
        return all();
    };
    let ordered = starts.first() == Some(&0)
        && starts.windows(2).all(|w| w[0] < w[1])
        && starts.last().is_some_and(|&s| s < group_rows);
    if !ordered || index.num_pages() != pages.len() as u64 {
        // An index that does not describe the row group: read it all.
        return all();
    }
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (p, &start) in starts.iter().enumerate() {
        if !keep(index, p) {
            continue;
        }
        let end = starts.get(p + 1).copied().unwrap_or(group_rows);
        match ranges.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => ranges.push(start..end),
        }
    }
    ranges
}

/// The rows in both sorted, disjoint lists of ranges.
fn intersect(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(start..end);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
// Lists of one range are lists here, not ranges meant as lists.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn intersects_ranges() {
        assert_eq!(intersect(&[0..10, 20..30], &[5..25]), vec![5..10, 20..25]);
        assert_eq!(intersect(&[0..10], &[10..20]), Vec::<Range<usize>>::new());
        assert_eq!(intersect(&[0..100], &[0..100]), vec![0..100]);
        assert_eq!(
            intersect(&[0..5, 6..9], &[4..7, 8..20]),
            vec![4..5, 6..7, 8..9]
        );
    }
}
