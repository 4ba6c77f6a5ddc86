//! `GET /api/v1/overview?db=`: the latest state of every host (measurements
//! `system`, `cpu`, `mem`, as the agent writes them) and of every
//! interface the rate monitor watches (`ratemon`), from `last_rows`.
//! Tables and columns that do not exist yet are left out, not errors.
//!
//! ```json
//! {"db": "telemetry",
//!  "hosts": [{"host": "a", "time": "2024-…Z", "uptime": 86400, "load1": 0.5, "load5": …,
//!             "load15": …, "n_cpus": 8, "cpu_used_percent": 12.5, "mem_used_percent": 40.1}],
//!  "interfaces": [{"host": "a", "interface": "eth0", "time": …, "linerate": 125000000,
//!                  "tx": …, "rx": …, "overload_risk_tx": 97.2, "overload_risk_rx": 0.1,
//!                  "alarm_trigger_value": 95, "alarm_tx": true, "alarm_rx": false, "at_risk": true}]}
//! ```
//!
//! Interfaces at risk (an alarm, or a risk above the trigger) come first.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use query::QueryEngine;
use serde_json::{json, Map, Value};
use store::Store;

use crate::analytics::{bounded, query_pairs};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::sql::query_error;
use crate::tokens::Scope;

/// One table's latest rows: which columns to read (those it has), and an
/// optional tag filter.
struct Latest {
    table: &'static str,
    columns: &'static [&'static str],
    only: Option<(&'static str, &'static str)>,
}

const SYSTEM: Latest = Latest {
    table: "system",
    columns: &["uptime", "load1", "load5", "load15", "n_cpus"],
    only: None,
};
const CPU: Latest = Latest {
    table: "cpu",
    columns: &["usage_idle"],
    only: Some(("cpu", "cpu-total")),
};
const MEM: Latest = Latest {
    table: "mem",
    columns: &["used_percent"],
    only: None,
};
const RATEMON: Latest = Latest {
    table: "ratemon",
    columns: &[
        "interface",
        "linerate",
        "tx",
        "rx",
        "overload_risk_tx",
        "overload_risk_rx",
        "alarm_trigger_value",
        "alarm_tx",
        "alarm_rx",
    ],
    only: None,
};

/// `GET /api/v1/overview`.
pub(super) async fn overview(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let mut db = None;
    for (key, value) in pairs {
        match key.as_str() {
            "db" => db = Some(value),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {other:?}; known: db"
                )))
            }
        }
    }
    let db = db
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ApiError::bad_request("db: missing"))?;
    caller.require(Scope::Read, &db)?;
    if !state.store.has_database(&db) {
        return Ok(Json(json!({"db": db, "hosts": [], "interfaces": []})).into_response());
    }
    let engine = state.engine.clone();
    let store = Arc::clone(&state.store);
    let name = db.clone();
    let result = bounded(&state, async move {
        let mut rows = Vec::new();
        for latest in [SYSTEM, CPU, MEM, RATEMON] {
            rows.push(latest_rows(&engine, &store, &name, &latest).await?);
        }
        Ok::<_, query::QueryError>(rows)
    })
    .await?;
    let mut tables = result.map_err(|e| query_error(&e))?.into_iter();
    let mut next = || tables.next().unwrap_or_default();
    let (system, cpu, mem, ratemon) = (next(), next(), next(), next());
    Ok(Json(json!({
        "db": db,
        "hosts": hosts(system, cpu, mem),
        "interfaces": interfaces(ratemon),
    }))
    .into_response())
}

/// A table's latest row per series as JSON objects with `host`, `time`
/// (RFC 3339) and those of the wanted columns it has; none when the table
/// does not exist.
async fn latest_rows(
    engine: &QueryEngine,
    store: &Store,
    db: &str,
    latest: &Latest,
) -> Result<Vec<Map<String, Value>>, query::QueryError> {
    let Some(schema) = store.table_schema(db, latest.table) else {
        return Ok(Vec::new());
    };
    let has = |c: &str| schema.fields().iter().any(|f| f.name() == c);
    let mut items = vec!["CAST(time AS BIGINT) AS time_ns".to_owned()];
    if has("host") {
        items.push("CAST(\"host\" AS VARCHAR) AS host".to_owned());
    }
    for c in latest.columns.iter().filter(|c| has(c)) {
        items.push(format!("\"{c}\""));
    }
    let mut sql = format!(
        "SELECT {} FROM last_rows('{}')",
        items.join(", "),
        latest.table
    );
    if let Some((tag, value)) = latest.only {
        if !has(tag) {
            return Ok(Vec::new());
        }
        sql.push_str(&format!(" WHERE \"{tag}\" = '{value}'"));
    }
    let batches = engine.sql(db, &sql).await?;
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&arrow::array::RecordBatch> = batches.iter().collect();
    writer
        .write_batches(&refs)
        .and_then(|()| writer.finish())
        .map_err(|e| query::QueryError::Engine(e.into()))?;
    let bytes = writer.into_inner();
    let rows: Vec<Map<String, Value>> = if bytes.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            query::QueryError::Engine(datafusion::error::DataFusionError::External(e.into()))
        })?
    };
    Ok(rows
        .into_iter()
        .map(|mut row| {
            let time = row
                .remove("time_ns")
                .and_then(|t| t.as_i64())
                .map_or(Value::Null, rfc3339);
            row.insert("time".into(), time);
            row.entry("host").or_insert_with(|| json!(""));
            row
        })
        .collect())
}

