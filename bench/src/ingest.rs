//! In-process ingest of the TSBS data set into a [`Store`], with durable
//! acknowledgements: what the storage benchmark measures.
//!
//! A producer thread generates batches while `writers` threads write them,
//! as concurrent HTTP clients would; every write returns only after its log
//! record is fsynced (unless the store was opened with `sync` off).

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use lineproto::Precision;
use store::Store;

use crate::tsbs::{CpuOnly, FIELD_KEYS};

/// The database the data set is written to.
pub const DATABASE: &str = "tsbs";

/// What an ingest run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    /// Lines (TSBS rows) written.
    pub lines: usize,
    /// Field values written: lines × 10, the unit VictoriaMetrics and TSBS call points.
    pub values: usize,
    /// Wall-clock seconds from the first write to the last acknowledgement.
    pub seconds: f64,
    /// Bytes of line protocol sent.
    pub input_bytes: usize,
}

impl IngestReport {
    /// Field values per second.
    pub fn values_per_second(&self) -> f64 {
        self.values as f64 / self.seconds
    }

    /// Lines per second.
    pub fn lines_per_second(&self) -> f64 {
        self.lines as f64 / self.seconds
    }
}

/// Writes the whole data set of `config` into `store` in batches of
/// `batch_points` lines from `writers` threads; fails on the first write
/// error or rejected line.
pub fn ingest_tsbs(
    store: &Arc<Store>,
    config: CpuOnly,
    batch_points: usize,
    writers: usize,
) -> Result<IngestReport> {
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(writers.max(1) * 2);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let started = Instant::now();
    let producer = std::thread::spawn(move || {
        let mut stream = config.stream();
        let mut sent = 0usize;
        loop {
            let mut batch = Vec::with_capacity(batch_points * 360);
            if stream.write_points(&mut batch, batch_points) == 0 {
                break;
            }
            sent += batch.len();
            if tx.send(batch).is_err() {
                break;
            }
        }
        sent
    });
    let workers: Vec<_> = (0..writers.max(1))
        .map(|_| {
            let rx = Arc::clone(&rx);
            let store = Arc::clone(store);
            std::thread::spawn(move || -> Result<usize> {
                let mut lines = 0;
                loop {
                    let batch = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return Err(anyhow!("a writer thread panicked")),
                    };
                    let Ok(batch) = batch else { return Ok(lines) };
                    let summary = store.write_lines(DATABASE, &batch, Precision::Nanoseconds)?;
                    if let Some(bad) = summary.rejected.first() {
                        return Err(anyhow!("the store rejected a generated line: {bad}"));
                    }
                    lines += summary.accepted;
                }
            })
        })
        .collect();
    let mut lines = 0;
    for worker in workers {
        lines += worker
            .join()
            .map_err(|_| anyhow!("a writer thread panicked"))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let input_bytes = producer
        .join()
        .map_err(|_| anyhow!("the generator thread panicked"))?;
    Ok(IngestReport {
        lines,
        values: lines * FIELD_KEYS.len(),
        seconds,
        input_bytes,
    })
}

/// Total size of the files under `dir`.
pub fn disk_usage(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            disk_usage(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// The process's peak resident set size (VmHWM), where Linux reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_ingest_lands_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), store::StoreConfig::default()).unwrap());
        let report = ingest_tsbs(&store, CpuOnly::new(3, 1, 1), 100, 2).unwrap();
        assert_eq!(report.lines, 3 * 360);
        assert_eq!(report.values, 3 * 360 * 10);
        let rows: usize = store
            .scan(DATABASE, "cpu")
            .unwrap()
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 3 * 360);
        assert!(disk_usage(dir.path()).unwrap() as usize > report.input_bytes / 2);
    }
}
