//! Which rows answer a question: the raw table, or its rollups
//! (`<table>_30m` and `<table>_1d`, see the store), chosen by parameter
//! `source` (`auto`, the default; `raw`; `rollup`).
//!
//! `auto` reads rollups when they can answer and the question is one they
//! answer much faster: `start` is given and the range is at least
//! [`LONG_RANGE`], the buckets (`every`) are whole half-hours, and every
//! column the question names is a tag of the rollups (or, for the field,
//! has its sketch). Rollup answers start at the half-hour that holds
//! `start` and end with the half-hour that holds the last instant before
//! `end` (both rounded out to whole half-hours), and their buckets start at
//! half-hours. A table with days persisted before weir wrote rollups, or
//! while its database kept none, is answered raw.
//!
//! The whole UTC days of a rollup answer are read from the daily rollups
//! (48 times fewer rows) and only the partial days at its ends from the
//! half-hour ones, unless a daily row could straddle two of the answer's
//! buckets (`every` not whole days, or buckets not starting at midnight)
//! or the question groups by `half_hour_of_day`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use store::{RollupGrain, ROLLUP_ROWS_COLUMN};

use super::params::ident;
use super::{AnalyticsError, Dimension, Params};
use crate::QueryEngine;

/// The shortest range `auto` answers from rollups.
pub const LONG_RANGE: Duration = Duration::from_secs(24 * 3600);

/// Where the rows of an answer come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The raw table, exact.
    Raw,
    /// Rollups: counts, sums, minima and maxima exact, quantiles within 1 %.
    Rollup(Rollups),
}

/// The rollup tables an answer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rollups {
    /// The half-hour table: the whole range, or its partial days.
    half_hour: String,
    /// The daily table and the whole UTC days `[from, to)` (ns) read from
    /// it, if any.
    days: Option<(String, i64, i64)>,
}

