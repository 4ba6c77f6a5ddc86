//! Connection records: success, refused and reset over real loopback TCP;
//! the bounded channel, sampling, the active-connections gauge and the
//! sampled rates.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use meter::{
    ConnectionError, ConnectionRecord, Direction, Mask, Meter, MeterConfig, Phase, RecordConfig,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn meter_with(records: Option<RecordConfig>) -> Meter {
    Meter::new(MeterConfig {
        instance: "inst-1".into(),
        records,
        ..MeterConfig::default()
    })
}

#[test]
fn a_successful_connection_gets_a_full_record() {
    let meter = meter_with(Some(RecordConfig::default()));
    assert_eq!(meter.instance(), "inst-1");
    let records = meter.records().unwrap();
    assert!(meter.records().is_none(), "one reader only");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 100];
        s.read_exact(&mut req).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        s.write_all(&[b'r'; 5000]).unwrap();
        // Closing: the client reads to the end.
    });

    let start = Instant::now();
    let stream = TcpStream::connect(addr).unwrap();
    let dial = start.elapsed();
    let conn = meter
        .connection("tcp")
        .peer("server.example")
        .protocol("req-reply")
        .direction(Direction::Outbound)
        .local_addr(stream.local_addr().unwrap().ip())
        .remote_addr(ip("2001:db8:abcd:12:34::1"))
        .dial_time(dial)
        .started_at(start)
        .open();
    let id = conn.id();
    let mut io = conn.wrap(stream);
    std::thread::sleep(Duration::from_millis(5));
    let wrote_at = Instant::now();
    io.write_all(&[b'q'; 100]).unwrap();
    let write_took = wrote_at.elapsed();
    let mut reply = Vec::new();
    io.read_to_end(&mut reply).unwrap();
    let read_done = wrote_at.elapsed();
    assert_eq!(reply.len(), 5000);
    server.join().unwrap();
    std::thread::sleep(Duration::from_millis(10));
    drop((io, conn));
    let lived = start.elapsed();

    let r = records.recv_timeout(Duration::from_secs(1)).unwrap();
    assert!(records.drain().is_empty());
    assert_eq!(&*r.instance, "inst-1");
    assert_eq!(r.id, id);
    assert_eq!(&*r.transport, "tcp");
    assert_eq!(r.protocol.as_deref(), Some("req-reply"));
    assert_eq!(r.peer.as_deref(), Some("server.example"));
    assert_eq!(r.direction, Direction::Outbound);
    assert_eq!(r.dial, Some(dial));
    assert_eq!((r.bytes_in, r.bytes_out), (5000, 100));
    // TTFB: first byte written to first byte read; the server waited 30 ms
    // after the request arrived. The write is timestamped when it returns,
    // which on a busy machine can be well after the bytes left.
    let ttfb = r.ttfb.unwrap();
    assert!(
        ttfb + write_took >= Duration::from_millis(30),
        "{ttfb:?}, the write took {write_took:?}"
    );
    assert!(ttfb <= read_done, "{ttfb:?} vs {read_done:?}");
    // Duration: from started_at (before the dial) to the last handle's drop.
    assert!(
        r.duration >= dial + Duration::from_millis(45),
        "{:?}",
        r.duration
    );
    assert!(r.duration <= lived);
    assert!(r.duration > ttfb);
    // Addresses are masked: /24 and /48.
    assert_eq!(r.local_addr, Some(ip("127.0.0.0")));
    assert_eq!(r.remote_addr, Some(ip("2001:db8:abcd::")));
    assert_eq!(r.error, None, "ok");
    // No rate samples were taken: min = max = avg. The average runs from
    // the first byte to the end, 10 ms of idling after the last included.
    assert!(r.rate_avg > 0.0);
    assert!(r.rate_avg <= 5100.0 / 0.010, "{}", r.rate_avg);
    assert_eq!((r.rate_min, r.rate_max), (r.rate_avg, r.rate_avg));
    let ended = r.ended_at.elapsed().unwrap();
    assert!(ended < Duration::from_secs(5));
}

