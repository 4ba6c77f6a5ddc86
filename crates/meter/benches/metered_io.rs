//! ns per `read`/`write` through `Metered<_, ConnectionMeter>` (peer,
//! protocol and transport labels set) against `Metered<_, Off>` and the
//! bare object; and two threads reading through clones of one
//! `ConnectionMeter` (every add hits the same cache lines).
//!
//! `cargo bench -p meter --bench metered_io -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use meter::{ConnectionMeter, Meter, MeterConfig, Metered, Off};

const SIZES: [(usize, &str); 2] = [(64, "64B"), (16 << 10, "16KiB")];

fn connection(meter: &Meter) -> ConnectionMeter {
    meter
        .connection("tcp")
        .peer("12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN")
        .protocol("/ipfs/bitswap/1.2.0")
        .open()
}

fn reads(c: &mut Criterion) {
    let meter = Meter::new(MeterConfig::default());
    let conn = connection(&meter);
    for (size, name) in SIZES {
        let mut g = c.benchmark_group(format!("read_{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0u8; size];
        // `repeat` refills forever: every read is a full one.
        let mut bare = std::io::repeat(7);
        g.bench_function("bare", |b| {
            b.iter(|| black_box(bare.read(black_box(&mut buf)).unwrap()))
        });
        let mut off = Metered::new(std::io::repeat(7), Off);
        g.bench_function("off", |b| {
            b.iter(|| black_box(off.read(black_box(&mut buf)).unwrap()))
        });
        let mut metered = conn.wrap(std::io::repeat(7));
        g.bench_function("metered", |b| {
            b.iter(|| black_box(metered.read(black_box(&mut buf)).unwrap()))
        });
        g.finish();
    }
}

fn writes(c: &mut Criterion) {
    let meter = Meter::new(MeterConfig::default());
    let conn = connection(&meter);
    for (size, name) in SIZES {
        let mut g = c.benchmark_group(format!("write_{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        let buf = vec![1u8; size];
        let mut bare = std::io::sink();
        g.bench_function("bare", |b| {
            b.iter(|| black_box(bare.write(black_box(&buf)).unwrap()))
        });
        let mut off = Metered::new(std::io::sink(), Off);
        g.bench_function("off", |b| {
            b.iter(|| black_box(off.write(black_box(&buf)).unwrap()))
        });
        let mut metered = conn.wrap(std::io::sink());
        g.bench_function("metered", |b| {
            b.iter(|| black_box(metered.write(black_box(&buf)).unwrap()))
        });
        g.finish();
    }
}

/// Two threads, `iters` 64-byte reads each, started together; the time
/// reported is the wall time of the slower one, so per "iteration" it is
/// the cost of one read on each thread running side by side.
fn two_threads<R: Read + Send>(iters: u64, mut make: impl FnMut() -> R) -> Duration {
    let readers = [make(), make()];
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|mut r| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut buf = [0u8; 64];
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(r.read(black_box(&mut buf)).unwrap());
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

fn contended(c: &mut Criterion) {
    let meter = Meter::new(MeterConfig::default());
    let conn = connection(&meter);
    let mut g = c.benchmark_group("read_64B_two_threads");
    g.throughput(Throughput::Bytes(64));
    g.bench_function(BenchmarkId::new("bare", 2), |b| {
        b.iter_custom(|iters| two_threads(iters, || std::io::repeat(7)))
    });
    g.bench_function(BenchmarkId::new("off", 2), |b| {
        b.iter_custom(|iters| two_threads(iters, || Metered::new(std::io::repeat(7), Off)))
    });
    // Clones of one connection meter: both threads add to the same counters.
    g.bench_function(BenchmarkId::new("metered_one_connection", 2), |b| {
        b.iter_custom(|iters| two_threads(iters, || conn.wrap(std::io::repeat(7))))
    });
    // Two connections to different peers and protocols over one transport:
    // the transport's counters are shared.
    let other = meter
        .connection("tcp")
        .peer("12D3KooWOtherPeerxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
        .protocol("/ipfs/kad/1.0.0")
        .open();
    g.bench_function(BenchmarkId::new("metered_two_connections", 2), |b| {
        let mut n = 0;
        b.iter_custom(|iters| {
            two_threads(iters, || {
                n += 1;
                if n % 2 == 0 {
                    conn.wrap(std::io::repeat(7))
                } else {
                    other.wrap(std::io::repeat(7))
                }
            })
        })
    });
    // Different transports too: no counter is shared.
    let apart = meter
        .connection("quic")
        .peer("12D3KooWApartPeerxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
        .protocol("/ipfs/id/1.0.0")
        .open();
    g.bench_function(BenchmarkId::new("metered_nothing_shared", 2), |b| {
        let mut n = 0;
        b.iter_custom(|iters| {
            two_threads(iters, || {
                n += 1;
                if n % 2 == 0 {
                    conn.wrap(std::io::repeat(7))
                } else {
                    apart.wrap(std::io::repeat(7))
                }
            })
        })
    });
    g.finish();
    let snap = meter.snapshot();
    assert!(snap.global.bytes_in > 0);
}

criterion_group!(benches, reads, writes, contended);
criterion_main!(benches);
