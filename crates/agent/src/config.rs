//! The agent's configuration: TOML in Telegraf's shape (`[agent]`,
//! `[global_tags]`, `[[inputs.NAME]]`, `[[processors.NAME]]`,
//! `[[outputs.NAME]]`). Every key the agent does not know is an error that
//! names it, so a typo never silently turns an option off.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::host::HostPaths;

/// A whole configuration file.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `[agent]`: intervals, batching, where state and the host's files live.
    pub agent: AgentSection,
    /// `[global_tags]`: added to every metric unless the metric has the tag.
    pub global_tags: BTreeMap<String, String>,
    /// `[[inputs.NAME]]`, in file order.
    pub inputs: Vec<PluginSpec<InputCommon>>,
    /// `[[processors.NAME]]`, in file order (sorted by `order` when given).
    pub processors: Vec<PluginSpec<ProcessorCommon>>,
    /// `[[outputs.NAME]]`, in file order.
    pub outputs: Vec<PluginSpec<OutputCommon>>,
}

/// `[agent]`. Telegraf's keys with Telegraf's defaults, plus weir's
/// `host_root`, `state_dir` and `spool_limit`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// How often inputs gather.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// Gather on multiples of `interval` (:00, :10, … for 10 s).
    pub round_interval: bool,
    /// Each input sleeps a random time up to this before gathering.
    #[serde(deserialize_with = "duration")]
    pub collection_jitter: Duration,
    /// Shifts each collection by this much after rounding.
    #[serde(deserialize_with = "duration")]
    pub collection_offset: Duration,
    /// How often outputs send what has accumulated.
    #[serde(deserialize_with = "duration")]
    pub flush_interval: Duration,
    /// Each flush waits a random time up to this.
    #[serde(deserialize_with = "duration")]
    pub flush_jitter: Duration,
    /// Timestamps are rounded to this (`"1s"`, `"1ms"`, …); zero keeps
    /// the collection's time as is.
    #[serde(deserialize_with = "duration")]
    pub precision: Duration,
    /// The most metrics an output sends in one request.
    pub metric_batch_size: usize,
    /// The `host` tag's value; empty means this machine's host name.
    pub hostname: String,
    /// Do not add a `host` tag.
    pub omit_hostname: bool,
    /// Where the host's `/proc`, `/sys` and mount points are found.
    pub host_root: PathBuf,
    /// Where the outputs' spools live.
    pub state_dir: PathBuf,
    /// The most bytes each output's spool holds; beyond it the oldest
    /// metrics are dropped (counted and logged).
    #[serde(deserialize_with = "byte_size")]
    pub spool_limit: u64,
    /// Log at debug level.
    pub debug: bool,
    /// Log errors only.
    pub quiet: bool,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            interval: Duration::from_secs(10),
            round_interval: true,
            collection_jitter: Duration::ZERO,
            collection_offset: Duration::ZERO,
            flush_interval: Duration::from_secs(10),
            flush_jitter: Duration::ZERO,
            precision: Duration::ZERO,
            metric_batch_size: 1000,
            hostname: String::new(),
            omit_hostname: false,
            host_root: PathBuf::from("/"),
            state_dir: PathBuf::from("./weir-agent"),
            spool_limit: 256 << 20,
            debug: false,
            quiet: false,
        }
    }
}

impl AgentSection {
    /// The host's file locations under `host_root`.
    pub fn host_paths(&self) -> HostPaths {
        HostPaths::under(&self.host_root)
    }
}

/// One `[[inputs.NAME]]`, `[[processors.NAME]]` or `[[outputs.NAME]]`
/// table: the keys every plugin of its kind has, and the rest, which the
/// plugin reads with [`PluginSpec::options`].
#[derive(Debug, Clone)]
pub struct PluginSpec<C> {
    /// The plugin's name, e.g. `cpu`.
    pub name: String,
    /// Which table of that name this is, from 0, for messages.
    pub index: usize,
    /// The keys every plugin of its kind accepts.
    pub common: C,
    /// The plugin's own keys, not yet checked.
    pub options: toml::Table,
    /// `inputs`, `processors` or `outputs`.
    pub section: &'static str,
}

impl<C> PluginSpec<C> {
    /// How messages name this table: `inputs.cpu` or `inputs.cpu[2]`.
    pub fn label(&self) -> String {
        if self.index == 0 {
            format!("{}.{}", self.section, self.name)
        } else {
            format!("{}.{}[{}]", self.section, self.name, self.index)
        }
    }

    /// The instance's name in self-metrics and spool directories: its
    /// `alias` if it has one, else `cpu` for the first table of a name and
    /// `cpu-2` for the third.
    pub fn instance_name(&self, alias: Option<&str>) -> String {
        match alias {
            Some(alias) => alias.to_owned(),
            None if self.index == 0 => self.name.clone(),
            None => format!("{}-{}", self.name, self.index),
        }
    }

    /// The plugin's own keys as `T`; unknown keys are errors naming the
    /// key and this table.
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(toml::Value::Table(self.options.clone())).map_err(|e| ConfigError::Plugin {
            plugin: self.label(),
            message: e.message().trim().to_owned(),
        })
    }

    /// An error about this table's value.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Plugin {
            plugin: self.label(),
            message: message.into(),
        }
    }
}

