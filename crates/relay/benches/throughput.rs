//! Relay throughput on loopback, metered against metering off (issue 9's
//! target: at most 2 % loss). Two relays run in one process (one with a
//! [`meter::Meter`], records on and the 1 s sampler running; one without a
//! meter at all, the `--no-meter` path); a source server sends 32 MiB on
//! every connection; a client downloads it through each relay's SOCKS5 in
//! turn, alternating. It prints the median MB/s of each and the median of
//! the rounds' ratios (each round's metered transfer against its unmetered
//! neighbour, so that drift on a busy machine hits both alike).
//!
//! Wall-clock throughput on a shared 2-core machine swings by tens of
//! percent between rounds, far more than the effect measured. So each relay
//! also runs on a runtime of its own with one worker thread, and the bench
//! reads that thread's on-CPU time (Linux: `/proc/<pid>/task/<tid>/schedstat`)
//! around each transfer: the relay's CPU time per byte, which bounds its
//! throughput when it is CPU-bound and which steal time and the other
//! threads disturb less. And since metering adds only user-space work (a
//! few atomic adds per read and write) to a relay whose time goes to the
//! kernel copying bytes, the bench sums each worker's user and system time
//! (`/proc/<pid>/task/<tid>/stat`, in 10 ms ticks) over all rounds: the
//! extra user time of the metered worker, as a share of its CPU time, is
//! what metering can cost a CPU-bound relay.
//!
//! ```sh
//! cargo bench -p relay --bench throughput               # 201 rounds of 32 MiB per mode, ~25 s
//! cargo bench -p relay --bench throughput -- --quick    # 3 rounds
//! cargo bench -p relay --bench throughput -- --rounds 31 --mib 256
//! taskset -c 0 target/release/deps/throughput-* --bench  # all threads on one core: less spread
//! ```

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use meter::{Meter, MeterConfig};
use relay::{Relay, RelayConfig};

