//! `POST /api/v1/query`: SQL with results streamed in the asked format.
//!
//! The request is JSON `{"db": "...", "sql": "...", "format":
//! "json|jsonl|csv|arrow"}` (format defaults to json). The query runs on a
//! runtime of its own, so long queries do not slow writes down: it is
//! planned and its first batch computed before the answer starts, so that
//! errors found by then are a 400 with the engine's message (404 for an
//! unknown database); the rest streams batch by batch through a small
//! channel (a slow client slows the query, it does not fill memory). A
//! query past the timeout is stopped; if rows were already sent, the
//! response is cut off (the chunked body never ends properly), so a client
//! never takes a partial result for a whole one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use datafusion::error::DataFusionError;
use futures::StreamExt;
use query::{QueryEngine, QueryError};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant as Deadline};

use crate::app::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::format::{Encoder, OutputFormat};
use crate::metrics::QueryResult;
use crate::tokens::Scope;

/// The JSON body of a query request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// The database: its tables are the measurements written to it.
    pub db: String,
    /// The SQL.
    pub sql: String,
    /// The result format.
    #[serde(default)]
    pub format: OutputFormat,
}

/// `POST /api/v1/query`.
pub(crate) async fn query(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let raw = body::read(body, &headers, state.config.max_body_bytes).await?;
    let request: QueryRequest = serde_json::from_slice(&raw.decode()?).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid query request: {e}; expected JSON {{\"db\": \"...\", \"sql\": \"...\", \
             \"format\": \"json|jsonl|csv|arrow\"}}"
        ))
    })?;
    caller.require(Scope::Read, &request.db)?;
    run(&state, request).await
}

