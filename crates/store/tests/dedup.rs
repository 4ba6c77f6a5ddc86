//! A point (series and time) written more than once is returned once, the
//! later write winning field by field — wherever the copies are: in the
//! buffer, in files, or one in each, before and after a restart. And the
//! files a scan reads stay on disk until it has read them.

// Helpers outside #[test] fns unwrap too: in a test a panic is the report.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use arrow::array::{Array, StringArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::DataType;
use lineproto::Precision;
use store::{Store, StoreConfig};

fn open(dir: &Path) -> Store {
    let config = StoreConfig {
        background_persist: false,
        ..StoreConfig::default()
    };
    Store::open(dir, config).unwrap()
}

fn write(store: &Store, body: &str) {
    let summary = store
        .write_lines("db", body.as_bytes(), Precision::Seconds)
        .unwrap();
    assert!(summary.rejected.is_empty(), "{:?}", summary.rejected);
}

/// Rows of table `m` as "tags|time|v|w" strings, sorted.
fn rows(store: &Store) -> Vec<String> {
    let schema = store.table_schema("db", "m").unwrap();
    let batch = concat_batches(&schema, &store.scan("db", "m").unwrap().unwrap()).unwrap();
    let text = |name: &str| -> Vec<String> {
        let Some(column) = batch.column_by_name(name) else {
            return vec!["-".to_owned(); batch.num_rows()];
        };
        let column = cast(column, &DataType::Utf8).unwrap();
        let column = column.as_any().downcast_ref::<StringArray>().unwrap();
        column
            .iter()
            .map(|v| v.map_or("-", |v| v.trim_end_matches(".0")).to_owned())
            .collect()
    };
    let time = cast(batch.column_by_name("time").unwrap(), &DataType::Int64).unwrap();
    let time = cast(&time, &DataType::Utf8).unwrap();
    let time = time.as_any().downcast_ref::<StringArray>().unwrap();
    let (a, b, v, w) = (text("a"), text("b"), text("v"), text("w"));
    let mut out: Vec<String> = (0..batch.num_rows())
        .map(|i| {
            format!(
                "{},{}|{}|{}|{}",
                a[i],
                b[i],
                time.value(i).trim_end_matches("000000000"),
                v[i],
                w[i]
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_point_written_twice_in_the_buffer_shows_once_with_later_fields_winning() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write(&store, "m,a=1 v=1,w=10 100\nm,a=2 v=5 100");
    write(&store, "m,a=1 v=2 100");
    assert_eq!(rows(&store), ["1,-|100|2|10", "2,-|100|5|-"]);
}

#[test]
fn tag_order_does_not_make_a_new_series() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write(&store, "m,a=1,b=2 v=1 100");
    write(&store, "m,b=2,a=1 v=2 100");
    assert_eq!(rows(&store), ["1,2|100|2|-"]);
    // A repeated tag key keeps its last value, and is still the same series.
    write(&store, "m,a=9,b=2,a=1 w=7 100");
    assert_eq!(rows(&store), ["1,2|100|2|7"]);
}

#[test]
fn a_rewrite_of_a_persisted_point_replaces_it_before_and_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        write(&store, "m,a=1 v=1,w=1 100\nm,a=1 v=1 200\nm,a=2 v=1 100");
        store.persist().unwrap();
        // Late: older than the series' latest point, so it may duplicate.
        write(&store, "m,a=1 v=2 100");
        assert_eq!(rows(&store), ["1,-|100|2|1", "1,-|200|1|-", "2,-|100|1|-"]);
        store.close();
    }
    // After a restart the log is replayed and the store remembers nothing
    // of the series' history: it must still merge.
    let store = open(dir.path());
    assert_eq!(rows(&store), ["1,-|100|2|1", "1,-|200|1|-", "2,-|100|1|-"]);
    write(&store, "m,a=2 v=3 100");
    assert_eq!(rows(&store), ["1,-|100|2|1", "1,-|200|1|-", "2,-|100|3|-"]);
    // Persisted, the rewrite is a file overlapping the first: still once.
    store.persist().unwrap();
    assert_eq!(store.files().len(), 2);
    assert_eq!(rows(&store), ["1,-|100|2|1", "1,-|200|1|-", "2,-|100|3|-"]);
}

#[test]
fn in_order_writes_are_read_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write(&store, "m,a=1 v=1 100\nm,a=2 v=1 100");
    store.persist().unwrap();
    write(&store, "m,a=1 v=2 200\nm,a=2 v=2 200");
    store.persist().unwrap();
    write(&store, "m,a=1 v=3 300\nm,a=2 v=3 300");
    let schema = store.table_schema("db", "m").unwrap();
    let scan = store
        .plan_scan("db", "m", &schema, &(i64::MIN..=i64::MAX))
        .unwrap();
    // Nothing merged: both files are read by the query engine directly.
    assert_eq!(scan.files.len(), 2);
    assert_eq!(scan.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    // A late write to the first file's range is merged with what it overlaps.
    write(&store, "m,a=1 v=9 100");
    assert_eq!(
        rows(&store),
        [
            "1,-|100|9|-",
            "1,-|200|2|-",
            "1,-|300|3|-",
            "2,-|100|1|-",
            "2,-|200|2|-",
            "2,-|300|3|-"
        ]
    );
}

