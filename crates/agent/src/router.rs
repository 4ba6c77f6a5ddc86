//! Where gathered metrics go: through their input's modifiers and the
//! processor pipeline, then, encoded once as line protocol, into the spool
//! of every output whose filters pass them. A metric counts as accepted
//! once every spool has it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use lineproto::FieldValue;

use crate::input::Metric;
use crate::processors::{Globs, InputModifiers, Pipeline};
use crate::spool::{Spool, SpoolError};

/// One output as the router sees it: its filters and its spool.
#[derive(Debug)]
pub struct OutputSlot {
    /// `weir`, `weir-1`, or the output's alias.
    pub name: String,
    /// Send only measurements matching one of these (empty: all).
    pub namepass: Globs,
    /// Do not send measurements matching one of these.
    pub namedrop: Globs,
    /// The output's spool.
    pub spool: Arc<Spool>,
    /// Woken when a full batch is waiting.
    pub wake: Arc<Notify>,
    /// Lines per batch: the delivery loop is woken when this many wait.
    pub batch_size: usize,
}

impl OutputSlot {
    fn passes(&self, measurement: &str) -> bool {
        (self.namepass.is_empty() || self.namepass.matches(measurement))
            && !self.namedrop.matches(measurement)
    }
}

/// Counts of one input, reported in `weir_agent`.
#[derive(Debug, Default)]
pub struct InputStats {
    /// Metrics the input produced and the router accepted.
    pub gathered: AtomicU64,
    /// Gather calls (or requests, for the listener) that failed.
    pub errors: AtomicU64,
    /// Metrics that could not be encoded (a NaN field, an empty key) and
    /// were dropped.
    pub dropped: AtomicU64,
}

/// Routes metrics from inputs to output spools.
#[derive(Debug)]
pub struct Router {
    pipeline: Pipeline,
    precision: Duration,
    outputs: Vec<OutputSlot>,
}

impl Router {
    /// A router applying `pipeline`, rounding timestamps to `precision`
    /// (zero: as gathered) and feeding `outputs`.
    pub fn new(pipeline: Pipeline, precision: Duration, outputs: Vec<OutputSlot>) -> Router {
        Router {
            pipeline,
            precision,
            outputs,
        }
    }

    /// The outputs' slots.
    pub fn outputs(&self) -> &[OutputSlot] {
        &self.outputs
    }

    /// Processes `metrics` of one input and appends them to every output's
    /// spool. `round` applies `[agent] precision` (periodic inputs; the
    /// listener's clients chose their own precision). A spool that fails
    /// does not keep the metrics from the others; the first failure is
    /// returned, and the caller reports it (the listener answers 503, so a
    /// client resends; re-delivery is harmless as points are idempotent).
    pub fn route(
        &self,
        modifiers: &InputModifiers,
        metrics: Vec<Metric>,
        stats: &InputStats,
        round: bool,
    ) -> Result<(), SpoolError> {
        let precision = if round {
            i64::try_from(self.precision.as_nanos()).unwrap_or(0)
        } else {
            0
        };
        // One buffer per output: outputs may filter differently.
        let mut encoded: Vec<Vec<u8>> = vec![Vec::new(); self.outputs.len()];
        let mut accepted = 0u64;
        for metric in metrics {
            let Some(metric) = modifiers.apply(metric) else {
                continue;
            };
            let mut metric = self.pipeline.apply(metric);
            if precision > 1 {
                metric.timestamp = metric.timestamp.map(|t| round_to(t, precision));
            }
            // As Telegraf: an empty tag or a NaN / infinite field is left
            // out rather than costing the whole metric.
            metric.tags.retain(|(k, v)| !k.is_empty() && !v.is_empty());
            metric.fields.retain(|(k, v)| {
                !k.is_empty() && !matches!(v, FieldValue::Float(f) if !f.is_finite())
            });
            let mut line = Vec::new();
            if let Err(e) = metric.encode(&mut line) {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("dropping a {} metric: {e}", metric.measurement);
                continue;
            }
            accepted += 1;
            for (slot, buf) in self.outputs.iter().zip(encoded.iter_mut()) {
                if slot.passes(&metric.measurement) {
                    buf.extend_from_slice(&line);
                }
            }
        }
        let mut first_error = None;
        for (slot, buf) in self.outputs.iter().zip(&encoded) {
            if buf.is_empty() {
                continue;
            }
            match slot.spool.append(buf) {
                Ok(()) => {
                    if slot.spool.stats().lines >= slot.batch_size as u64 {
                        slot.wake.notify_one();
                    }
                }
                Err(e) => {
                    tracing::error!("output {}: could not spool metrics: {e}", slot.name);
                    first_error.get_or_insert(e);
                }
            }
        }
        stats.gathered.fetch_add(accepted, Ordering::Relaxed);
        first_error.map_or(Ok(()), Err)
    }
}

/// `t` rounded to the nearest multiple of `unit` (halves up); `t` itself
/// where that would leave the range of timestamps.
fn round_to(t: i64, unit: i64) -> i64 {
    let r = t.rem_euclid(unit);
    let Some(down) = t.checked_sub(r) else {
        return t;
    };
    if r >= unit - r {
        down.checked_add(unit).unwrap_or(t)
    } else {
        down
    }
}

#[cfg(test)]
mod tests {
    use super::round_to;

    #[test]
    fn rounding_to_the_precision() {
        assert_eq!(round_to(1_499_999_999, 1_000_000_000), 1_000_000_000);
        assert_eq!(round_to(1_500_000_000, 1_000_000_000), 2_000_000_000);
        assert_eq!(round_to(-1, 1_000), 0);
        assert_eq!(round_to(i64::MAX - 1, 1_000_000_000), i64::MAX - 1);
        assert_eq!(round_to(i64::MIN + 2, 1_000_000_000), i64::MIN + 2);
    }
}