fn rfc3339(ns: i64) -> Value {
    let t = UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    json!(humantime::format_rfc3339_seconds(t).to_string())
}

fn host_of(row: &Map<String, Value>) -> String {
    row.get("host")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// One object per host: system's fields, CPU use (100 − idle of
/// cpu-total), memory use, and the latest time of any of them.
fn hosts(
    system: Vec<Map<String, Value>>,
    cpu: Vec<Map<String, Value>>,
    mem: Vec<Map<String, Value>>,
) -> Vec<Value> {
    let renamed = |mut row: Map<String, Value>| {
        if let Some(idle) = row.remove("usage_idle") {
            let used = idle.as_f64().map_or(Value::Null, |i| json!(100.0 - i));
            row.insert("cpu_used_percent".into(), used);
        }
        if let Some(used) = row.remove("used_percent") {
            row.insert("mem_used_percent".into(), used);
        }
        row
    };
    let mut by_host: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for row in system.into_iter().chain(cpu).chain(mem).map(renamed) {
        let entry = by_host.entry(host_of(&row)).or_default();
        for (k, v) in row {
            let older = k == "time"
                && matches!(
                    (entry.get("time").and_then(Value::as_str), v.as_str()),
                    (Some(old), Some(new)) if new <= old
                );
            if !older {
                entry.insert(k, v);
            }
        }
    }
    by_host.into_values().map(Value::Object).collect()
}

/// The rate monitor's interfaces, those at risk first, then by risk.
fn interfaces(rows: Vec<Map<String, Value>>) -> Vec<Value> {
    let mut out: Vec<(bool, f64, Map<String, Value>)> = rows
        .into_iter()
        .map(|mut row| {
            let num = |k: &str| row.get(k).and_then(Value::as_f64);
            let risk = num("overload_risk_tx")
                .unwrap_or(0.0)
                .max(num("overload_risk_rx").unwrap_or(0.0));
            let alarm = ["alarm_tx", "alarm_rx"]
                .iter()
                .any(|k| row.get(*k).and_then(Value::as_bool) == Some(true));
            let at_risk = alarm || num("alarm_trigger_value").is_some_and(|t| risk > t);
            row.insert("at_risk".into(), json!(at_risk));
            (at_risk, risk, row)
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
    out.into_iter()
        .map(|(_, _, row)| Value::Object(row))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn hosts_join_their_tables_and_risky_interfaces_lead() {
        let h = hosts(
            vec![row(
                json!({"host": "a", "time": "2024-01-01T00:00:00Z", "load1": 0.5}),
            )],
            vec![row(
                json!({"host": "a", "time": "2024-01-01T00:00:10Z", "usage_idle": 75.0}),
            )],
            vec![row(
                json!({"host": "b", "time": "2024-01-01T00:00:00Z", "used_percent": 40.0}),
            )],
        );
        assert_eq!(h.len(), 2);
        assert_eq!(h[0]["cpu_used_percent"], 25.0);
        assert_eq!(h[0]["time"], "2024-01-01T00:00:10Z");
        assert_eq!(h[1]["mem_used_percent"], 40.0);
        let i = interfaces(vec![
            row(
                json!({"interface": "calm", "overload_risk_tx": 99.0, "alarm_trigger_value": 99.5}),
            ),
            row(json!({"interface": "hot", "overload_risk_rx": 1.0, "alarm_rx": true})),
            row(
                json!({"interface": "warm", "overload_risk_tx": 96.0, "alarm_trigger_value": 95.0}),
            ),
        ]);
        let names: Vec<&str> = i.iter().map(|r| r["interface"].as_str().unwrap()).collect();
        assert_eq!(names, ["warm", "hot", "calm"]);
        assert_eq!(i[2]["at_risk"], false);
    }
}
