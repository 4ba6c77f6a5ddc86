//! Persistence: buffered rows move to sorted, deduplicated Parquet files,
//! the log is released, and nothing is lost or doubled across restarts.

// Helpers outside #[test] fns unwrap too: in a test a panic is the report.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use arrow::array::{Array, Float64Array, Int64Array};
use arrow::record_batch::RecordBatch;
use lineproto::Precision;
use store::{Store, StoreConfig};

fn config() -> StoreConfig {
    StoreConfig {
        background_persist: false,
        ..StoreConfig::default()
    }
}

fn open(dir: &Path) -> Store {
    Store::open(dir, config()).unwrap()
}

fn all(store: &Store, table: &str) -> RecordBatch {
    let schema = store.table_schema("db", table).unwrap();
    let batches = store.scan("db", table).unwrap().unwrap();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<Option<i64>> {
    let c = batch.column_by_name(column).unwrap();
    let c = c.as_any().downcast_ref::<Int64Array>().unwrap();
    c.iter().collect()
}

fn wal_segments(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("wal")).unwrap().count()
}

const DAY: i64 = 86_400;

#[test]
fn persisted_rows_read_back_across_restarts_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut body = String::new();
    for i in 0..1000 {
        // Two days, three series.
        body.push_str(&format!("m,s=s{} n={i}i {}\n", i % 3, i * 150));
    }
    store
        .write_lines("db", body.as_bytes(), Precision::Seconds)
        .unwrap();
    let summary = store.persist().unwrap();
    assert_eq!(summary.rows, 1000);
    assert_eq!(summary.files, 2, "one file per day");
    assert_eq!(store.buffered_rows(), 0);
    assert_eq!(store.files().len(), 2);
    assert!(store
        .files()
        .iter()
        .all(|f| f.max_time - f.min_time < DAY * 1_000_000_000));
    assert_eq!(
        wal_segments(dir.path()),
        1,
        "persisted segments are released"
    );

    // Rows come back, sorted by series then time within each file.
    let b = all(&store, "m");
    assert_eq!(b.num_rows(), 1000);
    let mut n: Vec<i64> = ints(&b, "n").into_iter().flatten().collect();
    n.sort();
    assert_eq!(n, (0..1000).collect::<Vec<_>>());

    // The schema grows after the persist: old rows read the new column as null.
    store
        .write_lines("db", b"m,s=s9 n=5000i,extra=1.5 999999", Precision::Seconds)
        .unwrap();
    store.close();

    let store = open(dir.path());
    let b = all(&store, "m");
    assert_eq!(b.num_rows(), 1001);
    let extra = b.column_by_name("extra").unwrap();
    assert_eq!(extra.null_count(), 1000);
    store.persist().unwrap();
    store.close();

    let store = open(dir.path());
    assert_eq!(all(&store, "m").num_rows(), 1001);
    assert_eq!(store.buffered_rows(), 0);
}

#[test]
fn duplicates_merge_with_the_later_write_winning_per_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_lines("db", b"m,s=a v=1,w=10 5\nm,s=b v=7 5", Precision::Seconds)
        .unwrap();
    store
        .write_lines("db", b"m,s=a v=2 5\nm,s=a v=3 6", Precision::Seconds)
        .unwrap();
    store.persist().unwrap();
    let b = all(&store, "m");
    assert_eq!(b.num_rows(), 3, "(a,5) written twice is one row");
    let v = b
        .column_by_name("v")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    let w = b
        .column_by_name("w")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    // Sorted by series then time: (a,5) (a,6) (b,5).
    assert_eq!(v.values().to_vec(), [2.0, 3.0, 7.0]);
    assert_eq!((w.value(0), w.is_null(1), w.is_null(2)), (10.0, true, true));
}

