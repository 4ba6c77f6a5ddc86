//! The outputs against real listeners: a scripted HTTP server for weir,
//! InfluxDB v1 and v2 (requests recorded, answers canned), files, and TCP,
//! UDP and Unix sockets; and the delivery loop from a spool through them.

// Helpers outside #[test] fns unwrap too: in a test a panic is the report.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::outputs::{self, DeliverySettings, Output, OutputContext, OutputStats};
use agent::spool::Spool;
use agent::AgentConfig;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

/// One request as the fixture saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    /// The body, gunzipped if it came gzipped.
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn lines(&self) -> usize {
        self.body.iter().filter(|&&b| b == b'\n').count()
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn reply(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: String::new(),
    }
}

type Script = Box<dyn FnMut(&Request) -> Reply + Send>;

/// A minimal HTTP/1.1 server: reads headers and a Content-Length body,
/// records the request and answers what `script` says (`/query` always
/// gets 200).
async fn http_server(script: Script) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script));
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&seen2);
            let script = Arc::clone(&script);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut first = String::new();
                    if read.read_line(&mut first).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = first.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let target = parts.next().unwrap_or_default().to_owned();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        read.read_line(&mut h).await.unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .map_or(0, |(_, v)| v.parse().unwrap());
                    let mut body = vec![0; len];
                    read.read_exact(&mut body).await.unwrap();
                    if headers
                        .iter()
                        .any(|(k, v)| k == "content-encoding" && v == "gzip")
                    {
                        let mut plain = Vec::new();
                        flate2::read::GzDecoder::new(&body[..])
                            .read_to_end(&mut plain)
                            .unwrap();
                        body = plain;
                    }
                    let request = Request {
                        method,
                        target,
                        headers,
                        body,
                    };
                    let answer = if request.target.starts_with("/query") {
                        Reply {
                            status: 200,
                            headers: Vec::new(),
                            body: "{\"results\":[{\"statement_id\":0}]}".into(),
                        }
                    } else {
                        (script.lock().unwrap())(&request)
                    };
                    seen.lock().unwrap().push(request);
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
                        answer.status,
                        answer.body.len()
                    );
                    for (k, v) in &answer.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&answer.body);
                    if write.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn writes(seen: &Arc<Mutex<Vec<Request>>>) -> Vec<Request> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|r| !r.target.starts_with("/query"))
        .cloned()
        .collect()
}

fn build(toml: &str) -> Box<dyn Output> {
    let config = AgentConfig::from_toml_str(toml, "test.toml".as_ref()).unwrap();
    outputs::build(&config.outputs[0], &OutputContext::default()).unwrap()
}

fn build_err(toml: &str) -> String {
    let config = AgentConfig::from_toml_str(toml, "test.toml".as_ref()).unwrap();
    outputs::build(&config.outputs[0], &OutputContext::default())
        .unwrap_err()
        .to_string()
}

fn line(i: usize) -> String {
    format!(
        "ping,dst=h{} rtt={i}i {}\n",
        i % 3,
        1_700_000_000_000_000_000i64 + i as i64
    )
}

fn lines(range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(line).collect::<String>().into_bytes()
}

const BATCH: &[u8] =
    b"cpu,host=a usage=1.5 1700000000000000000\ncpu,host=b usage=2 1700000001000000000\n";

#[tokio::test]
async fn weir_sends_gzip_with_token_db_and_rp() {
    let (url, seen) = http_server(Box::new(|_| reply(204))).await;
    let mut out = build(&format!(
        "[[outputs.weir]]\nurls = [\"{url}\"]\ndatabase = \"net\"\nretention_policy = \"week\"\ntoken = \"s3cret\"\n"
    ));
    assert!(!format!("{out:?}").contains("s3cret"), "{out:?}");
    out.write(BATCH, 2).await.unwrap();
    let all = seen.lock().unwrap().clone();
    // The database is created first.
    assert_eq!(all[0].method, "POST");
    assert_eq!(all[0].target, "/query?q=CREATE+DATABASE+%22net%22");
    assert_eq!(all[0].header("authorization"), Some("Token s3cret"));
    let w = &writes(&seen)[0];
    assert_eq!(w.method, "POST");
    assert_eq!(w.target, "/write?db=net&rp=week");
    assert_eq!(w.header("authorization"), Some("Token s3cret"));
    assert_eq!(w.header("content-encoding"), Some("gzip"));
    assert!(w.header("user-agent").unwrap().starts_with("weir-agent/"));
    assert_eq!(w.body, BATCH);
}

