//! The store as the server will use it: write line protocol, read Arrow
//! batches, reopen the directory.

// Helpers outside #[test] fns unwrap too: in a test a panic is the report.
#![allow(clippy::unwrap_used)]

use arrow::array::{
    Array, AsArray, BooleanArray, DictionaryArray, Float64Array, Int64Array, StringArray,
    TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Int32Type};
use arrow::record_batch::RecordBatch;
use lineproto::Precision;
use store::{Store, StoreConfig, StoreError};

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreConfig::default()).unwrap()
}

fn write(store: &Store, body: &str) -> store::WriteSummary {
    store
        .write_lines("db", body.as_bytes(), Precision::Nanoseconds)
        .unwrap()
}

/// All rows of `table` as one batch.
fn rows(store: &Store, table: &str) -> RecordBatch {
    let batches = store.scan("db", table).unwrap().expect("table exists");
    let schema = store.table_schema("db", table).unwrap();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

fn tag(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let col = batch.column_by_name(name).unwrap();
    let dict: &DictionaryArray<Int32Type> = col.as_dictionary();
    if dict.is_null(row) {
        return None;
    }
    let values: &StringArray = dict.values().as_string();
    Some(values.value(dict.keys().value(row) as usize).to_owned())
}

#[test]
fn every_field_type_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = write(
        &store,
        "m,host=a f=-1.5,i=-9223372036854775808i,u=18446744073709551615u,b=true,s=\"q\\\"x\\ny\" 42\n",
    );
    assert_eq!((s.accepted, s.rejected.len()), (1, 0));
    let b = rows(&store, "m");
    let col = |n: &str| b.column_by_name(n).unwrap();
    assert_eq!(
        col("time")
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap()
            .value(0),
        42
    );
    assert_eq!(tag(&b, "host", 0).as_deref(), Some("a"));
    assert_eq!(
        col("f")
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .value(0),
        -1.5
    );
    assert_eq!(
        col("i")
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0),
        i64::MIN
    );
    assert_eq!(
        col("u")
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap()
            .value(0),
        u64::MAX
    );
    assert!(col("b")
        .as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap()
        .value(0));
    assert_eq!(
        col("s")
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0),
        "q\"x\\ny"
    );
    assert!(matches!(col("host").data_type(), DataType::Dictionary(..)));
}

#[test]
fn schema_grows_and_old_rows_read_null() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write(&store, "cpu,host=a usage=1 1\n");
    write(&store, "cpu,host=b,dc=ams usage=2,cores=8i 2\n");
    let b = rows(&store, "cpu");
    let names: Vec<_> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["time", "host", "usage", "dc", "cores"]);
    assert_eq!(tag(&b, "dc", 0), None);
    assert_eq!(tag(&b, "dc", 1).as_deref(), Some("ams"));
    let cores = b.column_by_name("cores").unwrap();
    assert!(cores.is_null(0));
    assert_eq!(
        cores
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(1),
        8
    );
}

#[test]
fn type_conflicts_reject_the_line_and_keep_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write(&store, "cpu usage=1 1\n");
    let s = write(
        &store,
        "cpu usage=2 2\ncpu usage=3i 3\ncpu,usage=x n=1 4\ncpu usage=4 5\n",
    );
    assert_eq!(s.accepted, 2);
    let msgs: Vec<_> = s.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        [
            r#"line 2: field "usage" is integer, but column "usage" of table "cpu" is float"#,
            r#"line 3: "usage" is a tag in this line, but column "usage" of table "cpu" is a field"#,
        ]
    );
    assert_eq!(rows(&store, "cpu").num_rows(), 3);
    // What was logged is exactly what was accepted.
    store.close();
    let store = open(dir.path());
    let b = rows(&store, "cpu");
    let usage = b
        .column_by_name("usage")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(usage.values().to_vec(), [1.0, 2.0, 4.0]);
}

#[test]
fn conflicts_within_one_batch_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = write(&store, "m v=1i 1\nm v=\"text\" 2\n");
    assert_eq!(s.accepted, 1);
    assert_eq!(s.rejected[0].line, 2);
}

#[test]
fn parse_errors_are_named_and_the_valid_rest_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = write(&store, "m v=1 1\nm v=12xi 2\nm v=3 3\n");
    assert_eq!(s.accepted, 2);
    assert_eq!(
        s.rejected[0].to_string(),
        r#"line 2, col 5: invalid integer field value "12xi""#
    );
}

