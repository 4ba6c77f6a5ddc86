//! `[[inputs.system]]`: load, CPU count, logged-in users and uptime, as
//! Telegraf's `system` plugin reports them by default.
//!
//! Three points of measurement `system` without tags, as Telegraf emits
//! them:
//! - `load1`, `load5`, `load15` (floats, from `/proc/loadavg`), `n_cpus`
//!   (integer: the `processor` entries of `/proc/cpuinfo`, or the `cpuN`
//!   lines of `/proc/stat`), `n_physical_cpus` (integer: distinct
//!   `core_cpus_list`/`thread_siblings_list` of
//!   `/sys/devices/system/cpu/cpu*/topology`, else the sum of `cpu cores`
//!   per `physical id` in `/proc/cpuinfo`; both counted again every five
//!   minutes, not at every collection), and `n_users` and
//!   `n_unique_users` (integers: the `USER_PROCESS` records of the host's
//!   `/run/utmp` or `/var/run/utmp` and their distinct user names; both left out when the
//!   file does not exist or cannot be read, as Telegraf does);
//! - `uptime` (integer, whole seconds, from `/proc/uptime`);
//! - `uptime_format` (string, `"3 days, 4:05"`), which Telegraf still emits
//!   though it deprecated it in 1.10.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::BuildContext;

/// `[[inputs.system]]` has no options weir supports.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemConfig {}

/// glibc's `struct utmp` on Linux: 384 bytes; `ut_type` (i16) at 0,
/// `ut_user` (32 bytes) at 44.
const UTMP_SIZE: usize = 384;
const UT_USER_OFFSET: usize = 44;
const UT_USER_LEN: usize = 32;
const USER_PROCESS: i16 = 7;

#[derive(Debug)]
struct System {
    host: HostPaths,
    /// `n_cpus` and `n_physical_cpus` and when they were counted: the
    /// count reads `/proc/cpuinfo` and a file per CPU, most of what this
    /// input costs, for numbers that change only when CPUs are plugged
    /// in or out.
    cpus: Option<(Instant, i64, i64)>,
}

/// How long a CPU count is used before it is counted again.
const CPU_COUNT_TTL: Duration = Duration::from_secs(300);

/// Telegraf's `uptime_format`: `"%d day(s), "` when at least a day, then
/// `"%2d:%02d"` hours and minutes.
pub(crate) fn format_uptime(uptime: u64) -> String {
    let days = uptime / 86_400;
    let mut s = String::new();
    if days != 0 {
        let plural = if days > 1 { "s" } else { "" };
        s.push_str(&format!("{days} day{plural}, "));
    }
    let minutes = uptime / 60;
    let hours = (minutes / 60) % 24;
    let minutes = minutes % 60;
    s.push_str(&format!("{hours:2}:{minutes:02}"));
    s
}

/// The user names of the `USER_PROCESS` records of a utmp file.
fn utmp_users(data: &[u8]) -> Vec<String> {
    data.chunks_exact(UTMP_SIZE)
        .filter(|rec| i16::from_ne_bytes([rec[0], rec[1]]) == USER_PROCESS)
        .map(|rec| {
            let user = &rec[UT_USER_OFFSET..UT_USER_OFFSET + UT_USER_LEN];
            let end = user.iter().position(|&b| b == 0).unwrap_or(user.len());
            String::from_utf8_lossy(&user[..end]).into_owned()
        })
        .collect()
}

fn logical_cpus(host: &HostPaths) -> i64 {
    if let Ok(text) = host.read(&host.proc_path("cpuinfo")) {
        let n = text
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("processor"))
            .filter(|l| {
                l.split_once(':')
                    .is_some_and(|(_, v)| v.trim().parse::<i32>().is_ok())
            })
            .count();
        if n > 0 {
            return n as i64;
        }
    }
    host.read(&host.proc_path("stat"))
        .map(|text| {
            text.lines()
                .filter(|l| {
                    l.len() >= 4 && l.starts_with("cpu") && l.as_bytes()[3].is_ascii_digit()
                })
                .count() as i64
        })
        .unwrap_or(0)
}