#[tokio::test]
async fn influxdb_v1_sends_identity_with_basic_auth() {
    let (url, seen) = http_server(Box::new(|_| reply(204))).await;
    let mut out = build(&format!(
        "[[outputs.influxdb]]\nurl = \"{url}/\"\nusername = \"u\"\npassword = \"p\"\nskip_database_creation = true\nuser_agent = \"telegraf\"\n"
    ));
    out.write(BATCH, 2).await.unwrap();
    let all = seen.lock().unwrap().clone();
    assert_eq!(all.len(), 1, "no CREATE DATABASE: {all:?}");
    let w = &all[0];
    assert_eq!(w.target, "/write?db=telegraf");
    assert_eq!(w.header("authorization"), Some("Basic dTpw"));
    assert_eq!(w.header("content-encoding"), None);
    assert_eq!(w.header("user-agent"), Some("telegraf"));
    assert_eq!(w.body, BATCH);
}

#[tokio::test]
async fn influxdb_v2_sends_org_bucket_and_token() {
    let (url, seen) = http_server(Box::new(|_| reply(204))).await;
    let mut out = build(&format!(
        "[[outputs.influxdb_v2]]\nurls = [\"{url}\"]\ntoken = \"t\"\norganization = \"my org\"\nbucket = \"b\"\n"
    ));
    out.write(BATCH, 2).await.unwrap();
    let w = &writes(&seen)[0];
    assert_eq!(w.target, "/api/v2/write?org=my+org&bucket=b&precision=ns");
    assert_eq!(w.header("authorization"), Some("Token t"));
    assert_eq!(w.header("content-encoding"), Some("gzip"));
    assert_eq!(w.body, BATCH);
}

#[tokio::test]
async fn a_missing_database_is_created_and_the_batch_resent() {
    let mut n = 0;
    let (url, seen) = http_server(Box::new(move |_| {
        n += 1;
        if n == 1 {
            Reply {
                status: 404,
                headers: Vec::new(),
                body: "{\"error\":\"database not found: \\\"net\\\"\"}".into(),
            }
        } else {
            reply(204)
        }
    }))
    .await;
    let mut out = build(&format!(
        "[[outputs.weir]]\nurls = [\"{url}\"]\ndatabase = \"net\"\n"
    ));
    out.write(BATCH, 2).await.unwrap();
    let targets: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        targets,
        [
            "/query?q=CREATE+DATABASE+%22net%22",
            "/write?db=net",
            "/query?q=CREATE+DATABASE+%22net%22",
            "/write?db=net"
        ]
    );
}

