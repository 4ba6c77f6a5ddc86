//! Network analytics: the distribution questions of DESIGN as functions of
//! [`Params`], each answered with one SQL query and shaped as JSON (and CSV):
//!
//! - [`cdf`]: the CDF of a field per group (`points`, default 100);
//! - [`quantiles`]: quantile bands per time bucket and group (`q=0.5,0.9`,
//!   default every 5 % from 0 to 1);
//! - [`rainbow`]: the share of each category (tag `category`, default
//!   `error`; rows without it are `ok`) per bucket and group, with
//!   timeouts (STALLOUT, TIMEOUT), failures (other categories) and partial
//!   failures (field `partial`, when the table has it) counted apart;
//! - [`pivot`]: one aggregate (`agg`: count, sum, avg, min, max, p50, p90,
//!   p95, p99) over the rows × columns of two dimensions;
//! - [`utilisation`]: per node, mean rate over a window ÷ its peak over a
//!   longer one; its CDF per role, the bottleneck role, balance ratios.
//!
//! The first four read the rollups (half-hourly, and daily for whole days)
//! instead of the raw rows when the range is long and the grain coarse
//! (parameter `source`: `auto`, `raw`, `rollup`; see [`LONG_RANGE`]); every
//! answer says which it read (`"source": "raw"` or `"rollup"`, with
//! `"rollup_tables"`). Utilisation reads raw rows.

mod params;
mod source;
mod utilisation;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampNanosecondType};
use arrow::util::display::array_value_to_string;
use serde_json::{json, Map, Value};

use params::ident;
pub use params::{Dimension, Params};
use source::Source;
pub use source::LONG_RANGE;
pub use utilisation::utilisation;

use crate::{QueryEngine, QueryError};

/// Why an analytics question has no answer.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The parameters are wrong; the message names the one.
    #[error("{0}")]
    BadRequest(String),
    /// The table, or a column the parameters name, does not exist (yet):
    /// no row was ever written with it. The message names it.
    #[error("{0}")]
    Missing(String),
    /// The database does not exist, or the query failed.
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl From<String> for AnalyticsError {
    fn from(s: String) -> Self {
        AnalyticsError::BadRequest(s)
    }
}

/// An answer in both forms the API serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The JSON document.
    pub json: Value,
    /// The same figures as CSV, one row per point (with a header).
    pub csv: String,
}

/// The most points a CDF may have.
const MAX_POINTS: i64 = crate::MAX_CDF_POINTS;

/// Checks that the table exists and has every column the parameters name.
fn check_columns(
    engine: &QueryEngine,
    p: &Params,
    extra: &[&str],
) -> Result<Vec<String>, AnalyticsError> {
    // The store's catalog knows the columns: no SQL session needed.
    if !engine.store.has_database(&p.db) {
        return Err(QueryError::DatabaseNotFound(p.db.clone()).into());
    }
    let schema = engine.store.table_schema(&p.db, &p.table).ok_or_else(|| {
        AnalyticsError::Missing(format!(
            "table {:?} not found in database {:?}",
            p.table, p.db
        ))
    })?;
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut named: Vec<(&str, &str)> = Vec::new();
    if let Some(f) = &p.field {
        named.push(("field", f));
    }
    for (tag, _) in &p.filters {
        named.push(("where", tag));
    }
    for d in &p.group_by {
        if let Dimension::Tag(t) = d {
            named.push(("group_by", t));
        }
    }
    for e in extra {
        named.push(("column", e));
    }
    for (what, name) in named {
        if !columns.iter().any(|c| c == name) {
            return Err(AnalyticsError::Missing(format!(
                "{what}: table {:?} has no column {name:?}; it has {}",
                p.table,
                columns.join(", ")
            )));
        }
    }
    for (tag, _) in &p.filters {
        let is_tag = schema
            .field_with_name(tag)
            .is_ok_and(|f| matches!(f.data_type(), DataType::Dictionary(..)));
        if !is_tag {
            return Err(AnalyticsError::BadRequest(format!(
                "where: {tag:?} is not a tag of table {:?} (where filters on tags)",
                p.table
            )));
        }
    }
    Ok(columns)
}

