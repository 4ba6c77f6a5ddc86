//! The delivery loop: moves batches from an output's [`Spool`] to the
//! output, oldest first, acknowledging each only once the output has it.
//!
//! Every `flush_interval` (plus a random jitter up to `flush_jitter`), or
//! when woken (the collector wakes it once `batch_size` lines are queued),
//! the loop sends batches of up to `batch_size` lines until the spool is
//! empty or a batch fails:
//!
//! * [`OutputError::Retry`]: the *same* batch is tried again after the
//!   server's `Retry-After`, or else a back-off starting at 1 s and
//!   doubling to 60 s (reset by a success). Nothing later is sent first.
//! * [`OutputError::TooLarge`]: the batch size is halved for the rest of
//!   this flush (down to one line); a single line still too large is
//!   dropped, logged and counted.
//! * [`OutputError::Rejected`]: the batch is dropped (acknowledged),
//!   logged with the output's name, the number of lines and the server's
//!   message, and counted; the next batch follows.
//!
//! The spool is read and acknowledged on the runtime's thread, not on a
//! blocking one: a batch is lines written moments ago, still in the page
//! cache, and an acknowledgement one `pwrite`; the trip to another thread
//! and back cost more than either.
//!
//! On shutdown one last flush is tried for at most
//! [`SHUTDOWN_FLUSH_TIMEOUT`]; what is left stays in the spool for the next
//! start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{watch, Notify};

use super::{Output, OutputError};
use crate::spool::Spool;
use crate::timer::Timer;

/// How long the last flush on shutdown may take.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The longest `Retry-After` honoured.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// An output's counters, for the agent's own metrics.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Lines the output accepted.
    pub written: AtomicU64,
    /// Lines dropped: rejected by the destination, too large alone, or
    /// deleted unsent by the spool's limit.
    pub dropped: AtomicU64,
    /// Failed write attempts, of any kind.
    pub errors: AtomicU64,
    /// Batches sent again after a "retry" failure.
    pub retries: AtomicU64,
}

/// When and how much the delivery loop sends.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The most lines in one write.
    pub batch_size: usize,
    /// How often to send what has accumulated.
    pub flush_interval: Duration,
    /// A random delay up to this is added to each interval.
    pub flush_jitter: Duration,
}

/// Why a flush stopped before the spool was empty.
enum Stop {
    /// Wait this long, then try the same batch again.
    Retry(Duration),
    /// The spool failed; wait for the next interval.
    Spool,
}

struct Loop {
    name: String,
    spool: Arc<Spool>,
    output: Box<dyn Output>,
    settings: DeliverySettings,
    stats: Arc<OutputStats>,
    backoff: Duration,
    spool_dropped: u64,
}

/// Runs the delivery loop for output `name` until `shutdown` turns true
/// (or its sender is dropped); see the [module docs](self).
pub async fn deliver(
    name: String,
    spool: Arc<Spool>,
    output: Box<dyn Output>,
    settings: DeliverySettings,
    stats: Arc<OutputStats>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let spool_dropped = spool.stats().dropped;
    let mut l = Loop {
        name,
        spool,
        output,
        settings,
        stats,
        backoff: BACKOFF_START,
        spool_dropped,
    };
    // What was dropped before (opening the spool) counts too.
    l.stats.dropped.fetch_add(spool_dropped, Ordering::Relaxed);
    let mut pending_retry: Option<Duration> = None;
    let mut timer = Timer::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let delay = match pending_retry {
            Some(d) => d,
            None => l.settings.flush_interval + jitter(l.settings.flush_jitter),
        };
        let retrying = pending_retry.is_some();
        tokio::select! {
            () = timer.sleep(delay) => {}
            // A wake-up does not cut a back-off short.
            _ = wake.notified(), if !retrying => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
        }
        pending_retry = match l.flush(Some(&shutdown)).await {
            Ok(()) => None,
            Err(Stop::Retry(d)) => Some(d),
            Err(Stop::Spool) => None,
        };
    }
    match tokio::time::timeout(SHUTDOWN_FLUSH_TIMEOUT, l.flush(None)).await {
        Ok(Ok(())) => tracing::debug!(output = %l.name, "flushed on shutdown"),
        Ok(Err(_)) | Err(_) => {
            let left = l.spool.stats().lines;
            tracing::info!(
                output = %l.name,
                "stopping with {left} lines in the spool; they are sent after the next start"
            );
        }
    }
}

fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
}

impl Loop {
    /// Counts what the spool's limit dropped since last looked.
    fn count_spool_drops(&mut self) {
        let dropped = self.spool.stats().dropped;
        if dropped > self.spool_dropped {
            self.stats
                .dropped
                .fetch_add(dropped - self.spool_dropped, Ordering::Relaxed);
            self.spool_dropped = dropped;
        }
    }

    /// Sends batches until the spool is empty or a batch fails. With
    /// `stop`, a long drain (after an outage) gives way to shutdown between
    /// batches, never between a write and its acknowledgement.
    async fn flush(&mut self, stop: Option<&watch::Receiver<bool>>) -> Result<(), Stop> {
        let mut batch_size = self.settings.batch_size.max(1);
        let result = loop {
            if stop.is_some_and(|s| *s.borrow()) {
                break Ok(());
            }
            self.count_spool_drops();
            let batch = match self.spool.peek(batch_size) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(output = %self.name, "reading the spool: {e}");
                    break Err(Stop::Spool);
                }
            };
            if batch.is_empty() {
                break Ok(());
            }
            let outcome = self.output.write(&batch.bytes, batch.lines).await;
            let ack = match outcome {
                Ok(()) => {
                    self.backoff = BACKOFF_START;
                    self.stats
                        .written
                        .fetch_add(batch.lines as u64, Ordering::Relaxed);
                    true
                }
                Err(OutputError::Retry { reason, after }) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    // `Retry-After: 0` does not make a busy loop.
                    let wait = match after {
                        Some(a) => a.clamp(BACKOFF_START, RETRY_AFTER_MAX),
                        None => self.backoff,
                    };
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    tracing::warn!(
                        output = %self.name,
                        "writing {} lines failed: {reason}; retrying in {wait:?}",
                        batch.lines
                    );
                    break Err(Stop::Retry(wait));
                }
                Err(OutputError::TooLarge) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    if batch.lines > 1 {
                        batch_size = (batch.lines / 2).max(1);
                        tracing::info!(
                            output = %self.name,
                            "a batch of {} lines is too large; sending {batch_size} at a time",
                            batch.lines
                        );
                        false
                    } else {
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            output = %self.name,
                            "dropped a line of {} bytes: too large for the destination even alone",
                            batch.bytes.len()
                        );
                        true
                    }
                }
                Err(OutputError::Rejected { reason }) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .dropped
                        .fetch_add(batch.lines as u64, Ordering::Relaxed);
                    tracing::error!(
                        output = %self.name,
                        "dropped a batch of {} lines the destination refused: {reason}",
                        batch.lines
                    );
                    true
                }
            };
            if ack {
                if let Err(e) = self.spool.ack(batch.lines) {
                    tracing::error!(output = %self.name, "acknowledging in the spool: {e}");
                    break Err(Stop::Spool);
                }
            }
        };
        self.count_spool_drops();
        result
    }
}