#[tokio::test]
async fn status_codes_map_to_retry_rejected_and_too_large() {
    let mut n = 0;
    let (url, _seen) = http_server(Box::new(move |_| {
        n += 1;
        match n {
            1 => Reply {
                status: 503,
                headers: vec![("Retry-After", "7".into())],
                body: String::new(),
            },
            2 => reply(429),
            3 => reply(413),
            4 => Reply {
                status: 400,
                headers: Vec::new(),
                body: "{\"error\":\"partial write: 1 of 2 lines rejected\"}".into(),
            },
            5 => reply(401),
            6 => reply(408),
            7 => Reply {
                status: 302,
                headers: vec![("Location", "/elsewhere".into())],
                body: String::new(),
            },
            8 => reply(404),
            _ => reply(500),
        }
    }))
    .await;
    let mut out = build(&format!(
        "[[outputs.influxdb]]\nurls = [\"{url}\"]\nskip_database_creation = true\n"
    ));
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(
        matches!(&e, outputs::OutputError::Retry { after: Some(d), .. } if *d == Duration::from_secs(7)),
        "{e:?}"
    );
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(
        matches!(&e, outputs::OutputError::Retry { after: None, .. }),
        "{e:?}"
    );
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(matches!(&e, outputs::OutputError::TooLarge), "{e:?}");
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(
        matches!(&e, outputs::OutputError::Rejected { reason } if reason.contains("partial write: 1 of 2 lines rejected")),
        "{e:?}"
    );
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(matches!(&e, outputs::OutputError::Retry { .. }), "{e:?}");
    // 408: the same batch later.
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(matches!(&e, outputs::OutputError::Retry { .. }), "{e:?}");
    // A redirect is not followed (it would become a GET without the data):
    // the batch is kept. The next request is the same POST, not a GET of
    // /elsewhere.
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(matches!(&e, outputs::OutputError::Retry { .. }), "{e:?}");
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(matches!(&e, outputs::OutputError::Retry { .. }), "{e:?}");
    let seen = writes(&_seen);
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.method == "POST" && r.target.starts_with("/write")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_retry_and_the_next_url_is_tried() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut out = build(&format!(
        "[[outputs.weir]]\nurls = [\"{dead}\"]\nskip_database_creation = true\n"
    ));
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(matches!(&e, outputs::OutputError::Retry { .. }), "{e:?}");

    let (url, seen) = http_server(Box::new(|_| reply(204))).await;
    let mut out = build(&format!(
        "[[outputs.weir]]\nurls = [\"{dead}\", \"{url}\"]\nskip_database_creation = true\n"
    ));
    out.write(BATCH, 2).await.unwrap();
    assert_eq!(writes(&seen).len(), 1);
}

#[test]
fn bad_options_are_refused_by_name() {
    let e = build_err("[[outputs.weir]]\nurlz = [\"http://x\"]\n");
    assert!(e.contains("unknown field `urlz`"), "{e}");
    let e = build_err("[[outputs.weir]]\ncontent_encoding = \"br\"\n");
    assert!(e.contains("content_encoding"), "{e}");
    let e = build_err("[[outputs.influxdb_v2]]\nurls = [\"http://x\"]\n");
    assert!(e.contains("bucket"), "{e}");
    let e = build_err("[[outputs.socket_writer]]\naddress = \"sctp://x:1\"\n");
    assert!(e.contains("sctp"), "{e}");
    let e = build_err("[[outputs.nope]]\n");
    assert!(e.contains("unknown output `nope`"), "{e}");
}

// ---- the delivery loop ----

