//! `[[inputs.listener]]`: a service input that takes line protocol from
//! local applications (weir-meter, scripts, another agent) over HTTP
//! (`POST /write`, `POST /api/v2/write`, `GET /ping`) and UDP, and forwards
//! it like any input's metrics — through the processors into every output's
//! spool. An HTTP write is answered 204 only once every spool has it.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lineproto::{ParseOptions, Precision};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::input::Metric;
use crate::processors::InputModifiers;
use crate::router::{InputStats, Router};

/// HTTP writes decoded and spooled at the same time; more wait their turn.
const MAX_WRITES_IN_FLIGHT: usize = 4;

/// How long in-flight HTTP writes get to finish once the agent stops.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// `[[inputs.listener]]` options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerOptions {
    /// HTTP address, `host:port`; empty turns HTTP off.
    pub service_address: String,
    /// UDP address, `host:port`; empty turns UDP off.
    pub udp_address: String,
    /// The largest HTTP body accepted, before and after gzip (413 beyond).
    #[serde(deserialize_with = "crate::config::byte_size_option")]
    pub max_body_size: u64,
    /// When set, HTTP writes need `Authorization: Token <this>` (or
    /// Bearer, or `p=`).
    pub token: Option<String>,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            service_address: "127.0.0.1:8186".to_owned(),
            udp_address: String::new(),
            max_body_size: 32 << 20,
            token: None,
        }
    }
}

/// A listener bound to its sockets, ready to run.
#[derive(Debug)]
pub struct Listener {
    http: Option<TcpListener>,
    udp: Option<UdpSocket>,
    state: Arc<ListenerState>,
}

#[derive(Debug)]
struct ListenerState {
    options: ListenerOptions,
    modifiers: InputModifiers,
    router: Arc<Router>,
    stats: Arc<InputStats>,
    /// Bodies being decoded and spooled at once.
    in_flight: tokio::sync::Semaphore,
}

impl Listener {
    /// Binds the listener's sockets; a port in use is an error naming the
    /// address.
    pub async fn bind(
        spec: &PluginSpec<InputCommon>,
        router: Arc<Router>,
        stats: Arc<InputStats>,
    ) -> Result<Listener, ConfigError> {
        let options: ListenerOptions = spec.options()?;
        let modifiers = InputModifiers::new(spec)?;
        let http = match options.service_address.as_str() {
            "" => None,
            addr => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| spec.error(format!("listening on {addr}: {e}")))?,
            ),
        };
        let udp = match options.udp_address.as_str() {
            "" => None,
            addr => Some(
                UdpSocket::bind(addr)
                    .await
                    .map_err(|e| spec.error(format!("listening on udp {addr}: {e}")))?,
            ),
        };
        Ok(Listener {
            http,
            udp,
            state: Arc::new(ListenerState {
                options,
                modifiers,
                router,
                stats,
                in_flight: tokio::sync::Semaphore::new(MAX_WRITES_IN_FLIGHT),
            }),
        })
    }

    /// The HTTP address, if HTTP is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The UDP address, if UDP is on.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Serves until `shutdown` turns true; in-flight HTTP writes finish.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(http) = self.http {
            let limit = usize::try_from(self.state.options.max_body_size).unwrap_or(usize::MAX);
            let app = axum::Router::new()
                .route("/write", post(write_v1))
                .route("/api/v2/write", post(write_v2))
                .route(
                    "/ping",
                    get(|| async { StatusCode::NO_CONTENT })
                        .head(|| async { StatusCode::NO_CONTENT }),
                )
                .layer(DefaultBodyLimit::max(limit))
                .with_state(Arc::clone(&self.state));
            let mut stop = shutdown.clone();
            let mut grace = shutdown.clone();
            tasks.spawn(async move {
                let serve = axum::serve(http, app).with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                });
                // A client stalled mid-body does not hold the agent up.
                let deadline = async move {
                    let _ = grace.wait_for(|s| *s).await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                };
                tokio::select! {
                    served = serve => if let Err(e) = served {
                        tracing::error!("listener: HTTP server failed: {e}");
                    },
                    () = deadline => tracing::warn!("listener: dropping writes still in flight"),
                }
            });
        }
        if let Some(udp) = self.udp {
            let state = Arc::clone(&self.state);
            let mut stop = shutdown.clone();
            tasks.spawn(async move {
                tokio::select! {
                    () = serve_udp(udp, state) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

async fn serve_udp(socket: UdpSocket, state: Arc<ListenerState>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match socket.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("listener: udp receive failed: {e}");
                continue;
            }
        };
        let datagram = buf[..n].to_vec();
        let st = Arc::clone(&state);
        let routed = tokio::task::spawn_blocking(move || {
            let (metrics, errors) = parse(&datagram, Precision::Nanoseconds);
            if !errors.is_empty() {
                st.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "listener: udp datagram had bad lines: {}",
                    errors.join("; ")
                );
            }
            st.router.route(&st.modifiers, metrics, &st.stats, false)
        })
        .await;
        if !matches!(routed, Ok(Ok(()))) {
            state.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!("listener: could not spool a udp datagram");
        }
    }
}

