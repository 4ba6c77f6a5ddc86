//! `[[inputs.processes]]`: processes by state, as Telegraf's `processes`
//! plugin counts them on Linux: by the state letter of every
//! `/proc/<pid>/stat`.
//!
//! One point of measurement `processes` without tags, all fields integers:
//! `running` (R), `sleeping` (S), `blocked` (D), `zombies` (Z), `dead` (X),
//! `stopped` (T, t), `paging` (W), `idle` (I), `unknown` (always 0 on
//! Linux, as in Telegraf), `total`, `total_threads` (the sum of every
//! process's thread count), and `parked` (P) only when some process is
//! parked.

use std::collections::HashMap;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::BuildContext;

/// The plugin's options, with Telegraf's names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProcessesConfig {
    /// Telegraf runs `ps` with sudo on the BSDs; Linux reads /proc, so this
    /// is accepted and has no effect.
    #[allow(dead_code)]
    use_sudo: bool,
}

#[derive(Debug, Default)]
struct Counts {
    running: i64,
    sleeping: i64,
    blocked: i64,
    zombies: i64,
    dead: i64,
    stopped: i64,
    paging: i64,
    idle: i64,
    parked: i64,
    total: i64,
    total_threads: i64,
}

#[derive(Debug)]
struct Processes {
    host: HostPaths,
    /// `/proc` (under the host root), kept open for `openat`.
    proc: Option<OwnedFd>,
    /// `<pid>/stat` files kept open between collections, by pid. Reading
    /// one again from its start skips the path walk, the open and the
    /// close: about half of what this input costs. A process that has
    /// exited answers `ESRCH`, so a pid used again is opened afresh.
    open: HashMap<u32, OwnedFd>,
}

/// At most this many `<pid>/stat` files are kept open: the rest are
/// opened and closed each time, as the agent must not use up its file
/// descriptors on a machine with many processes.
const MAX_OPEN: usize = 256;

/// How much of a `/proc/<pid>/stat` one `read` asks for; the line is
/// about 350 bytes.
const STAT_READ: usize = 1024;

/// Reads a whole `stat` file from its start into `buf`; `None` when it
/// cannot be read (the process has exited). The kernel formats the whole
/// line at the first read, so a shorter answer than asked for is the end.
fn read_stat(fd: &OwnedFd, buf: &mut Vec<u8>) -> Option<()> {
    buf.clear();
    loop {
        let start = buf.len();
        buf.resize(start + STAT_READ, 0);
        let n = rustix::io::pread(fd, &mut buf[start..], start as u64).ok()?;
        buf.truncate(start + n);
        if n < STAT_READ {
            return Some(());
        }
    }
}

impl Processes {
    /// Reads `<pid>/stat` into `buf`, through the file kept open for `pid`
    /// if there is one; `None` when the process has exited.
    fn read_pid(&mut self, dir: &OwnedFd, pid: u32, rel: &str, buf: &mut Vec<u8>) -> Option<()> {
        if let Some(fd) = self.open.get(&pid) {
            if read_stat(fd, buf).is_some() {
                return Some(());
            }
            // Exited, and the pid perhaps taken by another process.
            self.open.remove(&pid);
        }
        // `openat` from the open directory walks two path components
        // instead of four.
        let fd =
            rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
        read_stat(&fd, buf)?;
        if self.open.len() < MAX_OPEN {
            self.open.insert(pid, fd);
        }
        Some(())
    }
}

impl Input for Processes {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let proc_path = self.host.proc.clone();
        let dir_error = |e: rustix::io::Errno| InputError::io(&proc_path, e.into());
        let dir = match self.proc.take() {
            Some(dir) => dir,
            None => rustix::fs::open(
                &proc_path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(dir_error)?,
        };
        let entries = match rustix::fs::Dir::read_from(&dir) {
            Ok(entries) => entries,
            // Opened afresh next time.
            Err(e) => return Err(dir_error(e)),
        };
        let mut c = Counts::default();
        let mut first_error = None;
        let mut rel = String::new();
        let mut buf = Vec::with_capacity(STAT_READ);
        let mut listed = Vec::with_capacity(self.open.len() + 16);
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    first_error.get_or_insert(dir_error(e));
                    break;
                }
            };
            let Ok(name) = std::str::from_utf8(entry.file_name().to_bytes()) else {
                continue;
            };
            let Ok(pid) = name.parse::<u32>() else {
                continue;
            };
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            listed.push(pid);
            rel.clear();
            rel.push_str(name);
            rel.push_str("/stat");
            // A process that exits while we look is no error.
            if self.read_pid(&dir, pid, &rel, &mut buf).is_none() {
                continue;
            }
            let data = String::from_utf8_lossy(&buf);
            let path = || proc_path.join(&rel);
            // The command name may hold spaces and parentheses: the state
            // follows the last `)`.
            let Some(close) = data.rfind(')') else {
                continue;
            };
            let stats: Vec<&str> = data[close + 1..].split_ascii_whitespace().collect();
            if stats.len() < 3 {
                first_error.get_or_insert_with(|| InputError::Parse {
                    path: path(),
                    line: 1,
                    reason: format!(
                        "{} fields after the command, expected at least 3",
                        stats.len()
                    ),
                });
                continue;
            }
            match stats[0].as_bytes().first() {
                Some(b'R') => c.running += 1,
                Some(b'S') => c.sleeping += 1,
                Some(b'D') => c.blocked += 1,
                Some(b'Z') => c.zombies += 1,
                Some(b'X') => c.dead += 1,
                Some(b'T' | b't') => c.stopped += 1,
                Some(b'W') => c.paging += 1,
                Some(b'I') => c.idle += 1,
                Some(b'P') => c.parked += 1,
                _ => {
                    tracing::debug!(state = stats[0], path = %path().display(), "unknown process state")
                }
            }
            c.total += 1;
            if let Some(threads) = stats.get(17).and_then(|t| t.parse::<i64>().ok()) {
                c.total_threads += threads;
            }
        }
        let mut m = Metric::new("processes")
            .with_field("blocked", c.blocked)
            .with_field("zombies", c.zombies)
            .with_field("stopped", c.stopped)
            .with_field("running", c.running)
            .with_field("sleeping", c.sleeping)
            .with_field("total", c.total)
            .with_field("unknown", 0i64)
            .with_field("dead", c.dead)
            .with_field("paging", c.paging)
            .with_field("total_threads", c.total_threads)
            .with_field("idle", c.idle);
        if c.parked > 0 {
            m = m.with_field("parked", c.parked);
        }
        acc.add(m);
        // Close the files of processes no longer listed.
        listed.sort_unstable();
        self.open.retain(|pid, _| listed.binary_search(pid).is_ok());
        self.proc = Some(dir);
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let _: ProcessesConfig = spec.options()?;
    Ok(Box::new(Processes {
        host: ctx.host.clone(),
        proc: None,
        open: HashMap::new(),
    }))
}
