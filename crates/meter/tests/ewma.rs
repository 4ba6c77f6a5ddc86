//! The moving averages against a reference computed another way: for a
//! rate that is constant between polls, the exponentially weighted average
//! at time T is Σₖ rₖ · (e^(−(T−tₖ)/τ) − e^(−(T−tₖ₋₁)/τ)), interval k being
//! (tₖ₋₁, tₖ] with mean rate rₖ. Each poll's update with α = 1 − e^(−Δt/τ)
//! must agree with it whatever the poll intervals.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use meter::{Meter, MeterConfig, Snapshot, Traffic, EWMA_WINDOWS};

/// Reference: the closed form over intervals `(dt_seconds, bytes)`.
fn reference(intervals: &[(f64, u64)], tau: f64) -> f64 {
    let total: f64 = intervals.iter().map(|(dt, _)| dt).sum();
    let mut end = 0.0;
    let mut sum = 0.0;
    for &(dt, bytes) in intervals {
        let start = end;
        end += dt;
        if dt > 0.0 {
            let rate = bytes as f64 / dt;
            sum += rate * ((-(total - end) / tau).exp() - (-(total - start) / tau).exp());
        }
    }
    sum
}

/// Equal to 1e-9 relative; values that have decayed to almost nothing
/// (after an hour of silence the 1-minute average is e^-60 of what it was,
/// and α rounds to 1) are compared with an absolute floor of 1e-6 B/s.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= (1e-9 * a.abs().max(b.abs())).max(1e-6)
}

fn label<'a>(s: &'a Snapshot, scope: &str, name: &str) -> &'a Traffic {
    let list = match scope {
        "transport" => &s.transports,
        "protocol" => &s.protocols,
        _ => unreachable!(),
    };
    &list.iter().find(|(l, _)| &**l == name).unwrap().1
}

#[test]
fn ewma_matches_the_reference_at_irregular_intervals() {
    // A meter with nothing evicted during the simulation.
    let meter = Meter::new(MeterConfig {
        idle_timeout: Duration::from_secs(1 << 30),
        ..MeterConfig::default()
    });
    let conn = meter
        .connection("tcp")
        .peer("12D3KooWRef")
        .protocol("/ref/1")
        .open();
    let mut tx = conn.wrap(std::io::sink());
    let mut rx = conn.wrap(std::io::repeat(1));
    // Align every entry's last poll to t0 (their creation instants are not
    // ours to know); nothing has moved yet, so the averages stay 0.
    let t0 = Instant::now();
    let first = meter.snapshot_at(t0);
    assert_eq!(first.global.rate_in, [0.0; 3]);

    // (interval, bytes out, bytes in): bursts, silences, a sub-millisecond
    // poll, polls much longer than the longest window.
    let schedule: &[(Duration, u64, u64)] = &[
        (Duration::from_millis(1500), 1_000_000, 10),
        (Duration::from_millis(250), 0, 0),
        (Duration::from_secs(7), 52_000, 3),
        (Duration::from_micros(400), 1, 1),
        (Duration::from_secs(61), 6_100_000, 0),
        (Duration::from_millis(33_333), 0, 777_777),
        (Duration::from_secs(300), 123_456_789, 1),
        (Duration::from_secs(2), 0, 0),
        (Duration::from_millis(901_234), 9_999, 9_999_999),
        (Duration::from_secs(5), 5_000_000, 0),
        (Duration::from_nanos(1), 1, 0),
        (Duration::from_secs(3600), 0, 0),
        (Duration::from_secs(10), 40_000, 40_000),
    ];
    let mut t = t0;
    let mut out_intervals = Vec::new();
    let mut in_intervals = Vec::new();
    for &(dt, out, inn) in schedule {
        // Move the bytes through the real wrappers, in odd chunks.
        let mut left = out;
        while left > 0 {
            let n = left.min(65_521) as usize;
            tx.write_all(&vec![0u8; n]).unwrap();
            left -= n as u64;
        }
        let mut left = inn;
        let mut buf = vec![0u8; 40_009];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            rx.read_exact(&mut buf[..n]).unwrap();
            left -= n as u64;
        }
        t += dt;
        let secs = dt.as_secs_f64();
        out_intervals.push((secs, out));
        in_intervals.push((secs, inn));
        let s = meter.snapshot_at(t);

        let scopes = [
            ("global", &s.global),
            ("transport", label(&s, "transport", "tcp")),
            ("protocol", label(&s, "protocol", "/ref/1")),
            ("peer", &s.peers[0].traffic),
        ];
        for (scope, traffic) in scopes {
            for (i, tau) in EWMA_WINDOWS.iter().enumerate() {
                let want_out = reference(&out_intervals, tau.as_secs_f64());
                let want_in = reference(&in_intervals, tau.as_secs_f64());
                assert!(
                    close(traffic.rate_out[i], want_out),
                    "{scope} out τ={tau:?} after {} polls: {} vs {want_out}",
                    out_intervals.len(),
                    traffic.rate_out[i]
                );
                assert!(
                    close(traffic.rate_in[i], want_in),
                    "{scope} in τ={tau:?} after {} polls: {} vs {want_in}",
                    in_intervals.len(),
                    traffic.rate_in[i]
                );
            }
        }
    }
    // The windows are what the docs say.
    assert_eq!(
        EWMA_WINDOWS.map(|d| d.as_secs()),
        [60, 300, 900],
        "1, 5 and 15 minutes"
    );
}

