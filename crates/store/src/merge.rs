//! A streaming merge of sorted inputs with duplicates merged: what
//! compaction uses, so that merging files costs memory for one batch per
//! input, not for the files.
//!
//! Inputs are in write order, each sorted by series key (the tag columns in
//! schema order) then time. Rows with equal keys — within or across inputs —
//! become one whose every field holds the value of the latest write that set
//! it, as [`crate::persist::sort_dedup`] does in memory.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::interleave;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{OwnedRow, RowConverter, Rows};

use crate::error::StoreError;
use crate::persist::series_key;

/// Rows per merged batch.
const OUTPUT_ROWS: usize = 8192;

/// A source of sorted batches with exactly the merge's schema.
pub(crate) type Input = Box<dyn Iterator<Item = Result<RecordBatch, StoreError>> + Send>;

/// One input's position.
struct Cursor {
    input: Input,
    batch: RecordBatch,
    keys: Rows,
    row: usize,
    /// Index of `batch` in [`SortedMerge::slots`].
    slot: usize,
}

/// Iterator over the merged batches.
pub(crate) struct SortedMerge {
    table: String,
    schema: SchemaRef,
    key_columns: Vec<usize>,
    converter: RowConverter,
    /// Live inputs, in write order (`None` once exhausted).
    cursors: Vec<Option<Cursor>>,
    /// Batches the pending output rows point into.
    slots: Vec<RecordBatch>,
    /// Per column, (slot, row) of each pending output row.
    picks: Vec<Vec<(usize, usize)>>,
    failed: bool,
}

impl std::fmt::Debug for SortedMerge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SortedMerge({}, {} inputs)",
            self.table,
            self.cursors.len()
        )
    }
}

impl SortedMerge {
    /// Merges `inputs` (in write order) of table `table` with `schema`.
    pub(crate) fn new(
        table: &str,
        schema: &SchemaRef,
        inputs: Vec<Input>,
    ) -> Result<Self, StoreError> {
        let (key_columns, converter) = series_key(table, schema)?;
        let mut merge = SortedMerge {
            table: table.to_owned(),
            schema: Arc::clone(schema),
            key_columns,
            converter,
            cursors: Vec::new(),
            slots: Vec::new(),
            picks: vec![Vec::new(); schema.fields().len()],
            failed: false,
        };
        for input in inputs {
            let cursor = merge.open(input)?;
            merge.cursors.push(cursor);
        }
        Ok(merge)
    }

    /// A cursor on the first non-empty batch of `input`, if any.
    fn open(&mut self, mut input: Input) -> Result<Option<Cursor>, StoreError> {
        for batch in input.by_ref() {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let keys = self.keys(&batch)?;
            self.slots.push(batch.clone());
            return Ok(Some(Cursor {
                input,
                batch,
                keys,
                row: 0,
                slot: self.slots.len() - 1,
            }));
        }
        Ok(None)
    }

    fn keys(&self, batch: &RecordBatch) -> Result<Rows, StoreError> {
        let columns: Vec<ArrayRef> = self
            .key_columns
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        self.converter
            .convert_columns(&columns)
            .map_err(|source| arrow_err(&self.table, source))
    }

    /// Moves input `i` one row on, to its next batch when this one is done.
    fn advance(&mut self, i: usize) -> Result<(), StoreError> {
        let Some(cursor) = self.cursors[i].as_mut() else {
            return Ok(());
        };
        cursor.row += 1;
        if cursor.row < cursor.batch.num_rows() {
            return Ok(());
        }
        let Some(cursor) = self.cursors[i].take() else {
            return Ok(());
        };
        self.cursors[i] = self.open(cursor.input)?;
        Ok(())
    }

    /// The smallest current key; on ties the earliest input.
    fn smallest(&self) -> Option<OwnedRow> {
        let mut best: Option<(usize, &Cursor)> = None;
        for (i, cursor) in self.cursors.iter().enumerate() {
            let Some(c) = cursor else { continue };
            match best {
                Some((_, b)) if b.keys.row(b.row) <= c.keys.row(c.row) => {}
                _ => best = Some((i, c)),
            }
        }
        best.map(|(_, c)| c.keys.row(c.row).owned())
    }

    /// Takes every row whose key is `key`, in write order, and picks for
    /// each column the value the output row takes.
    fn take_group(&mut self, key: &OwnedRow) -> Result<(), StoreError> {
        let mut group: Vec<(usize, usize)> = Vec::new();
        for i in 0..self.cursors.len() {
            while let Some(c) = &self.cursors[i] {
                if c.keys.row(c.row) != key.row() {
                    break;
                }
                group.push((c.slot, c.row));
                self.advance(i)?;
            }
        }
        let last = *group.last().ok_or_else(|| StoreError::Parquet {
            what: "merging",
            path: Default::default(),
            reason: "an empty group of rows".to_owned(),
        })?;
        for (column, picks) in self.picks.iter_mut().enumerate() {
            let pick = group
                .iter()
                .rev()
                .copied()
                .find(|&(slot, row)| self.slots[slot].column(column).is_valid(row))
                .unwrap_or(last);
            picks.push(pick);
        }
        Ok(())
    }

