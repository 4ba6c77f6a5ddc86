//! Rows into groups (bucket start and tag values) and the aggregates of
//! each group, computed the way DataFusion computes them: nulls skipped,
//! averages in `f64`. Where DataFusion's results are its own peculiarity,
//! the direct path gives up instead: an integer sum that would overflow
//! (DataFusion's wraps), and a `min`, `max` or `sum` over a NaN, an
//! infinity or -0.0 (DataFusion's start from `f64::MAX`, `f64::MIN` and
//! 0.0 and compare with `partial_cmp`).

use std::collections::{HashMap, HashSet};
use std::ops::{Range, RangeInclusive};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float64Array, Int32Array, Int64Array,
    PrimitiveArray, StringArray, TimestampNanosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type, UInt64Type,
};
use rustc_hash::FxHashMap;

use super::read::Columns;
use super::shape::Aggregate;
use super::GiveUp;

/// Most tag columns a direct query groups by.
pub(crate) const MAX_TAG_KEYS: usize = 4;
/// Most groups a direct query builds; past this it gives up, and
/// DataFusion, whose memory pool bounds aggregations, answers.
const MAX_GROUPS: usize = 1 << 20;
/// A null tag in a group key; also a row in no group.
const NONE: u32 = u32::MAX;

type Key = (i64, [u32; MAX_TAG_KEYS]);

/// The distinct values of one tag column, numbered in order of arrival.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    values: Vec<String>,
}

impl Interner {
    fn id(&mut self, value: &str) -> Result<u32, GiveUp> {
        if let Some(&id) = self.ids.get(value) {
            return Ok(id);
        }
        let id = u32::try_from(self.values.len())
            .ok()
            .filter(|&id| id != NONE)
            .ok_or(GiveUp)?;
        self.ids.insert(value.to_owned(), id);
        self.values.push(value.to_owned());
        Ok(id)
    }
}

/// Groups and their aggregates, fed batch by batch.
#[derive(Debug)]
pub(crate) struct Grouping {
    stride: Option<i64>,
    time: RangeInclusive<i64>,
    /// Grouped tag columns: their index in a batch's columns.
    tags: Vec<usize>,
    interners: Vec<Interner>,
    filters: Vec<(usize, HashSet<String>)>,
    index: FxHashMap<Key, u32>,
    keys: Vec<Key>,
    /// Each aggregate's column (`None`: `count(*)`) and state.
    aggregates: Vec<(Option<usize>, Accumulator)>,
}

/// A tag column of one batch, as its dictionary keys.
fn tag_keys(column: &ArrayRef) -> Result<(&Int32Array, &StringArray), GiveUp> {
    let dictionary: &DictionaryArray<Int32Type> =
        column.as_dictionary_opt::<Int32Type>().ok_or(GiveUp)?;
    let values = dictionary.values().as_string_opt::<i32>().ok_or(GiveUp)?;
    Ok((dictionary.keys(), values))
}

/// A tag column of one batch as its dictionary keys, and for each
/// dictionary value whether `accepts` it (a null value never passes).
pub(super) fn tag_passes(
    column: &ArrayRef,
    accepts: impl Fn(&str) -> bool,
) -> Result<(&Int32Array, Vec<bool>), GiveUp> {
    let (keys, values) = tag_keys(column)?;
    let pass = (0..values.len())
        .map(|j| values.is_valid(j) && accepts(values.value(j)))
        .collect();
    Ok((keys, pass))
}

/// The entry of `per_value` for row `i` of `keys`; `None` for a null.
pub(super) fn per_row<T: Copy>(
    keys: &Int32Array,
    per_value: &[T],
    i: usize,
) -> Result<Option<T>, GiveUp> {
    if keys.is_null(i) {
        return Ok(None);
    }
    let at = usize::try_from(keys.value(i)).map_err(|_| GiveUp)?;
    per_value.get(at).copied().map(Some).ok_or(GiveUp)
}

