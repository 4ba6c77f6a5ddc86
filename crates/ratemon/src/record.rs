//! The record the monitor emits every meter interval.

use serde::Serialize;

/// One meter interval's report: the original's fields (DESIGN's list),
/// typed — numbers are numbers, unknowns are `null` — plus how well the
/// sampler kept its schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// When the record was made, RFC 3339 UTC with microseconds.
    pub timestamp: String,
    /// The same instant in nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The monitored interface.
    pub interface: String,
    /// The line rate in bytes/s; `null` when neither the driver nor `-k`
    /// gives one (then no risk is computed).
    pub linerate: Option<f64>,
    /// The alarm trigger, percent.
    pub alarm_trigger_value: f64,
    /// The cutoff, percent of the line rate.
    pub cutoff: f64,
    /// Mean transmit rate over the last estimation interval, bytes/s.
    pub tx: f64,
    /// Variance of the transmit rate, (bytes/s)².
    pub var_tx: f64,
    /// Log-normal location of the transmit rate; `null` when idle.
    pub mu_tx: Option<f64>,
    /// Log-normal shape σ² of the transmit rate; `null` when idle.
    pub sigma2_tx: Option<f64>,
    /// Risk (percent) that the transmit rate exceeds cutoff × line rate.
    pub overload_risk_tx: Option<f64>,
    /// Whether `overload_risk_tx` is above the trigger.
    pub alarm_tx: Option<bool>,
    /// Mean receive rate, bytes/s.
    pub rx: f64,
    /// Variance of the receive rate.
    pub var_rx: f64,
    /// Log-normal location of the receive rate.
    pub mu_rx: Option<f64>,
    /// Log-normal shape σ² of the receive rate.
    pub sigma2_rx: Option<f64>,
    /// Risk (percent) that the receive rate exceeds cutoff × line rate.
    pub overload_risk_rx: Option<f64>,
    /// Whether `overload_risk_rx` is above the trigger.
    pub alarm_rx: Option<bool>,
    /// The requested samples per second.
    pub sample_rate: f64,
    /// Seconds per estimation interval.
    pub estimation_interval: f64,
    /// Seconds per meter interval.
    pub meter_interval: f64,
    /// Samples actually taken per second over the meter interval.
    pub achieved_sample_rate: f64,
    /// Median lateness of a sample behind its deadline, µs.
    pub jitter_p50_us: f64,
    /// 99th percentile of that lateness, µs.
    pub jitter_p99_us: f64,
    /// Samples in the meter interval in which neither counter moved.
    pub zero_delta_samples: u64,
    /// Samples taken in the meter interval.
    pub samples: u64,
    /// Deadlines skipped because the sampler was late by a whole period.
    pub missed_samples: u64,
    /// Samples dropped because a counter went backwards (the interface was
    /// reset or replaced).
    pub counter_resets: u64,
}

impl Record {
    /// The record as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
