//! The parameters every analytics endpoint shares, parsed from query-string
//! pairs, and the SQL pieces they turn into. Names and values never reach
//! the SQL unquoted.

use std::time::Duration;

/// A dimension to group by: a tag, or one derived from `time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dimension {
    /// A tag (or any column) by name.
    Tag(String),
    /// 0–47: the half hour of the day (UTC).
    HalfHourOfDay,
    /// 0 (Sunday) – 6.
    DayOfWeek,
    /// 1–31.
    DayOfMonth,
    /// 1–366.
    DayOfYear,
}

impl Dimension {
    /// A dimension by name: the derived ones by their names, any other
    /// name a tag.
    pub fn parse_name(name: &str) -> Dimension {
        match name {
            "half_hour_of_day" => Dimension::HalfHourOfDay,
            "day_of_week" => Dimension::DayOfWeek,
            "day_of_month" => Dimension::DayOfMonth,
            "day_of_year" => Dimension::DayOfYear,
            tag => Dimension::Tag(tag.to_owned()),
        }
    }

    /// Its name in results.
    pub fn name(&self) -> &str {
        match self {
            Dimension::Tag(t) => t,
            Dimension::HalfHourOfDay => "half_hour_of_day",
            Dimension::DayOfWeek => "day_of_week",
            Dimension::DayOfMonth => "day_of_month",
            Dimension::DayOfYear => "day_of_year",
        }
    }

    /// The SQL expression, aliased to its name.
    pub(crate) fn select(&self) -> String {
        let expr = match self {
            Dimension::Tag(t) => ident(t),
            Dimension::HalfHourOfDay => {
                "CAST(date_part('hour', time) * 2 + floor(date_part('minute', time) / 30) AS BIGINT)"
                    .to_owned()
            }
            Dimension::DayOfWeek => "CAST(date_part('dow', time) AS BIGINT)".to_owned(),
            Dimension::DayOfMonth => "CAST(date_part('day', time) AS BIGINT)".to_owned(),
            Dimension::DayOfYear => "CAST(date_part('doy', time) AS BIGINT)".to_owned(),
        };
        format!("{expr} AS {}", ident(self.name()))
    }
}

/// A SQL identifier, quoted.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal.
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The shared parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// `db`.
    pub db: String,
    /// `table`.
    pub table: String,
    /// `field` (the measured value; some endpoints need none).
    pub field: Option<String>,
    /// `start`, ns since the epoch (inclusive).
    pub start: Option<i64>,
    /// `end`, ns since the epoch (exclusive).
    pub end: Option<i64>,
    /// `where=tag=value`, each an equality, all of them required.
    pub filters: Vec<(String, String)>,
    /// `group_by=a,b`.
    pub group_by: Vec<Dimension>,
    /// `every`: the time bucket.
    pub every: Option<Duration>,
    /// Endpoint-specific keys, as given.
    pub extra: Vec<(String, String)>,
}

/// Parses `start`/`end`: RFC 3339 (any offset), or Unix seconds with up to
/// nine decimals, exactly.
fn parse_time(key: &str, value: &str) -> Result<i64, String> {
    let out_of_range = || format!("{key}: {value} is out of range");
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let is_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let unsigned = whole.strip_prefix('-').unwrap_or(whole);
    if !unsigned.is_empty() && is_digits(unsigned) && is_digits(frac) && frac.len() <= 9 {
        let secs: i64 = whole.parse().map_err(|_| out_of_range())?;
        let mut nanos: i64 = format!("{frac:0<9}").parse().map_err(|_| out_of_range())?;
        if whole.starts_with('-') {
            nanos = -nanos;
        }
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(nanos))
            .ok_or_else(out_of_range);
    }
    arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(value)
        .map_err(|_| format!("{key}: {value:?} is neither RFC 3339 nor Unix seconds"))
}

