//! The tokio wrappers over real loopback TCP (feature `tokio`): what the
//! counters say equals what the peer actually received.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use meter::{Direction, Meter, MeterConfig, Phase, Traffic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn label<'a>(list: &'a [(Arc<str>, Traffic)], name: &str) -> &'a Traffic {
    &list
        .iter()
        .find(|(l, _)| &**l == name)
        .unwrap_or_else(|| panic!("no label {name} in {list:?}"))
        .1
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

/// An unmetered server: reads everything the client sends, counts it, then
/// answers with `reply` bytes and closes.
async fn counting_server(reply: usize) -> (SocketAddr, tokio::task::JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut sink = tokio::io::sink();
        let (mut r, mut w) = s.split();
        let received = tokio::io::copy(&mut r, &mut sink).await.unwrap();
        w.write_all(&payload(reply)).await.unwrap();
        w.shutdown().await.unwrap();
        received
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_through_split_halves_counts_what_the_peer_received() {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    let (addr, server) = counting_server(300_007).await;

    let stream = TcpStream::connect(addr).await.unwrap();
    let conn = meter
        .connection("tcp")
        .peer("server")
        .protocol("bulk")
        .local_addr(stream.local_addr().unwrap().ip())
        .remote_addr(addr.ip())
        .open();
    let (r, w) = tokio::io::split(stream);
    // Each half wrapped with its own clone of the connection meter.
    let mut r = conn.wrap(r);
    let mut w = conn.clone().wrap(w);
    let sent = 1_234_567;
    let data = payload(sent);
    let writer = async {
        let n = tokio::io::copy(&mut &data[..], &mut w).await.unwrap();
        w.shutdown().await.unwrap();
        n
    };
    let reader = async {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got
    };
    let (n, got) = tokio::join!(writer, reader);
    assert_eq!(n, sent as u64);
    assert_eq!(got, payload(300_007));
    let received_by_server = server.await.unwrap();
    assert_eq!(received_by_server, sent as u64);

    assert_eq!(conn.bytes(), (300_007, sent as u64));
    let snap = meter.snapshot();
    assert_eq!(snap.global.bytes_in, 300_007);
    assert_eq!(snap.global.bytes_out, sent as u64);
    assert_eq!(label(&snap.transports, "tcp").bytes_out, sent as u64);
    assert_eq!(label(&snap.protocols, "bulk").bytes_in, 300_007);
    assert_eq!(snap.peers.len(), 1);
    assert_eq!(snap.peers[0].traffic.bytes_out, sent as u64);
    assert_eq!(snap.peers[0].connections, 1);

    drop((r, w, conn));
    let rec = records.drain();
    assert_eq!(rec.len(), 1);
    assert_eq!((rec[0].bytes_in, rec[0].bytes_out), (300_007, sent as u64));
    assert!(rec[0].error.is_none());
    assert!(rec[0].ttfb.is_some(), "written first, then read");
    assert_eq!(
        rec[0].remote_addr,
        Some("127.0.0.0".parse().unwrap()),
        "masked to /24"
    );
}

/// Both ends of several connections metered by one meter under different
/// transports: the global totals are the sum over transports, which is the
/// sum over connections, which is what each side really moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_is_the_sum_over_transports_and_connections() {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let n_conns = 6usize;

    // Echo server, metered as transport "tcp-in", inbound.
    let server_meter = meter.clone();
    let server = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for _ in 0..n_conns {
            let (s, peer) = listener.accept().await.unwrap();
            let conn = server_meter
                .connection("tcp-in")
                .peer(format!("client-{}", peer.port()))
                .direction(Direction::Inbound)
                .open();
            tasks.push(tokio::spawn(async move {
                let (r, w) = s.into_split();
                let mut r = conn.wrap(r);
                let mut w = conn.wrap(w);
                let n = tokio::io::copy(&mut r, &mut w).await.unwrap();
                w.shutdown().await.unwrap();
                (n, conn.bytes())
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });

    let mut clients = Vec::new();
    for i in 0..n_conns {
        let meter = meter.clone();
        clients.push(tokio::spawn(async move {
            // Half the clients over a transport label of their own.
            let transport = if i % 2 == 0 { "tcp" } else { "tcp-alt" };
            let s = TcpStream::connect(addr).await.unwrap();
            let conn = meter.connection(transport).peer("echo").open();
            let (r, w) = s.into_split();
            let mut r = conn.wrap(r);
            let mut w = conn.wrap(w);
            let len = 10_000 * (i + 1) + i;
            let data = payload(len);
            let write = async {
                // Odd-sized writes.
                for chunk in data.chunks(777 + i) {
                    w.write_all(chunk).await.unwrap();
                }
                w.shutdown().await.unwrap();
            };
            let read = async {
                let mut back = Vec::new();
                r.read_to_end(&mut back).await.unwrap();
                back
            };
            let ((), back) = tokio::join!(write, read);
            assert_eq!(back, data);
            (len as u64, conn.bytes())
        }));
    }
    let mut client_total = 0;
    for c in clients {
        let (len, (bin, bout)) = c.await.unwrap();
        assert_eq!((bin, bout), (len, len));
        client_total += len;
    }
    let server_side = server.await.unwrap();
    let echoed: u64 = server_side.iter().map(|(n, _)| n).sum();
    assert_eq!(
        echoed, client_total,
        "the server received what clients sent"
    );
    for (n, (bin, bout)) in &server_side {
        assert_eq!((bin, bout), (n, n));
    }

    let snap = meter.snapshot();
    let sum_in: u64 = snap.transports.iter().map(|(_, t)| t.bytes_in).sum();
    let sum_out: u64 = snap.transports.iter().map(|(_, t)| t.bytes_out).sum();
    assert_eq!(snap.global.bytes_in, sum_in);
    assert_eq!(snap.global.bytes_out, sum_out);
    assert_eq!(snap.global.bytes_in, 2 * client_total);
    assert_eq!(snap.global.bytes_out, 2 * client_total);
    assert_eq!(label(&snap.transports, "tcp-in").bytes_in, client_total);
    assert_eq!(
        label(&snap.transports, "tcp").bytes_out + label(&snap.transports, "tcp-alt").bytes_out,
        client_total
    );
    let peer_sum: u64 = snap.peers.iter().map(|p| p.traffic.bytes_in).sum();
    assert_eq!(peer_sum, 2 * client_total);
    assert_eq!(snap.active_connections, 0);
    assert_eq!(snap.connections_total, 2 * n_conns as u64);

    let recs = records.drain();
    assert_eq!(recs.len(), 2 * n_conns);
    let rec_in: u64 = recs.iter().map(|r| r.bytes_in).sum();
    assert_eq!(rec_in, 2 * client_total);
    assert_eq!(
        recs.iter()
            .filter(|r| r.direction == Direction::Inbound)
            .count(),
        n_conns
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_meters_over_tokio_count_their_protocol() {
    let meter = Meter::new(MeterConfig::default());
    let (addr, server) = counting_server(4096).await;
    let s = TcpStream::connect(addr).await.unwrap();
    let conn = meter.connection("tcp").peer("srv").open();
    let hello = conn.stream("/hello/1");
    let bulk = conn.stream("/bulk/1");
    let (r, w) = s.into_split();
    // Multiplexing by hand: two "streams" share the connection's halves.
    let mut w = hello.wrap(conn.wrap(w));
    w.write_all(b"hello!").await.unwrap();
    let (inner_w, _) = w.into_parts();
    let mut w = bulk.wrap(inner_w);
    w.write_all(&[0; 10_000]).await.unwrap();
    w.shutdown().await.unwrap();
    let mut r = bulk.wrap(conn.wrap(r));
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 4096);
    assert_eq!(server.await.unwrap(), 10_006);

    let snap = meter.snapshot();
    let h = label(&snap.protocols, "/hello/1");
    assert_eq!((h.bytes_in, h.bytes_out), (0, 6));
    let b = label(&snap.protocols, "/bulk/1");
    assert_eq!((b.bytes_in, b.bytes_out), (4096, 10_000));
    assert_eq!(
        (snap.global.bytes_in, snap.global.bytes_out),
        (4096, 10_006)
    );
}

#[tokio::test]
async fn a_tokio_read_error_is_recorded() {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        let mut buf = [0u8; 5];
        std::io::Read::read_exact(&mut &s, &mut buf).unwrap();
        drop(s); // linger 0: a reset, not a FIN
    });
    let s = TcpStream::connect(addr).await.unwrap();
    let conn = meter.connection("tcp").open();
    let mut io = conn.wrap(s);
    io.write_all(b"hello").await.unwrap();
    server.join().unwrap();
    let mut buf = [0u8; 16];
    let e = io.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
    drop((io, conn));
    let r = records.drain().pop().unwrap();
    let err = r.error.unwrap();
    assert_eq!((&*err.class, err.phase), ("reset", Phase::Read));
    assert_eq!(r.bytes_out, 5);
}

/// Accepts writes; fails flush and shutdown.
struct FailingFlush;

impl tokio::io::AsyncWrite for FailingFlush {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len().min(3)))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }
}

#[tokio::test]
async fn tokio_flush_and_shutdown_errors_are_recorded_like_std_ones() {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    let conn = meter.connection("tcp").open();
    let mut w = conn.wrap(FailingFlush);
    w.write_all(b"0123456789").await.unwrap();
    assert_eq!(conn.bytes().1, 10, "partial writes of 3 add up");
    assert!(w.flush().await.is_err());
    assert!(w.shutdown().await.is_err());
    drop((w, conn));
    let r = records.drain().pop().unwrap();
    let err = r.error.unwrap();
    assert_eq!((&*err.class, err.phase), ("broken_pipe", Phase::Write));

    // A shutdown failure alone.
    let conn = meter.connection("tcp").open();
    let mut w = conn.wrap(FailingFlush);
    assert!(w.shutdown().await.is_err());
    drop((w, conn));
    let err = records.drain().pop().unwrap().error.unwrap();
    assert_eq!(err.phase, Phase::Write);
    assert_eq!(err.class, "other");
}
