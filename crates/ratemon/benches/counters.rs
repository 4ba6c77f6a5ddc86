//! The cost of one counter reading by each method, on `lo` and on `eth0`
//! when there is one: what a sample costs the sampler before any
//! arithmetic. `cargo bench -p ratemon`.

#![allow(missing_docs)] // criterion_group! makes an undocumented function

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use ratemon::counters::{self, CounterMethod};

fn read_counters(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_counters");
    for interface in ["lo", "eth0"] {
        for method in [CounterMethod::Netlink, CounterMethod::Sysfs] {
            let Ok(mut source) = counters::open(method, Path::new("/sys"), interface) else {
                eprintln!("{interface} cannot be read by {}; skipped", method.name());
                continue;
            };
            group.bench_function(format!("{interface}/{}", method.name()), |b| {
                b.iter(|| source.read().map(|c| c.rx_bytes ^ c.tx_bytes).unwrap_or(0))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, read_counters);
criterion_main!(benches);