impl Params {
    /// From query-string pairs; `extra_keys` are the endpoint's own keys
    /// (kept in [`Params::extra`]); any other key is an error naming it.
    pub fn from_pairs(pairs: &[(String, String)], extra_keys: &[&str]) -> Result<Params, String> {
        let mut p = Params::default();
        for (key, value) in pairs {
            match key.as_str() {
                "db" => p.db = value.clone(),
                "table" => p.table = value.clone(),
                "field" => p.field = Some(value.clone()),
                "start" => p.start = Some(parse_time(key, value)?),
                "end" => p.end = Some(parse_time(key, value)?),
                "where" => {
                    let (tag, v) = value
                        .split_once('=')
                        .ok_or_else(|| format!("where: {value:?} is not tag=value"))?;
                    p.filters.push((tag.to_owned(), v.to_owned()));
                }
                "group_by" => {
                    p.group_by = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(Dimension::parse_name)
                        .collect();
                }
                "every" => {
                    let d = humantime::parse_duration(value)
                        .map_err(|e| format!("every: {value:?}: {e}"))?;
                    if d < Duration::from_secs(1) || d.subsec_nanos() != 0 {
                        return Err("every: whole seconds, at least 1s".into());
                    }
                    p.every = Some(d);
                }
                "format" => {}
                k if extra_keys.contains(&k) => p.extra.push((key.clone(), value.clone())),
                k => {
                    let mut known = vec![
                        "db", "table", "field", "start", "end", "where", "group_by", "every",
                        "format",
                    ];
                    known.extend_from_slice(extra_keys);
                    return Err(format!(
                        "unknown parameter {k:?}; known: {}",
                        known.join(", ")
                    ));
                }
            }
        }
        if p.db.is_empty() {
            return Err("db: missing".into());
        }
        if p.table.is_empty() {
            return Err("table: missing".into());
        }
        if let (Some(s), Some(e)) = (p.start, p.end) {
            if s >= e {
                return Err("start must be before end".into());
            }
        }
        Ok(p)
    }

    /// An endpoint key's value, if given.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .rfind(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The field, which this endpoint needs.
    pub(crate) fn require_field(&self) -> Result<&str, String> {
        self.field
            .as_deref()
            .ok_or_else(|| "field: missing".to_owned())
    }

    /// The WHERE clause: time range and tag filters (`extra` conditions
    /// appended).
    pub(crate) fn where_clause(&self, extra: &[String]) -> String {
        let mut conds = Vec::new();
        if let Some(s) = self.start {
            conds.push(format!("time >= to_timestamp_nanos({s})"));
        }
        if let Some(e) = self.end {
            conds.push(format!("time < to_timestamp_nanos({e})"));
        }
        for (tag, value) in &self.filters {
            conds.push(format!("{} = {}", ident(tag), literal(value)));
        }
        conds.extend(extra.iter().cloned());
        if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        }
    }

    /// The group-by expressions as select items, and their names.
    pub(crate) fn groups(&self) -> (Vec<String>, Vec<String>) {
        (
            self.group_by.iter().map(Dimension::select).collect(),
            self.group_by.iter().map(|d| ident(d.name())).collect(),
        )
    }

    /// `date_bin(every, time, origin) AS bucket`, origin the start (or the epoch).
    pub(crate) fn bucket(&self) -> Option<String> {
        let every = self.every?;
        Some(format!(
            "date_bin(INTERVAL '{} seconds', time, to_timestamp_nanos({})) AS \"__weir_bucket\"",
            every.as_secs(),
            self.start.unwrap_or(0)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn parses_and_names_mistakes() {
        let p = Params::from_pairs(
            &pairs("db=net&table=probe_http&field=ttfb_us&start=1700000000&end=2023-11-15T00:00:00Z&where=country=IR&group_by=country,day_of_week&every=1h&points=50"),
            &["points"],
        )
        .unwrap();
        assert_eq!(p.start, Some(1_700_000_000_000_000_000));
        assert_eq!(p.end, Some(1_700_006_400_000_000_000));
        assert_eq!(p.filters, [("country".to_owned(), "IR".to_owned())]);
        assert_eq!(
            p.group_by,
            [Dimension::Tag("country".into()), Dimension::DayOfWeek]
        );
        assert_eq!(p.extra("points"), Some("50"));
        assert!(p.where_clause(&[]).contains("\"country\" = 'IR'"));
        for (q, words) in [
            ("table=t", "db"),
            ("db=d", "table"),
            ("db=d&table=t&bogus=1", "bogus"),
            ("db=d&table=t&start=yesterday", "start"),
            ("db=d&table=t&where=country", "tag=value"),
            ("db=d&table=t&every=10ms", "every"),
            ("db=d&table=t&start=20&end=10", "before"),
            ("db=d&table=t&every=1500ms", "whole seconds"),
        ] {
            let e = Params::from_pairs(&pairs(q), &[]).unwrap_err();
            assert!(e.contains(words), "{q}: {e}");
        }
        assert_eq!(
            parse_time("start", "2023-11-15T03:30:00+03:30"),
            Ok(1_700_006_400_000_000_000)
        );
        assert_eq!(parse_time("start", "1.000000001"), Ok(1_000_000_001));
        assert_eq!(parse_time("start", "-1.5"), Ok(-1_500_000_000));
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("o'k"), "'o''k'");
    }
}
