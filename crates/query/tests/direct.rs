//! The direct path answers time-bucketed aggregates exactly as DataFusion
//! does: random data (tags missing, fields missing, files older than some
//! columns, points written twice, rows in files and in memory) and random
//! queries of that shape, each answered both ways and compared column by
//! column, names and types included. Every query generated here must take
//! the direct path, so a path that silently gave up would fail.

// Helpers outside #[test] fns unwrap too: in a test a panic is the report.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;
use lineproto::Precision;
use proptest::prelude::*;
use query::QueryEngine;

/// 2023-11-14T22:13:20Z, and data over three days from it.
const T0: i64 = 1_700_000_000;
const SPAN: i64 = 3 * 86_400;

#[derive(Debug, Clone)]
struct Row {
    host: Option<&'static str>,
    region: Option<&'static str>,
    /// Seconds after T0.
    at: i64,
    f: Option<f64>,
    i: Option<i64>,
    u: Option<u64>,
}

impl Row {
    /// The row as a line; `new_fields` false leaves out `i` and `u` (rows
    /// of files written before those columns existed).
    fn line(&self, new_fields: bool) -> String {
        let mut line = "cpu".to_owned();
        for (key, value) in [("host", self.host), ("region", self.region)] {
            if let Some(v) = value {
                line += &format!(",{key}={v}");
            }
        }
        let mut fields = vec!["n=1i".to_owned()];
        if let Some(f) = self.f {
            fields.push(format!("f={f:?}"));
        }
        if new_fields {
            if let Some(i) = self.i {
                fields.push(format!("i={i}i"));
            }
            if let Some(u) = self.u {
                fields.push(format!("u={u}u"));
            }
        }
        format!("{line} {} {}", fields.join(","), T0 + self.at)
    }
}

fn row() -> impl Strategy<Value = Row> {
    let tag = |values: &'static [&'static str]| {
        prop_oneof![Just(None), proptest::sample::select(values).prop_map(Some)]
    };
    (
        tag(&["a", "b", "c"]),
        tag(&["x", "y"]),
        // Coarse times, so points repeat.
        (0..SPAN / 600).prop_map(|t| t * 600),
        // Quarters and small integers, so comparisons meet equal values.
        proptest::option::of((-400..400).prop_map(|q| f64::from(q) * 0.25)),
        proptest::option::of(-10i64..10),
        proptest::option::of(0u64..1000),
    )
        .prop_map(|(host, region, at, f, i, u)| Row {
            host,
            region,
            at,
            f,
            i,
            u,
        })
}

#[derive(Debug, Clone)]
struct Query {
    stride: &'static str,
    tags: Vec<&'static str>,
    aggregates: Vec<&'static str>,
    hosts: Option<Vec<&'static str>>,
    region: Option<&'static str>,
    from: Option<i64>,
    to: Option<i64>,
    descending: bool,
    limit: Option<usize>,
}

impl Query {
    fn sql(&self) -> String {
        let mut select = vec![format!(
            "date_bin(INTERVAL '{}', time) AS bucket",
            self.stride
        )];
        select.extend(self.tags.iter().map(|t| t.to_string()));
        select.extend(
            self.aggregates
                .iter()
                .enumerate()
                .map(|(k, a)| format!("{a} AS a{k}")),
        );
        let mut filters = Vec::new();
        if let Some(hosts) = &self.hosts {
            let list: Vec<String> = hosts.iter().map(|h| format!("'{h}'")).collect();
            filters.push(format!("host IN ({})", list.join(", ")));
        }
        if let Some(region) = self.region {
            filters.push(format!("region = '{region}'"));
        }
        let at = |s: i64| {
            let t = rfc3339(T0 + s);
            format!("'{t}'")
        };
        if let Some(from) = self.from {
            filters.push(format!("time >= {}", at(from)));
        }
        if let Some(to) = self.to {
            filters.push(format!("time < {}", at(to)));
        }
        let keys = 1 + self.tags.len();
        let direction = if self.descending { " DESC" } else { "" };
        let order: Vec<String> = (1..=keys).map(|k| format!("{k}{direction}")).collect();
        let mut sql = format!("SELECT {} FROM cpu", select.join(", "));
        if !filters.is_empty() {
            sql += &format!(" WHERE {}", filters.join(" AND "));
        }
        sql += &format!(
            " GROUP BY {} ORDER BY {}",
            (1..=keys)
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            order.join(", ")
        );
        if let Some(limit) = self.limit {
            sql += &format!(" LIMIT {limit}");
        }
        sql
    }
}

