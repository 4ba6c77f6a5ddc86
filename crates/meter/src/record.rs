//! Connection records: what one connection did, reported once when it ends
//! (Lantern's performance monitor), with addresses masked to their network.

use std::borrow::Cow;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Which side opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We dialled out.
    Outbound,
    /// The peer dialled us.
    Inbound,
}

impl Direction {
    /// `"outbound"` or `"inbound"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// Where in a connection's life its first error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Resolving the name or opening the connection.
    Dial,
    /// A protocol handshake after the connection opened (SOCKS, TLS, …).
    Handshake,
    /// Reading from the peer.
    Read,
    /// Writing to the peer.
    Write,
}

impl Phase {
    /// The phase's name in records: `dial`, `handshake`, `read`, `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dial => "dial",
            Phase::Handshake => "handshake",
            Phase::Read => "read",
            Phase::Write => "write",
        }
    }
}

/// A connection's first error: its class (a short code such as `refused`,
/// `reset`, `timeout`, `eof`), its phase and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionError {
    /// A short, low-cardinality code; [`error_class`] names I/O errors.
    pub class: Cow<'static, str>,
    /// When it happened.
    pub phase: Phase,
    /// The error's message, for people.
    pub detail: String,
}

impl ConnectionError {
    /// The error an I/O failure in `phase` is.
    pub fn io(phase: Phase, e: &io::Error) -> Self {
        ConnectionError {
            class: Cow::Borrowed(error_class(e)),
            phase,
            detail: e.to_string(),
        }
    }
}

/// The class of an I/O error: `refused`, `reset`, `aborted`, `timeout`,
/// `eof`, `unreachable`, `broken_pipe`, `dns` or `other`.
pub fn error_class(e: &io::Error) -> &'static str {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "refused",
        K::ConnectionReset => "reset",
        K::ConnectionAborted => "aborted",
        K::TimedOut | K::WouldBlock => "timeout",
        K::UnexpectedEof => "eof",
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => "unreachable",
        K::BrokenPipe => "broken_pipe",
        _ if is_resolution_failure(e) => "dns",
        _ => "other",
    }
}

/// Name resolution failures reach `std` and tokio as `Other`/`Uncategorized`
/// errors whose message comes from `getaddrinfo`.
fn is_resolution_failure(e: &io::Error) -> bool {
    let text = e.to_string();
    text.contains("failed to lookup address")
        || text.contains("Name or service not known")
        || text.contains("nodename nor servname")
        || text.contains("Temporary failure in name resolution")
        || text.contains("No address associated")
}

/// Prefix lengths that addresses are masked to before they leave the
/// process: /24 for IPv4 and /48 for IPv6 unless configured otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask {
    /// Bits of an IPv4 address kept (0–32).
    pub ipv4: u8,
    /// Bits of an IPv6 address kept (0–128).
    pub ipv6: u8,
}

impl Default for Mask {
    fn default() -> Self {
        Mask { ipv4: 24, ipv6: 48 }
    }
}

impl Mask {
    /// `ip`'s network: the host bits beyond the prefix set to zero. An
    /// IPv4-mapped IPv6 address is masked as the IPv4 address it holds.
    pub fn apply(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => IpAddr::V4(mask_v4(a, self.ipv4)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(mask_v4(v4, self.ipv4)),
                None => {
                    let bits = u128::from(a);
                    let keep = u32::from(self.ipv6.min(128));
                    let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
                    IpAddr::V6(Ipv6Addr::from(bits & mask))
                }
            },
        }
    }
}

fn mask_v4(a: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let keep = u32::from(prefix.min(32));
    let mask = u32::MAX.checked_shl(32 - keep).unwrap_or(0);
    Ipv4Addr::from(u32::from(a) & mask)
}

/// What one connection did, built when its last handle is dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    /// The metering process's instance id ([`crate::MeterConfig::instance`]).
    pub instance: Arc<str>,
    /// The connection's number within this process, from 1.
    pub id: u64,
    /// When the connection ended.
    pub ended_at: SystemTime,
    /// Its transport label.
    pub transport: Arc<str>,
    /// Its protocol label, if it was given one.
    pub protocol: Option<Arc<str>>,
    /// The peer (a peer id, a host name), if known.
    pub peer: Option<Arc<str>>,
    /// Who dialled.
    pub direction: Direction,
    /// Our address, masked.
    pub local_addr: Option<IpAddr>,
    /// The peer's address, masked.
    pub remote_addr: Option<IpAddr>,
    /// How long opening the connection took, if it was timed.
    pub dial: Option<Duration>,
    /// From the first byte written to the first byte read, when a byte was
    /// read after one was written.
    pub ttfb: Option<Duration>,
    /// From the handle's creation to its end.
    pub duration: Duration,
    /// Bytes read from the peer.
    pub bytes_in: u64,
    /// Bytes written to the peer.
    pub bytes_out: u64,
    /// The lowest rate (bytes/s, both directions together) over the
    /// sampling intervals ([`crate::Meter::sample_connections`]) in which
    /// the connection moved bytes; the mean rate when none was sampled.
    pub rate_min: f64,
    /// The highest such rate.
    pub rate_max: f64,
    /// Bytes both ways over the time from the first byte moved to the
    /// connection's end (idle time after the last byte counts).
    pub rate_avg: f64,
    /// The first error, if any.
    pub error: Option<ConnectionError>,
}

/// The receiving end of the record channel ([`crate::Meter::records`]).
#[derive(Debug)]
pub struct Records {
    pub(crate) receiver: Receiver<ConnectionRecord>,
    pub(crate) dropped: Arc<AtomicU64>,
}

impl Records {
    /// Every record waiting now, without blocking.
    pub fn drain(&self) -> Vec<ConnectionRecord> {
        self.receiver.try_iter().collect()
    }

    /// The next record, waiting at most `timeout`; `None` on timeout or
    /// when the meter is gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<ConnectionRecord> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// Records lost because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_the_network() {
        let m = Mask::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(m.apply(ip("203.0.113.77")), ip("203.0.113.0"));
        assert_eq!(m.apply(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1::"));
        assert_eq!(m.apply(ip("::ffff:198.51.100.9")), ip("198.51.100.0"));
        let none = Mask { ipv4: 0, ipv6: 0 };
        assert_eq!(none.apply(ip("203.0.113.77")), ip("0.0.0.0"));
        assert_eq!(none.apply(ip("2001:db8::1")), ip("::"));
        let all = Mask {
            ipv4: 40,
            ipv6: 200,
        };
        assert_eq!(all.apply(ip("203.0.113.77")), ip("203.0.113.77"));
        assert_eq!(all.apply(ip("2001:db8::1")), ip("2001:db8::1"));
    }

    #[test]
    fn io_errors_get_their_class() {
        let class = |k| error_class(&io::Error::from(k));
        assert_eq!(class(io::ErrorKind::ConnectionRefused), "refused");
        assert_eq!(class(io::ErrorKind::ConnectionReset), "reset");
        assert_eq!(class(io::ErrorKind::TimedOut), "timeout");
        assert_eq!(class(io::ErrorKind::UnexpectedEof), "eof");
        assert_eq!(class(io::ErrorKind::InvalidData), "other");
        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(error_class(&dns), "dns");
    }
}