/// The good lines of `body` as metrics (timestamps default to now), and a
/// description of each bad line.
fn parse(body: &[u8], precision: Precision) -> (Vec<Metric>, Vec<String>) {
    let now = crate::runtime::now_ns();
    let options = ParseOptions {
        precision,
        max_line_bytes: ParseOptions::DEFAULT_MAX_LINE_BYTES,
        max_token_bytes: ParseOptions::DEFAULT_MAX_TOKEN_BYTES,
    };
    let mut metrics = Vec::new();
    let mut errors = Vec::new();
    for line in options.parse(body) {
        match line {
            Ok(line) => {
                let mut m = line.into_owned();
                m.timestamp.get_or_insert(now);
                metrics.push(m);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    (metrics, errors)
}

/// An HTTP error with InfluxDB's JSON body shape.
fn error(status: StatusCode, v2: bool, message: impl Into<String>) -> Response {
    let message = message.into();
    let body = if v2 {
        serde_json::json!({"code": if status == StatusCode::BAD_REQUEST { "invalid" } else { "internal error" }, "message": message})
    } else {
        serde_json::json!({"error": message})
    };
    (status, axum::Json(body)).into_response()
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

async fn write_v1(
    state: State<Arc<ListenerState>>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(state, query, headers, body, false).await
}

async fn write_v2(
    state: State<Arc<ListenerState>>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(state, query, headers, body, true).await
}

async fn write(
    State(state): State<Arc<ListenerState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
    v2: bool,
) -> Response {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    if let Some(expected) = &state.options.token {
        if !authorized(&headers, &query, expected) {
            return error(
                StatusCode::UNAUTHORIZED,
                v2,
                "a token is required: Authorization: Token <t>",
            );
        }
    }
    let precision = match param(&query, "precision") {
        None | Some("") => Precision::Nanoseconds,
        Some(p) => match p.parse::<Precision>() {
            Ok(p) => p,
            Err(e) => return error(StatusCode::BAD_REQUEST, v2, e.to_string()),
        },
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    // At most a few bodies are decoded at once: each may hold
    // max_body_size of lines, several times that once parsed.
    let Ok(_permit) = state.in_flight.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, v2, "the agent is stopping");
    };
    let st = Arc::clone(&state);
    // Decompressing, parsing and spooling are CPU and disk work: off the
    // runtime's thread, which also runs gathers and deliveries.
    let done = tokio::task::spawn_blocking(move || -> Result<Vec<String>, Refusal> {
        let body = if gzip {
            gunzip(&body, st.options.max_body_size)?
        } else {
            body
        };
        let (metrics, errors) = parse(&body, precision);
        if v2 && !errors.is_empty() {
            // v2 semantics: a batch with a bad line is refused whole.
            return Err((
                StatusCode::BAD_REQUEST,
                format!("nothing was stored: {}", errors.join("; ")),
            ));
        }
        st.router
            .route(&st.modifiers, metrics, &st.stats, false)
            .map_err(|e| {
                st.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!("listener: could not spool a write: {e}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the agent could not spool the write: {e}"),
                )
            })?;
        Ok(errors)
    })
    .await;
    let errors = match done {
        Ok(Ok(errors)) => errors,
        Ok(Err((status, message))) => return error(status, v2, message),
        Err(e) => {
            state.stats.errors.fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                v2,
                format!("the write failed: {e}"),
            );
        }
    };
    if errors.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        state.stats.errors.fetch_add(1, Ordering::Relaxed);
        let shown: Vec<&str> = errors.iter().take(10).map(String::as_str).collect();
        let more = errors.len().saturating_sub(shown.len());
        let mut message = format!(
            "{} bad lines were not stored (the rest were): {}",
            errors.len(),
            shown.join("; ")
        );
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        error(StatusCode::BAD_REQUEST, false, message)
    }
}

/// Why a write was refused: its status and message.
type Refusal = (StatusCode, String);

/// A gzip body, decompressed, at most `limit` bytes.
fn gunzip(body: &[u8], limit: u64) -> Result<Bytes, Refusal> {
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(body);
    match decoder.take(limit.saturating_add(1)).read_to_end(&mut out) {
        Ok(_) if out.len() as u64 > limit => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than max_body_size after gzip".to_owned(),
        )),
        Ok(_) => Ok(Bytes::from(out)),
        Err(e) => Err((
            StatusCode::BAD_REQUEST,
            format!("the gzip body is invalid: {e}"),
        )),
    }
}

fn authorized(headers: &HeaderMap, query: &[(String, String)], expected: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Token ")
                .or_else(|| v.strip_prefix("Bearer "))
        })
        .or_else(|| param(query, "p"));
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
}
