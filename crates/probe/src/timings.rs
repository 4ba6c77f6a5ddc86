//! The timestamps of one download (µs from its start, on the monotonic
//! clock) and the figures DESIGN derives from them.

use std::time::Instant;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

/// The fixed byte milestones DESIGN names: 50 KiB, 1 MiB, 2.5 MiB, 4 MiB, 5 MiB.
pub const MILESTONES: [u64; 5] = [50 * KIB, MIB, 5 * MIB / 2, 4 * MIB, 5 * MIB];

/// When each step of a download happened, in µs since it started; `None`
/// for steps it did not reach (or that do not apply, like SOCKS without a
/// proxy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timestamps {
    /// Name resolved (the proxy's when there is one).
    pub dns: Option<u64>,
    /// TCP connection established.
    pub connect: Option<u64>,
    /// SOCKS5 method chosen by the proxy.
    pub socks_method: Option<u64>,
    /// SOCKS5 CONNECT reply received.
    pub socks_reply: Option<u64>,
    /// TLS handshake done.
    pub tls: Option<u64>,
    /// Request written.
    pub request_sent: Option<u64>,
    /// Response header complete.
    pub response_header: Option<u64>,
    /// First body byte received.
    pub first_byte: Option<u64>,
    /// Last body byte received.
    pub last_byte: Option<u64>,
    /// 10 %, 20 % … 100 % of the expected body received.
    pub deciles: [Option<u64>; 10],
    /// [`MILESTONES`] received.
    pub milestones: [Option<u64>; 5],
    /// Half of the expected body received.
    pub half: Option<u64>,
    /// All but the last MiB of the expected body received.
    pub last_mib_start: Option<u64>,
    /// 512 KiB received (start of the legacy 0.5 → 1 MiB figure).
    pub half_mib: Option<u64>,
}

/// Records body progress against a sorted list of byte thresholds: one
/// comparison per read in the common case.
#[derive(Debug)]
pub(crate) struct Progress {
    start: Instant,
    /// (threshold, which slot) sorted by threshold.
    marks: Vec<(u64, Slot)>,
    next: usize,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Decile(usize),
    Milestone(usize),
    Half,
    LastMibStart,
    HalfMib,
}

impl Progress {
    /// Thresholds for a body of `expected` bytes (milestones only when the
    /// size is unknown).
    pub(crate) fn new(start: Instant, expected: Option<u64>) -> Progress {
        let mut marks: Vec<(u64, Slot)> = MILESTONES
            .iter()
            .enumerate()
            .map(|(i, &m)| (m, Slot::Milestone(i)))
            .collect();
        marks.push((MIB / 2, Slot::HalfMib));
        if let Some(size) = expected.filter(|&s| s > 0) {
            marks.retain(|&(m, _)| m <= size);
            for i in 0..10u64 {
                // u128: a Content-Length near u64::MAX must not overflow.
                let at = (u128::from(size) * u128::from(i + 1)).div_ceil(10);
                let at = u64::try_from(at).unwrap_or(u64::MAX).max(1);
                marks.push((at, Slot::Decile(i as usize)));
            }
            marks.push((size.div_ceil(2).max(1), Slot::Half));
            if size > MIB {
                marks.push((size - MIB, Slot::LastMibStart));
            }
        }
        marks.sort_by_key(|&(m, _)| m);
        Progress {
            start,
            marks,
            next: 0,
        }
    }

    /// Notes that `total` body bytes have arrived by `now`.
    pub(crate) fn advance(&mut self, total: u64, now: Instant, times: &mut Timestamps) {
        if self.marks.get(self.next).is_none_or(|&(m, _)| m > total) {
            return;
        }
        let us = micros(self.start, now);
        while let Some(&(m, slot)) = self.marks.get(self.next) {
            if m > total {
                break;
            }
            match slot {
                Slot::Decile(i) => times.deciles[i] = Some(us),
                Slot::Milestone(i) => times.milestones[i] = Some(us),
                Slot::Half => times.half = Some(us),
                Slot::LastMibStart => times.last_mib_start = Some(us),
                Slot::HalfMib => times.half_mib = Some(us),
            }
            self.next += 1;
        }
    }
}

