//! `weir relay` as users run it: real processes on loopback — a weir
//! server with auth on, perfd as the target, curl and `weir probe` as the
//! clients — and the relay's records read back from the server over SQL.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{data_dir, eventually_within, http, run, server, spawn, Weir};
use serde_json::Value;

/// How long records may take to land (the relays here post every second).
const LANDING: Duration = Duration::from_secs(20);

/// A write token for database `relay`.
fn write_token(dir: &Path) -> String {
    let out = run(&[
        "token",
        "create",
        "--data-dir",
        dir.to_str().unwrap(),
        "--db",
        "relay",
        "--write",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

/// `weir perfd` on ephemeral ports: (process, http://ADDR, echo ADDR).
fn perfd() -> (Weir, String, SocketAddr) {
    let p = spawn(
        &[
            "perfd",
            "--listen",
            "127.0.0.1:0",
            "--echo-listen",
            "127.0.0.1:0",
        ],
        "weir perfd: ",
    );
    let base = p.url.trim_end_matches("/bulk/BYTES").to_owned();
    let echo = p
        .lines
        .last()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    (p, base, echo)
}

/// `weir relay --listen 127.0.0.1:0 <args…>`; its address is `url`.
fn relay(args: &[&str]) -> Weir {
    let mut all = vec!["relay", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    spawn(&all, "weir relay listening on ")
}

/// `weir relay` exporting to `server` (database `relay`) with `token`.
fn exporting_relay(server: &str, token: &str, extra: &[&str]) -> Weir {
    let mut args = vec!["--server", server, "--token", token, "--db", "relay"];
    args.extend_from_slice(extra);
    relay(&args)
}

/// curl's output; curl must succeed.
fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A SOCKS5 CONNECT to `target` written by hand: the stream and the reply code.
fn socks_connect(relay: &str, target: SocketAddr) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(relay).unwrap();
    s.set_read_timeout(Some(common::PATIENCE)).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).unwrap();
    assert_eq!(choice, [5, 0], "no authentication");
    let std::net::IpAddr::V4(ip) = target.ip() else {
        panic!("IPv4 targets here")
    };
    let mut request = vec![5, 1, 0, 1];
    request.extend_from_slice(&ip.octets());
    request.extend_from_slice(&target.port().to_be_bytes());
    s.write_all(&request).unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply[0], 5);
    (s, reply[1])
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `count(*)` of a query's rows in database `relay`; 0 while the table or
/// a column is not there yet.
fn count(url: &str, token: &str, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM {table} WHERE {filter}");
    let (status, body) = common::query(
        url,
        Some(token),
        serde_json::json!({"db": "relay", "sql": sql}),
    );
    if status != 200 {
        return 0;
    }
    serde_json::from_slice::<Value>(&body).unwrap()[0]["n"]
        .as_i64()
        .unwrap_or(0)
}

#[test]
fn relayed_traffic_is_metered_into_the_server() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let admin = weir.admin().to_owned();
    let token = write_token(&dir);
    let (_perfd, base, _) = perfd();
    let relay = exporting_relay(
        &weir.url,
        &token,
        &[
            "--tag",
            "ingress_country=SE",
            "--export-interval",
            "1s",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let addr = relay.url.clone();
    let bulk = format!("{base}/bulk/1048576");

    // SOCKS5 with the name resolved by the relay, and HTTP CONNECT.
    let body = curl(&["--socks5-hostname", &addr, &bulk]);
    assert_eq!(body.len(), 1_048_576);
    let by_name = bulk.replace("127.0.0.1", "localhost");
    assert_eq!(
        curl(&["--socks5-hostname", &addr, &by_name]).len(),
        1_048_576
    );
    let body = curl(&["-p", "-x", &format!("http://{addr}"), &bulk]);
    assert_eq!(body.len(), 1_048_576);
    // weir probe through it.
    let out = run(&["probe", "once", "--json", &bulk, "--socks5", &addr]);
    let probe: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert!(out.status.success() && probe["ok"] == true, "{probe}");
    assert_eq!(probe["bytes_received"], 1_048_576);
    // A closed port: reply 5, connection refused.
    let closed = SocketAddr::from(([127, 0, 0, 1], closed_port()));
    let (_s, code) = socks_connect(&addr, closed);
    assert_eq!(code, 0x05);

    // Prometheus text.
    let metrics = relay
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("weir relay: metrics on "))
        .unwrap()
        .to_owned();
    let text = http().get(&metrics).send().unwrap().text().unwrap();
    assert!(text.contains("weir_meter_bytes_total"), "{text}");
    assert!(
        text.contains(
            "weir_meter_bytes_total{scope=\"transport\",label=\"socks5\",direction=\"in\"}"
        ),
        "{text}"
    );

    // The records, in the server.
    let n = |filter: &str| count(&weir.url, &admin, "meter_connection", filter);
    let ok_socks = "transport = 'socks5' AND \"error\" IS NULL AND bytes_in >= 1048576 \
                    AND ingress_country = 'SE' AND remote_addr = '127.0.0.0' AND local_addr = '127.0.0.0' \
                    AND protocol = 'tcp' AND dial_us IS NOT NULL AND ok";
    eventually_within("the relay's records in the server", LANDING, || {
        n(ok_socks) >= 3
            && n("transport = 'http-connect' AND bytes_in >= 1048576 AND ingress_country = 'SE'")
                >= 1
            && n("peer = 'localhost' AND bytes_in >= 1048576") >= 1
            && n("\"error\" = 'refused' AND phase = 'dial' AND transport = 'socks5' AND NOT ok")
                == 1
            && count(
                &weir.url,
                &admin,
                "meter_traffic",
                "scope = 'transport' AND ingress_country = 'SE'",
            ) >= 1
    });
    assert_eq!(n("peer = '127.0.0.1' AND \"error\" = 'refused'"), 1);

    // SIGTERM: a clean exit.
    relay.stop();
    weir.stop();
}

#[test]
fn sigterm_posts_the_last_records_and_cuts_what_is_open() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let admin = weir.admin().to_owned();
    let token = write_token(&dir);
    let (_perfd, base, echo) = perfd();
    // Posting only once an hour: the records can only come from the last post.
    let mut relay = exporting_relay(
        &weir.url,
        &token,
        &[
            "--tag",
            "ingress_country=NO",
            "--export-interval",
            "1h",
            "--drain-timeout",
            "1s",
        ],
    );
    let addr = relay.url.clone();
    assert_eq!(
        curl(&["--socks5-hostname", &addr, &format!("{base}/bulk/4096")]).len(),
        4096
    );
    // A connection still open at SIGTERM.
    let (mut held, code) = socks_connect(&addr, echo);
    assert_eq!(code, 0);
    held.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    held.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");

    let start = Instant::now();
    relay.sigterm();
    let status = relay.wait();
    assert!(status.success(), "{status}; {}", relay.stderr());
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "drain 1 s, then cut"
    );
    // The relay closed the held connection.
    let mut rest = Vec::new();
    assert!(matches!(held.read_to_end(&mut rest), Ok(0) | Err(_)));

    let n = |table: &str, filter: &str| count(&weir.url, &admin, table, filter);
    assert_eq!(
        n(
            "meter_connection",
            "ingress_country = 'NO' AND \"error\" IS NULL AND bytes_in >= 4096"
        ),
        1
    );
    assert_eq!(
        n(
            "meter_connection",
            "ingress_country = 'NO' AND \"error\" = 'shutdown' AND bytes_in = 4 AND bytes_out = 4"
        ),
        1
    );
    assert!(n("meter_traffic", "ingress_country = 'NO'") >= 1);
    weir.stop();
}