struct Running {
    spool: Arc<Spool>,
    stats: Arc<OutputStats>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn start(
    out: Box<dyn Output>,
    batch_size: usize,
    flush_interval: Duration,
    first: &[u8],
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), 1 << 30).unwrap());
    spool.append(first).unwrap();
    let stats = Arc::new(OutputStats::default());
    let wake = Arc::new(Notify::new());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(outputs::deliver(
        "test".into(),
        Arc::clone(&spool),
        out,
        DeliverySettings {
            batch_size,
            flush_interval,
            flush_jitter: Duration::from_millis(5),
        },
        Arc::clone(&stats),
        Arc::clone(&wake),
        shutdown,
    ));
    Running {
        spool,
        stats,
        wake,
        stop,
        task,
        _dir: dir,
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn retry_after_resends_the_same_batch_in_order() {
    let mut n = 0;
    let (url, seen) = http_server(Box::new(move |_| {
        n += 1;
        if n == 1 {
            Reply {
                status: 503,
                headers: vec![("Retry-After", "1".into())],
                body: "{\"error\":\"busy\"}".into(),
            }
        } else {
            reply(204)
        }
    }))
    .await;
    let out = build(&format!(
        "[[outputs.weir]]\nurls = [\"{url}\"]\nskip_database_creation = true\n"
    ));
    let r = start(out, 4, Duration::from_millis(20), &lines(0..6));
    let started = std::time::Instant::now();
    until("all written", || {
        r.stats.written.load(Ordering::Relaxed) == 6
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    let w = writes(&seen);
    let bodies: Vec<Vec<u8>> = w.iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies, [lines(0..4), lines(0..4), lines(4..6)]);
    assert_eq!(r.stats.retries.load(Ordering::Relaxed), 1);
    assert_eq!(r.spool.stats().lines, 0);
    r.stop().await;
}

#[tokio::test]
async fn too_large_halves_the_batch_and_everything_arrives_in_order() {
    let (url, seen) = http_server(Box::new(|req| {
        if req.lines() > 2 {
            reply(413)
        } else {
            reply(204)
        }
    }))
    .await;
    let out = build(&format!(
        "[[outputs.influxdb]]\nurls = [\"{url}\"]\nskip_database_creation = true\n"
    ));
    let r = start(out, 8, Duration::from_millis(20), &lines(0..11));
    until("all written", || {
        r.stats.written.load(Ordering::Relaxed) == 11
    })
    .await;
    let accepted: Vec<u8> = writes(&seen)
        .iter()
        .filter(|w| w.lines() <= 2)
        .flat_map(|w| w.body.clone())
        .collect();
    assert_eq!(
        String::from_utf8(accepted).unwrap(),
        String::from_utf8(lines(0..11)).unwrap()
    );
    assert_eq!(r.stats.dropped.load(Ordering::Relaxed), 0);
    r.stop().await;
}

#[tokio::test]
async fn a_single_line_too_large_is_dropped() {
    let (url, _seen) = http_server(Box::new(|req| {
        // Two lines are too many; line 1 is too large even alone.
        if req.lines() > 1 || req.body.starts_with(b"ping,dst=h1 ") {
            reply(413)
        } else {
            reply(204)
        }
    }))
    .await;
    let out = build(&format!(
        "[[outputs.influxdb]]\nurls = [\"{url}\"]\nskip_database_creation = true\n"
    ));
    let r = start(out, 4, Duration::from_millis(20), &lines(0..3));
    until("done", || r.spool.stats().lines == 0).await;
    assert_eq!(r.stats.written.load(Ordering::Relaxed), 2);
    assert_eq!(r.stats.dropped.load(Ordering::Relaxed), 1);
    r.stop().await;
}

#[tokio::test]
async fn a_rejected_batch_is_dropped_and_the_next_delivered() {
    let mut n = 0;
    let (url, seen) = http_server(Box::new(move |_| {
        n += 1;
        if n == 1 {
            Reply {
                status: 400,
                headers: Vec::new(),
                body: "{\"error\":\"partial write: 1 of 2 lines rejected\"}".into(),
            }
        } else {
            reply(204)
        }
    }))
    .await;
    let out = build(&format!(
        "[[outputs.weir]]\nurls = [\"{url}\"]\nskip_database_creation = true\n"
    ));
    let r = start(out, 2, Duration::from_millis(20), &lines(0..4));
    until("all sent", || r.spool.stats().lines == 0).await;
    let bodies: Vec<Vec<u8>> = writes(&seen).iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies, [lines(0..2), lines(2..4)]);
    assert_eq!(r.stats.dropped.load(Ordering::Relaxed), 2);
    assert_eq!(r.stats.written.load(Ordering::Relaxed), 2);
    assert_eq!(r.stats.errors.load(Ordering::Relaxed), 1);
    r.stop().await;
}

/// An output that keeps what it is given.
#[derive(Debug, Clone, Default)]
struct Capture(Arc<Mutex<Vec<Vec<u8>>>>);

impl Output for Capture {
    fn write<'a>(&'a mut self, batch: &'a [u8], _lines: usize) -> outputs::WriteFuture<'a> {
        self.0.lock().unwrap().push(batch.to_vec());
        Box::pin(std::future::ready(Ok(())))
    }
}

#[tokio::test]
async fn deliver_picks_up_appended_lines_when_woken_and_acks_them() {
    let capture = Capture::default();
    let r = start(Box::new(capture.clone()), 5, Duration::from_secs(3600), b"");
    r.spool.append(&lines(0..7)).unwrap();
    r.wake.notify_one();
    until("7 written", || r.stats.written.load(Ordering::Relaxed) == 7).await;
    assert_eq!(r.spool.stats().lines, 0);
    r.spool.append(&lines(7..9)).unwrap();
    r.wake.notify_one();
    until("9 written", || r.stats.written.load(Ordering::Relaxed) == 9).await;
    let got: Vec<Vec<u8>> = capture.0.lock().unwrap().clone();
    assert_eq!(got, [lines(0..5), lines(5..7), lines(7..9)]);
    r.stop().await;
}

#[tokio::test]
async fn deliver_flushes_on_its_interval_and_once_more_on_shutdown() {
    let capture = Capture::default();
    let r = start(
        Box::new(capture.clone()),
        100,
        Duration::from_millis(30),
        &lines(0..3),
    );
    until("3 written", || r.stats.written.load(Ordering::Relaxed) == 3).await;
    let r2 = {
        r.stop.send(true).unwrap();
        r
    };
    // Appended after the stop was asked: the last flush may or may not
    // take it; either way nothing is lost.
    r2.spool.append(&lines(3..4)).unwrap();
    tokio::time::timeout(Duration::from_secs(10), r2.task)
        .await
        .unwrap()
        .unwrap();
    let sent: usize = capture
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .sum();
    assert_eq!(sent as u64 + r2.spool.stats().lines, 4);
}

#[tokio::test]
async fn shutdown_during_a_backoff_returns_promptly_and_keeps_the_data() {
    let (url, _seen) = http_server(Box::new(|_| reply(503))).await;
    let out = build(&format!(
        "[[outputs.weir]]\nurls = [\"{url}\"]\nskip_database_creation = true\n"
    ));
    let r = start(out, 10, Duration::from_millis(10), &lines(0..3));
    until("a retry", || r.stats.retries.load(Ordering::Relaxed) >= 1).await;
    let spool = Arc::clone(&r.spool);
    let t = std::time::Instant::now();
    r.stop().await;
    assert!(t.elapsed() < Duration::from_secs(6));
    assert_eq!(spool.stats().lines, 3);
}

// ---- file ----

#[tokio::test]
async fn file_writes_line_protocol_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let influx = dir.path().join("m.out");
    let json = dir.path().join("m.json");
    let mut out = build(&format!(
        "[[outputs.file]]\nfiles = [\"{}\"]\n",
        influx.display()
    ));
    out.write(BATCH, 2).await.unwrap();
    out.write(BATCH, 2).await.unwrap();
    assert_eq!(std::fs::read(&influx).unwrap(), [BATCH, BATCH].concat());

    let mut out = build(&format!(
        "[[outputs.file]]\nfiles = [\"{}\"]\ndata_format = \"json\"\n",
        json.display()
    ));
    out.write(
        b"cpu,host=a usage=1.5,n=3i,ok=true,s=\"x\" 1700000000123456789\n",
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&json).unwrap(),
        "{\"fields\":{\"n\":3,\"ok\":true,\"s\":\"x\",\"usage\":1.5},\"name\":\"cpu\",\"tags\":{\"host\":\"a\"},\"timestamp\":1700000000}\n"
    );

    let ms = dir.path().join("ms.json");
    let mut out = build(&format!(
        "[[outputs.file]]\nfiles = [\"{}\"]\ndata_format = \"json\"\njson_timestamp_units = \"1ms\"\n",
        ms.display()
    ));
    out.write(b"cpu usage=1 1700000000123456789\n", 1)
        .await
        .unwrap();
    assert!(std::fs::read_to_string(&ms)
        .unwrap()
        .contains("\"timestamp\":1700000000123"));
}

