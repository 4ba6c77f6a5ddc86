//! Enrichment at ingest, end to end: a real `weir server` whose
//! configuration enriches database `probes` against a MaxMind DB built
//! here. Written addresses come back masked with their countries, bad lines
//! are named as without enrichment, and no raw address reaches the disk —
//! neither the write-ahead log while the server runs nor the Parquet files
//! it leaves after SIGTERM — while database `other`, not enriched, keeps
//! its raw address (so the scan can find one).

#![allow(clippy::unwrap_used)]

mod common;

#[path = "../../enrich/tests/support/mmdb.rs"]
mod mmdb;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::json;

/// Every address written to `probes`, in accepted and rejected lines.
const RAW: &[&str] = &[
    "203.0.113.77",
    "2001:db8:1:ff::9",
    "2001:db8:1:ff::10",
    "198.51.100.23",
    "198.51.100.24",
    "10.20.30.40",
    "203.0.113.200",
    "203.0.113.201",
];

/// The address written to `other`, which is not enriched.
const RAW_ELSEWHERE: &str = "192.0.2.200";

fn country_db(dir: &Path) -> PathBuf {
    let mut w = mmdb::MmdbWriter::default();
    w.country("203.0.113.0/24", "NL");
    w.country("2001:db8:1::/48", "JP");
    w.insert(
        "198.51.100.0/24",
        &mmdb::Value::map([("registered_country", mmdb::Value::place("US"))]),
    );
    let path = dir.join("countries.mmdb");
    std::fs::write(&path, w.to_bytes()).unwrap();
    path
}

fn config_file(dir: &Path, table: &str) -> PathBuf {
    let path = dir.join("weir.toml");
    std::fs::write(&path, table).unwrap();
    path
}

/// Everything under `dir` as text: each file's bytes, and each Parquet
/// file's rows decoded as well (its pages are compressed).
fn disk_text(dir: &Path) -> (String, usize) {
    let mut text = String::new();
    let mut parquet_files = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            if path.extension().is_some_and(|e| e == "parquet") {
                parquet_files += 1;
                let file = std::fs::File::open(&path).unwrap();
                let batches: Vec<_> =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .unwrap()
                        .build()
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                let table = arrow::util::pretty::pretty_format_batches(&batches).unwrap();
                text.push_str(&table.to_string());
            }
        }
    }
    (text, parquet_files)
}

fn assert_no_raw_address(text: &str, when: &str) {
    assert!(
        text.contains(RAW_ELSEWHERE),
        "{when}: the unenriched database's raw address is not found, so the scan proves nothing"
    );
    for raw in RAW {
        assert!(!text.contains(raw), "{when}: raw address {raw} is on disk");
    }
}

#[test]
fn enriched_addresses_are_masked_with_countries_and_never_reach_the_disk() {
    let (tmp, dir) = data_dir();
    let mmdb = country_db(tmp.path());
    let config = config_file(
        tmp.path(),
        &format!(
            "[databases.probes]\nenrich.mmdb = {:?}\nenrich.ip-tags = [\"client_ip\", \"peer_addr\"]\n",
            mmdb.to_str().unwrap()
        ),
    );
    let weir = server(&dir, &["--config", config.to_str().unwrap()]);
    let (url, token) = (weir.url.clone(), Some(weir.admin().to_owned()));
    let token = token.as_deref();

    let body = "conn,client_ip=203.0.113.77,peer_addr=[2001:db8:1:ff::9]:443 rtt=1 1700000001\n\
                conn,client_ip=2001:db8:1:ff::10 rtt=2 1700000002\n\
                conn,client_ip=198.51.100.23:5353 rtt=oops 1700000003\n\
                conn,client_ip=10.20.30.40,country=DE rtt=4 1700000004\n\
                conn,client_ip=198.51.100.24 rtt=5 1700000005\n";
    let bad = lineproto::parse_lines(body.as_bytes())
        .find_map(Result::err)
        .unwrap();
    let (status, answer) = write_v1(&url, token, "db=probes&precision=s", body);
    assert_eq!(status, 400, "{answer}");
    let message: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let message = message["error"].as_str().unwrap();
    assert!(
        message.contains("1 of 5 lines rejected, the other 4 stored")
            && message.contains(&bad.to_string()),
        "the bad line is named by its line and column ({bad}): {message}"
    );

    let (status, answer) = write_v2(
        &url,
        token,
        "bucket=probes&precision=ns",
        "conn,client_ip=203.0.113.200 rtt=6 1700000006000000000",
    );
    assert_eq!(status, 204, "{answer}");
    let (status, answer) = write_v2(
        &url,
        token,
        "bucket=probes",
        "conn,client_ip=203.0.113.201 rtt=7\nconn rtt=",
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("line 2, col 10"), "{answer}");

    let (status, answer) = write_v1(
        &url,
        token,
        "db=other&precision=s",
        &format!("conn,client_ip={RAW_ELSEWHERE} rtt=1 1700000001"),
    );
    assert_eq!(status, 204, "{answer}");

    let enriched = rows(
        &url,
        token,
        "probes",
        "SELECT client_ip, peer_addr, country, rtt FROM conn ORDER BY rtt",
    );
    assert_eq!(
        enriched,
        [
            json!({"client_ip": "203.0.113.0", "peer_addr": "2001:db8:1::", "country": "NL", "rtt": 1.0}),
            json!({"client_ip": "2001:db8:1::", "peer_addr": null, "country": "JP", "rtt": 2.0}),
            json!({"client_ip": "10.20.30.0", "peer_addr": null, "country": "DE", "rtt": 4.0}),
            json!({"client_ip": "198.51.100.0", "peer_addr": null, "country": "US", "rtt": 5.0}),
            json!({"client_ip": "203.0.113.0", "peer_addr": null, "country": "NL", "rtt": 6.0}),
        ]
    );
    let other = rows(&url, token, "other", "SELECT client_ip FROM conn");
    assert_eq!(other, [json!({"client_ip": RAW_ELSEWHERE})]);

    // Acknowledged writes are in the write-ahead log by now.
    let (text, _) = disk_text(&dir);
    assert_no_raw_address(&text, "while running");

    weir.stop();
    let (text, parquet_files) = disk_text(&dir);
    assert!(parquet_files >= 2, "shutdown persists both databases");
    assert_no_raw_address(&text, "after shutdown");
}

#[test]
fn a_missing_database_file_or_a_bad_key_stops_the_start() {
    let (tmp, dir) = data_dir();
    let missing = tmp.path().join("nowhere.mmdb");
    let config = config_file(
        tmp.path(),
        &format!(
            "[databases.probes]\nenrich.mmdb = {:?}\nenrich.ip-tags = [\"client_ip\"]\n",
            missing.to_str().unwrap()
        ),
    );
    let args = |config: &Path| {
        run(&[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
    };
    let out = args(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("database probes") && stderr.contains(missing.to_str().unwrap()),
        "{stderr}"
    );

    let config = config_file(
        tmp.path(),
        "[databases.probes]\nenrich.ip-tags = [\"client_ip\"]\nenrich.ipv4-mask = 40\n",
    );
    let out = args(&config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("databases.probes.enrich.ipv4-mask: 40 is more than 32 bits"),
        "{stderr}"
    );
}