/// Unix seconds as RFC 3339 (UTC).
fn rfc3339(unix: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.unsigned_abs());
    humantime::format_rfc3339_seconds(at).to_string()
}

fn query() -> impl Strategy<Value = Query> {
    let aggregates = proptest::sample::subsequence(
        vec![
            "count(*)", "count(f)", "count(u)", "sum(f)", "sum(i)", "sum(u)", "min(f)", "max(f)",
            "min(i)", "max(i)", "min(u)", "max(u)", "avg(f)", "avg(i)", "avg(u)",
        ],
        1..5,
    );
    (
        proptest::sample::select(vec!["1 minute", "1 hour", "90 minutes", "1 day", "7 days"]),
        proptest::sample::subsequence(vec!["host", "region"], 0..=2),
        aggregates,
        proptest::option::of(proptest::sample::subsequence(
            vec!["a", "b", "c", "zz"],
            1..3,
        )),
        proptest::option::of(proptest::sample::select(vec!["x", "y"])),
        proptest::option::of(0..SPAN),
        proptest::option::of(0..SPAN + 3600),
        any::<bool>(),
        proptest::option::of(0usize..20),
    )
        .prop_map(
            |(stride, tags, aggregates, hosts, region, from, to, descending, limit)| Query {
                stride,
                tags,
                aggregates,
                hosts,
                region,
                from,
                to,
                descending,
                limit,
            },
        )
}

/// A store holding `old` in a file written before fields `i` and `u`
/// existed, `recent` in a second file, and `memory` in the write buffer.
fn store(old: &[Row], recent: &[Row], memory: &[Row]) -> (tempfile::TempDir, QueryEngine) {
    let (dir, store) = common::manual_store();
    let write = |rows: &[Row], new_fields: bool| {
        if rows.is_empty() {
            return;
        }
        let body: Vec<String> = rows.iter().map(|r| r.line(new_fields)).collect();
        let summary = store
            .write_lines("db", body.join("\n").as_bytes(), Precision::Seconds)
            .unwrap();
        assert_eq!(summary.accepted, rows.len(), "{:?}", summary.rejected);
    };
    write(old, false);
    store.persist().unwrap();
    write(recent, true);
    // Every column exists, so every query is valid.
    write(
        &[Row {
            host: Some("a"),
            region: Some("x"),
            at: SPAN,
            f: Some(0.5),
            i: Some(1),
            u: Some(2),
        }],
        true,
    );
    store.persist().unwrap();
    write(memory, true);
    (dir, QueryEngine::new(Arc::new(store)))
}

