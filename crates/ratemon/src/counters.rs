//! Reading an interface's byte counters, a thousand times a second and
//! more, at the least cost per reading.
//!
//! Two ways, both without a syscall to open anything per sample:
//! - [`NetlinkCounters`]: one `RTM_GETSTATS` request for
//!   `IFLA_STATS_LINK_64` on a held netlink socket; rx and tx come from one
//!   `dev_get_stats` call, so they are a consistent pair.
//! - [`SysfsCounters`]: `pread` on held descriptors of
//!   `statistics/rx_bytes` and `tx_bytes`; two reads, each of which makes
//!   the kernel gather every statistic of the device again.
//!
//! `benches/counters.rs` (`cargo bench -p ratemon`) measures both; the
//! figures, and why netlink is the default, are in `bench/RESULTS.md`.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// An interface's cumulative byte counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
}

/// Something that reads an interface's counters on demand.
pub trait CounterSource: Send + std::fmt::Debug {
    /// The counters now.
    fn read(&mut self) -> io::Result<Counters>;
}

/// How to read the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CounterMethod {
    /// `RTM_GETSTATS` over netlink: one consistent rx/tx pair per request.
    #[default]
    Netlink,
    /// `pread` of the two sysfs statistics files.
    Sysfs,
}

impl CounterMethod {
    /// The method's name as the command line and configuration spell it.
    pub fn name(self) -> &'static str {
        match self {
            CounterMethod::Netlink => "netlink",
            CounterMethod::Sysfs => "sysfs",
        }
    }
}

impl std::str::FromStr for CounterMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "netlink" => Ok(CounterMethod::Netlink),
            "sysfs" => Ok(CounterMethod::Sysfs),
            other => Err(format!(
                "unknown counter method `{other}`; use netlink or sysfs"
            )),
        }
    }
}

/// Opens the counters of `interface` with `method`; `sys` is where sysfs
/// is mounted (`/sys` on a host).
pub fn open(
    method: CounterMethod,
    sys: &Path,
    interface: &str,
) -> io::Result<Box<dyn CounterSource>> {
    let dir = interface_dir(sys, interface)?;
    Ok(match method {
        CounterMethod::Netlink => {
            let index = read_trimmed(&dir.join("ifindex"))?;
            let index = index.parse::<u32>().map_err(|_| {
                invalid(format!(
                    "{}: `{index}` is not an interface index",
                    dir.join("ifindex").display()
                ))
            })?;
            Box::new(NetlinkCounters::open(index)?)
        }
        CounterMethod::Sysfs => Box::new(SysfsCounters::open(&dir)?),
    })
}

/// `<sys>/class/net/<interface>`, checked to exist and to name one
/// interface (no path separators).
fn interface_dir(sys: &Path, interface: &str) -> io::Result<PathBuf> {
    if interface.is_empty() || interface.contains('/') || interface == "." || interface == ".." {
        return Err(invalid(format!("`{interface}` is not an interface name")));
    }
    let dir = sys.join("class/net").join(interface);
    if !dir.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no interface named `{interface}` ({} is missing)",
                dir.display()
            ),
        ));
    }
    Ok(dir)
}

/// The interface's speed from `<sys>/class/net/IF/speed` in Mbit/s, or
/// why there is none (virtual interfaces and links that are down have no
/// speed; some drivers say -1).
pub fn link_speed_mbit(sys: &Path, interface: &str) -> Result<f64, String> {
    let path = sys.join("class/net").join(interface).join("speed");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{} cannot be read ({e}): the driver reports no link speed",
            path.display()
        )
    })?;
    let text = text.trim();
    match text.parse::<i64>() {
        Ok(speed) if speed > 0 => Ok(speed as f64),
        Ok(speed) => Err(format!(
            "{} says {speed}: the driver does not know the link speed",
            path.display()
        )),
        Err(_) => Err(format!("{}: `{text}` is not a speed", path.display())),
    }
}

