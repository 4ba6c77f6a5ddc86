//! `[[inputs.procstat]]`: resource use of selected processes, as
//! Telegraf's `procstat` input emits it on Linux.
//!
//! Processes are selected by `cgroup`, `pid_file`, `exe` (a regular
//! expression on the process name, `pgrep EXE`), `pattern` (a regular
//! expression on the command line, `pgrep -f PATTERN`) or `user` (`pgrep -u
//! USER`), first set wins, in Telegraf's order. The search reads /proc
//! directly; `pid_finder` only sets the `pid_finder` tag.
//!
//! Per process, one `procstat` metric tagged `process_name` and the
//! selection (`pidfile`, `exe`, `pattern`, `user`, or `cgroup` and
//! `cgroup_full`), with the fields Telegraf's default `properties = ["cpu",
//! "memory", "mmap"]` give: `pid`, `ppid`, `num_threads`, `num_fds` (when
//! readable), `voluntary_context_switches`, `involuntary_context_switches`,
//! `minor_faults`, `major_faults`, `child_minor_faults`,
//! `child_major_faults`, `read_count`, `write_count`, `read_bytes`,
//! `write_bytes` (all I/O, `rchar`/`wchar`), `disk_read_bytes`,
//! `disk_write_bytes` (when /proc/PID/io is readable), `created_at` (ns),
//! `cmdline`, `status`, `user` (strings) — integers unless named; `cpu`:
//! `cpu_time_user`, `cpu_time_system`, `cpu_time_iowait` (float seconds)
//! and, from the second gather on, `cpu_usage` (float percent of one CPU);
//! `memory`: `memory_rss`, `memory_vms` (bytes), `memory_usage` (float
//! percent of MemTotal); `mmap`: `memory_size`, `memory_pss`,
//! `memory_shared_clean`, `memory_shared_dirty`, `memory_private_clean`,
//! `memory_private_dirty`, `memory_referenced`, `memory_anonymous`,
//! `memory_swap` (kB, summed over /proc/PID/smaps, when readable).
//! `tag_with` turns `cmdline`, `pid`, `ppid`, `status` or `user` into tags.
//!
//! Then one `procstat_lookup` metric tagged `pid_finder`, `result`
//! (`success` or `lookup_error`) and the selection, with the integer
//! fields `pid_count`, `running` and `result_code` (0, or 1 on a lookup
//! error).
//!
//! Clock ticks are taken as 100 per second (`USER_HZ`, which Linux fixes
//! at 100 on every architecture the agent builds for).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lineproto::{FieldValue, Line};
use regex::Regex;
use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError};
use crate::inputs::net::counter;
use crate::inputs::BuildContext;

/// Clock ticks per second in /proc/PID/stat (`sysconf(_SC_CLK_TCK)`).
const CLK_TCK: f64 = 100.0;

/// The table's own keys (Telegraf's names).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProcstatConfig {
    /// `pgrep` or `native`; only the `pid_finder` tag's value.
    pid_finder: String,
    /// A file holding the process's PID.
    pid_file: String,
    /// A regular expression on the process name.
    exe: String,
    /// A regular expression on the full command line.
    pattern: String,
    /// A user name or id (effective user).
    user: String,
    /// A cgroup directory (glob), relative to /sys/fs/cgroup unless absolute.
    cgroup: String,
    /// Prepended with `_` to every field name but `pid`.
    prefix: String,
    /// Overrides the `process_name` tag.
    process_name: String,
    /// Deprecated: `tag_with = ["cmdline"]`.
    cmdline_tag: bool,
    /// Deprecated: `tag_with = ["pid"]`.
    pid_tag: bool,
    /// `solaris` divides `cpu_usage` by the number of CPUs.
    mode: String,
    /// Which groups of fields to collect: `cpu`, `memory`, `mmap`.
    properties: Vec<String>,
    /// Which of `cmdline`, `pid`, `ppid`, `status`, `user` are tags.
    tag_with: Vec<String>,
}

impl Default for ProcstatConfig {
    fn default() -> Self {
        ProcstatConfig {
            pid_finder: String::new(),
            pid_file: String::new(),
            exe: String::new(),
            pattern: String::new(),
            user: String::new(),
            cgroup: String::new(),
            prefix: String::new(),
            process_name: String::new(),
            cmdline_tag: false,
            pid_tag: false,
            mode: String::new(),
            properties: vec!["cpu".into(), "memory".into(), "mmap".into()],
            tag_with: Vec::new(),
        }
    }
}

