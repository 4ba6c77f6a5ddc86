//! `[[outputs.weir]]` and `[[outputs.influxdb]]`: line protocol to an
//! InfluxDB v1 write API (`POST {url}/write?db=&rp=`), which weir serves.
//! `influxdb_v2` shares the sending ([`InfluxOutput`]).
//!
//! Options are Telegraf's `influxdb` output's: `urls` (or `url`),
//! `database` (`"telegraf"`), `retention_policy`, `write_consistency`,
//! `username`/`password` (basic auth), `timeout` (5 s), `content_encoding`,
//! `skip_database_creation`, `user_agent`, `http_headers`, `http_proxy`,
//! `tls_ca`, `insecure_skip_verify`; plus `token`, sent as
//! `Authorization: Token <token>`. `weir` defaults to gzip, `influxdb` to
//! `identity` as Telegraf does.
//!
//! With several URLs a batch goes to one of them; if it answers "retry",
//! the next is tried, and the one that took the batch is tried first
//! next time. Unless `skip_database_creation`, the database is created
//! (`CREATE DATABASE` on `/query`) before the first write to a URL and
//! again when a write answers "database not found".

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use serde::Deserialize;

use super::http::{self, ClientOptions};
use super::{Output, OutputError, WriteFuture};
use crate::config::{ConfigError, OutputCommon, PluginSpec};

/// Which API and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// weir: v1 API, gzip, token auth.
    Weir,
    /// InfluxDB 1.x: v1 API, no compression, basic auth.
    V1,
}

/// `[[outputs.weir]]` and `[[outputs.influxdb]]` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {
    urls: Vec<String>,
    url: Option<String>,
    database: String,
    retention_policy: String,
    write_consistency: String,
    token: String,
    username: String,
    password: String,
    #[serde(deserialize_with = "crate::config::duration_option")]
    timeout: Duration,
    content_encoding: Option<String>,
    skip_database_creation: bool,
    user_agent: Option<String>,
    http_headers: BTreeMap<String, String>,
    http_proxy: Option<String>,
    tls_ca: Option<String>,
    insecure_skip_verify: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            urls: Vec::new(),
            url: None,
            database: "telegraf".into(),
            retention_policy: String::new(),
            write_consistency: String::new(),
            token: String::new(),
            username: String::new(),
            password: String::new(),
            timeout: Duration::from_secs(5),
            content_encoding: None,
            skip_database_creation: false,
            user_agent: None,
            http_headers: BTreeMap::new(),
            http_proxy: None,
            tls_ca: None,
            insecure_skip_verify: false,
        }
    }
}

#[derive(Debug)]
struct Target {
    base: String,
    /// The database is known to exist (or creating it is pointless).
    db_ready: bool,
}