fn arg(args: &[String], name: &str) -> Option<usize> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// A server that writes `bytes` to every connection, then closes it.
fn source(bytes: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let block = vec![0x5au8; 256 * 1024];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(block.len());
                    if s.write_all(&block[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    addr
}

/// Downloads everything `target` sends through the SOCKS5 relay at
/// `relay`; MB/s (10^6 bytes) from connect to the last byte.
fn download(relay: SocketAddr, target: SocketAddr, expected: usize) -> f64 {
    let start = Instant::now();
    let mut s = TcpStream::connect(relay).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).unwrap();
    let std::net::IpAddr::V4(ip) = target.ip() else {
        panic!("IPv4 source")
    };
    let mut request = vec![5, 1, 0, 1];
    request.extend_from_slice(&ip.octets());
    request.extend_from_slice(&target.port().to_be_bytes());
    s.write_all(&request).unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 0, "the relay connected");
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    loop {
        match s.read(&mut buf).unwrap() {
            0 => break,
            n => got += n,
        }
    }
    assert_eq!(got, expected);
    expected as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = arg(&args, "--rounds").unwrap_or(if quick { 3 } else { 201 });
    let mib = arg(&args, "--mib").unwrap_or(32);
    let bytes = mib << 20;
    let target = source(bytes);

    // Each relay on its own runtime with one worker: with the source and
    // the client, three busy threads at a time; more only add noise.
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    let mut with = RelayConfig::new(([127, 0, 0, 1], 0).into());
    with.meter = Some(meter.clone());
    let metered = RelayOnItsOwn::start(with);
    let off = RelayOnItsOwn::start(RelayConfig::new(([127, 0, 0, 1], 0).into()));

    // One warm-up transfer each.
    metered.download(target, bytes);
    off.download(target, bytes);
    let (mut on_rates, mut off_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut on_cpu, mut off_cpu, mut cpu_ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (on_times, off_times) = (metered.user_system(), off.user_system());
    for i in 0..rounds {
        // Alternate which goes first.
        let (on, off) = if i % 2 == 0 {
            let on = metered.download(target, bytes);
            (on, off.download(target, bytes))
        } else {
            let off = off.download(target, bytes);
            (metered.download(target, bytes), off)
        };
        on_rates.push(on.0);
        off_rates.push(off.0);
        ratios.push(on.0 / off.0);
        // CPU ns per MiB relayed.
        let per_mib = |ns: u64| ns as f64 / mib as f64;
        on_cpu.push(per_mib(on.1));
        off_cpu.push(per_mib(off.1));
        cpu_ratios.push(on.1 as f64 / off.1 as f64);
    }
    let user_system = |now: (u64, u64), then: (u64, u64)| {
        // USER_HZ: /proc counts in hundredths of a second.
        let s = |ticks: u64| ticks as f64 / 100.0;
        (s(now.0 - then.0), s(now.1 - then.1))
    };
    let (on_user, on_system) = user_system(metered.user_system(), on_times);
    let (off_user, off_system) = user_system(off.user_system(), off_times);
    // Every metered transfer left a record with the exact byte count.
    std::thread::sleep(Duration::from_millis(100));
    let counted: Vec<u64> = records.drain().iter().map(|r| r.bytes_in).collect();
    assert_eq!(counted.len(), rounds + 1, "one record per metered transfer");
    assert!(counted.iter().all(|&b| b == bytes as u64), "{counted:?}");

    let (on, off) = (median(&mut on_rates), median(&mut off_rates));
    let ratio = median(&mut ratios);
    println!("relay throughput: {rounds} × {mib} MiB downloads per mode through SOCKS5 on loopback (median)");
    println!(
        "  metering off  {off:9.1} MB/s   (min {:.1}, max {:.1})",
        off_rates[0],
        off_rates[off_rates.len() - 1]
    );
    println!(
        "  metered       {on:9.1} MB/s   (min {:.1}, max {:.1})",
        on_rates[0],
        on_rates[on_rates.len() - 1]
    );
    println!(
        "  ratio metered/off {ratio:.3} (median of the rounds' ratios; {:+.1} %, rounds from {:.3} to {:.3})",
        (ratio - 1.0) * 100.0,
        ratios[0],
        ratios[ratios.len() - 1]
    );
    let total = |v: &[f64]| v.iter().sum::<f64>();
    let totals_ratio = total(&on_cpu) / total(&off_cpu);
    let (on_cpu_mib, off_cpu_mib) = (median(&mut on_cpu), median(&mut off_cpu));
    let cpu_ratio = median(&mut cpu_ratios);
    println!("relay worker CPU time per MiB relayed (median):");
    println!("  metering off  {:9.1} µs/MiB", off_cpu_mib / 1e3);
    println!("  metered       {:9.1} µs/MiB", on_cpu_mib / 1e3);
    println!(
        "  ratio metered/off {cpu_ratio:.3} (median of the rounds' ratios; {:+.1} % CPU per byte, rounds from {:.3} to {:.3})",
        (cpu_ratio - 1.0) * 100.0,
        cpu_ratios[0],
        cpu_ratios[cpu_ratios.len() - 1]
    );
    println!("  ratio of the total CPU times metered/off {totals_ratio:.3}");
    println!(
        "  CPU-bound throughput loss from metering: {:.1} % (from the median ratio)",
        (1.0 - 1.0 / cpu_ratio) * 100.0
    );
    println!("relay worker user + system CPU seconds over all rounds:");
    println!("  metering off  {off_user:6.2} + {off_system:6.2} s");
    println!("  metered       {on_user:6.2} + {on_system:6.2} s");
    println!(
        "  extra user time of the metered worker: {:+.2} s = {:+.2} % of its CPU time",
        on_user - off_user,
        (on_user - off_user) / (on_user + on_system) * 100.0
    );
}

/// A relay serving on a runtime of its own with one worker thread, whose
/// on-CPU time the bench reads.
struct RelayOnItsOwn {
    addr: SocketAddr,
    schedstat: String,
    _runtime: tokio::runtime::Runtime,
}

impl RelayOnItsOwn {
    fn start(config: RelayConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (addr, thread) = runtime.block_on(async {
            let relay = Relay::bind(config).await.unwrap();
            let addr = relay.local_addr();
            tokio::spawn(relay.serve(std::future::pending()));
            // Spawned tasks run on the one worker: its thread's /proc entry.
            let thread = tokio::spawn(async { std::fs::read_link("/proc/thread-self").unwrap() })
                .await
                .unwrap();
            (addr, thread)
        });
        RelayOnItsOwn {
            addr,
            schedstat: format!("/proc/{}/schedstat", thread.display()),
            _runtime: runtime,
        }
    }

    /// Nanoseconds the worker has run on a CPU.
    fn cpu_ns(&self) -> u64 {
        let text = std::fs::read_to_string(&self.schedstat).unwrap();
        text.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// User and system time of the worker so far, in ticks of 10 ms.
    fn user_system(&self) -> (u64, u64) {
        let path = self.schedstat.replace("schedstat", "stat");
        let text = std::fs::read_to_string(path).unwrap();
        // Fields after the command name, which ends at the last ')':
        // state is field 3, utime 14 and stime 15.
        let after = &text[text.rfind(')').unwrap() + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        (fields[11].parse().unwrap(), fields[12].parse().unwrap())
    }

    /// MB/s and the worker's CPU nanoseconds for one download.
    fn download(&self, target: SocketAddr, bytes: usize) -> (f64, u64) {
        let before = self.cpu_ns();
        let rate = download(self.addr, target, bytes);
        // Let the relay finish the connection (and its record) first.
        std::thread::sleep(Duration::from_millis(20));
        (rate, self.cpu_ns() - before)
    }
}
