//! `weir perfd`: the target `weir probe` measures.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use probe::perfd::{Faults, Perfd, PerfdConfig};

/// `weir perfd`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct PerfdArgs {
    /// Address of the HTTP listener (GET /bulk/BYTES, POST /echo).
    #[arg(long, default_value = "127.0.0.1:8480")]
    listen: SocketAddr,
    /// Address of the raw TCP echo listener.
    #[arg(long, default_value = "127.0.0.1:8481")]
    echo_listen: SocketAddr,
    /// Run without the TCP echo listener.
    #[arg(long)]
    no_echo: bool,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Every /bulk response: wait this many ms before the header.
    #[arg(long, value_name = "MS")]
    header_delay_ms: Option<u64>,
    /// Every /bulk response: wait this many ms between header and body.
    #[arg(long, value_name = "MS")]
    body_delay_ms: Option<u64>,
    /// Every /bulk response: send at most this many bytes per second.
    #[arg(long, value_name = "BYTES_PER_S")]
    rate: Option<u64>,
    /// Every /bulk response: stop sending after this many bytes, keep the connection.
    #[arg(long, value_name = "BYTES")]
    stall_after: Option<u64>,
    /// Every /bulk response: reset the connection after this many bytes.
    #[arg(long, value_name = "BYTES")]
    reset_after: Option<u64>,
    /// Every /bulk response: close the connection after this many bytes (a short body).
    #[arg(long, value_name = "BYTES")]
    close_after: Option<u64>,
    /// Every /bulk response: announce a wrong checksum.
    #[arg(long)]
    bad_checksum: bool,
    /// Every /bulk response: answer with this HTTP status.
    #[arg(long, value_name = "CODE")]
    status: Option<u16>,
}

/// Runs `weir perfd` until SIGINT or SIGTERM.
pub(crate) fn run(args: PerfdArgs) -> Result<()> {
    let config = PerfdConfig {
        listen: args.listen,
        echo_listen: (!args.no_echo).then_some(args.echo_listen),
        tls: args.tls_cert.zip(args.tls_key),
        faults: Faults {
            header_delay_ms: args.header_delay_ms,
            body_delay_ms: args.body_delay_ms,
            rate: args.rate,
            stall_after: args.stall_after,
            reset_after: args.reset_after,
            close_after: args.close_after,
            bad_checksum: args.bad_checksum.then_some(true),
            status: args.status,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("weir-perfd")
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let perfd = Perfd::bind(config).await?;
        let scheme = if perfd.is_tls() { "https" } else { "http" };
        let echo = perfd
            .echo_addr()
            .map(|a| format!("; tcp echo on {a}"))
            .unwrap_or_default();
        println!(
            "weir perfd: {scheme}://{}/bulk/BYTES and POST /echo{echo}",
            perfd.http_addr()
        );
        let shutdown = server::shutdown_signal()?;
        perfd.serve(shutdown).await;
        Ok(())
    })
}
