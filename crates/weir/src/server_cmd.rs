//! `weir server` and `weir up`: settings from defaults, a TOML file and
//! flags, then the server until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use server::tokens::{Scope, Tokens, Verifier, ADMIN_TOKEN_FILE};
use server::{Server, ServerConfig};

use crate::embedded_agent::toml_string;

/// Run the server: InfluxDB-compatible writes, storage, SQL queries, tokens.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// TOML file with any of the settings below (same names, e.g.
    /// `data-dir = "/var/lib/weir"`); flags given here win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free one [default: 127.0.0.1:8086].
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Data directory: the store, tokens.json, admin.token [default: ./weir-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Accept requests without a token (local experiments only).
    #[arg(long)]
    no_auth: bool,
    /// Refuse writes to unknown databases (404) instead of creating them.
    #[arg(long)]
    no_auto_create: bool,
    /// Largest request body, before and after gzip [default: 33554432].
    #[arg(long, value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Stop queries running longer than this [default: 60].
    #[arg(long, value_name = "SECS")]
    query_timeout_secs: Option<u64>,
    /// Memory all running queries may reserve for sorts, aggregations and
    /// joins; 0 for no limit [default: 2147483648].
    #[arg(long, value_name = "BYTES")]
    query_memory_limit_bytes: Option<usize>,
    /// Time in-flight requests get after SIGTERM/SIGINT [default: 30].
    #[arg(long, value_name = "SECS")]
    shutdown_timeout_secs: Option<u64>,
}

impl ServerArgs {
    /// The settings: defaults, then the file, then the flags.
    fn config(&self) -> Result<ServerConfig> {
        let mut c = match &self.config {
            Some(path) => ServerConfig::from_toml_file(path)?,
            None => ServerConfig::default(),
        };
        if let Some(v) = &self.listen {
            c.listen.clone_from(v);
        }
        if let Some(v) = &self.data_dir {
            c.data_dir.clone_from(v);
        }
        c.no_auth |= self.no_auth;
        c.no_auto_create |= self.no_auto_create;
        if let Some(v) = self.max_body_bytes {
            c.max_body_bytes = v;
        }
        if let Some(v) = self.query_timeout_secs {
            c.query_timeout_secs = v;
        }
        if let Some(v) = self.query_memory_limit_bytes {
            c.query_memory_limit_bytes = v;
        }
        if let Some(v) = self.shutdown_timeout_secs {
            c.shutdown_timeout_secs = v;
        }
        Ok(c)
    }
}

/// `weir up`: the server with defaults, for a first run.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Address to listen on [default: 127.0.0.1:8086].
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Data directory [default: ./weir-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Do not run the local agent (host inputs into database `telemetry`).
    #[arg(long)]
    no_agent: bool,
    /// Do not run the local perfd and the agent's self-probes against it.
    #[arg(long)]
    no_probe: bool,
    /// Do not run the local relay (the self-probe's download then goes direct).
    #[arg(long)]
    no_relay: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("weir-http")
        .build()
        .context("starting the server runtime")
}

/// Runs `weir server`.
pub(crate) fn run(args: ServerArgs) -> Result<()> {
    let config = args.config()?;
    runtime()?.block_on(async {
        let shutdown = server::shutdown_signal()?;
        let server = Server::bind(config).await?;
        if let Some(token) = server.new_admin_token() {
            println!(
                "admin token: {token} (shown only now; also in {})",
                server.config().data_dir.join(ADMIN_TOKEN_FILE).display()
            );
        }
        // Last, so that whoever waits for this line has everything.
        println!("weir server listening on {}", server.url());
        server.run(shutdown).await?;
        Ok(())
    })
}

