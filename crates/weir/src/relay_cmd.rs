//! `weir relay`: a SOCKS5 and HTTP CONNECT relay whose upstream
//! connections are metered; records and traffic snapshots go to a weir
//! server, the counters to `GET /metrics`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use meter::export::{ExportConfig, Exporter, RecordMode};
use meter::{Meter, MeterConfig, RecordConfig};
use relay::{Credentials, Relay, RelayConfig};

/// `weir relay`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// Address to listen on, for SOCKS5 and HTTP CONNECT alike; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:1080")]
    listen: SocketAddr,
    /// Post connection records and traffic snapshots to this weir server (or agent listener).
    #[arg(long, value_name = "URL", requires = "db")]
    server: Option<String>,
    /// Write token for --server.
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Database for --server.
    #[arg(long, value_name = "NAME", requires = "server")]
    db: Option<String>,
    /// A tag on every exported line, e.g. ingress_country=SE; repeatable.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Clients must log in with this username (SOCKS5: RFC 1929; HTTP: Proxy-Authorization: Basic).
    #[arg(long, requires = "password")]
    user: Option<String>,
    /// The password for --user.
    #[arg(long, requires = "user")]
    password: Option<String>,
    /// No metering at all: a plain relay.
    #[arg(long, conflicts_with_all = ["server", "metrics_listen", "aggregate", "sample"])]
    no_meter: bool,
    /// No per-connection records: post meter_aggregate rows per window of this length (e.g. 5m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "server")]
    aggregate: Option<Duration>,
    /// The share of connections that get a record, 0 to 1.
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio, requires = "server")]
    sample: Option<f64>,
    /// Serve GET /metrics (Prometheus text) on this address.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// How often records and snapshots are posted to --server.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    export_interval: Duration,
    /// From a client's connect to its complete request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    handshake_timeout: Duration,
    /// Resolving and connecting to a target.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// After SIGTERM/SIGINT, how long open connections may go on before they are cut.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
}

/// `KEY=VALUE`, both non-empty.
fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        }
        _ => Err("expected KEY=VALUE with a non-empty key and value".to_owned()),
    }
}

/// A share from 0 to 1.
fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a number from 0 to 1".to_owned()),
    }
}

/// Runs `weir relay` until SIGINT or SIGTERM.
pub(crate) fn run(args: RelayArgs) -> Result<()> {
    let credentials = match (args.user, args.password) {
        (Some(user), Some(password)) => Some(Credentials::new(user, password)?),
        _ => None,
    };
    let meter = (!args.no_meter).then(|| {
        Meter::new(MeterConfig {
            // Records only when something reads them.
            records: args.server.as_ref().map(|_| RecordConfig {
                sample: args.sample.unwrap_or(1.0),
                ..RecordConfig::default()
            }),
            ..MeterConfig::default()
        })
    });
    // The exporter is a thread of its own (with a blocking HTTP client).
    let exporter = match (&meter, &args.server, &args.db) {
        (Some(m), Some(url), Some(db)) => {
            let mut export = ExportConfig::new(url.as_str(), db.as_str());
            export.token.clone_from(&args.token);
            export.tags.clone_from(&args.tags);
            export.interval = args.export_interval;
            export.records = match args.aggregate {
                Some(window) => RecordMode::Aggregated(window),
                None => RecordMode::PerConnection,
            };
            let exporter = Exporter::spawn(m, m.records(), export)?;
            Some(exporter)
        }
        _ => None,
    };
    let mut config = RelayConfig::new(args.listen);
    config.credentials = credentials;
    config.handshake_timeout = args.handshake_timeout;
    config.connect_timeout = args.connect_timeout;
    config.drain_timeout = args.drain_timeout;
    config.meter.clone_from(&meter);
    // The exporter samples connection rates itself.
    if exporter.is_some() {
        config.sample_every = None;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("weir-relay")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let served = runtime.block_on(async {
        let shutdown = server::shutdown_signal()?;
        let relay = Relay::bind(config).await?;
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = match (args.metrics_listen, &meter) {
            (Some(addr), Some(m)) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("--metrics-listen {addr}"))?;
                println!(
                    "weir relay: metrics on http://{}/metrics",
                    listener.local_addr()?
                );
                let stopped = async {
                    let _ = metrics_stopped.await;
                };
                Some(tokio::spawn(relay::metrics::serve(
                    listener,
                    m.clone(),
                    stopped,
                )))
            }
            _ => None,
        };
        if let (Some(url), Some(db)) = (&args.server, &args.db) {
            println!(
                "weir relay: {} and traffic to {url} database {db} every {}",
                if args.aggregate.is_some() {
                    "meter_aggregate rows"
                } else {
                    "meter_connection records"
                },
                humantime::format_duration(args.export_interval)
            );
        }
        // Last, so that whoever waits for this line has everything.
        println!(
            "weir relay listening on {} (SOCKS5 and HTTP CONNECT{})",
            relay.local_addr(),
            if meter.is_none() {
                "; metering off"
            } else {
                ""
            }
        );
        relay.serve(shutdown).await;
        let _ = stop_metrics.send(());
        if let Some(task) = metrics {
            task.await
                .context("the metrics listener")?
                .context("the metrics listener")?;
        }
        anyhow::Ok(())
    });
    drop(runtime);
    // Every record is in the channel now: the last post carries them.
    if let Some(exporter) = exporter {
        let stats = exporter.shutdown();
        if stats.lines_dropped > 0 || stats.posts_failed > 0 {
            tracing::warn!(
                sent = stats.lines_sent,
                dropped = stats.lines_dropped,
                failed_posts = stats.posts_failed,
                "the meter export lost lines or had to retry"
            );
        }
    }
    served
}
