//! The binary as a user meets it: real processes, real exit codes.

use std::process::Command;

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .expect("the weir binary runs")
}

#[test]
fn relay_usage_errors_exit_2() {
    let out = weir(&["relay", "--listen", "127.0.0.1:1080", "--tag", "a"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tag"), "{stderr}");
    assert!(out.stdout.is_empty(), "weir relay printed to stdout");
}

#[test]
fn help_lists_every_subcommand() {
    let out = weir(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "server", "agent", "ratemon", "probe", "perfd", "relay", "query", "token", "up",
    ] {
        assert!(help.contains(cmd), "--help does not mention {cmd}:\n{help}");
    }
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let out = weir(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn query_reads_a_data_directory_and_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(dir.path(), store::StoreConfig::default()).unwrap();
    let body = b"ping,dst=ams rtt=10 1\nping,dst=ams rtt=30 2\nping,dst=fra rtt=5 3\n";
    let summary = store
        .write_lines("net", body, lineproto::Precision::Seconds)
        .unwrap();
    assert_eq!(summary.accepted, 3);
    store.close();

    let data_dir = dir.path().to_str().unwrap();
    let sql = "SELECT dst, avg(rtt) AS mean, count(*) AS n FROM ping GROUP BY dst ORDER BY dst";
    let out = weir(&["query", "--data-dir", data_dir, "--db", "net", sql]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(
        rows,
        [
            "| dst | mean | n |",
            "| ams | 20.0 | 2 |",
            "| fra | 5.0  | 1 |"
        ]
    );

    // time buckets and information_schema work too
    let sql =
        "SELECT date_bin(INTERVAL '1 minute', time) AS minute, count(*) AS n FROM ping GROUP BY 1";
    let out = weir(&["query", "--data-dir", data_dir, "--db", "net", sql]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("| 1970-01-01T00:00:00 | 3 |"));
    let sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'net'";
    let out = weir(&["query", "--data-dir", data_dir, "--db", "net", sql]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("| ping       |"));
}

#[test]
fn query_errors_name_the_problem_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    store::Store::open(dir.path(), store::StoreConfig::default())
        .unwrap()
        .close();
    let data_dir = dir.path().to_str().unwrap();
    let out = weir(&["query", "--data-dir", data_dir, "--db", "nope", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        r#"weir query: database "nope" not found"#
    );

    // Nothing listens on port 1: the error names the URL.
    let out = weir(&[
        "query",
        "--url",
        "http://127.0.0.1:1",
        "--db",
        "x",
        "SELECT 1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("weir query: asking http://127.0.0.1:1/api/v1/query: "),
        "{stderr}"
    );
    let out = weir(&["query", "--url", "ftp://x", "--db", "x", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid server URL"));
}

#[test]
fn query_reads_persisted_files_of_a_relative_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data-dir");
    let config = store::StoreConfig {
        background_persist: false,
        ..store::StoreConfig::default()
    };
    let store = store::Store::open(&data, config).unwrap();
    store
        .write_lines(
            "net",
            b"ping,dst=ams rtt=10 1\n",
            lineproto::Precision::Seconds,
        )
        .unwrap();
    store.persist().unwrap();
    assert_eq!(store.files().len(), 1);
    store.close();
    // DataFusion reads Parquet by absolute path: a relative --data-dir
    // must still work.
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(dir.path())
        .args(["query", "--data-dir", "data-dir", "--db", "net"])
        .arg("SELECT dst, rtt FROM ping")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("| ams | 10.0 |"));
}
