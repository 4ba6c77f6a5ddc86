//! The TSBS "devops cpu-only" data set, generated deterministically.
//!
//! The [Time Series Benchmark Suite](https://github.com/timescale/tsbs)'s
//! `cpu-only` use case simulates a fleet of servers, each reporting one `cpu`
//! point every 10 s with ten tags that describe the host and ten integer
//! percentages. Its standard scale is 100 hosts over 24 hours: 8 640 points
//! per host, 864 000 points ([`CpuOnly::default`]); with ten fields each that
//! is 8.64 M values. The lines look exactly as TSBS writes them for InfluxDB:
//!
//! ```text
//! cpu,hostname=host_0,region=eu-central-1,datacenter=eu-central-1a,rack=6,os=Ubuntu15.10,arch=x86,team=SF,service=19,service_version=1,service_environment=test usage_user=58i,usage_system=2i,usage_idle=24i,usage_nice=61i,usage_iowait=22i,usage_irq=63i,usage_softirq=6i,usage_steal=44i,usage_guest=80i,usage_guest_nice=38i 1451606400000000000
//! ```
//!
//! The values are not TSBS's own (its Go random source cannot be
//! reproduced), but they are made the same way: each field is a random walk
//! with unit-variance steps, clamped to `0..=100`, from a uniform start.
//! Everything is drawn from one generator seeded with [`CpuOnly::seed`], so a
//! given configuration always yields the same bytes, however it is split
//! into batches.
//!
//! [`CpuOnlyStream`] writes the points in time order (every host at `t0`,
//! then every host at `t1`, …) into a caller's buffer, so a loader can send
//! the full data set batch by batch without ever holding it in memory:
//!
//! ```
//! use weir_bench::tsbs::CpuOnly;
//!
//! let config = CpuOnly::new(10, 1, 7); // 10 hosts, 1 hour, seed 7
//! assert_eq!(config.points(), 10 * 360);
//! let mut stream = config.stream();
//! let mut batch = Vec::new();
//! let mut sent = 0;
//! while stream.write_points(&mut batch, 1000) > 0 {
//!     sent += batch.iter().filter(|&&b| b == b'\n').count();
//!     batch.clear(); // … after sending it
//! }
//! assert_eq!(sent, config.points());
//! ```

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The measurement every point belongs to.
pub const MEASUREMENT: &str = "cpu";

/// The tag keys of every point, in the order they are written.
pub const TAG_KEYS: [&str; 10] = [
    "hostname",
    "region",
    "datacenter",
    "rack",
    "os",
    "arch",
    "team",
    "service",
    "service_version",
    "service_environment",
];

/// The field keys of every point, in the order they are written; every
/// field is an integer percentage in `0..=100`.
pub const FIELD_KEYS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

/// TSBS's cloud regions with their datacenters (`pkg/data/usecases/devops/host.go`).
const REGIONS: [(&str, &[&str]); 9] = [
    (
        "us-east-1",
        &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    ),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
];
const OS: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCH: [&str; 2] = ["x64", "x86"];
const TEAM: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const SERVICE_ENVIRONMENT: [&str; 3] = ["production", "staging", "test"];
const RACKS: u32 = 100;
const SERVICES: u32 = 20;
const SERVICE_VERSIONS: u32 = 2;

/// Half-width of the uniform random-walk step: `√3` gives the step a
/// variance of 1, like TSBS's normal steps with standard deviation 1.
const STEP: f64 = 1.732_050_807_568_877_2;

/// Which slice of the cpu-only data set to generate.
///
/// [`CpuOnly::default`] is TSBS's standard scale: 100 hosts, 24 hours at
/// 10 s from 2016-01-01T00:00:00Z, seed 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuOnly {
    /// Number of simulated hosts, `host_0` to `host_<hosts-1>`.
    pub hosts: usize,
    /// Number of timestamps; each host writes one point per timestamp.
    pub steps: usize,
    /// The first timestamp, in nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// Time between two timestamps, in nanoseconds.
    pub interval_ns: i64,
    /// Seed of the random generator for tags and values.
    pub seed: u64,
}

impl CpuOnly {
    /// TSBS's default start: 2016-01-01T00:00:00Z in nanoseconds.
    pub const DEFAULT_START_NS: i64 = 1_451_606_400_000_000_000;
    /// TSBS's default interval: 10 s in nanoseconds.
    pub const DEFAULT_INTERVAL_NS: i64 = 10_000_000_000;