/// The most result rows an analytics question may have: beyond, the
/// answer would be too big to draw or read, and shaping it too slow.
const MAX_ROWS: usize = 200_000;

/// Runs `sql`, refusing answers over [`MAX_ROWS`] rows.
async fn run(
    engine: &QueryEngine,
    p: &Params,
    sql: &str,
) -> Result<Vec<RecordBatch>, AnalyticsError> {
    let batches = engine.sql(&p.db, sql).await?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows > MAX_ROWS {
        return Err(AnalyticsError::BadRequest(format!(
            "the answer has {rows} rows (groups × buckets × categories), more than {MAX_ROWS}; narrow the time range, use a larger every or fewer group_by dimensions"
        )));
    }
    Ok(batches)
}

/// `SELECT items FROM from WHERE (p's conditions and conds) GROUP BY group
/// ORDER BY group`.
fn select(from: &str, p: &Params, items: &[String], group: &[String], conds: &[String]) -> String {
    let mut sql = format!(
        "SELECT {} FROM {from}{}",
        items.join(", "),
        p.where_clause(conds)
    );
    if !group.is_empty() {
        let _ = write!(sql, " GROUP BY {0} ORDER BY {0}", group.join(", "));
    }
    sql
}

/// A group's key: dimension name → value as text.
fn group_key(p: &Params, batch: &RecordBatch, row: usize) -> Map<String, Value> {
    let mut key = Map::new();
    for d in &p.group_by {
        let v = batch
            .column_by_name(d.name())
            .and_then(|c| (!c.is_null(row)).then(|| array_value_to_string(c, row).ok()))
            .flatten();
        key.insert(d.name().to_owned(), v.map_or(Value::Null, Value::from));
    }
    key
}

/// A key's values in `group_by` order (a JSON map sorts its keys), for CSV.
fn key_cells(p: &Params, key: &Map<String, Value>) -> Vec<Value> {
    p.group_by
        .iter()
        .map(|d| key.get(d.name()).cloned().unwrap_or(Value::Null))
        .collect()
}

fn csv_cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_row(cells: &[Value]) -> String {
    let mut line: String = cells.iter().map(csv_cell).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

fn f64_at(col: &ArrayRef, row: usize) -> Option<f64> {
    if col.is_null(row) {
        return None;
    }
    match col.data_type() {
        DataType::Float64 => Some(col.as_primitive::<Float64Type>().value(row)),
        DataType::Int64 => Some(col.as_primitive::<Int64Type>().value(row) as f64),
        _ => array_value_to_string(col, row).ok()?.parse().ok(),
    }
}

fn i64_at(col: &ArrayRef, row: usize) -> i64 {
    match col.data_type() {
        DataType::Int64 if !col.is_null(row) => col.as_primitive::<Int64Type>().value(row),
        _ => 0,
    }
}

/// A bucket's start as RFC 3339, or null without buckets.
fn bucket_time(batch: &RecordBatch, row: usize) -> Value {
    let Some(col) = batch.column_by_name("__weir_bucket") else {
        return Value::Null;
    };
    if col.is_null(row) {
        return Value::Null;
    }
    let Some(ts) = col.as_primitive_opt::<TimestampNanosecondType>() else {
        return Value::Null;
    };
    let ns = ts.value(row);
    let t = UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    Value::from(humantime::format_rfc3339_seconds(t).to_string())
}

/// Buckets of one group, in the order the groups first appear.
type Series = Vec<(Map<String, Value>, Vec<Value>)>;

/// Rows arrive ordered by group, so a bucket almost always belongs to the
/// last series; the index finds the others in O(1).
fn push_bucket(
    series: &mut Series,
    index: &mut HashMap<String, usize>,
    key: Map<String, Value>,
    bucket: Value,
) {
    let id = Value::Object(key.clone()).to_string();
    match index.get(&id) {
        Some(&i) => series[i].1.push(bucket),
        None => {
            index.insert(id, series.len());
            series.push((key, vec![bucket]));
        }
    }
}

fn series_json(series: Series) -> Value {
    Value::from(
        series
            .into_iter()
            .map(|(k, b)| json!({"group": k, "buckets": b}))
            .collect::<Vec<_>>(),
    )
}

fn header(p: &Params, rest: &[&str]) -> String {
    let mut cells: Vec<Value> = p.group_by.iter().map(|d| Value::from(d.name())).collect();
    cells.extend(rest.iter().map(|r| Value::from(*r)));
    csv_row(&cells)
}

fn base_json(p: &Params, source: &Source) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("source".into(), json!(source.name()));
    let tables = source.tables(&source.params(p));
    if let Some(first) = tables.first() {
        o.insert("rollup_table".into(), json!(first));
        o.insert("rollup_tables".into(), json!(tables));
    }
    o.insert("table".into(), json!(p.table));
    if let Some(f) = &p.field {
        o.insert("field".into(), json!(f));
    }
    o.insert("start".into(), json!(p.start));
    o.insert("end".into(), json!(p.end));
    o.insert(
        "group_by".into(),
        json!(p.group_by.iter().map(Dimension::name).collect::<Vec<_>>()),
    );
    if let Some(e) = p.every {
        o.insert(
            "every".into(),
            json!(humantime::format_duration(e).to_string()),
        );
    }
    o
}

