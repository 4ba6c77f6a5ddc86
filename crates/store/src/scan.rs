//! Planning a scan of one table: which Parquet files a query engine may read
//! as they are, and which rows come from memory — with duplicates (the same
//! series and time written twice) merged so that every point is returned
//! once, the later write winning field by field.
//!
//! Deduplicating everything at query time would sort every row of every
//! query. Instead each source (a file or a buffer chunk) knows whether it is
//! *fresh*: every row in it is later than every earlier row of its series,
//! which the write buffer's series clock tells as rows arrive. A fresh
//! source cannot duplicate anything written before it. Only a stale source
//! is merged, with the earlier sources whose time ranges overlap it — in
//! steady ingest there are none, and a scan reads files and chunks as they
//! are.
//!
//! Files a scan plans to read are leased: compaction and retention may drop
//! them from the manifest meanwhile, but the file itself is deleted only when
//! the last lease on it is gone.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::buffer::align;
use crate::error::StoreError;
use crate::manifest::ParquetFile;
use crate::rollup::{RollupGrain, RollupLayout};
use crate::{
    keep_after, keep_within, keeps_rollups, lock, persist, read_lock, resolve_table, rollup_cutoff,
    Inner, TableKind,
};

/// What a query reads of one table, planned by [`crate::Store::plan_scan`].
#[derive(Debug)]
pub struct TableScan {
    /// Parquet files to read as they are: none holds a row that another
    /// file here or [`TableScan::batches`] also holds. Their rows are sorted
    /// by tags (in schema order) then time, may lie outside the planned time
    /// range, and may have fewer columns than the schema (those read as
    /// null).
    pub files: Vec<ScanFile>,
    /// Rows from memory, and rows merged from files and memory where they
    /// overlapped, each with exactly the planned schema. Past-retention rows
    /// are already dropped; rows outside the planned time range may remain.
    pub batches: Vec<RecordBatch>,
    /// Rows of [`TableScan::files`] before this time (ns) are past the
    /// database's retention and must not be returned.
    pub keep_from: Option<i64>,
}

/// A persisted file a scan reads, held against deletion while its lease
/// lives.
#[derive(Debug, Clone)]
pub struct ScanFile {
    /// Where it is.
    pub path: PathBuf,
    /// What the manifest says of it.
    pub file: ParquetFile,
    /// Keep this (or a clone) until the file has been read.
    pub lease: Arc<FileLease>,
}

/// Keeps a data file on disk while a scan may still read it.
pub struct FileLease {
    name: String,
    leases: Arc<FileLeases>,
}

impl fmt::Debug for FileLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileLease({})", self.name)
    }
}

impl Drop for FileLease {
    fn drop(&mut self) {
        self.leases.release(&self.name);
    }
}

/// The leases on the data files, and the files to delete once unleased.
#[derive(Debug)]
pub(crate) struct FileLeases {
    data_dir: PathBuf,
    state: Mutex<LeaseState>,
}

#[derive(Debug, Default)]
struct LeaseState {
    held: HashMap<String, usize>,
    doomed: HashSet<String>,
}

impl FileLeases {
    pub(crate) fn new(data_dir: &Path) -> Self {
        FileLeases {
            data_dir: data_dir.to_owned(),
            state: Mutex::default(),
        }
    }

    /// Leases data file `name`. Take leases under the buffer's read lock,
    /// so that a file the manifest named cannot be deleted in between.
    pub(crate) fn acquire(self: &Arc<Self>, name: &str) -> FileLease {
        *lock(&self.state).held.entry(name.to_owned()).or_default() += 1;
        FileLease {
            name: name.to_owned(),
            leases: Arc::clone(self),
        }
    }

    /// Deletes data file `name`, which the manifest no longer names, now or
    /// when its last lease ends.
    pub(crate) fn remove(&self, name: &str) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if state.held.contains_key(name) {
            state.doomed.insert(name.to_owned());
            return Ok(());
        }
        let path = self.data_dir.join(name);
        fs::remove_file(&path).map_err(|e| StoreError::io("removing replaced file", &path, e))
    }

    fn release(&self, name: &str) {
        let mut state = lock(&self.state);
        let Some(count) = state.held.get_mut(name) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        state.held.remove(name);
        if state.doomed.remove(name) {
            let path = self.data_dir.join(name);
            // Left behind, it is removed as an orphan on the next open.
            if let Err(e) = fs::remove_file(&path) {
                tracing::error!("removing replaced file {}: {e}", path.display());
            }
        }
    }
}