/// Keys every input accepts (Telegraf's common input options).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputCommon {
    /// Gather at this interval instead of the agent's.
    #[serde(deserialize_with = "optional_duration")]
    pub interval: Option<Duration>,
    /// A name for this instance in logs and self-metrics.
    pub alias: Option<String>,
    /// Replaces the measurement name.
    pub name_override: Option<String>,
    /// Prepended to the measurement name.
    pub name_prefix: Option<String>,
    /// Appended to the measurement name.
    pub name_suffix: Option<String>,
    /// Tags added to this input's metrics where the input did not set them
    /// (they win over global tags).
    pub tags: BTreeMap<String, String>,
    /// Keep only fields whose key matches one of these globs.
    pub fieldpass: Vec<String>,
    /// Drop fields whose key matches one of these globs.
    pub fielddrop: Vec<String>,
    /// Keep only tags whose key matches one of these globs.
    pub taginclude: Vec<String>,
    /// Drop tags whose key matches one of these globs.
    pub tagexclude: Vec<String>,
}

/// Keys every processor accepts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorCommon {
    /// Processors run in ascending `order`, then in file order.
    pub order: i64,
    /// A name for this instance in logs.
    pub alias: Option<String>,
    /// Apply only to measurements matching one of these globs.
    pub namepass: Vec<String>,
    /// Do not apply to measurements matching one of these globs.
    pub namedrop: Vec<String>,
}

/// Keys every output accepts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputCommon {
    /// A name for this instance in logs, self-metrics and its spool
    /// directory.
    pub alias: Option<String>,
    /// Send only measurements matching one of these globs.
    pub namepass: Vec<String>,
    /// Do not send measurements matching one of these globs.
    pub namedrop: Vec<String>,
    /// Overrides `[agent] metric_batch_size` for this output.
    pub metric_batch_size: Option<usize>,
    /// Overrides `[agent] flush_interval` for this output.
    #[serde(deserialize_with = "optional_duration")]
    pub flush_interval: Option<Duration>,
    /// Overrides `[agent] flush_jitter` for this output.
    #[serde(deserialize_with = "optional_duration")]
    pub flush_jitter: Option<Duration>,
    /// Overrides `[agent] spool_limit` for this output.
    #[serde(deserialize_with = "optional_byte_size")]
    pub spool_limit: Option<u64>,
}

/// Keys of [`InputCommon`], [`ProcessorCommon`] and [`OutputCommon`]: what
/// is split off a plugin table before the plugin sees the rest.
trait CommonKeys: DeserializeOwned {
    const KEYS: &'static [&'static str];
}
impl CommonKeys for InputCommon {
    const KEYS: &'static [&'static str] = &[
        "interval",
        "alias",
        "name_override",
        "name_prefix",
        "name_suffix",
        "tags",
        "fieldpass",
        "fielddrop",
        "taginclude",
        "tagexclude",
    ];
}
impl CommonKeys for ProcessorCommon {
    const KEYS: &'static [&'static str] = &["order", "alias", "namepass", "namedrop"];
}
impl CommonKeys for OutputCommon {
    const KEYS: &'static [&'static str] = &[
        "alias",
        "namepass",
        "namedrop",
        "metric_batch_size",
        "flush_interval",
        "flush_jitter",
        "spool_limit",
    ];
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or a top-level table is wrong; the
    /// message carries line and column.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A plugin's table is wrong.
    #[error("{plugin}: {message}")]
    Plugin {
        /// `inputs.cpu`, `outputs.weir[1]`, …
        plugin: String,
        /// What was wrong.
        message: String,
    },
}

/// The top level, before plugin tables are split.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    agent: AgentSection,
    #[serde(default)]
    global_tags: BTreeMap<String, String>,
    #[serde(default)]
    inputs: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    processors: BTreeMap<String, Vec<toml::Table>>,
    #[serde(default)]
    outputs: BTreeMap<String, Vec<toml::Table>>,
}

