//! The agent's main loop: tasks gathering the inputs on their interval
//! (rounded to the wall clock, as Telegraf does; one task for all the
//! inputs that never wait and share an interval, one for each other
//! input), the listener inputs, and one delivery task per output draining
//! its spool.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lineproto::Line;
use rand::Rng;
use tokio::sync::{watch, Notify};

use crate::config::{AgentConfig, ConfigError, InputCommon, PluginSpec};
use crate::input::{Accumulator, Input, InputError};
use crate::inputs::{self, BuildContext};
use crate::listener::Listener;
use crate::outputs::deliver::{deliver, DeliverySettings, OutputStats};
use crate::outputs::{self, Output, OutputContext};
use crate::processors::{Globs, InputModifiers, Pipeline};
use crate::router::{InputStats, OutputSlot, Router};
use crate::spool::{Spool, SpoolError};
use crate::timer::Timer;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An output's spool could not be opened.
    #[error("spool of output {output}: {source}")]
    Spool {
        /// The output.
        output: String,
        /// What went wrong.
        #[source]
        source: SpoolError,
    },
}

/// Nanoseconds since the Unix epoch, now.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// One periodic input with what the runtime keeps about it.
#[derive(Debug)]
struct InputTask {
    name: String,
    input: Box<dyn Input>,
    modifiers: InputModifiers,
    interval: Duration,
    stats: Arc<InputStats>,
}

/// One output with its delivery settings.
#[derive(Debug)]
struct OutputTask {
    name: String,
    output: Box<dyn Output>,
    settings: DeliverySettings,
    stats: Arc<OutputStats>,
    spool: Arc<Spool>,
    wake: Arc<Notify>,
}

/// A configured agent, its spools open and its state directory locked.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    inputs: Vec<InputTask>,
    listeners: Vec<(PluginSpec<InputCommon>, Arc<InputStats>)>,
    outputs: Vec<OutputTask>,
    router: Arc<Router>,
}

/// The `host` tag's value: the configured name or this machine's.
fn hostname(config: &AgentConfig) -> Option<String> {
    if config.agent.omit_hostname {
        return None;
    }
    if !config.agent.hostname.is_empty() {
        return Some(config.agent.hostname.clone());
    }
    Some(
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    )
}

