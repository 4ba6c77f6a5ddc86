//! `[[inputs.diskio]]`: block device I/O counters from `/proc/diskstats`,
//! as Telegraf's `diskio` plugin reports them.
//!
//! One point of measurement `diskio` per device with any non-zero counter,
//! tagged `name` (the kernel's name, or the first of `name_templates` whose
//! udev properties all exist), `wwid` (from `/sys/block/<dev>/wwid`, where
//! present), `serial` (only with `skip_serial_number = false`: udev's
//! `ID_SERIAL`, else sysfs `model_serial`, else `unknown`) and each of
//! `device_tags` the device's udev data has. Fields, integers as in
//! /proc/diskstats (counters since boot, not rates): `reads`, `writes`,
//! `merged_reads`, `merged_writes`, `read_bytes`, `write_bytes` (sectors
//! times 512), `read_time`, `write_time`, `io_time`, `weighted_io_time`
//! (milliseconds) and `iops_in_progress`.
//!
//! From the second gather on, as current Telegraf does, three floats
//! derived from the change since the last gather: `io_await` and
//! `io_svctm` (milliseconds per completed I/O, only when some completed)
//! and `io_util` (percent of the interval the device was busy). When a
//! counter went backwards (a wrap, a re-attached device), they are left
//! out that round.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::BuildContext;

/// The unit of /proc/diskstats' sector counts.
const SECTOR: u64 = 512;

/// The plugin's options, with Telegraf's names and defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DiskioConfig {
    /// Only these devices (names, `/dev/…` paths or globs), when not empty.
    devices: Vec<String>,
    /// Leave out the `serial` tag.
    skip_serial_number: bool,
    /// udev properties to add as tags.
    device_tags: Vec<String>,
    /// Templates of udev properties for the `name` tag.
    name_templates: Vec<String>,
}

impl Default for DiskioConfig {
    fn default() -> Self {
        DiskioConfig {
            devices: Vec::new(),
            skip_serial_number: true,
            device_tags: Vec::new(),
            name_templates: Vec::new(),
        }
    }
}

/// One device's line of /proc/diskstats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DiskStats {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) name: String,
    pub(crate) reads: u64,
    pub(crate) merged_reads: u64,
    pub(crate) read_bytes: u64,
    pub(crate) read_time: u64,
    pub(crate) writes: u64,
    pub(crate) merged_writes: u64,
    pub(crate) write_bytes: u64,
    pub(crate) write_time: u64,
    pub(crate) iops_in_progress: u64,
    pub(crate) io_time: u64,
    pub(crate) weighted_io_time: u64,
}

impl DiskStats {
    fn all_zero(&self) -> bool {
        [
            self.reads,
            self.merged_reads,
            self.read_bytes,
            self.read_time,
            self.writes,
            self.merged_writes,
            self.write_bytes,
            self.write_time,
            self.iops_in_progress,
            self.io_time,
            self.weighted_io_time,
        ]
        .iter()
        .all(|&v| v == 0)
    }
}

/// Parses /proc/diskstats; lines with fewer than 14 columns are skipped as
/// gopsutil skips them.
pub(crate) fn parse_diskstats(text: &str, path: &Path) -> Result<Vec<DiskStats>, InputError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 14 {
            continue;
        }
        let mut n = [0u64; 13];
        for (slot, (col, word)) in n
            .iter_mut()
            .zip(f.iter().enumerate().filter(|(c, _)| *c != 2))
        {
            *slot = word.parse().map_err(|_| InputError::Parse {
                path: path.to_owned(),
                line: i + 1,
                reason: format!(
                    "column {} of `{}` is not a counter: `{word}`",
                    col + 1,
                    f[2]
                ),
            })?;
        }
        out.push(DiskStats {
            major: n[0],
            minor: n[1],
            name: f[2].to_owned(),
            reads: n[2],
            merged_reads: n[3],
            read_bytes: n[4].saturating_mul(SECTOR),
            read_time: n[5],
            writes: n[6],
            merged_writes: n[7],
            write_bytes: n[8].saturating_mul(SECTOR),
            write_time: n[9],
            iops_in_progress: n[10],
            io_time: n[11],
            weighted_io_time: n[12],
        });
    }
    Ok(out)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Fills `$NAME` and `${NAME}` from `props`; `None` when one is missing.
