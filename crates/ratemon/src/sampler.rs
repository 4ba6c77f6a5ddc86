//! The running monitor: a sampler thread on absolute monotonic deadlines,
//! a sink thread for the records, and the control port.
//!
//! The original slept a fixed time after each sample, so every sample's
//! own cost pushed the next one later and the rate drifted below nominal.
//! Here deadline k is `anchor + k·period` on `CLOCK_MONOTONIC`, slept to
//! with `clock_nanosleep(TIMER_ABSTIME)`; a late wake-up does not move the
//! schedule, and a deadline missed by a whole period is skipped (and
//! counted) rather than caught up in a burst.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::thread::ClockId;
use rustix::time::Timespec;
use serde_json::{json, Value};

use crate::control::{error_response, ControlRequest, ControlServer, Handler};
use crate::counters::{self, CounterMethod, CounterSource};
use crate::monitor::{CounterRefresh, Monitor};
use crate::record::Record;
use crate::settings::Settings;
use crate::sinks::Sinks;

/// How a monitor reads and where it answers, beyond its [`Settings`].
#[derive(Debug)]
pub struct Options {
    /// Where sysfs is mounted (`/sys`).
    pub sys: PathBuf,
    /// How counters are read.
    pub method: CounterMethod,
    /// The control port's address; `None` for no control port.
    pub control: Option<SocketAddr>,
    /// Where records go.
    pub sinks: Sinks,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sys: PathBuf::from("/sys"),
            method: CounterMethod::default(),
            control: None,
            sinks: Sinks::default(),
        }
    }
}

