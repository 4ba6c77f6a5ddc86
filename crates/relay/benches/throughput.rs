//! Relay throughput on loopback, metered against metering off (issue 9's
//! target: at most 2 % loss). Two relays run in one process (one with a
//! [`meter::Meter`], records on and the 1 s sampler running; one without a
//! meter at all, the `--no-meter` path); a source server sends 64 MiB on
//! every connection; a client downloads it through each relay's SOCKS5 in
//! turn, alternating. It prints the median MB/s of each and the median of
//! the rounds' ratios (each round's metered transfer against its unmetered
//! neighbour, so that drift on a busy machine hits both alike).
//!
//! ```sh
//! cargo bench -p relay --bench throughput               # 15 rounds of 64 MiB per mode
//! cargo bench -p relay --bench throughput -- --quick    # 3 rounds
//! cargo bench -p relay --bench throughput -- --rounds 31 --mib 256
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
    let rounds = arg(&args, "--rounds").unwrap_or(if quick { 3 } else { 15 });
    let mib = arg(&args, "--mib").unwrap_or(64);
    let bytes = mib << 20;
    let target = source(bytes);

    // The relays share one runtime with one worker: with the source and
    // the client, three busy threads; more only add scheduling noise.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let meter = Meter::new(MeterConfig::default());
    let records = meter.records().unwrap();
    let (metered, off) = runtime.block_on(async {
        let mut with = RelayConfig::new(([127, 0, 0, 1], 0).into());
        with.meter = Some(meter.clone());
        let with = Relay::bind(with).await.unwrap();
        let without = Relay::bind(RelayConfig::new(([127, 0, 0, 1], 0).into()))
            .await
            .unwrap();
        let addrs = (with.local_addr(), without.local_addr());
        tokio::spawn(with.serve(std::future::pending()));
        tokio::spawn(without.serve(std::future::pending()));
        addrs
    });

    // One warm-up transfer each.
    download(metered, target, bytes);
    download(off, target, bytes);
    let (mut on_rates, mut off_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        // Alternate which goes first.
        let (on, off) = if i % 2 == 0 {
            let on = download(metered, target, bytes);
            (on, download(off, target, bytes))
        } else {
            let off = download(off, target, bytes);
            (download(metered, target, bytes), off)
        };
        on_rates.push(on);
        off_rates.push(off);
        ratios.push(on / off);
    }
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
}
