//! The TSBS "devops" queries over the cpu-only data set, as weir SQL and as
//! the query languages of weir's peers.
//!
//! Each query kind takes random parameters the way TSBS draws them (hosts
//! and a time window inside the data set), from a seeded generator, so the
//! same seed asks every system the same questions:
//!
//! * [`sql`]: weir's SQL;
//! * [`influxql`]: InfluxQL for InfluxDB 1.x over measurement `cpu`, in the
//!   shapes of TSBS's `databases/influx/devops.go`;
//! * [`metricsql`]: a MetricsQL range query for VictoriaMetrics, in the
//!   shapes of TSBS's `databases/victoriametrics/devops.go`. VictoriaMetrics
//!   stores each line-protocol field as a metric named
//!   `<measurement>_<field>` (`cpu_usage_user`) with the tags as labels.
//!   TSBS has no PromQL form of high-cpu-1, lastpoint and
//!   groupby-orderby-limit (its generator panics "not supported in
//!   PromQL"), so [`metricsql`] returns `None` for them rather than invent
//!   one.
//!
//! Where TSBS's InfluxQL asks a different question from its other
//! generators, [`influxql`] follows the others so that every system answers
//! the same question (each deviation is documented on [`influxql`]).
//!
//! ```
//! use weir_bench::queries::{influxql, metricsql, sql, QueryGenerator, QueryKind};
//! use weir_bench::tsbs::CpuOnly;
//!
//! let mut queries = QueryGenerator::new(CpuOnly::default(), 1);
//! let p = queries.params(QueryKind::SingleGroupby111);
//! assert!(sql(QueryKind::SingleGroupby111, &p).contains("max(usage_user)"));
//! assert!(influxql(QueryKind::SingleGroupby111, &p).contains("group by time(1m)"));
//! let range = metricsql(QueryKind::SingleGroupby111, &p).unwrap();
//! assert_eq!(range.step, 60);
//! assert_eq!(range.end - range.start, 3600);
//! assert!(metricsql(QueryKind::Lastpoint, &p).is_none());
//! ```

use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use crate::tsbs::{CpuOnly, FIELD_KEYS};

const HOUR_NS: i64 = 3_600_000_000_000;

/// A TSBS query kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Max of one metric per minute for one host over one hour.
    SingleGroupby111,
    /// Max of five metrics per minute for eight hosts over one hour.
    SingleGroupby581,
    /// Mean of one metric per hour and host over twelve hours.
    DoubleGroupby1,
    /// Mean of all ten metrics per hour and host over twelve hours.
    DoubleGroupbyAll,
    /// Max of all ten metrics per hour for eight hosts over eight hours.
    CpuMaxAll8,
    /// Every reading of one host over twelve hours with usage_user above 90.
    HighCpu1,
    /// The last reading of every host.
    Lastpoint,
    /// The last five per-minute maxima of one metric before a random time.
    GroupbyOrderbyLimit,
}

impl QueryKind {
    /// Every kind, in TSBS's order.
    pub const ALL: [QueryKind; 8] = [
        QueryKind::SingleGroupby111,
        QueryKind::SingleGroupby581,
        QueryKind::DoubleGroupby1,
        QueryKind::DoubleGroupbyAll,
        QueryKind::CpuMaxAll8,
        QueryKind::HighCpu1,
        QueryKind::Lastpoint,
        QueryKind::GroupbyOrderbyLimit,
    ];

    /// TSBS's name for it.
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::SingleGroupby111 => "single-groupby-1-1-1",
            QueryKind::SingleGroupby581 => "single-groupby-5-8-1",
            QueryKind::DoubleGroupby1 => "double-groupby-1",
            QueryKind::DoubleGroupbyAll => "double-groupby-all",
            QueryKind::CpuMaxAll8 => "cpu-max-all-8",
            QueryKind::HighCpu1 => "high-cpu-1",
            QueryKind::Lastpoint => "lastpoint",
            QueryKind::GroupbyOrderbyLimit => "groupby-orderby-limit",
        }
    }

    /// The kind TSBS calls `name`.
    pub fn from_name(name: &str) -> Option<QueryKind> {
        QueryKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// How many hosts, metrics and hours of data the query reads
    /// (`None` hours: all of them).
    fn shape(self) -> (Option<usize>, usize, Option<i64>) {
        match self {
            QueryKind::SingleGroupby111 => (Some(1), 1, Some(1)),
            QueryKind::SingleGroupby581 => (Some(8), 5, Some(1)),
            QueryKind::DoubleGroupby1 => (None, 1, Some(12)),
            QueryKind::DoubleGroupbyAll => (None, 10, Some(12)),
            QueryKind::CpuMaxAll8 => (Some(8), 10, Some(8)),
            QueryKind::HighCpu1 => (Some(1), 10, Some(12)),
            QueryKind::Lastpoint => (None, 10, None),
            QueryKind::GroupbyOrderbyLimit => (None, 1, None),
        }
    }
}

