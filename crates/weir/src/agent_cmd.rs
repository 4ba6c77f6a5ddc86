//! `weir agent`: reads a Telegraf-shaped configuration and runs the agent
//! until SIGTERM or SIGINT.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use agent::{Agent, AgentConfig, SAMPLE_CONFIG};
use anyhow::{Context, Result};

/// Collect host and network measurements and deliver them, spooled on disk.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// Configuration file, in Telegraf's TOML shape (see --sample-config).
    #[arg(long, value_name = "FILE", required_unless_present = "sample_config")]
    config: Option<PathBuf>,
    /// Print a commented example configuration and exit.
    #[arg(long)]
    sample_config: bool,
    /// Gather every input twice, a second apart, print the second round as
    /// line protocol and exit; nothing is spooled or sent.
    #[arg(long)]
    test: bool,
}

/// Log level from `[agent] debug / quiet`, unless RUST_LOG says otherwise.
fn init_logging(config: &AgentConfig) {
    let level = if config.agent.debug {
        "debug"
    } else if config.agent.quiet {
        "error"
    } else {
        "info"
    };
    crate::init_logging(level);
}

/// Runs `weir agent`.
pub(crate) fn run(args: AgentArgs) -> Result<()> {
    if args.sample_config {
        print!("{SAMPLE_CONFIG}");
        return Ok(());
    }
    let path = args.config.context("--config FILE is required")?;
    let config = AgentConfig::from_file(&path)?;
    init_logging(&config);
    if args.test {
        let out = agent::runtime::test_gather(&config, Duration::from_secs(1))?;
        std::io::stdout().write_all(&out)?;
        return Ok(());
    }
    let state_dir = config.agent.state_dir.clone();
    let agent = Agent::new(config)?;
    // Inputs that may wait (a mount point's statfs, network checks) and
    // the listener's decoding run on blocking threads: two are plenty, and
    // kept alive across intervals rather than re-created every 10 s.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .thread_keep_alive(Duration::from_secs(3600))
        .build()
        .context("starting the agent runtime")?;
    let result = runtime.block_on(async {
        let signal = server::shutdown_signal()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = stop.send(true);
        });
        agent
            .run(stopped, |addrs| {
                for addr in addrs {
                    println!("weir agent listening on http://{addr}");
                }
                println!(
                    "weir agent running; spools in {}",
                    state_dir.join("spool").display()
                );
            })
            .await?;
        Ok(())
    });
    // A gather stuck in the kernel (a hung NFS mount) is not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
