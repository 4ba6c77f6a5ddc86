//! The periodic inputs, by name as they appear in `[[inputs.NAME]]`.
//!
//! Each module reads its sources under [`HostPaths`] and emits exactly the
//! measurement, tag and field names and types Telegraf's plugin of the same
//! name emits, so dashboards and queries written for Telegraf work as is.

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::host::HostPaths;
use crate::input::Input;

pub mod cpu;
pub mod disk;
pub mod diskio;
pub mod kernel;
pub mod mem;
pub mod net;
pub mod net_response;
pub mod netstat;
pub mod nstat;
pub mod probe;
pub mod processes;
pub mod procstat;
pub mod ratemon;
pub mod swap;
pub mod system;

/// What an input needs from the agent to be built.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// Where the host's /proc, /sys and mount points are.
    pub host: HostPaths,
}

/// The names of the periodic inputs, as in `[[inputs.NAME]]`.
pub const NAMES: &[&str] = &[
    "cpu",
    "disk",
    "diskio",
    "kernel",
    "mem",
    "net",
    "net_response",
    "netstat",
    "nstat",
    "probe",
    "processes",
    "procstat",
    "ratemon",
    "swap",
    "system",
];

/// Builds the input a `[[inputs.NAME]]` table describes, checking its keys.
pub fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    match spec.name.as_str() {
        "cpu" => cpu::build(spec, ctx),
        "disk" => disk::build(spec, ctx),
        "diskio" => diskio::build(spec, ctx),
        "kernel" => kernel::build(spec, ctx),
        "mem" => mem::build(spec, ctx),
        "net" => net::build(spec, ctx),
        "net_response" => net_response::build(spec, ctx),
        "netstat" => netstat::build(spec, ctx),
        "nstat" => nstat::build(spec, ctx),
        "probe" => probe::build(spec, ctx),
        "processes" => processes::build(spec, ctx),
        "procstat" => procstat::build(spec, ctx),
        "ratemon" => ratemon::build(spec, ctx),
        "swap" => swap::build(spec, ctx),
        "system" => system::build(spec, ctx),
        other => Err(spec.error(format!(
            "unknown input `{other}`; known inputs: {}, listener",
            NAMES.join(", ")
        ))),
    }
}