#[test]
fn a_refused_dial_is_recorded_with_phase_dial() {
    let meter = meter_with(Some(RecordConfig::default()));
    let records = meter.records().unwrap();
    // A port nobody listens on: bind, learn it, close.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let start = Instant::now();
    let e = TcpStream::connect(addr).unwrap_err();
    let dial = start.elapsed();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    meter.failed(
        meter
            .connection("tcp")
            .peer("gone.example")
            .remote_addr(addr.ip())
            .dial_time(dial)
            .started_at(start),
        ConnectionError::io(Phase::Dial, &e),
    );
    assert_eq!(meter.active_connections(), 0);
    let snap = meter.snapshot();
    assert_eq!(snap.connections_total, 1);
    assert_eq!(snap.peers.len(), 1, "the peer is remembered");
    assert_eq!(snap.peers[0].connections, 0);

    let r = records.drain().pop().unwrap();
    let err = r.error.unwrap();
    assert_eq!(err.class, "refused");
    assert_eq!(err.phase, Phase::Dial);
    assert!(!err.detail.is_empty());
    assert_eq!((r.bytes_in, r.bytes_out), (0, 0));
    assert_eq!(r.ttfb, None);
    assert_eq!(r.dial, Some(dial));
    assert_eq!(r.remote_addr, Some(ip("127.0.0.0")));
    assert_eq!((r.rate_min, r.rate_max, r.rate_avg), (0.0, 0.0, 0.0));
}

