//! Bounded memory under churn: the LRU of disconnected peers, idle
//! eviction, and the caps on protocol and transport labels.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::{Duration, Instant};

use meter::{ConnectionMeter, Meter, MeterConfig, OVERFLOW_LABEL};

fn meter(peer_lru: usize, max_protocols: usize, max_transports: usize) -> Meter {
    Meter::new(MeterConfig {
        peer_lru,
        max_protocols,
        max_transports,
        idle_timeout: Duration::from_secs(600),
        records: None,
        ..MeterConfig::default()
    })
}

fn peer_id(i: usize) -> String {
    format!("12D3KooW{i:044}")
}

fn labels(list: &[(std::sync::Arc<str>, meter::Traffic)]) -> Vec<&str> {
    list.iter().map(|(l, _)| &**l).collect()
}

#[test]
fn a_hundred_thousand_peers_churn_through_an_lru_of_fifty() {
    let m = meter(50, 64, 16);
    // Ten long-lived connections stay open throughout.
    let open: Vec<ConnectionMeter> = (0..10)
        .map(|i| m.connection("tcp").peer(format!("resident-{i}")).open())
        .collect();
    // A sliding window of up to 20 short-lived connections at a time.
    let mut live = std::collections::VecDeque::new();
    let n = 100_000;
    let mut max_tracked = 0;
    for i in 0..n {
        let conn = m.connection("tcp").peer(peer_id(i)).open();
        conn.wrap(std::io::sink()).write_all(&[0; 10]).unwrap();
        live.push_back(conn);
        if live.len() > 20 {
            live.pop_front();
        }
        let tracked = m.tracked_peers();
        max_tracked = max_tracked.max(tracked);
        assert!(
            tracked <= 50 + open.len() + live.len(),
            "after {i}: {tracked} peers tracked"
        );
    }
    assert_eq!(max_tracked, 50 + 10 + 20);
    live.clear();
    assert_eq!(m.tracked_peers(), 50 + 10);
    let snap = m.snapshot();
    assert_eq!(snap.peers.len(), 60);
    // Every distinct short-lived peer but the last 50 was pushed out.
    assert_eq!(snap.peers_evicted, (n - 50) as u64);
    // The LRU keeps the most recently disconnected ones.
    for i in n - 50..n {
        let p = peer_id(i);
        let found = snap.peers.iter().find(|x| *x.peer == *p).unwrap();
        assert_eq!((found.connections, found.traffic.bytes_out), (0, 10));
    }
    for i in 0..10 {
        let p = format!("resident-{i}");
        let found = snap.peers.iter().find(|x| *x.peer == *p).unwrap();
        assert_eq!(found.connections, 1);
    }
    // The global counters kept everything.
    assert_eq!(snap.global.bytes_out, 10 * n as u64);
    assert_eq!(snap.connections_total, n as u64 + 10);
    assert_eq!(snap.active_connections, 10);
    drop(open);
    assert_eq!(m.tracked_peers(), 50, "the residents pushed out ten others");
}

#[test]
fn a_reconnecting_peer_is_revived_not_duplicated() {
    let m = meter(3, 64, 16);
    for round in 0..5 {
        for p in ["a", "b", "c"] {
            let c = m.connection("tcp").peer(p).open();
            c.wrap(std::io::sink()).write_all(&[0; 7]).unwrap();
        }
        assert_eq!(m.tracked_peers(), 3, "round {round}");
    }
    let snap = m.snapshot();
    assert_eq!(snap.peers_evicted, 0);
    for p in &snap.peers {
        assert_eq!(p.traffic.bytes_out, 35, "{p:?}: its counters carried over");
    }
    // Two connections to one peer: it stays connected until both close.
    let c1 = m.connection("tcp").peer("a").open();
    let c2 = m.connection("tcp").peer("a").open();
    let snap = m.snapshot();
    assert_eq!(
        snap.peers
            .iter()
            .find(|p| &*p.peer == "a")
            .unwrap()
            .connections,
        2
    );
    drop(c1);
    let far = Instant::now() + Duration::from_secs(10_000);
    let snap = m.snapshot_at(far);
    assert_eq!(snap.peers.len(), 1, "b and c idle out; a is connected");
    assert_eq!(&*snap.peers[0].peer, "a");
    assert_eq!(snap.peers_evicted, 2);
    drop(c2);
    assert_eq!(m.tracked_peers(), 1);
}