/// Both answers, column by column: names, types, nulls and values (floats
/// to 1e-9 relative: sums may add in another order).
fn assert_same(direct: &RecordBatch, datafusion: &[RecordBatch], sql: &str) {
    let schema = direct.schema();
    let expected = concat_batches(&schema, datafusion).unwrap_or_else(|e| {
        panic!(
            "{sql}: schemas differ: {e}\ndirect: {schema:?}\ndatafusion: {:?}",
            datafusion.first().map(|b| b.schema())
        )
    });
    for (d, e) in schema.fields().iter().zip(
        datafusion
            .first()
            .map(|b| b.schema().fields().clone())
            .unwrap_or_default()
            .iter(),
    ) {
        assert_eq!(d.name(), e.name(), "{sql}");
        assert_eq!(d.data_type(), e.data_type(), "{sql}: column {}", d.name());
    }
    assert_eq!(direct.num_rows(), expected.num_rows(), "{sql}");
    for (c, field) in schema.fields().iter().enumerate() {
        let (d, e) = (direct.column(c), expected.column(c));
        if field.data_type() == &DataType::Float64 {
            let (d, e) = (
                d.as_primitive::<Float64Type>(),
                e.as_primitive::<Float64Type>(),
            );
            for r in 0..d.len() {
                assert_eq!(
                    d.is_null(r),
                    e.is_null(r),
                    "{sql}: {} row {r}",
                    field.name()
                );
                if d.is_valid(r) {
                    let (x, y) = (d.value(r), e.value(r));
                    let close = (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
                    assert!(close, "{sql}: {} row {r}: {x} vs {y}", field.name());
                }
            }
        } else {
            let (d, e) = (
                cast(d, &DataType::Utf8).unwrap(),
                cast(e, &DataType::Utf8).unwrap(),
            );
            assert_eq!(d.as_ref(), e.as_ref(), "{sql}: column {}", field.name());
        }
    }
}

/// A row query: `SELECT * | columns FROM cpu WHERE … [ORDER BY every
/// column] [LIMIT n]`.
#[derive(Debug, Clone)]
struct RowsQuery {
    columns: Option<Vec<&'static str>>,
    hosts: Option<Vec<&'static str>>,
    from: Option<i64>,
    to: Option<i64>,
    comparisons: Vec<(&'static str, &'static str, &'static str)>,
    ordered: bool,
    descending: bool,
    limit: Option<usize>,
}

impl RowsQuery {
    fn sql(&self) -> String {
        let select = match &self.columns {
            Some(columns) => columns.join(", "),
            None => "*".to_owned(),
        };
        let mut filters: Vec<String> = self
            .comparisons
            .iter()
            .map(|(column, op, number)| format!("{column} {op} {number}"))
            .collect();
        if let Some(hosts) = &self.hosts {
            let list: Vec<String> = hosts.iter().map(|h| format!("'{h}'")).collect();
            filters.push(format!("host IN ({})", list.join(", ")));
        }
        if let Some(from) = self.from {
            filters.push(format!("time >= '{}'", rfc3339(T0 + from)));
        }
        if let Some(to) = self.to {
            filters.push(format!("time < '{}'", rfc3339(T0 + to)));
        }
        let mut sql = format!("SELECT {select} FROM cpu");
        if !filters.is_empty() {
            sql += &format!(" WHERE {}", filters.join(" AND "));
        }
        if self.ordered {
            let n = self.columns.as_ref().map_or(7, Vec::len);
            let direction = if self.descending { " DESC" } else { "" };
            let keys: Vec<String> = (1..=n).map(|k| format!("{k}{direction}")).collect();
            sql += &format!(" ORDER BY {}", keys.join(", "));
            if let Some(limit) = self.limit {
                sql += &format!(" LIMIT {limit}");
            }
        }
        sql
    }
}

fn rows_query() -> impl Strategy<Value = RowsQuery> {
    let comparison = prop_oneof![
        (
            proptest::sample::select(vec![">", ">=", "<", "<=", "=", "<>"]),
            proptest::sample::select(vec!["0", "-100", "12.5", "500", "-0.25"])
        )
            .prop_map(|(op, n)| ("f", op, n)),
        (
            proptest::sample::select(vec![">", ">=", "<", "<=", "=", "<>"]),
            proptest::sample::select(vec!["0", "-3", "5"])
        )
            .prop_map(|(op, n)| ("i", op, n)),
    ];
    (
        proptest::option::of(proptest::sample::subsequence(
            vec!["time", "host", "region", "f", "i", "u", "n"],
            1..=7,
        )),
        proptest::option::of(proptest::sample::subsequence(vec!["a", "b", "zz"], 1..3)),
        proptest::option::of(0..SPAN),
        proptest::option::of(0..SPAN + 3600),
        proptest::collection::vec(comparison, 0..3),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(0usize..30),
    )
        .prop_map(
            |(columns, hosts, from, to, comparisons, ordered, descending, limit)| RowsQuery {
                columns,
                hosts,
                from,
                to,
                comparisons,
                ordered,
                descending,
                limit,
            },
        )
}

/// Each row of `batches` as text, one string per row.
fn row_texts(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, r).unwrap())
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows
}

