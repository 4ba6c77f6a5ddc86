//! Crash safety: a real writer process is SIGKILLed at random moments, over
//! and over (while it writes, replays its log, or persists to Parquet), and
//! every write it acknowledged must be stored exactly once.
//!
//! The writer is this same test binary, re-run with `--ignored --exact
//! crash_writer_child` and told what to do through environment variables.

// Helpers outside #[test] fns unwrap too: in a test a panic is the report.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow::array::{Array, Int64Array};
use lineproto::Precision;
use rand::{Rng, SeedableRng};
use store::{Store, StoreConfig};

const DIR_VAR: &str = "WEIR_CRASH_CHILD_DIR";
const FIRST_ID_VAR: &str = "WEIR_CRASH_CHILD_FIRST_ID";
const KILLS: usize = 66;

/// The writer: two threads write small batches and print `ack <first id>
/// <count>` after each write returns, until killed.
#[test]
#[ignore = "child process of kill_writer_at_random_moments_and_lose_nothing_acknowledged"]
fn crash_writer_child() {
    let dir = std::env::var(DIR_VAR).expect("run by the crash test");
    let first: i64 = std::env::var(FIRST_ID_VAR).unwrap().parse().unwrap();
    // A small buffer budget makes the background persister run often, so
    // kills also land mid-persist.
    let config = StoreConfig {
        buffer_budget_bytes: 16 << 10,
        ..StoreConfig::default()
    };
    let store = std::sync::Arc::new(Store::open(Path::new(&dir), config).unwrap());
    let threads: Vec<_> = (0..2i64)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                let mut next = first + t * 500_000;
                let mut rng = rand::rngs::SmallRng::seed_from_u64(next as u64);
                loop {
                    let n = rng.gen_range(1..=20);
                    let mut body = String::new();
                    for id in next..next + n {
                        body.push_str(&format!(
                            "points,writer=w{t} id={id}i,v={}.5 {id}\n",
                            id % 97
                        ));
                    }
                    let s = store
                        .write_lines("crash", body.as_bytes(), Precision::Nanoseconds)
                        .unwrap();
                    assert_eq!(s.accepted as i64, n);
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {next} {n}").unwrap();
                    out.flush().unwrap();
                    next += n;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Every id stored, with how often.
fn stored_ids(dir: &Path) -> HashMap<i64, usize> {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let mut seen = HashMap::new();
    for batch in store.scan("crash", "points").unwrap().unwrap_or_default() {
        let ids = batch.column_by_name("id").unwrap();
        let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..ids.len() {
            *seen.entry(ids.value(i)).or_insert(0) += 1;
        }
    }
    store.close();
    seen
}

#[test]
fn kill_writer_at_random_moments_and_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    let mut acked: Vec<i64> = Vec::new();
    let mut mid_write_kills = 0;
    for run in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, dir.path())
            .env(FIRST_ID_VAR, (run as i64 * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_ack, writing) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut words = line.split_whitespace();
                if words.next() != Some("ack") {
                    continue;
                }
                let first: i64 = words.next().unwrap().parse().unwrap();
                let n: i64 = words.next().unwrap().parse().unwrap();
                ids.extend(first..first + n);
                let _ = first_ack.send(());
            }
            ids
        });
        // One kill in six lands at a random moment (often while the child
        // opens and replays); the others once it is writing.
        let mid_write = run % 6 != 0;
        if mid_write {
            writing
                .recv_timeout(Duration::from_secs(20))
                .expect("the writer acknowledged nothing within 20 s");
            mid_write_kills += 1;
        }
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..100_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        // Acks printed before the kill are acknowledgements too.
        acked.extend(reader.join().unwrap());

        if run % 20 == 19 || run == KILLS - 1 {
            let stored = stored_ids(dir.path());
            let missing: Vec<_> = acked
                .iter()
                .filter(|id| !stored.contains_key(id))
                .take(10)
                .collect();
            assert!(
                missing.is_empty(),
                "after {} kills, acknowledged ids missing: {missing:?}",
                run + 1
            );
            let doubled: Vec<_> = stored.iter().filter(|(_, &n)| n > 1).take(10).collect();
            assert!(doubled.is_empty(), "ids stored more than once: {doubled:?}");
        }
    }
    eprintln!("{} kills, {} acknowledged points", KILLS, acked.len());
    assert!(
        acked.len() > 100,
        "the writer acknowledged only {} points",
        acked.len()
    );
    assert!(
        mid_write_kills >= 50,
        "only {mid_write_kills} kills landed mid-write"
    );
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert!(
        !store.files().is_empty(),
        "no persist ever completed, so none was tested"
    );
}
