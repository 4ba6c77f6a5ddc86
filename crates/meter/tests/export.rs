//! The exporter (feature `export`) against a tiny real HTTP server: lines
//! arrive with the token and database, a failing receiver keeps them for a
//! retry, shutdown flushes.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lineproto::{parse_lines, FieldValue};
use meter::export::{ExportConfig, Exporter, RecordMode};
use meter::{Meter, MeterConfig};

#[derive(Debug, Clone)]
struct Request {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
    status: u16,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The measurement and `peer` tag of every line, parsed.
    fn lines(&self) -> Vec<(String, Option<String>)> {
        parse_lines(self.body.as_bytes())
            .map(|l| {
                let l = l.unwrap();
                (l.measurement.to_string(), l.tag("peer").map(str::to_owned))
            })
            .collect()
    }
}

/// A receiver: answers 503 to the first `fail_first` requests, 204 after.
struct Receiver {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    failing: Arc<AtomicUsize>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicUsize::new(fail_first));
        let (reqs, fail) = (Arc::clone(&requests), Arc::clone(&failing));
        // Left running (blocked in accept) when the test ends.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(stream);
                // Requests on one connection, until it closes.
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().unwrap())
                        .expect("a content-length");
                    let mut body = vec![0u8; len];
                    reader.read_exact(&mut body).unwrap();
                    let status = if fail
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        503
                    } else {
                        204
                    };
                    reqs.lock().unwrap().push(Request {
                        request_line: request_line.trim_end().to_owned(),
                        headers,
                        body: String::from_utf8(body).unwrap(),
                        status,
                    });
                    let reply = if status == 503 {
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                    } else {
                        "HTTP/1.1 204 No Content\r\n\r\n"
                    };
                    if reader.get_mut().write_all(reply.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        Receiver {
            addr,
            requests,
            failing,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.requests();
            if done(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {r:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn delivered(reqs: &[Request], measurement: &str) -> Vec<Option<String>> {
    reqs.iter()
        .filter(|r| r.status == 204)
        .flat_map(Request::lines)
        .filter(|(m, _)| m == measurement)
        .map(|(_, p)| p)
        .collect()
}

fn connect(meter: &Meter, peer: &str) {
    let c = meter.connection("tcp").peer(peer).open();
    c.wrap(std::io::sink()).write_all(&[0; 100]).unwrap();
}

#[test]
fn lines_arrive_a_failing_receiver_keeps_them_and_shutdown_flushes() {
    let receiver = Receiver::start(2);
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records();
    for p in ["a", "b", "c", "d", "e"] {
        connect(&meter, p);
    }
    let mut config = ExportConfig::new(receiver.url(), "meter db");
    config.token = Some("t".into());
    config.tags = vec![("ingress_country".into(), "NL".into())];
    config.interval = Duration::from_millis(100);
    let exporter = Exporter::spawn(&meter, records, config).unwrap();

    // Two posts fail; the third delivers what they carried.
    let reqs = receiver.wait_for("a delivered post", |r| r.iter().any(|q| q.status == 204));
    assert_eq!(reqs[0].status, 503);
    assert_eq!(reqs[1].status, 503);
    for r in &reqs {
        assert_eq!(r.header("authorization"), Some("Token t"));
        assert!(
            r.request_line
                .starts_with("POST /write?db=meter+db&precision=ns ")
                || r.request_line
                    .starts_with("POST /write?db=meter%20db&precision=ns "),
            "{}",
            r.request_line
        );
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        for l in parse_lines(r.body.as_bytes()) {
            assert_eq!(l.unwrap().tag("ingress_country"), Some("NL"));
        }
    }
    let failed_lines: Vec<_> = reqs[0].lines();
    assert!(
        failed_lines
            .iter()
            .filter(|(m, _)| m == "meter_connection")
            .count()
            == 5,
        "the first post carried the five records: {failed_lines:?}"
    );
    let mut peers = delivered(&reqs, "meter_connection");
    peers.sort();
    let want: Vec<_> = ["a", "b", "c", "d", "e"].map(|p| Some(p.to_owned())).into();
    assert_eq!(peers, want, "retried, each exactly once");
    // The retried body is the failed one, and more (a snapshot per interval).
    let first_ok = reqs.iter().find(|r| r.status == 204).unwrap();
    assert!(first_ok.body.starts_with(&reqs[0].body));
    assert!(exporter.stats().posts_failed >= 2);
    assert!(delivered(&reqs, "meter").len() >= 2, "snapshot lines too");

    // Records made just before shutdown are flushed by it.
    for p in ["x", "y", "z"] {
        connect(&meter, p);
    }
    let stats = exporter.shutdown();
    let reqs = receiver.requests();
    let peers = delivered(&reqs, "meter_connection");
    for p in ["x", "y", "z"] {
        assert!(
            peers.contains(&Some(p.to_owned())),
            "{p} flushed: {peers:?}"
        );
    }
    assert_eq!(peers.len(), 8);
    let sent: usize = reqs
        .iter()
        .filter(|r| r.status == 204)
        .map(|r| r.lines().len())
        .sum();
    assert_eq!(stats.lines_sent, sent as u64);
    assert_eq!(stats.lines_dropped, 0);
    assert_eq!(receiver.failing.load(Ordering::SeqCst), 0);
    // The last post had a final snapshot that counts all eight connections.
    let last = reqs.last().unwrap();
    let m = parse_lines(last.body.as_bytes())
        .map(Result::unwrap)
        .find(|l| l.measurement == "meter")
        .unwrap()
        .into_owned();
    assert_eq!(m.field("connections_total"), Some(&FieldValue::UInteger(8)));
}

#[test]
fn aggregated_mode_sends_no_per_connection_data() {
    let receiver = Receiver::start(0);
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records();
    let mut config = ExportConfig::new(receiver.url(), "db");
    config.records = RecordMode::Aggregated(Duration::from_secs(300));
    config.traffic = false;
    config.interval = Duration::from_secs(3600);
    let exporter = Exporter::spawn(&meter, records, config).unwrap();
    for p in ["a", "b", "c"] {
        connect(&meter, p);
    }
    std::thread::sleep(Duration::from_millis(50));
    let stats = exporter.shutdown();
    let reqs = receiver.requests();
    assert_eq!(reqs.len(), 1, "one post, at shutdown: {reqs:#?}");
    assert!(reqs[0].header("authorization").is_none());
    let lines: Vec<_> = parse_lines(reqs[0].body.as_bytes())
        .map(|l| l.unwrap().into_owned())
        .collect();
    assert!(
        lines.iter().all(|l| l.measurement == "meter_aggregate"),
        "{lines:?}"
    );
    let conns: u64 = lines
        .iter()
        .map(|l| match l.field("connections") {
            Some(FieldValue::UInteger(n)) => *n,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(conns, 3);
    assert!(lines.iter().all(|l| l.tag("peer").is_none()));
    assert_eq!(stats.lines_sent, lines.len() as u64);
}

#[test]
fn an_unreachable_receiver_is_retried_and_the_queue_is_bounded() {
    // A port with nobody listening.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records();
    for i in 0..50 {
        connect(&meter, &format!("peer-{i}"));
    }
    let mut config = ExportConfig::new(format!("http://{addr}"), "db");
    config.interval = Duration::from_millis(50);
    config.traffic = false;
    config.max_pending_bytes = 2000; // fewer than fifty lines
    let exporter = Exporter::spawn(&meter, records, config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while exporter.stats().posts_failed < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Only the oldest lines went; the newest are kept for the next try.
    let before = exporter.stats();
    assert!(before.lines_dropped > 30, "{before:?}");
    assert!(before.lines_dropped < 50, "{before:?}");
    // At shutdown, what could not be delivered is counted as dropped.
    let stats = exporter.shutdown();
    assert_eq!(stats.lines_sent, 0);
    assert_eq!(stats.lines_dropped, 50, "{stats:?}");
}

#[test]
fn a_bad_url_is_an_error_at_spawn() {
    let meter = Meter::new(MeterConfig::default());
    let err = Exporter::spawn(&meter, None, ExportConfig::new("not a url", "db")).unwrap_err();
    assert!(err.to_string().contains("not a url"), "{err}");
}

/// The relay starts its exporter from async code: that must not panic
/// (reqwest's blocking client may not be built or dropped on a runtime
/// thread).
#[tokio::test]
async fn spawning_and_shutting_down_inside_a_tokio_runtime_works() {
    let receiver = Receiver::start(0);
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records();
    let mut config = ExportConfig::new(receiver.url(), "db");
    config.interval = Duration::from_secs(3600);
    let exporter = Exporter::spawn(&meter, records, config).unwrap();
    connect(&meter, "async-peer");
    // Blocks this runtime thread for the last post; no panic.
    let stats = exporter.shutdown();
    assert!(stats.lines_sent >= 2);
    let peers = delivered(&receiver.requests(), "meter_connection");
    assert_eq!(peers, [Some("async-peer".to_owned())]);
}