#[test]
fn idle_peers_and_labels_are_evicted_at_a_snapshot_past_the_timeout() {
    let m = meter(50, 64, 16);
    for i in 0..30 {
        let c = m
            .connection("tcp")
            .peer(format!("p{i}"))
            .protocol(format!("/proto/{}", i % 5))
            .open();
        c.wrap(std::io::sink()).write_all(&[1; 100]).unwrap();
    }
    let held = m
        .connection("quic")
        .peer("keeper")
        .protocol("/held/1")
        .open();
    let stream = held.stream("/stream/1");
    let now = Instant::now();
    let snap = m.snapshot_at(now);
    assert_eq!(snap.peers.len(), 31);
    assert_eq!(snap.protocols.len(), 7);
    assert_eq!(m.tracked_peers(), 31);

    // Just before the timeout nothing goes.
    let snap = m.snapshot_at(now + Duration::from_secs(590));
    assert_eq!(snap.peers.len(), 31);
    assert_eq!(snap.protocols.len(), 7);

    let later = now + Duration::from_secs(1200);
    let snap = m.snapshot_at(later);
    assert_eq!(
        snap.peers.iter().map(|p| &*p.peer).collect::<Vec<_>>(),
        ["keeper"]
    );
    assert_eq!(snap.peers_evicted, 30);
    assert_eq!(m.tracked_peers(), 1);
    // Idle protocol labels no longer appear; those an open connection or
    // stream holds stay, however idle.
    assert_eq!(labels(&snap.protocols), ["/held/1", "/stream/1"]);
    assert_eq!(labels(&snap.transports), ["quic"]);
    // Their bytes stay in the global totals.
    assert_eq!(snap.global.bytes_out, 3000);
    assert!(!m.snapshot().prometheus().contains("/proto/"));

    // A label seen again after eviction starts from zero.
    let c = m.connection("tcp").protocol("/proto/1").open();
    c.wrap(std::io::sink()).write_all(&[1; 5]).unwrap();
    let snap = m.snapshot_at(later + Duration::from_secs(1));
    let p1 = &snap
        .protocols
        .iter()
        .find(|(l, _)| &**l == "/proto/1")
        .unwrap()
        .1;
    assert_eq!(p1.bytes_out, 5);
    assert_eq!(snap.global.bytes_out, 3005);
    drop((c, stream, held));
}

#[test]
fn traffic_keeps_a_disconnected_label_alive() {
    // A label whose counters moved since the last poll is not idle.
    let m = meter(50, 64, 16);
    let held = m.connection("tcp").protocol("/busy/1").open();
    let mut io = held.wrap(std::io::sink());
    let t0 = Instant::now();
    m.snapshot_at(t0);
    io.write_all(b"x").unwrap();
    drop((io, held));
    // The poll at t0+1200 sees the byte move: active now, not evicted.
    let snap = m.snapshot_at(t0 + Duration::from_secs(1200));
    assert_eq!(labels(&snap.protocols), ["/busy/1"]);
    let snap = m.snapshot_at(t0 + Duration::from_secs(1799));
    assert_eq!(labels(&snap.protocols), ["/busy/1"]);
    let snap = m.snapshot_at(t0 + Duration::from_secs(1800));
    assert!(snap.protocols.is_empty());
}

