//! weir's agent: gathers host and network measurements, tags them with the
//! node's identity and delivers them to weir (or any InfluxDB) across
//! outages and restarts.
//!
//! The configuration has Telegraf's shape ([`config`]). Periodic
//! [`inputs`] read /proc and /sys under a configurable root; processors add
//! global tags and the `host` tag, rename, drop and mask; each output has a
//! disk spool ([`spool`]) from which a delivery loop sends batches in order
//! and acknowledges them only once the destination has them.

pub mod config;
pub mod host;
pub mod input;
pub mod inputs;
pub mod outputs;
pub mod spool;

pub use config::AgentConfig;
pub use host::HostPaths;
pub use input::{Accumulator, Input, InputError, Metric};
