//! SQL behaviour as query + expected output: every case in
//! `tests/sql_cases.txt` runs against the same small data set written
//! through the store, and its pretty-printed result must match exactly —
//! whether the rows are in memory, in Parquet files (some written before
//! columns existed), or written twice.
//!
//! Case format: a `query:` line with the SQL, then the expected table, then
//! a blank line. Lines starting with `#` are comments.

// Helpers outside #[test] fns unwrap too: in a test a panic is the report.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use lineproto::Precision;
use query::{QueryEngine, QueryError};
use store::{Store, StoreConfig};

const DATA: &str = "\
ping,src=ams,dst=fra rtt=10,ok=true 1700000000
ping,src=ams,dst=fra rtt=30,ok=true 1700000030
ping,src=ams,dst=nyc rtt=80,ok=false 1700000060
ping,src=fra,dst=nyc rtt=75,ok=true,loss=1i 1700003600
cpu,host=a usage=0.5,cores=8u,note=\"boot\" 1700000000
cpu,host=b usage=0.25 1700000000
";

/// Where the rows of [`DATA`] are when the cases run.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// In the write buffer.
    Memory,
    /// In Parquet files.
    Files,
    /// Half in files written before some columns existed, half in memory.
    Split,
    /// In files, then every line written again (same values) to memory.
    Twice,
}

fn engine_with(layout: Layout) -> (tempfile::TempDir, QueryEngine) {
    let (dir, store) = common::manual_store();
    let write = |lines: &[&str]| {
        let body = lines.join("\n");
        let summary = store
            .write_lines("net", body.as_bytes(), Precision::Seconds)
            .unwrap();
        assert_eq!(summary.accepted, lines.len(), "{:?}", summary.rejected);
    };
    let lines: Vec<&str> = DATA.lines().collect();
    match layout {
        Layout::Memory => write(&lines),
        Layout::Files => {
            write(&lines);
            store.persist().unwrap();
        }
        Layout::Split => {
            // The last ping (with `loss`) and cpu host=a (with `cores` and
            // `note`) come after the first files are written.
            write(&[lines[0], lines[1], lines[2], lines[5]]);
            store.persist().unwrap();
            write(&[lines[3], lines[4]]);
        }
        Layout::Twice => {
            write(&lines);
            store.persist().unwrap();
            write(&lines);
        }
    }
    (dir, QueryEngine::new(Arc::new(store)))
}

fn engine() -> (tempfile::TempDir, QueryEngine) {
    engine_with(Layout::Memory)
}

#[tokio::test]
async fn sql_cases_match_their_expected_output() {
    for layout in [Layout::Memory, Layout::Files, Layout::Split, Layout::Twice] {
        run_cases(layout).await;
    }
}

async fn run_cases(layout: Layout) {
    let (_dir, engine) = engine_with(layout);
    let text = include_str!("sql_cases.txt");
    let mut cases = 0;
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block.lines().filter(|l| !l.starts_with('#')).collect();
        let Some(first) = lines.first() else { continue };
        let sql = first
            .strip_prefix("query: ")
            .expect("a case starts with `query: `");
        let expected = lines[1..].join("\n");
        let batches = engine
            .sql("net", sql)
            .await
            .unwrap_or_else(|e| panic!("{layout:?}: {sql}: {e}"));
        let got = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert_eq!(got.trim(), expected.trim(), "\n{layout:?} query: {sql}\n");
        cases += 1;
    }
    assert!(cases >= 8, "only {cases} cases ran");
}

#[tokio::test]
async fn errors_name_what_is_wrong() {
    let (_dir, engine) = engine();
    let err = engine.sql("nope", "SELECT 1").await.unwrap_err();
    assert!(matches!(err, QueryError::DatabaseNotFound(_)), "{err}");
    let err = engine
        .sql("net", "SELECT * FROM missing")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("table 'weir.net.missing' not found"),
        "{err}"
    );
    let err = engine.sql("net", "SELEC 1").await.unwrap_err();
    assert!(err.to_string().contains("SELEC"), "{err}");
}

#[tokio::test]
async fn rows_written_after_planning_a_session_are_seen_by_the_next_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).unwrap());
    let engine = QueryEngine::new(Arc::clone(&store));
    store
        .write_lines("db", b"m v=1 1", Precision::Seconds)
        .unwrap();
    let count = |batches: Vec<arrow::record_batch::RecordBatch>| {
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    };
    assert!(count(
        engine
            .sql("db", "SELECT count(*) AS n FROM m")
            .await
            .unwrap()
    )
    .contains("| 1 |"));
    store
        .write_lines("db", b"m v=2,w=3i 2", Precision::Seconds)
        .unwrap();
    let out = count(
        engine
            .sql("db", "SELECT count(*) AS n, sum(w) AS w FROM m")
            .await
            .unwrap(),
    );
    assert!(out.contains("| 2 | 3 |"), "{out}");
}

