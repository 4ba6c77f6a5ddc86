//! Utilisation across a network's nodes: per node, its mean rate over a
//! recent window divided by its peak over a longer one; the CDF of that
//! across the nodes of each role; the bottleneck role (highest median
//! utilisation); and each node's balance ratio — its mean rate divided by
//! the mean of its role's nodes (1 = its fair share) — with its CDF per role.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::params::{ident, Params};
use super::{check_columns, csv_row, f64_at, run, select, AnalyticsError, Answer};
use crate::QueryEngine;

/// One node's figures: name, mean over the window, peak, utilisation.
type NodeFigures = (String, Option<f64>, Option<f64>, Option<f64>);

/// Parses a window parameter (`window`, `peak_window`).
fn window(p: &Params, key: &str, default: Duration) -> Result<Duration, String> {
    match p.extra(key) {
        None => Ok(default),
        Some(v) => match humantime::parse_duration(v) {
            Ok(d) if d >= Duration::from_secs(1) => Ok(d),
            Ok(_) => Err(format!("{key}: at least 1s")),
            Err(e) => Err(format!("{key}: {v:?}: {e}")),
        },
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The empirical CDF of `values` as `{value, fraction}` points, one per value.
fn cdf_points(mut values: Vec<f64>) -> Vec<Value> {
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"value": v, "fraction": (i + 1) as f64 / n}))
        .collect()
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// Utilisation per node and role of the rate in `field`.
///
/// Parameters besides the shared ones: `node` (the tag naming a node,
/// default `host`), `role` (default `role`; without it every node has role
/// "all"), `window` (default 1h) and `peak_window` (default 30d), both
/// ending at `end` (default now).
pub async fn utilisation(engine: &QueryEngine, p: &Params) -> Result<Answer, AnalyticsError> {
    let field = p.require_field()?;
    if !p.group_by.is_empty() || p.every.is_some() || p.start.is_some() {
        return Err("group_by, every, start: utilisation groups by node and role, over window and peak_window ending at end".to_owned().into());
    }
    let node = p.extra("node").unwrap_or("host").to_owned();
    let role = p.extra("role").map(str::to_owned);
    let recent = window(p, "window", Duration::from_secs(3600))?;
    let peak = window(p, "peak_window", Duration::from_secs(30 * 86_400))?;
    if recent > peak {
        return Err("window must not be longer than peak_window"
            .to_owned()
            .into());
    }
    let mut needed = vec![node.as_str()];
    if let Some(r) = &role {
        needed.push(r);
    }
    check_columns(engine, p, &needed)?;
    let end = match p.end {
        Some(e) => e,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(nanos)
            .unwrap_or(0),
    };
    let recent_from = end.saturating_sub(nanos(recent));
    let peak_from = end.saturating_sub(nanos(peak));
    let f = ident(field);
    let role_expr = match &role {
        Some(r) => format!("CAST({} AS VARCHAR)", ident(r)),
        None => "'all'".to_owned(),
    };
    let items = vec![
        format!("CAST({} AS VARCHAR) AS \"__weir_node\"", ident(&node)),
        format!("{role_expr} AS \"__weir_role\""),
        format!(
            "avg(CASE WHEN time >= to_timestamp_nanos({recent_from}) THEN CAST({f} AS DOUBLE) END) AS \"__weir_mean\""
        ),
        format!("max(CAST({f} AS DOUBLE)) AS \"__weir_peak\""),
    ];
    let group = vec!["\"__weir_node\"".to_owned(), "\"__weir_role\"".to_owned()];
    let bounded = Params {
        start: Some(peak_from),
        end: Some(end),
        ..p.clone()
    };
    let sql = select(
        &ident(&bounded.table),
        &bounded,
        &items,
        &group,
        &[format!("{f} IS NOT NULL")],
    );
    let batches = run(engine, p, &sql).await?;
    let mut roles: BTreeMap<String, Vec<NodeFigures>> = BTreeMap::new();
    for batch in &batches {
        let (Some(n), Some(r), Some(m), Some(k)) = (
            batch.column_by_name("__weir_node"),
            batch.column_by_name("__weir_role"),
            batch.column_by_name("__weir_mean"),
            batch.column_by_name("__weir_peak"),
        ) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            let text = |c: &arrow::array::ArrayRef| {
                arrow::util::display::array_value_to_string(c, row).unwrap_or_default()
            };
            let (mean, peak) = (f64_at(m, row), f64_at(k, row));
            let util = match (mean, peak) {
                (Some(mean), Some(peak)) if peak > 0.0 => Some(mean / peak),
                _ => None,
            };
            roles
                .entry(text(r))
                .or_default()
                .push((text(n), mean, peak, util));
        }
    }
    let mut csv = csv_row(&[
        json!("role"),
        json!("node"),
        json!("mean"),
        json!("peak"),
        json!("utilisation"),
        json!("balance"),
    ]);
    let mut out_roles = Vec::new();
    let mut bottleneck: Option<(String, f64)> = None;
    for (role_name, nodes) in &roles {
        let means: Vec<f64> = nodes.iter().filter_map(|n| n.1).collect();
        let role_mean = (!means.is_empty()).then(|| means.iter().sum::<f64>() / means.len() as f64);
        let mut node_json = Vec::new();
        let (mut utils, mut balances) = (Vec::new(), Vec::new());
        for (name, mean, peak, util) in nodes {
            let balance = match (mean, role_mean) {
                (Some(m), Some(r)) if r > 0.0 => Some(m / r),
                _ => None,
            };
            utils.extend(*util);
            balances.extend(balance);
            node_json.push(json!({"node": name, "mean": mean, "peak": peak, "utilisation": util, "balance": balance}));
            csv.push_str(&csv_row(&[
                json!(role_name),
                json!(name),
                json!(mean),
                json!(peak),
                json!(util),
                json!(balance),
            ]));
        }
        let med = median(&utils);
        if let Some(m) = med {
            if bottleneck.as_ref().is_none_or(|(_, b)| m > *b) {
                bottleneck = Some((role_name.clone(), m));
            }
        }
        out_roles.push(json!({
            "role": role_name,
            "nodes": node_json,
            "median_utilisation": med,
            "utilisation_cdf": cdf_points(utils),
            "balance_cdf": cdf_points(balances),
        }));
    }
    let mut o: Map<String, Value> = super::base_json(p, &super::Source::Raw);
    o.insert("node".into(), json!(node));
    o.insert("role".into(), json!(role));
    o.insert("end".into(), json!(end));
    o.insert(
        "window".into(),
        json!(humantime::format_duration(recent).to_string()),
    );
    o.insert(
        "peak_window".into(),
        json!(humantime::format_duration(peak).to_string()),
    );
    o.insert("roles".into(), Value::from(out_roles));
    o.insert("bottleneck".into(), json!(bottleneck.map(|(r, _)| r)));
    Ok(Answer {
        json: Value::Object(o),
        csv,
    })
}