#[test]
fn lines_without_timestamp_get_the_write_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_lines_at("db", b"m v=1\nm v=2 7", Precision::Seconds, 123)
        .unwrap();
    let b = rows(&store, "m");
    let t = b
        .column(0)
        .as_any()
        .downcast_ref::<TimestampNanosecondArray>()
        .unwrap();
    assert_eq!((t.value(0), t.value(1)), (123, 7_000_000_000));
}

#[test]
fn repeated_field_key_keeps_the_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write(&store, "m v=1,v=2 1\n");
    let b = rows(&store, "m");
    assert_eq!(b.num_rows(), 1);
    assert_eq!(
        b.column_by_name("v")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .value(0),
        2.0
    );
}

#[test]
fn data_and_schema_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        for i in 0..100 {
            write(
                &store,
                &format!("cpu,host=h{} usage={i},n={i}i {i}\n", i % 7),
            );
        }
        write(&store, "mem used=5u 1\n");
        store.close();
    }
    let store = open(dir.path());
    let b = rows(&store, "cpu");
    assert_eq!(b.num_rows(), 100);
    let n = b
        .column_by_name("n")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(n.iter().flatten().sum::<i64>(), (0..100).sum::<i64>());
    assert_eq!(rows(&store, "mem").num_rows(), 1);
    // The schema came back too: a conflicting type is still refused.
    let s = write(&store, "cpu usage=\"x\" 1\n");
    assert_eq!(s.accepted, 0);
    // And a second restart does not duplicate anything.
    store.close();
    let store = open(dir.path());
    assert_eq!(rows(&store, "cpu").num_rows(), 100);
}

#[test]
fn many_rows_span_frozen_chunks_and_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut body = String::new();
    for i in 0..70_000 {
        body.push_str(&format!("m,k=v{} x={i}i {i}\n", i % 3));
    }
    write(&store, &body);
    write(&store, "m,k=new,extra=e x=1i,y=2.5 70000\n");
    let b = rows(&store, "m");
    assert_eq!(b.num_rows(), 70_001);
    assert_eq!(b.column_by_name("y").unwrap().null_count(), 70_000);
    assert_eq!(tag(&b, "extra", 70_000).as_deref(), Some("e"));
}

#[test]
fn concurrent_writers_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let s = write(&store, &format!("m,w=t{t} i={i}i {}\n", t * 1000 + i));
                    assert_eq!(s.accepted, 1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(rows(&store, "m").num_rows(), 200);
}

#[test]
fn unknown_database_without_auto_create() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        auto_create_databases: false,
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path(), config).unwrap();
    let err = store
        .write_lines("nope", b"m v=1", Precision::Nanoseconds)
        .unwrap_err();
    assert_eq!(err.to_string(), r#"database "nope" not found"#);
    assert!(store.create_database("nope").unwrap());
    assert_eq!(
        store
            .write_lines("nope", b"m v=1", Precision::Nanoseconds)
            .unwrap()
            .accepted,
        1
    );
}

#[test]
fn bad_database_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for name in ["", "..", "a/b", "x\ny"] {
        let err = store
            .write_lines(name, b"m v=1", Precision::Nanoseconds)
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidDatabaseName(_)),
            "{name:?}: {err}"
        );
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path());
    let err = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::Locked(_)), "{err}");
}

#[test]
fn a_torn_log_tail_loses_only_the_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        write(&store, "m v=1 1\n");
        write(&store, "m v=2 2\n");
        store.close();
    }
    let wal = dir.path().join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    // The first session wrote into the first segment; tear its last record.
    let seg = &segments[0];
    let bytes = std::fs::read(seg).unwrap();
    std::fs::write(seg, &bytes[..bytes.len() - 3]).unwrap();
    let store = open(dir.path());
    assert_eq!(rows(&store, "m").num_rows(), 1);
    write(&store, "m v=3 3\n");
    store.close();
    let store = open(dir.path());
    assert_eq!(rows(&store, "m").num_rows(), 2);
}

#[test]
fn a_corrupt_catalog_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).close();
    std::fs::write(dir.path().join("catalog.json"), b"{\"databases\": 7").unwrap();
    let err = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
    assert!(err.to_string().contains("catalog.json is corrupt"), "{err}");
}

#[test]
fn lines_that_grow_when_logged_are_kept() {
    // `\a` in a string is no escape, so the log writes it as `\\a`: this
    // line is within the token limit as sent but not as logged.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let body = format!("m s=\"{}\" 1\n", "\\a".repeat(30_000));
    assert!(body.len() < 65_536);
    assert_eq!(write(&store, &body).accepted, 1);
    assert_eq!(rows(&store, "m").num_rows(), 1);
    store.close();
    let store = open(dir.path());
    let b = rows(&store, "m");
    let s = b
        .column_by_name("s")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(s.value(0).len(), 60_000);
}