/// Why a monitor could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is out of range.
    #[error("{0}")]
    Settings(String),
    /// The interface's counters cannot be read.
    #[error("reading the counters of {interface}: {source}")]
    Counters {
        /// The interface.
        interface: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The records file cannot be opened.
    #[error("opening the records file: {0}")]
    Sink(#[source] std::io::Error),
    /// The control port cannot be bound.
    #[error("binding the control port {addr}: {source}")]
    Control {
        /// The address.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("starting a thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// What the sampler thread is told.
enum Command {
    Control(ControlRequest, Sender<Value>),
    Stop,
}

/// A running rate monitor. Dropping it stops it.
#[derive(Debug)]
pub struct RateMonitor {
    commands: Arc<ChannelHandler>,
    sampler: Option<JoinHandle<()>>,
    sink: Option<JoinHandle<()>>,
    control: Option<ControlServer>,
}

impl RateMonitor {
    /// Checks the settings, opens the counters and the sinks, binds the
    /// control port and starts sampling.
    pub fn start(settings: Settings, options: Options) -> Result<RateMonitor, StartError> {
        settings.validate().map_err(StartError::Settings)?;
        let source = counters::open(options.method, &options.sys, &settings.interface).map_err(
            |source| StartError::Counters {
                interface: settings.interface.clone(),
                source,
            },
        )?;
        let sinks = options.sinks.open().map_err(StartError::Sink)?;
        let (record_tx, record_rx) = mpsc::sync_channel::<Record>(1024);
        let sink = std::thread::Builder::new()
            .name("ratemon-sink".into())
            .spawn(move || sinks.run(record_rx))
            .map_err(StartError::Thread)?;
        let (command_tx, command_rx) = mpsc::channel();
        let state = Sampler::new(settings, options.sys, options.method, source, record_tx);
        let sampler = std::thread::Builder::new()
            .name("ratemon-sampler".into())
            .spawn(move || state.run(command_rx))
            .map_err(StartError::Thread)?;
        let commands = Arc::new(ChannelHandler {
            commands: command_tx,
        });
        let mut monitor = RateMonitor {
            commands: Arc::clone(&commands),
            sampler: Some(sampler),
            sink: Some(sink),
            control: None,
        };
        if let Some(addr) = options.control {
            monitor.control = Some(
                ControlServer::start(addr, commands)
                    .map_err(|source| StartError::Control { addr, source })?,
            );
        }
        Ok(monitor)
    }

    /// The control port's address, when there is one.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control.as_ref().map(ControlServer::local_addr)
    }

    /// Answers a control request in process, as the control port would.
    pub fn request(&self, request: ControlRequest) -> Value {
        self.commands.handle(request)
    }

    /// Whether the sampler still runs (an `exit` request ends it).
    pub fn is_running(&self) -> bool {
        self.sampler.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Waits until the sampler ends (an `exit` request), then closes the
    /// control port and lets the sinks write what is left.
    pub fn wait(mut self) {
        self.join();
    }

    /// Stops sampling and waits for the threads (as dropping it does).
    pub fn stop(self) {
        drop(self);
    }

    fn join(&mut self) {
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
        self.control = None;
        if let Some(t) = self.sink.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RateMonitor {
    fn drop(&mut self) {
        let _ = self.commands.commands.send(Command::Stop);
        self.join();
    }
}

/// How long a control request waits for the sampler's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The way to the sampler, for the control port and in-process requests.
#[derive(Debug)]
struct ChannelHandler {
    commands: Sender<Command>,
}

impl Handler for ChannelHandler {
    fn handle(&self, request: ControlRequest) -> Value {
        let (tx, rx) = mpsc::channel();
        if self.commands.send(Command::Control(request, tx)).is_err() {
            return error_response("the monitor has stopped");
        }
        rx.recv_timeout(ANSWER_TIMEOUT)
            .unwrap_or_else(|_| error_response("the monitor did not answer in time"))
    }
}

/// The sampler thread's state.
struct Sampler {
    sys: PathBuf,
    method: CounterMethod,
    source: Box<dyn CounterSource>,
    monitor: Monitor,
    linerate_note: Option<String>,
    records: mpsc::SyncSender<Record>,
    dropped_records: u64,
    paused: bool,
    started: std::time::Instant,
    last_record: Option<Record>,
    refresh: Option<CounterRefresh>,
    refresh_logged: std::collections::HashSet<String>,
}

/// Monotonic nanoseconds.
fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn sleep_until(deadline_ns: u64) {
    let ts = Timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as i64,
        tv_nsec: (deadline_ns % 1_000_000_000) as _,
    };
    // EINTR: sleep again to the same deadline; any other error (none is
    // expected for a valid time) gives up rather than spin.
    while let Err(rustix::io::Errno::INTR) =
        rustix::thread::clock_nanosleep_absolute(ClockId::Monotonic, &ts)
    {}
}

/// The line rate (bytes/s) for `settings`, or why there is none.
fn linerate(sys: &std::path::Path, settings: &Settings) -> (Option<f64>, Option<String>) {
    if let Some(k) = settings.link_speed {
        return (Some(k * 125_000.0), None);
    }
    match counters::link_speed_mbit(sys, &settings.interface) {
        Ok(mbit) => (Some(mbit * 125_000.0), None),
        Err(reason) => (
            None,
            Some(format!(
                "no line rate for {}: {reason}, and no link speed was given (-k); overload risk is not computed",
                settings.interface
            )),
        ),
    }
}

impl Sampler {
    fn new(
        settings: Settings,
        sys: PathBuf,
        method: CounterMethod,
        source: Box<dyn CounterSource>,
        records: mpsc::SyncSender<Record>,
    ) -> Sampler {
        let (rate, note) = linerate(&sys, &settings);
        if let Some(note) = &note {
            tracing::warn!("ratemon: {note}");
        }
        Sampler {
            monitor: Monitor::new(settings, rate, now_ns()),
            sys,
            method,
            source,
            linerate_note: note,
            records,
            dropped_records: 0,
            paused: false,
            started: std::time::Instant::now(),
            last_record: None,
            refresh: None,
            refresh_logged: std::collections::HashSet::new(),
        }
    }

    fn run(mut self, commands: Receiver<Command>) {
        // Wake-ups as close to the deadline as the kernel allows: the
        // default 50 µs of timer slack would be half the period at 10 kHz.
        let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1000));
        // Since when reads have failed, and when the counters were last reopened.
        let mut failing_since: Option<u64> = None;
        let mut last_reopen = 0u64;
        'restart: loop {
            let period_ns = self.monitor.settings().sample_period_s() * 1e9;
            let anchor = now_ns();
            let mut k: u64 = 0;
            self.monitor = Monitor::new(
                self.monitor.settings().clone(),
                self.monitor.linerate(),
                anchor,
            );
            loop {
                if self.paused {
                    match commands.recv_timeout(Duration::from_secs(1)) {
                        Ok(Command::Control(req, reply)) => {
                            if self.control(req, reply) == Flow::Exit {
                                return;
                            }
                            if !self.paused {
                                continue 'restart;
                            }
                        }
                        Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                    continue;
                }
                match commands.try_recv() {
                    Ok(Command::Control(req, reply)) => match self.control(req, reply) {
                        Flow::Exit => return,
                        Flow::Restart => continue 'restart,
                        Flow::Go => {}
                    },
                    Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => {}
                }
                k += 1;
                let deadline = anchor + (k as f64 * period_ns) as u64;
                sleep_until(deadline);
                let t = now_ns();
                let reading = self.source.read();
                // Skip deadlines already passed: no burst of catch-up samples.
                let behind = ((t - anchor) as f64 / period_ns) as u64;
                if behind > k {
                    self.monitor.missed(behind - k);
                    k = behind;
                }
                match reading {
                    Ok(c) => {
                        if failing_since.take().is_some() {
                            tracing::info!(
                                "ratemon: counters of {} readable again",
                                self.monitor.settings().interface
                            );
                        }
                        if let Some(record) =
                            self.monitor
                                .sample(t, t.saturating_sub(deadline), c, wall_ns)
                        {
                            self.emit(record);
                        }
                        if let Some(r) = self.monitor.take_refresh() {
                            self.report_refresh(r);
                        }
                    }
                    Err(e) => {
                        let since = *failing_since.get_or_insert_with(|| {
                            tracing::warn!(
                                "ratemon: reading the counters of {}: {e}; retrying",
                                self.monitor.settings().interface
                            );
                            t
                        });
                        // Failing for over a second: the interface may have been
                        // replaced, so reopen it (at most once a second). The
                        // intervals go on; the next reading starts a new delta.
                        if t - since > 1_000_000_000 && t - last_reopen > 1_000_000_000 {
                            last_reopen = t;
                            let s = self.monitor.settings();
                            if let Ok(source) = counters::open(self.method, &self.sys, &s.interface)
                            {
                                self.source = source;
                                self.monitor.forget_baseline();
                            }
                        }
                    }
                }
            }
        }
    }

    fn emit(&mut self, record: Record) {
        self.last_record = Some(record.clone());
        if self.records.try_send(record).is_err() {
            self.dropped_records += 1;
            tracing::warn!(
                "ratemon: the sink is behind; {} records dropped so far",
                self.dropped_records
            );
        }
    }

    fn report_refresh(&mut self, refresh: CounterRefresh) {
        self.refresh = Some(refresh);
        let s = self.monitor.settings();
        // Once per interface: a resume or a new rate probes again, quietly.
        if !self.refresh_logged.insert(s.interface.clone()) {
            return;
        }
        match refresh {
            CounterRefresh::Every(secs) => tracing::warn!(
                "ratemon: the counters of {} changed only about every {:.1} ms, never in consecutive samples — the driver refreshes them on a timer slower than the sample period of {:.3} ms (or the traffic is that regular); per-sample rates are then bursty and the variance overstated; sample at most {:.0} times per second",
                s.interface,
                secs * 1e3,
                s.sample_period_s() * 1e3,
                1.0 / secs
            ),
            CounterRefresh::Live => tracing::debug!("ratemon: the counters of {} are live", s.interface),
            CounterRefresh::Unknown => tracing::info!(
                "ratemon: too little traffic on {} in the first seconds to tell how often its driver refreshes the counters",
                s.interface
            ),
        }
    }

    /// Applies one request and answers it.
    fn control(&mut self, req: ControlRequest, reply: Sender<Value>) -> Flow {
        if req.exit {
            let _ = reply.send(json!({"ok": true, "exiting": true}));
            tracing::info!("ratemon: exiting on request");
            return Flow::Exit;
        }
        let mut flow = Flow::Go;
        if req.changes_settings() {
            match self.apply(&req) {
                Ok(f) => flow = f,
                Err(message) => {
                    let _ = reply.send(error_response(message));
                    return Flow::Go;
                }
            }
        }
        if req.pause && !self.paused {
            self.paused = true;
            tracing::info!("ratemon: paused");
        }
        if req.resume && self.paused {
            self.paused = false;
            tracing::info!("ratemon: resumed");
            flow = Flow::Restart;
        }
        let _ = reply.send(json!({"ok": true, "status": self.status()}));
        flow
    }

    /// Checks and applies new settings. Thresholds apply from the next
    /// estimate; a new interface, sample rate or interval restarts the
    /// sampling schedule and the intervals.
    fn apply(&mut self, req: &ControlRequest) -> Result<Flow, String> {
        let old = self.monitor.settings().clone();
        let mut new = old.clone();
        if let Some(i) = &req.interface {
            new.interface = i.clone();
        }
        if let Some(v) = req.sample_rate {
            new.sample_rate = v;
        }
        if let Some(v) = req.estimation_interval {
            new.estimation_interval = v;
        }
        if let Some(v) = req.meter_interval {
            new.meter_interval = v;
        }
        if let Some(v) = req.link_speed {
            new.link_speed = v;
        }
        if let Some(v) = req.alarm_trigger {
            new.alarm_trigger = v;
        }
        if let Some(v) = req.cutoff {
            new.cutoff = v;
        }
        new.validate()?;
        if new.interface != old.interface {
            self.source = counters::open(self.method, &self.sys, &new.interface)
                .map_err(|e| format!("interface: {e}"))?;
        }
        let (rate, note) = linerate(&self.sys, &new);
        if let Some(n) = &note {
            if self.linerate_note.as_ref() != Some(n) {
                tracing::warn!("ratemon: {n}");
            }
        }
        self.linerate_note = note;
        let restart = new.interface != old.interface
            || new.sample_rate != old.sample_rate
            || new.estimation_interval != old.estimation_interval
            || new.meter_interval != old.meter_interval;
        tracing::info!("ratemon: settings now {new:?}");
        if restart {
            self.monitor = Monitor::new(new, rate, now_ns());
            self.refresh = None;
            Ok(Flow::Restart)
        } else {
            self.monitor
                .set_thresholds(new.alarm_trigger, new.cutoff, new.link_speed, rate);
            Ok(Flow::Go)
        }
    }

    fn status(&self) -> Value {
        let s = self.monitor.settings();
        let refresh = match self.refresh {
            None => json!("measuring"),
            Some(CounterRefresh::Live) => json!("live"),
            Some(CounterRefresh::Unknown) => json!("unknown"),
            Some(CounterRefresh::Every(secs)) => json!(format!("every {:.1} ms", secs * 1e3)),
        };
        json!({
            "state": if self.paused { "paused" } else { "running" },
            "interface": s.interface,
            "sample_rate": s.sample_rate,
            "estimation_interval": s.estimation_interval,
            "meter_interval": s.meter_interval,
            "link_speed": s.link_speed,
            "linerate": self.monitor.linerate(),
            "linerate_missing": self.linerate_note,
            "alarm_trigger": s.alarm_trigger,
            "cutoff": s.cutoff,
            "counters": self.method.name(),
            "counter_refresh": refresh,
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "records_dropped": self.dropped_records,
            "last_record": self.last_record,
        })
    }
}

/// What the sampling loop does after a control request.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Go,
    Restart,
    Exit,
}