    /// `hosts` hosts over `hours` hours at the default start and interval.
    ///
    /// ```
    /// use weir_bench::tsbs::CpuOnly;
    /// assert_eq!(CpuOnly::new(100, 24, 1), CpuOnly::default());
    /// assert_eq!(CpuOnly::default().points(), 864_000);
    /// ```
    pub fn new(hosts: usize, hours: u32, seed: u64) -> Self {
        let steps_per_hour = 3_600_000_000_000 / Self::DEFAULT_INTERVAL_NS;
        CpuOnly {
            hosts,
            // Widening: both factors are far below usize::MAX on 64-bit.
            steps: hours as usize * steps_per_hour as usize,
            start_ns: Self::DEFAULT_START_NS,
            interval_ns: Self::DEFAULT_INTERVAL_NS,
            seed,
        }
    }

    /// Number of points (lines) in the data set: hosts × steps.
    pub fn points(&self) -> usize {
        self.hosts.saturating_mul(self.steps)
    }

    /// The timestamp of the last point, in nanoseconds, or `None` if the
    /// data set is empty.
    pub fn last_timestamp_ns(&self) -> Option<i64> {
        let last = i64::try_from(self.steps.checked_sub(1)?).ok()?;
        self.start_ns
            .checked_add(self.interval_ns.checked_mul(last)?)
    }

    /// A stream over the data set's points, positioned at the first one.
    pub fn stream(&self) -> CpuOnlyStream {
        CpuOnlyStream::new(self)
    }

    /// The whole data set as one buffer of newline-terminated lines; for
    /// small configurations (benchmark inputs, tests). Use
    /// [`CpuOnly::stream`] for the full scale.
    pub fn generate(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.stream().write_points(&mut out, usize::MAX);
        out
    }
}

impl Default for CpuOnly {
    fn default() -> Self {
        CpuOnly::new(100, 24, 1)
    }
}

/// Writes the points of a [`CpuOnly`] data set in time order, in batches of
/// the caller's choosing. Made by [`CpuOnly::stream`].
///
/// The bytes written do not depend on how the points are split into
/// batches.
#[derive(Debug, Clone)]
pub struct CpuOnlyStream {
    /// Per host: `cpu,hostname=…,service_environment=… ` with the
    /// separating space, rendered once.
    series_keys: Vec<Vec<u8>>,
    /// Per host: the current position of each field's random walk.
    walks: Vec<[f64; 10]>,
    rng: SmallRng,
    start_ns: i64,
    interval_ns: i64,
    /// Points per timestamp (= hosts).
    hosts: usize,
    /// Index of the next point to write.
    next: usize,
    /// Number of points in the data set.
    total: usize,
    /// The rendered timestamp of the current step, with a leading space and
    /// the trailing newline.
    timestamp: Vec<u8>,
}

impl CpuOnlyStream {
    fn new(config: &CpuOnly) -> Self {
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let series_keys = (0..config.hosts).map(|i| series_key(i, &mut rng)).collect();
        let walks = (0..config.hosts)
            .map(|_| std::array::from_fn(|_| rng.gen_range(0.0..100.0)))
            .collect();
        CpuOnlyStream {
            series_keys,
            walks,
            rng,
            start_ns: config.start_ns,
            interval_ns: config.interval_ns,
            hosts: config.hosts,
            next: 0,
            total: config.points(),
            timestamp: Vec::with_capacity(22),
        }
    }

    /// Number of points not yet written.
    pub fn remaining(&self) -> usize {
        self.total - self.next
    }

    /// Appends up to `max_points` newline-terminated lines to `out` and
    /// returns how many it wrote: fewer than `max_points` only at the end of
    /// the data set, 0 once it is exhausted.
    pub fn write_points(&mut self, out: &mut Vec<u8>, max_points: usize) -> usize {
        let n = max_points.min(self.remaining());
        // About 350 bytes per line.
        out.reserve(n.saturating_mul(350));
        for _ in 0..n {
            self.write_next(out);
        }
        n
    }

