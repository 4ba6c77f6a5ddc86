//! `weir agent` and `weir up`'s local agent as a user meets them: real
//! processes, a real server, real sockets.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{data_dir, eventually_within, rows, run, server, spawn};

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn configuration_errors_name_the_key_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, expected) in [
        (
            "[agent]\nintervall = \"10s\"\n",
            "unknown field `intervall`",
        ),
        ("[agent]\ninterval = \"10 parsecs\"\n", "invalid duration"),
        (
            "[[inputs.cpuu]]\n[[outputs.stdout]]\n",
            "unknown input `cpuu`",
        ),
        (
            "[[inputs.cpu]]\npercpuu = true\n[[outputs.stdout]]\n",
            "inputs.cpu: unknown field `percpuu`",
        ),
        (
            "[[inputs.cpu]]\n[[outputs.weir]]\nurls = [\"http://x\"]\ndatabse = \"x\"\n",
            "unknown field `databse`",
        ),
        ("[[inputs.cpu]]\n", "no output is configured"),
        (
            "[agent]\ninterval = \"0s\"\n",
            "interval = \"0s\": must be more than 0",
        ),
        (
            "[[inputs.cpu]]\ninterval = \"0s\"\n[[outputs.stdout]]\n",
            "inputs.cpu: interval",
        ),
        (
            "[[inputs.cpu]]\n[[outputs.stdout]]\n[[outputs.stdout]]\nalias = \"stdout\"\n",
            "also named \"stdout\"",
        ),
        ("[[inputs.cpu]\n", "agent.toml"),
    ] {
        let config = write_config(tmp.path(), text);
        // In the directory where the default state directory would go.
        let out = common::weir_command()
            .current_dir(tmp.path())
            .args(["agent", "--config", &config])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{text}: expected {expected:?} in {stderr}"
        );
        // A configuration error leaves no spool behind.
        assert!(
            !tmp.path().join("weir-agent").exists(),
            "{text}: a state directory was created"
        );
    }
    let out = run(&["agent", "--config", "/nonexistent/agent.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/agent.toml"));
}

#[test]
fn weir_agent_is_the_agent_command_alone() {
    let weir_agent = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_weir-agent"))
            .args(args)
            .output()
            .unwrap()
    };
    let sample = weir_agent(&["--sample-config"]);
    assert!(sample.status.success());
    assert_eq!(sample.stdout, run(&["agent", "--sample-config"]).stdout);
    let out = weir_agent(&["--config", "/nonexistent/agent.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("weir-agent: ") && stderr.contains("/nonexistent/agent.toml"),
        "{stderr}"
    );
    // Without a subcommand: `weir-agent agent` is a mistake, not `weir agent`.
    assert_eq!(weir_agent(&["agent"]).status.code(), Some(2));
}

