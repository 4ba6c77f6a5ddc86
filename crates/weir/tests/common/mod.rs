//! Helpers for tests that run the real `weir` binary as a server on an
//! ephemeral loopback port and talk to it over HTTP.

#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod dashboard_data;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest any wait in these tests may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// A running `weir` process.
pub(crate) struct Weir {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// The admin token it printed, if it printed one.
    pub(crate) admin: Option<String>,
    /// Every stdout line up to and including the address line.
    pub(crate) lines: Vec<String>,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

pub(crate) fn weir_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env_remove("WEIR_TOKEN").env("RUST_LOG", "warn");
    cmd
}

/// `weir server --listen 127.0.0.1:0 --data-dir <dir> <extra…>`.
pub(crate) fn server(dir: &Path, extra: &[&str]) -> Weir {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["server", "--listen", "127.0.0.1:0", "--data-dir", dir];
    args.extend_from_slice(extra);
    spawn(&args, "weir server listening on ")
}

/// `weir server --listen <listen> --data-dir <dir>`: a fixed address, so
/// a restarted server is where its clients expect it.
pub(crate) fn server_at(dir: &Path, listen: &str) -> Weir {
    let dir = dir.to_str().unwrap();
    spawn(
        &["server", "--listen", listen, "--data-dir", dir],
        "weir server listening on ",
    )
}

/// Runs `weir <args>` and waits (bounded) for the stdout line starting
/// with `marker`, which carries the URL.
pub(crate) fn spawn(args: &[&str], marker: &str) -> Weir {
    spawn_command(weir_command(), args, marker)
}

/// Runs `weir-agent <args>` (the agent alone) and waits as [`spawn`] does.
pub(crate) fn spawn_weir_agent(args: &[&str], marker: &str) -> Weir {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir-agent"));
    cmd.env("RUST_LOG", "warn");
    spawn_command(cmd, args, marker)
}

fn spawn_command(mut cmd: Command, args: &[&str], marker: &str) -> Weir {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the weir binary starts");
    let stderr = collect_stderr(&mut child);
    let (tx, rx) = mpsc::channel();
    let out_pipe = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out_pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut lines = Vec::new();
    let url = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                lines.push(line.clone());
                if let Some(rest) = line.strip_prefix(marker) {
                    break rest.split_whitespace().next().unwrap().to_owned();
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "weir {args:?} printed no {marker:?} line ({e}); stdout: {lines:?}; stderr: {}",
                    stderr.lock().unwrap()
                );
            }
        }
    };
    let admin = lines.iter().find_map(|l| admin_token_in(l));
    Weir {
        child,
        url,
        admin,
        lines,
        stdout: rx,
        stderr,
    }
}

/// Everything the child writes to its (piped) stderr, collected by a
/// background thread as it comes.
pub(crate) fn collect_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    stderr
}

/// Sends SIGTERM to `pid`.
pub(crate) fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}");
}

/// Waits (bounded by `PATIENCE`) for `child` to exit; `stderr` is what it
/// said, shown if it does not.
pub(crate) fn wait_for_exit(child: &mut Child, stderr: &Mutex<String>) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "weir did not exit within {PATIENCE:?}; stderr: {}",
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The token of an `admin token: weir_… (…)` line.
pub(crate) fn admin_token_in(line: &str) -> Option<String> {
    line.strip_prefix("admin token: ")?
        .split_whitespace()
        .next()
        .filter(|t| t.starts_with("weir_"))
        .map(str::to_owned)
}

impl Weir {
    /// The admin token, which this start must have printed.
    pub(crate) fn admin(&self) -> &str {
        self.admin.as_deref().expect("an admin token was printed")
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The next stdout line after the ones `spawn` read, within `PATIENCE`.
    pub(crate) fn next_line(&self) -> Option<String> {
        self.stdout.recv_timeout(PATIENCE).ok()
    }

    /// Sends SIGTERM.
    pub(crate) fn sigterm(&self) {
        sigterm(self.pid());
    }

    /// Waits (bounded) for the process to exit.
    pub(crate) fn wait(&mut self) -> ExitStatus {
        wait_for_exit(&mut self.child, &self.stderr)
    }

    /// SIGKILL, and reaps the process.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub(crate) fn stop(mut self) {
        self.sigterm();
        let status = self.wait();
        assert!(
            status.success(),
            "weir exited with {status}; stderr: {}",
            self.stderr()
        );
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP client that never waits forever.
pub(crate) fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// A request's status and body text.
pub(crate) fn answer(request: reqwest::blocking::RequestBuilder) -> (u16, String) {
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.text().unwrap())
}

/// `Authorization: Token <token>` added when there is a token.
pub(crate) fn with_token(
    request: reqwest::blocking::RequestBuilder,
    token: Option<&str>,
) -> reqwest::blocking::RequestBuilder {
    match token {
        Some(t) => request.header("Authorization", format!("Token {t}")),
        None => request,
    }
}

/// POSTs line protocol to `/write?<params>`.
pub(crate) fn write_v1(url: &str, token: Option<&str>, params: &str, body: &str) -> (u16, String) {
    answer(with_token(
        http()
            .post(format!("{url}/write?{params}"))
            .body(body.to_owned()),
        token,
    ))
}

/// POSTs line protocol to `/api/v2/write?<params>`.
pub(crate) fn write_v2(url: &str, token: Option<&str>, params: &str, body: &str) -> (u16, String) {
    answer(with_token(
        http()
            .post(format!("{url}/api/v2/write?{params}"))
            .body(body.to_owned()),
        token,
    ))
}

/// `POST /api/v1/query` with a JSON body; status and raw body.
pub(crate) fn query(url: &str, token: Option<&str>, body: serde_json::Value) -> (u16, Vec<u8>) {
    let response = with_token(
        http()
            .post(format!("{url}/api/v1/query"))
            .header("Content-Type", "application/json")
            .body(body.to_string()),
        token,
    )
    .send()
    .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().unwrap().to_vec())
}

/// The rows of a SQL query as JSON objects; the query must succeed.
pub(crate) fn rows(url: &str, token: Option<&str>, db: &str, sql: &str) -> Vec<serde_json::Value> {
    let (status, body) = query(url, token, serde_json::json!({"db": db, "sql": sql}));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{sql}: {text}");
    match serde_json::from_slice(&body).unwrap() {
        serde_json::Value::Array(rows) => rows,
        other => panic!("not an array: {other}"),
    }
}

/// `count(*)` of a table.
pub(crate) fn count(url: &str, token: Option<&str>, db: &str, table: &str) -> i64 {
    let rows = rows(
        url,
        token,
        db,
        &format!("SELECT count(*) AS n FROM {table}"),
    );
    rows[0]["n"].as_i64().unwrap()
}

/// Polls `f` every 20 ms until it is true, at most `PATIENCE`.
pub(crate) fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` every 100 ms until it is true, at most `limit`.
pub(crate) fn eventually_within(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh data directory.
pub(crate) fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    (dir, path)
}

/// Runs `weir <args>` to completion.
pub(crate) fn run(args: &[&str]) -> std::process::Output {
    weir_command().args(args).output().unwrap()
}
