//! `[[outputs.influxdb_v2]]`: line protocol to an InfluxDB 2.x write API,
//! `POST {url}/api/v2/write?org=&bucket=&precision=ns` with
//! `Authorization: Token <token>`.
//!
//! Options are Telegraf's: `urls` (or `url`), `token`, `organization`,
//! `bucket`, `timeout` (5 s), `content_encoding` (`"gzip"`), `user_agent`,
//! `http_headers`, `http_proxy`, `tls_ca`, `insecure_skip_verify`. Buckets
//! are not created: a missing one is logged and the data kept.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::http::{self, ClientOptions};
use super::influxdb::{token_header, InfluxOutput};
use crate::config::{ConfigError, OutputCommon, PluginSpec};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {
    urls: Vec<String>,
    url: Option<String>,
    token: String,
    organization: String,
    bucket: String,
    #[serde(deserialize_with = "crate::config::duration_option")]
    timeout: Duration,
    content_encoding: String,
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
            token: String::new(),
            organization: String::new(),
            bucket: String::new(),
            timeout: Duration::from_secs(5),
            content_encoding: "gzip".into(),
            user_agent: None,
            http_headers: BTreeMap::new(),
            http_proxy: None,
            tls_ca: None,
            insecure_skip_verify: false,
        }
    }
}

/// The `influxdb_v2` output: an [`InfluxOutput`] on the v2 API.
#[derive(Debug)]
pub struct InfluxV2Output;

impl InfluxV2Output {
    /// Builds an `influxdb_v2` output from its table.
    pub fn build(spec: &PluginSpec<OutputCommon>) -> Result<InfluxOutput, ConfigError> {
        let o: Options = spec.options()?;
        if o.bucket.is_empty() {
            return Err(spec.error("bucket is required"));
        }
        let gzip = http::gzip_option(spec, &o.content_encoding)?;
        let urls = http::urls(spec, &o.urls, o.url.as_deref(), "http://localhost:8086")?;
        let auth = if o.token.is_empty() {
            None
        } else {
            Some(token_header(spec, &o.token)?)
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
        let params = vec![
            ("org", o.organization),
            ("bucket", o.bucket),
            ("precision", "ns".to_owned()),
        ];
        Ok(InfluxOutput::new(
            spec,
            client,
            urls,
            "/api/v2/write",
            params,
            auth,
            gzip,
            None,
        ))
    }
}
