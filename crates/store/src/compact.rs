//! Compaction and retention: keeping few files per (database, table, day),
//! and deleting files whose rows are all past their database's retention.
//! Merges stream through [`SortedMerge`], one batch per input in memory.
//!
//! Each persist adds a file to each day it wrote. A day's files are merged
//! *size-tiered*: the newest files are merged once there are enough of
//! them, and an older file joins only while it is at most twice the size
//! of the newer ones together — so a large file is rewritten only when
//! the data after it has grown comparable, and each row is rewritten a
//! logarithmic number of times rather than once per compaction. A day that
//! is over is merged into one file (up to [`MAX_COLD_MERGE_BYTES`]); no day
//! keeps more than [`MAX_FILES_PER_DAY`] files.
//!
//! A day with a file whose rows its rollups do not hold once each (marked
//! `repeats` or `unrolled`) is merged whole whatever its size, and its
//! rollups are rebuilt from the merged file (only rebuilt, if the day is
//! one file already).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::buffer::align;
use crate::catalog::Catalog;
use crate::error::StoreError;
use crate::manifest::{Manifest, ParquetFile};
use crate::merge::{Input, SortedMerge};
use crate::rollup::{coarsen, merge_partials, RollupGrain, RollupLayout};
use crate::{
    arrow_schema, cutoff_for, keep_after, keeps_rollups, lock, persist, read_lock,
    retention_cutoff, rollup_cutoff, write_lock, Inner, COMPACT_AT_FILES,
};

/// A day never keeps more files than this: past it, all are merged.
pub const MAX_FILES_PER_DAY: usize = 32;
/// A day that is over is merged whole while its files add up to at most
/// this; larger days stay size-tiered, so a late write to a large day does
/// not make compaction rewrite all of it — unless its rollups need a
/// rebuild (see the module doc). (Merges stream: memory holds a batch per
/// input file, whatever the sizes.)
pub const MAX_COLD_MERGE_BYTES: u64 = 1 << 30;
/// Rollup files are merged in memory (partial rows of a bucket combine
/// in any order): at most this much Parquet at once.
pub(crate) const MAX_ROLLUP_MERGE_BYTES: u64 = 64 << 20;

/// Which of a day's files (in write order, with their sizes) to merge: a
/// suffix, so the merged file keeps its place in write order.
fn plan_merge(sizes: &[u64], cold: bool) -> Option<Range<usize>> {
    let n = sizes.len();
    if n < 2 {
        return None;
    }
    let total: u64 = sizes.iter().sum();
    if n >= MAX_FILES_PER_DAY || (cold && total <= MAX_COLD_MERGE_BYTES) {
        return Some(0..n);
    }
    if !cold && n < COMPACT_AT_FILES {
        return None;
    }
    let mut start = n - 1;
    let mut newer = sizes[n - 1];
    while start > 0 && sizes[start - 1] <= newer.saturating_mul(2) {
        start -= 1;
        newer += sizes[start];
    }
    (n - start >= 2).then_some(start..n)
}

/// Whether compaction merges raw day `day` (of `files`, database `db`)
/// whole and rebuilds its rollups from the merged rows: some of its rows
/// are not in the rollups once each (written while the database kept none,
/// or repeating earlier rows), the database keeps rollups, and the whole
/// day is within its raw retention, so every row rolled up is still there.
fn rebuilds_rollups(catalog: &Catalog, db: &str, day: i64, files: &[ParquetFile]) -> bool {
    files.iter().any(|f| f.repeats || f.unrolled)
        && keeps_rollups(catalog, db)
        && retention_cutoff(catalog, db).is_none_or(|c| day.saturating_mul(persist::DAY_NANOS) >= c)
}