    /// The pending output rows as a batch; then only the batches the
    /// cursors still read stay in `slots`.
    fn flush(&mut self) -> Result<RecordBatch, StoreError> {
        let columns = (0..self.schema.fields().len())
            .map(|column| {
                let arrays: Vec<&dyn Array> = self
                    .slots
                    .iter()
                    .map(|b| b.column(column).as_ref())
                    .collect();
                interleave(&arrays, &self.picks[column])
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| arrow_err(&self.table, source))?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|source| arrow_err(&self.table, source))?;
        self.picks.iter_mut().for_each(Vec::clear);
        self.slots.clear();
        for cursor in self.cursors.iter_mut().flatten() {
            self.slots.push(cursor.batch.clone());
            cursor.slot = self.slots.len() - 1;
        }
        Ok(batch)
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, StoreError> {
        while self.picks[0].len() < OUTPUT_ROWS {
            let Some(key) = self.smallest() else { break };
            self.take_group(&key)?;
        }
        if self.picks[0].is_empty() {
            return Ok(None);
        }
        self.flush().map(Some)
    }
}

impl Iterator for SortedMerge {
    type Item = Result<RecordBatch, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.schema.fields().is_empty() {
            return None;
        }
        let next = self.next_batch();
        self.failed = next.is_err();
        next.transpose()
    }
}

fn arrow_err(table: &str, source: arrow::error::ArrowError) -> StoreError {
    StoreError::Arrow {
        table: table.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::sort_dedup;
    use arrow::array::{
        Float64Array, Int64Array, StringDictionaryBuilder, TimestampNanosecondArray,
    };
    use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new(
                "s",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("v", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
        ]))
    }

    fn batch(rows: &[(i64, &str, Option<f64>, Option<i64>)]) -> RecordBatch {
        let mut s = StringDictionaryBuilder::<Int32Type>::new();
        rows.iter().for_each(|r| s.append_value(r.1));
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(TimestampNanosecondArray::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(s.finish()),
                Arc::new(rows.iter().map(|r| r.2).collect::<Float64Array>()),
                Arc::new(rows.iter().map(|r| r.3).collect::<Int64Array>()),
            ],
        )
        .unwrap()
    }

    fn input(batches: Vec<RecordBatch>) -> Input {
        Box::new(batches.into_iter().map(Ok))
    }

    /// Deterministic pseudo-random rows, sorted per input like files are.
    fn sorted_input(seed: u64, rows: usize, chunk: usize) -> Vec<RecordBatch> {
        let mut x = seed;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        let mut all: Vec<(i64, String, Option<f64>, Option<i64>)> = (0..rows)
            .map(|_| {
                let v = next();
                (
                    (v % 50) as i64,
                    format!("s{}", v % 7),
                    (v % 3 != 0).then_some(v as f64),
                    (v % 5 != 0).then_some(v as i64),
                )
            })
            .collect();
        let sorted = sort_dedup(
            "t",
            &schema(),
            &[batch(
                &all.iter()
                    .map(|r| (r.0, r.1.as_str(), r.2, r.3))
                    .collect::<Vec<_>>(),
            )],
        )
        .unwrap();
        all.clear();
        (0..sorted.num_rows())
            .step_by(chunk)
            .map(|at| sorted.slice(at, chunk.min(sorted.num_rows() - at)))
            .collect()
    }

    #[test]
    fn merging_streams_gives_what_sorting_everything_gives() {
        let inputs: Vec<Vec<RecordBatch>> = (0..5)
            .map(|i| sorted_input(i, 40 + 30 * i as usize, 7 + i as usize))
            .collect();
        let all: Vec<RecordBatch> = inputs.iter().flatten().cloned().collect();
        let expected = sort_dedup("t", &schema(), &all).unwrap();
        let merged: Vec<RecordBatch> =
            SortedMerge::new("t", &schema(), inputs.into_iter().map(input).collect())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let merged = arrow::compute::concat_batches(&schema(), &merged).unwrap();
        assert_eq!(merged, expected);
    }

    #[test]
    fn later_inputs_win_field_by_field() {
        let first = batch(&[(1, "a", Some(1.0), Some(1)), (2, "a", Some(2.0), None)]);
        let second = batch(&[(1, "a", None, Some(10)), (3, "a", Some(3.0), Some(3))]);
        let merged: Vec<RecordBatch> = SortedMerge::new(
            "t",
            &schema(),
            vec![input(vec![first]), input(vec![]), input(vec![second])],
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(
            merged,
            vec![batch(&[
                (1, "a", Some(1.0), Some(10)),
                (2, "a", Some(2.0), None),
                (3, "a", Some(3.0), Some(3)),
            ])]
        );
    }
}