/// µs from `start` to `now`.
pub(crate) fn micros(start: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(start).as_micros()).unwrap_or(u64::MAX)
}

/// Bits per second for `bytes` received over `from_us..to_us`.
fn rate(bytes: u64, from_us: Option<u64>, to_us: Option<u64>) -> Option<f64> {
    let span = to_us?.checked_sub(from_us?)?;
    (span > 0).then(|| bytes as f64 * 8.0 / (span as f64 / 1e6))
}

impl Timestamps {
    /// Time to first byte: first body byte − start.
    pub fn ttfb_us(&self) -> Option<u64> {
        self.first_byte
    }

    /// Server TTFB: first body byte − request sent.
    pub fn server_ttfb_us(&self) -> Option<u64> {
        self.first_byte?.checked_sub(self.request_sent?)
    }

    /// Request latency: response header − request sent.
    pub fn request_latency_us(&self) -> Option<u64> {
        self.response_header?.checked_sub(self.request_sent?)
    }

    /// The name lookup's duration.
    pub fn dns_us(&self) -> Option<u64> {
        self.dns
    }

    /// The TCP handshake's duration.
    pub fn connect_us(&self) -> Option<u64> {
        self.connect?.checked_sub(self.dns.unwrap_or(0))
    }

    /// The SOCKS5 handshake's duration.
    pub fn socks_us(&self) -> Option<u64> {
        self.socks_reply?.checked_sub(self.connect?)
    }

    /// The TLS handshake's duration.
    pub fn tls_us(&self) -> Option<u64> {
        self.tls?
            .checked_sub(self.socks_reply.or(self.connect).unwrap_or(0))
    }

    /// TTLB at 50 KiB, from larger downloads too.
    pub fn ttlb_50k_us(&self) -> Option<u64> {
        self.milestones[0]
    }

    /// TTLB at 1 MiB, from larger downloads too.
    pub fn ttlb_1m_us(&self) -> Option<u64> {
        self.milestones[1]
    }

    /// Throughput of the body's last MiB (bodies over 1 MiB), bit/s.
    pub fn dl_last_mib_bps(&self) -> Option<f64> {
        rate(MIB, self.last_mib_start, self.last_byte)
    }

    /// Throughput of the body's second half, bit/s.
    pub fn dl_second_half_bps(&self, size: u64) -> Option<f64> {
        rate(size - size.div_ceil(2), self.half, self.last_byte)
    }

    /// The legacy 0.5 → 1 MiB throughput, bit/s.
    pub fn dl_legacy_bps(&self) -> Option<f64> {
        rate(MIB / 2, self.half_mib, self.milestones[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn progress_marks_each_threshold_once() {
        let start = Instant::now();
        let size = 5 * MIB;
        let mut p = Progress::new(start, Some(size));
        let mut t = Timestamps::default();
        // 64 KiB per ms.
        let mut total = 0;
        let mut ms = 0;
        while total < size {
            total += 64 * KIB;
            ms += 1;
            p.advance(total, start + Duration::from_millis(ms), &mut t);
        }
        t.last_byte = Some(ms * 1000);
        assert!(t.deciles.iter().all(Option::is_some));
        assert!(t.milestones.iter().all(Option::is_some));
        assert_eq!(t.milestones[0], Some(1000));
        assert_eq!(t.milestones[1], Some(16_000));
        assert_eq!(t.last_mib_start, Some(64_000));
        // 1 MiB in 16 ms.
        let bps = t.dl_last_mib_bps().unwrap();
        assert!((bps - MIB as f64 * 8.0 / 0.016).abs() < 1.0, "{bps}");
        assert!(t.dl_second_half_bps(size).is_some());
        assert_eq!(t.dl_legacy_bps(), Some(MIB as f64 / 2.0 * 8.0 / 0.008));
    }

    #[test]
    fn small_bodies_skip_larger_milestones() {
        let start = Instant::now();
        let mut p = Progress::new(start, Some(1000));
        let mut t = Timestamps::default();
        p.advance(1000, start, &mut t);
        assert!(t.milestones.iter().all(Option::is_none));
        assert!(t.deciles.iter().all(Option::is_some));
        assert_eq!(t.last_mib_start, None);
    }
}
