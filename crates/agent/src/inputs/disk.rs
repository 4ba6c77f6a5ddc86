//! `[[inputs.disk]]`: space and inodes of each mounted file system, as
//! Telegraf's `disk` plugin reports them.
//!
//! The mounts come from the host's `/proc/1/mountinfo` (else
//! `/proc/self/mountinfo`, else `/proc/self/mounts`), as gopsutil reads
//! them; each is `statvfs`ed at its mount point under the host root. One
//! point of measurement `disk` per mount, tagged `path` (the mount point),
//! `device` (without `/dev/`; `/dev/mapper/…` links and `/dev/root`
//! resolved as gopsutil does), `fstype`, `mode` (`rw`, `ro` or `unknown`)
//! and, for device-mapper devices, `label` (the `dm/name`), with fields
//! `total`, `free` (available to unprivileged users), `used`,
//! `inodes_total`, `inodes_free`, `inodes_used` (integers) and
//! `used_percent` (`used / (used + free)`, as Telegraf computes it, not
//! `df`'s `used / total`) and `inodes_used_percent` (floats).
//!
//! Mounts of the types in `ignore_fs`, of type `autofs`, with an option in
//! `ignore_mount_opts` (`bind` matches bind mounts), outside
//! `mount_points` when that is set, or with zero size (proc, sysfs, …; the
//! kernel's pseudo file systems, whose size is always zero, are not even
//! stat'ed) are left out; a mount point that cannot be stat'ed is skipped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::BuildContext;

/// The plugin's options, with Telegraf's names; `ignore_fs` defaults to
/// the list in Telegraf's sample configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DiskConfig {
    /// Only these mount points, when not empty.
    mount_points: Vec<String>,
    /// Telegraf's deprecated spelling of `mount_points`.
    mountpoints: Vec<String>,
    /// File system types to leave out.
    ignore_fs: Vec<String>,
    /// Mount options that leave a mount out (`bind` for bind mounts).
    ignore_mount_opts: Vec<String>,
    /// Telegraf logs why mounts are dropped; weir logs it at debug level
    /// always, so this is accepted and has no effect.
    #[allow(dead_code)]
    trace_filters: bool,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            mount_points: Vec::new(),
            mountpoints: Vec::new(),
            ignore_fs: [
                "tmpfs", "devtmpfs", "devfs", "iso9660", "overlay", "aufs", "squashfs",
            ]
            .map(String::from)
            .to_vec(),
            ignore_mount_opts: Vec::new(),
            trace_filters: false,
        }
    }
}

/// One line of a mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) device: String,
    pub(crate) mount_point: String,
    pub(crate) fstype: String,
    pub(crate) opts: Vec<String>,
    /// `major:minor` (mountinfo only).
    pub(crate) dev_id: Option<String>,
}

/// Undoes the octal escapes of mount tables (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/<pid>/mountinfo`.
pub(crate) fn parse_mountinfo(text: &str, path: &Path) -> Result<Vec<Mount>, InputError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: &str| InputError::Parse {
            path: path.to_owned(),
            line: i + 1,
            reason: reason.to_owned(),
        };
        let (left, right) = line
            .split_once(" - ")
            .ok_or_else(|| bad("no ` - ` separator"))?;
        let left: Vec<&str> = left.split_ascii_whitespace().collect();
        let right: Vec<&str> = right.split_ascii_whitespace().collect();
        if left.len() < 6 || right.len() < 2 {
            return Err(bad("too few fields"));
        }
        let mut opts: Vec<String> = left[5].split(',').map(String::from).collect();
        if left[3] != "/" && !left[3].is_empty() {
            opts.push("bind".to_owned());
        }
        out.push(Mount {
            device: unescape(right[1]),
            mount_point: unescape(left[4]),
            fstype: right[0].to_owned(),
            opts,
            dev_id: Some(left[2].to_owned()),
        });
    }
    Ok(out)
}

/// Parses `/proc/<pid>/mounts` (fstab format).
pub(crate) fn parse_mounts(text: &str, path: &Path) -> Result<Vec<Mount>, InputError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() < 4 {
            return Err(InputError::Parse {
                path: path.to_owned(),
                line: i + 1,
                reason: format!("{} fields, expected at least 4", f.len()),
            });
        }
        out.push(Mount {
            device: unescape(f[0]),
            mount_point: unescape(f[1]),
            fstype: f[2].to_owned(),
            opts: f[3].split(',').map(String::from).collect(),
            dev_id: None,
        });
    }
    Ok(out)
}

/// The host's mount table, where gopsutil looks for it.
pub(crate) fn read_mounts(host: &HostPaths) -> Result<Vec<Mount>, InputError> {
    let mut first_err = None;
    for (rel, info) in [
        ("1/mountinfo", true),
        ("self/mountinfo", true),
        ("self/mounts", false),
    ] {
        let path = host.proc_path(rel);
        match host.read(&path) {
            Ok(text) if info => return parse_mountinfo(&text, &path),
            Ok(text) => return parse_mounts(&text, &path),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| InputError::Other("no mount table".into())))
}