impl AgentConfig {
    /// Reads and checks a configuration file.
    pub fn from_file(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses a configuration; `path` only names it in messages. Plugin
    /// names are checked by the runtime when it builds the plugins; their
    /// own keys, by each plugin.
    ///
    /// ```
    /// let config = agent::AgentConfig::from_toml_str(
    ///     "[agent]\ninterval = \"5s\"\n[[inputs.cpu]]\npercpu = false\n[[outputs.stdout]]\n",
    ///     "agent.toml".as_ref(),
    /// )
    /// .unwrap();
    /// assert_eq!(config.agent.interval, std::time::Duration::from_secs(5));
    /// assert_eq!(config.inputs[0].name, "cpu");
    ///
    /// let err = agent::AgentConfig::from_toml_str("[agent]\nintervall = \"5s\"\n", "a.toml".as_ref())
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("unknown field `intervall`"), "{err}");
    /// ```
    pub fn from_toml_str(text: &str, path: &Path) -> Result<AgentConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            message: e.to_string().trim().to_owned(),
        })?;
        let mut processors: Vec<PluginSpec<ProcessorCommon>> = split(raw.processors, "processors")?;
        // Stable: equal orders keep file order.
        processors.sort_by_key(|p| p.common.order);
        let config = AgentConfig {
            agent: raw.agent,
            global_tags: raw.global_tags,
            inputs: split(raw.inputs, "inputs")?,
            processors,
            outputs: split(raw.outputs, "outputs")?,
        };
        config.check_durations(path)?;
        Ok(config)
    }

    /// Intervals must be positive and every duration at most a year, so
    /// that schedules neither spin nor overflow.
    fn check_durations(&self, path: &Path) -> Result<(), ConfigError> {
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        let bad = |what: &str, d: Duration, positive: bool| {
            (d > YEAR || (positive && d.is_zero())).then(|| {
                let need = if positive { "more than 0 and " } else { "" };
                format!(
                    "{what} = \"{}\": must be {need}at most a year",
                    humantime::format_duration(d)
                )
            })
        };
        let a = &self.agent;
        let problems = [
            bad("interval", a.interval, true),
            bad("flush_interval", a.flush_interval, true),
            bad("collection_jitter", a.collection_jitter, false),
            bad("collection_offset", a.collection_offset, false),
            bad("flush_jitter", a.flush_jitter, false),
            bad("precision", a.precision, false),
        ];
        if let Some(message) = problems.into_iter().flatten().next() {
            return Err(ConfigError::Toml {
                path: path.to_owned(),
                message: format!("[agent] {message}"),
            });
        }
        for spec in &self.inputs {
            if let Some(message) = spec.common.interval.and_then(|d| bad("interval", d, true)) {
                return Err(spec.error(message));
            }
        }
        for spec in &self.outputs {
            let c = &spec.common;
            let message = c
                .flush_interval
                .and_then(|d| bad("flush_interval", d, true))
                .or_else(|| c.flush_jitter.and_then(|d| bad("flush_jitter", d, false)));
            if let Some(message) = message {
                return Err(spec.error(message));
            }
        }
        Ok(())
    }
}

/// Splits each plugin table into its common keys and its own options.
fn split<C: CommonKeys>(
    plugins: BTreeMap<String, Vec<toml::Table>>,
    section: &'static str,
) -> Result<Vec<PluginSpec<C>>, ConfigError> {
    let mut specs = Vec::new();
    for (name, tables) in plugins {
        for (index, mut options) in tables.into_iter().enumerate() {
            let mut common = toml::Table::new();
            for key in C::KEYS {
                if let Some(v) = options.remove(*key) {
                    common.insert((*key).to_owned(), v);
                }
            }
            let label = if index == 0 {
                format!("{section}.{name}")
            } else {
                format!("{section}.{name}[{index}]")
            };
            let common =
                C::deserialize(toml::Value::Table(common)).map_err(|e| ConfigError::Plugin {
                    plugin: label,
                    message: e.message().trim().to_owned(),
                })?;
            specs.push(PluginSpec {
                name: name.clone(),
                index,
                common,
                options,
                section,
            });
        }
    }
    Ok(specs)
}

/// A duration as Telegraf writes them: `"10s"`, `"1m30s"`, `"500ms"`, or
/// a bare integer of seconds.
pub(crate) fn parse_duration(value: &toml::Value) -> Result<Duration, String> {
    match value {
        toml::Value::String(s) if s.is_empty() => Ok(Duration::ZERO),
        toml::Value::String(s) => {
            humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
        }
        toml::Value::Integer(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        other => Err(format!(
            "invalid duration {other}: expected a string like \"10s\" or whole seconds"
        )),
    }
}

/// A size: `"256MiB"`, `"64MB"`, `"1GiB"`, `"4096"`, or an integer of bytes.
pub(crate) fn parse_byte_size(value: &toml::Value) -> Result<u64, String> {
    match value {
        toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
        toml::Value::String(s) => {
            let t = s.trim();
            let split = t
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(t.len());
            let (number, unit) = t.split_at(split);
            let number: f64 = number.parse().map_err(|_| {
                format!("invalid size {s:?}: expected a number and a unit like \"256MiB\"")
            })?;
            let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
                "" | "b" => 1.0,
                "kb" => 1e3,
                "mb" => 1e6,
                "gb" => 1e9,
                "kib" | "k" => 1024.0,
                "mib" | "m" => 1024.0 * 1024.0,
                "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
                other => return Err(format!("invalid size {s:?}: unknown unit {other:?}")),
            };
            Ok((number * scale) as u64)
        }
        other => Err(format!(
            "invalid size {other}: expected a string like \"256MiB\" or bytes"
        )),
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = toml::Value::deserialize(d)?;
    parse_duration(&value).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let value = toml::Value::deserialize(d)?;
    parse_byte_size(&value).map_err(serde::de::Error::custom)
}

fn optional_byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    byte_size(d).map(Some)
}

/// Deserializes a duration field of a plugin's options (`timeout = "5s"`).
pub fn duration_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration(d)
}

/// Deserializes a size field of a plugin's options (`max_body_size = "32MiB"`).
pub fn byte_size_option<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    byte_size(d)
}
