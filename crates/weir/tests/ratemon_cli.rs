//! `weir ratemon` as a real process: it monitors `lo` while the test moves
//! a known number of bytes over loopback; its control port answers every
//! command, bad JSON and unknown keys, and two clients at once; `weir
//! ratemon ctl` drives it; `--server` lands records in a real server.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running `weir ratemon` and what it said on stderr.
struct Ratemon {
    child: Child,
    stderr: Arc<Mutex<String>>,
    control: Option<SocketAddr>,
}

const START_LINE: &str = "weir ratemon: sampling ";

fn ratemon(args: &[&str]) -> Ratemon {
    let mut child = common::weir_command()
        .arg("ratemon")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir ratemon starts");
    let stderr = common::collect_stderr(&mut child);
    let deadline = Instant::now() + common::PATIENCE;
    let line = loop {
        let text = stderr.lock().unwrap().clone();
        if let Some(line) = text.lines().find(|l| l.starts_with(START_LINE)) {
            break line.to_owned();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("weir ratemon exited with {status}: {text}");
        }
        assert!(Instant::now() < deadline, "no start line: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let control = line
        .split("control port ")
        .nth(1)
        .map(|a| a.trim().parse().expect("a control address"));
    Ratemon {
        child,
        stderr,
        control,
    }
}

impl Ratemon {
    fn control(&self) -> SocketAddr {
        self.control.expect("a control port")
    }

    fn ask(&self, request: Value) -> Value {
        ratemon::control::request(self.control(), &request, Duration::from_secs(10))
            .expect("an answer")
    }

    fn sigterm(&self) {
        common::sigterm(self.child.id());
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        common::wait_for_exit(&mut self.child, &self.stderr)
    }
}

impl Drop for Ratemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each record is one JSON object"))
        .collect()
}

fn wait_for_records(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        let r = records(path);
        if r.len() >= n {
            return r;
        }
        assert!(Instant::now() < deadline, "{} records, wanted {n}", r.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_rate_of_lo_accounts_for_the_bytes_sent_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lo.jsonl");
    let mut mon = ratemon(&[
        "-i",
        "lo",
        "-s",
        "1000",
        "-e",
        "0.5",
        "-m",
        "0.5",
        "-k",
        "100000",
        "--no-control",
        "-f",
        file.to_str().unwrap(),
    ]);
    wait_for_records(&file, 1);
    // A sink on loopback, and 512 MiB written to it.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return total;
            }
            total += n as u64;
        }
    });
    let sent: u64 = 512 << 20;
    let mut s = TcpStream::connect(addr).unwrap();
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..(sent >> 20) {
        s.write_all(&chunk).unwrap();
    }
    drop(s);
    assert_eq!(reader.join().unwrap(), sent);
    let before = records(&file).len();
    // Two more intervals so the last bytes are in a finished one.
    wait_for_records(&file, before + 3);
    mon.sigterm();
    assert!(mon.wait().success());
    let all = records(&file);
    let bytes = |key: &str| {
        all.iter()
            .map(|r| r[key].as_f64().unwrap() * 0.5)
            .sum::<f64>()
    };
    // Loopback carries the payload plus headers and acknowledgements
    // (well under 1 %), and whatever else this machine sends over lo.
    for key in ["tx", "rx"] {
        let seen = bytes(key);
        let ratio = seen / sent as f64;
        assert!(
            (0.95..1.05).contains(&ratio),
            "{key}: {seen} bytes seen for {sent} sent ({ratio})"
        );
    }
    let r = &all[all.len() - 1];
    assert_eq!(r["interface"], "lo");
    assert_eq!(r["linerate"], json!(100000.0 * 125000.0));
    assert!(
        r["overload_risk_tx"].is_number() && r["alarm_tx"].is_boolean(),
        "{r}"
    );
    // How close to 1000 it gets is the benchmark's business (a loaded
    // machine falls behind); here: reported, and never above the request.
    let achieved = r["achieved_sample_rate"].as_f64().unwrap();
    assert!(achieved > 0.0 && achieved <= 1010.0, "{r}");
    for key in [
        "jitter_p50_us",
        "jitter_p99_us",
        "zero_delta_samples",
        "samples",
        "var_tx",
        "sample_rate",
    ] {
        assert!(r[key].is_number(), "{key} in {r}");
    }
    // The burst moved the mean well above an idle lo.
    let peak = all
        .iter()
        .map(|r| r["tx"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(peak > 100e6, "peak tx {peak} B/s");
}

#[test]
fn the_control_port_answers_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.jsonl");
    let mon = ratemon(&[
        "-i",
        "lo",
        "-s",
        "500",
        "-e",
        "0.2",
        "-m",
        "0.2",
        "--control-port",
        "0",
        "-f",
        file.to_str().unwrap(),
    ]);
    let status = mon.ask(json!({"status": true}));
    assert_eq!(status["ok"], true, "{status}");
    let st = &status["status"];
    assert_eq!(
        (st["state"].as_str(), st["interface"].as_str()),
        (Some("running"), Some("lo"))
    );
    assert_eq!(st["linerate"], Value::Null);
    assert!(
        st["linerate_missing"]
            .as_str()
            .unwrap()
            .contains("/sys/class/net/lo/speed"),
        "{st}"
    );

    // Pause: no record is written while paused; resume: they come again.
    assert_eq!(mon.ask(json!({"pause": true}))["status"]["state"], "paused");
    std::thread::sleep(Duration::from_millis(300));
    let paused_at = records(&file).len();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(records(&file).len(), paused_at, "records while paused");
    assert_eq!(
        mon.ask(json!({"resume": true}))["status"]["state"],
        "running"
    );
    wait_for_records(&file, paused_at + 2);

    // Every setting, checked in the status and then in the records.
    let answer = mon.ask(json!({
        "sample_rate": 250, "estimation_interval": 0.4, "meter_interval": 0.4,
        "link_speed": 100, "alarm_trigger": 80, "cutoff": 90
    }));
    let st = &answer["status"];
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(st["sample_rate"], 250.0);
    assert_eq!(
        (
            st["estimation_interval"].as_f64(),
            st["meter_interval"].as_f64()
        ),
        (Some(0.4), Some(0.4))
    );
    assert_eq!(
        (st["link_speed"].as_f64(), st["linerate"].as_f64()),
        (Some(100.0), Some(12.5e6))
    );
    assert_eq!(
        (st["alarm_trigger"].as_f64(), st["cutoff"].as_f64()),
        (Some(80.0), Some(90.0))
    );
    let n = records(&file).len();
    let r = wait_for_records(&file, n + 2).pop().unwrap();
    assert_eq!(
        (r["sample_rate"].as_f64(), r["meter_interval"].as_f64()),
        (Some(250.0), Some(0.4)),
        "{r}"
    );
    assert_eq!(
        (r["alarm_trigger_value"].as_f64(), r["cutoff"].as_f64()),
        (Some(80.0), Some(90.0)),
        "{r}"
    );
    assert!(r["overload_risk_rx"].is_number(), "{r}");
    let achieved = r["achieved_sample_rate"].as_f64().unwrap();
    assert!(
        achieved > 0.0 && achieved <= 252.5,
        "achieved {achieved} of 250"
    );

    // Back to the driver's (absent) speed: no risk again.
    assert_eq!(
        mon.ask(json!({"link_speed": null}))["status"]["linerate"],
        Value::Null
    );

    // Bad requests: an error object each, nothing changed.
    let bad = |req: &str| {
        let mut s = TcpStream::connect(mon.control()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ok"], false, "{req} → {v}");
        v["error"].as_str().unwrap().to_owned()
    };
    assert!(bad("{\"status\": tru").starts_with("bad JSON at line 1, column"));
    assert!(bad("{\"bogus\": 1}\n").contains("unknown key `bogus`"));
    assert!(bad("not json at all").starts_with("bad JSON"));
    assert!(bad("{\"sample_rate\": 0}").contains("sample_rate"));
    assert!(bad("{\"interface\": \"nosuch0\"}").contains("no interface named `nosuch0`"));
    assert!(bad("{\"cutoff\": \"lots\"}").contains("`cutoff` must be a number"));
    let st = mon.ask(json!({"status": true}));
    assert_eq!(
        (
            st["status"]["interface"].as_str(),
            st["status"]["sample_rate"].as_f64()
        ),
        (Some("lo"), Some(250.0))
    );
    assert_eq!(mon.ask(json!({"interface": "lo"}))["ok"], true);
}

#[test]
fn two_control_clients_at_once_and_ctl_exits_the_monitor() {
    let mut mon = ratemon(&[
        "-i",
        "lo",
        "-e",
        "0.5",
        "-m",
        "0.5",
        "--control-port",
        "0",
        "-d",
    ]);
    let addr = mon.control();
    // Two connections open together, each asking twice, interleaved.
    let open = || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        (s, r)
    };
    let (mut a, mut ra) = open();
    let (mut b, mut rb) = open();
    let line = |r: &mut BufReader<TcpStream>| {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        serde_json::from_str::<Value>(&l).unwrap()
    };
    a.write_all(b"{\"alarm_trigger\": 50}\n").unwrap();
    b.write_all(b"{\"nope\": true}\n").unwrap();
    assert_eq!(line(&mut rb)["ok"], false);
    assert_eq!(line(&mut ra)["status"]["alarm_trigger"], 50.0);
    b.write_all(b"{\"status\": true}\n").unwrap();
    a.write_all(b"{\"cutoff\": 70}\n").unwrap();
    assert_eq!(line(&mut ra)["status"]["cutoff"], 70.0);
    assert_eq!(line(&mut rb)["status"]["alarm_trigger"], 50.0);

    // The client: status, a change, then exit.
    let port = addr.port().to_string();
    let out = common::run(&["ratemon", "ctl", "--port", &port, "--status"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"]["cutoff"], 70.0);
    let out = common::run(&["ratemon", "ctl", "--port", &port, "-s", "200", "-k", "1000"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["status"]["sample_rate"].as_f64(),
            v["status"]["linerate"].as_f64()
        ),
        (Some(200.0), Some(125e6))
    );
    let out = common::run(&["ratemon", "ctl", "--port", &port, "-a", "101"]);
    assert!(!out.status.success(), "an out-of-range trigger is refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("alarm_trigger"),
        "{out:?}"
    );
    let out = common::run(&["ratemon", "ctl", "--port", &port, "--exit"]);
    assert!(out.status.success(), "{out:?}");
    assert!(mon.wait().success());
}

#[test]
fn start_errors_name_what_is_wrong() {
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    let out = common::run(&["ratemon", "-i", "nosuch0", "--no-control", "-d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no interface named `nosuch0`"),
        "{out:?}"
    );
    let out = common::run(&["ratemon", "-i", "lo", "-s", "0", "--no-control"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("sample_rate"), "{out:?}");
    // Checked before anything starts, --server's spool included.
    let out = common::run(&[
        "ratemon",
        "-i",
        "lo",
        "-m",
        "nan",
        "--no-control",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--db",
        "d",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("meter_interval"), "{out:?}");
    let out = common::run(&["ratemon", "-i", "lo", "--no-control", "-d", "-f", "x.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "-d and -f conflict: {out:?}");
    // A control port in use is named.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = common::run(&["ratemon", "-i", "lo", "-d", "--control-port", &port]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("binding the control port"), "{out:?}");
}

#[test]
fn records_reach_a_weir_server_and_the_tcp_port() {
    let (_dir, data) = common::data_dir();
    let server = common::server(&data, &[]);
    let spool = tempfile::tempdir().unwrap();
    // The original's -b: a local TCP listener gets each record as a JSON line.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut mon = ratemon(&[
        "-i",
        "lo",
        "-e",
        "0.5",
        "-m",
        "1",
        "-k",
        "1000",
        "--no-control",
        "-b",
        &port,
        "--server",
        &server.url,
        "--token",
        server.admin(),
        "--db",
        "net",
        "--spool-dir",
        spool.path().to_str().unwrap(),
    ]);
    let (conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).unwrap();
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["interface"], "lo");
    common::eventually("ratemon rows in the server", || {
        let sql = json!({"db": "net", "sql": "SELECT count(*) AS n FROM ratemon"});
        let (status, body) = common::query(&server.url, Some(server.admin()), sql);
        // 404 until the first write creates the database.
        status == 200
            && serde_json::from_slice::<Value>(&body).unwrap()[0]["n"]
                .as_i64()
                .unwrap()
                >= 2
    });
    let rows = common::rows(
        &server.url,
        Some(server.admin()),
        "net",
        "SELECT interface, linerate, overload_risk_tx, alarm_tx, samples FROM ratemon ORDER BY time LIMIT 1",
    );
    assert_eq!(rows[0]["interface"], "lo");
    assert_eq!(rows[0]["linerate"], 125e6);
    assert!(
        rows[0]["overload_risk_tx"].is_number() && rows[0]["alarm_tx"].is_boolean(),
        "{rows:?}"
    );
    assert!(rows[0]["samples"].as_i64().unwrap() > 500, "{rows:?}");
    mon.sigterm();
    assert!(mon.wait().success(), "{}", mon.stderr.lock().unwrap());
}

/// A sysfs tree with interfaces whose counters the test writes: each file
/// holds a fixed-width number, overwritten in place by one `pwrite` (the
/// monitor holds the files open, so they cannot be replaced).
struct FakeSys {
    dir: tempfile::TempDir,
}

impl FakeSys {
    fn new(interfaces: &[(&str, &str)]) -> FakeSys {
        let dir = tempfile::tempdir().unwrap();
        for (i, (name, speed)) in interfaces.iter().enumerate() {
            let d = dir.path().join("class/net").join(name);
            std::fs::create_dir_all(d.join("statistics")).unwrap();
            std::fs::write(d.join("ifindex"), format!("{}\n", 100 + i)).unwrap();
            std::fs::write(d.join("speed"), format!("{speed}\n")).unwrap();
            for f in ["rx_bytes", "tx_bytes"] {
                std::fs::write(d.join("statistics").join(f), format!("{:020}\n", 0)).unwrap();
            }
        }
        FakeSys { dir }
    }

    fn set(&self, interface: &str, counter: &str, value: u64) {
        use std::os::unix::fs::FileExt;
        let path = self.dir.path().join("class/net").join(interface);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path.join("statistics").join(counter))
            .unwrap();
        file.write_all_at(format!("{value:020}\n").as_bytes(), 0)
            .unwrap();
    }
}

#[test]
fn a_fake_interface_gives_its_rate_and_line_rate_and_can_be_switched() {
    let sys = FakeSys::new(&[("fake0", "1000"), ("fake1", "100")]);
    // Near the top of u64, so that tx wraps on the way.
    let start = u64::MAX - 5_000_000;
    sys.set("fake0", "tx_bytes", start);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.jsonl");
    let mon = ratemon(&[
        "--counters",
        "sysfs",
        "--sys",
        sys.dir.path().to_str().unwrap(),
        "-i",
        "fake0",
        "-s",
        "200",
        "-e",
        "0.5",
        "-m",
        "0.5",
        "--control-port",
        "0",
        "-f",
        file.to_str().unwrap(),
    ]);
    let st = mon.ask(json!({"status": true}));
    let st = &st["status"];
    assert_eq!(
        (st["linerate"].as_f64(), st["counters"].as_str()),
        (Some(125e6), Some("sysfs")),
        "{st}"
    );
    wait_for_records(&file, 1);
    // 1 MB every 10 ms on tx, half of that on rx, for 1.5 s.
    let (mut tx, mut rx, mut sent) = (start, 0u64, 0u64);
    let begin = Instant::now();
    while begin.elapsed() < Duration::from_millis(1500) {
        tx = tx.wrapping_add(1_000_000);
        rx += 500_000;
        sent += 1_000_000;
        sys.set("fake0", "tx_bytes", tx);
        sys.set("fake0", "rx_bytes", rx);
        std::thread::sleep(Duration::from_millis(10));
    }
    let n = records(&file).len();
    let all = wait_for_records(&file, n + 2);
    let seen = |key: &str| {
        all.iter()
            .map(|r| r[key].as_f64().unwrap() * 0.5)
            .sum::<f64>()
    };
    let (seen_tx, seen_rx) = (seen("tx"), seen("rx"));
    assert!(
        ((seen_tx - sent as f64) / sent as f64).abs() < 0.05,
        "tx {seen_tx} B for {sent} across the wrap"
    );
    assert!(
        ((seen_rx - (sent / 2) as f64) / (sent / 2) as f64).abs() < 0.05,
        "rx {seen_rx} B for {}",
        sent / 2
    );
    assert!(
        all.iter()
            .all(|r| r["linerate"] == json!(125e6) && r["counter_resets"] == 0),
        "{all:?}"
    );
    // Switch to fake1: its own line rate, its own (still) counters.
    let st = mon.ask(json!({"interface": "fake1"}));
    let st = &st["status"];
    assert_eq!(
        (st["interface"].as_str(), st["linerate"].as_f64()),
        (Some("fake1"), Some(12.5e6)),
        "{st}"
    );
    let n = records(&file).len();
    let r = wait_for_records(&file, n + 2).pop().unwrap();
    assert_eq!(
        (
            r["interface"].as_str(),
            r["linerate"].as_f64(),
            r["tx"].as_f64()
        ),
        (Some("fake1"), Some(12.5e6), Some(0.0)),
        "{r}"
    );
}