#[test]
fn a_reset_by_the_peer_is_a_read_error() {
    let meter = meter_with(Some(RecordConfig::default()));
    let records = meter.records().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).unwrap();
        s.write_all(b"partial").unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s); // SO_LINGER 0: the close sends a reset
    });
    let stream = TcpStream::connect(addr).unwrap();
    let conn = meter.connection("tcp").remote_addr(addr.ip()).open();
    let mut io = conn.wrap(stream);
    io.write_all(b"hello").unwrap();
    server.join().unwrap();
    let mut buf = [0u8; 64];
    // The reset may discard the unread "partial"; read until the error.
    let mut got = 0;
    let e = loop {
        match io.read(&mut buf) {
            Ok(0) => panic!("a clean end of stream, not a reset"),
            Ok(n) => got += n,
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
    drop((io, conn));
    let r = records.drain().pop().unwrap();
    let err = r.error.unwrap();
    assert_eq!((&*err.class, err.phase), ("reset", Phase::Read));
    assert_eq!((r.bytes_in, r.bytes_out), (got as u64, 5));
}

#[test]
fn a_full_channel_drops_and_counts() {
    let meter = meter_with(Some(RecordConfig {
        capacity: 3,
        sample: 1.0,
    }));
    let records = meter.records().unwrap();
    for i in 0..10 {
        drop(meter.connection("tcp").peer(format!("p{i}")).open());
    }
    assert_eq!(records.dropped(), 7);
    assert_eq!(meter.snapshot().records_dropped, 7);
    let got: Vec<u64> = records.drain().iter().map(|r| r.id).collect();
    assert_eq!(got, [1, 2, 3], "the first ones are kept");
    // Room again.
    drop(meter.connection("tcp").open());
    assert_eq!(records.drain().len(), 1);
    assert_eq!(records.dropped(), 7);
}

#[test]
fn records_off_builds_none() {
    let meter = meter_with(None);
    assert!(meter.records().is_none());
    let c = meter.connection("tcp").open();
    c.wrap(std::io::sink()).write_all(b"x").unwrap();
    drop(c);
    let s = meter.snapshot();
    assert_eq!((s.records_dropped, s.records_sampled_out), (0, 0));
    assert_eq!(s.global.bytes_out, 1);
}

fn sampled_ids(sample: f64, n: usize) -> (Vec<u64>, u64) {
    let meter = meter_with(Some(RecordConfig {
        capacity: n,
        sample,
    }));
    let records = meter.records().unwrap();
    for _ in 0..n {
        drop(meter.connection("tcp").open());
    }
    let ids = records.drain().iter().map(|r| r.id).collect();
    (ids, meter.snapshot().records_sampled_out)
}

#[test]
fn sampling_keeps_the_configured_share_deterministically() {
    let n = 20_000;
    let (none, out) = sampled_ids(0.0, n);
    assert!(none.is_empty());
    assert_eq!(out, n as u64);

    let (all, out) = sampled_ids(1.0, n);
    assert_eq!(all.len(), n);
    assert_eq!(out, 0);

    let (half, out) = sampled_ids(0.5, n);
    assert_eq!(half.len() as u64 + out, n as u64);
    let share = half.len() as f64 / n as f64;
    assert!((0.48..=0.52).contains(&share), "{share}");
    // Spread over the ids, not a prefix.
    assert!(half.iter().any(|&id| id > (n as u64) * 9 / 10));
    assert!(half.iter().any(|&id| id < (n as u64) / 10));
    // The same ids in every run.
    let (again, _) = sampled_ids(0.5, n);
    assert_eq!(half, again);

    let (tenth, _) = sampled_ids(0.1, n);
    let share = tenth.len() as f64 / n as f64;
    assert!((0.09..=0.11).contains(&share), "{share}");
    // Out-of-range ratios are clamped.
    assert_eq!(sampled_ids(7.0, 100).0.len(), 100);
    assert_eq!(sampled_ids(-1.0, 100).0.len(), 0);
}

#[test]
fn the_active_connections_gauge_follows_opens_and_last_drops() {
    let meter = meter_with(None);
    assert_eq!(meter.active_connections(), 0);
    let a = meter.connection("tcp").open();
    let b = meter.connection("tcp").peer("x").open();
    let c = meter.connection("quic").open();
    assert_eq!(meter.active_connections(), 3);
    let a2 = a.clone();
    let s = b.stream("/p/1");
    drop(a);
    assert_eq!(meter.active_connections(), 3, "a clone holds it");
    drop(a2);
    drop(b);
    assert_eq!(meter.active_connections(), 2, "the stream holds b");
    drop(s);
    assert_eq!(meter.active_connections(), 1);
    meter.failed(
        meter.connection("tcp"),
        ConnectionError::io(Phase::Handshake, &std::io::ErrorKind::InvalidData.into()),
    );
    assert_eq!(meter.active_connections(), 1);
    let snap = meter.snapshot();
    assert_eq!(snap.active_connections, 1);
    assert_eq!(snap.connections_total, 4);
    drop(c);
    assert_eq!(meter.snapshot().active_connections, 0);
}

#[test]
fn sampled_rates_give_the_records_min_and_max() {
    let meter = meter_with(Some(RecordConfig::default()));
    let records = meter.records().unwrap();
    let conn = meter.connection("tcp").open();
    let idle = meter.connection("tcp").open();
    let mut tx = conn.wrap(std::io::sink());
    let mut rx = conn.wrap(std::io::repeat(0));
    let t0 = Instant::now();
    meter.sample_connections_at(t0);
    let mut buf = vec![0u8; 3000];
    let s = Duration::from_secs(1);
    tx.write_all(&[0; 1000]).unwrap();
    meter.sample_connections_at(t0 + s); // 1000 B/s
    tx.write_all(&[0; 2000]).unwrap();
    rx.read_exact(&mut buf).unwrap();
    meter.sample_connections_at(t0 + 2 * s); // 5000 B/s, both ways
    meter.sample_connections_at(t0 + 3 * s); // nothing moved: not a sample
    tx.write_all(&[0; 500]).unwrap();
    meter.sample_connections_at(t0 + 5 * s); // 250 B/s over 2 s
    meter.sample_connections_at(t0 + 5 * s); // Δt = 0: ignored
    drop((tx, rx, conn, idle));
    let mut recs = records.drain();
    recs.sort_by_key(|r| r.id);
    let r: &ConnectionRecord = &recs[0];
    assert_eq!((r.rate_min, r.rate_max), (250.0, 5000.0));
    assert_eq!((r.bytes_in, r.bytes_out), (3000, 3500));
    assert!(r.rate_avg > 0.0);
    let quiet = &recs[1];
    assert_eq!(
        (quiet.rate_min, quiet.rate_max, quiet.rate_avg),
        (0.0, 0.0, 0.0)
    );
}

#[test]
fn a_custom_mask_applies() {
    let meter = Meter::new(MeterConfig {
        mask: Mask { ipv4: 16, ipv6: 32 },
        ..MeterConfig::default()
    });
    let records = meter.records().unwrap();
    drop(
        meter
            .connection("tcp")
            .local_addr(ip("10.1.2.3"))
            .remote_addr(ip("2001:db8:1:2::9"))
            .open(),
    );
    let r = records.drain().pop().unwrap();
    assert_eq!(r.local_addr, Some(ip("10.1.0.0")));
    assert_eq!(r.remote_addr, Some(ip("2001:db8::")));
}
