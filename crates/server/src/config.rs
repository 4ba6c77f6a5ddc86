//! The server's settings: defaults, a TOML file with the same keys as the
//! command-line flags, and the flags on top.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use enrich::EnrichConfig;
use serde::Deserialize;

use crate::error::ServerError;

/// How a server runs. Every field has a default; a TOML file
/// ([`ServerConfig::from_toml_file`]) sets any of them under the same
/// kebab-case names as the flags of `weir server`, and refuses keys it does
/// not know.
///
/// ```
/// let config = server::ServerConfig::from_toml_str(
///     "listen = \"127.0.0.1:0\"\nno-auth = true\nquery-timeout-secs = 5",
///     std::path::Path::new("weir.toml"),
/// )
/// .unwrap();
/// assert!(config.no_auth);
/// assert_eq!(config.data_dir, std::path::PathBuf::from("./weir-data"));
///
/// let err = server::ServerConfig::from_toml_str("lisen = \"x\"", "weir.toml".as_ref()).unwrap_err();
/// assert!(err.to_string().contains("unknown field `lisen`"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ServerConfig {
    /// Address to listen on, `host:port`; port 0 picks a free port.
    pub listen: String,
    /// The data directory: the store, `tokens.json` and `admin.token`.
    pub data_dir: PathBuf,
    /// Accept every request without a token (local experiments only).
    pub no_auth: bool,
    /// Refuse writes to databases that do not exist (404) rather than
    /// creating them.
    pub no_auto_create: bool,
    /// The largest request body, in bytes, both as sent and after gzip
    /// decompression; larger bodies get 413.
    pub max_body_bytes: usize,
    /// A query still running after this many seconds is stopped.
    pub query_timeout_secs: u64,
    /// The memory all running queries together may reserve for sorts,
    /// aggregations and joins; 0 for no limit.
    pub query_memory_limit_bytes: usize,
    /// After SIGTERM or SIGINT, in-flight requests get this many seconds to
    /// finish before their connections are dropped.
    pub shutdown_timeout_secs: u64,
    /// Whether `GET /metrics` needs a token with read scope.
    pub metrics_auth: bool,
    /// Settings of single databases, by name: the `[databases.NAME]`
    /// tables of the file.
    pub databases: BTreeMap<String, DatabaseConfig>,
}

/// Settings of one database, `[databases.NAME]` in the configuration file.
/// Each key is a sub-table or value of its own; a database without a table
/// has every default.
///
/// ```
/// let config = server::ServerConfig::from_toml_str(r#"
/// [databases.probes]
/// retention = "30d"
/// rollup-retention = "2y"
/// enrich.ip-tags = ["client_ip"]
/// enrich.ipv4-mask = 16
/// [databases.hosts]
/// rollups = false
/// "#, "weir.toml".as_ref()).unwrap();
/// let probes = &config.databases["probes"];
/// let enrich = probes.enrich.as_ref().unwrap();
/// assert_eq!((enrich.ipv4_mask, enrich.ipv6_mask), (16, 48));
/// assert_eq!(probes.retention().unwrap(), Some(std::time::Duration::from_secs(30 * 86_400)));
/// assert_eq!(config.databases["hosts"].rollups, Some(false));
///
/// let bad = server::ServerConfig::from_toml_str(
///     "[databases.x]\nretention = \"a month\"", "weir.toml".as_ref()).unwrap_err();
/// assert!(bad.to_string().contains("databases.x.retention"), "{bad}");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatabaseConfig {
    /// `retention`: raw rows older than this (`"30d"`, `"12h"`, `"1y"`) are
    /// never returned and their files deleted; without it (while
    /// `rollup-retention` is set), all are kept. Applied at every start to
    /// databases that set either key; removing both leaves the last one.
    pub retention: Option<String>,
    /// `rollup-retention`: the same for the rollups (`<table>_30m` and
    /// `<table>_1d`), so they can outlive the raw rows.
    pub rollup_retention: Option<String>,
    /// `rollups`: `false` stops persists writing rollups of the database's
    /// tables (on by default). Analytics then answers from raw rows.
    /// Applied at every start when set; removing it leaves the last one.
    pub rollups: Option<bool>,
    /// `enrich`: what is done to each line before it is stored — the
    /// country of an address looked up in a MaxMind DB file, the address
    /// masked to its network ([`enrich::EnrichConfig`] has the keys).
    pub enrich: Option<EnrichConfig>,
}

impl DatabaseConfig {
    /// `retention` as a duration (`None`: keep everything).
    pub fn retention(&self) -> Result<Option<Duration>, String> {
        parse_retention(self.retention.as_deref())
    }

    /// `rollup-retention` as a duration (`None`: keep everything).
    pub fn rollup_retention(&self) -> Result<Option<Duration>, String> {
        parse_retention(self.rollup_retention.as_deref())
    }
}

fn parse_retention(value: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(text) = value else {
        return Ok(None);
    };
    match humantime::parse_duration(text) {
        Ok(d) if d.as_secs() >= 1 => Ok(Some(d)),
        Ok(_) => Err(format!("{text:?} is shorter than a second")),
        Err(e) => Err(format!(
            "{text:?} is not a duration such as 30d or 12h: {e}"
        )),
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8086".to_owned(),
            data_dir: PathBuf::from("./weir-data"),
            no_auth: false,
            no_auto_create: false,
            max_body_bytes: 32 << 20,
            query_timeout_secs: 60,
            query_memory_limit_bytes: 2 << 30,
            shutdown_timeout_secs: 30,
            metrics_auth: true,
            databases: BTreeMap::new(),
        }
    }
}