#[test]
fn the_sample_configuration_runs_as_is_in_test_mode() {
    let out = run(&["agent", "--sample-config"]);
    assert!(out.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let sample = String::from_utf8(out.stdout).unwrap();
    let state = tmp.path().join("state");
    let sample = sample
        .replace("# location = \"lab\"", "location = \"lab\"")
        .replace(
            "state_dir = \"./weir-agent\"",
            &format!("state_dir = \"{}\"", state.display()),
        );
    assert!(sample.contains(&state.display().to_string()));
    let config = write_config(tmp.path(), &sample);
    let out = run(&["agent", "--config", &config, "--test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<_> = lineproto::parse_lines(stdout.as_bytes())
        .map(|l| l.unwrap().into_owned())
        .collect();
    for m in [
        "cpu",
        "mem",
        "swap",
        "system",
        "kernel",
        "processes",
        "disk",
        "diskio",
        "net",
        "netstat",
        "nstat",
    ] {
        assert!(
            lines.iter().any(|l| l.measurement == m),
            "no {m} in --test output:\n{stdout}"
        );
    }
    // The second round has rates; every metric has the global and host tags.
    assert!(lines.iter().any(|l| l.measurement == "cpu"
        && l.tag("cpu") == Some("cpu-total")
        && l.field("usage_idle").is_some()));
    assert!(lines
        .iter()
        .all(|l| l.tag("location") == Some("lab") && l.tag("host").is_some()));
    // --test touches no spool.
    assert!(!state.exists());
}

#[test]
fn the_listener_forwards_lines_with_global_tags_and_masked_addresses() {
    let (tmp, dir) = data_dir();
    let weir = server(&dir, &["--no-auth"]);
    let config = write_config(
        tmp.path(),
        &format!(
            r#"
[agent]
interval = "1s"
flush_interval = "200ms"
state_dir = "{state}"
hostname = "node-7"
[global_tags]
location = "lab"
[[outputs.weir]]
urls = ["{url}"]
database = "apps"
[[processors.ip_mask]]
tags = ["client"]
[[inputs.listener]]
service_address = "127.0.0.1:0"
udp_address = "127.0.0.1:{udp}"
[inputs.listener.tags]
source = "listener"
"#,
            state = tmp.path().join("state").display(),
            url = weir.url,
            udp = free_udp_port(),
        ),
    );
    let agent = spawn(&["agent", "--config", &config], "weir agent listening on ");
    let http = common::http();
    // A bad line is named and refused; the good ones around it are kept.
    let (status, body) = common::answer(http.post(format!("{}/write", agent.url)).body(
        "conn,client=203.0.113.77 bytes=10i 1700000000000000000\nconn,client=oops bytes= 2\nconn,client=2001:db8:1:2::9 bytes=20i 1700000001000000000\n",
    ));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("line 2"), "{body}");
    // gzip, with a precision.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"conn,client=198.51.100.1 bytes=30i 1700000002\n")
        .unwrap();
    let (status, body) = common::answer(
        http.post(format!("{}/write?precision=s", agent.url))
            .header("Content-Encoding", "gzip")
            .body(gz.finish().unwrap()),
    );
    assert_eq!(status, 204, "{body}");
    // UDP, as scripts send it.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = config_udp_addr(&config);
    udp.send_to(
        b"conn,client=192.0.2.200 bytes=40i 1700000003000000000\n",
        udp_addr,
    )
    .unwrap();

    eventually_within("four points in the server", Duration::from_secs(30), || {
        try_count(&weir.url, "apps", "conn") == Some(4)
    });
    let got = rows(
        &weir.url,
        None,
        "apps",
        "SELECT client, host, location, source, bytes FROM conn ORDER BY time",
    );
    let clients: Vec<_> = got
        .iter()
        .map(|r| r["client"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        clients,
        ["203.0.113.0", "2001:db8:1::", "198.51.100.0", "192.0.2.0"]
    );
    for r in &got {
        assert_eq!(r["host"], "node-7");
        assert_eq!(r["location"], "lab");
        assert_eq!(r["source"], "listener");
    }
    // The agent reports on itself: the listener's counts and the output's.
    eventually_within("the agent's self-metrics", Duration::from_secs(30), || {
        let (status, body) = common::query(
            &weir.url,
            None,
            serde_json::json!({"db": "apps", "sql": "SELECT max(gathered) AS g FROM weir_agent WHERE input = 'listener'"}),
        );
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
        status == 200 && rows.first().and_then(|r| r["g"].as_i64()) == Some(4)
    });
    agent.stop();
    weir.stop();
}

/// `count(*)` of a table, or `None` while it does not exist.
fn try_count(url: &str, db: &str, table: &str) -> Option<i64> {
    let sql = format!("SELECT count(*) AS n FROM {table}");
    let (status, body) = common::query(url, None, serde_json::json!({"db": db, "sql": sql}));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&body)
        .ok()
        .filter(|_| status == 200)?;
    rows.first()?["n"].as_i64()
}

/// A UDP port that was free a moment ago.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The UDP address written into the agent's configuration.
fn config_udp_addr(config: &str) -> std::net::SocketAddr {
    let text = std::fs::read_to_string(config).unwrap();
    let line = text.lines().find(|l| l.starts_with("udp_address")).unwrap();
    line.split('"').nth(1).unwrap().parse().unwrap()
}

#[test]
fn weir_up_runs_a_local_agent_with_its_own_write_token() {
    let (_tmp, dir) = data_dir();
    let d = dir.to_str().unwrap();
    let up = spawn(
        &["up", "--listen", "127.0.0.1:0", "--data-dir", d],
        "weir is up: ",
    );
    let admin = common::admin_token_in(&up.next_line().unwrap()).unwrap();
    // The host's memory within two collections (10 s each) and a flush.
    eventually_within(
        "host measurements in telemetry",
        Duration::from_secs(60),
        || {
            let (status, body) = common::query(
                &up.url,
                Some(&admin),
                serde_json::json!({"db": "telemetry", "sql": "SELECT count(*) AS n FROM mem"}),
            );
            status == 200 && !String::from_utf8_lossy(&body).contains("\"n\":0")
        },
    );
    let token_file = dir.join("agent.token");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let agent_token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    // A write token: it cannot read.
    let (status, _) = common::query(
        &up.url,
        Some(&agent_token),
        serde_json::json!({"db": "telemetry", "sql": "SELECT 1"}),
    );
    assert_eq!(status, 403);
    up.stop();
    // The next start reuses it rather than minting another.
    let listed = |d: &str| {
        String::from_utf8(run(&["token", "list", "--data-dir", d]).stdout)
            .unwrap()
            .lines()
            .count()
    };
    let before = listed(d);
    let up = spawn(
        &["up", "--listen", "127.0.0.1:0", "--data-dir", d],
        "weir is up: ",
    );
    up.stop();
    assert_eq!(listed(d), before);
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        agent_token
    );
}
