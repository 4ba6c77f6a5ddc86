//! `[[inputs.ratemon]]`: the interface rate monitor (crate `ratemon`) as an
//! agent input. The monitor samples on its own thread from the moment the
//! agent starts; each gather takes the records it finished since the last
//! one, each with its own timestamp, as measurement `ratemon`.
//!
//! ```toml
//! [[inputs.ratemon]]
//! interface = "eth0"
//! sample_rate = 1000          # samples per second
//! estimation_interval = 10    # seconds
//! meter_interval = 30         # seconds
//! # link_speed = 1000         # Mbit/s; default: /sys/class/net/IF/speed
//! alarm_trigger = 95          # percent
//! cutoff = 99                 # percent of the line rate
//! # counters = "netlink"      # or "sysfs" (the default under another host_root)
//! # control_port = 54736      # none unless set
//! # file = "/var/log/ratemon.jsonl"   # also append JSON lines here
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use ratemon::{CounterMethod, RateMonitor, Record, Settings, Sinks};
use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::input::{Accumulator, Input, InputError, Metric};
use crate::inputs::BuildContext;

/// The table's keys; the monitor's defaults where absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatemonConfig {
    interface: String,
    #[serde(default = "defaults::sample_rate")]
    sample_rate: f64,
    #[serde(default = "defaults::estimation_interval")]
    estimation_interval: f64,
    #[serde(default = "defaults::meter_interval")]
    meter_interval: f64,
    #[serde(default)]
    link_speed: Option<f64>,
    #[serde(default = "defaults::alarm_trigger")]
    alarm_trigger: f64,
    #[serde(default = "defaults::cutoff")]
    cutoff: f64,
    /// Default: netlink on this host, sysfs under another `host_root`.
    #[serde(default)]
    counters: Option<CounterMethod>,
    #[serde(default)]
    control_port: Option<u16>,
    #[serde(default)]
    control_address: Option<IpAddr>,
    #[serde(default)]
    file: Option<PathBuf>,
}

mod defaults {
    use ratemon::Settings;
    pub(super) fn sample_rate() -> f64 {
        Settings::default().sample_rate
    }
    pub(super) fn estimation_interval() -> f64 {
        Settings::default().estimation_interval
    }
    pub(super) fn meter_interval() -> f64 {
        Settings::default().meter_interval
    }
    pub(super) fn alarm_trigger() -> f64 {
        Settings::default().alarm_trigger
    }
    pub(super) fn cutoff() -> f64 {
        Settings::default().cutoff
    }
}

/// Records waiting for a gather: a meter interval of 1 s and an agent
/// interval of 10 min still fit.
const QUEUE: usize = 4096;

/// A running monitor and the records it hands over.
#[derive(Debug)]
pub struct RatemonInput {
    /// Keeps the monitor running as long as the input lives.
    _monitor: Arc<RateMonitor>,
    records: Receiver<Record>,
    stopped_reported: bool,
}

impl RatemonInput {
    /// Starts a monitor with `settings`, its records going to this input
    /// (and to `sinks`' other destinations). The returned handle lets the
    /// embedder watch whether the monitor was told to exit.
    pub fn start(
        settings: Settings,
        mut options: ratemon::Options,
    ) -> Result<(RatemonInput, Arc<RateMonitor>), ratemon::StartError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        options.sinks.forward = Some(tx);
        let monitor = Arc::new(RateMonitor::start(settings, options)?);
        Ok((
            RatemonInput {
                _monitor: Arc::clone(&monitor),
                records: rx,
                stopped_reported: false,
            },
            monitor,
        ))
    }
}

impl Input for RatemonInput {
    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        loop {
            match self.records.try_recv() {
                Ok(record) => acc.add(record_metric(&record)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if !self.stopped_reported {
                        self.stopped_reported = true;
                        return Err(InputError::Other(
                            "the rate monitor has stopped (told to exit on its control port)"
                                .into(),
                        ));
                    }
                    break;
                }
            }
        }
        Ok(())
    }
}

/// A record as a point of measurement `ratemon`, tagged with its
/// interface; unknown values (no line rate, an idle link's μ) are left out,
/// counts are integers, alarms booleans.
pub fn record_metric(r: &Record) -> Metric {
    let mut m = Metric::new("ratemon")
        .with_tag("interface", r.interface.clone())
        .with_timestamp(r.time_ns);
    let floats: [(&'static str, Option<f64>); 19] = [
        ("linerate", r.linerate),
        ("alarm_trigger_value", Some(r.alarm_trigger_value)),
        ("cutoff", Some(r.cutoff)),
        ("tx", Some(r.tx)),
        ("var_tx", Some(r.var_tx)),
        ("mu_tx", r.mu_tx),
        ("sigma2_tx", r.sigma2_tx),
        ("overload_risk_tx", r.overload_risk_tx),
        ("rx", Some(r.rx)),
        ("var_rx", Some(r.var_rx)),
        ("mu_rx", r.mu_rx),
        ("sigma2_rx", r.sigma2_rx),
        ("overload_risk_rx", r.overload_risk_rx),
        ("sample_rate", Some(r.sample_rate)),
        ("estimation_interval", Some(r.estimation_interval)),
        ("meter_interval", Some(r.meter_interval)),
        ("achieved_sample_rate", Some(r.achieved_sample_rate)),
        ("jitter_p50_us", Some(r.jitter_p50_us)),
        ("jitter_p99_us", Some(r.jitter_p99_us)),
    ];
    for (name, value) in floats {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            m = m.with_field(name, v);
        }
    }
    for (name, value) in [
        ("zero_delta_samples", r.zero_delta_samples),
        ("samples", r.samples),
        ("missed_samples", r.missed_samples),
        ("counter_resets", r.counter_resets),
    ] {
        m = m.with_field(name, i64::try_from(value).unwrap_or(i64::MAX));
    }
    for (name, value) in [("alarm_tx", r.alarm_tx), ("alarm_rx", r.alarm_rx)] {
        if let Some(v) = value {
            m = m.with_field(name, v);
        }
    }
    m
}

/// Builds the input from its table, starting the monitor.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let c: RatemonConfig = spec.options()?;
    let sys = ctx.host.sys_path("");
    let own_sys = sys == std::path::Path::new("/sys");
    // Netlink answers for this process's network namespace, which under a
    // container's host_root is not the host's that sysfs shows.
    let method = match c.counters {
        Some(CounterMethod::Netlink) if !own_sys => {
            return Err(spec.error(
                "counters = \"netlink\" reads this process's network namespace, not the one under host_root; use \"sysfs\"",
            ))
        }
        Some(m) => m,
        None if own_sys => CounterMethod::Netlink,
        None => CounterMethod::Sysfs,
    };
    let settings = Settings {
        interface: c.interface,
        sample_rate: c.sample_rate,
        estimation_interval: c.estimation_interval,
        meter_interval: c.meter_interval,
        link_speed: c.link_speed,
        alarm_trigger: c.alarm_trigger,
        cutoff: c.cutoff,
    };
    let options = ratemon::Options {
        sys,
        method,
        control: c.control_port.map(|port| {
            SocketAddr::new(
                c.control_address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port,
            )
        }),
        sinks: Sinks {
            file: c.file,
            ..Sinks::default()
        },
    };
    let (input, _) =
        RatemonInput::start(settings, options).map_err(|e| spec.error(e.to_string()))?;
    Ok(Box::new(input))
}