/// Runs `weir up`.
pub(crate) fn up(args: UpArgs) -> Result<()> {
    let mut config = ServerConfig::default();
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    runtime()?.block_on(async {
        let shutdown = server::shutdown_signal()?;
        let server = Server::bind(config).await?;
        let url = server.url();
        let dir = &server.config().data_dir;
        println!("weir is up: {url} (data in {})", dir.display());
        let token_file = dir.join(ADMIN_TOKEN_FILE);
        match server.new_admin_token().map(str::to_owned).or_else(|| saved_token(&token_file)) {
            Some(token) => {
                println!("admin token: {token} (in {})", token_file.display());
                println!("write: curl -H \"Authorization: Token {token}\" --data-binary 'ping,dst=example rtt=12.5' '{url}/write?db=net'");
                println!("query: weir query --url {url} --token {token} --db net 'SELECT * FROM ping'");
                println!("dashboard: {url}/ (log in with the admin token)");
            }
            None => println!(
                "admin token: not in {}; make one with: weir token create --data-dir {} --all-databases --admin",
                token_file.display(),
                dir.display()
            ),
        }
        // The local agent's write token, which the relay's exporter uses too.
        let token = if args.no_agent && args.no_relay {
            String::new()
        } else {
            agent_token(dir)?
        };
        let relay = if args.no_relay {
            None
        } else {
            Some(LocalRelay::start(&url, &token).await?)
        };
        if let Some(r) = &relay {
            println!(
                "relay: SOCKS5 and HTTP CONNECT on {addr}, every connection metered into database {UP_DATABASE} (meter_connection, meter_traffic; tag relay=local); try: curl --socks5-hostname {addr} https://example.org/",
                addr = r.addr
            );
        }
        let (stop_agent, agent_stopped) = tokio::sync::watch::channel(false);
        let mut agent_task = None;
        if !args.no_agent {
            let perfd = if args.no_probe { None } else { Some(local_perfd().await?) };
            let socks5 = relay.as_ref().map(|r| r.addr);
            let agent = local_agent(dir, &url, &token, perfd, socks5)?;
            if let Some((http, _)) = perfd {
                println!(
                    "probes: a 5 MiB download{} and a 20-pair echo round against the local perfd (http://{http}) every {UP_PROBE_EVERY}, measurements probe_http and probe_echo",
                    if socks5.is_some() { " through the relay" } else { "" }
                );
            }
            agent_task = Some(tokio::spawn(async move { agent.run(agent_stopped, |_| {}).await }));
            println!(
                "agent: host measurements every 10 s (and the default route's interface rate every 30 s, measurement ratemon) into database {UP_DATABASE}; try: weir query --url {url} --token <admin token> --db {UP_DATABASE} \"SELECT * FROM last_rows('cpu')\""
            );
        }
        println!("stop with Ctrl-C");
        let server_shutdown = async move {
            shutdown.await;
            // The agent first, so that its last flush reaches a server that
            // still serves.
            let _ = stop_agent.send(true);
            if let Some(task) = agent_task {
                match tokio::time::timeout(AGENT_STOP_GRACE, task).await {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(e))) => tracing::error!("the local agent failed: {e}"),
                    Ok(Err(e)) => tracing::error!("the local agent failed: {e}"),
                    Err(_) => tracing::warn!(
                        "the local agent did not stop in time; its spool keeps what it had not sent"
                    ),
                }
            }
            // Then the relay, whose last records go to the server too.
            if let Some(r) = relay {
                r.stop().await;
            }
        };
        server.run(server_shutdown).await?;
        Ok(())
    })
}

/// How long `weir up` waits for its agent's last flush before stopping the
/// server.
const AGENT_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The database `weir up`'s local agent writes to.
const UP_DATABASE: &str = "telemetry";

/// The file holding the local agent's write token.
const AGENT_TOKEN_FILE: &str = "agent.token";

/// `weir up`'s agent: the default host inputs, every 10 s, into the local
/// server with a write token of its own (kept in `<data-dir>/agent.token`),
/// spooled under `<data-dir>/agent`.
fn local_agent(
    data_dir: &Path,
    url: &str,
    token: &str,
    perfd: Option<(SocketAddr, SocketAddr)>,
    socks5: Option<SocketAddr>,
) -> Result<agent::Agent> {
    let state_dir = data_dir.join("agent");
    let text = format!(
        r#"
[agent]
interval = "10s"
flush_interval = "10s"
state_dir = {state_dir}
[[outputs.weir]]
urls = [{url}]
database = "{UP_DATABASE}"
token = {token}
[[inputs.cpu]]
[[inputs.mem]]
[[inputs.swap]]
[[inputs.system]]
[[inputs.kernel]]
[[inputs.processes]]
[[inputs.disk]]
[[inputs.diskio]]
[[inputs.net]]
[[inputs.netstat]]
[[inputs.nstat]]
{ratemon}{probes}"#,
        state_dir = toml_string(&state_dir.to_string_lossy()),
        url = toml_string(url),
        token = toml_string(token),
        ratemon = default_route_interface()
            .and_then(|i| ratemon_table(&i))
            .unwrap_or_default(),
        probes = perfd
            .map(|(http, echo)| probe_tables(http, echo, socks5))
            .unwrap_or_default(),
    );
    let config = agent::AgentConfig::from_toml_str(&text, Path::new("(weir up)"))?;
    Ok(agent::Agent::new(config)?)
}

/// How often `weir up` probes its own perfd.
const UP_PROBE_EVERY: &str = "60s";

/// A perfd on ephemeral loopback ports (HTTP, TCP echo), served on the
/// current runtime until it ends.
async fn local_perfd() -> Result<(SocketAddr, SocketAddr)> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let perfd = probe::perfd::Perfd::bind(probe::perfd::PerfdConfig {
        listen: loopback,
        echo_listen: Some(loopback),
        tls: None,
        faults: probe::perfd::Faults::default(),
    })
    .await
    .context("starting the local perfd")?;
    let http = perfd.http_addr();
    let echo = perfd
        .echo_addr()
        .context("the local perfd has no echo port")?;
    tokio::spawn(perfd.serve(std::future::pending()));
    Ok((http, echo))
}

