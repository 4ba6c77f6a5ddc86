//! `weir probe`: active measurements on a schedule (`--config`), delivered
//! to a weir server through a disk spool or printed; `weir probe once`: one
//! measurement, its breakdown printed like `curl -w`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use probe::record::{self, Labels};
use probe::{DownloadResult, EchoPlan, EchoResult, ProbeConfig, Reach, Scheme, Socks5, Target};
use serde::Deserialize;

use crate::embedded_agent::{default_spool_dir, toml_string};

/// `weir probe`'s arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ProbeArgs {
    #[command(subcommand)]
    once: Option<ProbeCommand>,
    #[command(flatten)]
    schedule: ScheduleArgs,
}

#[derive(Debug, Subcommand)]
enum ProbeCommand {
    /// Measure once and print the timing breakdown (or one JSON object with --json).
    Once(OnceArgs),
}

/// The scheduled prober's flags.
#[derive(Debug, Args)]
struct ScheduleArgs {
    /// The schedule: a TOML file of probe tables (the keys of the agent's inputs.probe) and optional tags.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Deliver probe_http and probe_echo rows to this weir server (spooled on disk); else print them.
    #[arg(long, requires_all = ["token", "db"])]
    server: Option<String>,
    /// Write token for --server.
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Database for --server.
    #[arg(long)]
    db: Option<String>,
    /// Where --server keeps rows not yet delivered.
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Print rows as JSON lines instead of line protocol (without --server).
    #[arg(long, conflicts_with = "server")]
    json: bool,
}

/// `weir probe once`'s flags.
#[derive(Debug, Args)]
struct OnceArgs {
    /// What to measure: http(s)://… to download (or POST /echo with --echo), tcp://HOST:PORT to echo.
    url: String,
    /// Measure through this SOCKS5 proxy (HOST:PORT); names are resolved by the proxy.
    #[arg(long, value_name = "HOST:PORT")]
    socks5: Option<String>,
    /// SOCKS5 username.
    #[arg(long, requires_all = ["socks5", "socks5_password"])]
    socks5_user: Option<String>,
    /// SOCKS5 password.
    #[arg(long, requires = "socks5_user")]
    socks5_password: Option<String>,
    /// Trust the CAs of this PEM file for HTTPS instead of the bundled web roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Limit of the whole measurement.
    #[arg(long, default_value = "270s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The longest wait for any byte.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    stallout: Duration,
    /// Expected body length when the target does not announce one.
    #[arg(long, value_name = "BYTES")]
    size: Option<u64>,
    /// An echo round instead of a download (implied by tcp://).
    #[arg(long)]
    echo: bool,
    /// Echo pairs per round (at least 3).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(3..))]
    echo_count: u32,
    /// Bytes per echo request.
    #[arg(long, default_value_t = 64)]
    echo_size: usize,
    /// Measure this many times, one after the other.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// One JSON object per measurement, with the field names of probe_http (probe_echo: rtt_us list).
    #[arg(long)]
    json: bool,
}

/// Runs `weir probe`.
pub(crate) fn run(args: ProbeArgs) -> Result<()> {
    match args.once {
        Some(ProbeCommand::Once(once)) => run_once(once),
        None => run_schedule(args.schedule),
    }
}

/// The standalone schedule file: `[tags]` and `[[probe]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    /// Tags on every row; `vantage` defaults to the host's name.
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// One table per probe, with the keys of `[[inputs.probe]]`.
    #[serde(default)]
    probe: Vec<toml::Table>,
}

/// Reads and checks a schedule file into jobs.
fn load_schedule(path: &Path) -> Result<Vec<probe::Job>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: ScheduleFile =
        toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if file.probe.is_empty() {
        bail!("{}: no [[probe]] table", path.display());
    }
    let mut tags = file.tags;
    if !tags.contains_key("vantage") {
        if let Some(host) = crate::embedded_agent::host_name() {
            tags.insert("vantage".into(), host);
        }
    }
    let mut jobs = Vec::new();
    for (i, table) in file.probe.into_iter().enumerate() {
        let label = || format!("{}: [[probe]] #{}", path.display(), i + 1);
        let config: ProbeConfig = toml::Value::Table(table).try_into().with_context(label)?;
        let mut job = config
            .into_job()
            .map_err(anyhow::Error::msg)
            .with_context(label)?;
        job.labels
            .extra
            .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        jobs.push(job);
    }
    Ok(jobs)
}

fn run_schedule(args: ScheduleArgs) -> Result<()> {
    crate::init_logging("info");
    let Some(path) = &args.config else {
        bail!("give the schedule with --config FILE, or measure once with `weir probe once URL`");
    };
    let jobs = load_schedule(path)?;
    let count = jobs.len();
    let output = match (&args.server, &args.token, &args.db) {
        (Some(url), Some(token), Some(db)) => format!(
            "[[outputs.weir]]\nurls = [{}]\ndatabase = {}\ntoken = {}\n",
            toml_string(url),
            toml_string(db),
            toml_string(token)
        ),
        _ => format!(
            "[[outputs.file]]\nfiles = [\"stdout\"]\nnamepass = [\"probe_*\"]\ndata_format = \"{}\"\njson_timestamp_units = \"1ns\"\n",
            if args.json { "json" } else { "influx" }
        ),
    };
    let spool = args
        .spool_dir
        .clone()
        .unwrap_or_else(|| default_spool_dir("probe"));
    let text = format!(
        "[agent]\ninterval = \"2s\"\nflush_interval = \"2s\"\nstate_dir = {}\nomit_hostname = true\n{output}",
        toml_string(&spool.to_string_lossy()),
    );
    let input = agent::inputs::probe::ProbeInput::start(jobs).context("starting the prober")?;
    eprintln!(
        "weir probe: {count} probe(s) from {}; rows to {}",
        path.display(),
        args.server.as_deref().unwrap_or("standard output")
    );
    crate::embedded_agent::run(
        &text,
        "(weir probe)",
        vec![("probe".to_owned(), Box::new(input))],
        || async {
            server::shutdown_signal()?.await;
            Ok(())
        },
    )
}