#[tokio::test]
async fn a_kept_session_sees_new_tables_and_a_new_now_each_query() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).unwrap());
    let engine = QueryEngine::new(Arc::clone(&store));
    store
        .write_lines("db", b"m v=1 1", Precision::Seconds)
        .unwrap();
    let now = || async {
        let batches = engine
            .sql("db", "SELECT CAST(now() AS BIGINT) AS t")
            .await
            .unwrap();
        let column = batches[0].column(0).as_any();
        column
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0)
    };
    let first = now().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(now().await > first, "now() is taken per query");
    store
        .write_lines("db", b"n v=2 1", Precision::Seconds)
        .unwrap();
    let batches = engine.sql("db", "SELECT v FROM n").await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
}

#[tokio::test]
async fn time_filters_skip_chunks_and_keep_exact_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), StoreConfig::default()).unwrap());
    // 100 000 rows, one a second: the buffer holds them in several chunks.
    let mut body = String::new();
    for i in 0..100_000 {
        body.push_str(&format!("m,k=v{} x={i}i {i}\n", i % 5));
    }
    store
        .write_lines("db", body.as_bytes(), Precision::Seconds)
        .unwrap();
    let engine = QueryEngine::new(Arc::clone(&store));
    let pretty = |b: Vec<arrow::record_batch::RecordBatch>| {
        arrow::util::pretty::pretty_format_batches(&b)
            .unwrap()
            .to_string()
    };
    let cases = [
        (
            "time >= to_timestamp(10) AND time < to_timestamp(20)",
            "| 10 | 145 |",
        ),
        (
            "time BETWEEN to_timestamp(32760) AND to_timestamp(32779)",
            "| 20 | 655390 |",
        ),
        (
            "time > '1970-01-01T00:00:00Z' AND time <= '1970-01-01T00:00:05Z'",
            "| 5 | 15 |",
        ),
        ("to_timestamp(99990) < time", "| 9 | 899955 |"),
    ];
    for (filter, row) in cases {
        let sql = format!("SELECT count(*) AS n, sum(x) AS s FROM m WHERE {filter}");
        let out = pretty(engine.sql("db", &sql).await.unwrap());
        assert!(out.contains(row), "{filter}:\n{out}");
    }
    // A range inside the first chunk reads only that chunk.
    let plan = pretty(
        engine
            .sql(
                "db",
                "EXPLAIN SELECT count(*) FROM m WHERE time < to_timestamp(100)",
            )
            .await
            .unwrap(),
    );
    assert!(plan.contains("partition_sizes=[1]"), "{plan}");
    let plan = pretty(
        engine
            .sql("db", "EXPLAIN SELECT count(*) FROM m")
            .await
            .unwrap(),
    );
    assert!(!plan.contains("partition_sizes=[1]"), "{plan}");
}