#[tokio::test]
async fn file_rotates_by_size_and_keeps_max_archives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.out");
    let mut out = build(&format!(
        "[[outputs.file]]\nfiles = [\"{}\"]\nrotation_max_size = {}\nrotation_max_archives = 2\n",
        path.display(),
        BATCH.len() * 2
    ));
    for _ in 0..7 {
        out.write(BATCH, 2).await.unwrap();
        // Archives are ordered by modification time.
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"metrics.out".to_owned()));
    for n in &names {
        assert!(n.starts_with("metrics.") && n.ends_with(".out"), "{n}");
        let size = std::fs::metadata(dir.path().join(n)).unwrap().len();
        assert!(size <= (BATCH.len() * 2) as u64, "{n}: {size}");
    }
    // Archives are named by their UTC date and Unix time.
    let today = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    for n in names.iter().filter(|n| *n != "metrics.out") {
        assert!(n.starts_with(&format!("metrics.{}-", &today[..10])), "{n}");
    }
    // The current file holds the last batch.
    assert_eq!(std::fs::read(&path).unwrap(), BATCH);
}

#[test]
fn stdout_accepts_the_file_options() {
    let config = AgentConfig::from_toml_str(
        "[[outputs.stdout]]\ndata_format = \"json\"\n",
        "t.toml".as_ref(),
    )
    .unwrap();
    outputs::build(&config.outputs[0], &OutputContext::default()).unwrap();
}