/// Tag keys and values.
type Tags = Vec<(String, String)>;

/// How processes are selected.
#[derive(Debug)]
enum Selector {
    Cgroup(String),
    PidFile(String),
    Exe(String, Regex),
    Pattern(String, Regex),
    User(String),
}

#[derive(Debug, Default)]
struct Features {
    cpu: bool,
    memory: bool,
    mmap: bool,
}

#[derive(Debug, Default)]
struct Tagging {
    cmdline: bool,
    pid: bool,
    ppid: bool,
    status: bool,
    user: bool,
}

/// What is remembered of a process between gathers.
#[derive(Debug)]
struct Tracked {
    /// Start time in ticks since boot: tells a reused PID from the process.
    start_ticks: u64,
    /// Total CPU seconds and when they were read.
    last_cpu: Option<(f64, Instant)>,
}

/// The `procstat` input.
#[derive(Debug)]
struct Procstat {
    host: HostPaths,
    selector: Selector,
    pid_finder: String,
    prefix: String,
    process_name: Option<String>,
    solaris: bool,
    features: Features,
    tagging: Tagging,
    tracked: HashMap<i32, Tracked>,
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: ProcstatConfig = spec.options()?;
    let regex = |what: &str, re: &str| {
        Regex::new(re).map_err(|e| spec.error(format!("{what}: not a regular expression: {e}")))
    };
    let selector = if !config.cgroup.is_empty() {
        Selector::Cgroup(config.cgroup.clone())
    } else if !config.pid_file.is_empty() {
        Selector::PidFile(config.pid_file.clone())
    } else if !config.exe.is_empty() {
        Selector::Exe(config.exe.clone(), regex("exe", &config.exe)?)
    } else if !config.pattern.is_empty() {
        Selector::Pattern(config.pattern.clone(), regex("pattern", &config.pattern)?)
    } else if !config.user.is_empty() {
        Selector::User(config.user.clone())
    } else {
        return Err(
            spec.error("one of cgroup, pid_file, exe, pattern or user must select the processes")
        );
    };
    let pid_finder = match config.pid_finder.as_str() {
        "" | "pgrep" => "pgrep",
        "native" => "native",
        other => {
            return Err(spec.error(format!(
                "pid_finder: {other:?} is not one of \"pgrep\", \"native\""
            )))
        }
    };
    let mut features = Features::default();
    for p in &config.properties {
        match p.as_str() {
            "cpu" => features.cpu = true,
            "memory" => features.memory = true,
            "mmap" => features.mmap = true,
            "limits" | "sockets" => {
                return Err(spec.error(format!(
                    "properties: {p:?} is not supported by weir's procstat (cpu, memory, mmap are)"
                )))
            }
            other => return Err(spec.error(format!("properties: invalid setting {other:?}"))),
        }
    }
    let mut tagging = Tagging {
        cmdline: config.cmdline_tag,
        pid: config.pid_tag,
        ..Tagging::default()
    };
    for t in &config.tag_with {
        match t.as_str() {
            "cmdline" => tagging.cmdline = true,
            "pid" => tagging.pid = true,
            "ppid" => tagging.ppid = true,
            "status" => tagging.status = true,
            "user" => tagging.user = true,
            other => {
                return Err(spec.error(format!(
                    "tag_with: {other:?} is not one of cmdline, pid, ppid, status, user"
                )))
            }
        }
    }
    Ok(Box::new(Procstat {
        host: ctx.host.clone(),
        selector,
        pid_finder: pid_finder.to_owned(),
        prefix: if config.prefix.is_empty() {
            String::new()
        } else {
            format!("{}_", config.prefix)
        },
        process_name: (!config.process_name.is_empty()).then_some(config.process_name),
        solaris: config.mode.eq_ignore_ascii_case("solaris"),
        features,
        tagging,
        tracked: HashMap::new(),
    }))
}