    fn write_next(&mut self, out: &mut Vec<u8>) {
        let host = self.next % self.hosts;
        if host == 0 {
            let step = (self.next / self.hosts) as i64;
            let ts = self
                .start_ns
                .saturating_add(self.interval_ns.saturating_mul(step));
            self.timestamp.clear();
            self.timestamp.push(b' ');
            self.timestamp
                .extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
            self.timestamp.push(b'\n');
        }
        out.extend_from_slice(&self.series_keys[host]);
        let walk = &mut self.walks[host];
        for (i, (key, value)) in FIELD_KEYS.iter().zip(walk.iter_mut()).enumerate() {
            *value = (*value + self.rng.gen_range(-STEP..STEP)).clamp(0.0, 100.0);
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            // Truncation, as TSBS converts its float walk to an integer;
            // the clamp keeps the result in 0..=100.
            push_percent(out, *value as u8);
            out.push(b'i');
        }
        out.extend_from_slice(&self.timestamp);
        self.next += 1;
    }
}

/// Draws host `index`'s tags and renders its series key with the space
/// that separates it from the fields.
fn series_key(index: usize, rng: &mut SmallRng) -> Vec<u8> {
    let (region, datacenters) = REGIONS[rng.gen_range(0..REGIONS.len())];
    let datacenter = datacenters[rng.gen_range(0..datacenters.len())];
    let rack = rng.gen_range(0..RACKS);
    let os = OS[rng.gen_range(0..OS.len())];
    let arch = ARCH[rng.gen_range(0..ARCH.len())];
    let team = TEAM[rng.gen_range(0..TEAM.len())];
    let service = rng.gen_range(0..SERVICES);
    let service_version = rng.gen_range(0..SERVICE_VERSIONS);
    let environment = SERVICE_ENVIRONMENT[rng.gen_range(0..SERVICE_ENVIRONMENT.len())];
    format!(
        "{MEASUREMENT},hostname=host_{index},region={region},datacenter={datacenter},rack={rack},\
         os={os},arch={arch},team={team},service={service},service_version={service_version},\
         service_environment={environment} "
    )
    .into_bytes()
}