impl Inner {
    /// Merges, in each (database, table, day), the files [`plan_merge`]
    /// picks into one sorted, deduplicated file; returns how many days it
    /// merged.
    pub(crate) fn compact(&self) -> Result<usize, StoreError> {
        let _persisting = lock(&self.persist_lock);
        let catalog = lock(&self.catalog).clone();
        let mut manifest = read_lock(&self.buffer).manifest.clone();
        let today = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| (d.as_nanos() / persist::DAY_NANOS as u128) as i64);
        let mut days: BTreeMap<(String, String, bool, i64), Vec<ParquetFile>> = BTreeMap::new();
        for file in &manifest.files {
            let day = file.min_time.div_euclid(persist::DAY_NANOS);
            days.entry((file.db.clone(), file.table.clone(), file.rollup, day))
                .or_default()
                .push(file.clone());
        }
        let mut merged = self.derive_daily_rollups(&catalog, &mut manifest, &days)?;
        // (database, rollup table, day) rebuilt from raw rows this round:
        // the files `days` lists for them are gone.
        let mut rebuilt: HashSet<(String, String, i64)> = HashSet::new();
        for ((db, table, rollup, day), files) in days {
            if rollup && rebuilt.contains(&(db.clone(), table.clone(), day)) {
                continue;
            }
            // Sorted by table name, a raw table comes before its rollups.
            let rebuild = !rollup && rebuilds_rollups(&catalog, &db, day, &files);
            let sizes: Vec<u64> = files.iter().map(|f| f.bytes).collect();
            let planned = if rebuild {
                Some(0..files.len())
            } else {
                plan_merge(&sizes, day < today)
            };
            let Some(mut range) = planned else {
                continue;
            };
            // A day that is one file already needs only its rollups rebuilt.
            let alone = rebuild && files.len() == 1;
            let number = manifest.next_file + 1;
            let written = if alone {
                Ok(files.first().cloned())
            } else if rollup {
                // Merged in memory: keep the newest files within the bound.
                let mut bytes = 0;
                while range.len() >= 2 {
                    bytes = sizes[range.clone()].iter().sum::<u64>();
                    if bytes <= MAX_ROLLUP_MERGE_BYTES {
                        break;
                    }
                    range.start += 1;
                }
                if range.len() < 2 || bytes > MAX_ROLLUP_MERGE_BYTES {
                    continue;
                }
                let Some(layout) = RollupGrain::of_table(&table)
                    .and_then(|(raw, _)| catalog.table(&db, raw))
                    .map(|raw| RollupLayout::of(&arrow_schema(raw)))
                else {
                    continue;
                };
                let cutoff = rollup_cutoff(&catalog, &db);
                self.merge_rollup_files(&table, &layout, &files[range.clone()], cutoff)
                    .and_then(|merged| {
                        let merged = std::iter::once(Ok(merged));
                        self.write_file((&db, &table), number, &layout.schema, merged, true, true)
                    })
            } else {
                let Some(schema) = catalog.table(&db, &table).map(arrow_schema) else {
                    continue;
                };
                // Inputs are in write order, so later writes still win. The
                // merged file comes after the day's other files, as its
                // inputs did: it is fresh if it holds the whole day (nothing
                // earlier overlaps it) or if every input was.
                let inputs = &files[range.clone()];
                let fresh = range.len() == files.len() || inputs.iter().all(|f| f.fresh);
                let cutoff = retention_cutoff(&catalog, &db);
                let unrolled = inputs.iter().any(|f| f.unrolled);
                let repeats = inputs.iter().any(|f| f.repeats);
                self.merge_files(&table, &schema, inputs, cutoff)
                    .and_then(|merged| {
                        self.write_file((&db, &table), number, &schema, merged, fresh, false)
                    })
                    .map(|written| {
                        written.map(|file| ParquetFile {
                            unrolled,
                            repeats,
                            ..file
                        })
                    })
            };
            let inputs = &files[range];
            let mut written = match written {
                Ok(w) => w,
                // A damaged input or a failed write: this day stays as it
                // is (scans report a damaged file); the others are merged.
                Err(e) => {
                    tracing::error!("not compacting {db}.{table}: {e}");
                    continue;
                }
            };
            // The files deleted (a day rebuilt in place keeps its file).
            let mut names: Vec<String> = if alone {
                Vec::new()
            } else {
                inputs.iter().map(|f| f.name.clone()).collect()
            };
            let first_rollup = if alone { number } else { number + 1 };
            let mut rollups = Vec::new();
            if let Some(file) = written.as_mut().filter(|_| rebuild) {
                match self.rebuild_rollups(&catalog, (&db, &table), file, first_rollup) {
                    Ok(files) => {
                        // The day's rollups now come from all its rows, once each.
                        file.unrolled = false;
                        file.repeats = false;
                        for grain in RollupGrain::ALL {
                            rebuilt.insert((db.clone(), grain.table_name(&table), day));
                        }
                        names.extend(
                            manifest
                                .files
                                .iter()
                                .filter(|f| {
                                    f.rollup
                                        && f.db == db
                                        && f.min_time.div_euclid(persist::DAY_NANOS) == day
                                        && RollupGrain::of_table(&f.table)
                                            .is_some_and(|(raw, _)| raw == table)
                                })
                                .map(|f| f.name.clone()),
                        );
                        rollups = files;
                    }
                    // The merged file keeps its inputs' marks: the rollups
                    // still do not cover it, and the next round tries again
                    // (with one file, its rollups only).
                    Err(e) => {
                        tracing::error!("not rebuilding the rollups of {db}.{table}: {e}");
                        if alone {
                            continue;
                        }
                    }
                }
            }
            // The written file's entry replaces the old one of a day
            // rebuilt in place (marks cleared).
            manifest.files.retain(|f| {
                !names.contains(&f.name) && written.as_ref().is_none_or(|w| w.name != f.name)
            });
            manifest.next_file = first_rollup - 1 + rollups.len() as u64;
            manifest.files.extend(written);
            manifest.files.extend(rollups);
            // Committed day by day: a crash or a stop keeps the days done.
            self.save_manifest(&manifest)?;
            write_lock(&self.buffer).manifest = manifest.clone();
            merged += 1;
            // The manifest no longer names them: a file left behind is
            // removed as an orphan on the next open.
            for name in names {
                if let Err(e) = self.leases.remove(&name) {
                    tracing::error!("{e}");
                }
            }
            // Persisting comes first: the remaining days wait for the next round.
            if read_lock(&self.buffer).buffered_bytes() >= self.config.buffer_budget_bytes / 2 {
                break;
            }
        }
        Ok(merged)
    }

    /// Writes the rollups, at every grain, of the rows of raw file `file`
    /// (the whole of its day, sorted and deduplicated) as files numbered
    /// from `first`; returns them. One read of the file, batch by batch:
    /// each batch's half-hour rows are written as they come (a series and
    /// bucket cut between two batches keeps two partial rows, which queries
    /// merge like any others), and its daily rows, coarsened from them, are
    /// kept (one per series and batch) and merged at the end.
    fn rebuild_rollups(
        &self,
        catalog: &Catalog,
        (db, table): (&str, &str),
        file: &ParquetFile,
        first: u64,
    ) -> Result<Vec<ParquetFile>, StoreError> {
        let Some(schema) = catalog.table(db, table).map(arrow_schema) else {
            return Ok(Vec::new());
        };
        let layout = RollupLayout::of(&schema);
        let cutoff = rollup_cutoff(catalog, db);
        let (half_hour, day) = (RollupGrain::HalfHour, RollupGrain::Day);
        let (half_hourly, daily) = (half_hour.table_name(table), day.table_name(table));
        let mut days = Vec::new();
        let rows = persist::read_parquet_batches(&self.data_file(&file.name))?.map(|batch| {
            let rows = layout.summarise(table, &align(&batch?, &schema, table)?, half_hour)?;
            // Coarsened before the cutoff applies: the day holding it keeps
            // no daily row, as at persist.
            days.push(coarsen(&daily, &layout, &rows, day)?);
            keep_after(&rows, cutoff, &half_hourly)
        });
        let mut written = Vec::new();
        written.extend(self.write_file(
            (db, &half_hourly),
            first,
            &layout.schema,
            rows,
            true,
            true,
        )?);
        let days = concat_batches(&layout.schema, &days).map_err(|source| StoreError::Arrow {
            table: daily.clone(),
            source,
        })?;
        let days = keep_after(&merge_partials(&daily, &layout, &days)?, cutoff, &daily)?;
        written.extend(self.write_file(
            (db, &daily),
            first + written.len() as u64,
            &layout.schema,
            std::iter::once(Ok(days)),
            true,
            true,
        )?);
        Ok(written)
    }

    /// Writes the daily rollups of each day that has half-hour rollups but
    /// none at that grain (persisted before weir wrote them), derived from
    /// its half-hour rows; returns how many days it did. Each day is
    /// committed alone, and a persist that is due stops the round.
    fn derive_daily_rollups(
        &self,
        catalog: &Catalog,
        manifest: &mut Manifest,
        days: &BTreeMap<(String, String, bool, i64), Vec<ParquetFile>>,
    ) -> Result<usize, StoreError> {
        let mut derived = 0;
        for (db, raw, day) in manifest.days_without_daily_rollups() {
            let half_hour = RollupGrain::HalfHour.table_name(&raw);
            let Some(files) = days.get(&(db.clone(), half_hour.clone(), true, day)) else {
                continue;
            };
            let cutoff = rollup_cutoff(catalog, &db);
            // The day that holds the cutoff has no whole daily row.
            if cutoff.is_some_and(|c| day.saturating_mul(persist::DAY_NANOS) < c) {
                continue;
            }
            let Some(layout) = catalog
                .table(&db, &raw)
                .map(|t| RollupLayout::of(&arrow_schema(t)))
            else {
                continue;
            };
            let daily = RollupGrain::Day.table_name(&raw);
            let number = manifest.next_file + 1;
            let write = |rows: &mut dyn Iterator<Item = Result<RecordBatch, StoreError>>| {
                self.write_file((&db, &daily), number, &layout.schema, rows, true, true)
            };
            let bytes: u64 = files.iter().map(|f| f.bytes).sum();
            let written = if bytes <= MAX_ROLLUP_MERGE_BYTES {
                // One row per series and day.
                self.merge_rollup_files(&half_hour, &layout, files, cutoff)
                    .and_then(|rows| coarsen(&daily, &layout, &rows, RollupGrain::Day))
                    .and_then(|rows| write(&mut std::iter::once(Ok(rows))))
            } else {
                // Batch by batch, in bounded memory: partial daily rows,
                // merged by queries like any others.
                let mut rows = files.iter().flat_map(|file| {
                    let coarsened = |batch: Result<RecordBatch, StoreError>| {
                        let batch = align(&batch?, &layout.schema, &half_hour)?;
                        let batch = keep_after(&batch, cutoff, &half_hour)?;
                        coarsen(&daily, &layout, &batch, RollupGrain::Day)
                    };
                    let batches: Box<dyn Iterator<Item = _>> =
                        match persist::read_parquet_batches(&self.data_file(&file.name)) {
                            Ok(batches) => Box::new(batches.map(coarsened)),
                            Err(e) => Box::new(std::iter::once(Err(e))),
                        };
                    batches
                });
                write(&mut rows)
            };
            match written {
                Ok(file) => {
                    manifest.next_file = number;
                    manifest.files.extend(file);
                    self.save_manifest(manifest)?;
                    write_lock(&self.buffer).manifest = manifest.clone();
                    derived += 1;
                }
                Err(e) => tracing::error!("not deriving daily rollups of {db}.{raw}: {e}"),
            }
            if read_lock(&self.buffer).buffered_bytes() >= self.config.buffer_budget_bytes / 2 {
                break;
            }
        }
        Ok(derived)
    }

    /// The rows of `files` (one table and day, in write order) as one
    /// sorted stream with duplicates merged and rows before `cutoff` left out.
    fn merge_files(
        &self,
        table: &str,
        schema: &SchemaRef,
        files: &[ParquetFile],
        cutoff: Option<i64>,
    ) -> Result<SortedMerge, StoreError> {
        let inputs = files
            .iter()
            .map(|file| {
                let (schema, table) = (Arc::clone(schema), table.to_owned());
                let batches = persist::read_parquet_batches(&self.data_file(&file.name))?;
                Ok(Box::new(batches.map(move |batch| {
                    keep_after(&align(&batch?, &schema, &table)?, cutoff, &table)
                })) as Input)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        SortedMerge::new(table, schema, inputs)
    }

    /// The rollup rows of `files` (one rollup table and day) with partial
    /// rows of a series and bucket merged, rows before `cutoff` left out.
    fn merge_rollup_files(
        &self,
        table: &str,
        layout: &RollupLayout,
        files: &[ParquetFile],
        cutoff: Option<i64>,
    ) -> Result<RecordBatch, StoreError> {
        let mut batches = Vec::new();
        for file in files {
            for batch in persist::read_parquet_batches(&self.data_file(&file.name))? {
                batches.push(keep_after(
                    &align(&batch?, &layout.schema, table)?,
                    cutoff,
                    table,
                )?);
            }
        }
        let all = concat_batches(&layout.schema, &batches).map_err(|source| StoreError::Arrow {
            table: table.to_owned(),
            source,
        })?;
        merge_partials(table, layout, &all)
    }

    /// Removes expired files from the manifest (saved first), then deletes them.
    pub(crate) fn expire(&self) -> Result<usize, StoreError> {
        let _persisting = lock(&self.persist_lock);
        self.expire_locked()
    }

    /// [`Inner::expire`] for a caller that holds `persist_lock`.
    pub(crate) fn expire_locked(&self) -> Result<usize, StoreError> {
        let (cutoffs, rollup_cutoffs): (HashMap<String, i64>, HashMap<String, i64>) = {
            let catalog = lock(&self.catalog);
            let of = |secs: fn(&crate::catalog::DatabaseSchema) -> Option<u64>| {
                catalog
                    .databases
                    .iter()
                    .filter_map(|(name, d)| Some((name.clone(), cutoff_for(secs(d)?))))
                    .collect()
            };
            (of(|d| d.retention_secs), of(|d| d.rollup_retention_secs))
        };
        if cutoffs.is_empty() && rollup_cutoffs.is_empty() {
            return Ok(0);
        }
        let manifest = read_lock(&self.buffer).manifest.clone();
        // A rollup row stands for the bucket after its time.
        let (expired, kept): (Vec<_>, Vec<_>) = manifest.files.iter().cloned().partition(|f| {
            if f.rollup {
                let bucket = RollupGrain::of_table(&f.table)
                    .map_or(RollupGrain::HalfHour, |(_, g)| g)
                    .nanos();
                rollup_cutoffs
                    .get(&f.db)
                    .is_some_and(|&c| f.max_time.saturating_add(bucket) <= c)
            } else {
                cutoffs.get(&f.db).is_some_and(|&c| f.max_time < c)
            }
        });
        if expired.is_empty() {
            return Ok(0);
        }
        let mut next = manifest;
        next.files = kept;
        self.save_manifest(&next)?;
        write_lock(&self.buffer).manifest = next;
        for file in &expired {
            if let Err(e) = self.leases.remove(&file.name) {
                tracing::error!("{e}");
            }
        }
        Ok(expired.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_current_day_waits_for_enough_files() {
        assert_eq!(plan_merge(&[10; 7], false), None);
        assert_eq!(plan_merge(&[10; 8], false), Some(0..8));
        assert_eq!(plan_merge(&[10], true), None);
    }

    #[test]
    fn a_large_old_file_is_left_until_the_newer_ones_are_comparable() {
        let mut sizes = vec![1000];
        sizes.extend([10; 7]);
        assert_eq!(plan_merge(&sizes, false), Some(1..8));
        // Once the newer files add up to half its size, it joins.
        let sizes = [100, 60, 10, 10, 10, 10, 10, 10];
        assert_eq!(plan_merge(&sizes, false), Some(0..8));
    }

    #[test]
    fn a_newest_file_much_smaller_than_the_one_before_waits() {
        let sizes = [10, 10, 10, 10, 10, 10, 100, 1];
        assert_eq!(plan_merge(&sizes, false), None);
    }

    #[test]
    fn cold_days_merge_whole_and_no_day_piles_up() {
        assert_eq!(plan_merge(&[1000, 10], true), Some(0..2));
        let huge = MAX_COLD_MERGE_BYTES;
        assert_eq!(plan_merge(&[huge, 10], true), None);
        assert_eq!(plan_merge(&[huge, 10, 10], true), Some(1..3));
        let sizes = vec![10u64.pow(6); MAX_FILES_PER_DAY];
        assert_eq!(plan_merge(&sizes, false), Some(0..MAX_FILES_PER_DAY));
    }
}