fn physical_cpus(host: &HostPaths) -> i64 {
    for name in ["core_cpus_list", "thread_siblings_list"] {
        let pattern = host
            .sys_path("devices/system/cpu")
            .join(format!("cpu[0-9]*/topology/{name}"));
        let Some(pattern) = pattern.to_str() else {
            continue;
        };
        let Ok(paths) = glob::glob(pattern) else {
            continue;
        };
        let lists: HashSet<String> = paths
            .flatten()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| {
                let lines: Vec<&str> = t.lines().collect();
                (lines.len() == 1).then(|| lines[0].to_owned())
            })
            .collect();
        if !lists.is_empty() {
            return lists.len() as i64;
        }
    }
    let Ok(text) = host.read(&host.proc_path("cpuinfo")) else {
        return 0;
    };
    let mut mapping: HashMap<i64, i64> = HashMap::new();
    let mut id = None;
    let mut cores = None;
    for line in text.lines().chain(std::iter::once("")) {
        let line = line.trim().to_ascii_lowercase();
        if line.is_empty() {
            if let (Some(i), Some(c)) = (id.take(), cores.take()) {
                mapping.insert(i, c);
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "physical id" => id = v.trim().parse().ok(),
                "cpu cores" => cores = v.trim().parse().ok(),
                _ => {}
            }
        }
    }
    mapping.values().sum()
}

fn parse_f64(word: Option<&str>, path: &Path, what: &str) -> Result<f64, InputError> {
    let word = word.unwrap_or("");
    word.parse().map_err(|_| InputError::Parse {
        path: path.to_owned(),
        line: 1,
        reason: format!("{what} is not a number: `{word}`"),
    })
}

impl Input for System {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let path = self.host.proc_path("loadavg");
        let text = self.host.read(&path)?;
        let mut words = text.split_ascii_whitespace();
        let load1 = parse_f64(words.next(), &path, "the 1-minute load")?;
        let load5 = parse_f64(words.next(), &path, "the 5-minute load")?;
        let load15 = parse_f64(words.next(), &path, "the 15-minute load")?;

        let (n_cpus, n_physical_cpus) = match self.cpus {
            Some((at, logical, physical)) if at.elapsed() < CPU_COUNT_TTL => (logical, physical),
            _ => {
                let counted = (logical_cpus(&self.host), physical_cpus(&self.host));
                self.cpus = Some((Instant::now(), counted.0, counted.1));
                counted
            }
        };
        let mut m = Metric::new("system")
            .with_field("load1", load1)
            .with_field("load5", load5)
            .with_field("load15", load15)
            .with_field("n_cpus", n_cpus)
            .with_field("n_physical_cpus", n_physical_cpus);
        // /run/utmp first: under a host root, /var/run is often an
        // absolute symlink that would lead out of it.
        let utmp = ["/run/utmp", "/var/run/utmp"].map(|p| self.host.host_path(Path::new(p)));
        match std::fs::read(&utmp[0]).or_else(|_| std::fs::read(&utmp[1])) {
            Ok(data) => {
                let users = utmp_users(&data);
                let unique: HashSet<&String> = users.iter().collect();
                m = m
                    .with_field("n_users", users.len() as i64)
                    .with_field("n_unique_users", unique.len() as i64);
            }
            Err(e) => {
                tracing::debug!(path = %utmp[1].display(), error = %e, "no utmp; n_users left out")
            }
        }
        acc.add(m);

        let path = self.host.proc_path("uptime");
        let text = self.host.read(&path)?;
        let uptime = parse_f64(text.split_ascii_whitespace().next(), &path, "the uptime")?;
        let uptime = if uptime.is_finite() && uptime > 0.0 {
            uptime as u64
        } else {
            0
        };
        acc.add(
            Metric::new("system").with_field("uptime", i64::try_from(uptime).unwrap_or(i64::MAX)),
        );
        acc.add(Metric::new("system").with_field("uptime_format", format_uptime(uptime)));
        Ok(())
    }
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let _: SystemConfig = spec.options()?;
    Ok(Box::new(System {
        host: ctx.host.clone(),
        cpus: None,
    }))
}