/// A spool directory name from an output's instance name.
fn spool_dir_name(spec: &PluginSpec<crate::config::OutputCommon>) -> String {
    spec.instance_name(spec.common.alias.as_deref())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Agent {
    /// Builds every plugin, checking the whole configuration, then opens
    /// (and locks) each output's spool under `state_dir/spool/`: two agents
    /// never share a spool.
    pub fn new(config: AgentConfig) -> Result<Agent, AgentError> {
        Agent::with_inputs(config, Vec::new())
    }

    /// [`Agent::new`] plus inputs built by the embedder, each with its
    /// instance name, gathered every `[agent] interval` like the rest (how
    /// `weir ratemon --server` keeps a handle on its monitor).
    pub fn with_inputs(
        config: AgentConfig,
        extra: Vec<(String, Box<dyn crate::input::Input>)>,
    ) -> Result<Agent, AgentError> {
        let ctx = BuildContext {
            host: config.agent.host_paths(),
        };
        let mut inputs = Vec::new();
        let mut listeners = Vec::new();
        for spec in &config.inputs {
            let stats = Arc::new(InputStats::default());
            if spec.name == "listener" {
                // Checked now so that a bad key fails at start, bound in run().
                spec.options::<crate::listener::ListenerOptions>()?;
                InputModifiers::new(spec)?;
                listeners.push((spec.clone(), stats));
                continue;
            }
            inputs.push(InputTask {
                name: spec.instance_name(spec.common.alias.as_deref()),
                input: inputs::build(spec, &ctx)?,
                modifiers: InputModifiers::new(spec)?,
                interval: spec.common.interval.unwrap_or(config.agent.interval),
                stats,
            });
        }
        for (name, input) in extra {
            inputs.push(InputTask {
                name,
                input,
                modifiers: InputModifiers::default(),
                interval: config.agent.interval,
                stats: Arc::new(InputStats::default()),
            });
        }
        let host = hostname(&config);
        let pipeline = Pipeline::new(&config.global_tags, host.as_deref(), &config.processors)?;
        let mut built = Vec::new();
        for spec in &config.outputs {
            built.push((spec, outputs::build(spec, &OutputContext::default())?));
        }
        if built.is_empty() {
            return Err(ConfigError::Plugin {
                plugin: "outputs".to_owned(),
                message: "no output is configured; add [[outputs.weir]] (or stdout, file …)"
                    .to_owned(),
            }
            .into());
        }
        // Every check before the first spool is created: a configuration
        // error leaves nothing behind in the state directory.
        let mut names = std::collections::BTreeSet::new();
        let mut checked = Vec::new();
        for (spec, output) in built {
            let name = spool_dir_name(spec);
            if !names.insert(name.clone()) {
                return Err(spec
                    .error(format!(
                        "another output is also named {name:?}; give one an `alias`"
                    ))
                    .into());
            }
            let globs = |p: &[String], what| Globs::new(p, what).map_err(|e| spec.error(e));
            let filters = (
                globs(&spec.common.namepass, "namepass")?,
                globs(&spec.common.namedrop, "namedrop")?,
            );
            checked.push((spec, output, name, filters));
        }
        let state = &config.agent.state_dir;
        let mut slots = Vec::new();
        let mut tasks = Vec::new();
        for (spec, output, name, (namepass, namedrop)) in checked {
            let limit = spec.common.spool_limit.unwrap_or(config.agent.spool_limit);
            let spool = Spool::open(&state.join("spool").join(&name), limit).map_err(|source| {
                AgentError::Spool {
                    output: name.clone(),
                    source,
                }
            })?;
            let spool = Arc::new(spool);
            let wake = Arc::new(Notify::new());
            let batch_size = spec
                .common
                .metric_batch_size
                .unwrap_or(config.agent.metric_batch_size)
                .max(1);
            slots.push(OutputSlot {
                name: name.clone(),
                namepass,
                namedrop,
                spool: Arc::clone(&spool),
                wake: Arc::clone(&wake),
                batch_size,
            });
            tasks.push(OutputTask {
                name,
                output,
                settings: DeliverySettings {
                    batch_size,
                    flush_interval: spec
                        .common
                        .flush_interval
                        .unwrap_or(config.agent.flush_interval),
                    flush_jitter: spec
                        .common
                        .flush_jitter
                        .unwrap_or(config.agent.flush_jitter),
                },
                stats: Arc::new(OutputStats::default()),
                spool,
                wake,
            });
        }
        let router = Arc::new(Router::new(pipeline, config.agent.precision, slots));
        // The agent's own counters, gathered like any input.
        let self_metrics =
            SelfMetrics {
                inputs: inputs
                    .iter()
                    .map(|t| (t.name.clone(), Arc::clone(&t.stats)))
                    .chain(listeners.iter().map(|(s, st)| {
                        (s.instance_name(s.common.alias.as_deref()), Arc::clone(st))
                    }))
                    .collect(),
                outputs: tasks
                    .iter()
                    .map(|t| (t.name.clone(), Arc::clone(&t.stats), Arc::clone(&t.spool)))
                    .collect(),
            };
        inputs.push(InputTask {
            name: "weir_agent".to_owned(),
            input: Box::new(self_metrics),
            modifiers: InputModifiers::default(),
            interval: config.agent.interval,
            stats: Arc::new(InputStats::default()),
        });
        Ok(Agent {
            config,
            inputs,
            listeners,
            outputs: tasks,
            router,
        })
    }

    /// Runs until `shutdown` turns true, then stops gathering, gives each
    /// output one last flush and returns; what is still spooled is sent
    /// after the next start. `on_ready` gets the listeners' HTTP addresses
    /// once they are bound.
    pub async fn run(
        self,
        shutdown: watch::Receiver<bool>,
        on_ready: impl FnOnce(Vec<std::net::SocketAddr>),
    ) -> Result<(), AgentError> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut addrs = Vec::new();
        for (spec, stats) in &self.listeners {
            let listener =
                Listener::bind(spec, Arc::clone(&self.router), Arc::clone(stats)).await?;
            addrs.extend(listener.http_addr());
            tasks.spawn(listener.run(shutdown.clone()));
        }
        for t in self.outputs {
            tasks.spawn(deliver(
                t.name,
                t.spool,
                t.output,
                t.settings,
                t.stats,
                t.wake,
                shutdown.clone(),
            ));
        }
        let agent = &self.config.agent;
        for group in schedule_groups(self.inputs, agent.collection_jitter.is_zero()) {
            let schedule = Schedule {
                interval: group[0].interval,
                round: agent.round_interval,
                jitter: agent.collection_jitter,
                offset: agent.collection_offset,
            };
            tasks.spawn(gather_loop(
                group,
                schedule,
                Arc::clone(&self.router),
                shutdown.clone(),
            ));
        }
        on_ready(addrs);
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!("an agent task failed: {e}");
            }
        }
        Ok(())
    }
}

/// When an input gathers.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    interval: Duration,
    round: bool,
    jitter: Duration,
    offset: Duration,
}

impl Schedule {
    /// The longest a tick can lie ahead of now while the clock is sane.
    fn span(&self) -> i64 {
        i64::try_from((self.interval + self.offset + self.jitter).as_nanos()).unwrap_or(i64::MAX)
    }