// ---- socket_writer ----

#[tokio::test]
async fn socket_writer_tcp_reconnects_after_the_peer_goes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut out = build(&format!(
        "[[outputs.socket_writer]]\naddress = \"tcp://{addr}\"\n"
    ));
    out.write(BATCH, 2).await.unwrap();
    let (mut conn, _) = listener.accept().await.unwrap();
    let mut got = vec![0; BATCH.len()];
    conn.read_exact(&mut got).await.unwrap();
    assert_eq!(got, BATCH);
    drop(conn);

    // The first writes after the peer left may still "succeed" into the
    // kernel; within a few, one fails and the next reconnects.
    let mut reconnected = None;
    for _ in 0..20 {
        let _ = out.write(BATCH, 2).await;
        if let Ok(Ok((c, _))) =
            tokio::time::timeout(Duration::from_millis(50), listener.accept()).await
        {
            reconnected = Some(c);
            break;
        }
    }
    let mut conn = reconnected.expect("no reconnection");
    out.write(b"last v=1 1\n", 1).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(b"last v=1 1\n") {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn socket_writer_udp_sends_a_datagram_per_line() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let mut out = build(&format!("[[outputs.socket]]\naddress = \"udp://{addr}\"\n"));
    out.write(BATCH, 2).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut buf = [0u8; 2048];
        let n = socket.recv(&mut buf).await.unwrap();
        got.push(buf[..n].to_vec());
    }
    let want: Vec<Vec<u8>> = BATCH
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.to_vec())
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn socket_writer_unix_stream_and_datagram() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let mut out = build(&format!(
        "[[outputs.socket_writer]]\naddress = \"unix://{}\"\ndata_format = \"json\"\n",
        path.display()
    ));
    out.write(b"m v=1i 2000000000\n", 1).await.unwrap();
    let (mut conn, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.ends_with(b"\n") {
        let n = conn.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "{\"fields\":{\"v\":1},\"name\":\"m\",\"tags\":{},\"timestamp\":2}\n"
    );

    let gram = dir.path().join("g.sock");
    let socket = tokio::net::UnixDatagram::bind(&gram).unwrap();
    let mut out = build(&format!(
        "[[outputs.socket_writer]]\naddress = \"unixgram://{}\"\n",
        gram.display()
    ));
    out.write(BATCH, 2).await.unwrap();
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(
        &buf[..n],
        BATCH.split_inclusive(|&b| b == b'\n').next().unwrap()
    );
}

#[tokio::test]
async fn socket_writer_unreachable_is_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = build(&format!(
        "[[outputs.socket_writer]]\naddress = \"unix://{}\"\n",
        dir.path().join("nobody").display()
    ));
    let e = out.write(BATCH, 2).await.unwrap_err();
    assert!(matches!(e, outputs::OutputError::Retry { .. }), "{e:?}");
}
