//! An agent inside another subcommand (`weir ratemon --server`, `weir
//! probe`): its inputs built by the caller, delivery through the agent's
//! outputs and disk spool, stopped when the caller's condition resolves.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

/// How long the last flush may take once the caller stops.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs an agent built from `config_text` with `inputs` until `until`
/// resolves (then flushes for up to 10 s) or the agent fails.
pub(crate) fn run<F>(
    config_text: &str,
    origin: &str,
    inputs: Vec<(String, Box<dyn agent::Input>)>,
    until: impl FnOnce() -> F,
) -> Result<()>
where
    F: Future<Output = Result<()>>,
{
    let config = agent::AgentConfig::from_toml_str(config_text, Path::new(origin))?;
    let agent = agent::Agent::with_inputs(config, inputs)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .context("starting the delivery runtime")?;
    runtime.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut task = tokio::spawn(async move { agent.run(stopped, |_| {}).await });
        tokio::select! {
            result = until() => result?,
            result = &mut task => return result.context("the delivery task")?.map_err(anyhow::Error::from),
        }
        let _ = stop.send(true);
        match tokio::time::timeout(STOP_GRACE, task).await {
            Ok(result) => result.context("the delivery task")?.map_err(anyhow::Error::from),
            Err(_) => {
                tracing::warn!("delivery did not finish in time; the spool keeps what was not sent");
                Ok(())
            }
        }
    })
}

/// `$XDG_STATE_HOME/weir/NAME` (or `~/.local/state/weir/NAME`), else `./weir-NAME`.
pub(crate) fn default_spool_dir(name: &str) -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|base| base.join("weir").join(name))
        .unwrap_or_else(|| PathBuf::from(format!("weir-{name}")))
}

/// A TOML basic string.
pub(crate) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The kernel's host name: the default `vantage` of probes.
pub(crate) fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_owned()).filter(|n| !n.is_empty())
}
