//! The router: endpoints, the shared state, and the layers every request
//! passes (metrics and version headers outside, authentication inside).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use enrich::Enricher;
use query::QueryEngine;
use serde_json::json;
use store::Store;

use crate::auth::{self, Caller};
use crate::config::ServerConfig;
use crate::error::{ApiError, Flavor};
use crate::metrics::Metrics;
use crate::tokens::{Scope, Tokens, Verifier};
use crate::{analytics, dashboard, influxql, sql, tokens_api, write};

/// The InfluxDB version weir answers as, for clients that look.
pub const INFLUXDB_VERSION: &str = "1.8.10";

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: ServerConfig,
    pub(crate) store: Arc<Store>,
    /// Per database, what is done to lines before they are stored.
    pub(crate) enrichers: HashMap<String, Enricher>,
    pub(crate) engine: QueryEngine,
    pub(crate) tokens: Tokens,
    pub(crate) verifier: Verifier,
    pub(crate) metrics: Metrics,
    /// Where queries run, apart from the HTTP threads.
    pub(crate) query_runtime: tokio::runtime::Handle,
    pub(crate) started: Instant,
}

/// Every endpoint, with its layers.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ping", get(ping).head(ping))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/write", post(write::write_v1))
        .route("/api/v2/write", post(write::write_v2))
        .route("/query", get(influxql::query_v1).post(influxql::query_v1))
        .route("/api/v1/query", post(sql::query))
        .route("/api/v1/cdf", get(analytics::cdf))
        .route("/api/v1/quantiles", get(analytics::quantiles))
        .route("/api/v1/rainbow", get(analytics::rainbow))
        .route("/api/v1/pivot", get(analytics::pivot))
        .route("/api/v1/utilisation", get(analytics::utilisation))
        .route(
            "/api/v1/tokens",
            get(tokens_api::list).post(tokens_api::create),
        )
        .route("/api/v1/tokens/{id}", delete(tokens_api::delete))
        .merge(dashboard::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::authenticate,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

/// The metrics label of a path: a fixed set, so that scanners cannot make
/// up new series.
fn endpoint(path: &str) -> &'static str {
    match path {
        "/ping" => "/ping",
        "/health" => "/health",
        "/metrics" => "/metrics",
        "/write" => "/write",
        "/api/v2/write" => "/api/v2/write",
        "/query" => "/query",
        "/api/v1/query" => "/api/v1/query",
        "/api/v1/cdf" => "/api/v1/cdf",
        "/api/v1/quantiles" => "/api/v1/quantiles",
        "/api/v1/rainbow" => "/api/v1/rainbow",
        "/api/v1/pivot" => "/api/v1/pivot",
        "/api/v1/utilisation" => "/api/v1/utilisation",
        "/api/v1/tokens" => "/api/v1/tokens",
        p if p.starts_with("/api/v1/tokens/") => "/api/v1/tokens/{id}",
        p => dashboard::endpoint(p).unwrap_or("other"),
    }
}

/// Outermost layer: counts each answer by endpoint and status, and adds the
/// version headers InfluxDB clients look at.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let endpoint = endpoint(request.uri().path());
    let mut response = next.run(request).await;
    state.metrics.request(endpoint, response.status().as_u16());
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("x-influxdb-version"),
        HeaderValue::from_static(INFLUXDB_VERSION),
    );
    headers.insert(
        HeaderName::from_static("x-influxdb-build"),
        HeaderValue::from_static("OSS"),
    );
    headers.insert(
        HeaderName::from_static("x-weir-version"),
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    response
}

/// `GET|HEAD /ping`: 204, or with `?verbose=true` 200 and the version.
async fn ping(RawQuery(query): RawQuery) -> Response {
    let verbose = write::params(query.as_deref())
        .ok()
        .and_then(|p| write::param(&p, "verbose").map(|v| v == "true"))
        .unwrap_or(false);
    if verbose {
        Json(json!({"version": INFLUXDB_VERSION, "weir": env!("CARGO_PKG_VERSION")}))
            .into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// `GET /health`.
async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({
        "name": "weir",
        "message": "ready for queries and writes",
        "status": "pass",
        "checks": [],
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
    }))
}

/// `GET /metrics`: Prometheus text format 0.0.4.
async fn metrics(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    caller.require_scope(Scope::Read)?;
    let st = Arc::clone(&state);
    let text = tokio::task::spawn_blocking(move || st.metrics.render(&st.store))
        .await
        .map_err(|_| ApiError::internal("rendering metrics failed unexpectedly"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn not_found(request: Request) -> ApiError {
    let path = request.uri().path();
    ApiError::not_found(format!(
        "no endpoint {path}; weir serves /write, /api/v2/write, /query, /api/v1/query, \
         /api/v1/cdf, /api/v1/quantiles, /api/v1/rainbow, /api/v1/pivot, /api/v1/utilisation, \
         /api/v1/chart/…, /api/v1/overview, /api/v1/tokens, /ping, /health, /metrics and \
         the dashboard at /"
    ))
    .flavor(Flavor::of_path(path))
}
