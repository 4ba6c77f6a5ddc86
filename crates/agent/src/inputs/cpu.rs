//! `[[inputs.cpu]]`: per-CPU and total CPU time from `/proc/stat`, as
//! Telegraf's `cpu` plugin reports it.
//!
//! Emits measurement `cpu` tagged `cpu=cpu0`, `cpu1`, … and `cpu=cpu-total`:
//! - with `collect_cpu_time`, one point per CPU of `time_user`,
//!   `time_system`, `time_idle`, `time_nice`, `time_iowait`, `time_irq`,
//!   `time_softirq`, `time_steal`, `time_guest`, `time_guest_nice` (floats,
//!   seconds; `time_active` too with `report_active`);
//! - from the second gather on, one point per CPU of `usage_user`,
//!   `usage_system`, `usage_idle`, `usage_nice`, `usage_iowait`,
//!   `usage_irq`, `usage_softirq`, `usage_steal`, `usage_guest`,
//!   `usage_guest_nice` (floats, percent of the time that passed between the
//!   two gathers; `usage_active` too with `report_active`).
//!
//! As in Telegraf (and gopsutil), guest time is counted inside user and nice
//! time by the kernel, so `usage_user` and `usage_nice` have the guest share
//! taken out and the total leaves guest time out. A CPU whose counters went
//! backwards since the last gather (a wrap, a hot-plugged CPU coming back
//! with fresh counters) gets no usage point that round rather than a
//! negative or absurd one; a CPU seen for the first time gets one from the
//! next gather on.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::BuildContext;

/// The kernel's `USER_HZ`: /proc/stat counts in 1/100 s on every Linux.
const USER_HZ: f64 = 100.0;

/// The plugin's options, with Telegraf's names and defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct CpuConfig {
    /// Report each CPU.
    percpu: bool,
    /// Report the sum over all CPUs as `cpu-total`.
    totalcpu: bool,
    /// Also report the raw time counters.
    collect_cpu_time: bool,
    /// Also report the sum of all non-idle states.
    report_active: bool,
    /// Tag each CPU with `core_id` and `physical_id` from /proc/cpuinfo.
    core_tags: bool,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig {
            percpu: true,
            totalcpu: true,
            collect_cpu_time: false,
            report_active: false,
            core_tags: false,
        }
    }
}

/// One CPU's counters from a `cpu…` line of /proc/stat, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    pub(crate) user: u64,
    pub(crate) nice: u64,
    pub(crate) system: u64,
    pub(crate) idle: u64,
    pub(crate) iowait: u64,
    pub(crate) irq: u64,
    pub(crate) softirq: u64,
    pub(crate) steal: u64,
    pub(crate) guest: u64,
    pub(crate) guest_nice: u64,
}

impl CpuTimes {
    /// All time except guest time, which user and nice already contain.
    fn total(&self) -> u64 {
        self.user
            .wrapping_add(self.system)
            .wrapping_add(self.nice)
            .wrapping_add(self.iowait)
            .wrapping_add(self.irq)
            .wrapping_add(self.softirq)
            .wrapping_add(self.steal)
            .wrapping_add(self.idle)
    }

    fn active(&self) -> u64 {
        self.total().wrapping_sub(self.idle)
    }
}

/// Parses the `cpu` and `cpuN` lines of /proc/stat: the name as Telegraf
/// tags it (`cpu-total` for the sum line) and the counters.
pub(crate) fn parse_stat_cpus(
    text: &str,
    path: &Path,
) -> Result<Vec<(String, CpuTimes)>, InputError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_ascii_whitespace();
        let Some(name) = words.next() else { continue };
        let Some(suffix) = name.strip_prefix("cpu") else {
            continue;
        };
        if !suffix.is_empty() && !suffix.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let mut values = [0u64; 10];
        let mut n = 0;
        for (slot, word) in values.iter_mut().zip(words) {
            *slot = word.parse().map_err(|_| InputError::Parse {
                path: path.to_owned(),
                line: i + 1,
                reason: format!("`{word}` is not a counter"),
            })?;
            n += 1;
        }
        if n < 4 {
            return Err(InputError::Parse {
                path: path.to_owned(),
                line: i + 1,
                reason: format!("`{name}` has {n} counters, expected at least 4"),
            });
        }
        let [user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice] = values;
        let label = if suffix.is_empty() {
            "cpu-total".to_owned()
        } else {
            name.to_owned()
        };
        out.push((
            label,
            CpuTimes {
                user,
                nice,
                system,
                idle,
                iowait,
                irq,
                softirq,
                steal,
                guest,
                guest_nice,
            },
        ));
    }
    Ok(out)
}

/// `core_id` and `physical_id` per `cpuN`, from /proc/cpuinfo.
fn read_core_tags(host: &HostPaths) -> HashMap<String, (String, String)> {
    let Ok(text) = host.read(&host.proc_path("cpuinfo")) else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    let mut processor: Option<String> = None;
    let mut core = String::new();
    let mut physical = String::new();
    let mut flush = |processor: &mut Option<String>, core: &mut String, physical: &mut String| {
        if let Some(p) = processor.take() {
            out.insert(
                format!("cpu{p}"),
                (std::mem::take(core), std::mem::take(physical)),
            );
        }
        core.clear();
        physical.clear();
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() {
                flush(&mut processor, &mut core, &mut physical);
            }
            continue;
        };
        match key.trim() {
            "processor" => processor = Some(value.trim().to_owned()),
            "core id" => core = value.trim().to_owned(),
            "physical id" => physical = value.trim().to_owned(),
            _ => {}
        }
    }
    flush(&mut processor, &mut core, &mut physical);
    out
}