impl Grouping {
    /// Groups rows with `time` in range by bucket (`stride`, if any) and
    /// the tag columns `tags`, keeping rows whose column holds one of the
    /// filter's values, for `aggregates` (column, function, its type).
    pub(crate) fn new(
        stride: Option<i64>,
        time: RangeInclusive<i64>,
        tags: Vec<usize>,
        filters: Vec<(usize, HashSet<String>)>,
        aggregates: &[(Option<usize>, Aggregate, Option<&DataType>)],
    ) -> Result<Self, GiveUp> {
        if tags.len() > MAX_TAG_KEYS {
            return Err(GiveUp);
        }
        let aggregates = aggregates
            .iter()
            .map(|&(column, function, data_type)| {
                Ok((column, Accumulator::new(function, column.and(data_type))?))
            })
            .collect::<Result<_, GiveUp>>()?;
        Ok(Grouping {
            stride,
            time,
            interners: tags.iter().map(|_| Interner::default()).collect(),
            tags,
            filters,
            index: FxHashMap::default(),
            keys: Vec::new(),
            aggregates,
        })
    }

    /// Adds one batch's rows.
    pub(crate) fn add(&mut self, columns: &Columns, sorted: bool) -> Result<(), GiveUp> {
        let runs = self.group_runs(columns, sorted)?;
        let n = self.keys.len();
        for (column, accumulator) in &mut self.aggregates {
            accumulator.resize(n);
            let values = match column {
                Some(c) => match &columns[*c] {
                    Some(values) => Some(values),
                    // A file without the column: null in all its rows.
                    None => continue,
                },
                None => None,
            };
            accumulator.update(&runs, values)?;
        }
        Ok(())
    }

    /// The runs of consecutive rows of a batch in one group; rows filtered
    /// out are in none.
    ///
    /// A `sorted` batch (from a file) holds each series' rows together, in
    /// time order: it is cut where a grouped or filtered tag changes, and
    /// in each stretch the time range and bucket edges are found by binary
    /// search rather than row by row (a stretch out of time order, where
    /// a tag not grouped varies, goes row by row). Other batches (from
    /// memory, in arrival order) go row by row.
    fn group_runs(&mut self, columns: &Columns, sorted: bool) -> Result<Vec<Run>, GiveUp> {
        let time_column = columns[0].as_ref().ok_or(GiveUp)?;
        let time = time_column
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .ok_or(GiveUp)?;
        if time.null_count() > 0 {
            return Err(GiveUp);
        }
        let times: &[i64] = time.values();
        // Per filter and grouped tag: the column's dictionary keys and, per
        // dictionary value, whether it passes or its interned id.
        let mut filters = Vec::with_capacity(self.filters.len());
        for (column, allowed) in &self.filters {
            let Some(column) = &columns[*column] else {
                return Ok(Vec::new());
            };
            filters.push(tag_passes(column, |v| allowed.contains(v))?);
        }
        let mut tags = Vec::with_capacity(self.tags.len());
        for (column, interner) in self.tags.iter().zip(&mut self.interners) {
            let Some(column) = &columns[*column] else {
                tags.push(None);
                continue;
            };
            let (keys, values) = tag_keys(column)?;
            let ids = (0..values.len())
                .map(|j| match values.is_valid(j) {
                    true => interner.id(values.value(j)),
                    false => Ok(NONE),
                })
                .collect::<Result<Vec<u32>, GiveUp>>()?;
            tags.push(Some((keys, ids)));
        }
        let mut runs = Vec::new();
        if !sorted {
            self.row_runs(times, &filters, &tags, &mut runs)?;
            return Ok(runs);
        }
        let all_keys: Vec<&Int32Array> = filters
            .iter()
            .map(|(k, _)| *k)
            .chain(tags.iter().flatten().map(|(k, _)| *k))
            .collect();
        let mut start = 0;
        while start < times.len() {
            let end = all_keys
                .iter()
                .fold(times.len(), |end, keys| stretch_end(keys, start, end));
            let mut passes = true;
            for (keys, pass) in &filters {
                passes &= per_row(keys, pass, start)? == Some(true);
            }
            if passes {
                let mut key = [NONE; MAX_TAG_KEYS];
                for (slot, tag) in key.iter_mut().zip(&tags) {
                    if let Some((keys, ids)) = tag {
                        *slot = per_row(keys, ids, start)?.unwrap_or(NONE);
                    }
                }
                self.bucket_runs(times, start..end, key, &mut runs)?;
            }
            start = end;
        }
        Ok(runs)
    }