    /// The first tick strictly after `now` (Unix ns).
    fn next_after(&self, now: i64) -> i64 {
        let interval = i64::try_from(self.interval.as_nanos())
            .unwrap_or(i64::MAX)
            .max(1);
        let offset = i64::try_from(self.offset.as_nanos()).unwrap_or(0);
        if self.round {
            now.saturating_sub(offset)
                .div_euclid(interval)
                .saturating_add(1)
                .saturating_mul(interval)
                .saturating_add(offset)
        } else {
            now.saturating_add(interval)
        }
    }
}

/// Splits the inputs into the groups that gather together: inputs that
/// [never wait](Input::never_waits) and share an interval form one group
/// (unless each is to be jittered on its own); every other input is a
/// group of its own.
fn schedule_groups(inputs: Vec<InputTask>, may_share: bool) -> Vec<Vec<InputTask>> {
    let mut groups: Vec<Vec<InputTask>> = Vec::new();
    for task in inputs {
        let shares = may_share && task.input.never_waits();
        let joined = groups
            .iter_mut()
            .find(|g| shares && g[0].interval == task.interval && g[0].input.never_waits());
        match joined {
            Some(group) => group.push(task),
            None => groups.push(vec![task]),
        }
    }
    groups
}

/// Gathers one input and hands its metrics to the router; a panicking
/// input is reported and given back as `None`.
fn gather_one(mut task: InputTask, tick: i64, router: &Router) -> Option<InputTask> {
    let mut acc = Accumulator::new(tick);
    let gathered =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.input.gather(&mut acc)));
    let result = match gathered {
        Ok(result) => result,
        Err(_) => {
            tracing::error!("{}: the input panicked and is stopped", task.name);
            return None;
        }
    };
    if let Err(e) = result {
        task.stats.errors.fetch_add(1, Ordering::Relaxed);
        log_gather_error(&task.name, &e);
    }
    if let Err(e) = router.route(&task.modifiers, acc.into_metrics(), &task.stats, true) {
        task.stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!("{}: could not spool all its metrics: {e}", task.name);
    }
    Some(task)
}

/// Gathers a group's inputs one after the other; the inputs that did not
/// panic are given back.
fn gather_group(group: Vec<InputTask>, tick: i64, router: &Router) -> Vec<InputTask> {
    group
        .into_iter()
        .filter_map(|task| gather_one(task, tick, router))
        .collect()
}

