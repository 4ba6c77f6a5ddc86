//! `weir ratemon`: the interface rate monitor standalone, with the SICS
//! original's flags, and `weir ratemon ctl`, its control client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ratemon::{CounterMethod, RateMonitor, Settings, Sinks, DEFAULT_CONTROL_PORT};
use serde_json::{json, Map, Value};

use crate::embedded_agent::{default_spool_dir, toml_string};

/// `weir ratemon`'s arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct RatemonArgs {
    #[command(subcommand)]
    ctl: Option<RatemonCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum RatemonCommand {
    /// Talk to a running monitor's control port.
    Ctl(CtlArgs),
}

/// The monitor's flags: the original's short ones, plus weir's.
#[derive(Debug, Args)]
struct RunArgs {
    /// Interface to monitor.
    #[arg(short = 'i', long, default_value = "eth0")]
    interface: String,
    /// Samples per second.
    #[arg(short = 's', long, default_value_t = 1000.0)]
    sample_rate: f64,
    /// Seconds per estimation interval.
    #[arg(short = 'e', long, default_value_t = 10.0)]
    estimation_interval: f64,
    /// Seconds between records.
    #[arg(short = 'm', long, default_value_t = 30.0)]
    meter_interval: f64,
    /// Link speed in Mbit/s (default: /sys/class/net/IF/speed).
    #[arg(short = 'k', long)]
    link_speed: Option<f64>,
    /// Overload risk (percent) above which the alarm is raised.
    #[arg(short = 'a', long, default_value_t = 95.0)]
    alarm_trigger: f64,
    /// Share of the line rate (percent) that counts as overload.
    #[arg(short = 'o', long, default_value_t = 99.0)]
    cutoff: f64,
    /// Append each record as a JSON line to FILE.
    #[arg(short = 'f', long = "meter-file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Send each record as JSON plus newline to this TCP port (PORT or HOST:PORT; host 127.0.0.1).
    #[arg(short = 'b', long = "meter-port", value_name = "[HOST:]PORT")]
    port: Option<String>,
    /// Print records only (no file, port or server).
    #[arg(short = 'd', long, conflicts_with_all = ["file", "port", "server"])]
    debug: bool,
    /// Log (at debug level) to FILE; without FILE to ratemon_IF_TIME.log in this directory.
    #[arg(short = 'l', long = "log", value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    log: Option<PathBuf>,
    /// Write measurement `ratemon` to this weir server (spooled on disk).
    #[arg(long, requires_all = ["token", "db"])]
    server: Option<String>,
    /// Write token for --server.
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Database for --server.
    #[arg(long)]
    db: Option<String>,
    /// Where --server keeps records not yet delivered.
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Control port.
    #[arg(long, default_value_t = DEFAULT_CONTROL_PORT)]
    control_port: u16,
    /// Address the control port binds to.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    control_address: IpAddr,
    /// Run without a control port.
    #[arg(long)]
    no_control: bool,
    /// How to read the counters: netlink (RTM_GETSTATS) or sysfs.
    #[arg(long, default_value = "netlink")]
    counters: CounterMethod,
    /// Where sysfs is mounted.
    #[arg(long, default_value = "/sys", hide = true)]
    sys: PathBuf,
}

/// `weir ratemon ctl`'s arguments: the original's monconf.py.
#[derive(Debug, Args)]
struct CtlArgs {
    /// The monitor's host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The monitor's control port.
    #[arg(long, default_value_t = DEFAULT_CONTROL_PORT)]
    port: u16,
    /// Pause the monitor.
    #[arg(long)]
    pause: bool,
    /// Resume the monitor.
    #[arg(long)]
    resume: bool,
    /// Show the monitor's status.
    #[arg(long)]
    status: bool,
    /// Tell the monitor to exit (other options are ignored).
    #[arg(long)]
    exit: bool,
    /// Monitor another interface.
    #[arg(short = 'i', long)]
    interface: Option<String>,
    /// Samples per second.
    #[arg(short = 's', long)]
    sample_rate: Option<f64>,
    /// Estimation interval, seconds.
    #[arg(short = 'e', long)]
    estimation_interval: Option<f64>,
    /// Meter interval, seconds.
    #[arg(short = 'm', long)]
    meter_interval: Option<f64>,
    /// Link speed, Mbit/s.
    #[arg(short = 'k', long, conflicts_with = "driver_link_speed")]
    link_speed: Option<f64>,
    /// Go back to the driver's link speed (/sys/class/net/IF/speed).
    #[arg(long)]
    driver_link_speed: bool,
    /// Alarm trigger, percent.
    #[arg(short = 'a', long)]
    alarm_trigger: Option<f64>,
    /// Cutoff, percent of the line rate.
    #[arg(short = 'o', long)]
    cutoff: Option<f64>,
}

/// Runs `weir ratemon`.
pub(crate) fn run(args: RatemonArgs) -> Result<()> {
    match args.ctl {
        Some(RatemonCommand::Ctl(ctl)) => {
            crate::init_logging("warn");
            run_ctl(ctl)
        }
        None => run_monitor(args.run),
    }
}