    /// Groups the rows of a batch in no particular order, row by row.
    fn row_runs(
        &mut self,
        times: &[i64],
        filters: &[(&Int32Array, Vec<bool>)],
        tags: &[Option<(&Int32Array, Vec<u32>)>],
        runs: &mut Vec<Run>,
    ) -> Result<(), GiveUp> {
        let (from, to) = (*self.time.start(), *self.time.end());
        let mut last: Option<(Key, u32)> = None;
        // The previous row's bucket as [start, end): most rows share it.
        let mut bucket = (0, 0);
        'rows: for (i, &t) in times.iter().enumerate() {
            if t < from || t > to {
                continue;
            }
            for (keys, pass) in filters {
                if per_row(keys, pass, i)? != Some(true) {
                    continue 'rows;
                }
            }
            if !(bucket.0 <= t && t < bucket.1) {
                let start = self.bucket(t)?;
                let end = self.stride.map_or(i64::MAX, |s| start.saturating_add(s));
                bucket = (start, end);
            }
            let mut key = (bucket.0, [NONE; MAX_TAG_KEYS]);
            for (slot, tag) in key.1.iter_mut().zip(tags) {
                if let Some((keys, ids)) = tag {
                    *slot = per_row(keys, ids, i)?.unwrap_or(NONE);
                }
            }
            let g = match last {
                Some((k, g)) if k == key => g,
                _ => self.group(key)?,
            };
            last = Some((key, g));
            push_run(runs, g, i..i + 1);
        }
        Ok(())
    }

    /// Appends the runs of rows `rows` (all with tags `tags`) by bucket.
    fn bucket_runs(
        &mut self,
        times: &[i64],
        rows: Range<usize>,
        tags: [u32; MAX_TAG_KEYS],
        runs: &mut Vec<Run>,
    ) -> Result<(), GiveUp> {
        let (from, to) = (*self.time.start(), *self.time.end());
        let stretch = &times[rows.clone()];
        if !stretch.windows(2).all(|w| w[0] <= w[1]) {
            for i in rows {
                let t = times[i];
                if from <= t && t <= to {
                    let g = self.group((self.bucket(t)?, tags))?;
                    push_run(runs, g, i..i + 1);
                }
            }
            return Ok(());
        }
        let first = rows.start + stretch.partition_point(|&t| t < from);
        let last = rows.start + stretch.partition_point(|&t| t <= to);
        let mut i = first;
        while i < last {
            let bucket = self.bucket(times[i])?;
            let end = match self.stride.and_then(|s| bucket.checked_add(s)) {
                Some(next) => i + times[i..last].partition_point(|&t| t < next),
                None => last,
            };
            let g = self.group((bucket, tags))?;
            push_run(runs, g, i..end);
            i = end;
        }
        Ok(())
    }

    /// The start of the bucket of time `t`: `date_bin` from origin 0,
    /// rounded down; 0 without buckets.
    fn bucket(&self, t: i64) -> Result<i64, GiveUp> {
        match self.stride {
            Some(stride) => t.div_euclid(stride).checked_mul(stride).ok_or(GiveUp),
            None => Ok(0),
        }
    }

    fn group(&mut self, key: Key) -> Result<u32, GiveUp> {
        if let Some(&g) = self.index.get(&key) {
            return Ok(g);
        }
        if self.keys.len() >= MAX_GROUPS {
            return Err(GiveUp);
        }
        let g = u32::try_from(self.keys.len()).map_err(|_| GiveUp)?;
        self.index.insert(key, g);
        self.keys.push(key);
        Ok(g)
    }

    /// The bucket starts of the groups, in group order.
    pub(crate) fn buckets(&self) -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from_iter_values(
            self.keys.iter().map(|k| k.0),
        ))
    }

    /// The values of grouped tag `k` (in the order of `tags`), as a
    /// dictionary like the table's tag columns.
    pub(crate) fn tag(&self, k: usize) -> Result<ArrayRef, GiveUp> {
        let keys: Int32Array = self
            .keys
            .iter()
            .map(|key| match key.1[k] {
                NONE => Ok(None),
                id => i32::try_from(id).map(Some).map_err(|_| GiveUp),
            })
            .collect::<Result<_, GiveUp>>()?;
        let values = StringArray::from_iter_values(&self.interners[k].values);
        let dictionary =
            DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).map_err(|_| GiveUp)?;
        Ok(Arc::new(dictionary))
    }

    /// The results of aggregate `a`, in group order.
    pub(crate) fn aggregate(&mut self, a: usize) -> ArrayRef {
        let n = self.keys.len();
        let accumulator = &mut self.aggregates[a].1;
        accumulator.resize(n);
        accumulator.finish()
    }
}

