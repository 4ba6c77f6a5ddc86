//! The monitor's arithmetic, apart from any clock or thread: fed counter
//! readings with their monotonic times, it turns them into rates,
//! estimates each estimation interval and emits a [`Record`] each meter
//! interval. The sampler drives it from a real interface; tests drive it
//! from synthetic counters and time.

use crate::counters::Counters;
use crate::estimator::{Estimate, Welford};
use crate::histogram::Histogram;
use crate::record::Record;
use crate::settings::Settings;

/// A delta at or above this is a counter that went backwards (the device
/// was reset or replaced), not traffic: a real u64 wrap leaves a small
/// delta, and no link moves 2⁶² bytes between two samples.
const RESET_DELTA: u64 = 1 << 62;

/// How long after a (re)start the monitor watches when the counters move,
/// to tell a driver that refreshes them on a timer.
const REFRESH_PROBE_NS: u64 = 3_000_000_000;

/// What the first seconds of sampling say about how often the driver
/// refreshes its counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CounterRefresh {
    /// The counters moved in consecutive samples: they are live (updated
    /// as packets pass) at this sample rate.
    Live,
    /// The counters moved only at regular intervals of about this many
    /// seconds, never in two consecutive samples: the driver refreshes
    /// them on a timer slower than the sample period (or the traffic
    /// itself is that regular), and rates between changes read as zero.
    Every(f64),
    /// Too little traffic to tell (fewer than three changes).
    Unknown,
}

/// The monitor's state between samples.
#[derive(Debug)]
pub struct Monitor {
    settings: Settings,
    /// Bytes/s, from `-k` or the driver; `None` when unknown.
    linerate: Option<f64>,
    prev: Option<(u64, Counters)>,
    /// rx, tx rates of the current estimation interval.
    window: [Welford; 2],
    start_ns: u64,
    estimation_ns: u64,
    meter_ns: u64,
    next_estimate_ns: u64,
    next_meter_ns: u64,
    /// rx, tx estimates of the last finished estimation interval, and
    /// the thresholds they were judged against.
    latest: Option<([Estimate; 2], Thresholds)>,
    meter: MeterStats,
    probe_changes: Vec<u64>,
    refresh: Option<CounterRefresh>,
    refresh_reported: bool,
}

/// How the sampler kept its schedule during one meter interval.
#[derive(Debug, Default)]
struct MeterStats {
    start_ns: u64,
    samples: u64,
    missed: u64,
    zero_delta: u64,
    resets: u64,
    /// Lateness of samples behind their deadlines, µs (saturating).
    lateness_us: Histogram,
}

/// What an estimate was judged against, reported with it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Thresholds {
    linerate: Option<f64>,
    alarm_trigger: f64,
    cutoff: f64,
}

