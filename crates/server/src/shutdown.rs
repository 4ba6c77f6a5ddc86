//! Waiting for SIGTERM or SIGINT.

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

use crate::error::ServerError;

/// Registers for SIGTERM and SIGINT now (so a signal that comes at once is
/// not lost) and returns a future that completes at the first of them.
/// Must be called inside a Tokio runtime.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServerError> {
    let registering = |kind: SignalKind, name: &'static str| {
        signal(kind).map_err(|e| ServerError::Runtime {
            what: name,
            reason: e.to_string(),
        })
    };
    let mut term = registering(SignalKind::terminate(), "the SIGTERM handler")?;
    let mut int = registering(SignalKind::interrupt(), "the SIGINT handler")?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name}: shutting down");
    })
}