#[test]
fn a_file_being_read_survives_compaction_until_the_scan_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..3 {
        write(&store, &format!("m,a=1 v={i} {}", 100 + i));
        store.persist().unwrap();
    }
    let schema = store.table_schema("db", "m").unwrap();
    let scan = store
        .plan_scan("db", "m", &schema, &(i64::MIN..=i64::MAX))
        .unwrap();
    assert_eq!(scan.files.len(), 3);
    // The day of `m` and the day of its rollups `m_30m` and `m_1d`.
    assert_eq!(store.compact().unwrap(), 3);
    assert_eq!(store.files().len(), 1);
    // The planned files are still there to read…
    for file in &scan.files {
        assert!(
            file.path.exists(),
            "{} deleted under a scan",
            file.path.display()
        );
    }
    let paths: Vec<_> = scan.files.iter().map(|f| f.path.clone()).collect();
    drop(scan);
    // …and gone once the scan is.
    for path in paths {
        assert!(!path.exists(), "{} outlived its last lease", path.display());
    }
    assert_eq!(rows(&store), ["1,-|100|0|-", "1,-|101|1|-", "1,-|102|2|-"]);
}

#[test]
fn a_partial_compaction_keeps_a_late_rewrite_winning() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Today, so compaction is size-tiered rather than whole-day.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day_start = now - now % 86_400;
    let mut big = String::new();
    // Values that compress badly, so the file dwarfs the small ones.
    for i in 0..20_000u64 {
        let v = i.wrapping_mul(2_654_435_761) % 1_000_003;
        big.push_str(&format!("m,a=big v={v} {}\n", day_start + i));
    }
    write(&store, &big);
    // Without rollups: the rewrite would have compaction merge the day
    // whole to roll it up once (tests/rollup.rs), not size-tiered.
    store.set_rollups("db", false).unwrap();
    store.persist().unwrap();
    for i in 0..7 {
        // The third small write rewrites a point of the big file.
        let line = if i == 2 {
            format!("m,a=big v=-1 {}", day_start + 5)
        } else {
            format!("m,a=small v={i} {}", day_start + 10 + i)
        };
        write(&store, &line);
        store.persist().unwrap();
    }
    assert_eq!(store.files().len(), 8);
    assert_eq!(store.compact().unwrap(), 1);
    // The big file is left alone; the seven small ones became one.
    assert_eq!(store.files().len(), 2);
    let rows = rows(&store);
    assert_eq!(rows.len(), 20_000 + 6);
    let rewritten = format!("big,-|{}|-1|-", day_start + 5);
    assert!(rows.contains(&rewritten), "{:?}", &rows[..10]);
}

#[test]
fn big_writes_built_ahead_deduplicate_like_small_ones() {
    // A write with over a thousand rows of one table is built into Arrow
    // by its writer; its rows must still dedupe against each other, against
    // small writes before and after it, and across a replay and a persist.
    let dir = tempfile::tempdir().unwrap();
    let big = |series: std::ops::Range<usize>, v: i64| -> String {
        let mut body: String = series.map(|a| format!("m,a={a} v={v} 100\n")).collect();
        body.push_str("m,a=5 v=9 100\n");
        body
    };
    let check = |store: &Store| {
        let rows = rows(store);
        assert_eq!(rows.len(), 1200, "one row per series");
        for (row, why) in [
            ("5,-|100|9|-", "a later line of the same write wins"),
            (
                "7,-|100|-3|4",
                "a small write after a big one wins, field by field",
            ),
            ("9,-|100|2|5", "a field the big writes lack is kept"),
            ("1107,-|100|2|-", "the second big write wins over the first"),
            ("1199,-|100|1|-", "untouched by the second big write"),
        ] {
            assert!(rows.contains(&row.to_owned()), "{why}: {row}");
        }
    };
    {
        let store = open(dir.path());
        write(&store, "m,a=9 v=0,w=5 100\nm,a=7 v=0,w=4 100");
        write(&store, &big(0..1200, 1));
        write(&store, "m,a=7 v=-3 100");
        write(&store, &big(8..1108, 2));
        check(&store);
        store.close();
    }
    // Replayed from the log, then persisted.
    let store = open(dir.path());
    check(&store);
    store.persist().unwrap();
    check(&store);
}