/// The CDF of `field` per group.
pub async fn cdf(engine: &QueryEngine, p: &Params) -> Result<Answer, AnalyticsError> {
    let field = p.require_field()?;
    let points = match p.extra("points") {
        None => 100,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=MAX_POINTS).contains(&n) => n,
            _ => return Err(format!("points: {s:?} is not from 1 to {MAX_POINTS}").into()),
        },
    };
    if p.every.is_some() {
        return Err("every: a CDF has no time buckets; use /api/v1/quantiles"
            .to_owned()
            .into());
    }
    check_columns(engine, p, &[])?;
    let source = Source::choose(engine, p, Some(field), &[], &[])?;
    let column = source.distribution_column(field);
    let (mut items, group) = p.groups();
    items.push(format!("{} AS \"__weir_n\"", source.count(Some(field))));
    items.push(format!("cdf({column}, {points}) AS \"__weir_points\""));
    let read = source.params(p);
    let sql = select(
        &source.from(&read),
        &read,
        &items,
        &group,
        &[source.has_value(field)],
    );
    let batches = run(engine, p, &sql).await?;
    let mut groups = Vec::new();
    let mut csv = header(p, &["value", "fraction"]);
    for batch in &batches {
        let (Some(n), Some(pts)) = (
            batch.column_by_name("__weir_n"),
            batch.column_by_name("__weir_points"),
        ) else {
            continue;
        };
        let lists = pts.as_list::<i32>();
        for row in 0..batch.num_rows() {
            let key = group_key(p, batch, row);
            let mut out = Vec::new();
            if !lists.is_null(row) {
                let list = lists.value(row);
                let st = list.as_struct();
                for i in 0..st.len() {
                    let (v, f) = (f64_at(st.column(0), i), f64_at(st.column(1), i));
                    out.push(json!({"value": v, "fraction": f}));
                    let mut cells = key_cells(p, &key);
                    cells.extend([json!(v), json!(f)]);
                    csv.push_str(&csv_row(&cells));
                }
            }
            groups.push(json!({"group": key, "count": i64_at(n, row), "points": out}));
        }
    }
    let mut o = base_json(p, &source);
    o.insert("points".into(), json!(points));
    o.insert("groups".into(), Value::from(groups));
    Ok(Answer {
        json: Value::Object(o),
        csv,
    })
}

