//! The monitor's settings: the original's start parameters, changeable at
//! run time through the control port.

use serde::{Deserialize, Serialize};

/// What the monitor samples and how it judges the rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The interface to monitor.
    pub interface: String,
    /// Samples per second.
    pub sample_rate: f64,
    /// Seconds per estimation interval.
    pub estimation_interval: f64,
    /// Seconds between records.
    pub meter_interval: f64,
    /// The link speed in Mbit/s, overriding the driver's; `None` reads
    /// `/sys/class/net/IF/speed`.
    pub link_speed: Option<f64>,
    /// The overload risk (percent) above which the alarm is raised.
    pub alarm_trigger: f64,
    /// The share of the line rate (percent) that counts as overload.
    pub cutoff: f64,
}

impl Default for Settings {
    /// The original's defaults, on `eth0`.
    fn default() -> Self {
        Settings {
            interface: "eth0".to_owned(),
            sample_rate: 1000.0,
            estimation_interval: 10.0,
            meter_interval: 30.0,
            link_speed: None,
            alarm_trigger: 95.0,
            cutoff: 99.0,
        }
    }
}

/// The highest sample rate accepted: beyond it the sampler's own wake-ups
/// cost more than a core can give.
pub const MAX_SAMPLE_RATE: f64 = 100_000.0;
/// The lowest sample rate accepted: the sampler answers control requests
/// between samples, so a period above a second would keep them waiting.
pub const MIN_SAMPLE_RATE: f64 = 1.0;
/// The longest estimation or meter interval accepted (one day).
pub const MAX_INTERVAL_S: f64 = 86_400.0;

impl Settings {
    /// Checks every value, naming the first that is out of range.
    pub fn validate(&self) -> Result<(), String> {
        check_interface(&self.interface)?;
        check_inclusive(
            "sample_rate",
            self.sample_rate,
            MIN_SAMPLE_RATE,
            MAX_SAMPLE_RATE,
        )?;
        check_range(
            "estimation_interval",
            self.estimation_interval,
            0.0,
            MAX_INTERVAL_S,
        )?;
        check_range("meter_interval", self.meter_interval, 0.0, MAX_INTERVAL_S)?;
        if self.estimation_interval * self.sample_rate < 2.0 {
            return Err(format!(
                "estimation_interval {} s holds fewer than 2 samples at {} samples/s",
                self.estimation_interval, self.sample_rate
            ));
        }
        if let Some(k) = self.link_speed {
            check_range("link_speed", k, 0.0, 10_000_000.0)?;
        }
        check_inclusive("alarm_trigger", self.alarm_trigger, 0.0, 100.0)?;
        check_range("cutoff", self.cutoff, 0.0, 100.0)?;
        Ok(())
    }

    /// Seconds between samples.
    pub fn sample_period_s(&self) -> f64 {
        1.0 / self.sample_rate
    }

    /// The cutoff as a fraction.
    pub fn cutoff_fraction(&self) -> f64 {
        self.cutoff / 100.0
    }
}

/// An interface name as the kernel allows it (at most 15 bytes, no `/`,
/// no whitespace, not `.` or `..`).
pub fn check_interface(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.chars().any(char::is_whitespace)
    {
        return Err(format!("interface: `{name}` is not an interface name"));
    }
    Ok(())
}

/// `low < value ≤ high`, finite.
fn check_range(name: &str, value: f64, low: f64, high: f64) -> Result<(), String> {
    if value.is_finite() && value > low && value <= high {
        Ok(())
    } else {
        Err(format!(
            "{name}: {value} is out of range ({low} < {name} ≤ {high})"
        ))
    }
}

/// `low ≤ value ≤ high`, finite.
fn check_inclusive(name: &str, value: f64, low: f64, high: f64) -> Result<(), String> {
    if value.is_finite() && value >= low && value <= high {
        Ok(())
    } else {
        Err(format!(
            "{name}: {value} is out of range ({low} ≤ {name} ≤ {high})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals_and_valid() {
        let s = Settings::default();
        assert_eq!(
            (s.sample_rate, s.estimation_interval, s.meter_interval),
            (1000.0, 10.0, 30.0)
        );
        assert_eq!((s.alarm_trigger, s.cutoff), (95.0, 99.0));
        s.validate().expect("defaults are valid");
    }

    #[test]
    fn each_bad_value_is_named() {
        let bad = |f: fn(&mut Settings)| {
            let mut s = Settings::default();
            f(&mut s);
            s.validate().expect_err("invalid")
        };
        assert!(bad(|s| s.sample_rate = 0.0).starts_with("sample_rate"));
        assert!(bad(|s| s.sample_rate = f64::NAN).starts_with("sample_rate"));
        assert!(bad(|s| s.estimation_interval = -1.0).starts_with("estimation_interval"));
        assert!(bad(|s| s.meter_interval = 1e9).starts_with("meter_interval"));
        assert!(bad(|s| s.link_speed = Some(0.0)).starts_with("link_speed"));
        assert!(bad(|s| s.alarm_trigger = 101.0).starts_with("alarm_trigger"));
        assert!(bad(|s| s.cutoff = 0.0).starts_with("cutoff"));
        assert!(bad(|s| s.interface = "a/b".into()).starts_with("interface"));
        assert!(bad(|s| {
            s.sample_rate = 1.0;
            s.estimation_interval = 1.0
        })
        .contains("fewer than 2 samples"));
    }
}
