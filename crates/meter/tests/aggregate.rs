//! Local aggregation: one row per window and dimension set.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meter::{
    AggregateRow, Aggregator, ConnectionError, ConnectionRecord, Direction, Meter, MeterConfig,
    Phase, DEFAULT_AGGREGATE_WINDOW,
};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[allow(clippy::too_many_arguments)]
fn record(
    ended: u64,
    transport: &str,
    protocol: Option<&str>,
    direction: Direction,
    bytes: (u64, u64),
    dial_ms: Option<u64>,
    rate_avg: f64,
    failed: bool,
) -> ConnectionRecord {
    ConnectionRecord {
        instance: Arc::from("i"),
        id: ended,
        ended_at: at(ended),
        transport: Arc::from(transport),
        protocol: protocol.map(Arc::from),
        peer: Some(Arc::from("p")),
        direction,
        local_addr: None,
        remote_addr: None,
        dial: dial_ms.map(Duration::from_millis),
        ttfb: None,
        duration: Duration::from_secs(1),
        bytes_in: bytes.0,
        bytes_out: bytes.1,
        rate_min: rate_avg,
        rate_max: rate_avg,
        rate_avg,
        error: failed
            .then(|| ConnectionError::io(Phase::Read, &std::io::ErrorKind::ConnectionReset.into())),
    }
}

/// Window starts (in s) at multiples of 300 from 1_700_000_100 on.
const W0: u64 = 1_700_000_100;

fn sample_rows() -> Aggregator {
    assert_eq!(W0 % 300, 0);
    let mut agg = Aggregator::new(DEFAULT_AGGREGATE_WINDOW);
    use Direction::*;
    // Window 0: three tcp/http outbound, one failed; one quic inbound.
    agg.add(&record(
        W0,
        "tcp",
        Some("http"),
        Outbound,
        (100, 10),
        Some(10),
        1000.0,
        false,
    ));
    agg.add(&record(
        W0 + 299,
        "tcp",
        Some("http"),
        Outbound,
        (200, 20),
        Some(30),
        3000.0,
        true,
    ));
    agg.add(&record(
        W0 + 150,
        "tcp",
        Some("http"),
        Outbound,
        (0, 0),
        None,
        0.0,
        false,
    ));
    agg.add(&record(
        W0 + 1,
        "quic",
        None,
        Inbound,
        (5, 5),
        Some(2),
        10.0,
        false,
    ));
    // Window 1: one tcp/http outbound; one tcp/http inbound.
    agg.add(&record(
        W0 + 300,
        "tcp",
        Some("http"),
        Outbound,
        (1, 1),
        Some(20),
        2.0,
        false,
    ));
    agg.add(&record(
        W0 + 599,
        "tcp",
        Some("http"),
        Inbound,
        (7, 7),
        None,
        14.0,
        false,
    ));
    // Window 3 (none in 2).
    agg.add(&record(
        W0 + 900,
        "tcp",
        Some("http"),
        Outbound,
        (9, 9),
        Some(1),
        9.0,
        false,
    ));
    agg
}

fn find<'a>(
    rows: &'a [AggregateRow],
    start: u64,
    transport: &str,
    protocol: &str,
    dir: &str,
) -> &'a AggregateRow {
    rows.iter()
        .find(|r| {
            r.key.window_start == start
                && &*r.key.transport == transport
                && &*r.key.protocol == protocol
                && r.key.direction == dir
        })
        .unwrap_or_else(|| panic!("no row {start} {transport} {protocol} {dir} in {rows:#?}"))
}