fn run_once(args: OnceArgs) -> Result<()> {
    crate::init_logging("warn");
    let target = Target::parse(&args.url)?;
    let mut socks5 = args
        .socks5
        .as_deref()
        .map(Socks5::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if let (Some(p), Some(u), Some(pw)) = (&mut socks5, args.socks5_user, args.socks5_password) {
        p.credentials = Some((u, pw));
    }
    let labels = Labels {
        target: target.authority(),
        proxy: socks5.as_ref().map(Socks5::authority),
        extra: Vec::new(),
    };
    let reach = Reach {
        socks5,
        ca_file: args.ca_file,
        timeout: args.timeout,
        stallout: args.stallout,
    };
    let echo = args.echo || target.scheme == Scheme::Tcp;
    let plan = EchoPlan {
        count: args.echo_count,
        size: args.echo_size.max(probe::MIN_ECHO_SIZE),
        ..EchoPlan::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut failed = 0;
    for i in 0..args.count {
        if i > 0 && !args.json {
            println!();
        }
        if echo {
            let r = runtime.block_on(probe::echo(&target, &reach, plan));
            failed += usize::from(r.failure.is_some());
            if args.json {
                println!("{}", record::echo_json(&r, &labels));
            } else {
                print_echo(&r);
            }
        } else {
            let r = runtime.block_on(probe::download(&target, &reach, args.size));
            failed += usize::from(!r.ok());
            if args.json {
                println!("{}", record::download_json(&r, &labels));
            } else {
                print_download(&r, &labels);
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} measurement(s) failed", args.count);
    }
    Ok(())
}

/// Milliseconds with three decimals, or "-".
fn ms(us: Option<u64>) -> String {
    us.map_or_else(
        || "-".to_owned(),
        |us| format!("{:.3} ms", us as f64 / 1000.0),
    )
}

/// Bit rates in Mbit/s.
fn mbit(bps: Option<f64>) -> String {
    bps.map_or_else(|| "-".to_owned(), |b| format!("{:.1} Mbit/s", b / 1e6))
}

fn print_download(r: &DownloadResult, labels: &Labels) {
    let t = &r.times;
    let size = r.expected_size.unwrap_or(r.bytes_received);
    println!("url            {}", r.url);
    if let Some(p) = &labels.proxy {
        println!("proxy          socks5://{p}");
    }
    println!(
        "status         {}",
        r.status.map_or("-".into(), |s| s.to_string())
    );
    println!("dns            {}", ms(t.dns));
    println!("connect        {}", ms(t.connect));
    if labels.proxy.is_some() {
        println!("socks method   {}", ms(t.socks_method));
        println!("socks reply    {}", ms(t.socks_reply));
    }
    if t.tls.is_some() {
        println!("tls            {}", ms(t.tls));
    }
    println!("request sent   {}", ms(t.request_sent));
    println!(
        "header         {}   (request latency {})",
        ms(t.response_header),
        ms(t.request_latency_us())
    );
    println!(
        "first byte     {}   TTFB (server {})",
        ms(t.first_byte),
        ms(t.server_ttfb_us())
    );
    println!("50 KiB         {}", ms(t.ttlb_50k_us()));
    println!("1 MiB          {}", ms(t.ttlb_1m_us()));
    println!("last byte      {}   TTLB", ms(r.ttlb_us()));
    println!("received       {} of {} bytes", r.bytes_received, size);
    if r.ok() {
        println!(
            "throughput     last MiB {}, second half {}, 0.5-1 MiB {}",
            mbit(t.dl_last_mib_bps()),
            mbit(t.dl_second_half_bps(size)),
            mbit(t.dl_legacy_bps())
        );
    }
    match &r.failure {
        None => println!("result         ok"),
        Some(f) => println!(
            "result         {} in phase {}{}: {}",
            f.class,
            f.phase,
            if r.partial() { " (partial)" } else { "" },
            f.detail
        ),
    }
}

fn print_echo(r: &EchoResult) {
    println!("url            {} ({})", r.url, r.transport);
    println!("connect        {}", ms(r.times.connect));
    let mut rtts: Vec<u64> = r.samples.iter().filter_map(|s| s.rtt_us).collect();
    rtts.sort_unstable();
    println!("pairs          {} sent, {} lost", r.samples.len(), r.lost());
    if let (Some(min), Some(max)) = (rtts.first(), rtts.last()) {
        println!(
            "rtt            min {}  median {}  max {}",
            ms(Some(*min)),
            ms(Some(rtts[rtts.len() / 2])),
            ms(Some(*max))
        );
    }
    match &r.failure {
        None => println!("result         ok"),
        Some(f) => println!(
            "result         {} in phase {}: {}",
            f.class, f.phase, f.detail
        ),
    }
}