fn fill_template(template: &str, props: &HashMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) if end > 0 && inner[..end].chars().all(is_word) => {
                    (&inner[..end], end + 2)
                }
                _ => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !is_word(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(props.get(name)?);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Some(out)
}

#[derive(Debug)]
struct DiskIo {
    config: DiskioConfig,
    host: HostPaths,
    /// Exact device names, when `devices` has no glob.
    names: HashSet<String>,
    /// Globs, when `devices` has one.
    globs: Vec<glob::Pattern>,
    last: HashMap<String, DiskStats>,
    last_time_ns: Option<i64>,
}

impl DiskIo {
    /// The device's udev properties (`E:` lines) and `DEVLINKS` (`S:`
    /// lines), or `None` without udev data.
    fn udev(&self, d: &DiskStats) -> Option<HashMap<String, String>> {
        let paths = [
            format!("/run/udev/data/b{}:{}", d.major, d.minor),
            format!("/dev/.udev/db/block:{}", d.name),
        ];
        let text = paths
            .iter()
            .find_map(|p| std::fs::read_to_string(self.host.host_path(Path::new(p))).ok())?;
        let mut props = HashMap::new();
        let mut links = Vec::new();
        for line in text.lines() {
            if line.len() < 4 {
                continue;
            }
            if let Some(link) = line.strip_prefix("S:") {
                links.push(format!("/dev/{link}"));
            } else if let Some(kv) = line.strip_prefix("E:") {
                if let Some((k, v)) = kv.split_once('=') {
                    props.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        if !links.is_empty() {
            props.insert("DEVLINKS".to_owned(), links.join(" "));
        }
        Some(props)
    }

    fn serial(&self, d: &DiskStats, udev: Option<&HashMap<String, String>>) -> String {
        if let Some(s) = udev.and_then(|p| p.get("ID_SERIAL")) {
            return s.clone();
        }
        let dev = self
            .host
            .sys_path(&format!("dev/block/{}:0/device", d.major));
        let model = std::fs::read_to_string(dev.join("model")).unwrap_or_default();
        let serial = std::fs::read_to_string(dev.join("serial")).unwrap_or_default();
        if !model.is_empty() && !serial.is_empty() {
            return format!("{model}_{serial}");
        }
        String::new()
    }

    fn selected(&self, d: &DiskStats, udev: Option<&HashMap<String, String>>) -> bool {
        if !self.globs.is_empty() {
            if self.globs.iter().any(|g| g.matches(&d.name)) {
                return true;
            }
            let links = udev.and_then(|p| p.get("DEVLINKS"));
            return links.is_some_and(|l| {
                l.split(' ')
                    .map(|x| x.strip_prefix("/dev/").unwrap_or(x))
                    .any(|x| self.globs.iter().any(|g| g.matches(x)))
            });
        }
        self.names.is_empty() || self.names.contains(&d.name)
    }
}

impl Input for DiskIo {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let path = self.host.proc_path("diskstats");
        let text = self.host.read(&path)?;
        let stats: Vec<DiskStats> = parse_diskstats(&text, &path)?
            .into_iter()
            .filter(|d| !d.all_zero())
            .collect();
        let now = acc.time_ns();
        let interval_ms = self
            .last_time_ns
            .map(|t| (now.saturating_sub(t) / 1_000_000) as f64);
        let need_udev = !self.globs.is_empty()
            || !self.config.device_tags.is_empty()
            || !self.config.name_templates.is_empty()
            || !self.config.skip_serial_number;
        for d in &stats {
            let udev = if need_udev { self.udev(d) } else { None };
            if !self.selected(d, udev.as_ref()) {
                continue;
            }
            let name = udev
                .as_ref()
                .and_then(|p| {
                    self.config
                        .name_templates
                        .iter()
                        .find_map(|t| fill_template(t, p))
                })
                .unwrap_or_else(|| d.name.clone());
            let mut m = Metric::new("diskio").with_tag("name", name);
            if !self.config.skip_serial_number {
                let serial = self.serial(d, udev.as_ref());
                let serial = serial.replace(['\n', '\r'], "");
                let serial = serial.trim();
                m = m.with_tag(
                    "serial",
                    if serial.is_empty() { "unknown" } else { serial }.to_owned(),
                );
            }
            if let Ok(wwid) =
                std::fs::read_to_string(self.host.sys_path(&format!("block/{}/wwid", d.name)))
            {
                let wwid = wwid.trim_end_matches('\n');
                if !wwid.is_empty() {
                    m = m.with_tag("wwid", wwid.to_owned());
                }
            }
            if let Some(props) = &udev {
                for key in &self.config.device_tags {
                    if let Some(v) = props.get(key) {
                        m = m.with_tag(key.clone(), v.clone());
                    }
                }
            }
            m = m
                .with_field("reads", int(d.reads))
                .with_field("writes", int(d.writes))
                .with_field("read_bytes", int(d.read_bytes))
                .with_field("write_bytes", int(d.write_bytes))
                .with_field("read_time", int(d.read_time))
                .with_field("write_time", int(d.write_time))
                .with_field("io_time", int(d.io_time))
                .with_field("weighted_io_time", int(d.weighted_io_time))
                .with_field("iops_in_progress", int(d.iops_in_progress))
                .with_field("merged_reads", int(d.merged_reads))
                .with_field("merged_writes", int(d.merged_writes));
            if let Some(last) = self.last.get(&d.name) {
                let wrapped = d.reads < last.reads
                    || d.writes < last.writes
                    || d.read_time < last.read_time
                    || d.write_time < last.write_time
                    || d.io_time < last.io_time;
                if !wrapped {
                    let count = (d.reads - last.reads) as f64 + (d.writes - last.writes) as f64;
                    let time = (d.read_time - last.read_time) as f64
                        + (d.write_time - last.write_time) as f64;
                    let io = (d.io_time - last.io_time) as f64;
                    if count > 0.0 {
                        m = m
                            .with_field("io_await", time / count)
                            .with_field("io_svctm", io / count);
                    }
                    if let Some(itv) = interval_ms.filter(|&i| i > 0.0) {
                        m = m.with_field("io_util", 100.0 * io / itv);
                    }
                }
            }
            acc.add(m);
        }
        self.last = stats.into_iter().map(|d| (d.name.clone(), d)).collect();
        self.last_time_ns = Some(now);
        Ok(())
    }
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: DiskioConfig = spec.options()?;
    let mut names = HashSet::new();
    let mut globs = Vec::new();
    if config.devices.iter().any(|d| d.contains(['*', '?', '['])) {
        for d in &config.devices {
            globs.push(
                glob::Pattern::new(d)
                    .map_err(|e| spec.error(format!("devices: invalid pattern `{d}`: {e}")))?,
            );
        }
    } else {
        for d in &config.devices {
            // `/dev/disk/by-id/…` and other links name their target.
            let resolved = if d.starts_with("/dev/") {
                std::fs::canonicalize(ctx.host.host_path(Path::new(d)))
                    .ok()
                    .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
            } else {
                None
            };
            let base = Path::new(d)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(d)
                .to_owned();
            names.insert(resolved.unwrap_or(base));
        }
    }
    Ok(Box::new(DiskIo {
        config,
        host: ctx.host.clone(),
        names,
        globs,
        last: HashMap::new(),
        last_time_ns: None,
    }))
}