/// The running input: the options and the counters of the last gather.
#[derive(Debug)]
struct Cpu {
    config: CpuConfig,
    host: HostPaths,
    last: HashMap<String, CpuTimes>,
    core_tags: HashMap<String, (String, String)>,
}

fn secs(ticks: u64) -> f64 {
    ticks as f64 / USER_HZ
}

/// Usage percentages between two snapshots of one CPU, or `None` when no
/// time passed or a counter went backwards.
fn usage(now: &CpuTimes, last: &CpuTimes, report_active: bool) -> Option<Vec<(&'static str, f64)>> {
    let d = |a: u64, b: u64| a.checked_sub(b);
    let user = d(now.user, last.user)?;
    let nice = d(now.nice, last.nice)?;
    let system = d(now.system, last.system)?;
    let idle = d(now.idle, last.idle)?;
    let iowait = d(now.iowait, last.iowait)?;
    let irq = d(now.irq, last.irq)?;
    let softirq = d(now.softirq, last.softirq)?;
    let steal = d(now.steal, last.steal)?;
    let guest = d(now.guest, last.guest)?;
    let guest_nice = d(now.guest_nice, last.guest_nice)?;
    let total = d(now.total(), last.total())?;
    if total == 0 {
        return None;
    }
    let pct = |v: u64| 100.0 * v as f64 / total as f64;
    let mut fields = vec![
        ("usage_user", pct(user.checked_sub(guest)?)),
        ("usage_system", pct(system)),
        ("usage_idle", pct(idle)),
        ("usage_nice", pct(nice.checked_sub(guest_nice)?)),
        ("usage_iowait", pct(iowait)),
        ("usage_irq", pct(irq)),
        ("usage_softirq", pct(softirq)),
        ("usage_steal", pct(steal)),
        ("usage_guest", pct(guest)),
        ("usage_guest_nice", pct(guest_nice)),
    ];
    if report_active {
        fields.push(("usage_active", pct(total - idle)));
    }
    Some(fields)
}

impl Cpu {
    fn tagged(&self, name: &str) -> Metric {
        let mut m = Metric::new("cpu");
        if let Some((core, _)) = self.core_tags.get(name) {
            if !core.is_empty() {
                m = m.with_tag("core_id", core.clone());
            }
        }
        m = m.with_tag("cpu", name.to_owned());
        if let Some((_, physical)) = self.core_tags.get(name) {
            if !physical.is_empty() {
                m = m.with_tag("physical_id", physical.clone());
            }
        }
        m
    }
}

impl Input for Cpu {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let path = self.host.proc_path("stat");
        let text = self.host.read(&path)?;
        let all = parse_stat_cpus(&text, &path)?;
        // Telegraf's order: each CPU, then the total.
        let mut times: Vec<(String, CpuTimes)> = Vec::new();
        if self.config.percpu {
            times.extend(all.iter().filter(|(n, _)| n != "cpu-total").cloned());
        }
        if self.config.totalcpu {
            times.extend(all.iter().filter(|(n, _)| n == "cpu-total").cloned());
        }
        let first = self.last.is_empty();
        for (name, now) in &times {
            if self.config.collect_cpu_time {
                let mut m = self
                    .tagged(name)
                    .with_field("time_user", secs(now.user))
                    .with_field("time_system", secs(now.system))
                    .with_field("time_idle", secs(now.idle))
                    .with_field("time_nice", secs(now.nice))
                    .with_field("time_iowait", secs(now.iowait))
                    .with_field("time_irq", secs(now.irq))
                    .with_field("time_softirq", secs(now.softirq))
                    .with_field("time_steal", secs(now.steal))
                    .with_field("time_guest", secs(now.guest))
                    .with_field("time_guest_nice", secs(now.guest_nice));
                if self.config.report_active {
                    m = m.with_field("time_active", secs(now.active()));
                }
                acc.add(m);
            }
            if first {
                continue;
            }
            let Some(last) = self.last.get(name) else {
                continue;
            };
            let Some(fields) = usage(now, last, self.config.report_active) else {
                tracing::debug!(cpu = %name, "cpu counters went backwards or stood still; no usage this round");
                continue;
            };
            let mut m = self.tagged(name);
            for (k, v) in fields {
                m = m.with_field(k, v);
            }
            acc.add(m);
        }
        self.last = times.into_iter().collect();
        Ok(())
    }
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: CpuConfig = spec.options()?;
    let core_tags = if config.core_tags {
        read_core_tags(&ctx.host)
    } else {
        HashMap::new()
    };
    Ok(Box::new(Cpu {
        config,
        host: ctx.host.clone(),
        last: HashMap::new(),
        core_tags,
    }))
}