async fn gather_loop(
    mut group: Vec<InputTask>,
    schedule: Schedule,
    router: Arc<Router>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = schedule.next_after(now_ns());
    let mut timer = Timer::new();
    while !group.is_empty() {
        let now = now_ns();
        // The wall clock stepped back (NTP at boot, a VM restored): start
        // again from now rather than sleep until the old schedule.
        if tick.saturating_sub(now) > schedule.span() {
            tick = schedule.next_after(now);
        }
        let wait = Duration::from_nanos(u64::try_from(tick - now).unwrap_or(0));
        let jitter = if schedule.jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::thread_rng().gen_range(Duration::ZERO..schedule.jitter)
        };
        tokio::select! {
            () = timer.sleep(wait + jitter) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        if group.iter().all(|t| t.input.never_waits()) {
            // Reads of /proc and /sys and a spool append to the page cache:
            // done here, as a trip to a blocking thread and back costs more
            // (two thread wake-ups) than a cheap input's gathering.
            group = gather_group(group, tick, &router);
        } else {
            let r = Arc::clone(&router);
            let gathered = tokio::task::spawn_blocking(move || gather_group(group, tick, &r));
            // An input stuck in the kernel (a hung NFS mount) does not hold
            // up shutdown: its thread is left behind.
            let joined = tokio::select! {
                joined = gathered => joined,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            group = match joined {
                Ok(group) => group,
                Err(e) => {
                    tracing::error!("gathering failed; its inputs are stopped: {e}");
                    return;
                }
            };
        }
        let now = now_ns();
        tick = schedule.next_after(tick);
        if tick <= now {
            let names: Vec<&str> = group.iter().map(|t| t.name.as_str()).collect();
            tracing::warn!(
                "{}: gathering took longer than the interval; skipping missed collections",
                names.join(", ")
            );
            tick = schedule.next_after(now);
        }
    }
}

fn log_gather_error(name: &str, e: &InputError) {
    tracing::warn!("{name}: {e}");
}

/// The `weir_agent` measurement: each input's and output's counters.
#[derive(Debug)]
struct SelfMetrics {
    inputs: Vec<(String, Arc<InputStats>)>,
    outputs: Vec<(String, Arc<OutputStats>, Arc<Spool>)>,
}

fn count(v: &std::sync::atomic::AtomicU64) -> i64 {
    i64::try_from(v.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
}

impl Input for SelfMetrics {
    fn never_waits(&self) -> bool {
        true
    }

    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        for (name, s) in &self.inputs {
            acc.add(
                Line::new("weir_agent")
                    .with_tag("input", name.clone())
                    .with_field("gathered", count(&s.gathered))
                    .with_field("errors", count(&s.errors))
                    .with_field("dropped", count(&s.dropped)),
            );
        }
        for (name, s, spool) in &self.outputs {
            let spooled = spool.stats();
            acc.add(
                Line::new("weir_agent")
                    .with_tag("output", name.clone())
                    .with_field("written", count(&s.written))
                    .with_field("dropped", count(&s.dropped))
                    .with_field("errors", count(&s.errors))
                    .with_field("retries", count(&s.retries))
                    .with_field(
                        "spool_bytes",
                        i64::try_from(spooled.bytes).unwrap_or(i64::MAX),
                    )
                    .with_field(
                        "spool_lines",
                        i64::try_from(spooled.lines).unwrap_or(i64::MAX),
                    ),
            );
        }
        Ok(())
    }
}

/// `weir agent --test`: gathers every periodic input twice, `wait` apart
/// (so that inputs reporting rates have a previous sample), runs the
/// processors and returns the second round as line protocol. Touches no
/// spool and sends nothing.
pub fn test_gather(config: &AgentConfig, wait: Duration) -> Result<Vec<u8>, AgentError> {
    let ctx = BuildContext {
        host: config.agent.host_paths(),
    };
    let mut inputs = Vec::new();
    for spec in config.inputs.iter().filter(|s| s.name != "listener") {
        inputs.push((
            spec.label(),
            inputs::build(spec, &ctx)?,
            InputModifiers::new(spec)?,
        ));
    }
    let host = hostname(config);
    let pipeline = Pipeline::new(&config.global_tags, host.as_deref(), &config.processors)?;
    let mut out = Vec::new();
    for round in 0..2 {
        if round == 1 {
            std::thread::sleep(wait);
        }
        let now = now_ns();
        for (name, input, modifiers) in &mut inputs {
            let mut acc = Accumulator::new(now);
            if let Err(e) = input.gather(&mut acc) {
                eprintln!("{name}: {e}");
            }
            if round == 0 {
                continue;
            }
            for m in acc.into_metrics() {
                if let Some(m) = modifiers.apply(m) {
                    // A metric that cannot be encoded is dropped, as in run().
                    let _ = pipeline.apply(m).encode(&mut out);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{schedule_groups, InputTask, Schedule};
    use crate::input::{Accumulator, Input, InputError};
    use crate::processors::InputModifiers;
    use std::sync::Arc;
    use std::time::Duration;

    #[derive(Debug)]
    struct Fake {
        never_waits: bool,
    }

    impl Input for Fake {
        fn gather(&mut self, _: &mut Accumulator) -> Result<(), InputError> {
            Ok(())
        }
        fn never_waits(&self) -> bool {
            self.never_waits
        }
    }

    fn task(name: &str, never_waits: bool, interval_s: u64) -> InputTask {
        InputTask {
            name: name.to_owned(),
            input: Box::new(Fake { never_waits }),
            modifiers: InputModifiers::default(),
            interval: Duration::from_secs(interval_s),
            stats: Arc::default(),
        }
    }

    fn names(groups: &[Vec<InputTask>]) -> Vec<Vec<&str>> {
        groups
            .iter()
            .map(|g| g.iter().map(|t| t.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn inputs_that_never_wait_gather_together_per_interval() {
        let inputs = || {
            vec![
                task("cpu", true, 10),
                task("disk", false, 10),
                task("mem", true, 10),
                task("net_response", false, 10),
                task("netstat", true, 60),
                task("nstat", true, 60),
            ]
        };
        assert_eq!(
            names(&schedule_groups(inputs(), true)),
            [
                vec!["cpu", "mem"],
                vec!["disk"],
                vec!["net_response"],
                vec!["netstat", "nstat"]
            ]
        );
        // With a collection jitter each input is jittered on its own.
        assert_eq!(schedule_groups(inputs(), false).len(), 6);
    }

    #[test]
    fn ticks_are_rounded_to_the_interval_and_offset() {
        let s = Schedule {
            interval: Duration::from_secs(10),
            round: true,
            jitter: Duration::ZERO,
            offset: Duration::from_secs(2),
        };
        assert_eq!(s.next_after(123_000_000_000), 132_000_000_000);
        assert_eq!(s.next_after(141_000_000_000), 142_000_000_000);
        assert_eq!(s.next_after(142_000_000_000), 152_000_000_000);
        let unrounded = Schedule { round: false, ..s };
        assert_eq!(unrounded.next_after(123_000_000_000), 133_000_000_000);
    }
}
