//! What happens to a metric between its input and the outputs: the input's
//! own modifiers (`name_override`, `tags`, `fieldpass` …), the global tags
//! and the `host` tag, then the `[[processors.NAME]]` in order.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use glob::Pattern;
use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec, ProcessorCommon};
use crate::input::Metric;

/// A set of globs (`cpu*`, `usage_?`); empty matches nothing.
#[derive(Debug, Clone, Default)]
pub struct Globs(Vec<Pattern>);

impl Globs {
    /// Compiles `patterns`; `what` names the option in errors.
    pub fn new(patterns: &[String], what: &str) -> Result<Globs, String> {
        patterns
            .iter()
            .map(|p| Pattern::new(p).map_err(|e| format!("{what}: invalid glob {p:?}: {e}")))
            .collect::<Result<_, _>>()
            .map(Globs)
    }

    /// Whether any glob matches `s`.
    pub fn matches(&self, s: &str) -> bool {
        self.0.iter().any(|p| p.matches(s))
    }

    /// Whether there are no globs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The modifiers of one input: applied to its metrics before anything else.
#[derive(Debug, Clone, Default)]
pub struct InputModifiers {
    name_override: Option<String>,
    name_prefix: Option<String>,
    name_suffix: Option<String>,
    tags: Vec<(String, String)>,
    fieldpass: Globs,
    fielddrop: Globs,
    taginclude: Globs,
    tagexclude: Globs,
}

impl InputModifiers {
    /// The modifiers an input's table sets.
    pub fn new(spec: &PluginSpec<InputCommon>) -> Result<InputModifiers, ConfigError> {
        let c = &spec.common;
        let globs = |p: &[String], what| Globs::new(p, what).map_err(|e| spec.error(e));
        Ok(InputModifiers {
            name_override: c.name_override.clone(),
            name_prefix: c.name_prefix.clone(),
            name_suffix: c.name_suffix.clone(),
            tags: c.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            fieldpass: globs(&c.fieldpass, "fieldpass")?,
            fielddrop: globs(&c.fielddrop, "fielddrop")?,
            taginclude: globs(&c.taginclude, "taginclude")?,
            tagexclude: globs(&c.tagexclude, "tagexclude")?,
        })
    }

    /// Applies the modifiers; `None` when no field is left.
    pub fn apply(&self, mut m: Metric) -> Option<Metric> {
        if let Some(name) = &self.name_override {
            m.measurement = Cow::Owned(name.clone());
        }
        if self.name_prefix.is_some() || self.name_suffix.is_some() {
            let prefix = self.name_prefix.as_deref().unwrap_or("");
            let suffix = self.name_suffix.as_deref().unwrap_or("");
            m.measurement = Cow::Owned(format!("{prefix}{}{suffix}", m.measurement));
        }
        // As in Telegraf, the input's table tags never override a tag the
        // input itself set.
        for (k, v) in &self.tags {
            add_tag_if_missing(&mut m, k, v);
        }
        if !self.fieldpass.is_empty() {
            m.fields.retain(|(k, _)| self.fieldpass.matches(k));
        }
        if !self.fielddrop.is_empty() {
            m.fields.retain(|(k, _)| !self.fielddrop.matches(k));
        }
        if !self.taginclude.is_empty() {
            m.tags.retain(|(k, _)| self.taginclude.matches(k));
        }
        if !self.tagexclude.is_empty() {
            m.tags.retain(|(k, _)| !self.tagexclude.matches(k));
        }
        (!m.fields.is_empty()).then_some(m)
    }
}

/// Adds tag `key` unless the metric already has it.
fn add_tag_if_missing(m: &mut Metric, key: &str, value: &str) {
    if !m.tags.iter().any(|(k, _)| k == key) {
        m.tags
            .push((Cow::Owned(key.to_owned()), Cow::Owned(value.to_owned())));
    }
}

/// The processors every metric goes through after its input's modifiers:
/// global tags and `host` (an input's own tags win), then the configured
/// `[[processors.NAME]]` in order.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    global_tags: Vec<(String, String)>,
    steps: Vec<Step>,
}

