//! `weir perfd` and `weir probe` as users run them: real processes on
//! loopback, results read back from a real `weir server`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{data_dir, eventually_within, run, spawn, weir_command, Weir};
use serde_json::Value;

/// `weir perfd` on ephemeral ports: (process, http://ADDR, ADDR of the echo port).
fn perfd(extra: &[&str]) -> (Weir, String, String) {
    let mut args = vec![
        "perfd",
        "--listen",
        "127.0.0.1:0",
        "--echo-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let p = spawn(&args, "weir perfd: ");
    let base = p.url.trim_end_matches("/bulk/BYTES").to_owned();
    let echo = p
        .lines
        .last()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .to_owned();
    (p, base, echo)
}

/// `weir probe once … --json`: (exit success, the JSON object).
fn once(args: &[&str]) -> (bool, Value) {
    let mut all = vec!["probe", "once", "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{all:?}: {e}; stdout {stdout:?}; stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

#[test]
fn probe_once_reports_the_breakdown_and_each_failure() {
    let (_p, base, echo) = perfd(&[]);
    let (ok, j) = once(&[&format!("{base}/bulk/1048576")]);
    assert!(ok, "{j}");
    assert_eq!(j["ok"], true);
    assert_eq!(j["bytes_received"], 1_048_576);
    assert_eq!(j["size"], 1_048_576);
    for field in [
        "ttfb_us",
        "server_ttfb_us",
        "ttlb_us",
        "ttlb_50k_us",
        "ttlb_1m_us",
        "request_latency_us",
        "dns_us",
        "connect_us",
        "dl_legacy_bps",
    ] {
        assert!(j[field].is_number(), "{field} missing in {j}");
    }
    assert!(j["ttfb_us"].as_u64() <= j["ttlb_us"].as_u64());
    assert!(j.get("error").is_none());

    let (ok, j) = once(&[&format!("{base}/bulk/1000?status=503")]);
    assert!(!ok);
    assert_eq!(
        (j["error"].as_str(), j["phase"].as_str()),
        (Some("HTTP_503"), Some("header"))
    );
    let (ok, j) = once(&[
        "--stallout",
        "300ms",
        &format!("{base}/bulk/100000?stall_after=1000"),
    ]);
    assert!(!ok);
    assert_eq!(
        (j["error"].as_str(), j["phase"].as_str()),
        (Some("STALLOUT"), Some("body"))
    );
    assert_eq!(
        (j["bytes_received"].as_u64(), j["partial"].as_bool()),
        (Some(1000), Some(false))
    );

    let (ok, j) = once(&[&format!("tcp://{echo}")]);
    assert!(ok, "{j}");
    assert_eq!(
        (j["sent"].as_u64(), j["lost"].as_u64()),
        (Some(20), Some(0))
    );
    let (ok, j) = once(&["--echo", "--echo-count", "5", &format!("{base}/echo")]);
    assert!(ok, "{j}");
    assert_eq!(j["rtt_us"].as_array().map(Vec::len), Some(5));

    // For a person: curl -w style.
    let out = run(&["probe", "once", &format!("{base}/bulk/100000")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("TTFB") && text.contains("result         ok"),
        "{text}"
    );
}

#[test]
fn perfd_flags_fault_every_request_and_the_query_overrides_them() {
    let (_p, base, _) = perfd(&["--status", "503"]);
    let (ok, j) = once(&[&format!("{base}/bulk/10")]);
    assert!(!ok);
    assert_eq!(j["error"], "HTTP_503");
    let (ok, _) = once(&[&format!("{base}/bulk/10?status=200")]);
    assert!(ok);

    let client = common::http();
    let (status, body) = common::answer(client.get(format!("{base}/bulk/10?speed=1")));
    assert_eq!(status, 400);
    assert!(body.contains("speed"), "{body}");
    let (status, body) = common::answer(client.get(format!("{base}/bulk/lots")));
    assert_eq!(status, 400);
    assert!(body.contains("lots"), "{body}");
    let (status, _) = common::answer(client.get(format!("{base}/nothing")));
    assert_eq!(status, 404);
}

#[test]
fn a_schedule_delivers_rows_to_a_server_with_its_tags() {
    let (_p, base, echo) = perfd(&[]);
    let (_tmp, dir) = data_dir();
    let server = common::server(&dir, &[]);
    let admin = server.admin().to_owned();
    let spool = tempfile::tempdir().unwrap();
    let config = spool.path().join("probe.toml");
    std::fs::write(
        &config,
        format!(
            "[tags]\nvantage = \"lab\"\n\
             [[probe]]\nurl = \"{base}/bulk/200000\"\nname = \"perfd\"\nevery = \"1s\"\nstart_delay = \"0s\"\n\
             [[probe]]\nurl = \"tcp://{echo}\"\nevery = \"1h\"\nstart_delay = \"0s\"\necho_count = 3\n"
        ),
    )
    .unwrap();
    let mut child = weir_command()
        .args([
            "probe",
            "--config",
            config.to_str().unwrap(),
            "--server",
            &server.url,
            "--db",
            "net",
        ])
        .args(["--spool-dir", spool.path().join("spool").to_str().unwrap()])
        .env("WEIR_TOKEN", &admin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = common::collect_stderr(&mut child);
    let n = |sql: &str| {
        let (status, body) = common::query(
            &server.url,
            Some(&admin),
            serde_json::json!({"db": "net", "sql": sql}),
        );
        if status != 200 {
            return 0;
        }
        serde_json::from_slice::<Value>(&body).unwrap()[0]["n"]
            .as_i64()
            .unwrap_or(0)
    };
    eventually_within("probe rows in the server", Duration::from_secs(60), || {
        n("SELECT count(*) AS n FROM probe_http WHERE ok AND vantage = 'lab' AND target = 'perfd' AND size = '200000'") >= 2
            && n("SELECT count(*) AS n FROM probe_echo WHERE ok AND transport = 'tcp' AND rtt_us IS NOT NULL") == 3
    });
    common::sigterm(child.id());
    let status = common::wait_for_exit(&mut child, &stderr);
    assert!(status.success(), "{}", stderr.lock().unwrap());
}

#[test]
fn a_schedule_without_a_server_prints_rows() {
    let (_p, base, _) = perfd(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        format!("[[probe]]\nurl = \"{base}/bulk/1000?status=503\"\nevery = \"1s\"\nstart_delay = \"0s\"\n"),
    )
    .unwrap();
    let mut child = weir_command()
        .args(["probe", "--json", "--config", config.to_str().unwrap()])
        .args(["--spool-dir", dir.path().join("spool").to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stderr = common::collect_stderr(&mut child);
    let first = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let row: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(row["name"], "probe_http");
    assert_eq!(row["tags"]["error"], "HTTP_503");
    assert_eq!(row["tags"]["phase"], "header");
    assert!(
        row["tags"]["vantage"].is_string(),
        "vantage defaults to the host name: {row}"
    );
    assert_eq!(row["fields"]["ok"], false);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_bad_schedule_names_the_table_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        "[[probe]]\nurl = \"http://127.0.0.1:1/\"\nspeed = 1\n",
    )
    .unwrap();
    let out = run(&["probe", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[[probe]] #1") && stderr.contains("speed"),
        "{stderr}"
    );
    let out = run(&["probe"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn weir_up_probes_its_own_perfd() {
    let (_tmp, dir) = data_dir();
    let up = spawn(
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        "weir is up: ",
    );
    let admin = common::admin_token_in(&up.next_line().unwrap()).unwrap();
    let n = |sql: &str| {
        let (status, body) = common::query(
            &up.url,
            Some(&admin),
            serde_json::json!({"db": "telemetry", "sql": sql}),
        );
        if status != 200 {
            return 0;
        }
        serde_json::from_slice::<Value>(&body).unwrap()[0]["n"]
            .as_i64()
            .unwrap_or(0)
    };
    // The relay's line names its address.
    let mut relay = None;
    while let Some(line) = up.next_line() {
        if let Some(rest) = line.strip_prefix("relay: SOCKS5 and HTTP CONNECT on ") {
            relay = rest.split(',').next().map(str::to_owned);
        }
        if line.starts_with("stop with") {
            break;
        }
    }
    let relay = relay.expect("weir up printed the relay's address");
    // The first probes run a few seconds after start; the agent gathers and
    // flushes every 10 s, the relay posts every 10 s.
    let through_relay = format!(
        "SELECT count(*) AS n FROM probe_http WHERE ok AND target = 'local-perfd' AND size = '5242880' AND vantage IS NOT NULL AND proxy = '{relay}'"
    );
    eventually_within("self-probe rows", Duration::from_secs(60), || {
        n(&through_relay) >= 1
            && n("SELECT count(*) AS n FROM probe_echo WHERE ok") >= 20
            && n("SELECT count(*) AS n FROM meter_connection WHERE relay = 'local' AND transport = 'socks5' AND bytes_in >= 5242880 AND ok") >= 1
    });
    up.stop();
}