/// The random part of one query: which hosts and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParams {
    /// Host indexes (`host_<i>`); empty for all hosts.
    pub hosts: Vec<usize>,
    /// Window start and end (ns, end exclusive); for groupby-orderby-limit
    /// only `end` counts.
    pub start_ns: i64,
    /// See `start_ns`.
    pub end_ns: i64,
}

/// Draws query parameters for a data set, TSBS style.
#[derive(Debug)]
pub struct QueryGenerator {
    data: CpuOnly,
    rng: SmallRng,
}

impl QueryGenerator {
    /// Parameters for queries over `data`, from `seed`.
    pub fn new(data: CpuOnly, seed: u64) -> Self {
        QueryGenerator {
            data,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Parameters for one query of `kind`.
    pub fn params(&mut self, kind: QueryKind) -> QueryParams {
        let (hosts, _, hours) = kind.shape();
        let first = self.data.start_ns;
        let end = self.data.last_timestamp_ns().map_or(first, |t| t + 1);
        let hosts = match hosts {
            Some(n) => {
                let n = n.min(self.data.hosts);
                let mut picked = sample(&mut self.rng, self.data.hosts, n).into_vec();
                picked.sort_unstable();
                picked
            }
            None => Vec::new(),
        };
        let (start_ns, end_ns) = match hours {
            Some(h) => {
                let span = h * HOUR_NS;
                let latest_start = (end - span).max(first);
                // TSBS draws window starts on whole seconds.
                let start = self.rng.gen_range(first..=latest_start);
                let start = start - start.rem_euclid(1_000_000_000);
                (start, start + span)
            }
            None if kind == QueryKind::GroupbyOrderbyLimit => {
                (first, self.rng.gen_range(first..=end))
            }
            None => (first, end),
        };
        QueryParams {
            hosts,
            start_ns,
            end_ns,
        }
    }
}

/// The SQL weir runs for `kind` with `params`. lastpoint reads weir's
/// `last_rows('cpu')`, the latest row of every series kept in memory, as
/// InfluxQL asks for the last point of each series; in this data set a
/// hostname is one series, so it is the same question as
/// `SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC`,
/// which reads every row.
pub fn sql(kind: QueryKind, params: &QueryParams) -> String {
    let (_, metrics, _) = kind.shape();
    let fields = &FIELD_KEYS[..metrics];
    let hosts = params
        .hosts
        .iter()
        .map(|h| format!("'host_{h}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let window = format!(
        "time >= '{}' AND time < '{}'",
        rfc3339(params.start_ns),
        rfc3339(params.end_ns)
    );
    let aggregates = |f: &str| {
        fields
            .iter()
            .map(|m| format!("{f}({m}) AS {f}_{m}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        QueryKind::SingleGroupby111 | QueryKind::SingleGroupby581 => format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS minute, {} FROM cpu \
             WHERE hostname IN ({hosts}) AND {window} GROUP BY 1 ORDER BY 1",
            aggregates("max")
        ),
        QueryKind::DoubleGroupby1 | QueryKind::DoubleGroupbyAll => format!(
            "SELECT date_bin(INTERVAL '1 hour', time) AS hour, hostname, {} FROM cpu \
             WHERE {window} GROUP BY 1, 2 ORDER BY 1, 2",
            aggregates("avg")
        ),
        QueryKind::CpuMaxAll8 => format!(
            "SELECT date_bin(INTERVAL '1 hour', time) AS hour, {} FROM cpu \
             WHERE hostname IN ({hosts}) AND {window} GROUP BY 1 ORDER BY 1",
            aggregates("max")
        ),
        QueryKind::HighCpu1 => format!(
            "SELECT * FROM cpu WHERE usage_user > 90 AND hostname IN ({hosts}) AND {window}"
        ),
        QueryKind::Lastpoint => {
            "SELECT * FROM last_rows('cpu') ORDER BY hostname".to_owned()
        }
        QueryKind::GroupbyOrderbyLimit => format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(usage_user) AS max_usage_user \
             FROM cpu WHERE time < '{}' GROUP BY 1 ORDER BY 1 DESC LIMIT 5",
            rfc3339(params.end_ns)
        ),
    }
}

/// The InfluxQL that InfluxDB 1.x runs for `kind` with `params`, over
/// measurement `cpu` (TSBS's `databases/influx/devops.go`).
///
/// Two kinds deviate from TSBS's InfluxQL so that InfluxDB answers the
/// question the SQL and MetricsQL forms ask:
/// * cpu-max-all-8 groups by `time(1h)`: TSBS's InfluxQL groups by
///   `time(1m)`, although its own description and every other TSBS
///   generator take hourly maxima;
/// * groupby-orderby-limit adds `order by time desc` (the SQL form's
///   `ORDER BY 1 DESC`) and `fill(none)` (SQL emits no empty minutes): without
///   them InfluxDB returns the first five minutes of the data, not the last
///   five before the random end.
pub fn influxql(kind: QueryKind, params: &QueryParams) -> String {
    let (_, metrics, _) = kind.shape();
    let fields = &FIELD_KEYS[..metrics];
    let hosts = params
        .hosts
        .iter()
        .map(|h| format!("hostname = 'host_{h}'"))
        .collect::<Vec<_>>()
        .join(" or ");
    let window = format!(
        "time >= '{}' and time < '{}'",
        rfc3339(params.start_ns),
        rfc3339(params.end_ns)
    );
    let aggregates = |f: &str, sep: &str| {
        fields
            .iter()
            .map(|m| format!("{f}({m})"))
            .collect::<Vec<_>>()
            .join(sep)
    };
    match kind {
        QueryKind::SingleGroupby111 | QueryKind::SingleGroupby581 => format!(
            "SELECT {} from cpu where ({hosts}) and {window} group by time(1m)",
            aggregates("max", ", ")
        ),
        QueryKind::DoubleGroupby1 | QueryKind::DoubleGroupbyAll => format!(
            "SELECT {} from cpu where {window} group by time(1h),hostname",
            aggregates("mean", ", ")
        ),
        QueryKind::CpuMaxAll8 => format!(
            "SELECT {} from cpu where ({hosts}) and {window} group by time(1h)",
            aggregates("max", ",")
        ),
        QueryKind::HighCpu1 => {
            format!("SELECT * from cpu where usage_user > 90.0 and ({hosts}) and {window}")
        }
        QueryKind::Lastpoint => {
            "SELECT * from cpu group by \"hostname\" order by time desc limit 1".to_owned()
        }
        QueryKind::GroupbyOrderbyLimit => format!(
            "SELECT max(usage_user) from cpu where time < '{}' \
             group by time(1m) fill(none) order by time desc limit 5",
            rfc3339(params.end_ns)
        ),
    }
}

/// A VictoriaMetrics range query: `/api/v1/query_range?query=…&start=…&end=…&step=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeQuery {
    /// The MetricsQL expression.
    pub query: String,
    /// First evaluation time, in whole seconds since the epoch.
    pub start: i64,
    /// Last evaluation time, in whole seconds since the epoch.
    pub end: i64,
    /// Seconds between evaluations.
    pub step: i64,
}

/// The MetricsQL range query that VictoriaMetrics runs for `kind` with
/// `params` (TSBS's `databases/victoriametrics/devops.go`), or `None` for
/// the kinds TSBS does not express in PromQL: high-cpu-1, lastpoint and
/// groupby-orderby-limit.
pub fn metricsql(kind: QueryKind, params: &QueryParams) -> Option<RangeQuery> {
    let (_, metrics, _) = kind.shape();
    let fields = &FIELD_KEYS[..metrics];
    let hosts: Vec<String> = params.hosts.iter().map(|h| format!("host_{h}")).collect();
    // TSBS's getSelectClause: one metric by name, several by a regex on
    // __name__; one host by equality, several by a regex.
    let host_matcher = match hosts.as_slice() {
        [] => String::new(),
        [one] => format!("hostname='{one}'"),
        many => format!("hostname=~'{}'", many.join("|")),
    };
    let selector = match fields {
        [one] => format!("cpu_{one}{{{host_matcher}}}"),
        many if host_matcher.is_empty() => format!("{{__name__=~'cpu_({})'}}", many.join("|")),
        many => format!("{{__name__=~'cpu_({})', {host_matcher}}}", many.join("|")),
    };
    let (query, step) = match kind {
        QueryKind::SingleGroupby111 | QueryKind::SingleGroupby581 => (
            format!("max(max_over_time({selector}[1m])) by (__name__)"),
            60,
        ),
        QueryKind::DoubleGroupby1 | QueryKind::DoubleGroupbyAll => (
            format!("avg(avg_over_time({selector}[1h])) by (__name__, hostname)"),
            3600,
        ),
        QueryKind::CpuMaxAll8 => (
            format!("max(max_over_time({selector}[1h])) by (__name__)"),
            3600,
        ),
        QueryKind::HighCpu1 | QueryKind::Lastpoint | QueryKind::GroupbyOrderbyLimit => return None,
    };
    Some(RangeQuery {
        query,
        start: params.start_ns.div_euclid(1_000_000_000),
        end: params.end_ns.div_euclid(1_000_000_000),
        step,
    })
}

/// `ns` since the epoch as an RFC 3339 UTC timestamp with nanoseconds.
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(CpuOnly::DEFAULT_START_NS + 3_600_000_000_001),
            "2016-01-01T01:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn windows_lie_inside_the_data_and_hosts_are_distinct() {
        let data = CpuOnly::new(100, 24, 1);
        let mut queries = QueryGenerator::new(data, 7);
        for kind in QueryKind::ALL {
            for _ in 0..50 {
                let p = queries.params(kind);
                assert!(p.start_ns >= data.start_ns, "{kind:?} {p:?}");
                assert!(
                    p.end_ns <= data.last_timestamp_ns().unwrap() + 1,
                    "{kind:?} {p:?}"
                );
                let mut hosts = p.hosts.clone();
                hosts.dedup();
                assert_eq!(hosts.len(), p.hosts.len());
                assert!(p.hosts.iter().all(|&h| h < 100));
                assert!(!sql(kind, &p).is_empty());
            }
        }
        assert_eq!(
            QueryKind::from_name("high-cpu-1"),
            Some(QueryKind::HighCpu1)
        );
    }