/// One configured processor with its measurement filter.
#[derive(Debug, Clone)]
struct Step {
    namepass: Globs,
    namedrop: Globs,
    kind: StepKind,
}

#[derive(Debug, Clone)]
enum StepKind {
    Rename(Vec<Replace>),
    TagDrop(Globs),
    IpMask(IpMask),
}

/// The names of the processors, as in `[[processors.NAME]]`.
pub const NAMES: &[&str] = &["rename", "tag_drop", "ip_mask"];

/// `[[processors.rename]]`, as Telegraf's: a list of replacements.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameOptions {
    #[serde(default)]
    replace: Vec<Replace>,
}

/// One `[[processors.rename.replace]]`: exactly one of measurement, tag or
/// field, and `dest`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replace {
    measurement: Option<String>,
    tag: Option<String>,
    field: Option<String>,
    dest: String,
}

/// `[[processors.tag_drop]]`: removes tags whose key matches a glob.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagDropOptions {
    tags: Vec<String>,
}

/// `[[processors.ip_mask]]`: replaces addresses in the named tags by their
/// network, so raw addresses never leave the node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct IpMask {
    tags: Vec<String>,
    #[serde(default = "default_v4_prefix")]
    ipv4_prefix: u8,
    #[serde(default = "default_v6_prefix")]
    ipv6_prefix: u8,
}

fn default_v4_prefix() -> u8 {
    24
}

fn default_v6_prefix() -> u8 {
    48
}

impl Pipeline {
    /// The pipeline for the given global tags, `host` value (`None` when
    /// `omit_hostname`) and processor tables.
    pub fn new(
        global_tags: &BTreeMap<String, String>,
        host: Option<&str>,
        specs: &[PluginSpec<ProcessorCommon>],
    ) -> Result<Pipeline, ConfigError> {
        let mut tags: Vec<(String, String)> = global_tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(host) = host {
            if !global_tags.contains_key("host") {
                tags.push(("host".to_owned(), host.to_owned()));
            }
        }
        let mut steps = Vec::new();
        for spec in specs {
            let kind = match spec.name.as_str() {
                "rename" => {
                    let o: RenameOptions = spec.options()?;
                    for r in &o.replace {
                        let set = [&r.measurement, &r.tag, &r.field]
                            .iter()
                            .filter(|x| x.is_some())
                            .count();
                        if set != 1 {
                            return Err(spec.error(
                                "each replace needs exactly one of measurement, tag or field, and dest",
                            ));
                        }
                    }
                    StepKind::Rename(o.replace)
                }
                "tag_drop" => {
                    let o: TagDropOptions = spec.options()?;
                    StepKind::TagDrop(Globs::new(&o.tags, "tags").map_err(|e| spec.error(e))?)
                }
                "ip_mask" => {
                    let o: IpMask = spec.options()?;
                    if o.ipv4_prefix > 32 || o.ipv6_prefix > 128 {
                        return Err(spec.error("ipv4_prefix must be ≤ 32 and ipv6_prefix ≤ 128"));
                    }
                    StepKind::IpMask(o)
                }
                other => {
                    return Err(spec.error(format!(
                        "unknown processor `{other}`; known processors: {}",
                        NAMES.join(", ")
                    )))
                }
            };
            let globs = |p: &[String], what| Globs::new(p, what).map_err(|e| spec.error(e));
            steps.push(Step {
                namepass: globs(&spec.common.namepass, "namepass")?,
                namedrop: globs(&spec.common.namedrop, "namedrop")?,
                kind,
            });
        }
        Ok(Pipeline {
            global_tags: tags,
            steps,
        })
    }

