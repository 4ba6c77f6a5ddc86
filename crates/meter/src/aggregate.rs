//! Local aggregation (Lantern's "local calculation per 5 min"): records
//! folded into one row per window and dimension set, for networks that
//! must not send per-connection data. Peers and addresses are left out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::record::{ConnectionRecord, Direction};

/// Lantern's window: 5 minutes.
pub const DEFAULT_AGGREGATE_WINDOW: Duration = Duration::from_secs(300);

/// The dimensions a row is kept per.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AggregateKey {
    /// The window's start, in whole seconds since the epoch.
    pub window_start: u64,
    /// Transport label.
    pub transport: Arc<str>,
    /// Protocol label ("" for none).
    pub protocol: Arc<str>,
    /// `outbound` or `inbound`.
    pub direction: &'static str,
}

/// One window's figures for one dimension set.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRow {
    /// Its dimensions.
    pub key: AggregateKey,
    /// Connections that ended in the window.
    pub connections: u64,
    /// Of them, those with an error.
    pub errors: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Dial times (µs) of the connections that timed one: min, max, sum, count.
    pub dial_us: Summary,
    /// Mean rates (bytes/s) of the connections that moved bytes.
    pub rate_bps: Summary,
}

/// Min, max, sum and count of a figure; [`Summary::mean`] from them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// The smallest value (0 when empty).
    pub min: f64,
    /// The largest value (0 when empty).
    pub max: f64,
    /// Sum of the values.
    pub sum: f64,
    /// How many values.
    pub count: u64,
}

impl Summary {
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.sum += v;
        self.count += 1;
    }

    /// The mean, if there were values.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// Folds records into rows per window; [`Aggregator::take_closed`] hands
/// over the windows that are over.
#[derive(Debug)]
pub struct Aggregator {
    window: u64,
    rows: BTreeMap<AggregateKey, AggregateRow>,
}

impl Aggregator {
    /// Windows of `window` (whole seconds, at least 1), aligned to the epoch.
    pub fn new(window: Duration) -> Self {
        Aggregator {
            window: window.as_secs().max(1),
            rows: BTreeMap::new(),
        }
    }

    /// Adds one record to the window it ended in.
    pub fn add(&mut self, r: &ConnectionRecord) {
        let secs = r
            .ended_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let key = AggregateKey {
            window_start: secs - secs % self.window,
            transport: Arc::clone(&r.transport),
            protocol: r.protocol.clone().unwrap_or_else(|| Arc::from("")),
            direction: match r.direction {
                Direction::Outbound => "outbound",
                Direction::Inbound => "inbound",
            },
        };
        let row = self
            .rows
            .entry(key.clone())
            .or_insert_with(|| AggregateRow {
                key,
                connections: 0,
                errors: 0,
                bytes_in: 0,
                bytes_out: 0,
                dial_us: Summary::default(),
                rate_bps: Summary::default(),
            });
        row.connections += 1;
        row.errors += u64::from(r.error.is_some());
        row.bytes_in += r.bytes_in;
        row.bytes_out += r.bytes_out;
        if let Some(d) = r.dial {
            row.dial_us.add(d.as_secs_f64() * 1e6);
        }
        if r.bytes_in + r.bytes_out > 0 {
            row.rate_bps.add(r.rate_avg);
        }
    }

    /// The rows of every window that ended by `now`, oldest first.
    pub fn take_closed(&mut self, now: SystemTime) -> Vec<AggregateRow> {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let open_from = secs - secs % self.window;
        let open = self.rows.split_off(&AggregateKey {
            window_start: open_from,
            transport: Arc::from(""),
            protocol: Arc::from(""),
            direction: "",
        });
        std::mem::replace(&mut self.rows, open)
            .into_values()
            .collect()
    }

    /// Every row, closed or not (at shutdown).
    pub fn take_all(&mut self) -> Vec<AggregateRow> {
        std::mem::take(&mut self.rows).into_values().collect()
    }
}
