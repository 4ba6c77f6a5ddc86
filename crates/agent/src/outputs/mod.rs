//! The outputs, by name as they appear in `[[outputs.NAME]]`, and the
//! delivery loop that feeds each one from its spool.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::config::{ConfigError, OutputCommon, PluginSpec};

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
    Err(spec.error(format!("unknown output `{}` (not built yet)", spec.name)))
}