    fn params(hosts: &[usize], start_ns: i64, end_ns: i64) -> QueryParams {
        QueryParams {
            hosts: hosts.to_vec(),
            start_ns,
            end_ns,
        }
    }

    const T0: i64 = CpuOnly::DEFAULT_START_NS;

    #[test]
    fn influxql_has_tsbs_shapes() {
        let hour = params(&[3], T0 + 7 * HOUR_NS, T0 + 8 * HOUR_NS);
        assert_eq!(
            influxql(QueryKind::SingleGroupby111, &hour),
            "SELECT max(usage_user) from cpu where (hostname = 'host_3') \
             and time >= '2016-01-01T07:00:00.000000000Z' and time < '2016-01-01T08:00:00.000000000Z' \
             group by time(1m)"
        );
        let eight = params(&[0, 1, 2, 3, 4, 5, 6, 99], T0, T0 + HOUR_NS);
        let q = influxql(QueryKind::SingleGroupby581, &eight);
        assert!(q.starts_with(
            "SELECT max(usage_user), max(usage_system), max(usage_idle), max(usage_nice), \
             max(usage_iowait) from cpu where (hostname = 'host_0' or hostname = 'host_1' or "
        ));
        assert_eq!(q.matches("hostname = ").count(), 8);
        assert!(q.contains("hostname = 'host_99')"));
        let q = influxql(QueryKind::CpuMaxAll8, &eight);
        assert_eq!(q.matches("max(").count(), 10);
        assert!(q.ends_with("group by time(1h)"), "{q}");

        let all = params(&[], T0, T0 + 12 * HOUR_NS);
        let q = influxql(QueryKind::DoubleGroupby1, &all);
        assert_eq!(
            q,
            "SELECT mean(usage_user) from cpu where time >= '2016-01-01T00:00:00.000000000Z' \
             and time < '2016-01-01T12:00:00.000000000Z' group by time(1h),hostname"
        );
        let q = influxql(QueryKind::DoubleGroupbyAll, &all);
        assert_eq!(q.matches("mean(").count(), 10);
        assert!(q.contains("mean(usage_guest_nice)"));

        let q = influxql(QueryKind::HighCpu1, &params(&[42], T0, T0 + 12 * HOUR_NS));
        assert!(
            q.starts_with(
                "SELECT * from cpu where usage_user > 90.0 and (hostname = 'host_42') and time >= "
            ),
            "{q}"
        );
        assert_eq!(
            influxql(QueryKind::Lastpoint, &all),
            "SELECT * from cpu group by \"hostname\" order by time desc limit 1"
        );
        assert_eq!(
            influxql(
                QueryKind::GroupbyOrderbyLimit,
                &params(&[], T0, T0 + 5 * HOUR_NS)
            ),
            "SELECT max(usage_user) from cpu where time < '2016-01-01T05:00:00.000000000Z' \
             group by time(1m) fill(none) order by time desc limit 5"
        );
    }

