//! The cost of one counter reading of `lo` by each method: what a sample
//! costs the sampler before any arithmetic. `cargo bench -p ratemon`.

#![allow(missing_docs)] // criterion_group! makes an undocumented function

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use ratemon::counters::{self, CounterMethod};

fn read_counters(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_lo_counters");
    for method in [CounterMethod::Netlink, CounterMethod::Sysfs] {
        let Ok(mut source) = counters::open(method, Path::new("/sys"), "lo") else {
            eprintln!("{}: lo cannot be read here; skipped", method.name());
            continue;
        };
        group.bench_function(method.name(), |b| {
            b.iter(|| source.read().map(|c| c.rx_bytes ^ c.tx_bytes).unwrap_or(0))
        });
    }
    group.finish();
}

criterion_group!(benches, read_counters);
criterion_main!(benches);
