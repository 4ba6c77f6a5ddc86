//! weir's line-protocol parser side by side with `influxdb-line-protocol`
//! (the parser of InfluxDB 3 / IOx) on the same bytes.
//!
//! Two corpora of a few MB each: the TSBS cpu-only data set (one regular
//! shape, integers only) and the mixed corpus (every value type, escapes,
//! strings). Per corpus one group measures bytes per second for `weir` and
//! `influxdb_line_protocol`; a third group measures the TSBS corpus in
//! lines (points) per second, the unit TSBS load results use.
//!
//! Both sides do the same work: parse every line into its typed form,
//! count the lines parsed without error and their fields. The peer takes
//! `&str`, so its side includes the UTF-8 check of the input (weir takes
//! bytes and checks UTF-8 itself, once per batch).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use weir_bench::mixed::mixed_corpus;
use weir_bench::tsbs::CpuOnly;

/// The TSBS corpus: 10 hosts × 2 000 steps (5.5 h at 10 s) = 20 000 lines,
/// 6.9 MB.
const TSBS: CpuOnly = CpuOnly {
    hosts: 10,
    steps: 2_000,
    start_ns: CpuOnly::DEFAULT_START_NS,
    interval_ns: CpuOnly::DEFAULT_INTERVAL_NS,
    seed: 1,
};
/// Points in the mixed corpus: about as many bytes as the TSBS corpus
/// (6.8 MB against 6.9 MB; a mixed point averages 270 bytes, a TSBS one 346).
const MIXED_LINES: usize = 25_000;
const MIXED_SEED: u64 = 1;

/// Parses `input` with weir's `lineproto`: (lines parsed, fields in them).
fn weir(input: &[u8]) -> (usize, usize) {
    let (mut lines, mut fields) = (0, 0);
    for line in lineproto::parse_lines(input).flatten() {
        lines += 1;
        fields += line.fields.len();
    }
    (lines, fields)
}

/// Parses `input` with `influxdb-line-protocol`, UTF-8 check included:
/// (lines parsed, fields in them).
fn influxdb_line_protocol(input: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(input).expect("the corpora are UTF-8");
    let (mut lines, mut fields) = (0, 0);
    for line in influxdb_line_protocol::parse_lines(text).flatten() {
        lines += 1;
        fields += line.field_set.len();
    }
    (lines, fields)
}

/// Asserts that both parsers accept all `lines` points of `input` and
/// reports its size; returns the number of lines.
fn check(name: &str, input: &[u8], lines: usize) -> u64 {
    for (i, line) in lineproto::parse_lines(input).enumerate() {
        if let Err(e) = line {
            panic!("lineproto rejects point {i} of the {name} corpus: {e}");
        }
    }
    let text = std::str::from_utf8(input).expect("the corpora are UTF-8");
    for (i, line) in influxdb_line_protocol::parse_lines(text).enumerate() {
        if let Err(e) = line {
            panic!("influxdb-line-protocol rejects point {i} of the {name} corpus: {e}");
        }
    }
    let ours = weir(input);
    let theirs = influxdb_line_protocol(input);
    assert_eq!(
        ours.0, lines,
        "lineproto parsed {} of {lines} points of {name}",
        ours.0
    );
    assert_eq!(ours, theirs, "the parsers disagree on {name}");
    eprintln!(
        "corpus {name}: {} bytes, {lines} lines, {} fields",
        input.len(),
        ours.1
    );
    u64::try_from(lines).expect("line count fits in u64")
}

/// Criterion settings for one comparison: iterations take tens of ms, so
/// few samples over a few seconds each keep the whole run near a minute.
fn configure(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    secs: u64,
) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(secs));
}

/// Compares both parsers on `input` in one group.
fn compare(c: &mut Criterion, group: &str, input: &[u8], throughput: Throughput, secs: u64) {
    let mut group = c.benchmark_group(group);
    configure(&mut group, secs);
    group.throughput(throughput);
    group.bench_function("weir", |b| b.iter(|| weir(black_box(input))));
    group.bench_function("influxdb_line_protocol", |b| {
        b.iter(|| influxdb_line_protocol(black_box(input)))
    });
    group.finish();
}

/// The TSBS cpu-only corpus, in bytes and in lines per second.
fn tsbs_cpu(c: &mut Criterion) {
    let input = TSBS.generate();
    let lines = check("tsbs_cpu", &input, TSBS.points());
    let bytes = u64::try_from(input.len()).expect("corpus size fits in u64");
    compare(c, "parse_tsbs_cpu", &input, Throughput::Bytes(bytes), 6);
    compare(
        c,
        "parse_tsbs_cpu_lines",
        &input,
        Throughput::Elements(lines),
        3,
    );
}

/// The mixed corpus, in bytes per second.
fn mixed(c: &mut Criterion) {
    let input = mixed_corpus(MIXED_LINES, MIXED_SEED);
    check("mixed", &input, MIXED_LINES);
    let bytes = u64::try_from(input.len()).expect("corpus size fits in u64");
    compare(c, "parse_mixed", &input, Throughput::Bytes(bytes), 6);
}

/// What `criterion_group!` and `criterion_main!` would expand to, written
/// out so that no undocumented public function is generated.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    tsbs_cpu(&mut c);
    mixed(&mut c);
    c.final_summary();
}
