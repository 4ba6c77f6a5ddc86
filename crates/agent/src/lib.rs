//! weir's agent: gathers host and network measurements, tags them with the
//! node's identity and delivers them to weir (or any InfluxDB) across
//! outages and restarts.
//!
//! The configuration has Telegraf's shape ([`config`]). Periodic
//! [`inputs`] read /proc and /sys under a configurable root, and the
//! [`listener`] takes line protocol from local applications; [`processors`]
//! add global tags and the `host` tag, rename, drop and mask; the
//! [`router`] writes each metric once into the disk [`spool`] of every
//! output, from which a delivery loop ([`outputs::deliver()`]) sends batches
//! in order and acknowledges them only once the destination has them.
//! [`runtime::Agent`] ties it together.

pub mod config;
pub mod host;
pub mod input;
pub mod inputs;
pub mod listener;
pub mod outputs;
pub mod processors;
pub mod router;
pub mod runtime;
pub mod spool;
mod timer;

pub use config::AgentConfig;
pub use host::HostPaths;
pub use input::{Accumulator, Input, InputError, Metric};
pub use runtime::{Agent, AgentError};

/// A commented configuration with every section and the default inputs:
/// what `weir agent --sample-config` prints.
pub const SAMPLE_CONFIG: &str = include_str!("sample.toml");