/// Consecutive rows of one batch in the same group. Rows of a series come
/// in time order, so runs are long and each aggregate folds a run in a
/// register rather than row by row in memory.
#[derive(Debug)]
struct Run {
    group: usize,
    rows: Range<usize>,
}

/// Where the stretch of rows from `start` with the same key (or null) in
/// `keys` ends, looking no further than `limit`.
fn stretch_end(keys: &Int32Array, start: usize, limit: usize) -> usize {
    let values = &keys.values()[..limit];
    let Some(nulls) = keys.nulls() else {
        let first = values[start];
        return values[start..]
            .iter()
            .position(|&k| k != first)
            .map_or(limit, |n| start + n);
    };
    let valid = nulls.is_valid(start);
    (start + 1..limit)
        .find(|&i| nulls.is_valid(i) != valid || (valid && values[i] != values[start]))
        .unwrap_or(limit)
}

/// Appends rows `rows` of group `group`, extending the last run if it
/// ends where they start in the same group.
fn push_run(runs: &mut Vec<Run>, group: u32, rows: Range<usize>) {
    let group = group as usize;
    match runs.last_mut() {
        Some(run) if run.rows.end == rows.start && run.group == group => run.rows.end = rows.end,
        _ => runs.push(Run { group, rows }),
    }
}

/// The state of one aggregate for every group.
#[derive(Debug)]
enum Accumulator {
    /// `count(*)`.
    Rows(Vec<i64>),
    /// `count(column)`: its non-null values.
    Count(Vec<i64>),
    Float(Extreme<Float64Type>),
    Int(Extreme<Int64Type>),
    UInt(Extreme<UInt64Type>),
    /// `avg`: sum and count in `f64` (DataFusion casts integers to it).
    Avg {
        sum: Vec<f64>,
        count: Vec<i64>,
    },
}

impl Accumulator {
    fn new(function: Aggregate, data_type: Option<&DataType>) -> Result<Self, GiveUp> {
        use Aggregate::*;
        Ok(match (function, data_type) {
            (Count, None) => Accumulator::Rows(Vec::new()),
            (Count, Some(_)) => Accumulator::Count(Vec::new()),
            (Avg, Some(DataType::Float64 | DataType::Int64 | DataType::UInt64)) => {
                Accumulator::Avg {
                    sum: Vec::new(),
                    count: Vec::new(),
                }
            }
            (Sum | Min | Max, Some(DataType::Float64)) => {
                Accumulator::Float(Extreme::new(function))
            }
            (Sum | Min | Max, Some(DataType::Int64)) => Accumulator::Int(Extreme::new(function)),
            (Sum | Min | Max, Some(DataType::UInt64)) => Accumulator::UInt(Extreme::new(function)),
            _ => return Err(GiveUp),
        })
    }

    fn resize(&mut self, groups: usize) {
        match self {
            Accumulator::Rows(c) | Accumulator::Count(c) => c.resize(groups, 0),
            Accumulator::Float(e) => e.resize(groups),
            Accumulator::Int(e) => e.resize(groups),
            Accumulator::UInt(e) => e.resize(groups),
            Accumulator::Avg { sum, count, .. } => {
                sum.resize(groups, 0.0);
                count.resize(groups, 0);
            }
        }
    }

