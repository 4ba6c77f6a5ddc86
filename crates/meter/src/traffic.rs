//! Byte counters that the hot path adds to, and the moving averages that a
//! poll derives from them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The time constants of the three moving averages: 1, 5 and 15 minutes,
/// as a load average has.
pub const EWMA_WINDOWS: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(900),
];

/// One label's counters (global, a transport, a protocol or a peer): bytes
/// in and out, added with relaxed atomics, and the rate state only a poll
/// touches.
#[derive(Debug)]
pub(crate) struct Entry {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    rates: Mutex<RateState>,
}

/// What a poll remembers of an entry between polls.
#[derive(Debug, Clone, Copy)]
struct RateState {
    polled_at: Instant,
    polled_in: u64,
    polled_out: u64,
    /// When the counters last moved, as far as polls can tell.
    active_at: Instant,
    ewma_in: [f64; 3],
    ewma_out: [f64; 3],
}

/// An entry's totals and rates at one poll.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    /// Bytes received since the label was first seen (or last evicted).
    pub bytes_in: u64,
    /// Bytes sent since the label was first seen (or last evicted).
    pub bytes_out: u64,
    /// Inbound bytes/s as moving averages over [`EWMA_WINDOWS`].
    pub rate_in: [f64; 3],
    /// Outbound bytes/s as moving averages over [`EWMA_WINDOWS`].
    pub rate_out: [f64; 3],
}

impl Entry {
    pub(crate) fn new(now: Instant) -> Self {
        Entry {
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            rates: Mutex::new(RateState {
                polled_at: now,
                polled_in: 0,
                polled_out: 0,
                active_at: now,
                ewma_in: [0.0; 3],
                ewma_out: [0.0; 3],
            }),
        }
    }

    #[inline]
    pub(crate) fn add_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the totals (the global entry's, summed from the transports at
    /// each poll rather than added to per byte).
    pub(crate) fn set(&self, bytes_in: u64, bytes_out: u64) {
        self.bytes_in.store(bytes_in, Ordering::Relaxed);
        self.bytes_out.store(bytes_out, Ordering::Relaxed);
    }

    /// Brings the moving averages up to `now`: the mean rate since the last
    /// poll enters each average with weight α = 1 − e^(−Δt/τ), so that the
    /// result does not depend on how often polls come.
    pub(crate) fn poll(&self, now: Instant) -> Traffic {
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let bytes_out = self.bytes_out.load(Ordering::Relaxed);
        let mut s = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let dt = now.saturating_duration_since(s.polled_at).as_secs_f64();
        if dt > 0.0 {
            let rate_in = bytes_in.wrapping_sub(s.polled_in) as f64 / dt;
            let rate_out = bytes_out.wrapping_sub(s.polled_out) as f64 / dt;
            for (i, tau) in EWMA_WINDOWS.iter().enumerate() {
                let alpha = 1.0 - (-dt / tau.as_secs_f64()).exp();
                s.ewma_in[i] += alpha * (rate_in - s.ewma_in[i]);
                s.ewma_out[i] += alpha * (rate_out - s.ewma_out[i]);
            }
            if bytes_in != s.polled_in || bytes_out != s.polled_out {
                s.active_at = now;
            }
            s.polled_at = now;
            s.polled_in = bytes_in;
            s.polled_out = bytes_out;
        }
        Traffic {
            bytes_in,
            bytes_out,
            rate_in: s.ewma_in,
            rate_out: s.ewma_out,
        }
    }

    /// How long the counters have stood still, as of the last poll.
    pub(crate) fn idle_for(&self, now: Instant) -> Duration {
        let s = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        now.saturating_duration_since(s.active_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_converges_whatever_the_poll_interval() {
        let start = Instant::now();
        for step in [1u64, 7, 30] {
            let e = Entry::new(start);
            let mut t = start;
            let mut last = e.poll(t);
            for _ in 0..(10_800 / step) {
                e.add_in(1000 * step);
                t += Duration::from_secs(step);
                last = e.poll(t);
            }
            for r in last.rate_in {
                assert!((r - 1000.0).abs() < 20.0, "step {step}: {r}");
            }
            assert_eq!(last.rate_out, [0.0; 3]);
        }
    }
}