#[tokio::test]
async fn files_are_pruned_by_datafusion_and_retention_is_exact() {
    let (_dir, store) = common::manual_store();
    let store = Arc::new(store);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // One file (when both fall in the same UTC day; two otherwise) with a
    // row on each side of the retention cutoff set below.
    let body = format!(
        "m,host=a v=1 {}\nm,host=b v=2 {}\nm,host.name=x v=3 {}",
        now - 1000,
        now - 10,
        now - 10
    );
    store
        .write_lines("db", body.as_bytes(), Precision::Seconds)
        .unwrap();
    store.persist().unwrap();
    let engine = QueryEngine::new(Arc::clone(&store));
    let pretty = |b: Vec<arrow::record_batch::RecordBatch>| {
        arrow::util::pretty::pretty_format_batches(&b)
            .unwrap()
            .to_string()
    };
    let plan = pretty(
        engine
            .sql("db", "EXPLAIN SELECT v FROM m WHERE host = 'b'")
            .await
            .unwrap(),
    );
    assert!(plan.contains("file_type=parquet"), "{plan}");
    assert!(plan.contains("predicate=host@"), "{plan}");
    let out = pretty(
        engine
            .sql("db", "SELECT v FROM m WHERE host = 'b'")
            .await
            .unwrap(),
    );
    assert!(out.contains("| 2.0 |"), "{out}");
    // A tag whose name has a dot is a column like any other.
    let out = pretty(
        engine
            .sql("db", r#"SELECT v FROM m WHERE "host.name" = 'x'"#)
            .await
            .unwrap(),
    );
    assert!(out.contains("| 3.0 |"), "{out}");

    store
        .set_retention("db", Some(std::time::Duration::from_secs(500)))
        .unwrap();
    // Without and with the time column in the projection.
    let out = pretty(
        engine
            .sql("db", "SELECT v FROM m ORDER BY v")
            .await
            .unwrap(),
    );
    assert!(!out.contains("| 1.0 |") && out.contains("| 2.0 |"), "{out}");
    let out = pretty(
        engine
            .sql(
                "db",
                "SELECT count(*) AS n, min(time) > now() - INTERVAL '500 seconds' AS recent FROM m",
            )
            .await
            .unwrap(),
    );
    assert!(out.contains("| 2 | true   |"), "{out}");
}

#[tokio::test]
async fn last_rows_follow_later_writes_compaction_and_retention() {
    let (_dir, store) = common::manual_store();
    let store = Arc::new(store);
    let engine = QueryEngine::new(Arc::clone(&store));
    // 01:00 UTC two days ago: every row in one finished day, which
    // compaction merges from 2 files.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day = (now / 86_400 - 2) * 86_400 + 3600;
    let write = |body: String| {
        let summary = store
            .write_lines("db", body.as_bytes(), Precision::Seconds)
            .unwrap();
        assert!(summary.rejected.is_empty(), "{:?}", summary.rejected);
    };
    let last = || async {
        let batches = engine
            .sql(
                "db",
                "SELECT host, CAST(time AS BIGINT) / 1000000000 AS t, v, w \
                 FROM last_rows('m') ORDER BY host",
            )
            .await
            .unwrap();
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    };
    let row = |host: &str, t: u64, v: &str, w: &str| format!("| {host}    | {t} | {v} | {w} |");
    let files = || store.files().len();

    // Host a: only old rows, in a file; host b: in a file, then newer in
    // memory.
    write(format!(
        "m,host=a v=1,w=1 {}\nm,host=a v=2,w=2 {}\nm,host=b v=3,w=3 {}",
        day,
        day + 1000,
        day + 2000
    ));
    store.persist().unwrap();
    assert!(last().await.contains(&row("b", day + 2000, "3.0", "3.0")));
    write(format!("m,host=b v=4,w=4 {}", day + 2050));
    let out = last().await;
    assert!(out.contains(&row("a", day + 1000, "2.0", "2.0")), "{out}");
    assert!(out.contains(&row("b", day + 2050, "4.0", "4.0")), "{out}");

    // Persisted and compacted into one file: the same answer.
    store.persist().unwrap();
    assert_eq!(files(), 2);
    store.compact().unwrap();
    assert_eq!(files(), 1, "the finished day is merged");
    let out = last().await;
    assert!(out.contains(&row("a", day + 1000, "2.0", "2.0")), "{out}");
    assert!(out.contains(&row("b", day + 2050, "4.0", "4.0")), "{out}");

    // The latest point written again with one field, now in memory while
    // the first copy is in the file: the fields merge, the later write
    // winning; the same once persisted and compacted.
    write(format!("m,host=b v=5 {}", day + 2050));
    assert!(last().await.contains(&row("b", day + 2050, "5.0", "4.0")));
    store.persist().unwrap();
    store.compact().unwrap();
    assert_eq!(files(), 1);
    let out = last().await;
    assert!(out.contains(&row("a", day + 1000, "2.0", "2.0")), "{out}");
    assert!(out.contains(&row("b", day + 2050, "5.0", "4.0")), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("| ")).count(),
        3,
        "{out}"
    );

    // A series whose latest row is past retention is gone: keep what is
    // newer than `day + 1500` s, which b's latest row is and a's is not.
    let keep = std::time::Duration::from_secs(now - day - 1500);
    store.set_retention("db", Some(keep)).unwrap();
    let out = last().await;
    assert!(!out.contains("| a "), "{out}");
    assert!(out.contains(&row("b", day + 2050, "5.0", "4.0")), "{out}");

    for (sql, expected) in [
        ("SELECT * FROM last_rows('nope')", "no table \"nope\""),
        (
            "SELECT * FROM last_rows(m)",
            "one argument, a table name in quotes",
        ),
        ("SELECT * FROM last_rows('m', 'x')", "one argument"),
        ("SELECT * FROM last_rows('m_30m')", "holds rollups"),
    ] {
        let err = engine.sql("db", sql).await.unwrap_err().to_string();
        assert!(err.contains(expected), "{sql}: {err}");
    }
}