/// Starts the query on the query runtime and answers once its first batch
/// (or its error) is there.
async fn run(state: &Arc<AppState>, request: QueryRequest) -> Result<Response, ApiError> {
    let started = Instant::now();
    let deadline = Deadline::now() + state.config.query_timeout();
    let (ready_tx, ready_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    // Set once the last piece is sent: a body that ends without it (the
    // query task was dropped, e.g. at shutdown) ends with an error.
    let complete = Arc::new(AtomicBool::new(false));
    let engine = state.engine.clone();
    let st = Arc::clone(state);
    let format = request.format;
    let done = Arc::clone(&complete);
    state.query_runtime.spawn(async move {
        let result = produce(&engine, request, deadline, &st, ready_tx, tx, &done).await;
        st.metrics.query(result, started.elapsed());
    });
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(ApiError::internal(
                "the query ended unexpectedly; see the server log",
            ))
        }
    }
    let stream = futures::stream::unfold(
        (rx, complete, false),
        |(mut rx, complete, ended)| async move {
            if ended {
                return None;
            }
            match rx.recv().await {
                Some(piece) => Some((piece, (rx, complete, false))),
                None if complete.load(Ordering::Acquire) => None,
                None => {
                    let cut = std::io::Error::other("the query stopped before its end");
                    Some((Err(cut), (rx, complete, true)))
                }
            }
        },
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Plans and runs the query, sending its bytes to `tx`; answers `ready`
/// with the status before the first byte.
async fn produce(
    engine: &QueryEngine,
    request: QueryRequest,
    deadline: Deadline,
    state: &AppState,
    ready: oneshot::Sender<Result<(), ApiError>>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    complete: &AtomicBool,
) -> QueryResult {
    let timeout_secs = state.config.query_timeout_secs;
    let timed_out = || {
        ApiError::bad_request(format!(
            "the query ran longer than {timeout_secs} s (query-timeout-secs) and was stopped"
        ))
    };
    let mut stream = match timeout_at(deadline, engine.sql_stream(&request.db, &request.sql)).await
    {
        Err(_) => {
            let _ = ready.send(Err(timed_out()));
            return QueryResult::Timeout;
        }
        Ok(Err(e)) => {
            let _ = ready.send(Err(query_error(&e)));
            return QueryResult::Error;
        }
        Ok(Ok(stream)) => stream,
    };
    let mut encoder = match Encoder::new(request.format, &stream.schema()) {
        Ok(encoder) => encoder,
        Err(e) => {
            let error = match e {
                // The result cannot take this format: the request's fault.
                arrow::error::ArrowError::InvalidArgumentError(m) => ApiError::bad_request(m),
                e => ApiError::internal(format!("encoding the result: {e}")),
            };
            let _ = ready.send(Err(error));
            return QueryResult::Error;
        }
    };
    let first = match timeout_at(deadline, stream.next()).await {
        Err(_) => {
            let _ = ready.send(Err(timed_out()));
            return QueryResult::Timeout;
        }
        Ok(Some(Err(e))) => {
            let _ = ready.send(Err(query_error(&QueryError::Engine(e))));
            return QueryResult::Error;
        }
        Ok(Some(Ok(batch))) => Some(batch),
        Ok(None) => None,
    };
    if ready.send(Ok(())).is_err() {
        return QueryResult::Error;
    }
    if let Some(end) = sent(deliver(&tx, deadline, Ok(encoder.start())).await, false) {
        return end;
    }
    let mut batch = first;
    while let Some(b) = batch {
        let piece = encoder.encode(&b).map_err(std::io::Error::other);
        let failed = piece.is_err();
        if let Some(end) = sent(deliver(&tx, deadline, piece).await, failed) {
            return end;
        }
        // `timeout_at` looks at the clock only while its future waits; a
        // stream that is always ready must be stopped here.
        let next = if Deadline::now() >= deadline {
            Err(())
        } else {
            timeout_at(deadline, stream.next()).await.map_err(|_| ())
        };
        batch = match next {
            Err(()) => {
                let message = timed_out().message().to_owned();
                tracing::warn!("{message}; the response was cut off");
                let _ = deliver(&tx, deadline, Err(std::io::Error::other(message))).await;
                return QueryResult::Timeout;
            }
            Ok(Some(Err(e))) => {
                tracing::warn!("a query failed after its first rows were sent: {e}");
                let _ = deliver(&tx, deadline, Err(std::io::Error::other(e.to_string()))).await;
                return QueryResult::Error;
            }
            Ok(Some(Ok(b))) => Some(b),
            Ok(None) => None,
        };
    }
    let tail = encoder.finish();
    let failed = tail.is_err();
    let piece = tail.map_err(std::io::Error::other);
    match sent(deliver(&tx, deadline, piece).await, failed) {
        Some(end) => end,
        None => {
            complete.store(true, Ordering::Release);
            QueryResult::Ok
        }
    }
}

/// How the query ends after a delivery, if it ends there: a piece that was
/// an error, a client gone or too slow end it.
fn sent(delivery: Delivery, was_error: bool) -> Option<QueryResult> {
    match delivery {
        Delivery::Sent if !was_error => None,
        Delivery::Sent | Delivery::Gone => Some(QueryResult::Error),
        Delivery::Late => {
            tracing::warn!("a query was stopped: its client read too slowly for the timeout");
            Some(QueryResult::Timeout)
        }
    }
}

/// What became of a piece of the answer.
enum Delivery {
    /// Handed to the response body (or empty).
    Sent,
    /// The client went away.
    Gone,
    /// The deadline passed while the client was not reading.
    Late,
}

/// Hands a piece to the response body within the deadline.
async fn deliver(
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    deadline: Deadline,
    piece: Result<Vec<u8>, std::io::Error>,
) -> Delivery {
    if matches!(&piece, Ok(b) if b.is_empty()) {
        return Delivery::Sent;
    }
    match timeout_at(deadline, tx.send(piece.map(Bytes::from))).await {
        Ok(Ok(())) => Delivery::Sent,
        Ok(Err(_)) => Delivery::Gone,
        Err(_) => Delivery::Late,
    }
}

/// 404 for an unknown database, 500 for failures of the store or the
/// engine itself, 400 (with the engine's message) for everything else.
pub(crate) fn query_error(e: &QueryError) -> ApiError {
    match e {
        QueryError::DatabaseNotFound(db) => {
            ApiError::not_found(format!("database not found: {db:?}"))
        }
        QueryError::Engine(inner) => match inner.find_root() {
            DataFusionError::Internal(_)
            | DataFusionError::External(_)
            | DataFusionError::IoError(_)
            | DataFusionError::ObjectStore(_) => {
                tracing::error!("query failed: {inner}");
                ApiError::internal(format!("the query failed: {inner}"))
            }
            _ => ApiError::bad_request(inner.to_string()),
        },
    }
}