    /// Runs a metric through the pipeline.
    pub fn apply(&self, mut m: Metric) -> Metric {
        for (k, v) in &self.global_tags {
            add_tag_if_missing(&mut m, k, v);
        }
        for step in &self.steps {
            if !step.namepass.is_empty() && !step.namepass.matches(&m.measurement) {
                continue;
            }
            if step.namedrop.matches(&m.measurement) {
                continue;
            }
            match &step.kind {
                StepKind::Rename(replaces) => rename(&mut m, replaces),
                StepKind::TagDrop(globs) => m.tags.retain(|(k, _)| !globs.matches(k)),
                StepKind::IpMask(mask) => {
                    for (k, v) in m.tags.iter_mut() {
                        if mask.tags.iter().any(|t| t == k) {
                            if let Some(masked) =
                                mask_address(v, mask.ipv4_prefix, mask.ipv6_prefix)
                            {
                                *v = Cow::Owned(masked);
                            }
                        }
                    }
                }
            }
        }
        m
    }
}

fn rename(m: &mut Metric, replaces: &[Replace]) {
    for r in replaces {
        if r.measurement.as_deref() == Some(m.measurement.as_ref()) {
            m.measurement = Cow::Owned(r.dest.clone());
        }
        if let Some(tag) = &r.tag {
            // A tag renamed onto an existing key replaces it, as in Telegraf.
            if let Some(i) = m.tags.iter().position(|(k, _)| k == tag) {
                let (_, v) = m.tags.remove(i);
                m.tags.retain(|(k, _)| *k != r.dest);
                m.tags.push((Cow::Owned(r.dest.clone()), v));
            }
        }
        if let Some(field) = &r.field {
            if let Some(i) = m.fields.iter().position(|(k, _)| k == field) {
                let (_, v) = m.fields.remove(i);
                m.fields.retain(|(k, _)| *k != r.dest);
                m.fields.push((Cow::Owned(r.dest.clone()), v));
            }
        }
    }
}

/// The network of an address (`192.0.2.77` → `192.0.2.0` at /24;
/// `[2001:db8::1]:443` → `2001:db8::` at /48; a port, an IPv6 zone and a
/// prefix length are dropped), or `None` when `value` is not an address
/// (a host name is left as it is).
///
/// ```
/// use agent::processors::mask_address;
/// assert_eq!(mask_address("192.0.2.77", 24, 48).as_deref(), Some("192.0.2.0"));
/// assert_eq!(mask_address("2001:db8:1:2::5", 24, 48).as_deref(), Some("2001:db8:1::"));
/// assert_eq!(mask_address("198.51.100.9:5353", 24, 48).as_deref(), Some("198.51.100.0"));
/// assert_eq!(mask_address("fe80::1:2%eth0", 24, 48).as_deref(), Some("fe80::"));
/// assert_eq!(mask_address("[2001:db8::1%2]:443", 24, 48).as_deref(), Some("2001:db8::"));
/// assert_eq!(mask_address("192.0.2.7/32", 24, 48).as_deref(), Some("192.0.2.0"));
/// assert_eq!(mask_address("example.org", 24, 48), None);
/// ```
pub fn mask_address(value: &str, v4_prefix: u8, v6_prefix: u8) -> Option<String> {
    let ip = parse_address(value)?;
    Some(match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - u32::from(v4_prefix)).unwrap_or(0);
            Ipv4Addr::from(bits & mask).to_string()
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(v6_prefix))
                .unwrap_or(0);
            Ipv6Addr::from(bits & mask).to_string()
        }
    })
}

