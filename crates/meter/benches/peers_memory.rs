//! Memory per tracked peer: a meter that remembers 100 000 peers
//! (`peer_lru = 100_000`), filled by opening and closing one connection to
//! each of 100 000 distinct peers whose ids look like libp2p's (52
//! characters). The growth of the resident set (/proc/self/statm) over the
//! fill, divided by the peers, against the sizes of what a peer holds.
//!
//! `cargo bench -p meter --bench peers_memory`
#![allow(clippy::unwrap_used, missing_docs)]

use std::mem::size_of;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meter::{Meter, MeterConfig};

const PEERS: usize = 100_000;

/// Resident bytes: statm's resident pages times the page size, the latter
/// derived from VmRSS (kB) in /proc/self/status over the same pages.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * page_size()
}

fn page_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // The page size nearest to VmRSS over resident pages.
    let raw = kb * 1024 / pages.max(1);
    [4096u64, 16384, 65536]
        .into_iter()
        .min_by_key(|p| p.abs_diff(raw))
        .unwrap()
}

/// The shape of a peer's counters (meter's private `Entry`), to size it.
#[allow(dead_code)]
struct EntryShape {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    rates: Mutex<RateShape>,
}

#[allow(dead_code)]
struct RateShape {
    polled_at: Instant,
    polled_in: u64,
    polled_out: u64,
    active_at: Instant,
    ewma_in: [f64; 3],
    ewma_out: [f64; 3],
}

/// glibc malloc's chunk for a request of `n` bytes: n + 8, rounded up to 16,
/// at least 32.
fn chunk(n: usize) -> usize {
    ((n + 8).div_ceil(16) * 16).max(32)
}

fn peer_id(i: usize) -> String {
    // "12D3KooW" and 44 base58-looking characters: 52 in all.
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut s = String::from("12D3KooW");
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while s.len() < 52 {
        s.push(ALPHABET[(x % 58) as usize] as char);
        x = x.rotate_left(7).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (i as u64);
    }
    s
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let names: Vec<String> = (0..PEERS).map(peer_id).collect();
    assert_eq!(names[0].len(), 52);
    let distinct: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), PEERS, "peer ids must be distinct");
    drop(distinct);

    let before = rss();
    let meter = Meter::new(MeterConfig {
        peer_lru: PEERS,
        idle_timeout: Duration::from_secs(3600),
        records: None,
        ..MeterConfig::default()
    });
    let after_new = rss();
    let start = Instant::now();
    for name in &names {
        let c = meter.connection("tcp").peer(name.as_str()).open();
        drop(c);
    }
    let fill = start.elapsed();
    let after = rss();
    assert_eq!(meter.tracked_peers(), PEERS);
    let snap_start = Instant::now();
    let snap = meter.snapshot();
    let snap_time = snap_start.elapsed();
    assert_eq!(snap.peers.len(), PEERS);
    assert_eq!(snap.peers_evicted, 0);
    drop(snap);

    // What one remembered peer holds: its counters (Arc<Entry>), its name
    // (Arc<str>), its LRU node, and its slot in the LRU's hash map
    // (16 bytes + 1 control byte, at most 7/8 full, power-of-two buckets).
    let entry = size_of::<EntryShape>();
    let arc_entry = chunk(2 * size_of::<usize>() + entry);
    let arc_name = chunk(2 * size_of::<usize>() + 52);
    let lru_node = chunk(
        size_of::<Arc<str>>() + size_of::<(Arc<EntryShape>, Instant)>() + 2 * size_of::<usize>(),
    );
    let buckets = (PEERS * 8 / 7).next_power_of_two();
    let map = buckets * (16 + 1) / PEERS;
    let theory = arc_entry + arc_name + lru_node + map;

    let grown = after.saturating_sub(before);
    println!("peers tracked:            {PEERS}");
    println!("page size:                {} B", page_size());
    println!(
        "RSS before / after new / after fill: {:.1} / {:.1} / {:.1} MiB",
        before as f64 / 1048576.0,
        after_new as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    println!(
        "RSS growth:               {:.2} MiB ({:.1} MiB of it at Meter::new: the LRU's map is sized for peer_lru up front)",
        grown as f64 / 1048576.0,
        after_new.saturating_sub(before) as f64 / 1048576.0
    );
    println!(
        "bytes per peer (RSS):     {:.0}",
        grown as f64 / PEERS as f64
    );
    println!(
        "bytes per peer (theory):  {theory} = Arc<Entry> {arc_entry} (Entry {entry}) + Arc<str> name {arc_name} + LRU node {lru_node} + map slot {map}"
    );
    println!(
        "fill: {:.0} ns per open+close; snapshot of {PEERS} peers: {:.1} ms",
        fill.as_nanos() as f64 / PEERS as f64,
        snap_time.as_secs_f64() * 1e3
    );
    drop(meter);
}
