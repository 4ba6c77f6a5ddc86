//! `weir`, the one binary: parses the command line and hands each
//! subcommand to the crate that does its work. No logic lives here.

mod agent_cmd;
mod embedded_agent;
mod logging;
mod perfd_cmd;
mod plot_cmd;
mod probe_cmd;
mod query_cmd;
mod ratemon_cmd;
mod relay_cmd;
mod server_cmd;
mod token_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use logging::init_logging;

/// Network-performance telemetry: collect measurements from many vantage
/// points, keep every raw measurement, answer questions about their
/// distributions.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: InfluxDB-compatible writes, storage, SQL queries, tokens.
    Server(server_cmd::ServerArgs),
    /// Collect host and network measurements and deliver them, spooled on disk.
    Agent(agent_cmd::AgentArgs),
    /// Monitor an interface's rate and the risk of overload; `ratemon ctl` controls it.
    Ratemon(Box<ratemon_cmd::RatemonArgs>),
    /// Measure downloads and echo round trips, OnionPerf style; `probe once` measures once.
    Probe(Box<probe_cmd::ProbeArgs>),
    /// Serve the targets that `weir probe` measures, with fault knobs.
    Perfd(perfd_cmd::PerfdArgs),
    /// A SOCKS5 and HTTP CONNECT relay that meters every connection and reports it to a server.
    Relay(Box<relay_cmd::RelayArgs>),
    /// Ask a SQL question of a data directory or a server.
    Query(query_cmd::QueryArgs),
    /// Draw a CDF, quantile bands or the failure rainbow from a server as SVG.
    Plot(Box<plot_cmd::PlotArgs>),
    /// Create and manage access tokens.
    Token(token_cmd::TokenArgs),
    /// The first run: server, local agent, rate monitor, relay, perfd and self-probes in one process,
    /// printing URL and admin token.
    Up(server_cmd::UpArgs),
}

impl Command {
    /// The subcommand's name as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Server(_) => "server",
            Command::Agent(_) => "agent",
            Command::Ratemon(_) => "ratemon",
            Command::Probe(_) => "probe",
            Command::Perfd(_) => "perfd",
            Command::Relay(_) => "relay",
            Command::Query(_) => "query",
            Command::Plot(_) => "plot",
            Command::Token(_) => "token",
            Command::Up(_) => "up",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let name = cli.command.name();
    // The agent sets its level from its configuration file, ratemon from
    // -l, probe by what it runs.
    if !matches!(
        cli.command,
        Command::Agent(_) | Command::Ratemon(_) | Command::Probe(_)
    ) {
        init_logging("warn");
    }
    let result = match cli.command {
        Command::Server(args) => server_cmd::run(args),
        Command::Query(args) => query_cmd::run(args),
        Command::Token(args) => token_cmd::run(args),
        Command::Up(args) => server_cmd::up(args),
        Command::Agent(args) => agent_cmd::run(args),
        Command::Ratemon(args) => ratemon_cmd::run(*args),
        Command::Probe(args) => probe_cmd::run(*args),
        Command::Perfd(args) => perfd_cmd::run(args),
        Command::Plot(args) => plot_cmd::run(*args),
        Command::Relay(args) => relay_cmd::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
