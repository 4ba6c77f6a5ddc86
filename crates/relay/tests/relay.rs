//! The relay in process on loopback, driven by hand-written SOCKS5 and
//! HTTP CONNECT clients: what each client gets back and the connection
//! record the meter hands over for it.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use meter::{ConnectionRecord, Meter, MeterConfig, Phase, Records};
use relay::{Credentials, Relay, RelayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

async fn start(config: RelayConfig) -> Running {
    let relay = Relay::bind(config).await.unwrap();
    let addr = relay.local_addr();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(relay.serve(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

fn metered() -> (RelayConfig, Meter, Records) {
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    let mut config = RelayConfig::new(([127, 0, 0, 1], 0).into());
    config.meter = Some(meter.clone());
    (config, meter, records)
}

/// A TCP echo server: every connection gets back what it sends.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The next record, waiting on a blocking thread.
async fn record(records: &Records) -> ConnectionRecord {
    tokio::task::block_in_place(|| records.recv_timeout(WAIT)).expect("a record")
}

/// Greeting (no auth) and CONNECT to `target`; returns the reply.
async fn socks_connect(s: &mut TcpStream, target: SocketAddr) -> [u8; 10] {
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.unwrap();
    assert_eq!(choice, [5, 0]);
    let IpAddr::V4(ip) = target.ip() else {
        panic!("IPv4 only here")
    };
    let mut request = vec![5, 1, 0, 1];
    request.extend_from_slice(&ip.octets());
    request.extend_from_slice(&target.port().to_be_bytes());
    s.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.unwrap();
    reply
}

fn loopback_net() -> Option<IpAddr> {
    Some("127.0.0.0".parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_traffic_is_metered_exactly() {
    let (config, meter, records) = metered();
    let relay = start(config).await;
    let echo = echo_server().await;
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    let reply = socks_connect(&mut s, echo).await;
    assert_eq!(reply[..4], [5, 0, 0, 1]);
    assert_eq!(
        reply[4..8],
        [127, 0, 0, 1],
        "BND.ADDR is the upstream socket's"
    );
    assert_ne!(u16::from_be_bytes([reply[8], reply[9]]), 0);
    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    s.write_all(&payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(back, payload);
    drop(s);
    let r = record(&records).await;
    assert_eq!(&*r.transport, "socks5");
    assert_eq!(r.peer.as_deref(), Some("127.0.0.1"));
    assert_eq!(r.protocol.as_deref(), Some("tcp"));
    assert_eq!((r.bytes_in, r.bytes_out), (100_000, 100_000));
    assert_eq!(
        (r.local_addr, r.remote_addr),
        (loopback_net(), loopback_net())
    );
    assert!(r.dial.is_some() && r.ttfb.is_some(), "{r:?}");
    assert_eq!(r.error, None);
    let snapshot = meter.snapshot();
    assert_eq!(snapshot.global.bytes_in, 100_000);
    assert!(snapshot.prometheus().contains("weir_meter_bytes_total"));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_connect_forwards_early_bytes() {
    let (config, _meter, records) = metered();
    let relay = start(config).await;
    let echo = echo_server().await;
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    let head = format!("CONNECT {echo} HTTP/1.1\r\nHost: {echo}\r\n\r\nhello");
    s.write_all(head.as_bytes()).await.unwrap();
    let expected = b"HTTP/1.1 200 Connection established\r\n\r\nhello";
    let mut got = vec![0u8; expected.len()];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(got, expected);
    drop(s);
    let r = record(&records).await;
    assert_eq!(&*r.transport, "http-connect");
    assert_eq!((r.bytes_in, r.bytes_out), (5, 5));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dial_gets_reply_5_and_a_record() {
    let (config, _meter, records) = metered();
    let relay = start(config).await;
    let closed: SocketAddr = ([127, 0, 0, 1], closed_port()).into();
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    let reply = socks_connect(&mut s, closed).await;
    assert_eq!(reply[1], 0x05);
    let r = record(&records).await;
    let e = r.error.unwrap();
    assert_eq!((&*e.class, e.phase), ("refused", Phase::Dial));
    assert_eq!(r.peer.as_deref(), Some("127.0.0.1"));
    assert_eq!(r.remote_addr, loopback_net());
    assert!(r.dial.is_some());
    // HTTP CONNECT: 502.
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    s.write_all(format!("CONNECT {closed} HTTP/1.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    let r = record(&records).await;
    assert_eq!(r.error.unwrap().class, "refused");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_are_recorded_and_the_relay_goes_on() {
    let (mut config, _meter, records) = metered();
    config.credentials = Some(Credentials::new("alice", "s3cret").unwrap());
    config.handshake_timeout = Duration::from_millis(300);
    let relay = start(config).await;
    // No-auth offered to a relay with credentials.
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, [5, 0xFF]);
    let r = record(&records).await;
    let e = r.error.unwrap();
    assert_eq!((&*e.class, e.phase), ("auth", Phase::Handshake));
    assert_eq!(r.local_addr, loopback_net());
    // Garbage.
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    s.write_all(b"\x16\x03\x01\x00\xff garbage\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let e = record(&records).await.error.unwrap();
    assert_eq!((&*e.class, e.phase), ("protocol", Phase::Handshake));
    // Half a greeting, then silence: the handshake times out.
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    s.write_all(&[5, 2]).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    assert!(answer.is_empty());
    let r = record(&records).await;
    assert_eq!(&*r.transport, "socks5");
    assert_eq!(r.error.unwrap().class, "timeout");
    // A client that says nothing at all leaves no record.
    let s = TcpStream::connect(relay.addr).await.unwrap();
    drop(s);
    // And the relay still serves, with the right password.
    let echo = echo_server().await;
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    let mut hello = vec![5, 1, 2, 1, 5];
    hello.extend_from_slice(b"alice");
    hello.push(6);
    hello.extend_from_slice(b"s3cret");
    s.write_all(&hello).await.unwrap();
    let mut answer = [0u8; 4];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, [5, 2, 1, 0]);
    let IpAddr::V4(ip) = echo.ip() else { panic!() };
    let mut request = vec![5, 1, 0, 1];
    request.extend_from_slice(&ip.octets());
    request.extend_from_slice(&echo.port().to_be_bytes());
    s.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[1], 0);
    drop(s);
    let r = record(&records).await;
    assert_eq!(r.error, None, "{r:?}");
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_what_is_still_open_after_the_drain() {
    let (mut config, meter, records) = metered();
    config.drain_timeout = Duration::from_millis(200);
    let relay = start(config).await;
    let echo = echo_server().await;
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    assert_eq!(socks_connect(&mut s, echo).await[1], 0);
    s.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(meter.active_connections(), 1);
    relay.stop().await;
    let r = record(&records).await;
    assert_eq!(r.error.unwrap().class, "shutdown");
    assert_eq!(meter.active_connections(), 0);
    // The client sees the end.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_meter_it_relays_all_the_same() {
    let relay = start(RelayConfig::new(([127, 0, 0, 1], 0).into())).await;
    let echo = echo_server().await;
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    assert_eq!(socks_connect(&mut s, echo).await[1], 0);
    s.write_all(b"plain").await.unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"plain");
    drop(s);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_resets_mid_download_is_recorded() {
    let (config, _meter, records) = metered();
    let relay = start(config).await;
    // A source that sends until its reader goes away.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let block = vec![7u8; 64 * 1024];
        while s.write_all(&block).await.is_ok() {}
    });
    let mut s = TcpStream::connect(relay.addr).await.unwrap();
    assert_eq!(socks_connect(&mut s, source).await[1], 0);
    let mut some = vec![0u8; 256 * 1024];
    s.read_exact(&mut some).await.unwrap();
    // Close with a reset (SO_LINGER 0), as a killed client does.
    s.set_zero_linger().unwrap();
    drop(s);
    let r = record(&records).await;
    let e = r.error.clone().expect("the reset is recorded");
    assert!(
        matches!(&*e.class, "client_reset" | "client_broken_pipe"),
        "class {:?}: {}",
        e.class,
        e.detail
    );
    assert!(matches!(e.phase, Phase::Read | Phase::Write), "{e:?}");
    assert!(e.detail.contains("the client"), "{}", e.detail);
    assert!(r.bytes_in >= 256 * 1024, "{r:?}");
    relay.stop().await;
}