/// An output to an InfluxDB-compatible write API.
#[derive(Debug)]
pub struct InfluxOutput {
    label: String,
    client: reqwest::Client,
    targets: Vec<Target>,
    /// Which target to try first.
    next: usize,
    /// `/write` or `/api/v2/write`.
    path: &'static str,
    params: Vec<(&'static str, String)>,
    auth: Option<HeaderValue>,
    gzip: bool,
    /// `Some(database)` when databases are created.
    create: Option<String>,
}

/// `Authorization: Token <token>`, kept out of `Debug`.
pub(crate) fn token_header(
    spec: &PluginSpec<OutputCommon>,
    token: &str,
) -> Result<HeaderValue, ConfigError> {
    let mut v = HeaderValue::from_str(&format!("Token {token}"))
        .map_err(|_| spec.error("token: not a valid header value"))?;
    v.set_sensitive(true);
    Ok(v)
}

impl InfluxOutput {
    /// Builds a `weir` or `influxdb` output from its table.
    pub fn build(spec: &PluginSpec<OutputCommon>, flavor: Flavor) -> Result<Self, ConfigError> {
        let o: Options = spec.options()?;
        let default_encoding = if flavor == Flavor::V1 {
            "identity"
        } else {
            "gzip"
        };
        let gzip = http::gzip_option(
            spec,
            o.content_encoding.as_deref().unwrap_or(default_encoding),
        )?;
        let urls = http::urls(spec, &o.urls, o.url.as_deref(), "http://localhost:8086")?;
        if o.database.is_empty() {
            return Err(spec.error("database must not be empty"));
        }
        let auth = if !o.token.is_empty() {
            Some(token_header(spec, &o.token)?)
        } else if !o.username.is_empty() {
            let creds = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", o.username, o.password));
            let mut v = HeaderValue::from_str(&format!("Basic {creds}"))
                .map_err(|_| spec.error("username/password: not a valid header value"))?;
            v.set_sensitive(true);
            Some(v)
        } else {
            None
        };
        let client = http::client(
            spec,
            &ClientOptions {
                urls: &urls,
                timeout: o.timeout,
                user_agent: o.user_agent.as_deref(),
                http_headers: &o.http_headers,
                http_proxy: o.http_proxy.as_deref(),
                tls_ca: o.tls_ca.as_deref(),
                insecure_skip_verify: o.insecure_skip_verify,
            },
        )?;
        let mut params = vec![("db", o.database.clone())];
        if !o.retention_policy.is_empty() {
            params.push(("rp", o.retention_policy.clone()));
        }
        if !o.write_consistency.is_empty() {
            params.push(("consistency", o.write_consistency.clone()));
        }
        Ok(Self::new(
            spec,
            client,
            urls,
            "/write",
            params,
            auth,
            gzip,
            (!o.skip_database_creation).then_some(o.database),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        spec: &PluginSpec<OutputCommon>,
        client: reqwest::Client,
        urls: Vec<String>,
        path: &'static str,
        params: Vec<(&'static str, String)>,
        auth: Option<HeaderValue>,
        gzip: bool,
        create: Option<String>,
    ) -> Self {
        InfluxOutput {
            label: spec.label(),
            client,
            targets: urls
                .into_iter()
                .map(|base| Target {
                    base,
                    db_ready: false,
                })
                .collect(),
            next: 0,
            path,
            params,
            auth,
            gzip,
            create,
        }
    }

    /// `CREATE DATABASE` on target `i`; failures are logged, not fatal (the
    /// database may exist, or the token may not be allowed to create it).
    async fn create_database(&mut self, i: usize) {
        let (Some(db), Some(target)) = (self.create.as_ref(), self.targets.get(i)) else {
            return;
        };
        let url = format!("{}/query", target.base);
        let q = format!(
            "CREATE DATABASE \"{}\"",
            db.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut request = self.client.post(&url).query(&[("q", q)]);
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        match http::send(&self.label, &url, request).await {
            Ok(()) => {
                tracing::debug!(output = %self.label, "created database {db:?} at {url}");
                self.targets[i].db_ready = true;
            }
            Err(f) => {
                tracing::warn!(output = %self.label, "creating database {db:?}: {}", f.error);
                // No answer or a server error: try again before the next
                // write. An answer (no permission, unsupported): go on.
                self.targets[i].db_ready = f.status.is_some_and(|s| !s.is_server_error());
            }
        }
    }

    async fn write_to(&mut self, i: usize, body: &[u8]) -> Result<(), http::Failure> {
        let base = &self.targets[i].base;
        let url = format!("{base}{}", self.path);
        let mut request = self
            .client
            .post(&url)
            .query(&self.params)
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body.to_vec());
        if self.gzip {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        http::send(&self.label, &url, request).await
    }

    async fn write_batch(&mut self, batch: &[u8]) -> Result<(), OutputError> {
        let body = if self.gzip {
            http::gzip(batch)
        } else {
            batch.to_vec()
        };
        let n = self.targets.len();
        let mut last = None;
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.create.is_some() && !self.targets[i].db_ready {
                self.create_database(i).await;
            }
            let mut result = self.write_to(i, &body).await;
            if let Err(f) = &result {
                if f.database_not_found {
                    if self.create.is_some() {
                        self.create_database(i).await;
                        result = self.write_to(i, &body).await;
                    } else {
                        tracing::error!(output = %self.label, "{}: the data is kept and retried until the database or bucket exists", f.error);
                    }
                }
            }
            match result {
                Ok(()) => {
                    self.next = i;
                    return Ok(());
                }
                Err(f) => match f.error {
                    e @ OutputError::Retry { .. } => {
                        if n > 1 {
                            tracing::warn!(output = %self.label, "{e}; trying the next URL");
                        }
                        last = Some(e);
                    }
                    other => return Err(other),
                },
            }
        }
        Err(last.unwrap_or_else(|| OutputError::Retry {
            reason: format!("{}: no URL configured", self.label),
            after: None,
        }))
    }
}

impl Output for InfluxOutput {
    fn write<'a>(&'a mut self, batch: &'a [u8], _lines: usize) -> WriteFuture<'a> {
        Box::pin(self.write_batch(batch))
    }
}