    #[test]
    fn metricsql_has_tsbs_shapes_and_windows() {
        let hour = params(&[3], T0 + 7 * HOUR_NS, T0 + 8 * HOUR_NS);
        let q = metricsql(QueryKind::SingleGroupby111, &hour).unwrap();
        assert_eq!(
            q,
            RangeQuery {
                query: "max(max_over_time(cpu_usage_user{hostname='host_3'}[1m])) by (__name__)"
                    .into(),
                start: T0 / 1_000_000_000 + 7 * 3600,
                end: T0 / 1_000_000_000 + 8 * 3600,
                step: 60,
            }
        );
        let eight = params(&[0, 1, 2, 3, 4, 5, 6, 99], T0, T0 + HOUR_NS);
        let q = metricsql(QueryKind::SingleGroupby581, &eight).unwrap();
        assert_eq!(
            q.query,
            "max(max_over_time({__name__=~'cpu_(usage_user|usage_system|usage_idle|usage_nice|usage_iowait)', \
             hostname=~'host_0|host_1|host_2|host_3|host_4|host_5|host_6|host_99'}[1m])) by (__name__)"
        );
        let q = metricsql(QueryKind::CpuMaxAll8, &eight).unwrap();
        assert!(q
            .query
            .starts_with("max(max_over_time({__name__=~'cpu_(usage_user|"));
        assert!(q.query.contains("|usage_guest_nice)', hostname=~'host_0|"));
        assert!(q.query.ends_with("[1h])) by (__name__)"));
        assert_eq!(q.step, 3600);

        let all = params(&[], T0, T0 + 12 * HOUR_NS);
        let q = metricsql(QueryKind::DoubleGroupby1, &all).unwrap();
        assert_eq!(
            q.query,
            "avg(avg_over_time(cpu_usage_user{}[1h])) by (__name__, hostname)"
        );
        assert_eq!((q.end - q.start, q.step), (12 * 3600, 3600));
        let q = metricsql(QueryKind::DoubleGroupbyAll, &all).unwrap();
        assert_eq!(q.query.matches('|').count(), 9);
        assert!(q
            .query
            .starts_with("avg(avg_over_time({__name__=~'cpu_(usage_user|"));

        for kind in [
            QueryKind::HighCpu1,
            QueryKind::Lastpoint,
            QueryKind::GroupbyOrderbyLimit,
        ] {
            assert_eq!(metricsql(kind, &all), None, "{kind:?}");
        }
    }