#[test]
fn a_poll_at_the_same_instant_changes_nothing() {
    let meter = Meter::new(MeterConfig::default());
    let conn = meter.connection("tcp").open();
    let mut tx = conn.wrap(std::io::sink());
    let t0 = Instant::now();
    meter.snapshot_at(t0);
    tx.write_all(&[0; 6000]).unwrap();
    let t1 = t0 + Duration::from_secs(60);
    let a = meter.snapshot_at(t1);
    tx.write_all(&[0; 6000]).unwrap();
    let b = meter.snapshot_at(t1);
    assert_eq!(a.global.rate_out, b.global.rate_out, "Δt = 0: no update");
    assert_eq!(b.global.bytes_out, 12_000, "totals are current anyway");
    // The bytes of the Δt = 0 poll enter at the next one.
    let t2 = t1 + Duration::from_secs(60);
    let c = meter.snapshot_at(t2);
    let want = reference(&[(60.0, 6000), (60.0, 6000)], 60.0);
    assert!(close(c.global.rate_out[0], want), "{c:?}");
}

#[test]
fn a_steady_rate_converges_and_decays_by_e_per_window() {
    let meter = Meter::new(MeterConfig {
        idle_timeout: Duration::from_secs(1 << 30),
        ..MeterConfig::default()
    });
    let conn = meter.connection("tcp").open();
    let mut tx = conn.wrap(std::io::sink());
    let t0 = Instant::now();
    meter.snapshot_at(t0);
    let mut t = t0;
    // 3 hours at 1000 B/s, polled every 10 s.
    for _ in 0..1080 {
        tx.write_all(&[0; 10_000]).unwrap();
        t += Duration::from_secs(10);
        meter.snapshot_at(t);
    }
    let s = meter.snapshot_at(t);
    for r in s.global.rate_out {
        // 3 h is 12 τ of the 15-minute window: 1000 · (1 − e^−12) ≈ 999.994.
        assert!((r - 1000.0).abs() < 1e-2, "{r}");
    }
    // Silence for exactly one window each: the average falls by e.
    for (i, tau) in EWMA_WINDOWS.iter().enumerate() {
        let s = meter.snapshot_at(t + *tau);
        let want = s.global.rate_out[i];
        // Compare against the converged value decayed over τ.
        let decayed = 1000.0 * (-1.0f64).exp();
        assert!(
            (want - decayed).abs() < 0.01,
            "τ={tau:?}: {want} vs {decayed}"
        );
        t += *tau;
        // Resume the steady rate for 3 hours before the next window.
        let mut tt = t;
        for _ in 0..1080 {
            tx.write_all(&[0; 10_000]).unwrap();
            tt += Duration::from_secs(10);
            meter.snapshot_at(tt);
        }
        t = tt;
    }
}