impl Source {
    /// The source for `p`, whose distribution is of `field` (if any: its
    /// sketches are needed), that also reads `columns` of the raw table
    /// (bool: whether the column is a field, read as `<column>_sum` or
    /// `_count` of the rollups, else a tag) and groups by `dims` besides
    /// `p.group_by`.
    pub(crate) fn choose(
        engine: &QueryEngine,
        p: &Params,
        field: Option<&str>,
        columns: &[(&str, bool)],
        dims: &[&Dimension],
    ) -> Result<Source, AnalyticsError> {
        let wanted = p.extra("source").unwrap_or("auto");
        if !matches!(wanted, "auto" | "raw" | "rollup") {
            return Err(format!("source: {wanted:?}; expected auto, raw or rollup").into());
        }
        if wanted == "raw" {
            return Ok(Source::Raw);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(i64::MAX, |d| {
                i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
            });
        let rollups = || {
            Source::Rollup(Rollups {
                half_hour: RollupGrain::HalfHour.table_name(&p.table),
                days: whole_days(engine, p, dims, now),
            })
        };
        let why_not = why_not_rollups(engine, p, field, columns, now);
        match (wanted, why_not) {
            ("rollup", Some(reason)) => {
                Err(format!("source: rollups cannot answer this: {reason}").into())
            }
            ("rollup", None) => Ok(rollups()),
            (_, Some(_)) => Ok(Source::Raw),
            (_, None) => {
                // Without a start the range is whatever is stored: exact.
                let long = p.start.is_some_and(|s| {
                    let end = p.end.unwrap_or(now);
                    end.saturating_sub(s) >= LONG_RANGE.as_nanos() as i64
                });
                Ok(if long { rollups() } else { Source::Raw })
            }
        }
    }

    /// The parameters to query with: for rollups, the half-hour table and
    /// a start at the half-hour that holds `start`.
    pub(crate) fn params(&self, p: &Params) -> Params {
        match self {
            Source::Raw => p.clone(),
            Source::Rollup(r) => Params {
                table: r.half_hour.clone(),
                start: p.start.map(|s| RollupGrain::HalfHour.floor(s)),
                ..p.clone()
            },
        }
    }

    /// The rollup tables a query on `read` (from [`Source::params`])
    /// reads, each with the time range (ns, `[from, to)`, `None`: open) it
    /// reads from it; nothing for raw rows.
    fn parts(&self, read: &Params) -> Vec<(&str, Option<i64>, Option<i64>)> {
        let Source::Rollup(r) = self else {
            return Vec::new();
        };
        let Some((daily, from, to)) = &r.days else {
            return vec![(&r.half_hour, None, None)];
        };
        let mut parts = Vec::new();
        if read.start.is_some_and(|s| s < *from) {
            parts.push((r.half_hour.as_str(), None, Some(*from)));
        }
        parts.push((daily.as_str(), Some(*from), Some(*to)));
        if read.end.is_none_or(|e| e > *to) {
            parts.push((r.half_hour.as_str(), Some(*to), None));
        }
        parts
    }

    /// The rollup tables a query on `read` reads, coarsest first, once each.
    pub(crate) fn tables(&self, read: &Params) -> Vec<String> {
        let mut tables: Vec<String> = Vec::new();
        for (t, ..) in self.parts(read) {
            if !tables.iter().any(|seen| seen == t) {
                tables.push(t.to_owned());
            }
        }
        tables.sort_by_key(|t| !t.ends_with(RollupGrain::Day.suffix()));
        tables
    }

    /// The SQL a query on `read` (from [`Source::params`]) selects from: a
    /// table, or the union of the daily rollups of the whole days and the
    /// half-hour rollups of the partial days at the ends.
    pub(crate) fn from(&self, read: &Params) -> String {
        let parts = self.parts(read);
        if parts.len() <= 1 {
            return parts
                .first()
                .map_or_else(|| ident(&read.table), |(t, ..)| ident(t));
        }
        let at = |ns: i64| format!("to_timestamp_nanos({ns})");
        let selects: Vec<String> = parts
            .iter()
            .map(|(table, from, to)| {
                let conds: Vec<String> = from
                    .map(|f| format!("time >= {}", at(f)))
                    .into_iter()
                    .chain(to.map(|t| format!("time < {}", at(t))))
                    .collect();
                format!(
                    "SELECT * FROM {} WHERE {}",
                    ident(table),
                    conds.join(" AND ")
                )
            })
            .collect();
        format!("({}) AS \"__weir_rows\"", selects.join(" UNION ALL "))
    }

    /// What `"source"` says in an answer.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Source::Raw => "raw",
            Source::Rollup(_) => "rollup",
        }
    }

    /// The column a distribution of `field` is computed over: the field,
    /// or its sketches.
    pub(crate) fn distribution_column(&self, field: &str) -> String {
        match self {
            Source::Raw => ident(field),
            Source::Rollup(_) => ident(&format!("{field}_sketch")),
        }
    }

    /// A condition for the rows that hold values of `field`: for rollups
    /// on its count (null exactly when the sketch is), which a scan reads
    /// far faster than the sketches.
    pub(crate) fn has_value(&self, field: &str) -> String {
        match self {
            Source::Raw => format!("{} IS NOT NULL", ident(field)),
            Source::Rollup(_) => format!("{} IS NOT NULL", ident(&format!("{field}_count"))),
        }
    }

    /// An expression for the number of values of `field` (all rows without
    /// one), as BIGINT.
    pub(crate) fn count(&self, field: Option<&str>) -> String {
        match (self, field) {
            (Source::Raw, Some(f)) => format!("count({})", ident(f)),
            (Source::Raw, None) => "count(*)".to_owned(),
            (Source::Rollup(_), Some(f)) => {
                format!("CAST(sum({}) AS BIGINT)", ident(&format!("{f}_count")))
            }
            (Source::Rollup(_), None) => {
                format!("CAST(sum({}) AS BIGINT)", ident(ROLLUP_ROWS_COLUMN))
            }
        }
    }

    /// An aggregate of `field`: `sum`, `min`, `max` or `avg`, as DOUBLE.
    pub(crate) fn aggregate(&self, agg: &str, field: &str) -> String {
        match self {
            Source::Raw => format!("CAST({agg}({}) AS DOUBLE)", ident(field)),
            Source::Rollup(_) => {
                let col = |suffix: &str| ident(&format!("{field}_{suffix}"));
                match agg {
                    "avg" => format!(
                        "CAST(sum({}) AS DOUBLE) / CAST(sum({}) AS DOUBLE)",
                        col("sum"),
                        col("count")
                    ),
                    "min" => format!("CAST(min({}) AS DOUBLE)", col("min")),
                    "max" => format!("CAST(max({}) AS DOUBLE)", col("max")),
                    _ => format!("CAST(sum({}) AS DOUBLE)", col("sum")),
                }
            }
        }
    }

    /// An expression counting the rows where boolean field `field` is
    /// true, as BIGINT.
    pub(crate) fn count_true(&self, field: &str) -> String {
        match self {
            Source::Raw => format!(
                "CAST(sum(CASE WHEN {} THEN 1 ELSE 0 END) AS BIGINT)",
                ident(field)
            ),
            Source::Rollup(_) => {
                format!("CAST(sum({}) AS BIGINT)", ident(&format!("{field}_sum")))
            }
        }
    }
}