    #[test]
    fn every_language_asks_for_the_same_hosts_and_window() {
        let data = CpuOnly::new(100, 24, 1);
        let mut queries = QueryGenerator::new(data, 3);
        for kind in QueryKind::ALL {
            for _ in 0..20 {
                let p = queries.params(kind);
                let text = influxql(kind, &p);
                let sql_text = sql(kind, &p);
                for h in &p.hosts {
                    let host = format!("'host_{h}'");
                    assert!(text.contains(&host), "{text}");
                    assert!(sql_text.contains(&host), "{sql_text}");
                }
                assert_eq!(text.matches("hostname = ").count(), p.hosts.len());
                if kind != QueryKind::Lastpoint {
                    let end = format!("time < '{}'", rfc3339(p.end_ns));
                    assert!(text.contains(&end), "{text}");
                    assert!(sql_text.contains(&end), "{sql_text}");
                }
                if let Some(range) = metricsql(kind, &p) {
                    assert_eq!(range.start * 1_000_000_000, p.start_ns, "{kind:?}");
                    assert_eq!(range.end * 1_000_000_000, p.end_ns, "{kind:?}");
                    let hours = kind.shape().2.unwrap();
                    assert_eq!(range.end - range.start, hours * 3600);
                    for h in &p.hosts {
                        assert!(range.query.contains(&format!("host_{h}")));
                    }
                    assert_eq!(range.query.matches("host_").count(), p.hosts.len());
                }
            }
        }
    }
}
