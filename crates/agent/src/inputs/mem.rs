//! `[[inputs.mem]]`: memory use from `/proc/meminfo`, as Telegraf's `mem`
//! plugin reports it on Linux.
//!
//! One point of measurement `mem` without tags. Every field is an integer
//! of bytes (`i`, as Telegraf writes its unsigned values by default) except
//! `huge_pages_total` and `huge_pages_free` (pages) and the floats
//! `used_percent` and `available_percent`.
//!
//! As gopsutil computes them: `cached` is `Cached` plus `SReclaimable`;
//! `used` is `total - free - buffered - cached` (never below zero here);
//! `available` is `MemAvailable`, or `cached + free` on kernels before 3.14
//! that lack it.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::BuildContext;

/// `[[inputs.mem]]` has no options of its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemConfig {}

/// Parses /proc/meminfo into its keys and values as written (kB for most).
pub(crate) fn parse_meminfo(text: &str, path: &Path) -> Result<HashMap<String, u64>, InputError> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let value = rest.trim();
        let value = value.strip_suffix(" kB").unwrap_or(value).trim();
        let v: u64 = value.parse().map_err(|_| InputError::Parse {
            path: path.to_owned(),
            line: i + 1,
            reason: format!(
                "`{}` has a value that is not a number: `{value}`",
                key.trim()
            ),
        })?;
        out.insert(key.trim().to_owned(), v);
    }
    Ok(out)
}

/// A u64 as line protocol's signed integer, saturating.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[derive(Debug)]
struct Mem {
    host: HostPaths,
}

impl Input for Mem {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let path = self.host.proc_path("meminfo");
        let text = self.host.read(&path)?;
        let info = parse_meminfo(&text, &path)?;
        let kb = |k: &str| info.get(k).copied().unwrap_or(0).saturating_mul(1024);
        let raw = |k: &str| info.get(k).copied().unwrap_or(0);

        let total = kb("MemTotal");
        let free = kb("MemFree");
        let buffers = kb("Buffers");
        let sreclaimable = kb("SReclaimable");
        let cached = kb("Cached").saturating_add(sreclaimable);
        let available = if info.contains_key("MemAvailable") {
            kb("MemAvailable")
        } else {
            cached.saturating_add(free)
        };
        let used = total
            .saturating_sub(free)
            .saturating_sub(buffers)
            .saturating_sub(cached);

        let mut m = Metric::new("mem")
            .with_field("total", int(total))
            .with_field("available", int(available))
            .with_field("used", int(used));
        if total > 0 {
            m = m
                .with_field("used_percent", 100.0 * used as f64 / total as f64)
                .with_field("available_percent", 100.0 * available as f64 / total as f64);
        }
        let m = m
            .with_field("active", int(kb("Active")))
            .with_field("buffered", int(buffers))
            .with_field("cached", int(cached))
            .with_field("commit_limit", int(kb("CommitLimit")))
            .with_field("committed_as", int(kb("Committed_AS")))
            .with_field("dirty", int(kb("Dirty")))
            .with_field("free", int(free))
            .with_field("high_free", int(kb("HighFree")))
            .with_field("high_total", int(kb("HighTotal")))
            .with_field("huge_pages_free", int(raw("HugePages_Free")))
            .with_field("huge_page_size", int(kb("Hugepagesize")))
            .with_field("huge_pages_total", int(raw("HugePages_Total")))
            .with_field("inactive", int(kb("Inactive")))
            .with_field("low_free", int(kb("LowFree")))
            .with_field("low_total", int(kb("LowTotal")))
            .with_field("mapped", int(kb("Mapped")))
            .with_field("page_tables", int(kb("PageTables")))
            .with_field("shared", int(kb("Shmem")))
            .with_field("slab", int(kb("Slab")))
            .with_field("sreclaimable", int(sreclaimable))
            .with_field("sunreclaim", int(kb("SUnreclaim")))
            .with_field("swap_cached", int(kb("SwapCached")))
            .with_field("swap_free", int(kb("SwapFree")))
            .with_field("swap_total", int(kb("SwapTotal")))
            .with_field("vmalloc_chunk", int(kb("VmallocChunk")))
            .with_field("vmalloc_total", int(kb("VmallocTotal")))
            .with_field("vmalloc_used", int(kb("VmallocUsed")))
            .with_field("write_back_tmp", int(kb("WritebackTmp")))
            .with_field("write_back", int(kb("Writeback")));
        acc.add(m);
        Ok(())
    }
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let _: MemConfig = spec.options()?;
    Ok(Box::new(Mem {
        host: ctx.host.clone(),
    }))
}