#[test]
fn protocols_past_the_cap_count_as_other() {
    let m = meter(50, 8, 16);
    let mut conns = Vec::new();
    for i in 0..1000 {
        let c = m.connection("tcp").protocol(format!("/app/{i}")).open();
        c.wrap(std::io::sink()).write_all(&[0; 3]).unwrap();
        conns.push(c);
    }
    let conn = m.connection("tcp").open();
    let streams: Vec<_> = (0..100).map(|i| conn.stream(&format!("/s/{i}"))).collect();
    assert!(streams.iter().all(|s| s.protocol() == OVERFLOW_LABEL));
    for s in &streams {
        s.wrap(std::io::sink()).write_all(&[0; 2]).unwrap();
    }
    let snap = m.snapshot();
    assert_eq!(snap.protocols.len(), 9, "8 labels and {OVERFLOW_LABEL}");
    let other = &snap
        .protocols
        .iter()
        .find(|(l, _)| &**l == OVERFLOW_LABEL)
        .unwrap()
        .1;
    assert_eq!(other.bytes_out, 992 * 3 + 100 * 2);
    assert_eq!(snap.labels_overflowed, 992 + 100);
    let total: u64 = snap.protocols.iter().map(|(_, t)| t.bytes_out).sum();
    assert_eq!(total, 3000 + 200);
    drop((conns, streams, conn));
}

#[test]
fn transports_past_the_cap_count_as_other() {
    let m = meter(50, 64, 2);
    let a = m.connection("tcp").open();
    let b = m.connection("quic").open();
    let c = m.connection("webrtc").open();
    let d = m.connection("ws").open();
    for (i, conn) in [&a, &b, &c, &d].into_iter().enumerate() {
        conn.wrap(std::io::sink())
            .write_all(&vec![0; i + 1])
            .unwrap();
    }
    let snap = m.snapshot();
    assert_eq!(labels(&snap.transports), ["other", "quic", "tcp"]);
    assert_eq!(snap.transports[0].1.bytes_out, 3 + 4);
    assert_eq!(snap.labels_overflowed, 2);
    assert_eq!(snap.global.bytes_out, 10);
    drop((a, b, c, d));
    // Once the capped labels idle out, new transports get their own again.
    let snap = m.snapshot_at(Instant::now() + Duration::from_secs(700));
    assert_eq!(labels(&snap.transports), ["other"]);
    assert_eq!(snap.global.bytes_out, 10, "evicted bytes stay in the total");
    let e = m.connection("ws").open();
    e.wrap(std::io::sink()).write_all(&[0; 5]).unwrap();
    let snap = m.snapshot_at(Instant::now() + Duration::from_secs(701));
    assert_eq!(labels(&snap.transports), ["other", "ws"]);
    assert_eq!(snap.global.bytes_out, 15);
}

#[test]
fn churn_from_many_threads_stays_bounded_and_exact() {
    let m = meter(50, 16, 4);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..5000 {
                    let c = m
                        .connection(["tcp", "quic"][i % 2])
                        .peer(format!("t{t}-p{i}"))
                        .protocol(format!("/p/{}", i % 40))
                        .open();
                    let s = c.stream(&format!("/s/{}", i % 3));
                    s.wrap(c.wrap(std::io::sink())).write_all(&[0; 11]).unwrap();
                    if i % 100 == 0 {
                        let snap = m.snapshot();
                        assert!(snap.peers.len() <= 50 + 4, "{}", snap.peers.len());
                        assert!(snap.protocols.len() <= 17);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let snap = m.snapshot();
    assert_eq!(snap.global.bytes_out, 4 * 5000 * 11);
    assert_eq!(m.tracked_peers(), 50);
    assert_eq!(snap.peers_evicted, 4 * 5000 - 50);
    assert_eq!(snap.active_connections, 0);
    let proto_total: u64 = snap.protocols.iter().map(|(_, t)| t.bytes_out).sum();
    // Each write counts once for the connection's protocol, once for the stream's.
    assert_eq!(proto_total, 2 * 4 * 5000 * 11);
}