/// An address in any of the forms tags carry it: bare, with a port, with
/// an IPv6 zone (`%eth0`), or with a prefix length (`/32`).
fn parse_address(value: &str) -> Option<IpAddr> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = value.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    let inner = value.strip_prefix('[').unwrap_or(value);
    inner.split(['%', '/', ']']).next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;
    use lineproto::Line;

    fn pipeline(toml: &str, host: Option<&str>) -> Pipeline {
        let config = AgentConfig::from_toml_str(toml, "t.toml".as_ref()).expect("config");
        Pipeline::new(&config.global_tags, host, &config.processors).expect("pipeline")
    }

    #[test]
    fn global_and_host_tags_lose_to_the_metrics_own() {
        let p = pipeline(
            "[global_tags]\nlocation = \"lab\"\nnode_id = \"n1\"\n",
            Some("h1"),
        );
        let m = Line::new("cpu")
            .with_tag("node_id", "own")
            .with_field("x", 1.0);
        let out = p.apply(m);
        assert_eq!(out.tag("node_id"), Some("own"));
        assert_eq!(out.tag("location"), Some("lab"));
        assert_eq!(out.tag("host"), Some("h1"));
        let omitted = pipeline("", None).apply(Line::new("cpu").with_field("x", 1.0));
        assert_eq!(omitted.tag("host"), None);
    }

    #[test]
    fn rename_drop_and_mask_in_order_and_only_where_named() {
        let p = pipeline(
            r#"
[[processors.ip_mask]]
order = 3
tags = ["client"]
[[processors.rename]]
order = 1
namepass = ["conn*"]
  [[processors.rename.replace]]
  tag = "peer"
  dest = "client"
  [[processors.rename.replace]]
  field = "rtt"
  dest = "rtt_us"
  [[processors.rename.replace]]
  measurement = "conn"
  dest = "connection"
[[processors.tag_drop]]
order = 2
tags = ["secret*"]
"#,
            None,
        );
        let m = Line::new("conn")
            .with_tag("peer", "203.0.113.200")
            .with_tag("secret_key", "x")
            .with_field("rtt", 5i64);
        let out = p.apply(m);
        assert_eq!(out.measurement, "connection");
        assert_eq!(out.tag("client"), Some("203.0.113.0"));
        assert_eq!(out.tag("secret_key"), None);
        assert!(out.field("rtt_us").is_some());
        // namepass keeps rename off other measurements; masking still applies.
        let other = p.apply(
            Line::new("dns")
                .with_tag("peer", "::1")
                .with_tag("client", "2001:db8:aa:bb::1")
                .with_field("rtt", 1i64),
        );
        assert_eq!(other.tag("peer"), Some("::1"));
        assert_eq!(other.tag("client"), Some("2001:db8:aa::"));
        assert!(other.field("rtt").is_some());
    }

    #[test]
    fn bad_processor_tables_name_the_problem() {
        let config = AgentConfig::from_toml_str(
            "[[processors.ip_mask]]\ntags = [\"a\"]\nipv4_prefix = 40\n",
            "t.toml".as_ref(),
        )
        .expect("config");
        let err = Pipeline::new(&config.global_tags, None, &config.processors).unwrap_err();
        assert!(err.to_string().contains("processors.ip_mask"), "{err}");
        let config = AgentConfig::from_toml_str("[[processors.regex]]\n", "t.toml".as_ref())
            .expect("config");
        let err = Pipeline::new(&config.global_tags, None, &config.processors).unwrap_err();
        assert!(
            err.to_string().contains("unknown processor `regex`"),
            "{err}"
        );
        let config = AgentConfig::from_toml_str(
            "[[processors.tag_drop]]\ntags = [\"a\"]\ntagz = 1\n",
            "t.toml".as_ref(),
        )
        .expect("config");
        let err = Pipeline::new(&config.global_tags, None, &config.processors).unwrap_err();
        assert!(err.to_string().contains("tagz"), "{err}");
    }

    #[test]
    fn input_modifiers_rename_tag_and_filter() {
        let config = AgentConfig::from_toml_str(
            "[[inputs.cpu]]\nname_prefix = \"host_\"\nfielddrop = [\"usage_guest*\"]\ntagexclude = [\"core\"]\n[inputs.cpu.tags]\nrole = \"edge\"\n",
            "t.toml".as_ref(),
        )
        .expect("config");
        let mods = InputModifiers::new(&config.inputs[0]).expect("mods");
        let m = Line::new("cpu")
            .with_tag("core", "1")
            .with_field("usage_guest", 0.0)
            .with_field("usage_user", 1.0);
        let out = mods.apply(m).expect("fields left");
        assert_eq!(out.measurement, "host_cpu");
        assert_eq!(out.tag("role"), Some("edge"));
        assert_eq!(out.tag("core"), None);
        assert_eq!(out.fields.len(), 1);
        assert!(mods
            .apply(Line::new("cpu").with_field("usage_guest_nice", 0.0))
            .is_none());
    }
}