    /// Adds the rows of a batch's `runs` whose column holds `values`.
    fn update(&mut self, runs: &[Run], values: Option<&ArrayRef>) -> Result<(), GiveUp> {
        match (self, values) {
            (Accumulator::Rows(count), _) => {
                for run in runs {
                    count[run.group] += i64::try_from(run.rows.len()).map_err(|_| GiveUp)?;
                }
            }
            (Accumulator::Count(count), Some(values)) => {
                for run in runs {
                    let valid = run.rows.clone().filter(|&i| values.is_valid(i)).count();
                    count[run.group] += i64::try_from(valid).map_err(|_| GiveUp)?;
                }
            }
            (Accumulator::Float(e), Some(values)) => {
                let floats = values.as_primitive_opt::<Float64Type>().ok_or(GiveUp)?;
                let plain = |v: &f64| v.is_finite() && !(*v == 0.0 && v.is_sign_negative());
                if floats.iter().flatten().any(|v| !plain(&v)) {
                    return Err(GiveUp);
                }
                e.update(runs, values)?
            }
            (Accumulator::Int(e), Some(values)) => e.update(runs, values)?,
            (Accumulator::UInt(e), Some(values)) => e.update(runs, values)?,
            (Accumulator::Avg { sum, count }, Some(values)) => {
                let values = cast(values, &DataType::Float64).map_err(|_| GiveUp)?;
                let values = values.as_primitive::<Float64Type>();
                let (all, nulls) = (values.values(), values.nulls());
                for run in runs {
                    let (mut s, mut c) = (sum[run.group], count[run.group]);
                    for i in run.rows.clone() {
                        if nulls.is_none_or(|n| n.is_valid(i)) {
                            s += all[i];
                            c += 1;
                        }
                    }
                    (sum[run.group], count[run.group]) = (s, c);
                }
            }
            _ => return Err(GiveUp),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Accumulator::Rows(c) | Accumulator::Count(c) => {
                Arc::new(Int64Array::from(std::mem::take(c)))
            }
            Accumulator::Float(e) => e.finish(),
            Accumulator::Int(e) => e.finish(),
            Accumulator::UInt(e) => e.finish(),
            Accumulator::Avg { sum, count, .. } => Arc::new(
                sum.iter()
                    .zip(count.iter())
                    .map(|(s, &c)| (c > 0).then(|| s / c as f64))
                    .collect::<Float64Array>(),
            ),
        }
    }
}

/// `sum`, `min` or `max` of a primitive column; null where a group saw no
/// value.
#[derive(Debug)]
struct Extreme<T: ArrowPrimitiveType> {
    function: Aggregate,
    values: Vec<T::Native>,
    seen: Vec<bool>,
}

impl<T: ArrowPrimitiveType> Extreme<T> {
    fn new(function: Aggregate) -> Self {
        Extreme {
            function,
            values: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn resize(&mut self, groups: usize) {
        self.values.resize(groups, T::Native::default());
        self.seen.resize(groups, false);
    }

    fn update(&mut self, runs: &[Run], values: &ArrayRef) -> Result<(), GiveUp> {
        let values: &PrimitiveArray<T> = values.as_primitive_opt::<T>().ok_or(GiveUp)?;
        let (all, nulls) = (values.values(), values.nulls());
        for run in runs {
            let (mut acc, mut seen) = (self.values[run.group], self.seen[run.group]);
            for i in run.rows.clone() {
                if nulls.is_some_and(|n| n.is_null(i)) {
                    continue;
                }
                let v = all[i];
                if !seen {
                    (acc, seen) = (v, true);
                    continue;
                }
                match self.function {
                    Aggregate::Sum => acc = acc.add_checked(v).map_err(|_| GiveUp)?,
                    Aggregate::Min if v.is_lt(acc) => acc = v,
                    Aggregate::Max if v.is_gt(acc) => acc = v,
                    _ => {}
                }
            }
            (self.values[run.group], self.seen[run.group]) = (acc, seen);
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        let values = std::mem::take(&mut self.values);
        let seen = std::mem::take(&mut self.seen);
        Arc::new(
            values
                .into_iter()
                .zip(seen)
                .map(|(v, s)| s.then_some(v))
                .collect::<PrimitiveArray<T>>(),
        )
    }
}