/// The parts of /proc/PID/stat the input uses.
#[derive(Debug)]
struct Stat {
    comm: String,
    state: char,
    ppid: i64,
    minflt: u64,
    cminflt: u64,
    majflt: u64,
    cmajflt: u64,
    utime: u64,
    stime: u64,
    num_threads: i64,
    start_ticks: u64,
    blkio_ticks: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state) of proc(5).
    let field = |n: usize| rest.get(n - 3).copied();
    let num = |n: usize| field(n).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        minflt: num(10)?,
        cminflt: num(11)?,
        majflt: num(12)?,
        cmajflt: num(13)?,
        utime: num(14)?,
        stime: num(15)?,
        num_threads: field(20)?.parse().ok()?,
        start_ticks: num(22)?,
        blkio_ticks: num(42).unwrap_or(0),
    })
}

/// `Key: value` lines (/proc/PID/status, /proc/PID/io, /proc/meminfo).
fn keyed(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn keyed_u64(map: &HashMap<&str, &str>, key: &str) -> Option<u64> {
    map.get(key)?.split_whitespace().next()?.parse().ok()
}

/// gopsutil's names for the state letters.
fn status_name(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleep",
        'D' | 'U' => "blocked",
        'T' | 't' => "stop",
        'I' => "idle",
        'Z' => "zombie",
        'W' => "wait",
        'L' => "lock",
        _ => "",
    }
}

/// The command line with its NULs as spaces, as gopsutil joins it.
fn cmdline(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let args: Vec<&str> = text.trim_end_matches('\0').split('\0').collect();
    args.join(" ")
}

/// Numeric /proc entries.
fn all_pids(proc: &Path) -> Result<Vec<i32>, InputError> {
    let dir = std::fs::read_dir(proc).map_err(|e| InputError::io(proc, e))?;
    Ok(dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .collect())
}