/// Quantile bands of `field` per time bucket (`every`) and group.
pub async fn quantiles(engine: &QueryEngine, p: &Params) -> Result<Answer, AnalyticsError> {
    let field = p.require_field()?;
    let qs: Vec<f64> = match p.extra("q") {
        Some(list) => list
            .split(',')
            .map(|q| match q.trim().parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
                _ => Err(format!("q: {q:?} is not a number from 0 to 1")),
            })
            .collect::<Result<_, _>>()?,
        None => (0..=20).map(|i| f64::from(i) / 20.0).collect(),
    };
    let mut qs = qs;
    qs.sort_by(f64::total_cmp);
    qs.dedup();
    if qs.is_empty() {
        return Err("q: empty".to_owned().into());
    }
    check_columns(engine, p, &[])?;
    let source = Source::choose(engine, p, Some(field), &[], &[])?;
    let column = source.distribution_column(field);
    let read = source.params(p);
    let (mut items, mut group) = p.groups();
    if let Some(b) = read.bucket() {
        items.insert(0, b);
        group.push("\"__weir_bucket\"".into());
    }
    let q_list: Vec<String> = qs.iter().map(|q| format!("{q:?}")).collect();
    items.push(format!("{} AS \"__weir_n\"", source.count(Some(field))));
    items.push(format!(
        "quantiles({column}, {}) AS \"__weir_q\"",
        q_list.join(", ")
    ));
    let sql = select(
        &source.from(&read),
        &read,
        &items,
        &group,
        &[source.has_value(field)],
    );
    let batches = run(engine, p, &sql).await?;
    let q_names: Vec<String> = qs.iter().map(|q| format!("q{q}")).collect();
    let mut rest = vec!["time", "count"];
    rest.extend(q_names.iter().map(String::as_str));
    let mut csv = header(p, &rest);
    let mut series = Series::new();
    let mut index = HashMap::new();
    for batch in &batches {
        let (Some(n), Some(q)) = (
            batch.column_by_name("__weir_n"),
            batch.column_by_name("__weir_q"),
        ) else {
            continue;
        };
        let lists = q.as_list::<i32>();
        for row in 0..batch.num_rows() {
            let key = group_key(p, batch, row);
            let values: Vec<Option<f64>> = if lists.is_null(row) {
                vec![None; qs.len()]
            } else {
                let l = lists.value(row);
                (0..l.len()).map(|i| f64_at(&l, i)).collect()
            };
            let time = bucket_time(batch, row);
            let count = i64_at(n, row);
            let mut cells = key_cells(p, &key);
            cells.extend([time.clone(), json!(count)]);
            cells.extend(values.iter().map(|v| json!(v)));
            csv.push_str(&csv_row(&cells));
            let bucket = json!({"time": time, "count": count, "values": values});
            push_bucket(&mut series, &mut index, key, bucket);
        }
    }
    let mut o = base_json(p, &source);
    o.insert("q".into(), json!(qs));
    o.insert("series".into(), series_json(series));
    Ok(Answer {
        json: Value::Object(o),
        csv,
    })
}

/// The categories that roll up as timeouts.
const TIMEOUTS: [&str; 2] = ["STALLOUT", "TIMEOUT"];

