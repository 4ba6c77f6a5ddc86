//! weir's interface rate monitor, a successor of the SICS rate monitor
//! (Kreuger & Steinert, "Scalable in-network rate monitoring", IM 2015).
//!
//! It samples an interface's byte counters at a high, steady rate
//! ([`counters`], [`sampler`]), keeps the mean and variance of the rate
//! over each estimation interval, fits a log-normal to them by moments and
//! computes the risk that the rate exceeds a share of the line rate
//! ([`estimator`], [`monitor`]); every meter interval it emits a
//! [`Record`] to its [`Sinks`]. A TCP [`control`] port changes its settings
//! while it runs.
//!
//! ```no_run
//! use ratemon::{Options, RateMonitor, Settings, Sinks};
//! let settings = Settings { interface: "lo".into(), link_speed: Some(1000.0), ..Settings::default() };
//! let options = Options { sinks: Sinks { stdout: true, ..Sinks::default() }, ..Options::default() };
//! let monitor = RateMonitor::start(settings, options)?;
//! monitor.wait();
//! # Ok::<(), ratemon::StartError>(())
//! ```
//!
//! What it fixes in the original: sampling on absolute deadlines (the
//! original slept after each sample and drifted below its rate);
//! Welford's variance (`E[x²] − E[x]²` went negative); u64 counter deltas
//! (the original assumed a 32-bit wrap); a configurable control port.

pub mod control;
pub mod counters;
pub mod estimator;
mod histogram;
pub mod monitor;
pub mod record;
pub mod sampler;
pub mod settings;
pub mod sinks;

pub use control::{ControlRequest, DEFAULT_CONTROL_PORT};
pub use counters::{CounterMethod, Counters};
pub use estimator::{overload_risk, Estimate, LogNormal, Welford};
pub use monitor::{CounterRefresh, Monitor};
pub use record::Record;
pub use sampler::{Options, RateMonitor, StartError};
pub use settings::Settings;
pub use sinks::Sinks;
