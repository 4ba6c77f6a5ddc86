//! A blocking client for a weir server's query API, as `weir query --url`
//! uses it. Do not call it from inside an async runtime.
//!
//! ```no_run
//! use server::client::Client;
//! use server::format::OutputFormat;
//!
//! let client = Client::new("http://127.0.0.1:8086", Some("weir_…")).unwrap();
//! let batches = client.query_batches("net", "SELECT dst, avg(rtt) FROM ping GROUP BY dst").unwrap();
//! let mut csv = client.query("net", "SELECT * FROM ping", OutputFormat::Csv).unwrap();
//! std::io::copy(&mut csv, &mut std::io::stdout()).unwrap();
//! ```

use std::time::Duration;

use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;

use crate::format::OutputFormat;

/// Why a remote query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not an http(s) URL.
    #[error("invalid server URL {0:?}: expected http://host:port or https://host:port")]
    InvalidUrl(String),
    /// The server could not be reached, or the connection broke.
    #[error("asking {url}: {source}")]
    Http {
        /// The URL asked.
        url: String,
        /// What the HTTP client said.
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("the server answered {status}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// The Arrow answer could not be decoded (or was cut off).
    #[error("reading the result: {0}")]
    Decode(#[from] ArrowError),
}

/// A connection to one server.
#[derive(Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Client {
    /// A client of the server at `url` (`http://host:port`), sending `token`.
    pub fn new(url: &str, token: Option<&str>) -> Result<Client, ClientError> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::InvalidUrl(url.to_owned()));
        }
        // The server bounds queries by its own timeout.
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(None)
            .build()
            .map_err(|source| ClientError::Http {
                url: base.clone(),
                source,
            })?;
        Ok(Client {
            base,
            token: token.map(str::to_owned),
            http,
        })
    }

    /// Runs `sql` against database `db`; the response body is the result in
    /// `format`, to be read as it streams.
    pub fn query(
        &self,
        db: &str,
        sql: &str,
        format: OutputFormat,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let url = format!("{}/api/v1/query", self.base);
        let body = serde_json::json!({"db": db, "sql": sql, "format": format.as_str()});
        let mut request = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        let response = request
            .send()
            .map_err(|source| ClientError::Http { url, source })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("error")
                    .or_else(|| v.get("message"))
                    .and_then(|m| m.as_str().map(str::to_owned))
            })
            .unwrap_or(text);
        Err(ClientError::Server {
            status: status.as_u16(),
            message,
        })
    }

    /// Runs `sql` against database `db` and decodes the result (asked for
    /// as Arrow IPC).
    pub fn query_batches(&self, db: &str, sql: &str) -> Result<Vec<RecordBatch>, ClientError> {
        let response = self.query(db, sql, OutputFormat::Arrow)?;
        let reader = StreamReader::try_new(response, None)?;
        Ok(reader.collect::<Result<Vec<_>, _>>()?)
    }
}