/// The share of each category per bucket and group: the failure rainbow.
pub async fn rainbow(engine: &QueryEngine, p: &Params) -> Result<Answer, AnalyticsError> {
    let category = p.extra("category").unwrap_or("error").to_owned();
    let columns = check_columns(engine, p, &[])?;
    let has_category = columns.contains(&category);
    if !has_category && p.extra("category").is_some() {
        return Err(AnalyticsError::Missing(format!(
            "category: table {:?} has no column {category:?}",
            p.table
        )));
    }
    let has_partial = columns.iter().any(|c| c == "partial");
    let mut reads = Vec::new();
    if has_category {
        reads.push((category.as_str(), false));
    }
    if has_partial {
        reads.push(("partial", true));
    }
    let source = Source::choose(engine, p, None, &reads, &[])?;
    let read = source.params(p);
    let (mut items, mut group) = p.groups();
    if let Some(b) = read.bucket() {
        items.insert(0, b);
        group.push("\"__weir_bucket\"".into());
    }
    let category_expr = if has_category {
        format!("COALESCE(CAST({} AS VARCHAR), 'ok')", ident(&category))
    } else {
        // No row carries the category: all are ok.
        "'ok'".to_owned()
    };
    items.push(format!("{category_expr} AS \"__weir_category\""));
    group.push("\"__weir_category\"".into());
    items.push(format!("{} AS \"__weir_n\"", source.count(None)));
    if has_partial {
        items.push(format!("{} AS \"__weir_p\"", source.count_true("partial")));
    }
    let sql = select(&source.from(&read), &read, &items, &group, &[]);
    let batches = run(engine, p, &sql).await?;
    // (group, time) → counts per category, partial count.
    type Slot = (Map<String, Value>, Value, Vec<(String, i64)>, i64);
    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_index: HashMap<String, usize> = HashMap::new();
    for batch in &batches {
        let (Some(cat), Some(n)) = (
            batch.column_by_name("__weir_category"),
            batch.column_by_name("__weir_n"),
        ) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            let key = group_key(p, batch, row);
            let time = bucket_time(batch, row);
            let c = array_value_to_string(cat, row).unwrap_or_default();
            let count = i64_at(n, row);
            let partial = batch
                .column_by_name("__weir_p")
                .map_or(0, |col| i64_at(col, row));
            let id = format!("{}\u{0}{time}", Value::Object(key.clone()));
            match slot_index.get(&id) {
                Some(&i) => {
                    slots[i].2.push((c, count));
                    slots[i].3 += partial;
                }
                None => {
                    slot_index.insert(id, slots.len());
                    slots.push((key, time, vec![(c, count)], partial));
                }
            }
        }
    }
    let mut csv = header(p, &["time", "category", "count", "share"]);
    let mut series = Series::new();
    let mut index = HashMap::new();
    for (key, time, counts, partial) in slots {
        let total: i64 = counts.iter().map(|(_, n)| n).sum();
        let share = |n: i64| {
            if total > 0 {
                n as f64 / total as f64
            } else {
                0.0
            }
        };
        let mut shares = Map::new();
        let (mut timeouts, mut failures) = (0i64, 0i64);
        for (c, n) in &counts {
            shares.insert(c.clone(), json!(share(*n)));
            if TIMEOUTS.contains(&c.as_str()) {
                timeouts += n;
            } else if c != "ok" {
                failures += n;
            }
            let mut cells = key_cells(p, &key);
            cells.extend([time.clone(), json!(c), json!(n), json!(share(*n))]);
            csv.push_str(&csv_row(&cells));
        }
        let mut bucket = json!({
            "time": time,
            "total": total,
            "shares": shares,
            "timeouts": share(timeouts),
            "failures": share(failures),
        });
        if has_partial {
            bucket["partial"] = json!(share(partial));
        }
        push_bucket(&mut series, &mut index, key, bucket);
    }
    let mut o = base_json(p, &source);
    o.insert("category".into(), json!(category));
    o.insert("series".into(), series_json(series));
    Ok(Answer {
        json: Value::Object(o),
        csv,
    })
}

