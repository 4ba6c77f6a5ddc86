//! `[[inputs.kernel]]`: kernel counters, as Telegraf's `kernel` plugin
//! reports them.
//!
//! One point of measurement `kernel` without tags, all fields integers:
//! `boot_time` (`btime`, Unix seconds), `context_switches` (`ctxt`),
//! `interrupts` (`intr`, the total), `processes_forked` (`processes`) from
//! `/proc/stat`, `disk_pages_in` and `disk_pages_out` where /proc/stat still
//! has a `page` line (kernels before 2.6), and `entropy_avail` from
//! `/proc/sys/kernel/random/entropy_avail`.
//!
//! `collect = ["ksm"]` adds `ksm_*` fields from `/sys/kernel/mm/ksm`
//! (`ksm_general_profit` only where the kernel has it); `collect = ["psi"]`
//! adds points of measurement `pressure` tagged `resource` (cpu, memory,
//! io) and `type` (some, full; cpu's `full` is left out as Telegraf does),
//! one with `total` (integer, microseconds) and one with `avg10`, `avg60`
//! and `avg300` (floats, percent), from `/proc/pressure`.

use std::path::Path;

use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::BuildContext;

/// The plugin's options, with Telegraf's names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct KernelConfig {
    /// Extra groups: `ksm`, `psi`.
    collect: Vec<String>,
}

/// The KSM files every kernel with KSM has, in Telegraf's order.
const KSM_STATS: &[&str] = &[
    "full_scans",
    "max_page_sharing",
    "merge_across_nodes",
    "pages_shared",
    "pages_sharing",
    "pages_to_scan",
    "pages_unshared",
    "pages_volatile",
    "run",
    "sleep_millisecs",
    "stable_node_chains",
    "stable_node_chains_prune_millisecs",
    "stable_node_dups",
    "use_zero_pages",
];

/// KSM files only recent kernels have; left out where missing.
const KSM_EXTRA: &[&str] = &["general_profit"];

#[derive(Debug)]
struct Kernel {
    host: HostPaths,
    ksm: bool,
    psi: bool,
}

fn parse_i64(word: &str, path: &Path, line: usize, what: &str) -> Result<i64, InputError> {
    word.parse().map_err(|_| InputError::Parse {
        path: path.to_owned(),
        line,
        reason: format!("`{what}` has a value that is not an integer: `{word}`"),
    })
}

/// Reads a file holding one integer.
fn read_int(host: &HostPaths, path: &Path) -> Result<i64, InputError> {
    let text = host.read(path)?;
    parse_i64(text.trim(), path, 1, "value")
}

impl Kernel {
    fn gather_psi(&self, acc: &mut Accumulator) -> Result<(), InputError> {
        for resource in ["cpu", "memory", "io"] {
            let path = self.host.proc_path(&format!("pressure/{resource}"));
            let text = self.host.read(&path)?;
            for (i, line) in text.lines().enumerate() {
                let mut words = line.split_ascii_whitespace();
                let Some(kind) = words.next() else { continue };
                if kind != "some" && kind != "full" {
                    continue;
                }
                if resource == "cpu" && kind == "full" {
                    continue;
                }
                let mut avgs = Metric::new("pressure")
                    .with_tag("resource", resource)
                    .with_tag("type", kind.to_owned());
                let mut total = avgs.clone();
                for word in words {
                    let Some((key, value)) = word.split_once('=') else {
                        continue;
                    };
                    let bad = || InputError::Parse {
                        path: path.clone(),
                        line: i + 1,
                        reason: format!("`{key}` has a value that is not a number: `{value}`"),
                    };
                    match key {
                        "avg10" | "avg60" | "avg300" => {
                            let v: f64 = value.parse().map_err(|_| bad())?;
                            avgs = avgs.with_field(key.to_owned(), v);
                        }
                        "total" => {
                            let v: u64 = value.parse().map_err(|_| bad())?;
                            total = total.with_field("total", i64::try_from(v).unwrap_or(i64::MAX));
                        }
                        _ => {}
                    }
                }
                acc.add(total);
                acc.add(avgs);
            }
        }
        Ok(())
    }
}

impl Input for Kernel {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let path = self.host.proc_path("stat");
        let text = self.host.read(&path)?;
        let entropy_path = self.host.proc_path("sys/kernel/random/entropy_avail");
        let entropy = read_int(&self.host, &entropy_path)?;

        let mut m = Metric::new("kernel").with_field("entropy_avail", entropy);
        for (i, line) in text.lines().enumerate() {
            let mut words = line.split_ascii_whitespace();
            let Some(key) = words.next() else { continue };
            let field = match key {
                "intr" => "interrupts",
                "ctxt" => "context_switches",
                "processes" => "processes_forked",
                "btime" => "boot_time",
                "page" => "disk_pages_in",
                _ => continue,
            };
            let first = words.next().unwrap_or("");
            m = m.with_field(field, parse_i64(first, &path, i + 1, key)?);
            if key == "page" {
                let second = words.next().unwrap_or("");
                m = m.with_field("disk_pages_out", parse_i64(second, &path, i + 1, key)?);
            }
        }

        if self.ksm {
            let dir = self.host.sys_path("kernel/mm/ksm");
            for name in KSM_STATS {
                let v = read_int(&self.host, &dir.join(name))?;
                m = m.with_field(format!("ksm_{name}"), v);
            }
            for name in KSM_EXTRA {
                if let Ok(v) = read_int(&self.host, &dir.join(name)) {
                    m = m.with_field(format!("ksm_{name}"), v);
                }
            }
        }
        acc.add(m);

        if self.psi {
            self.gather_psi(acc)?;
        }
        Ok(())
    }
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: KernelConfig = spec.options()?;
    let mut ksm = false;
    let mut psi = false;
    for c in &config.collect {
        match c.as_str() {
            "ksm" => ksm = true,
            "psi" => psi = true,
            other => {
                return Err(spec.error(format!(
                    "collect: unknown group `{other}`; known groups: ksm, psi"
                )))
            }
        }
    }
    Ok(Box::new(Kernel {
        host: ctx.host.clone(),
        ksm,
        psi,
    }))
}