#[derive(Debug)]
struct Disk {
    host: HostPaths,
    mount_points: HashSet<String>,
    ignore_fs: HashSet<String>,
    ignore_mount_opts: HashSet<String>,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// File system types whose `statfs` always reports zero blocks (the
/// kernel's `simple_statfs`), which would be left out for their size:
/// not stat'ed at all, as there are a dozen of them on every machine.
const ALWAYS_EMPTY: [&str; 16] = [
    "proc",
    "sysfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "bpf",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "mqueue",
    "binfmt_misc",
    "nsfs",
    "rpc_pipefs",
];

impl Disk {
    /// The device as gopsutil names it: `/dev/mapper/x` followed to
    /// `/dev/dm-N`, `/dev/root` to the block device of its number.
    fn resolve_device(&self, m: &Mount) -> String {
        let mut device = m.device.clone();
        if m.dev_id.is_none() {
            return device;
        }
        if device.starts_with("/dev/mapper/") {
            if let Ok(target) = std::fs::canonicalize(self.host.host_path(Path::new(&device))) {
                if let Some(name) = target.file_name().and_then(|n| n.to_str()) {
                    device = format!("/dev/{name}");
                }
            }
        }
        if device == "/dev/root" {
            if let Some(id) = &m.dev_id {
                let link = self.host.sys_path(&format!("dev/block/{id}"));
                if let Ok(target) = std::fs::read_link(link) {
                    if let Some(name) = target.file_name().and_then(|n| n.to_str()) {
                        device = format!("/dev/{name}");
                    }
                }
            }
        }
        device
    }
}

impl Input for Disk {
    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let mounts = read_mounts(&self.host)?;
        for m in &mounts {
            if m.opts.iter().any(|o| self.ignore_mount_opts.contains(o)) {
                tracing::debug!(mount = %m.mount_point, "disk: dropped by mount option");
                continue;
            }
            if !self.mount_points.is_empty() && !self.mount_points.contains(&m.mount_point) {
                continue;
            }
            if m.fstype == "autofs"
                || self.ignore_fs.contains(&m.fstype)
                || ALWAYS_EMPTY.contains(&m.fstype.as_str())
            {
                continue;
            }
            let at: PathBuf = self.host.host_path(Path::new(&m.mount_point));
            let st = match rustix::fs::statvfs(&at) {
                Ok(st) => st,
                Err(e) => {
                    tracing::debug!(path = %at.display(), error = %e, "disk: cannot stat mount point; skipped");
                    continue;
                }
            };
            let frsize = if st.f_frsize != 0 {
                st.f_frsize
            } else {
                st.f_bsize
            };
            let total = st.f_blocks.saturating_mul(frsize);
            if total == 0 {
                continue;
            }
            let free = st.f_bavail.saturating_mul(frsize);
            let used = st
                .f_blocks
                .saturating_sub(st.f_bfree)
                .saturating_mul(frsize);
            let inodes_total = st.f_files;
            let inodes_free = st.f_ffree;
            let inodes_used = inodes_total.saturating_sub(inodes_free);
            let used_percent = if used + free > 0 {
                used as f64 / (used as f64 + free as f64) * 100.0
            } else {
                0.0
            };
            let inodes_used_percent = if inodes_total > 0 {
                inodes_used as f64 / inodes_total as f64 * 100.0
            } else {
                0.0
            };
            let device = self.resolve_device(m);
            let short = device.replace("/dev/", "");
            let mode = if m.opts.iter().any(|o| o == "rw") {
                "rw"
            } else if m.opts.iter().any(|o| o == "ro") {
                "ro"
            } else {
                "unknown"
            };
            let mut metric = Metric::new("disk")
                .with_tag("device", short.clone())
                .with_tag("fstype", m.fstype.clone());
            let label_path = self.host.sys_path(&format!("block/{short}/dm/name"));
            if let Ok(label) = std::fs::read_to_string(label_path) {
                let label = label.trim();
                if !label.is_empty() {
                    metric = metric.with_tag("label", label.to_owned());
                }
            }
            let metric = metric
                .with_tag("mode", mode)
                .with_tag("path", m.mount_point.clone())
                .with_field("total", int(total))
                .with_field("free", int(free))
                .with_field("used", int(used))
                .with_field("used_percent", used_percent)
                .with_field("inodes_total", int(inodes_total))
                .with_field("inodes_free", int(inodes_free))
                .with_field("inodes_used", int(inodes_used))
                .with_field("inodes_used_percent", inodes_used_percent);
            acc.add(metric);
        }
        Ok(())
    }
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: DiskConfig = spec.options()?;
    let mount_points = if config.mountpoints.is_empty() {
        config.mount_points
    } else {
        config.mountpoints
    };
    Ok(Box::new(Disk {
        host: ctx.host.clone(),
        mount_points: mount_points.into_iter().collect(),
        ignore_fs: config.ignore_fs.into_iter().collect(),
        ignore_mount_opts: config.ignore_mount_opts.into_iter().collect(),
    }))
}
