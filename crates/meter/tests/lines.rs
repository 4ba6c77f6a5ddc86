//! Line protocol (feature `lineproto`): what the encoders write parses
//! back with weir's parser, with the documented tags, fields and types.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use lineproto::{parse_lines, FieldValue, Line};
use meter::lines::{encode_aggregate, encode_record, encode_snapshot};
use meter::{
    Aggregator, ConnectionError, ConnectionRecord, Direction, Meter, MeterConfig, Phase,
    DEFAULT_AGGREGATE_WINDOW,
};

fn parse_all(out: &[u8]) -> Vec<Line<'static>> {
    parse_lines(out)
        .map(|l| l.unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(out))))
        .map(Line::into_owned)
        .collect()
}

/// The type name of each field, in line order.
fn types(line: &Line<'_>) -> Vec<(String, &'static str)> {
    line.fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.type_name()))
        .collect()
}

fn tag_keys<'a>(line: &'a Line<'_>) -> Vec<&'a str> {
    line.tags.iter().map(|(k, _)| k.as_ref()).collect()
}

const PEER: &str = "peer with spaces, commas,=equals \\ and \"quotes\"";

fn static_tags() -> Vec<(String, String)> {
    vec![
        ("ingress_country".into(), "NL".into()),
        ("egress_pool".into(), "pool a,b".into()),
        // The meter's own tags win on a clash; empty values are skipped.
        ("transport".into(), "overridden".into()),
        ("version".into(), String::new()),
    ]
}

fn full_record() -> ConnectionRecord {
    ConnectionRecord {
        instance: Arc::from("inst 1"),
        id: 7,
        ended_at: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
        transport: Arc::from("tcp"),
        protocol: Some(Arc::from("/http/1.1")),
        peer: Some(Arc::from(PEER)),
        direction: Direction::Inbound,
        local_addr: Some("10.0.0.0".parse().unwrap()),
        remote_addr: Some("2001:db8:1::".parse().unwrap()),
        dial: Some(Duration::from_micros(1500)),
        ttfb: Some(Duration::from_nanos(2_500_999)),
        duration: Duration::from_secs(3),
        bytes_in: u64::MAX,
        bytes_out: 42,
        rate_min: 1.5,
        rate_max: 1e12,
        rate_avg: 0.0,
        error: Some(ConnectionError {
            class: "reset".into(),
            phase: Phase::Read,
            detail: "connection reset by \"peer\"\nsecond line \\".into(),
        }),
    }
}

#[test]
fn a_record_line_has_the_documented_tags_and_fields() {
    let mut out = Vec::new();
    encode_record(&full_record(), &static_tags(), &mut out).unwrap();
    let lines = parse_all(&out);
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(l.measurement, "meter_connection");
    assert_eq!(
        tag_keys(l),
        [
            "instance",
            "transport",
            "protocol",
            "peer",
            "direction",
            "local_addr",
            "remote_addr",
            "error",
            "phase",
            "ingress_country",
            "egress_pool"
        ]
    );
    assert_eq!(l.tag("instance"), Some("inst 1"));
    assert_eq!(l.tag("transport"), Some("tcp"), "the meter's tag wins");
    assert_eq!(l.tag("peer"), Some(PEER), "round-trips through escaping");
    assert_eq!(l.tag("direction"), Some("inbound"));
    assert_eq!(l.tag("local_addr"), Some("10.0.0.0"));
    assert_eq!(l.tag("remote_addr"), Some("2001:db8:1::"));
    assert_eq!(l.tag("error"), Some("reset"));
    assert_eq!(l.tag("phase"), Some("read"));
    assert_eq!(l.tag("egress_pool"), Some("pool a,b"));
    assert_eq!(l.tag("version"), None);
    assert_eq!(
        types(l),
        [
            ("dial_us", "integer"),
            ("ttfb_us", "integer"),
            ("duration_us", "integer"),
            ("bytes_in", "unsigned integer"),
            ("bytes_out", "unsigned integer"),
            ("rate_min_bps", "float"),
            ("rate_max_bps", "float"),
            ("rate_avg_bps", "float"),
            ("ok", "boolean"),
            ("error_detail", "string"),
        ]
        .map(|(k, t)| (k.to_owned(), t))
    );
    assert_eq!(l.field("dial_us"), Some(&FieldValue::Integer(1500)));
    assert_eq!(l.field("ttfb_us"), Some(&FieldValue::Integer(2500)));
    assert_eq!(
        l.field("duration_us"),
        Some(&FieldValue::Integer(3_000_000))
    );
    assert_eq!(l.field("bytes_in"), Some(&FieldValue::UInteger(u64::MAX)));
    assert_eq!(l.field("rate_max_bps"), Some(&FieldValue::Float(1e12)));
    assert_eq!(l.field("ok"), Some(&FieldValue::Boolean(false)));
    assert_eq!(
        l.field("error_detail"),
        Some(&FieldValue::String(
            "connection reset by \"peer\"\nsecond line \\".into()
        ))
    );
    assert_eq!(l.timestamp, Some(1_700_000_000_123_456_789));
}