/// Why the rollups of `p.table` cannot answer, if they cannot.
fn why_not_rollups(
    engine: &QueryEngine,
    p: &Params,
    field: Option<&str>,
    columns: &[(&str, bool)],
    now: i64,
) -> Option<String> {
    if !engine.store.keeps_rollups(&p.db) {
        return Some(format!(
            "database {:?} keeps no rollups (rollups = false)",
            p.db
        ));
    }
    let rollup = RollupGrain::HalfHour.table_name(&p.table);
    if !engine.store.is_rollup_table(&p.db, &rollup) {
        return Some(format!("table {:?} has no rollups", p.table));
    }
    let Some(schema) = engine.store.table_schema(&p.db, &rollup) else {
        return Some(format!("table {:?} has no rollups", p.table));
    };
    // The half-hours the answer reads, whole: from the one holding the
    // start to the one holding the last instant before the end.
    let half_hour = RollupGrain::HalfHour;
    let time = p.start.map_or(i64::MIN, |s| half_hour.floor(s))
        ..half_hour
            .floor(p.end.unwrap_or(now).saturating_sub(1))
            .saturating_add(half_hour.nanos());
    if !engine
        .store
        .rollups_cover_range(&p.db, &p.table, half_hour, time)
    {
        return Some(format!(
            "some of table {:?} was stored before weir kept rollups or while its database kept none, or holds points written again that compaction has not yet rolled up once",
            p.table
        ));
    }
    let has = |c: &str| schema.column_with_name(c).is_some();
    let is_tag = |c: &str| {
        schema
            .field_with_name(c)
            .is_ok_and(|f| matches!(f.data_type(), arrow::datatypes::DataType::Dictionary(..)))
    };
    if let Some(every) = p.every {
        if every.as_secs() % 1800 != 0 {
            return Some("every: rollups have half-hour buckets; use a multiple of 30m".into());
        }
    }
    if let Some(f) = field {
        if !has(&format!("{f}_sketch")) {
            return Some(format!("field {f:?} has no sketches (not a number)"));
        }
    }
    let tags = p
        .filters
        .iter()
        .map(|(t, _)| t.as_str())
        .chain(p.group_by.iter().filter_map(|d| match d {
            Dimension::Tag(t) => Some(t.as_str()),
            _ => None,
        }));
    for tag in tags {
        if !is_tag(tag) {
            return Some(format!("{tag:?} is not a tag of the rollups"));
        }
    }
    for &(column, is_field) in columns {
        let ok = if is_field {
            has(&format!("{column}_sum"))
        } else {
            is_tag(column)
        };
        if !ok {
            return Some(format!("{column:?} is not in the rollups"));
        }
    }
    None
}

/// The daily rollup table of `p.table` and the whole UTC days `[from, to)`
/// (ns) of `p`'s range it can answer, if it can answer any.
fn whole_days(
    engine: &QueryEngine,
    p: &Params,
    dims: &[&Dimension],
    now: i64,
) -> Option<(String, i64, i64)> {
    let day = RollupGrain::Day;
    // Rollup answers start at the half-hour that holds `start`.
    let start = RollupGrain::HalfHour.floor(p.start?);
    // The day that holds the rollup retention's cutoff has no daily row.
    let from = day
        .floor(start.saturating_add(day.nanos() - 1))
        .max(engine.store.first_whole_rollup_day(&p.db));
    let to = day.floor(p.end.unwrap_or(now));
    if from >= to {
        return None;
    }
    // A daily row must fall in one bucket: whole days from midnight.
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    if p.every
        .is_some_and(|e| nanos(e) % day.nanos() != 0 || start.rem_euclid(day.nanos()) != 0)
    {
        return None;
    }
    let half_hourly = p
        .group_by
        .iter()
        .chain(dims.iter().copied())
        .any(|d| *d == Dimension::HalfHourOfDay);
    let daily = day.table_name(&p.table);
    let usable = !half_hourly
        && engine.store.is_rollup_table(&p.db, &daily)
        && engine
            .store
            .rollups_cover_range(&p.db, &p.table, day, from..to);
    usable.then_some((daily, from, to))
}
