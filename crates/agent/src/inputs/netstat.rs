//! `[[inputs.netstat]]`: TCP connections by state and UDP sockets, as
//! Telegraf's `netstat` input emits them.
//!
//! One `netstat` metric without tags and the integer fields
//! `tcp_established`, `tcp_syn_sent`, `tcp_syn_recv`, `tcp_fin_wait1`,
//! `tcp_fin_wait2`, `tcp_time_wait`, `tcp_close`, `tcp_close_wait`,
//! `tcp_last_ack`, `tcp_listen`, `tcp_closing`, `tcp_none` and `udp_socket`.
//!
//! The counts come from the `st` column of `/proc/net/tcp`, `tcp6`, `udp`
//! and `udp6` (a file that is missing, as `tcp6` is with IPv6 disabled,
//! counts nothing). On the machine the agent runs on (host root `/`) the
//! TCP counts come from the kernel's socket diagnostics instead: the same
//! sockets for half the kernel's work (see `netstat/sock_diag.rs`); where those are
//! not available (a sandbox that forbids netlink sockets) the input falls
//! back to the files. Telegraf asks gopsutil, which walks every process's
//! file descriptors as well; reading the tables directly costs a fraction
//! of that and also counts sockets no process holds any more (TIME_WAIT).
//! Unix datagram sockets, which gopsutil counted into `udp_socket`, are
//! not counted.

mod sock_diag;

use std::path::Path;

use lineproto::{FieldValue, Line};
use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError};
use crate::inputs::BuildContext;

/// `[[inputs.netstat]]` has no options of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetstatConfig {}

/// The `netstat` input.
#[derive(Debug)]
struct Netstat {
    host: HostPaths,
    /// Whether to ask the kernel's socket diagnostics for the TCP counts:
    /// only for this machine's own `/proc`, and only until they fail.
    sock_diag: bool,
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let _: NetstatConfig = spec.options()?;
    Ok(Box::new(Netstat {
        host: ctx.host.clone(),
        sock_diag: ctx.host.proc == Path::new("/proc"),
    }))
}

/// Field names by the kernel's TCP state number (`TCP_ESTABLISHED` = 1 …
/// `TCP_CLOSING` = 11); other states (`TCP_NEW_SYN_RECV`, …) count as
/// `tcp_none`.
const TCP_STATES: [&str; 12] = [
    "tcp_none",
    "tcp_established",
    "tcp_syn_sent",
    "tcp_syn_recv",
    "tcp_fin_wait1",
    "tcp_fin_wait2",
    "tcp_time_wait",
    "tcp_close",
    "tcp_close_wait",
    "tcp_last_ack",
    "tcp_listen",
    "tcp_closing",
];

/// An upper bound on the length of one entry of `/proc/net/{tcp,tcp6,udp,udp6}`
/// (IPv4 entries are padded to 150 bytes, IPv6 ones are about 170).
const MAX_ENTRY_BYTES: usize = 256;

/// The smallest page size Linux uses: a `read` shorter than a page minus an
/// entry is the last on any machine (on larger pages some last reads are
/// merely not recognised as such and cost one more `read`).
const SMALLEST_PAGE: usize = 4096;

/// Reads a socket table with as few `read` calls as the kernel allows;
/// `None` when the file does not exist.
///
/// Each `read` of these files makes the kernel walk its whole TCP
/// established hash table (262 144 buckets on a 24 GiB machine: about
/// 2.5 ms), and so does the last one that only finds the end. The kernel
/// answers a `read` with at most one page of whole entries and stops short
/// of a full page only at the end of the table, so a `read` that left room
/// for another entry was the last and the `read` that would return 0 is
/// skipped: half the cost of `read_to_string`. (A regular file, as in
/// fixture trees, returns everything up to the buffer's size at once.)
fn read_table(path: &Path) -> Result<Option<String>, InputError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(InputError::io(path, e)),
    };
    let mut buf = vec![0u8; 32 << 10];
    let mut text = Vec::new();
    loop {
        let n = match std::io::Read::read(&mut file, &mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(InputError::io(path, e)),
        };
        text.extend_from_slice(&buf[..n]);
        if n == 0 || n + MAX_ENTRY_BYTES <= SMALLEST_PAGE {
            break;
        }
    }
    String::from_utf8(text)
        .map(Some)
        .map_err(|_| InputError::Other(format!("{}: not UTF-8", path.display())))
}

/// The state numbers of a socket table's entries (after the header line).
fn states(path: &Path, text: &str) -> Result<Vec<u8>, InputError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let st = line.split_whitespace().nth(3);
        let state = st.and_then(|s| u8::from_str_radix(s, 16).ok());
        match state {
            Some(s) => out.push(s),
            None => {
                return Err(InputError::Parse {
                    path: path.to_owned(),
                    line: i + 1,
                    reason: format!("no hexadecimal state in the 4th column: {line:?}"),
                })
            }
        }
    }
    Ok(out)
}

impl Netstat {
    /// TCP sockets by state, from the socket diagnostics while they work.
    fn tcp_states(&mut self) -> Result<[i64; TCP_STATES.len()], InputError> {
        if self.sock_diag {
            match sock_diag::tcp_states() {
                Ok(counts) => return Ok(counts),
                Err(e) => {
                    tracing::info!(
                        "netstat: the kernel's socket diagnostics failed ({e}); \
                         reading /proc/net/tcp and tcp6 from now on"
                    );
                    self.sock_diag = false;
                }
            }
        }
        let mut tcp = [0i64; TCP_STATES.len()];
        for name in ["net/tcp", "net/tcp6"] {
            let path = self.host.proc_path(name);
            if let Some(text) = read_table(&path)? {
                for s in states(&path, &text)? {
                    let slot = if usize::from(s) < tcp.len() {
                        usize::from(s)
                    } else {
                        0
                    };
                    tcp[slot] += 1;
                }
            }
        }
        Ok(tcp)
    }
}

impl Input for Netstat {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let tcp = self.tcp_states()?;
        let mut udp = 0i64;
        for name in ["net/udp", "net/udp6"] {
            let path = self.host.proc_path(name);
            if let Some(text) = read_table(&path)? {
                udp += states(&path, &text)?.len() as i64;
            }
        }
        let mut line = Line::new("netstat");
        // Telegraf's field order.
        for idx in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0] {
            line = line.with_field(TCP_STATES[idx], FieldValue::Integer(tcp[idx]));
        }
        acc.add(line.with_field("udp_socket", FieldValue::Integer(udp)));
        Ok(())
    }
}
