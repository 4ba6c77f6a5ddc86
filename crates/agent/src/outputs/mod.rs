//! The outputs, by name as they appear in `[[outputs.NAME]]`, and the
//! delivery loop ([`mod@deliver`]) that feeds each one from its spool.
//!
//! | name | what |
//! |---|---|
//! | `weir` | weir's `/write` (InfluxDB v1 API), gzip, `Authorization: Token` |
//! | `influxdb` | InfluxDB 1.x `/write`, basic auth, Telegraf's defaults |
//! | `influxdb_v2` | InfluxDB 2.x `/api/v2/write`, `Authorization: Token` |
//! | `file` | line protocol or JSON lines to files or stdout, with rotation |
//! | `stdout` | `file` with `files = ["stdout"]` |
//! | `socket_writer` (or `socket`) | TCP, UDP, Unix stream or datagram sockets |
//!
//! # HTTP status → what the delivery loop does
//!
//! | answer | [`OutputError`] | so |
//! |---|---|---|
//! | 2xx | — | acknowledged |
//! | 413 | `TooLarge` | resent in halves; one line still too large is dropped |
//! | 429, 5xx, network errors, timeouts | `Retry` | the same batch again, after `Retry-After` (at least 1 s) or a back-off of 1 s doubling to 60 s |
//! | 408, 421, 425 | `Retry` | the same batch again |
//! | 3xx | `Retry` (logged as an error) | redirects are not followed (the POST would become a GET without its data): set the URL it names |
//! | 401, 403, 407 | `Retry` (logged as an error) | kept: a fixed token or grant delivers it |
//! | 404 `database not found` | `Retry` | the database is created (unless `skip_database_creation`) and the batch resent |
//! | other 404 | `Retry` (logged as an error) | a wrong URL path is a configuration error: the data is kept |
//! | 400 and other 4xx | `Rejected` | dropped, logged with the output's name, the number of lines and the server's message, counted |
//!
//! A 400 from an InfluxDB v1 API (weir included) is a partial write: the
//! server stored the valid lines and names the bad ones, so resending would
//! duplicate the good ones and fail on the bad ones again.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::config::{ConfigError, OutputCommon, PluginSpec};

pub mod deliver;
pub mod file;
mod format;
mod http;
pub mod influxdb;
pub mod influxdb_v2;
pub mod socket_writer;

pub use deliver::{deliver, DeliverySettings, OutputStats};

/// The names of the outputs, as in `[[outputs.NAME]]`.
pub const NAMES: &[&str] = &[
    "weir",
    "influxdb",
    "influxdb_v2",
    "file",
    "stdout",
    "socket_writer",
    "socket",
];

/// A future an output returns; boxed so outputs can be trait objects.
pub type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<(), OutputError>> + Send + 'a>>;

/// A destination for metrics. The delivery loop hands it batches of line
/// protocol (each line ends in `\n`, timestamps in nanoseconds) read from
/// the output's spool, oldest first, and acknowledges a batch only when
/// `write` returns `Ok`.
pub trait Output: Send + std::fmt::Debug {
    /// Sends one batch of `lines` lines.
    fn write<'a>(&'a mut self, batch: &'a [u8], lines: usize) -> WriteFuture<'a>;
}

/// Why a batch was not delivered, and so what the delivery loop does next.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Try the same batch again later (network error, 5xx, 429); `after`
    /// is the server's `Retry-After` if it sent one.
    #[error("{reason}")]
    Retry {
        /// What happened.
        reason: String,
        /// How long the server asked us to wait.
        after: Option<Duration>,
    },
    /// The destination refused the batch's content (a 4xx parse error):
    /// sending it again cannot succeed, so it is dropped and logged.
    #[error("{reason}")]
    Rejected {
        /// What the destination said.
        reason: String,
    },
    /// The batch is too large for the destination (413): send half.
    #[error("batch too large")]
    TooLarge,
}

/// What an output needs from the agent to be built.
#[derive(Debug, Clone, Default)]
pub struct OutputContext {}

/// Builds the output a `[[outputs.NAME]]` table describes, checking its keys.
pub fn build(
    spec: &PluginSpec<OutputCommon>,
    _ctx: &OutputContext,
) -> Result<Box<dyn Output>, ConfigError> {
    Ok(match spec.name.as_str() {
        "weir" => Box::new(influxdb::InfluxOutput::build(spec, influxdb::Flavor::Weir)?),
        "influxdb" => Box::new(influxdb::InfluxOutput::build(spec, influxdb::Flavor::V1)?),
        "influxdb_v2" => Box::new(influxdb_v2::InfluxV2Output::build(spec)?),
        "file" => Box::new(file::FileOutput::build(spec, false)?),
        "stdout" => Box::new(file::FileOutput::build(spec, true)?),
        "socket_writer" | "socket" => Box::new(socket_writer::SocketWriter::build(spec)?),

        other => {
            return Err(spec.error(format!(
                "unknown output `{other}`; known outputs: {}",
                NAMES.join(", ")
            )))
        }
    })
}
