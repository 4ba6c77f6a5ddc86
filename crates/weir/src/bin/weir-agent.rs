//! `weir-agent`: `weir agent` alone, for the nodes that only collect.
//!
//! The same command as `weir agent`, linked without the server, the store
//! and the query engine.

#[path = "../agent_cmd.rs"]
mod agent_cmd;
#[path = "../logging.rs"]
mod logging;

use std::process::ExitCode;

use clap::Parser;

use logging::init_logging;

/// Collect host and network measurements and deliver them, spooled on disk.
#[derive(Debug, Parser)]
#[command(name = "weir-agent", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: agent_cmd::AgentArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match agent_cmd::run(cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