/// One aggregate over rows × columns of two dimensions.
pub async fn pivot(engine: &QueryEngine, p: &Params) -> Result<Answer, AnalyticsError> {
    let rows_dim = Dimension::parse_name(p.extra("rows").ok_or("rows: missing".to_owned())?);
    let cols_dim = Dimension::parse_name(p.extra("columns").ok_or("columns: missing".to_owned())?);
    if !p.group_by.is_empty() || p.every.is_some() {
        return Err(
            "group_by, every: a pivot groups by its rows and columns only"
                .to_owned()
                .into(),
        );
    }
    let agg = p.extra("agg").unwrap_or("avg");
    if !matches!(
        agg,
        "count" | "sum" | "avg" | "min" | "max" | "p50" | "p90" | "p95" | "p99"
    ) {
        return Err(format!(
            "agg: {agg:?}; expected count, sum, avg, min, max, p50, p90, p95 or p99"
        )
        .into());
    }
    let field = match agg {
        "count" => p.field.as_deref(),
        _ => Some(p.require_field()?),
    };
    let mut needed = Vec::new();
    for d in [&rows_dim, &cols_dim] {
        if let Dimension::Tag(t) = d {
            needed.push(t.as_str());
        }
    }
    check_columns(engine, p, &needed)?;
    let mut reads: Vec<(&str, bool)> = needed.iter().map(|t| (*t, false)).collect();
    let sketch_of = match (agg.strip_prefix('p'), field) {
        (Some(_), Some(f)) => Some(f),
        (_, Some(f)) => {
            reads.push((f, true));
            None
        }
        _ => None,
    };
    let source = Source::choose(engine, p, sketch_of, &reads, &[&rows_dim, &cols_dim])?;
    let value = match (agg, field) {
        ("count", f) => format!("CAST({} AS DOUBLE)", source.count(f)),
        (_, Some(f)) if agg.starts_with('p') => {
            let q: f64 = agg[1..].parse::<f64>().unwrap_or(50.0) / 100.0;
            format!(
                "array_element(quantiles({}, {q:?}), 1)",
                source.distribution_column(f)
            )
        }
        (_, Some(f)) => source.aggregate(agg, f),
        (_, None) => return Err("field: missing".to_owned().into()),
    };
    let items = vec![
        rows_dim.select().replacen(
            &format!("AS {}", ident(rows_dim.name())),
            "AS \"__weir_row_key\"",
            1,
        ),
        cols_dim.select().replacen(
            &format!("AS {}", ident(cols_dim.name())),
            "AS \"__weir_column_key\"",
            1,
        ),
        format!("{value} AS \"__weir_value\""),
    ];
    let group = vec![
        "\"__weir_row_key\"".to_owned(),
        "\"__weir_column_key\"".to_owned(),
    ];
    let read = source.params(p);
    let sql = select(&source.from(&read), &read, &items, &group, &[]);
    let batches = run(engine, p, &sql).await?;
    let mut row_keys: Vec<String> = Vec::new();
    let mut col_keys: Vec<String> = Vec::new();
    let (mut row_seen, mut col_seen) = (HashSet::new(), HashSet::new());
    let mut cells: Vec<(String, String, Option<f64>)> = Vec::new();
    let text = |c: &ArrayRef, r: usize| -> String {
        if c.is_null(r) {
            String::new()
        } else {
            array_value_to_string(c, r).unwrap_or_default()
        }
    };
    for batch in &batches {
        let (Some(rk), Some(ck), Some(v)) = (
            batch.column_by_name("__weir_row_key"),
            batch.column_by_name("__weir_column_key"),
            batch.column_by_name("__weir_value"),
        ) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            let (r, c) = (text(rk, row), text(ck, row));
            if row_seen.insert(r.clone()) {
                row_keys.push(r.clone());
            }
            if col_seen.insert(c.clone()) {
                col_keys.push(c.clone());
            }
            cells.push((r, c, f64_at(v, row)));
        }
    }
    // Numbers (derived dimensions) in numeric order, text in text order.
    col_keys.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    });
    let row_at: HashMap<&str, usize> = row_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let col_at: HashMap<&str, usize> = col_keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut matrix = vec![vec![Value::Null; col_keys.len()]; row_keys.len()];
    let mut csv = csv_row(&[json!(rows_dim.name()), json!(cols_dim.name()), json!(agg)]);
    for (r, c, v) in &cells {
        let (Some(&i), Some(&j)) = (row_at.get(r.as_str()), col_at.get(c.as_str())) else {
            continue;
        };
        matrix[i][j] = json!(v);
        csv.push_str(&csv_row(&[json!(r), json!(c), json!(v)]));
    }
    let mut o = base_json(p, &source);
    o.insert("rows".into(), json!(rows_dim.name()));
    o.insert("columns".into(), json!(cols_dim.name()));
    o.insert("agg".into(), json!(agg));
    o.insert("row_keys".into(), json!(row_keys));
    o.insert("column_keys".into(), json!(col_keys));
    o.insert("cells".into(), json!(matrix));
    Ok(Answer {
        json: Value::Object(o),
        csv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        assert_eq!(
            csv_row(&[json!("a,b"), json!(1.5), Value::Null]),
            "\"a,b\",1.5,\n"
        );
        assert_eq!(csv_cell(&json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
    }
}