#[test]
fn a_corrupt_parquet_file_leaves_the_rest_readable() {
    let dir = tempfile::tempdir().unwrap();
    let victim_path;
    {
        let store = open(dir.path());
        store
            .write_lines("db", b"a v=1 1\nb v=2 1", Precision::Seconds)
            .unwrap();
        store.persist().unwrap();
        store
            .write_lines("db", b"a v=3 2", Precision::Seconds)
            .unwrap();
        let victim = store.files().into_iter().find(|f| f.table == "a").unwrap();
        store.close();
        let path = dir.path().join("data").join(&victim.name);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes.truncate(mid);
        std::fs::write(&path, bytes).unwrap();
        victim_path = path;
    }
    let store = open(dir.path());
    // Reading the damaged file fails and says which file, rather than
    // answer without its rows.
    let err = store.scan("db", "a").unwrap_err().to_string();
    assert!(err.contains(&victim_path.display().to_string()), "{err}");
    // Everything else stays readable: other tables, and the damaged
    // table's rows outside the file's time range.
    assert_eq!(all(&store, "b").num_rows(), 1);
    let schema = store.table_schema("db", "a").unwrap();
    let second = 1_000_000_000;
    let scan = store
        .plan_scan("db", "a", &schema, &(2 * second..=2 * second))
        .unwrap();
    assert!(scan.files.is_empty());
    assert_eq!(scan.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
}

#[test]
fn a_persist_that_never_registered_its_files_is_undone_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_lines("db", b"m v=1 1", Precision::Seconds)
        .unwrap();
    store.close();
    // As if a persist crashed after writing a file but before the manifest named it.
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/000000000001.parquet"), b"half a file").unwrap();
    let store = open(dir.path());
    assert!(!dir.path().join("data/000000000001.parquet").exists());
    assert_eq!(all(&store, "m").num_rows(), 1);
    store.persist().unwrap();
    assert_eq!(all(&store, "m").num_rows(), 1);
}

#[test]
fn the_background_persister_keeps_the_buffer_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        buffer_budget_bytes: 64 << 10,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).unwrap();
    for batch in 0..50 {
        let mut body = String::new();
        for i in 0..200 {
            body.push_str(&format!(
                "m,s=s{} n={}i {}\n",
                i % 4,
                batch * 200 + i,
                batch * 200 + i
            ));
        }
        store
            .write_lines("db", body.as_bytes(), Precision::Seconds)
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.files().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!store.files().is_empty(), "nothing was persisted");
    let b = all(&store, "m");
    let mut n: Vec<i64> = ints(&b, "n").into_iter().flatten().collect();
    n.sort();
    assert_eq!(n, (0..10_000).collect::<Vec<_>>());
}

#[test]
fn writes_wait_for_room_so_memory_stays_within_the_budget() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let budget = 256 << 10;
    let mut config = StoreConfig {
        buffer_budget_bytes: budget,
        ..StoreConfig::default()
    };
    // Writes as fast as the machine allows, so persisting falls behind.
    config.wal.sync = false;
    let store = Arc::new(Store::open(dir.path(), config).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let (store, done, peak) = (Arc::clone(&store), Arc::clone(&done), Arc::clone(&peak));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(store.buffered_bytes(), Ordering::Relaxed);
                std::thread::yield_now();
            }
        })
    };
    let writers = 4;
    let batches = 100;
    let mut largest_write = 0;
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let store = Arc::clone(&store);
            let mut body = String::new();
            std::thread::spawn(move || {
                let mut largest = 0;
                for batch in 0..batches {
                    body.clear();
                    for i in 0..100 {
                        let n = (w * batches + batch) * 100 + i;
                        body.push_str(&format!(
                            "m,w=w{w},s=s{} n={n}i,pad=\"{:040}\" {n}\n",
                            i % 7,
                            n
                        ));
                    }
                    largest = largest.max(body.len());
                    let summary = store
                        .write_lines("db", body.as_bytes(), Precision::Seconds)
                        .unwrap();
                    assert_eq!(summary.accepted, 100);
                }
                largest
            })
        })
        .collect();
    for t in threads {
        largest_write = largest_write.max(t.join().unwrap());
    }
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    // Each writer may pass the check just before the buffer fills; a record
    // is a little larger than its body (header, nanosecond timestamps).
    let bound = budget + writers * (largest_write + 100 * 16);
    assert!(
        peak <= bound,
        "buffer peaked at {peak} bytes, budget {budget}, bound {bound}"
    );
    assert!(
        peak >= budget / 2,
        "the test never filled the buffer: peak {peak}"
    );
    let b = all(&store, "m");
    assert_eq!(b.num_rows(), writers * batches * 100);
}