/// Each of `sqls` answered by the direct path (which must answer) and by
/// DataFusion, over a store holding `old`, `recent` and `memory`.
fn both_paths(
    old: &[Row],
    recent: &[Row],
    memory: &[Row],
    sqls: &[String],
) -> Vec<(RecordBatch, Vec<RecordBatch>)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_dir, engine) = store(old, recent, memory);
    runtime.block_on(async {
        let mut answers = Vec::new();
        for sql in sqls {
            let direct = engine.sql_direct("db", sql).await;
            let direct = direct.unwrap_or_else(|| panic!("the direct path gave up: {sql}"));
            let datafusion = engine.sql_datafusion("db", sql).await.unwrap();
            answers.push((direct, datafusion));
        }
        answers
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn direct_rows_equal_datafusions(
        old in proptest::collection::vec(row(), 0..60),
        recent in proptest::collection::vec(row(), 0..60),
        memory in proptest::collection::vec(row(), 0..60),
        queries in proptest::collection::vec(rows_query(), 4),
    ) {
        let sqls: Vec<String> = queries.iter().map(RowsQuery::sql).collect();
        let answers = both_paths(&old, &recent, &memory, &sqls);
        for ((q, sql), (direct, datafusion)) in queries.iter().zip(&sqls).zip(answers) {
            let expected = concat_batches(&direct.schema(), &datafusion)
                .unwrap_or_else(|e| panic!("{sql}: schemas differ: {e}"));
            let theirs = datafusion.first().map(|b| b.schema().fields().clone()).unwrap_or_default();
            for (d, e) in direct.schema().fields().iter().zip(theirs.iter()) {
                assert_eq!((d.name(), d.data_type()), (e.name(), e.data_type()), "{sql}");
            }
            let (mut got, mut want) = (row_texts(&[direct]), row_texts(&[expected]));
            if !q.ordered {
                // No ORDER BY: any order is the answer.
                got.sort();
                want.sort();
            }
            assert_eq!(got, want, "{sql}");
        }
    }

    #[test]
    fn direct_answers_equal_datafusions(
        old in proptest::collection::vec(row(), 0..60),
        recent in proptest::collection::vec(row(), 0..60),
        memory in proptest::collection::vec(row(), 0..60),
        queries in proptest::collection::vec(query(), 4),
    ) {
        let sqls: Vec<String> = queries.iter().map(Query::sql).collect();
        for (sql, (direct, datafusion)) in sqls.iter().zip(both_paths(&old, &recent, &memory, &sqls)) {
            assert_same(&direct, &datafusion, sql);
        }
    }
}

/// A row of host `a` at `at` with fields `f` and `i`.
fn host_a(at: i64, f: Option<f64>, i: Option<i64>) -> Row {
    Row {
        host: Some("a"),
        region: None,
        at,
        f,
        i,
        u: None,
    }
}

#[tokio::test]
async fn a_table_without_rows_in_range_gives_an_empty_answer_both_ways() {
    let (_dir, engine) = store(&[], &[host_a(0, Some(1.0), None)], &[]);
    let sql = "SELECT date_bin(INTERVAL '1 hour', time) AS h, host, max(f) AS m FROM cpu \
               WHERE host = 'b' GROUP BY 1, 2 ORDER BY 1";
    let direct = engine.sql_direct("db", sql).await.unwrap();
    assert_eq!(direct.num_rows(), 0);
    assert_same(
        &direct,
        &engine.sql_datafusion("db", sql).await.unwrap(),
        sql,
    );
}

#[tokio::test]
async fn other_shapes_and_other_types_go_to_datafusion() {
    let (_dir, engine) = store(&[], &[host_a(0, Some(1.0), Some(1))], &[]);
    for sql in [
        // Not the shape.
        "SELECT host, f FROM cpu WHERE f > 0 OR i > 0",
        // A row query, but a comparison DataFusion answers by converting
        // the column (unsigned; integer against a fraction), or sorted by a
        // column not selected.
        "SELECT * FROM cpu WHERE u > 1",
        "SELECT * FROM cpu WHERE i > 1.5",
        "SELECT host FROM cpu ORDER BY f",
        "SELECT host, max(f) AS m FROM cpu WHERE f > 0 GROUP BY 1",
        // The shape, but a field as a group key or filter, a tag aggregated
        // by max, a missing column, a missing table.
        "SELECT f, count(*) AS n FROM cpu GROUP BY 1",
        "SELECT host, count(*) AS n FROM cpu WHERE f = '1' GROUP BY 1",
        "SELECT region, max(host) AS m FROM cpu GROUP BY 1",
        "SELECT nope, count(*) AS n FROM cpu GROUP BY 1",
        "SELECT host, count(*) AS n FROM nope GROUP BY 1",
        // GROUP BY a name that is an output alias and a column of the table.
        "SELECT date_bin(INTERVAL '1 hour', time) AS time, max(f) AS m FROM cpu GROUP BY time",
        "SELECT region AS host, max(f) AS m FROM cpu GROUP BY host",
    ] {
        assert!(engine.sql_direct("db", sql).await.is_none(), "{sql}");
    }
    // An integer sum that overflows: DataFusion's answer (it wraps).
    let (_dir, engine) = store(
        &[],
        &[host_a(0, None, Some(i64::MAX)), host_a(600, None, Some(1))],
        &[],
    );
    let sql = "SELECT host, sum(i) AS s FROM cpu GROUP BY 1";
    assert!(engine.sql_direct("db", sql).await.is_none());
    assert_eq!(
        engine.sql("db", sql).await.unwrap(),
        engine.sql_datafusion("db", sql).await.unwrap()
    );
}

#[tokio::test]
async fn rows_past_retention_in_a_file_are_left_out_as_by_datafusion() {
    let (_dir, store) = common::manual_store();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Three hours ago and one hour ago: one file (unless a UTC midnight
    // falls between), of which retention keeps only the second row.
    let lines = format!(
        "cpu,host=a f=1 {}\ncpu,host=a f=2 {}",
        now - 3 * 3600,
        now - 3600
    );
    store
        .write_lines("db", lines.as_bytes(), Precision::Seconds)
        .unwrap();
    store.persist().unwrap();
    store
        .set_retention("db", Some(std::time::Duration::from_secs(2 * 3600)))
        .unwrap();
    let engine = QueryEngine::new(Arc::new(store));
    let sql = "SELECT host, count(*) AS n, min(f) AS low FROM cpu GROUP BY 1";
    let direct = engine.sql_direct("db", sql).await.unwrap();
    let datafusion = engine.sql_datafusion("db", sql).await.unwrap();
    assert_same(&direct, &datafusion, sql);
    let text = arrow::util::pretty::pretty_format_batches(&[direct])
        .unwrap()
        .to_string();
    assert!(text.contains("| a    | 1 | 2.0 |"), "{text}");
}

#[tokio::test]
async fn negative_zero_under_min_goes_to_datafusion() {
    let (_dir, engine) = store(
        &[],
        &[host_a(0, Some(0.0), None), host_a(600, Some(-0.0), None)],
        &[],
    );
    let sql = "SELECT host, min(f) AS low FROM cpu GROUP BY 1";
    assert!(engine.sql_direct("db", sql).await.is_none());
    let sql = "SELECT host, count(f) AS n FROM cpu GROUP BY 1";
    assert!(engine.sql_direct("db", sql).await.is_some());
}

#[tokio::test]
async fn answers_over_more_rows_than_run_inline_equal_datafusions() {
    // 80 000 rows, half in a file and half in memory: more than the direct
    // path reads on the calling task, so it runs on a blocking thread.
    let rows = |hosts: std::ops::Range<i64>| -> Vec<Row> {
        hosts
            .flat_map(|h| {
                (0..10_000).map(move |t| Row {
                    host: Some(["a", "b", "c", "d", "e", "f", "g", "h"][h as usize]),
                    region: None,
                    at: t * 10,
                    f: Some(f64::from((t % 97) as i32) * 0.5),
                    i: Some(t % 13),
                    u: None,
                })
            })
            .collect()
    };
    let (_dir, engine) = store(&[], &rows(0..4), &rows(4..8));
    for sql in [
        "SELECT date_bin(INTERVAL '1 hour', time) AS hour, host, avg(f) AS a, max(i) AS m, \
         count(*) AS n FROM cpu GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT time, host, f FROM cpu WHERE f > 47 AND i = 3 ORDER BY 1, 2, 3",
    ] {
        let direct = engine.sql_direct("db", sql).await.unwrap();
        assert!(direct.num_rows() > 100, "{sql}");
        let datafusion = engine.sql_datafusion("db", sql).await.unwrap();
        assert_same(&direct, &datafusion, sql);
    }
}