/// `weir up`'s self-probes: a 5 MiB download (through the local relay's
/// SOCKS5 when there is one) and an echo round against the local perfd,
/// the first a few seconds after start so that a newcomer sees rows within
/// the first minute.
fn probe_tables(http: SocketAddr, echo: SocketAddr, socks5: Option<SocketAddr>) -> String {
    let vantage = crate::embedded_agent::host_name().unwrap_or_else(|| "local".to_owned());
    let tags = format!("[inputs.probe.tags]\nvantage = {}\n", toml_string(&vantage));
    let proxy = socks5
        .map(|a| format!("socks5 = \"{a}\"\n"))
        .unwrap_or_default();
    format!(
        "[[inputs.probe]]\nurl = \"http://{http}/bulk/5242880\"\nname = \"local-perfd\"\nevery = \"{UP_PROBE_EVERY}\"\nstart_delay = \"3s\"\n{proxy}{tags}\
         [[inputs.probe]]\nurl = \"tcp://{echo}\"\nname = \"local-perfd\"\nevery = \"{UP_PROBE_EVERY}\"\nstart_delay = \"4s\"\n{tags}"
    )
}

/// How often `weir up`'s relay posts its records and snapshots.
const UP_RELAY_EXPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// `weir up`'s relay: on an ephemeral loopback port, metered, exporting to
/// the local server (database [`UP_DATABASE`], the local agent's token, tag
/// `relay=local`).
struct LocalRelay {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    exporter: meter::export::Exporter,
}

impl LocalRelay {
    async fn start(url: &str, token: &str) -> Result<LocalRelay> {
        let meter = meter::Meter::new(meter::MeterConfig::default());
        let mut export = meter::export::ExportConfig::new(url, UP_DATABASE);
        export.token = Some(token.to_owned());
        export.tags = vec![("relay".to_owned(), "local".to_owned())];
        export.interval = UP_RELAY_EXPORT_EVERY;
        let exporter = meter::export::Exporter::spawn(&meter, meter.records(), export)
            .context("starting the relay's exporter")?;
        let mut config = relay::RelayConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.meter = Some(meter);
        config.sample_every = None;
        let relay = relay::Relay::bind(config)
            .await
            .context("starting the local relay")?;
        let addr = relay.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(relay.serve(async {
            let _ = stopped.await;
        }));
        Ok(LocalRelay {
            addr,
            stop,
            task,
            exporter,
        })
    }

    /// Stops accepting, lets open connections end (or cuts them), then
    /// posts the last records.
    async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!("the local relay failed: {e}");
        }
        let exporter = self.exporter;
        if let Err(e) = tokio::task::spawn_blocking(move || exporter.shutdown()).await {
            tracing::error!("the local relay's exporter failed: {e}");
        }
    }
}

/// The interface of the IPv4 default route (the first in
/// `/proc/net/route`), which `weir up`'s rate monitor watches.
fn default_route_interface() -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    table.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let (iface, destination) = (cols.next()?, cols.next()?);
        (destination == "00000000").then(|| iface.to_owned())
    })
}

/// `weir up`'s rate monitor samples 100 times a second: a tenth of the
/// standalone default, and a tenth of its wake-ups (each costs tens of µs
/// of CPU in a virtual machine), which is plenty for a dashboard.
const UP_SAMPLE_RATE: u32 = 100;

/// `weir up`'s `[[inputs.ratemon]]` for `interface`, with the counter
/// method that works here (netlink, else sysfs); `None`, with a warning,
/// when neither does — the rest of `weir up` runs without it.
fn ratemon_table(interface: &str) -> Option<String> {
    let sys = Path::new("/sys");
    let method = [
        ratemon::CounterMethod::Netlink,
        ratemon::CounterMethod::Sysfs,
    ]
    .into_iter()
    .find(|&m| ratemon::counters::open(m, sys, interface).is_ok());
    let Some(method) = method else {
        tracing::warn!(
            "the counters of {interface} cannot be read; weir up runs without its rate monitor"
        );
        return None;
    };
    Some(format!(
        "[[inputs.ratemon]]\ninterface = {}\ncounters = \"{}\"\nsample_rate = {UP_SAMPLE_RATE}\n",
        toml_string(interface),
        method.name()
    ))
}

/// The local agent's token: the saved one while the server still accepts
/// it for writing, else a new write token for [`UP_DATABASE`], saved
/// with mode 0600.
fn agent_token(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(AGENT_TOKEN_FILE);
    let tokens = Tokens::new(data_dir);
    if let Some(saved) = saved_token(&path) {
        let verifier = Verifier::new(Tokens::new(data_dir));
        if verifier
            .verify(&saved)
            .is_some_and(|g| g.allows(Scope::Write, UP_DATABASE))
        {
            return Ok(saved);
        }
    }
    let new = tokens
        .create(Scope::Write, Some(UP_DATABASE), "weir up: local agent")
        .context("creating the local agent's token")?;
    write_private(&path, &new.secret)?;
    Ok(new.secret)
}

/// Writes `text` to a file only its owner may read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn saved_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}
