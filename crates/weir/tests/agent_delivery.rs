//! The agent delivers across outages: a real `weir agent` sends to a real
//! `weir server` that is stopped for 30 s and, later, the agent is
//! SIGKILLed while its spool holds points and restarted as `weir-agent`,
//! the agent-only binary, on the same state directory. Every point the
//! agent gathered (recorded by a second output, a file) must be in the
//! server at the end, and each only once.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{eventually, run, spawn, spawn_weir_agent, Weir};

/// A loopback port that was free a moment ago, so the server can come
/// back on the same address the agent sends to.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(dir: &Path, port: u16) -> Weir {
    let listen = format!("127.0.0.1:{port}");
    common::server_at(dir, &listen)
}

fn start_agent(config: &Path) -> Weir {
    spawn(
        &["agent", "--config", config.to_str().unwrap()],
        "weir agent running",
    )
}

/// The distinct (measurement, time) pairs the file output recorded; each
/// test measurement has one series.
fn gathered(file: &Path) -> BTreeSet<(String, i64)> {
    let mut text = std::fs::read(file).unwrap_or_default();
    // The agent may be writing the last line right now.
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    text.truncate(complete);
    lineproto::parse_lines(&text)
        .map(|l| {
            let l = l.unwrap();
            (l.measurement.to_string(), l.timestamp.unwrap())
        })
        .collect()
}

/// The (measurement, time) pairs the server holds, with repeats.
fn stored(url: &str, token: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for table in ["cpu", "mem"] {
        let sql = format!("SELECT CAST(time AS BIGINT) AS t FROM {table} ORDER BY t");
        let (status, body) = common::query(
            url,
            Some(token),
            serde_json::json!({"db": "e2e", "sql": sql}),
        );
        if status != 200 {
            // The table does not exist yet.
            continue;
        }
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        out.extend(
            rows.iter()
                .map(|r| (table.to_owned(), r["t"].as_i64().unwrap())),
        );
    }
    out
}

fn all_delivered(url: &str, token: &str, file: &Path) -> bool {
    let want = gathered(file);
    let have: BTreeSet<_> = stored(url, token).into_iter().collect();
    !want.is_empty() && want.is_subset(&have)
}

#[test]
fn points_survive_a_server_outage_and_an_agent_sigkill_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let server = start_server(&data, port);
    let admin = server.admin().to_owned();
    let out = run(&[
        "token",
        "create",
        "--data-dir",
        data.to_str().unwrap(),
        "--db",
        "e2e",
        "--write",
    ]);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let file = tmp.path().join("gathered.lp");
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[agent]
interval = "1s"
flush_interval = "1s"
state_dir = "{state}"
[[outputs.weir]]
urls = ["http://127.0.0.1:{port}"]
database = "e2e"
token = "{token}"
timeout = "2s"
namedrop = ["weir_agent"]
[[outputs.file]]
files = ["{file}"]
namedrop = ["weir_agent"]
[[inputs.cpu]]
percpu = false
[[inputs.mem]]
"#,
            state = tmp.path().join("state").display(),
            file = file.display(),
        ),
    )
    .unwrap();
    let agent = start_agent(&config);
    eventually("the first points to arrive", || {
        stored(&server.url, &admin).len() >= 3
    });

    // The server is away for 30 s; the agent keeps gathering.
    server.stop();
    let before_outage = gathered(&file).len();
    std::thread::sleep(Duration::from_secs(30));
    let during_outage = gathered(&file).len() - before_outage;
    assert!(
        during_outage >= 40,
        "only {during_outage} points gathered in 30 s"
    );
    let server = start_server(&data, port);
    common::eventually_within(
        "the outage's points to arrive",
        Duration::from_secs(90),
        || all_delivered(&server.url, &admin, &file),
    );

    // Again away; this time the agent is killed while it holds points.
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    let mut agent = agent;
    agent.kill();
    let spooled = gathered(&file);
    let server = start_server(&data, port);
    // `weir-agent` is the same agent: it takes over the spool.
    let agent = spawn_weir_agent(
        &["--config", config.to_str().unwrap()],
        "weir agent running",
    );
    common::eventually_within(
        "the spooled points to arrive",
        Duration::from_secs(90),
        || {
            let have: BTreeSet<_> = stored(&server.url, &admin).into_iter().collect();
            spooled.is_subset(&have)
        },
    );
    agent.stop();

    // Everything the agent gathered is there, once. (A batch whose
    // acknowledgement died with the agent is sent again; the server keeps
    // one row per series and time, so that is what a query sees.)
    let want = gathered(&file);
    let have = stored(&server.url, &admin);
    let distinct: BTreeSet<_> = have.iter().cloned().collect();
    assert_eq!(distinct.len(), have.len(), "some points are stored twice");
    assert_eq!(
        distinct, want,
        "the server's points differ from those gathered"
    );
    server.stop();
}
