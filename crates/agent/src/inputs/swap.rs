//! `[[inputs.swap]]`: swap space and swap traffic, as Telegraf's `swap`
//! plugin reports them.
//!
//! Two points of measurement `swap` without tags, as Telegraf emits them:
//! - `total`, `used`, `free` (integers, bytes) and `used_percent` (float),
//!   from `SwapTotal` and `SwapFree` of `/proc/meminfo` (the numbers the
//!   `sysinfo` call gopsutil uses returns);
//! - `in` and `out` (integers, bytes swapped in and out since boot), from
//!   `pswpin` and `pswpout` of `/proc/vmstat` times 4096, the page size
//!   gopsutil assumes.

use std::path::Path;

use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::mem::parse_meminfo;
use crate::inputs::BuildContext;

/// The page size gopsutil multiplies `pswpin`/`pswpout` by.
const PAGE: u64 = 4096;

/// `[[inputs.swap]]` has no options of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapConfig {}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The value of `key` in /proc/vmstat.
fn vmstat_value(text: &str, path: &Path, key: &str) -> Result<Option<u64>, InputError> {
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some(key) {
            continue;
        }
        let word = words.next().unwrap_or("");
        return word.parse().map(Some).map_err(|_| InputError::Parse {
            path: path.to_owned(),
            line: i + 1,
            reason: format!("`{key}` has a value that is not a counter: `{word}`"),
        });
    }
    Ok(None)
}

#[derive(Debug)]
struct Swap {
    host: HostPaths,
}

impl Input for Swap {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let path = self.host.proc_path("meminfo");
        let info = parse_meminfo(&self.host.read(&path)?, &path)?;
        let total = info
            .get("SwapTotal")
            .copied()
            .unwrap_or(0)
            .saturating_mul(1024);
        let free = info
            .get("SwapFree")
            .copied()
            .unwrap_or(0)
            .saturating_mul(1024);
        let used = total.saturating_sub(free);
        let used_percent = if total == 0 {
            0.0
        } else {
            100.0 * used as f64 / total as f64
        };
        acc.add(
            Metric::new("swap")
                .with_field("total", int(total))
                .with_field("used", int(used))
                .with_field("free", int(free))
                .with_field("used_percent", used_percent),
        );

        let path = self.host.proc_path("vmstat");
        let text = self.host.read(&path)?;
        let sin = vmstat_value(&text, &path, "pswpin")?.unwrap_or(0);
        let sout = vmstat_value(&text, &path, "pswpout")?.unwrap_or(0);
        acc.add(
            Metric::new("swap")
                .with_field("in", int(sin.saturating_mul(PAGE)))
                .with_field("out", int(sout.saturating_mul(PAGE))),
        );
        Ok(())
    }
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let _: SwapConfig = spec.options()?;
    Ok(Box::new(Swap {
        host: ctx.host.clone(),
    }))
}