fn read_trimmed(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Counters read by `pread` from held sysfs descriptors.
#[derive(Debug)]
pub struct SysfsCounters {
    rx: File,
    tx: File,
    buf: [u8; 32],
}

impl SysfsCounters {
    /// Opens `<dir>/statistics/{rx,tx}_bytes` of an interface directory.
    pub fn open(dir: &Path) -> io::Result<SysfsCounters> {
        let open = |name: &str| {
            let path = dir.join("statistics").join(name);
            File::open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        Ok(SysfsCounters {
            rx: open("rx_bytes")?,
            tx: open("tx_bytes")?,
            buf: [0; 32],
        })
    }

    fn read_one(file: &File, buf: &mut [u8; 32]) -> io::Result<u64> {
        let n = rustix::io::pread(file, &mut buf[..], 0)?;
        let text = std::str::from_utf8(&buf[..n]).unwrap_or("").trim();
        text.parse::<u64>()
            .map_err(|_| invalid(format!("`{text}` is not a byte counter")))
    }
}

impl CounterSource for SysfsCounters {
    fn read(&mut self) -> io::Result<Counters> {
        let rx_bytes = Self::read_one(&self.rx, &mut self.buf)?;
        let tx_bytes = Self::read_one(&self.tx, &mut self.buf)?;
        Ok(Counters { rx_bytes, tx_bytes })
    }
}

/// Counters read by `RTM_GETSTATS` on a held `NETLINK_ROUTE` socket.
#[derive(Debug)]
pub struct NetlinkCounters {
    socket: OwnedFd,
    index: u32,
    seq: u32,
    request: [u8; REQUEST_LEN],
    response: Vec<u8>,
}

// Kernel ABI (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h).
const NLMSG_HDR_LEN: usize = 16;
const IF_STATS_MSG_LEN: usize = 12;
const REQUEST_LEN: usize = NLMSG_HDR_LEN + IF_STATS_MSG_LEN;
const RTM_GETSTATS: u16 = 94;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const RTM_NEWSTATS: u16 = 92;
const IFLA_STATS_LINK_64: u16 = 1;
/// Offsets of rx_bytes and tx_bytes in `struct rtnl_link_stats64`.
const RX_BYTES_AT: usize = 16;
const TX_BYTES_AT: usize = 24;

impl NetlinkCounters {
    /// A socket asking for the statistics of the interface with `index`.
    pub fn open(index: u32) -> io::Result<NetlinkCounters> {
        // Protocol 0 is NETLINK_ROUTE (rustix names no constant for it).
        let socket = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )?;
        // A kernel that never answers must not hang the sampler.
        rustix::net::sockopt::set_socket_timeout(
            &socket,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(1)),
        )?;
        let mut request = [0u8; REQUEST_LEN];
        request[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
        request[4..6].copy_from_slice(&RTM_GETSTATS.to_ne_bytes());
        request[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        // if_stats_msg: family 0, pads, ifindex, filter_mask.
        request[20..24].copy_from_slice(&index.to_ne_bytes());
        let filter = 1u32 << (IFLA_STATS_LINK_64 - 1);
        request[24..28].copy_from_slice(&filter.to_ne_bytes());
        let mut counters = NetlinkCounters {
            socket,
            index,
            seq: 0,
            request,
            response: vec![0; 1024],
        };
        // Fail at open, not at the first sample, when the kernel lacks RTM_GETSTATS.
        counters.read()?;
        Ok(counters)
    }
}

impl CounterSource for NetlinkCounters {
    fn read(&mut self) -> io::Result<Counters> {
        self.seq = self.seq.wrapping_add(1);
        self.request[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        let kernel = netlink::SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(&self.socket, &self.request, SendFlags::empty(), &kernel)?;
        loop {
            let (n, _) =
                rustix::net::recv(&self.socket, &mut self.response[..], RecvFlags::empty())?;
            match parse_stats_response(&self.response[..n], self.seq) {
                Some(result) => return result.map_err(|e| annotate(e, self.index)),
                // An answer to an earlier request that timed out: skip it.
                None => continue,
            }
        }
    }
}

fn annotate(e: io::Error, index: u32) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("RTM_GETSTATS for interface index {index}: {e}"),
    )
}

/// The counters in a netlink answer to request `seq`; `None` for an
/// answer to another request.
fn parse_stats_response(msg: &[u8], seq: u32) -> Option<io::Result<Counters>> {
    let u16_at = |at: usize| {
        msg.get(at..at + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        msg.get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(kind), Some(got_seq)) = (u16_at(4), u32_at(8)) else {
        return Some(Err(invalid("short netlink message".into())));
    };
    if got_seq != seq {
        return None;
    }
    if kind == NLMSG_ERROR {
        let errno = u32_at(NLMSG_HDR_LEN).map_or(0, |e| (e as i32).wrapping_neg());
        return Some(Err(io::Error::from_raw_os_error(errno)));
    }
    if kind != RTM_NEWSTATS {
        return Some(Err(invalid(format!(
            "unexpected netlink message type {kind}"
        ))));
    }
    let mut at = NLMSG_HDR_LEN + IF_STATS_MSG_LEN;
    while let (Some(len), Some(ty)) = (u16_at(at), u16_at(at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if ty == IFLA_STATS_LINK_64 {
            let payload = at + 4;
            let u64_at = |off: usize| {
                msg.get(payload + off..payload + off + 8).map(|b| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    u64::from_ne_bytes(a)
                })
            };
            return Some(match (u64_at(RX_BYTES_AT), u64_at(TX_BYTES_AT)) {
                (Some(rx_bytes), Some(tx_bytes)) => Ok(Counters { rx_bytes, tx_bytes }),
                _ => Err(invalid(
                    "IFLA_STATS_LINK_64 is shorter than rtnl_link_stats64".into(),
                )),
            });
        }
        at += (len + 3) & !3;
    }
    Some(Err(invalid("the answer has no IFLA_STATS_LINK_64".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo_dir() -> PathBuf {
        PathBuf::from("/sys/class/net/lo")
    }

    #[test]
    fn both_methods_read_the_same_counters_of_lo() {
        let mut sysfs = SysfsCounters::open(&lo_dir()).expect("sysfs counters of lo");
        let mut nl =
            open(CounterMethod::Netlink, Path::new("/sys"), "lo").expect("netlink counters of lo");
        let a = sysfs.read().expect("sysfs read");
        let b = nl.read().expect("netlink read");
        let c = sysfs.read().expect("sysfs read");
        // Other tests may be using loopback: b lies between a and c.
        assert!(
            a.rx_bytes <= b.rx_bytes && b.rx_bytes <= c.rx_bytes,
            "{a:?} {b:?} {c:?}"
        );
        assert!(
            a.tx_bytes <= b.tx_bytes && b.tx_bytes <= c.tx_bytes,
            "{a:?} {b:?} {c:?}"
        );
    }

    #[test]
    fn a_missing_interface_is_named() {
        let err = open(CounterMethod::Sysfs, Path::new("/sys"), "nosuch0")
            .expect_err("no such interface");
        assert!(
            err.to_string().contains("no interface named `nosuch0`"),
            "{err}"
        );
        let err = open(CounterMethod::Netlink, Path::new("/sys"), "../lo").expect_err("not a name");
        assert!(err.to_string().contains("not an interface name"), "{err}");
    }

    #[test]
    fn lo_has_no_speed_and_says_why() {
        let reason = link_speed_mbit(Path::new("/sys"), "lo").expect_err("lo has no speed");
        assert!(reason.contains("/sys/class/net/lo/speed"), "{reason}");
    }

    /// A hand-built answer: header, if_stats_msg, a 4-byte padding
    /// attribute, then IFLA_STATS_LINK_64 with distinct rx and tx.
    fn answer(seq: u32, kind: u16, rx: u64, tx: u64) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDR_LEN + IF_STATS_MSG_LEN];
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&4u16.to_ne_bytes()); // padding attribute: header only
        m.extend_from_slice(&0u16.to_ne_bytes());
        let mut stats = vec![0u8; 24 * 8];
        stats[0..8].copy_from_slice(&1u64.to_ne_bytes()); // rx_packets
        stats[8..16].copy_from_slice(&2u64.to_ne_bytes()); // tx_packets
        stats[RX_BYTES_AT..RX_BYTES_AT + 8].copy_from_slice(&rx.to_ne_bytes());
        stats[TX_BYTES_AT..TX_BYTES_AT + 8].copy_from_slice(&tx.to_ne_bytes());
        m.extend_from_slice(&((4 + stats.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&IFLA_STATS_LINK_64.to_ne_bytes());
        m.extend_from_slice(&stats);
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn rx_and_tx_bytes_come_from_their_offsets() {
        let got = parse_stats_response(&answer(5, RTM_NEWSTATS, 1234, 5678), 5);
        assert_eq!(
            got.expect("this request").expect("counters"),
            Counters {
                rx_bytes: 1234,
                tx_bytes: 5678
            }
        );
        let wrong = parse_stats_response(&answer(5, 16, 1, 2), 5).expect("this request");
        assert!(wrong
            .expect_err("not RTM_NEWSTATS")
            .to_string()
            .contains("type 16"));
        let mut short = answer(5, RTM_NEWSTATS, 1, 2);
        short.truncate(short.len() - 170);
        assert!(parse_stats_response(&short, 5)
            .expect("this request")
            .is_err());
    }

    #[test]
    fn a_netlink_error_is_the_kernels_errno() {
        let mut m = vec![0u8; 36];
        m[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m[8..12].copy_from_slice(&9u32.to_ne_bytes());
        m[16..20].copy_from_slice(&(-19i32).to_ne_bytes()); // ENODEV
        let err = parse_stats_response(&m, 9)
            .expect("this request")
            .expect_err("an error");
        assert_eq!(err.raw_os_error(), Some(19));
    }

    #[test]
    fn answers_to_other_requests_are_skipped() {
        let mut msg = vec![0u8; 64];
        msg[8..12].copy_from_slice(&7u32.to_ne_bytes());
        assert!(parse_stats_response(&msg, 8).is_none());
        assert!(parse_stats_response(&msg[..4], 8).is_some_and(|r| r.is_err()));
    }
}