#[test]
fn a_minimal_record_line_leaves_out_what_is_unknown() {
    let mut r = full_record();
    r.protocol = None;
    r.peer = None;
    r.local_addr = None;
    r.remote_addr = None;
    r.dial = None;
    r.ttfb = None;
    r.error = None;
    let mut out = Vec::new();
    encode_record(&r, &[], &mut out).unwrap();
    let l = &parse_all(&out)[0];
    assert_eq!(tag_keys(l), ["instance", "transport", "direction"]);
    assert_eq!(l.field("ok"), Some(&FieldValue::Boolean(true)));
    assert!(l.field("dial_us").is_none() && l.field("ttfb_us").is_none());
    assert!(l.field("error_detail").is_none());
}

#[test]
fn real_records_encode() {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    for p in [PEER, "12D3KooWabc", "tab\there"] {
        let c = meter
            .connection("tcp")
            .peer(p)
            .remote_addr("192.0.2.77".parse().unwrap())
            .open();
        c.wrap(std::io::sink()).write_all(b"hello").unwrap();
    }
    meter.failed(
        meter.connection("tcp").peer("refuser"),
        ConnectionError::io(Phase::Dial, &std::io::ErrorKind::ConnectionRefused.into()),
    );
    let mut out = Vec::new();
    for r in records.drain() {
        encode_record(&r, &[], &mut out).unwrap();
    }
    let lines = parse_all(&out);
    assert_eq!(lines.len(), 4);
    let peers: Vec<_> = lines.iter().map(|l| l.tag("peer").unwrap()).collect();
    assert_eq!(peers, [PEER, "12D3KooWabc", "tab\there", "refuser"]);
    assert!(lines[..3]
        .iter()
        .all(|l| l.tag("remote_addr") == Some("192.0.2.0")));
    assert_eq!(lines[3].tag("error"), Some("refused"));
    assert_eq!(lines[3].tag("phase"), Some("dial"));
    assert_eq!(lines[0].field("bytes_out"), Some(&FieldValue::UInteger(5)));
}

#[test]
fn an_aggregate_line_has_the_documented_tags_and_fields() {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    for i in 0..3u64 {
        let c = meter
            .connection("quic")
            .protocol("/kad/1")
            .dial_time(Duration::from_micros(1000 * (i + 1)))
            .open();
        c.wrap(std::io::sink()).write_all(&[0; 10]).unwrap();
    }
    drop(meter.connection("quic").open()); // no protocol, no bytes, no dial
    let mut agg = Aggregator::new(DEFAULT_AGGREGATE_WINDOW);
    for r in records.drain() {
        agg.add(&r);
    }
    let rows = agg.take_all();
    let mut out = Vec::new();
    for row in &rows {
        encode_aggregate(row, meter.instance(), &static_tags(), &mut out).unwrap();
    }
    let lines = parse_all(&out);
    assert_eq!(lines.len(), rows.len());
    let full = lines
        .iter()
        .find(|l| l.tag("protocol") == Some("/kad/1"))
        .unwrap();
    assert_eq!(full.measurement, "meter_aggregate");
    assert_eq!(
        tag_keys(full),
        [
            "instance",
            "transport",
            "protocol",
            "direction",
            "ingress_country",
            "egress_pool"
        ]
    );
    assert_eq!(full.tag("transport"), Some("quic"));
    assert_eq!(full.tag("direction"), Some("outbound"));
    assert_eq!(
        types(full),
        [
            ("connections", "unsigned integer"),
            ("errors", "unsigned integer"),
            ("bytes_in", "unsigned integer"),
            ("bytes_out", "unsigned integer"),
            ("dial_min_us", "integer"),
            ("dial_max_us", "integer"),
            ("dial_avg_us", "integer"),
            ("rate_min_bps", "float"),
            ("rate_max_bps", "float"),
            ("rate_avg_bps", "float"),
        ]
        .map(|(k, t)| (k.to_owned(), t))
    );
    assert_eq!(full.field("connections"), Some(&FieldValue::UInteger(3)));
    assert_eq!(full.field("bytes_out"), Some(&FieldValue::UInteger(30)));
    assert_eq!(full.field("dial_min_us"), Some(&FieldValue::Integer(1000)));
    assert_eq!(full.field("dial_max_us"), Some(&FieldValue::Integer(3000)));
    assert_eq!(full.field("dial_avg_us"), Some(&FieldValue::Integer(2000)));
    let start = rows
        .iter()
        .find(|r| &*r.key.protocol == "/kad/1")
        .unwrap()
        .key
        .window_start;
    assert_eq!(full.timestamp, Some(start as i64 * 1_000_000_000));
    assert_eq!(start % 300, 0);

    let bare = lines.iter().find(|l| l.tag("protocol").is_none()).unwrap();
    assert_eq!(
        types(bare),
        [
            ("connections", "unsigned integer"),
            ("errors", "unsigned integer"),
            ("bytes_in", "unsigned integer"),
            ("bytes_out", "unsigned integer"),
        ]
        .map(|(k, t)| (k.to_owned(), t))
    );
}