/// How a scan treats one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treatment {
    /// Read as it is.
    AsIs,
    /// Merged with the other sources of group `n`.
    Merge(usize),
}

/// One file or chunk, in write order, as the grouping sees it.
#[derive(Debug, Clone)]
struct Source {
    range: RangeInclusive<i64>,
    fresh: bool,
    /// Already free of duplicates within itself (a persisted file).
    deduplicated: bool,
}

/// Decides, for sources in write order, which can be read as they are and
/// which must be merged: a stale source joins the earlier sources whose
/// time ranges overlap its own (transitively); a group of one is read as it
/// is if it has no duplicates within itself.
fn treatments(sources: &[Source]) -> Vec<Treatment> {
    let n = sources.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let overlap = |a: &RangeInclusive<i64>, b: &RangeInclusive<i64>| {
        a.start() <= b.end() && b.start() <= a.end()
    };
    for i in 0..n {
        if sources[i].fresh {
            continue;
        }
        for j in 0..i {
            if overlap(&sources[i].range, &sources[j].range) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut size = vec![0usize; n];
    for i in 0..n {
        let r = root(&mut parent, i);
        size[r] += 1;
    }
    (0..n)
        .map(|i| {
            let r = root(&mut parent, i);
            if size[r] == 1 && (sources[i].fresh || sources[i].deduplicated) {
                Treatment::AsIs
            } else {
                Treatment::Merge(r)
            }
        })
        .collect()
}

impl Inner {
    /// See [`crate::Store::plan_scan`].
    pub(crate) fn plan_scan(
        &self,
        db: &str,
        table: &str,
        schema: &SchemaRef,
        time: &RangeInclusive<i64>,
    ) -> Result<TableScan, StoreError> {
        let kind = resolve_table(&lock(&self.catalog), db, table);
        match kind {
            Some(TableKind::Rollup {
                raw,
                raw_schema,
                layout,
                grain,
            }) => self.plan_rollup_scan(
                db,
                (&raw, &raw_schema),
                (table, &layout, grain),
                schema,
                time,
            ),
            _ => self.plan_raw_scan(db, table, schema, time),
        }
    }

    /// [`Inner::plan_scan`] of a rollup table `table` of raw table `raw`:
    /// its files as they are (partial rows included: queries merge them),
    /// and the rollups of the raw rows still in memory, computed now —
    /// unless the database keeps no rollups: those rows have none until
    /// rollups are on again and compaction rolls up their days.
    fn plan_rollup_scan(
        &self,
        db: &str,
        (raw, raw_schema): (&str, &SchemaRef),
        (table, layout, grain): (&str, &RollupLayout, RollupGrain),
        schema: &SchemaRef,
        time: &RangeInclusive<i64>,
    ) -> Result<TableScan, StoreError> {
        let (keep_from, keeps_rollups) = {
            let catalog = lock(&self.catalog);
            (rollup_cutoff(&catalog, db), keeps_rollups(&catalog, db))
        };
        let start = match keep_from {
            Some(c) => (*time.start()).max(c),
            None => *time.start(),
        };
        // Whole buckets: a memory rollup row must count every row of its
        // bucket, as a file's does.
        let buckets =
            grain.floor(start)..=grain.floor(*time.end()).saturating_add(grain.nanos() - 1);
        let overlaps =
            |f: &ParquetFile| f.min_time <= *buckets.end() && *buckets.start() <= f.max_time;
        // One read lock: a persist swaps the sealed rows for their files
        // under the write lock, so no row is both in a file and in memory.
        let (files, chunks) = {
            let buffer = read_lock(&self.buffer);
            let files: Vec<ScanFile> = buffer
                .manifest
                .files
                .iter()
                .filter(|f| f.rollup && f.db == db && f.table == table && overlaps(f))
                .map(|f| ScanFile {
                    path: self.data_file(&f.name),
                    file: f.clone(),
                    lease: Arc::new(self.leases.acquire(&f.name)),
                })
                .collect();
            let chunks = if keeps_rollups {
                buffer.scan(db, raw, raw_schema, &buckets)?.chunks
            } else {
                Vec::new()
            };
            (files, chunks)
        };
        let mut batches = Vec::new();
        if !chunks.is_empty() {
            let rows = chunks
                .iter()
                .map(|c| keep_within(&c.batch, &buckets, raw))
                .collect::<Result<Vec<_>, _>>()?;
            let sorted = persist::sort_dedup(raw, raw_schema, &rows)?;
            let rolled = layout.summarise(raw, &sorted, grain)?;
            batches.push(keep_after(
                &align(&rolled, schema, table)?,
                keep_from,
                table,
            )?);
        }
        Ok(TableScan {
            files,
            batches,
            keep_from,
        })
    }

    /// [`Inner::plan_scan`] of a raw table.
    fn plan_raw_scan(
        &self,
        db: &str,
        table: &str,
        schema: &SchemaRef,
        time: &RangeInclusive<i64>,
    ) -> Result<TableScan, StoreError> {
        let keep_from = self.cutoff(db);
        let time = match keep_from {
            Some(c) => (*time.start()).max(c)..=*time.end(),
            None => time.clone(),
        };
        let (plan, leases) = {
            let buffer = read_lock(&self.buffer);
            let plan = buffer.scan(db, table, schema, &time)?;
            let leases: Vec<Arc<FileLease>> = plan
                .files
                .iter()
                .map(|f| Arc::new(self.leases.acquire(&f.name)))
                .collect();
            (plan, leases)
        };
        let sources: Vec<Source> = plan
            .files
            .iter()
            .map(|f| Source {
                range: f.min_time..=f.max_time,
                fresh: f.fresh,
                deduplicated: true,
            })
            .chain(plan.chunks.iter().map(|c| Source {
                range: c.range.clone(),
                fresh: c.fresh,
                deduplicated: false,
            }))
            .collect();
        let treatments = treatments(&sources);
        let (file_treatments, chunk_treatments) = treatments.split_at(plan.files.len());

        let mut scan = TableScan {
            files: Vec::new(),
            batches: Vec::new(),
            keep_from,
        };
        // Group → its rows, in write order.
        let mut groups: Vec<(usize, Vec<RecordBatch>)> = Vec::new();
        let mut group_rows = |group: usize, batches: Vec<RecordBatch>| match groups
            .iter_mut()
            .find(|(g, _)| *g == group)
        {
            Some((_, rows)) => rows.extend(batches),
            None => groups.push((group, batches)),
        };
        for ((file, lease), treatment) in plan.files.into_iter().zip(leases).zip(file_treatments) {
            let path = self.data_file(&file.name);
            match treatment {
                Treatment::AsIs => scan.files.push(ScanFile { path, file, lease }),
                Treatment::Merge(group) => {
                    let batches = persist::read_parquet(&path)?
                        .iter()
                        .map(|b| keep_within(&align(b, schema, table)?, &time, table))
                        .collect::<Result<Vec<_>, _>>()?;
                    group_rows(*group, batches);
                }
            }
        }
        for (chunk, treatment) in plan.chunks.into_iter().zip(chunk_treatments) {
            match treatment {
                Treatment::AsIs => scan
                    .batches
                    .push(keep_after(&chunk.batch, keep_from, table)?),
                Treatment::Merge(group) => {
                    group_rows(*group, vec![keep_within(&chunk.batch, &time, table)?]);
                }
            }
        }
        for (_, batches) in groups {
            scan.batches
                .push(persist::sort_dedup(table, schema, &batches)?);
        }
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(range: RangeInclusive<i64>, fresh: bool, deduplicated: bool) -> Source {
        Source {
            range,
            fresh,
            deduplicated,
        }
    }

    #[test]
    fn fresh_sources_are_read_as_they_are() {
        let sources = [
            source(0..=10, false, true),
            source(10..=20, true, true),
            source(20..=30, true, false),
        ];
        assert_eq!(treatments(&sources), vec![Treatment::AsIs; 3]);
    }

    #[test]
    fn a_stale_source_merges_with_earlier_overlapping_ones() {
        let sources = [
            source(0..=10, true, true),   // 0
            source(20..=30, true, true),  // 1
            source(40..=50, true, true),  // 2
            source(5..=25, false, false), // 3: overlaps 0 and 1
            source(45..=46, true, false), // 4: fresh, overlaps 2 but stays
        ];
        let t = treatments(&sources);
        assert_eq!(t[0], t[1]);
        assert_eq!(t[1], t[3]);
        assert!(matches!(t[0], Treatment::Merge(_)));
        assert_eq!(t[2], Treatment::AsIs);
        assert_eq!(t[4], Treatment::AsIs);
    }

    #[test]
    fn a_stale_chunk_alone_is_still_deduplicated_but_a_file_is_not() {
        let sources = [source(0..=10, false, false), source(20..=30, false, true)];
        let t = treatments(&sources);
        assert!(matches!(t[0], Treatment::Merge(_)));
        assert_eq!(t[1], Treatment::AsIs);
    }
}
