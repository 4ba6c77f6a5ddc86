//! The TSBS "devops" queries over the cpu-only data set, as weir SQL.
//!
//! Each query kind takes random parameters the way TSBS draws them (hosts
//! and a time window inside the data set), from a seeded generator, so the
//! same seed asks every system the same questions.

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

/// The SQL weir runs for `kind` with `params`.
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
            "SELECT DISTINCT ON (hostname) * FROM cpu ORDER BY hostname, time DESC".to_owned()
        }
        QueryKind::GroupbyOrderbyLimit => format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(usage_user) AS max_usage_user \
             FROM cpu WHERE time < '{}' GROUP BY 1 ORDER BY 1 DESC LIMIT 5",
            rfc3339(params.end_ns)
        ),
    }
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
}