impl ServerConfig {
    /// Reads a TOML configuration file; keys it omits keep their defaults.
    pub fn from_toml_file(path: &Path) -> Result<ServerConfig, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::Io {
            what: "reading configuration file",
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses TOML configuration text; `path` names it in errors, which
    /// also name the line.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<ServerConfig, ServerError> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| 1 + text[..span.start.min(text.len())].matches('\n').count());
            ServerError::Config {
                path: path.to_owned(),
                reason: match line {
                    Some(line) => format!("line {line}: {}", e.message()),
                    None => e.message().to_owned(),
                },
            }
        })?;
        config.check_databases(path)?;
        Ok(config)
    }

    /// [`ServerConfig::query_timeout_secs`] as a duration.
    pub fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.query_timeout_secs)
    }

    /// [`ServerConfig::shutdown_timeout_secs`] as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// Checks values that parse but make no sense.
    pub(crate) fn validate(&self) -> Result<(), ServerError> {
        let bad = |reason: &str| {
            Err(ServerError::Config {
                path: PathBuf::from("(settings)"),
                reason: reason.to_owned(),
            })
        };
        if self.max_body_bytes == 0 {
            return bad("max-body-bytes must be at least 1");
        }
        if self.query_timeout_secs == 0 {
            return bad("query-timeout-secs must be at least 1");
        }
        self.check_databases(Path::new("(settings)"))
    }

    /// Checks each `[databases.NAME]` table, naming the key in errors
    /// (`databases.probes.enrich.ipv4-mask: …`); files are opened later.
    fn check_databases(&self, path: &Path) -> Result<(), ServerError> {
        for (name, db) in &self.databases {
            for (key, value) in [
                ("retention", db.retention()),
                ("rollup-retention", db.rollup_retention()),
            ] {
                value.map_err(|reason| ServerError::Config {
                    path: path.to_owned(),
                    reason: format!("databases.{name}.{key}: {reason}"),
                })?;
            }
            if let Some(enrich) = &db.enrich {
                enrich.validate().map_err(|e| ServerError::Config {
                    path: path.to_owned(),
                    reason: format!("databases.{name}.enrich.{e}"),
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_key_parses_and_unknown_keys_are_named() {
        let text = r#"
listen = "0.0.0.0:9999"
data-dir = "/var/lib/weir"
no-auth = true
no-auto-create = true
max-body-bytes = 1024
query-timeout-secs = 7
query-memory-limit-bytes = 0
shutdown-timeout-secs = 3
metrics-auth = false
"#;
        let c = ServerConfig::from_toml_str(text, Path::new("w.toml")).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9999");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/weir"));
        assert!(c.no_auth && c.no_auto_create && !c.metrics_auth);
        assert_eq!(
            (
                c.max_body_bytes,
                c.query_timeout_secs,
                c.shutdown_timeout_secs
            ),
            (1024, 7, 3)
        );

        let err = ServerConfig::from_toml_str("data_dir = \"x\"", Path::new("w.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("configuration w.toml:"), "{msg}");
        assert!(msg.contains("unknown field `data_dir`"), "{msg}");

        let err =
            ServerConfig::from_toml_str("no-auth = \"yes\"", Path::new("w.toml")).unwrap_err();
        assert!(err.to_string().contains("boolean"), "{err}");
    }

    #[test]
    fn database_tables_parse_and_bad_keys_are_named() {
        let text = r#"
listen = "127.0.0.1:0"

[databases.probes]
enrich.mmdb = "/srv/GeoLite2-Country.mmdb"
enrich.ip-tags = ["client_ip", "peer_addr"]
enrich.country-tag = "cc"
enrich.ipv4-mask = 16
enrich.ipv6-mask = 56

[databases.plain]
"#;
        let c = ServerConfig::from_toml_str(text, Path::new("w.toml")).unwrap();
        let e = c.databases["probes"].enrich.as_ref().unwrap();
        assert_eq!(
            e.mmdb.as_deref(),
            Some(Path::new("/srv/GeoLite2-Country.mmdb"))
        );
        assert_eq!(e.ip_tags, ["client_ip", "peer_addr"]);
        assert_eq!(
            (e.country_tag.as_str(), e.ipv4_mask, e.ipv6_mask),
            ("cc", 16, 56)
        );
        assert_eq!(c.databases["plain"], DatabaseConfig::default());

        for (text, needle) in [
            (
                "[databases.x]\nenrich.ip-tags = [\"a\"]\nenrich.ipv4-mask = 33",
                "configuration w.toml: databases.x.enrich.ipv4-mask: 33 is more than 32 bits",
            ),
            (
                "[databases.x]\nenrich.ip-tags = []",
                "databases.x.enrich.ip-tags: name at least one tag",
            ),
            (
                "[databases.x]\nenrich.ip-tags = [\"a\"]\nenrich.ipv6_mask = 1",
                "unknown field `ipv6_mask`",
            ),
            (
                "[databases.x]\nretention = \"1 fortnight\"",
                "databases.x.retention: \"1 fortnight\" is not a duration",
            ),
            (
                "[databases.x]\nrollup_retention = \"1d\"",
                "unknown field `rollup_retention`",
            ),
            (
                "[databases.x]\nenrich.ip-tags = [\"a\"]\nenrich.ipv4-mask = \"x\"",
                "line 3: invalid type: string \"x\"",
            ),
            (
                "[databases.x]\nenrich.mmdb = \"a.mmdb\"",
                "missing field `ip-tags`",
            ),
        ] {
            let err = ServerConfig::from_toml_str(text, Path::new("w.toml")).unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }
}