/// Users by id from the host's /etc/passwd.
fn users(host: &HostPaths) -> HashMap<u32, String> {
    let text =
        std::fs::read_to_string(host.host_path(Path::new("/etc/passwd"))).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split(':');
            let name = parts.next()?;
            let uid = parts.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

impl Procstat {
    fn pid_dir(&self, pid: i32) -> PathBuf {
        self.host.proc.join(pid.to_string())
    }

    /// The PIDs the selector finds and the tags naming the selection.
    fn find(&self) -> Result<(Vec<i32>, Tags), InputError> {
        match &self.selector {
            Selector::PidFile(file) => {
                let tags = vec![("pidfile".to_owned(), file.clone())];
                let path = self.host.host_path(Path::new(file));
                let text = self.host.read(&path)?;
                let pid = text.trim().parse::<i32>().map_err(|_| InputError::Parse {
                    path: path.clone(),
                    line: 1,
                    reason: format!("{:?} is not a PID", text.trim()),
                })?;
                Ok((vec![pid], tags))
            }
            Selector::Cgroup(cgroup) => {
                let base = if cgroup.starts_with('/') {
                    self.host.host_path(Path::new(cgroup))
                } else {
                    self.host.sys_path("fs/cgroup").join(cgroup)
                };
                let mut tags = vec![("cgroup".to_owned(), cgroup.clone())];
                let mut pids = Vec::new();
                let dirs = glob::glob(&base.to_string_lossy())
                    .map_err(|e| InputError::Other(format!("cgroup {cgroup:?}: {e}")))?;
                for dir in dirs.flatten() {
                    let procs = dir.join("cgroup.procs");
                    let text = self.host.read(&procs)?;
                    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
                        pids.push(l.trim().parse::<i32>().map_err(|_| InputError::Parse {
                            path: procs.clone(),
                            line: i + 1,
                            reason: format!("{l:?} is not a PID"),
                        })?);
                    }
                    let full = match dir.strip_prefix(&self.host.root) {
                        Ok(rel) => Path::new("/").join(rel),
                        Err(_) => dir.clone(),
                    };
                    tags.retain(|(k, _)| k != "cgroup_full");
                    tags.push((
                        "cgroup_full".to_owned(),
                        full.to_string_lossy().into_owned(),
                    ));
                }
                Ok((pids, tags))
            }
            Selector::Exe(exe, re) => {
                let tags = vec![("exe".to_owned(), exe.clone())];
                let mut pids = Vec::new();
                for pid in all_pids(&self.host.proc)? {
                    let Ok(stat) = std::fs::read_to_string(self.pid_dir(pid).join("stat")) else {
                        continue;
                    };
                    if parse_stat(&stat).is_some_and(|s| re.is_match(&s.comm)) {
                        pids.push(pid);
                    }
                }
                Ok((pids, tags))
            }
            Selector::Pattern(pattern, re) => {
                let tags = vec![("pattern".to_owned(), pattern.clone())];
                let mut pids = Vec::new();
                for pid in all_pids(&self.host.proc)? {
                    let dir = self.pid_dir(pid);
                    let Ok(raw) = std::fs::read(dir.join("cmdline")) else {
                        continue;
                    };
                    let mut line = cmdline(&raw);
                    if line.is_empty() {
                        // Kernel threads: pgrep -f falls back to the name.
                        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
                        line = parse_stat(&stat).map(|s| s.comm).unwrap_or_default();
                    }
                    if re.is_match(&line) {
                        pids.push(pid);
                    }
                }
                Ok((pids, tags))
            }
            Selector::User(user) => {
                let tags = vec![("user".to_owned(), user.clone())];
                let uid = match user.parse::<u32>() {
                    Ok(uid) => uid,
                    Err(_) => users(&self.host)
                        .into_iter()
                        .find(|(_, name)| name == user)
                        .map(|(uid, _)| uid)
                        .ok_or_else(|| InputError::Other(format!("unknown user {user:?}")))?,
                };
                let mut pids = Vec::new();
                for pid in all_pids(&self.host.proc)? {
                    let Ok(status) = std::fs::read_to_string(self.pid_dir(pid).join("status"))
                    else {
                        continue;
                    };
                    let status = keyed(&status);
                    let euid = status
                        .get("Uid")
                        .and_then(|v| v.split_whitespace().nth(1))
                        .and_then(|v| v.parse::<u32>().ok());
                    if euid == Some(uid) {
                        pids.push(pid);
                    }
                }
                Ok((pids, tags))
            }
        }
    }

    fn lookup(
        &self,
        result: &str,
        pid_count: i64,
        running: i64,
        tags: &[(String, String)],
    ) -> Line<'static> {
        let mut all: Vec<(String, String)> = tags.to_vec();
        all.push(("pid_finder".into(), self.pid_finder.clone()));
        all.push(("result".into(), result.into()));
        all.sort();
        let mut line = Line::new("procstat_lookup");
        for (k, v) in all {
            line = line.with_tag(k, v);
        }
        line.with_field("pid_count", FieldValue::Integer(pid_count))
            .with_field("running", FieldValue::Integer(running))
            .with_field(
                "result_code",
                FieldValue::Integer(i64::from(result != "success")),
            )
    }

    /// One process's metric, or `None` when it is gone or has no name.
    #[allow(clippy::too_many_arguments)]
    fn process(
        &mut self,
        pid: i32,
        selection: &[(String, String)],
        users: &HashMap<u32, String>,
        mem_total: Option<u64>,
        ncpu: f64,
        now: Instant,
    ) -> Option<Line<'static>> {
        let dir = self.pid_dir(pid);
        let stat = parse_stat(&std::fs::read_to_string(dir.join("stat")).ok()?)?;
        let status_text = std::fs::read_to_string(dir.join("status")).ok()?;
        let status = keyed(&status_text);
        let name = status
            .get("Name")
            .map_or(stat.comm.clone(), |n| (*n).to_owned());
        if name.is_empty() {
            return None;
        }
        let raw_cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = cmdline(&raw_cmdline);
        let p = self.prefix.clone();
        let mut fields: Vec<(String, FieldValue<'static>)> = Vec::new();
        let mut tags: Vec<(String, String)> = selection.to_vec();
        let mut field = |k: &str, v: FieldValue<'static>| fields.push((format!("{p}{k}"), v));

        let threads = keyed_u64(&status, "Threads").map_or(stat.num_threads, |t| t as i64);
        field("num_threads", FieldValue::Integer(threads));
        if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
            field("num_fds", FieldValue::Integer(fds.count() as i64));
        }
        if let (Some(v), Some(nv)) = (
            keyed_u64(&status, "voluntary_ctxt_switches"),
            keyed_u64(&status, "nonvoluntary_ctxt_switches"),
        ) {
            field("voluntary_context_switches", counter(v));
            field("involuntary_context_switches", counter(nv));
        }
        field("minor_faults", counter(stat.minflt));
        field("major_faults", counter(stat.majflt));
        field("child_minor_faults", counter(stat.cminflt));
        field("child_major_faults", counter(stat.cmajflt));
        if let Ok(io) = std::fs::read_to_string(dir.join("io")) {
            let io = keyed(&io);
            let get = |k| keyed_u64(&io, k).unwrap_or(0);
            field("read_count", counter(get("syscr")));
            field("write_count", counter(get("syscw")));
            field("read_bytes", counter(get("rchar")));
            field("write_bytes", counter(get("wchar")));
            field("disk_read_bytes", counter(get("read_bytes")));
            field("disk_write_bytes", counter(get("write_bytes")));
        }
        if let Some(btime) = boot_time(&self.host) {
            let ms = btime * 1000 + stat.start_ticks * 1000 / CLK_TCK as u64;
            field("created_at", counter(ms.saturating_mul(1_000_000)));
        }

        let tracked = self.tracked.entry(pid).or_insert(Tracked {
            start_ticks: stat.start_ticks,
            last_cpu: None,
        });
        if tracked.start_ticks != stat.start_ticks {
            // The PID now names another process.
            *tracked = Tracked {
                start_ticks: stat.start_ticks,
                last_cpu: None,
            };
        }
        if self.features.cpu {
            let user = stat.utime as f64 / CLK_TCK;
            let system = stat.stime as f64 / CLK_TCK;
            let iowait = stat.blkio_ticks as f64 / CLK_TCK;
            field("cpu_time_user", FieldValue::Float(user));
            field("cpu_time_system", FieldValue::Float(system));
            field("cpu_time_iowait", FieldValue::Float(iowait));
            let total = user + system + iowait;
            if let Some((last, at)) = tracked.last_cpu {
                let wall = now.duration_since(at).as_secs_f64();
                if wall > 0.0 {
                    let mut usage = (total - last) / wall * 100.0;
                    if self.solaris {
                        usage /= ncpu;
                    }
                    field("cpu_usage", FieldValue::Float(usage));
                }
            }
            tracked.last_cpu = Some((total, now));
        }
        if self.features.memory {
            let rss = keyed_u64(&status, "VmRSS").unwrap_or(0) * 1024;
            let vms = keyed_u64(&status, "VmSize").unwrap_or(0) * 1024;
            field("memory_rss", counter(rss));
            field("memory_vms", counter(vms));
            if let Some(total) = mem_total.filter(|t| *t > 0) {
                // gopsutil computes it as a float32.
                let usage = (100.0 * rss as f64 / total as f64) as f32;
                field("memory_usage", FieldValue::Float(f64::from(usage)));
            }
        }
        if self.features.mmap {
            if let Ok(smaps) = std::fs::read_to_string(dir.join("smaps")) {
                for (k, v) in smaps_sums(&smaps) {
                    field(k, counter(v));
                }
            }
        }

        // A value goes in as a tag (`tag_with`) or a field, prefixed unless
        // it is `pid`, which Telegraf never prefixes.
        let mut field_or_tag = |tag: bool, k: &str, v: FieldValue<'static>, text: String| {
            if tag {
                tags.push((k.to_owned(), text));
            } else if k == "pid" {
                fields.push((k.to_owned(), v));
            } else {
                fields.push((format!("{p}{k}"), v));
            }
        };
        field_or_tag(
            self.tagging.cmdline,
            "cmdline",
            FieldValue::String(cmdline.clone().into()),
            cmdline,
        );
        field_or_tag(
            self.tagging.pid,
            "pid",
            FieldValue::Integer(i64::from(pid)),
            pid.to_string(),
        );
        field_or_tag(
            self.tagging.ppid,
            "ppid",
            FieldValue::Integer(stat.ppid),
            stat.ppid.to_string(),
        );
        let st = status_name(stat.state);
        field_or_tag(
            self.tagging.status,
            "status",
            FieldValue::String(st.into()),
            st.to_owned(),
        );
        let ruid = status
            .get("Uid")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok());
        if let Some(uid) = ruid {
            let user = users.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
            field_or_tag(
                self.tagging.user,
                "user",
                FieldValue::String(user.clone().into()),
                user,
            );
        }
        let process_name = self
            .process_name
            .clone()
            .unwrap_or_else(|| long_name(&name, &raw_cmdline));
        tags.push(("process_name".into(), process_name));
        tags.sort();
        let mut line = Line::new("procstat");
        for (k, v) in tags {
            line = line.with_tag(k, v);
        }
        for (k, v) in fields {
            line = line.with_field(k, v);
        }
        Some(line)
    }
}