#[test]
fn rows_per_window_and_dimension_set() {
    let mut agg = sample_rows();
    let rows = agg.take_all();
    assert_eq!(rows.len(), 5);
    // Oldest first.
    let starts: Vec<u64> = rows.iter().map(|r| r.key.window_start).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted);

    let r = find(&rows, W0, "tcp", "http", "outbound");
    assert_eq!((r.connections, r.errors), (3, 1));
    assert_eq!((r.bytes_in, r.bytes_out), (300, 30));
    // Dial times in µs over the two that timed one.
    assert_eq!(r.dial_us.count, 2);
    assert_eq!((r.dial_us.min, r.dial_us.max), (10_000.0, 30_000.0));
    assert_eq!(r.dial_us.mean(), Some(20_000.0));
    // Rates over the connections that moved bytes (not the empty one).
    assert_eq!(r.rate_bps.count, 2);
    assert_eq!((r.rate_bps.min, r.rate_bps.max), (1000.0, 3000.0));
    assert_eq!(r.rate_bps.mean(), Some(2000.0));

    let q = find(&rows, W0, "quic", "", "inbound");
    assert_eq!((q.connections, q.errors, q.bytes_in), (1, 0, 5));
    assert_eq!(q.dial_us.mean(), Some(2000.0));

    let w1 = find(&rows, W0 + 300, "tcp", "http", "inbound");
    assert_eq!(w1.dial_us.count, 0);
    assert_eq!(w1.dial_us.mean(), None);
    assert_eq!((w1.dial_us.min, w1.dial_us.max), (0.0, 0.0));
    assert_eq!(
        find(&rows, W0 + 900, "tcp", "http", "outbound").connections,
        1
    );

    assert!(agg.take_all().is_empty(), "taken");
}

#[test]
fn take_closed_leaves_the_open_window() {
    let mut agg = sample_rows();
    // At W0 + 450 window 0 is over, window 1 is not.
    let closed = agg.take_closed(at(W0 + 450));
    assert_eq!(closed.len(), 2);
    assert!(closed.iter().all(|r| r.key.window_start == W0));
    assert!(agg.take_closed(at(W0 + 450)).is_empty());
    // The exact end of window 1 closes it.
    let closed = agg.take_closed(at(W0 + 600));
    assert_eq!(closed.len(), 2);
    assert!(closed.iter().all(|r| r.key.window_start == W0 + 300));
    // A late record for a window already handed over starts a new row.
    agg.add(&record(
        W0 + 10,
        "tcp",
        Some("http"),
        Direction::Outbound,
        (1, 1),
        None,
        1.0,
        false,
    ));
    let closed = agg.take_closed(at(W0 + 600));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].connections, 1);
    let rest = agg.take_all();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].key.window_start, W0 + 900);
}

#[test]
fn windows_of_other_lengths_align_to_the_epoch() {
    let mut agg = Aggregator::new(Duration::from_secs(60));
    agg.add(&record(
        W0 + 59,
        "tcp",
        None,
        Direction::Outbound,
        (1, 0),
        None,
        1.0,
        false,
    ));
    agg.add(&record(
        W0 + 60,
        "tcp",
        None,
        Direction::Outbound,
        (1, 0),
        None,
        1.0,
        false,
    ));
    let rows = agg.take_all();
    assert_eq!(
        rows.iter().map(|r| r.key.window_start).collect::<Vec<_>>(),
        [W0, W0 + 60]
    );
    // A zero window is taken as one second.
    let mut agg = Aggregator::new(Duration::ZERO);
    agg.add(&record(
        W0 + 1,
        "tcp",
        None,
        Direction::Outbound,
        (1, 0),
        None,
        1.0,
        false,
    ));
    assert_eq!(agg.take_all()[0].key.window_start, W0 + 1);
}

#[test]
fn real_records_aggregate() {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    for i in 0..10u64 {
        let c = meter
            .connection("tcp")
            .protocol("p")
            .dial_time(Duration::from_millis(i + 1))
            .open();
        std::io::Write::write_all(&mut c.wrap(std::io::sink()), &[0; 100]).unwrap();
    }
    let mut agg = Aggregator::new(DEFAULT_AGGREGATE_WINDOW);
    for r in records.drain() {
        agg.add(&r);
    }
    let rows = agg.take_all();
    let total: u64 = rows.iter().map(|r| r.connections).sum();
    assert_eq!(total, 10);
    let out: u64 = rows.iter().map(|r| r.bytes_out).sum();
    assert_eq!(out, 1000);
    let dial_max = rows.iter().map(|r| r.dial_us.max).fold(0.0, f64::max);
    assert_eq!(dial_max, 10_000.0);
    assert!(rows.iter().all(|r| r.key.direction == "outbound"));
}