impl Monitor {
    /// A monitor that starts at monotonic time `now_ns` with a line rate
    /// in bytes/s (`None` when unknown: then no risk is computed).
    pub fn new(settings: Settings, linerate: Option<f64>, now_ns: u64) -> Monitor {
        let estimation_ns = secs_to_ns(settings.estimation_interval);
        let meter_ns = secs_to_ns(settings.meter_interval);
        Monitor {
            settings,
            linerate,
            prev: None,
            window: [Welford::new(); 2],
            start_ns: now_ns,
            estimation_ns,
            meter_ns,
            next_estimate_ns: now_ns + estimation_ns,
            next_meter_ns: now_ns + meter_ns,
            latest: None,
            meter: MeterStats {
                start_ns: now_ns,
                ..MeterStats::default()
            },
            probe_changes: Vec::new(),
            refresh: None,
            refresh_reported: false,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The line rate in bytes/s in force.
    pub fn linerate(&self) -> Option<f64> {
        self.linerate
    }

    /// Forgets the last reading, so that the next one starts a new delta
    /// (after the counters were reopened: they may belong to a new device).
    pub fn forget_baseline(&mut self) {
        self.prev = None;
    }

    /// Changes what the estimates are judged against (alarm trigger,
    /// cutoff, line rate) from the next estimation on; the sampling and
    /// its intervals go on undisturbed.
    pub fn set_thresholds(
        &mut self,
        alarm_trigger: f64,
        cutoff: f64,
        link_speed: Option<f64>,
        linerate: Option<f64>,
    ) {
        self.settings.alarm_trigger = alarm_trigger;
        self.settings.cutoff = cutoff;
        self.settings.link_speed = link_speed;
        self.linerate = linerate;
    }

    /// Counts deadlines the sampler skipped.
    pub fn missed(&mut self, n: u64) {
        self.meter.missed += n;
    }

    /// What the first seconds said about the driver's counter refresh,
    /// once, when known.
    pub fn take_refresh(&mut self) -> Option<CounterRefresh> {
        if self.refresh_reported {
            return None;
        }
        let verdict = self.refresh?;
        self.refresh_reported = true;
        Some(verdict)
    }

    /// Feeds one reading taken at monotonic `now_ns`, `lateness_ns` after
    /// its deadline. Returns a record when a meter interval ends;
    /// `wall_ns` gives the record's Unix time (called only then).
    pub fn sample(
        &mut self,
        now_ns: u64,
        lateness_ns: u64,
        counters: Counters,
        wall_ns: impl FnOnce() -> i64,
    ) -> Option<Record> {
        self.meter.samples += 1;
        let late_us = u32::try_from(lateness_ns / 1000).unwrap_or(u32::MAX);
        self.meter.lateness_us.record(late_us);
        if let Some((prev_ns, prev)) = self.prev {
            let dt_ns = now_ns.saturating_sub(prev_ns);
            let drx = counters.rx_bytes.wrapping_sub(prev.rx_bytes);
            let dtx = counters.tx_bytes.wrapping_sub(prev.tx_bytes);
            if drx >= RESET_DELTA || dtx >= RESET_DELTA {
                self.meter.resets += 1;
            } else if dt_ns > 0 {
                let dt = dt_ns as f64 / 1e9;
                self.window[0].push_weighted(drx as f64 / dt, dt);
                self.window[1].push_weighted(dtx as f64 / dt, dt);
                if drx == 0 && dtx == 0 {
                    self.meter.zero_delta += 1;
                } else {
                    self.watch_refresh(now_ns);
                }
            }
        }
        self.prev = Some((now_ns, counters));
        if self.refresh.is_none() && now_ns >= self.start_ns + REFRESH_PROBE_NS {
            self.refresh = Some(self.judge_refresh());
        }
        if now_ns >= self.next_estimate_ns {
            self.estimate();
            self.next_estimate_ns =
                next_boundary(self.next_estimate_ns, self.estimation_ns, now_ns);
        }
        if now_ns >= self.next_meter_ns {
            self.next_meter_ns = next_boundary(self.next_meter_ns, self.meter_ns, now_ns);
            return self.meter(now_ns, wall_ns);
        }
        None
    }

    fn estimate(&mut self) {
        let [rx, tx] = &self.window;
        let (cutoff, trigger) = (self.settings.cutoff_fraction(), self.settings.alarm_trigger);
        let thresholds = Thresholds {
            linerate: self.linerate,
            alarm_trigger: trigger,
            cutoff: self.settings.cutoff,
        };
        self.latest = Some((
            [
                Estimate::from_stats(rx, self.linerate, cutoff, trigger),
                Estimate::from_stats(tx, self.linerate, cutoff, trigger),
            ],
            thresholds,
        ));
        self.window = [Welford::new(); 2];
    }

    /// The record of the meter interval ending at `now_ns`; `None` before
    /// the first estimation interval has ended.
    fn meter(&mut self, now_ns: u64, wall_ns: impl FnOnce() -> i64) -> Option<Record> {
        let elapsed_s = now_ns.saturating_sub(self.meter.start_ns) as f64 / 1e9;
        let mut stats = std::mem::take(&mut self.meter);
        let jitter_p50_us = f64::from(stats.lateness_us.quantile(0.5));
        let jitter_p99_us = f64::from(stats.lateness_us.quantile(0.99));
        let mut lateness_us = std::mem::take(&mut stats.lateness_us);
        lateness_us.clear();
        self.meter = MeterStats {
            start_ns: now_ns,
            lateness_us,
            ..MeterStats::default()
        };
        let ([rx, tx], thresholds) = self.latest?;
        let s = &self.settings;
        let time_ns = wall_ns();
        Some(Record {
            timestamp: format_time(time_ns),
            time_ns,
            interface: s.interface.clone(),
            linerate: thresholds.linerate,
            alarm_trigger_value: thresholds.alarm_trigger,
            cutoff: thresholds.cutoff,
            tx: tx.mean,
            var_tx: tx.variance,
            mu_tx: tx.fit.map(|f| f.mu),
            sigma2_tx: tx.fit.map(|f| f.sigma2),
            overload_risk_tx: tx.risk,
            alarm_tx: tx.alarm,
            rx: rx.mean,
            var_rx: rx.variance,
            mu_rx: rx.fit.map(|f| f.mu),
            sigma2_rx: rx.fit.map(|f| f.sigma2),
            overload_risk_rx: rx.risk,
            alarm_rx: rx.alarm,
            sample_rate: s.sample_rate,
            estimation_interval: s.estimation_interval,
            meter_interval: s.meter_interval,
            achieved_sample_rate: if elapsed_s > 0.0 {
                stats.samples as f64 / elapsed_s
            } else {
                0.0
            },
            jitter_p50_us,
            jitter_p99_us,
            zero_delta_samples: stats.zero_delta,
            samples: stats.samples,
            missed_samples: stats.missed,
            counter_resets: stats.resets,
        })
    }

    fn watch_refresh(&mut self, now_ns: u64) {
        if self.refresh.is_none() && self.probe_changes.len() < 100_000 {
            self.probe_changes.push(now_ns);
        }
    }

    fn judge_refresh(&mut self) -> CounterRefresh {
        let changes = std::mem::take(&mut self.probe_changes);
        if changes.len() < 3 {
            return CounterRefresh::Unknown;
        }
        let mut gaps: Vec<u64> = changes.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        let period_ns = self.settings.sample_period_s() * 1e9;
        let min = gaps[0] as f64;
        let p90 = gaps[(gaps.len() * 9 / 10).min(gaps.len() - 1)] as f64;
        // Changes never in consecutive samples (gaps above 1.5 periods,
        // allowing for jitter) mean a refresh slower than the sample
        // period. Sparse traffic also leaves long gaps, but irregular
        // ones; a refresh timer leaves gaps of one length.
        if min > 1.5 * period_ns && p90 < 1.5 * min {
            CounterRefresh::Every(min / 1e9)
        } else if min <= 1.5 * period_ns {
            CounterRefresh::Live
        } else {
            CounterRefresh::Unknown
        }
    }
}

/// The first boundary after `now_ns` on the grid `boundary + k·step`.
fn next_boundary(boundary: u64, step: u64, now_ns: u64) -> u64 {
    if step == 0 {
        return now_ns;
    }
    let behind = now_ns.saturating_sub(boundary) / step;
    boundary + (behind + 1) * step
}

/// Seconds to nanoseconds, at least 1.
pub(crate) fn secs_to_ns(s: f64) -> u64 {
    ((s * 1e9).round() as u64).max(1)
}

/// Unix nanoseconds as RFC 3339 UTC with microseconds.
pub(crate) fn format_time(time_ns: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(time_ns.max(0) as u64);
    humantime::format_rfc3339_micros(t).to_string()
}
