//! The manifest: which Parquet files hold persisted rows, and up to which
//! log segment everything is persisted. Saved atomically after the files it
//! names are durable, so a crash leaves either the old or the new set.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::catalog::write_atomically;
use crate::error::StoreError;
use crate::persist::DAY_NANOS;
use crate::rollup::RollupGrain;

/// One persisted Parquet file: rows of one table, sorted by series and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetFile {
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// File name under `<data-dir>/data/`.
    pub name: String,
    /// Earliest row time (ns).
    pub min_time: i64,
    /// Latest row time (ns).
    pub max_time: i64,
    /// Rows in the file.
    pub rows: usize,
    /// Size on disk.
    pub bytes: u64,
    /// Every row is later than every row of its series in earlier files
    /// (and this file is free of duplicates), so a scan needs not merge it
    /// with them. Unknown (false) in manifests written before weir tracked it.
    #[serde(default)]
    pub fresh: bool,
    /// The file holds rollups (table `<raw table>_30m` or `_1d`), not raw
    /// rows: partial rows of one series and bucket merge at query time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollup: bool,
    /// Raw rows written while their database kept no rollups (or merged
    /// with such rows): its table's rollups do not cover them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unrolled: bool,
    /// Raw rows persisted from chunks that may repeat (same series and
    /// time) rows of earlier generations, over the time of earlier raw
    /// files: scans deduplicate such rows but its day's rollups count them
    /// twice, so its table's rollups do not cover it until compaction
    /// rebuilds them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeats: bool,
}

/// Everything persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Log segments up to this number are in the files below and are not
    /// replayed (0: none).
    pub(crate) persisted_through_segment: u64,
    /// Number for the next file name.
    pub(crate) next_file: u64,
    /// The files, oldest first.
    pub(crate) files: Vec<ParquetFile>,
}

impl Manifest {
    /// Reads the manifest at `path`, or an empty one if there is none.
    pub(crate) fn load(path: &Path) -> Result<Self, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptCatalog {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(StoreError::io("reading the manifest", path, e)),
        }
    }

    /// The (database, raw table, UTC day number) of each day with
    /// half-hour rollup files but no daily ones: persisted before weir
    /// wrote daily rollups, or with its daily row dropped at the rollup
    /// retention's cutoff.
    pub(crate) fn days_without_daily_rollups(&self) -> HashSet<(String, String, i64)> {
        let days = |grain: RollupGrain| -> HashSet<(String, String, i64)> {
            self.files
                .iter()
                .filter(|f| f.rollup)
                .filter_map(|f| match RollupGrain::of_table(&f.table) {
                    Some((raw, g)) if g == grain => Some((
                        f.db.clone(),
                        raw.to_owned(),
                        f.min_time.div_euclid(DAY_NANOS),
                    )),
                    _ => None,
                })
                .collect()
        };
        let daily = days(RollupGrain::Day);
        days(RollupGrain::HalfHour)
            .into_iter()
            .filter(|d| !daily.contains(d))
            .collect()
    }

    /// Saves the manifest atomically.
    pub(crate) fn save(&self, path: &Path) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| StoreError::CorruptCatalog {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        write_atomically(path, &json)
    }
}
