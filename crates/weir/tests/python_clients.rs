//! Real InfluxDB clients against a real `weir server`: the PyPI packages
//! `influxdb` (v1 API) and `influxdb-client` (v2 API) write, and the points
//! come back through SQL. The test makes its own venv under the target
//! directory and installs both packages from PyPI the first time; without
//! python3, venv or PyPI it fails and says what is missing.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const PACKAGES: [&str; 2] = ["influxdb==5.3.2", "influxdb-client==1.50.0"];

const SCRIPT: &str = r#"
import sys
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxdb_client import InfluxDBClient as V2Client, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]

# v1: the token as password
v1 = InfluxDBClient(host=host, port=port, username="weir", password=token, database="pyv1")
assert v1.ping() == "1.8.10", v1.ping()
v1.create_database("pyv1")
names = [d["name"] for d in v1.get_list_database()]
assert "pyv1" in names, names
points = [
    {"measurement": "cpu", "tags": {"host": "h%d" % (i % 3)}, "time": 1700000000 + i,
     "fields": {"usage": i * 1.5, "n": i}}
    for i in range(100)
]
assert v1.write_points(points, time_precision="s", batch_size=40)
assert v1.write(["mem,host=h0 used=42i 1700000000"], params={"db": "pyv1", "precision": "s"},
                protocol="line")
try:
    v1.write(["mem,host=h1 used=43i 1700000001", "mem,host=h2 used=oops 1700000002"],
             params={"db": "pyv1", "precision": "s"}, protocol="line")
    raise SystemExit("a bad line was not refused")
except InfluxDBClientError as e:
    assert e.code == 400, e.code
    assert "line 2" in str(e.content), e.content
try:
    v1.query("SELECT * FROM cpu")
    raise SystemExit("InfluxQL SELECT was answered")
except InfluxDBClientError as e:
    assert "/api/v1/query" in str(e.content), e.content

# v2: Authorization: Token
v2 = V2Client(url="http://%s:%d" % (host, port), token=token, org="any")
w = v2.write_api(write_options=SYNCHRONOUS)
w.write(bucket="pyv2", record=[
    Point("net").tag("dst", "ams").field("rtt", 12.5).time(1700000000000000000),
    Point("net").tag("dst", "fra").field("rtt", 3.5).time(1700000001000000000),
])
w.write(bucket="pyv2", record="net,dst=lon rtt=7.25 1700000002", write_precision=WritePrecision.S)
try:
    w.write(bucket="pyv2", record="net,dst=par rtt=1 1700000003\nnet,dst=ber rtt=", write_precision=WritePrecision.S)
    raise SystemExit("a batch with a bad line was not refused")
except ApiException as e:
    assert e.status == 400, e.status
v2.close()
print("clients ok")
"#;

/// Runs `cmd`, failing the test with `what` if it does not finish in
/// `limit` or fails.
fn run_bounded(cmd: &mut Command, what: &str, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: {cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A venv with both client packages, made once under the target directory.
fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("influx-clients-venv");
    let python = dir.join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import influxdb, influxdb_client"])
            .output()
            .is_ok_and(|o| o.status.success());
    if ready {
        return python;
    }
    let _ = std::fs::remove_dir_all(&dir);
    run_bounded(
        Command::new("python3").args(["-m", "venv"]).arg(&dir),
        "making a Python venv (needs python3 with the venv module; Debian: apt-get install python3-venv)",
        Duration::from_secs(120),
    );
    run_bounded(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES),
        "installing the InfluxDB client packages from PyPI",
        Duration::from_secs(600),
    );
    python
}

#[test]
fn influxdb_python_clients_write_and_sql_reads_back() {
    let python = venv();
    let (_tmp, dir) = data_dir();
    let weir = server(&dir, &[]);
    let token = weir.admin().to_owned();
    let port = weir.url.rsplit(':').next().unwrap().to_owned();
    let out = run_bounded(
        Command::new(&python).args(["-c", SCRIPT, "127.0.0.1", &port, &token]),
        "the Python client script",
        Duration::from_secs(120),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "clients ok");

    let url = &weir.url;
    let t = Some(token.as_str());
    assert_eq!(
        rows(
            url,
            t,
            "pyv1",
            "SELECT count(*) AS n, sum(n) AS total, max(usage) AS top FROM cpu"
        ),
        [json!({"n": 100, "total": 4950, "top": 148.5})]
    );
    assert_eq!(
        rows(
            url,
            t,
            "pyv1",
            "SELECT host, count(*) AS n FROM cpu GROUP BY host ORDER BY host"
        ),
        [
            json!({"host": "h0", "n": 34}),
            json!({"host": "h1", "n": 33}),
            json!({"host": "h2", "n": 33})
        ]
    );
    // The partial write kept its good line.
    assert_eq!(
        rows(url, t, "pyv1", "SELECT host, used FROM mem ORDER BY host"),
        [
            json!({"host": "h0", "used": 42}),
            json!({"host": "h1", "used": 43})
        ]
    );
    // The v2 batch with a bad line left nothing behind.
    assert_eq!(
        rows(
            url,
            t,
            "pyv2",
            "SELECT dst, rtt, time FROM net ORDER BY time"
        ),
        [
            json!({"dst": "ams", "rtt": 12.5, "time": "2023-11-14T22:13:20Z"}),
            json!({"dst": "fra", "rtt": 3.5, "time": "2023-11-14T22:13:21Z"}),
            json!({"dst": "lon", "rtt": 7.25, "time": "2023-11-14T22:13:22Z"})
        ]
    );
    weir.stop();
}