fn run_monitor(args: RunArgs) -> Result<()> {
    init_logging(args.log.as_deref(), &args.interface)?;
    let settings = Settings {
        interface: args.interface.clone(),
        sample_rate: args.sample_rate,
        estimation_interval: args.estimation_interval,
        meter_interval: args.meter_interval,
        link_speed: args.link_speed,
        alarm_trigger: args.alarm_trigger,
        cutoff: args.cutoff,
    };
    settings.validate().map_err(anyhow::Error::msg)?;
    let port = args.port.as_deref().map(|p| {
        if p.contains(':') {
            p.to_owned()
        } else {
            format!("127.0.0.1:{p}")
        }
    });
    let sinks = Sinks {
        // Records on standard output when asked (-d) or when they go nowhere else.
        stdout: args.debug || (args.file.is_none() && port.is_none() && args.server.is_none()),
        file: args.file.clone(),
        tcp: port,
        forward: None,
    };
    let options = ratemon::Options {
        sys: args.sys.clone(),
        method: args.counters,
        control: (!args.no_control)
            .then_some(SocketAddr::new(args.control_address, args.control_port)),
        sinks,
    };
    match (&args.server, &args.token, &args.db) {
        (Some(url), Some(token), Some(db)) => {
            run_with_server(settings, options, url, token, db, &args)
        }
        _ => {
            let monitor = RateMonitor::start(settings, options)?;
            announce(&monitor, &args);
            let monitor = Arc::new(monitor);
            wait_for_exit_or_signal(&monitor)
        }
    }
}

/// One line on stderr (stdout may carry the records): what is sampled and
/// where the control port is.
fn announce(monitor: &RateMonitor, args: &RunArgs) {
    let control = monitor
        .control_addr()
        .map(|a| format!("; control port {a}"))
        .unwrap_or_else(|| "; no control port".to_owned());
    eprintln!(
        "weir ratemon: sampling {} {} times per second ({} counters){control}",
        args.interface,
        args.sample_rate,
        args.counters.name()
    );
}

/// Blocks until the monitor is told to exit or the process gets SIGINT or
/// SIGTERM; then stops the monitor so its last records are written.
fn wait_for_exit_or_signal(monitor: &Arc<RateMonitor>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    runtime.block_on(signal_or_exit(monitor))
}

/// Resolves on SIGINT or SIGTERM, or once the monitor was told to exit.
async fn signal_or_exit(monitor: &RateMonitor) -> Result<()> {
    let signal = server::shutdown_signal()?;
    tokio::pin!(signal);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = &mut signal => return Ok(()),
            _ = tick.tick() => if !monitor.is_running() { return Ok(()) },
        }
    }
}

/// `--server`: an in-process agent gathers the monitor's records every
/// meter interval and delivers them through its disk spool.
fn run_with_server(
    settings: Settings,
    options: ratemon::Options,
    url: &str,
    token: &str,
    db: &str,
    args: &RunArgs,
) -> Result<()> {
    let spool = match &args.spool_dir {
        Some(d) => d.clone(),
        None => default_spool_dir(&format!("ratemon-{}", args.interface)),
    };
    let interval = Duration::from_secs_f64(args.meter_interval.clamp(1.0, 3600.0));
    let text = format!(
        "[agent]\ninterval = {interval}\nflush_interval = {interval}\nstate_dir = {state}\nomit_hostname = false\n\
         [[outputs.weir]]\nurls = [{url}]\ndatabase = {db}\ntoken = {token}\n",
        interval = toml_string(&humantime::format_duration(interval).to_string()),
        state = toml_string(&spool.to_string_lossy()),
        url = toml_string(url),
        db = toml_string(db),
        token = toml_string(token),
    );
    let (input, monitor) = agent::inputs::ratemon::RatemonInput::start(settings, options)?;
    announce(&monitor, args);
    crate::embedded_agent::run(
        &text,
        "(weir ratemon --server)",
        vec![("ratemon".to_owned(), Box::new(input))],
        || async move { signal_or_exit(&monitor).await },
    )
}

/// Logging: with `-l` to a file at debug level (the original's log),
/// else to stderr at info; RUST_LOG overrides the level either way.
fn init_logging(log: Option<&Path>, interface: &str) -> Result<()> {
    let Some(path) = log else {
        crate::init_logging("info");
        return Ok(());
    };
    let path = if path.as_os_str().is_empty() {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        PathBuf::from(format!(
            "ratemon_{interface}_{}.log",
            now.trim_end_matches('Z').replace(':', ".")
        ))
    } else {
        path.to_owned()
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug")),
        )
        .init();
    Ok(())
}

fn run_ctl(args: CtlArgs) -> Result<()> {
    let mut request = Map::new();
    if args.exit {
        request.insert("exit".into(), json!(true));
    } else {
        let flags = [
            ("pause", args.pause),
            ("resume", args.resume),
            ("status", args.status),
        ];
        for (key, on) in flags {
            if on {
                request.insert(key.into(), json!(true));
            }
        }
        if let Some(i) = &args.interface {
            request.insert("interface".into(), json!(i));
        }
        if args.driver_link_speed {
            request.insert("link_speed".into(), Value::Null);
        }
        let numbers = [
            ("sample_rate", args.sample_rate),
            ("estimation_interval", args.estimation_interval),
            ("meter_interval", args.meter_interval),
            ("link_speed", args.link_speed),
            ("alarm_trigger", args.alarm_trigger),
            ("cutoff", args.cutoff),
        ];
        for (key, value) in numbers {
            if let Some(v) = value {
                request.insert(key.into(), json!(v));
            }
        }
        if request.is_empty() {
            request.insert("status".into(), json!(true));
        }
    }
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(args.host.as_str(), args.port))
        .with_context(|| format!("resolving {}", args.host))?
        .next()
        .with_context(|| format!("{} has no address", args.host))?;
    let answer =
        ratemon::control::request(target, &Value::Object(request), Duration::from_secs(10))
            .with_context(|| format!("asking the monitor at {target}"))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    if answer["ok"] != json!(true) {
        bail!(
            "{}",
            answer["error"]
                .as_str()
                .unwrap_or("the monitor refused the request")
        );
    }
    Ok(())
}
