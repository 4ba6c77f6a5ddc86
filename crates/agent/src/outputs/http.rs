//! What the HTTP outputs share: the client, gzip, and turning an answer
//! into an [`OutputError`] (the table in the [module docs](super)).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;

use super::OutputError;
use crate::config::{ConfigError, OutputCommon, PluginSpec};

/// The default `User-Agent`.
pub(crate) fn default_user_agent() -> String {
    format!("weir-agent/{}", env!("CARGO_PKG_VERSION"))
}

/// Client options the HTTP outputs share.
#[derive(Debug)]
pub(crate) struct ClientOptions<'a> {
    /// The URLs the client will be used for: without an `https` one the
    /// built-in root certificates are not loaded (less memory per agent).
    pub(crate) urls: &'a [String],
    pub(crate) timeout: Duration,
    /// `None`: [`default_user_agent`].
    pub(crate) user_agent: Option<&'a str>,
    pub(crate) http_headers: &'a BTreeMap<String, String>,
    pub(crate) http_proxy: Option<&'a str>,
    pub(crate) tls_ca: Option<&'a str>,
    pub(crate) insecure_skip_verify: bool,
}

/// A client for one output.
pub(crate) fn client(
    spec: &PluginSpec<OutputCommon>,
    o: &ClientOptions<'_>,
) -> Result<reqwest::Client, ConfigError> {
    let mut headers = HeaderMap::new();
    for (k, v) in o.http_headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| spec.error(format!("http_headers: {k:?}: {e}")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|e| spec.error(format!("http_headers: {k:?}: {e}")))?;
        headers.insert(name, value);
    }
    let mut builder = reqwest::Client::builder()
        .timeout(if o.timeout.is_zero() {
            Duration::from_secs(5)
        } else {
            o.timeout
        })
        .user_agent(o.user_agent.map_or_else(default_user_agent, str::to_owned))
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .danger_accept_invalid_certs(o.insecure_skip_verify);
    if !o.urls.iter().any(|u| u.starts_with("https:")) {
        builder = builder.tls_built_in_root_certs(false);
    }
    if let Some(proxy) = o.http_proxy.filter(|p| !p.is_empty()) {
        let proxy = reqwest::Proxy::all(proxy)
            .map_err(|e| spec.error(format!("http_proxy {proxy:?}: {e}")))?;
        builder = builder.proxy(proxy);
    }
    if let Some(ca) = o.tls_ca.filter(|p| !p.is_empty()) {
        let pem = std::fs::read(ca).map_err(|e| spec.error(format!("tls_ca {ca:?}: {e}")))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| spec.error(format!("tls_ca {ca:?}: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| spec.error(format!("building the HTTP client: {e}")))
}

/// `urls` (Telegraf's) and `url` together, checked; `default` if neither.
pub(crate) fn urls(
    spec: &PluginSpec<OutputCommon>,
    urls: &[String],
    url: Option<&str>,
    default: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut all: Vec<String> = urls.to_vec();
    all.extend(url.map(str::to_owned));
    if all.is_empty() {
        all.push(default.to_owned());
    }
    for u in &all {
        match reqwest::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            Ok(parsed) => {
                return Err(spec.error(format!(
                    "url {u:?}: scheme {:?} is not supported; use http:// or https://",
                    parsed.scheme()
                )))
            }
            Err(e) => return Err(spec.error(format!("url {u:?}: {e}"))),
        }
    }
    Ok(all
        .into_iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect())
}

/// Whether `content_encoding` asks for gzip.
pub(crate) fn gzip_option(
    spec: &PluginSpec<OutputCommon>,
    content_encoding: &str,
) -> Result<bool, ConfigError> {
    match content_encoding {
        "gzip" => Ok(true),
        "identity" | "" => Ok(false),
        other => Err(spec.error(format!(
            "content_encoding {other:?}: expected \"gzip\" or \"identity\""
        ))),
    }
}

/// `batch` gzipped.
pub(crate) fn gzip(batch: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(batch.len() / 4 + 64),
        // Level 1: the agent's line protocol still shrinks about sevenfold
        // (ninefold at the default level 6) for about a third of the CPU
        // (zlib on 200 KB of a spool's lines).
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(batch);
    enc.finish().unwrap_or_default()
}

/// A failed request and whether the server said the database is missing.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: OutputError,
    /// The answer's status; `None` when there was no answer.
    pub(crate) status: Option<StatusCode>,
    pub(crate) database_not_found: bool,
}

/// Sends `request` and maps the answer.
pub(crate) async fn send(
    label: &str,
    url: &str,
    request: reqwest::RequestBuilder,
) -> Result<(), Failure> {
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Err(Failure {
                error: OutputError::Retry {
                    reason: format!("{url}: {}", error_chain(&e)),
                    after: None,
                },
                status: None,
                database_not_found: false,
            })
        }
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let after = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let message = server_message(&body);
    let reason = format!("{url}: {status}: {message}");
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => OutputError::TooLarge,
        StatusCode::TOO_MANY_REQUESTS => OutputError::Retry { reason, after },
        s if s.is_server_error() => OutputError::Retry { reason, after },
        // The request may succeed as it is later (408, 421, 425), or once
        // a redirect or proxy is fixed (3xx: redirects are not followed,
        // as following one would turn the POST into a GET without the data).
        StatusCode::REQUEST_TIMEOUT | StatusCode::MISDIRECTED_REQUEST | StatusCode::TOO_EARLY => {
            OutputError::Retry { reason, after }
        }
        s if s.is_redirection() => {
            tracing::error!(
                output = label,
                "{reason}: redirected; set the URL it points to. The data is kept and retried"
            );
            OutputError::Retry { reason, after }
        }
        StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
            tracing::error!(
                output = label,
                "{reason}: not authorized; the data is kept and retried until the token or grant is fixed"
            );
            OutputError::Retry { reason, after }
        }
        StatusCode::NOT_FOUND => {
            let missing_db = message.contains("database not found")
                || message.contains("bucket") && message.contains("not found");
            if !missing_db {
                tracing::error!(
                    output = label,
                    "{reason}: is the URL right? the data is kept and retried"
                );
            }
            return Err(Failure {
                error: OutputError::Retry { reason, after },
                status: Some(status),
                database_not_found: missing_db,
            });
        }
        _ => OutputError::Rejected { reason },
    };
    Err(Failure {
        error,
        status: Some(status),
        database_not_found: false,
    })
}

/// `Retry-After` in seconds, if present and a number.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// The `error` (v1) or `message` (v2) of a JSON body, else the body,
/// shortened.
fn server_message(body: &str) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["error", "message"] {
            if let Some(serde_json::Value::String(s)) = map.get(key) {
                return s.clone();
            }
        }
    }
    let body = body.trim();
    if body.len() > 1024 {
        let mut end = 1024;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &body[..end])
    } else if body.is_empty() {
        "(no message)".to_owned()
    } else {
        body.to_owned()
    }
}

/// An error and its causes, `: `-joined (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