#[test]
fn opening_without_writing_leaves_no_new_log_segments() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).close();
    open(dir.path()).close();
    open(dir.path()).close();
    assert_eq!(
        std::fs::read_dir(dir.path().join("wal")).unwrap().count(),
        1
    );
}

/// Every row of `table` as text, in scan order.
fn dump(store: &Store, table: &str) -> Vec<String> {
    let b = rows(store, table);
    let text: Vec<_> = b
        .columns()
        .iter()
        .map(|c| arrow::compute::cast(c, &DataType::Utf8).unwrap())
        .collect();
    (0..b.num_rows())
        .map(|i| {
            text.iter()
                .map(|c| c.as_string::<i32>().value(i).to_owned())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

#[test]
fn precision_and_write_time_survive_replay_for_small_and_big_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write_lines_at("db", b"m v=1\nm v=2 7", Precision::Seconds, 123)
        .unwrap();
    // Big enough to be built into Arrow by the writer (one table, 1500
    // rows), with lines without timestamp, comments and blank lines.
    let mut big = String::from("# a comment\n\n");
    for i in 0..1500 {
        if i % 3 == 0 {
            big.push_str(&format!("m,k=b{} v={i}\n", i % 7));
        } else {
            big.push_str(&format!("m,k=b{} v={i} {}\n", i % 7, 1000 + i));
        }
    }
    let s = store
        .write_lines_at("db", big.as_bytes(), Precision::Milliseconds, 456)
        .unwrap();
    assert_eq!(s.accepted, 1500);
    let before = dump(&store, "m");
    // The 500 lines without timestamp share the write time: one row per
    // series (7) survives.
    assert_eq!(before.len(), 2 + 1000 + 7);
    assert!(before.contains(&"1970-01-01T00:00:00.000000456|1491.0|b0".to_owned()));
    assert!(before.contains(&"1970-01-01T00:00:01.001|1.0|b1".to_owned()));
    store.close();
    // Closing does not persist: the reopened store replays its log.
    let store = open(dir.path());
    assert_eq!(dump(&store, "m"), before);
}

#[test]
fn a_log_written_before_lines_were_logged_as_received_is_replayed() {
    // Version 1 records: the database, then lines re-encoded with
    // nanosecond timestamps.
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    let mut payload = vec![1u8];
    payload.extend_from_slice(&2u16.to_le_bytes());
    payload.extend_from_slice(b"db");
    payload.extend_from_slice(b"m,k=a v=1 100\nm,k=b v=2 200\n");
    let mut segment = b"WEIRWAL1".to_vec();
    segment.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    segment.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    segment.extend_from_slice(&payload);
    std::fs::write(wal.join(format!("{:020}.wal", 1)), segment).unwrap();
    let store = open(dir.path());
    assert_eq!(
        dump(&store, "m"),
        [
            "1970-01-01T00:00:00.000000100|a|1.0",
            "1970-01-01T00:00:00.000000200|b|2.0"
        ]
    );
}

#[test]
fn a_big_write_with_a_refused_line_keeps_the_rest_across_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(write(&store, "m v=1 1\n").accepted, 1);
    let body: String = (0..1500)
        .map(|i| {
            if i == 700 {
                "m,k=x v=5i 700\n".to_owned() // v is a float column
            } else {
                format!("m,k=x v={i} {}\n", 1000 + i)
            }
        })
        .collect();
    let s = write(&store, &body);
    assert_eq!(s.accepted, 1499);
    assert_eq!(s.rejected.len(), 1);
    assert_eq!(s.rejected[0].line, 701);
    let before = dump(&store, "m");
    assert_eq!(before.len(), 1500);
    store.close();
    let store = open(dir.path());
    assert_eq!(dump(&store, "m"), before);
}

#[test]
fn a_replayed_big_write_counts_against_the_budget_as_it_did_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let body: String = (0..3000)
        .map(|i| format!("m,host=h{} v={i},w={i}i {i}\n", i % 10))
        .collect();
    write(&store, &body);
    let live = store.buffered_bytes();
    assert!(live > 0);
    store.close();
    let store = open(dir.path());
    assert_eq!(store.buffered_bytes(), live);
}

#[test]
fn a_write_time_out_of_range_refuses_only_lines_without_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = store
        .write_lines_at("db", b"m v=1\nm v=2 7", Precision::Seconds, i64::MAX)
        .unwrap();
    assert_eq!(s.accepted, 1);
    assert_eq!(s.rejected.len(), 1);
    assert_eq!(s.rejected[0].line, 1);
    assert!(
        s.rejected[0].reason.contains("no timestamp"),
        "{}",
        s.rejected[0].reason
    );
}