/// gopsutil's `Name`: a name the kernel cut at 15 bytes is completed from
/// the command line's program name when that starts with it.
fn long_name(name: &str, raw_cmdline: &[u8]) -> String {
    if name.len() < 15 {
        return name.to_owned();
    }
    let first = raw_cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let base = first.rsplit('/').next().unwrap_or_default();
    if base.starts_with(name) {
        base.to_owned()
    } else {
        name.to_owned()
    }
}

/// The system's boot time in seconds since the epoch (`btime`).
fn boot_time(host: &HostPaths) -> Option<u64> {
    let text = std::fs::read_to_string(host.proc_path("stat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The number of CPUs (`cpuN` lines of /proc/stat), at least 1.
fn cpu_count(host: &HostPaths) -> f64 {
    let text = std::fs::read_to_string(host.proc_path("stat")).unwrap_or_default();
    let n = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    n.max(1) as f64
}

/// Sums of /proc/PID/smaps in kB, under Telegraf's field names.
fn smaps_sums(text: &str) -> [(&'static str, u64); 9] {
    let mut sums = [
        ("memory_size", 0u64),
        ("memory_pss", 0),
        ("memory_shared_clean", 0),
        ("memory_shared_dirty", 0),
        ("memory_private_clean", 0),
        ("memory_private_dirty", 0),
        ("memory_referenced", 0),
        ("memory_anonymous", 0),
        ("memory_swap", 0),
    ];
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "Size" => 0,
            "Pss" => 1,
            "Shared_Clean" => 2,
            "Shared_Dirty" => 3,
            "Private_Clean" => 4,
            "Private_Dirty" => 5,
            "Referenced" => 6,
            "Anonymous" => 7,
            "Swap" => 8,
            _ => continue,
        };
        if let Some(kb) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        {
            sums[slot].1 = sums[slot].1.saturating_add(kb);
        }
    }
    sums
}

impl Input for Procstat {
    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let now = Instant::now();
        let (pids, selection) = match self.find() {
            Ok(found) => found,
            Err(e) => {
                let tags = match &self.selector {
                    Selector::PidFile(f) => vec![("pidfile".to_owned(), f.clone())],
                    Selector::Exe(x, _) => vec![("exe".to_owned(), x.clone())],
                    Selector::Pattern(x, _) => vec![("pattern".to_owned(), x.clone())],
                    Selector::User(x) => vec![("user".to_owned(), x.clone())],
                    Selector::Cgroup(x) => vec![("cgroup".to_owned(), x.clone())],
                };
                acc.add(self.lookup("lookup_error", 0, 0, &tags));
                return Err(e);
            }
        };
        let users = users(&self.host);
        let mem_total = std::fs::read_to_string(self.host.proc_path("meminfo"))
            .ok()
            .and_then(|m| keyed_u64(&keyed(&m), "MemTotal"))
            .map(|kb| kb * 1024);
        let ncpu = if self.solaris {
            cpu_count(&self.host)
        } else {
            1.0
        };
        let mut running = Vec::new();
        for &pid in &pids {
            if running.contains(&pid) {
                continue;
            }
            if let Some(line) = self.process(pid, &selection, &users, mem_total, ncpu, now) {
                acc.add(line);
                running.push(pid);
            }
        }
        self.tracked.retain(|pid, _| running.contains(pid));
        acc.add(self.lookup(
            "success",
            pids.len() as i64,
            running.len() as i64,
            &selection,
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_comm() {
        let text = "42 (a (b) c) S 1 42 42 0 -1 4194304 96 5 7 9 11 13 0 0 20 0 3 0 2671208 3133440 382 18446744073709551615 1 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 6 0 0";
        let s = parse_stat(text).expect("parses");
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!((s.minflt, s.cminflt, s.majflt, s.cmajflt), (96, 5, 7, 9));
        assert_eq!((s.utime, s.stime), (11, 13));
        assert_eq!(s.num_threads, 3);
        assert_eq!(s.start_ticks, 2671208);
        assert_eq!(s.blkio_ticks, 6);
    }

    #[test]
    fn names_and_cmdlines() {
        assert_eq!(cmdline(b"/bin/sleep\x0010\x00"), "/bin/sleep 10");
        assert_eq!(
            long_name(
                "averyveryverylo",
                b"/usr/bin/averyveryverylongname\x00-x\x00"
            ),
            "averyveryverylongname"
        );
        assert_eq!(long_name("sh", b""), "sh");
    }
}