#[test]
fn aggregates_instead_of_records_and_metering_off() {
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let admin = weir.admin().to_owned();
    let token = write_token(&dir);
    let (_perfd, base, _) = perfd();
    let bulk = format!("{base}/bulk/100000");
    let agg = exporting_relay(
        &weir.url,
        &token,
        &[
            "--tag",
            "ingress_country=FI",
            "--aggregate",
            "5m",
            "--export-interval",
            "1h",
        ],
    );
    for _ in 0..3 {
        assert_eq!(curl(&["--socks5-hostname", &agg.url, &bulk]).len(), 100_000);
    }
    agg.stop();
    let n = |table: &str, filter: &str| count(&weir.url, &admin, table, filter);
    assert_eq!(
        n(
            "meter_aggregate",
            "ingress_country = 'FI' AND transport = 'socks5' AND connections = 3 AND bytes_in >= 300000"
        ),
        1
    );
    assert_eq!(n("meter_connection", "1 = 1"), 0, "no per-connection data");

    // --no-meter: a plain relay.
    let plain = relay(&["--no-meter"]);
    assert!(plain.lines.last().unwrap().contains("metering off"));
    assert_eq!(
        curl(&["-p", "-x", &format!("http://{}", plain.url), &bulk]).len(),
        100_000
    );
    plain.stop();
    weir.stop();
}

#[test]
fn usage_errors_name_the_flag() {
    for (args, names) in [
        (&["relay", "--tag", "country"][..], "--tag"),
        (&["relay", "--tag", "=SE"], "--tag"),
        (&["relay", "--tag", "country="], "--tag"),
        (
            &[
                "relay", "--sample", "1.5", "--server", "http://x", "--db", "d",
            ],
            "--sample",
        ),
        (
            &["relay", "--no-meter", "--server", "http://x", "--db", "d"],
            "--no-meter",
        ),
        (&["relay", "--server", "http://x"], "--db"),
        (&["relay", "--user", "u"], "--password"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
    let out = run(&[
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--user",
        "",
        "--password",
        "p",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("username"));
}