#[test]
fn a_missing_manifest_is_an_error_not_a_reason_to_delete_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_lines("db", b"m v=1 1", Precision::Seconds)
        .unwrap();
    store.persist().unwrap();
    store.close();
    std::fs::rename(
        dir.path().join("manifest.json"),
        dir.path().join("manifest.bak"),
    )
    .unwrap();
    let err = Store::open(dir.path(), config()).unwrap_err();
    assert!(err.to_string().contains("the manifest is missing"), "{err}");
    // The data file and its two rollup files are still there.
    assert_eq!(
        std::fs::read_dir(dir.path().join("data")).unwrap().count(),
        3
    );
    std::fs::rename(
        dir.path().join("manifest.bak"),
        dir.path().join("manifest.json"),
    )
    .unwrap();
    assert_eq!(all(&open(dir.path()), "m").num_rows(), 1);
}

#[test]
fn retention_hides_old_rows_at_once_and_deletes_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let old = format!("m v=1 {}\nm v=2 {}\n", now - 10 * DAY, now - 9 * DAY);
    store
        .write_lines("db", old.as_bytes(), Precision::Seconds)
        .unwrap();
    store.persist().unwrap();
    let fresh = format!("m v=3 {}\nm v=4 {}\n", now - 2 * DAY, now - 60);
    store
        .write_lines("db", fresh.as_bytes(), Precision::Seconds)
        .unwrap();
    store
        .write_lines("other", old.as_bytes(), Precision::Seconds)
        .unwrap();
    assert_eq!(all(&store, "m").num_rows(), 4);
    let old_files = store.files().len();

    // Keep 7 days: the two old rows vanish from answers at once, in both the
    // persisted file and (after the next persist) on disk; other databases
    // keep everything.
    store
        .set_retention("db", Some(std::time::Duration::from_secs(7 * DAY as u64)))
        .unwrap();
    let v = |b: &RecordBatch| {
        let c = b.column_by_name("v").unwrap();
        let mut v: Vec<f64> = c
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .values()
            .to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    assert_eq!(v(&all(&store, "m")), [3.0, 4.0]);
    store.persist().unwrap();
    assert!(store
        .files()
        .iter()
        .all(|f| f.db != "db" || f.max_time >= (now - 7 * DAY) * 1_000_000_000));
    assert!(store.files().len() <= old_files + 2);
    assert_eq!(v(&all(&store, "m")), [3.0, 4.0]);
    let other = arrow::compute::concat_batches(
        &store.table_schema("other", "m").unwrap(),
        &store.scan("other", "m").unwrap().unwrap(),
    )
    .unwrap();
    assert_eq!(other.num_rows(), 2);

    // The setting survives a restart.
    store.close();
    let store = open(dir.path());
    assert_eq!(v(&all(&store, "m")), [3.0, 4.0]);
    let err = store
        .set_retention("db", Some(std::time::Duration::ZERO))
        .unwrap_err();
    assert!(err.to_string().contains("at least one second"), "{err}");
    let err = store.set_retention("nope", None).unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn compaction_merges_a_days_files_and_their_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Five persists into the same (past) day; point (a, 100) written twice.
    for round in 0..5 {
        let body = format!(
            "m,s=a v={round} {}\nm,s=b v={round} {}\n",
            100 + round,
            200 + round
        );
        store
            .write_lines("db", body.as_bytes(), Precision::Seconds)
            .unwrap();
        if round == 3 {
            store
                .write_lines("db", b"m,s=a v=99 100", Precision::Seconds)
                .unwrap();
        }
        store.persist().unwrap();
    }
    assert_eq!(store.files().len(), 5);
    // Scans merge the late rewrite with the file it overlaps already.
    let before = all(&store, "m");
    assert_eq!(before.num_rows(), 10, "the point written twice shows once");
    // The day of `m`, merged whole with its rollups rebuilt from it (the
    // rewrite would count twice in them): their days need no merge then.
    assert_eq!(store.compact().unwrap(), 1);
    assert_eq!(store.files().len(), 1);
    assert_eq!(store.rollup_files().len(), 2);
    assert_eq!(
        std::fs::read_dir(dir.path().join("data")).unwrap().count(),
        3
    );
    let b = all(&store, "m");
    assert_eq!(b.num_rows(), 10);
    let v = b.column_by_name("v").unwrap();
    let v = v.as_any().downcast_ref::<Float64Array>().unwrap();
    // Sorted by series, then time: (a,100) holds the later write.
    assert_eq!(v.value(0), 99.0);
    assert_eq!(store.compact().unwrap(), 0, "nothing left to merge");
    store.close();
    let store = open(dir.path());
    assert_eq!(all(&store, "m").num_rows(), 10);
}