#[test]
fn a_snapshot_is_traffic_lines_and_one_meter_line() {
    let meter = Meter::new(MeterConfig {
        instance: "node 7".into(),
        ..MeterConfig::default()
    });
    let a = meter
        .connection("tcp")
        .peer(PEER)
        .protocol("/p, q=1")
        .open();
    let b = meter.connection("quic").peer("12D3KooWxyz").open();
    a.wrap(std::io::sink()).write_all(&[0; 100]).unwrap();
    std::io::copy(
        &mut b.wrap(std::io::repeat(0).take(50)),
        &mut std::io::sink(),
    )
    .unwrap();
    let t0 = Instant::now();
    meter.snapshot_at(t0);
    let snap = meter.snapshot_at(t0 + Duration::from_secs(10));
    let mut out = Vec::new();
    assert_eq!(encode_snapshot(&snap, &static_tags(), &mut out), 0);
    let lines = parse_all(&out);
    // global, 2 transports, 1 protocol, 2 peers, and the meter line.
    assert_eq!(lines.len(), 7);
    let traffic: Vec<_> = lines
        .iter()
        .filter(|l| l.measurement == "meter_traffic")
        .collect();
    assert_eq!(traffic.len(), 6);
    let scoped = |scope: &str, label: Option<&str>| {
        *traffic
            .iter()
            .find(|l| l.tag("scope") == Some(scope) && l.tag("label") == label)
            .unwrap_or_else(|| panic!("{scope} {label:?}"))
    };
    let g = scoped("global", None);
    assert_eq!(
        tag_keys(g),
        [
            "instance",
            "scope",
            "ingress_country",
            "egress_pool",
            "transport"
        ]
    );
    assert_eq!(g.tag("instance"), Some("node 7"));
    let rate_fields = [
        "rate_in_1m",
        "rate_out_1m",
        "rate_in_5m",
        "rate_out_5m",
        "rate_in_15m",
        "rate_out_15m",
    ];
    let mut want: Vec<(String, &str)> = vec![
        ("bytes_in".into(), "unsigned integer"),
        ("bytes_out".into(), "unsigned integer"),
    ];
    want.extend(rate_fields.map(|k| (k.to_owned(), "float")));
    assert_eq!(types(g), want);
    assert_eq!(g.field("bytes_out"), Some(&FieldValue::UInteger(100)));
    assert_eq!(g.field("bytes_in"), Some(&FieldValue::UInteger(50)));
    let p = scoped("protocol", Some("/p, q=1"));
    assert_eq!(p.field("bytes_out"), Some(&FieldValue::UInteger(100)));
    let peer = scoped("peer", Some(PEER));
    want.push(("connections".into(), "unsigned integer"));
    assert_eq!(types(peer), want);
    assert_eq!(peer.field("connections"), Some(&FieldValue::UInteger(1)));
    match peer.field("rate_out_1m") {
        Some(FieldValue::Float(r)) => assert!(*r > 0.0),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        scoped("transport", Some("quic")).field("bytes_in"),
        Some(&FieldValue::UInteger(50))
    );

    let m = lines.iter().find(|l| l.measurement == "meter").unwrap();
    assert_eq!(
        tag_keys(m),
        ["instance", "ingress_country", "egress_pool", "transport"]
    );
    assert_eq!(
        types(m),
        [
            "active_connections",
            "connections_total",
            "peers_evicted",
            "labels_overflowed",
            "records_dropped",
            "records_sampled_out"
        ]
        .map(|k| (k.to_owned(), "unsigned integer"))
    );
    assert_eq!(
        m.field("active_connections"),
        Some(&FieldValue::UInteger(2))
    );
    let at = snap.at.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
    assert!(lines.iter().all(|l| l.timestamp == Some(at)));
    drop((a, b));
}

#[test]
fn a_label_line_protocol_cannot_carry_is_counted_not_fatal() {
    let meter = Meter::new(MeterConfig::default());
    let a = meter.connection("tcp").peer("line\nbreak").open();
    let b = meter.connection("tcp").peer("fine").open();
    let snap = meter.snapshot();
    let mut out = Vec::new();
    assert_eq!(encode_snapshot(&snap, &[], &mut out), 1);
    let lines = parse_all(&out);
    assert_eq!(lines.len(), 4, "global, tcp, the good peer, meter");
    let records = meter.records().unwrap();
    drop((a, b));
    let mut out = Vec::new();
    let results: Vec<_> = records
        .drain()
        .iter()
        .map(|r| encode_record(r, &[], &mut out).is_ok())
        .collect();
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1);
    assert_eq!(parse_all(&out).len(), 1);
}
