//! SIGTERM while clients write: every point the server acknowledged is
//! there after a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

const CLIENTS: usize = 4;
const POINTS_PER_WRITE: usize = 200;

#[test]
fn sigterm_during_writes_keeps_every_acknowledged_point() {
    let (_tmp, dir) = data_dir();
    let mut weir = server(&dir, &["--no-auth"]);
    let url = Arc::new(weir.url.clone());
    let acked_writes = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = Arc::clone(&url);
            let acked_writes = Arc::clone(&acked_writes);
            std::thread::spawn(move || {
                // Short timeouts: once the server is gone, give up quickly.
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap();
                let mut acked = BTreeSet::new();
                for batch in 0..100_000usize {
                    let body: String = (0..POINTS_PER_WRITE)
                        .map(|i| {
                            let seq = batch * POINTS_PER_WRITE + i;
                            format!("load,client=c{c} seq={seq}i {seq}\n")
                        })
                        .collect();
                    let sent = http
                        .post(format!("{url}/write?db=shutdown"))
                        .body(body)
                        .send();
                    match sent {
                        Ok(r) if r.status() == 204 => {
                            acked.insert(batch);
                            acked_writes.fetch_add(1, Ordering::Relaxed);
                        }
                        // Refused or cut off: not acknowledged, so not counted.
                        Ok(_) | Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();

    eventually("every client to have some acknowledged writes", || {
        acked_writes.load(Ordering::Relaxed) >= CLIENTS * 25
    });
    weir.sigterm();
    let status = weir.wait();
    assert!(status.success(), "exit {status}; stderr: {}", weir.stderr());
    let acked: Vec<BTreeSet<usize>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let total: usize = acked.iter().map(BTreeSet::len).sum();
    assert!(total >= CLIENTS * 25, "{total} writes acknowledged");
    eprintln!("{total} writes of {POINTS_PER_WRITE} points acknowledged before the shutdown");

    let weir = server(&dir, &["--no-auth"]);
    for (c, batches) in acked.iter().enumerate() {
        let rows = rows(
            &weir.url,
            None,
            "shutdown",
            &format!(
                "SELECT DISTINCT seq / {POINTS_PER_WRITE} AS batch FROM load WHERE client = 'c{c}'"
            ),
        );
        let stored: BTreeSet<usize> = rows
            .iter()
            .map(|r| usize::try_from(r["batch"].as_i64().unwrap()).unwrap())
            .collect();
        let lost: Vec<_> = batches.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "client {c} lost acknowledged writes {lost:?}"
        );
        // A write is stored whole or not at all.
        let n = rows_in(&weir.url, c);
        assert_eq!(n, stored.len() * POINTS_PER_WRITE, "client {c}");
        eprintln!(
            "client {c}: {} writes acknowledged, {} stored",
            batches.len(),
            stored.len()
        );
    }
    weir.stop();
}

fn rows_in(url: &str, client: usize) -> usize {
    let rows = rows(
        url,
        None,
        "shutdown",
        &format!("SELECT count(*) AS n FROM load WHERE client = 'c{client}'"),
    );
    usize::try_from(rows[0]["n"].as_i64().unwrap()).unwrap()
}

#[test]
fn shutdown_waits_for_running_requests_only_so_long() {
    let (_tmp, dir) = data_dir();
    let mut weir = server(
        &dir,
        &[
            "--no-auth",
            "--shutdown-timeout-secs",
            "1",
            "--query-timeout-secs",
            "600",
        ],
    );
    assert_eq!(write_v1(&weir.url, None, "db=slow", "m v=1 1").0, 204);
    let url = weir.url.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut response = http()
            .post(format!("{url}/api/v1/query"))
            .body(
                serde_json::json!({
                    "db": "slow",
                    "sql": "SELECT v FROM generate_series(1, 100000000000) AS t(v)",
                    "format": "csv"
                })
                .to_string(),
            )
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        started_tx.send(()).unwrap();
        // Read slowly until the server cuts the stream off.
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut response, &mut buf) {
                Ok(0) => return "ended cleanly",
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return "cut off",
            }
        }
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    let signalled = std::time::Instant::now();
    weir.sigterm();
    let status = weir.wait();
    assert!(status.success(), "exit {status}; stderr: {}", weir.stderr());
    assert!(
        signalled.elapsed() < Duration::from_secs(15),
        "took {:?} to stop",
        signalled.elapsed()
    );
    eprintln!("stopped {:?} after SIGTERM", signalled.elapsed());
    assert_eq!(reader.join().unwrap(), "cut off");
    // The store was closed properly: it opens again with the data.
    let weir = server(&dir, &["--no-auth"]);
    assert_eq!(count(&weir.url, None, "slow", "m"), 1);
    weir.stop();
}