/// Appends `v` (at most 100) in decimal.
fn push_percent(out: &mut Vec<u8>, v: u8) {
    if v >= 100 {
        out.extend_from_slice(b"100");
    } else if v >= 10 {
        out.extend_from_slice(&[b'0' + v / 10, b'0' + v % 10]);
    } else {
        out.push(b'0' + v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8]) -> Vec<&str> {
        std::str::from_utf8(data)
            .unwrap()
            .strip_suffix('\n')
            .unwrap()
            .split('\n')
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_different_seed_different_bytes() {
        let a = CpuOnly::new(5, 1, 42).generate();
        let b = CpuOnly::new(5, 1, 42).generate();
        let c = CpuOnly::new(5, 1, 43).generate();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn batch_size_does_not_change_the_bytes() {
        let config = CpuOnly::new(7, 1, 3);
        let whole = config.generate();
        let mut stream = config.stream();
        let mut batched = Vec::new();
        let mut batches = 0;
        while stream.write_points(&mut batched, 13) > 0 {
            batches += 1;
        }
        assert_eq!(batches, config.points().div_ceil(13));
        assert_eq!(stream.remaining(), 0);
        assert_eq!(stream.write_points(&mut batched, 13), 0);
        assert_eq!(batched, whole);
    }

    /// Pins the output of seed 1 so that a change of the generator (or of
    /// `rand`'s `SmallRng`) is noticed: later benchmarks compare runs on this
    /// data.
    #[test]
    fn seed_1_is_stable() {
        let data = CpuOnly::new(2, 1, 1).generate();
        let lines = lines(&data);
        assert_eq!(
            lines[0],
            "cpu,hostname=host_0,region=ap-southeast-2,datacenter=ap-southeast-2a,rack=18,\
             os=Ubuntu16.04LTS,arch=x64,team=NYC,service=14,service_version=1,\
             service_environment=test usage_user=33i,usage_system=99i,usage_idle=48i,\
             usage_nice=93i,usage_iowait=15i,usage_irq=74i,usage_softirq=4i,usage_steal=43i,\
             usage_guest=80i,usage_guest_nice=7i 1451606400000000000"
        );
        assert_eq!(
            lines[lines.len() - 1],
            "cpu,hostname=host_1,region=ap-southeast-1,datacenter=ap-southeast-1b,rack=18,\
             os=Ubuntu16.10,arch=x86,team=CHI,service=3,service_version=1,\
             service_environment=production usage_user=49i,usage_system=48i,usage_idle=66i,\
             usage_nice=18i,usage_iowait=94i,usage_irq=75i,usage_softirq=54i,usage_steal=61i,\
             usage_guest=95i,usage_guest_nice=89i 1451609990000000000"
        );
    }

    #[test]
    fn lines_have_the_tsbs_shape() {
        let config = CpuOnly::new(12, 2, 9);
        let data = config.generate();
        let lines = lines(&data);
        assert_eq!(lines.len(), config.points());
        assert_eq!(lines.len(), 12 * 720);

        let mut previous: Vec<Option<[i64; 10]>> = vec![None; 12];
        for (n, line) in lines.iter().enumerate() {
            let (host, step) = (n % 12, (n / 12) as i64);
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "{line}");

            let mut series = parts[0].split(',');
            assert_eq!(series.next(), Some(MEASUREMENT));
            let tags: Vec<(&str, &str)> = series.map(|t| t.split_once('=').unwrap()).collect();
            let keys: Vec<&str> = tags.iter().map(|(k, _)| *k).collect();
            assert_eq!(keys, TAG_KEYS);
            let tag = |i: usize| tags[i].1;
            assert_eq!(tag(0), format!("host_{host}"));
            let (region, datacenters) = REGIONS.iter().find(|(r, _)| *r == tag(1)).unwrap();
            assert!(datacenters.contains(&tag(2)), "{line}");
            assert!(tag(2).starts_with(region));
            assert!(tag(3).parse::<u32>().unwrap() < RACKS);
            assert!(OS.contains(&tag(4)));
            assert!(ARCH.contains(&tag(5)));
            assert!(TEAM.contains(&tag(6)));
            assert!(tag(7).parse::<u32>().unwrap() < SERVICES);
            assert!(tag(8).parse::<u32>().unwrap() < SERVICE_VERSIONS);
            assert!(SERVICE_ENVIRONMENT.contains(&tag(9)));

            let fields: Vec<(&str, &str)> = parts[1]
                .split(',')
                .map(|f| f.split_once('=').unwrap())
                .collect();
            assert_eq!(fields.len(), 10);
            let mut values = [0i64; 10];
            for (i, (key, value)) in fields.iter().enumerate() {
                assert_eq!(*key, FIELD_KEYS[i]);
                let v: i64 = value.strip_suffix('i').unwrap().parse().unwrap();
                assert!((0..=100).contains(&v), "{line}");
                values[i] = v;
            }
            // A walk with unit-variance steps of at most √3 moves an
            // integer by at most 2 between two points.
            if let Some(before) = previous[host] {
                for (a, b) in before.iter().zip(values) {
                    assert!((a - b).abs() <= 2, "{line}");
                }
            }
            previous[host] = Some(values);

            let ts: i64 = parts[2].parse().unwrap();
            assert_eq!(ts, CpuOnly::DEFAULT_START_NS + step * 10_000_000_000);
        }
        assert_eq!(
            config.last_timestamp_ns(),
            Some(CpuOnly::DEFAULT_START_NS + 719 * 10_000_000_000)
        );
    }

    #[test]
    fn host_tags_are_fixed_per_host() {
        let data = CpuOnly::new(3, 1, 5).generate();
        let lines = lines(&data);
        for host in 0..3 {
            let key = lines[host].split(' ').next().unwrap();
            for line in lines.iter().skip(host).step_by(3) {
                assert_eq!(line.split(' ').next().unwrap(), key);
            }
        }
    }

    #[test]
    fn parses_with_lineproto() {
        let config = CpuOnly::new(4, 1, 11);
        let data = config.generate();
        let mut n = 0;
        for line in lineproto::parse_lines(&data) {
            let line = line.unwrap();
            assert_eq!(line.measurement, MEASUREMENT);
            assert_eq!(line.tags.len(), 10);
            assert_eq!(line.fields.len(), 10);
            for (_, value) in &line.fields {
                assert!(matches!(value, lineproto::FieldValue::Integer(0..=100)));
            }
            n += 1;
        }
        assert_eq!(n, config.points());
    }

    #[test]
    fn empty_configurations() {
        assert_eq!(CpuOnly::new(0, 24, 1).generate(), b"");
        assert_eq!(CpuOnly::new(10, 0, 1).generate(), b"");
        assert_eq!(CpuOnly::new(10, 0, 1).last_timestamp_ns(), None);
    }
}
