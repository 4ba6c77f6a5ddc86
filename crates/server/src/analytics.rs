//! `GET /api/v1/cdf`, `/api/v1/quantiles`, `/api/v1/rainbow`,
//! `/api/v1/pivot` and `/api/v1/utilisation`: the network analytics of `query::analytics` over HTTP.
//! Parameters are query-string pairs (`db`, `table`, `field`, `start`,
//! `end`, `where` repeatable, `group_by`, `every`, and each endpoint's own);
//! the answer is JSON, or CSV with `format=csv`. A read token for the
//! database is needed.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use query::analytics::{self, AnalyticsError, Answer, Params};
use query::QueryEngine;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::sql::query_error;
use crate::tokens::Scope;

/// Which question.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Cdf,
    Quantiles,
    Rainbow,
    Pivot,
    Utilisation,
}

impl Kind {
    /// The endpoint's own parameters.
    fn extra_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Cdf => &["points", "source"],
            Kind::Quantiles => &["q", "source"],
            Kind::Rainbow => &["category", "source"],
            Kind::Pivot => &["rows", "columns", "agg", "source"],
            Kind::Utilisation => &["node", "role", "window", "peak_window"],
        }
    }

    /// Its parameters from query-string pairs; 400 naming a wrong one.
    pub(crate) fn params(self, pairs: &[(String, String)]) -> Result<Params, ApiError> {
        Params::from_pairs(pairs, self.extra_keys()).map_err(ApiError::bad_request)
    }

    async fn run(self, engine: &QueryEngine, p: &Params) -> Result<Answer, AnalyticsError> {
        match self {
            Kind::Cdf => analytics::cdf(engine, p).await,
            Kind::Quantiles => analytics::quantiles(engine, p).await,
            Kind::Rainbow => analytics::rainbow(engine, p).await,
            Kind::Pivot => analytics::pivot(engine, p).await,
            Kind::Utilisation => analytics::utilisation(engine, p).await,
        }
    }
}

/// `GET /api/v1/cdf`.
pub(crate) async fn cdf(
    state: State<Arc<AppState>>,
    caller: Extension<Caller>,
    query: RawQuery,
) -> Result<Response, ApiError> {
    serve(state, caller, query, Kind::Cdf).await
}

/// `GET /api/v1/quantiles`.
pub(crate) async fn quantiles(
    state: State<Arc<AppState>>,
    caller: Extension<Caller>,
    query: RawQuery,
) -> Result<Response, ApiError> {
    serve(state, caller, query, Kind::Quantiles).await
}

/// `GET /api/v1/rainbow`.
pub(crate) async fn rainbow(
    state: State<Arc<AppState>>,
    caller: Extension<Caller>,
    query: RawQuery,
) -> Result<Response, ApiError> {
    serve(state, caller, query, Kind::Rainbow).await
}

/// `GET /api/v1/pivot`.
pub(crate) async fn pivot(
    state: State<Arc<AppState>>,
    caller: Extension<Caller>,
    query: RawQuery,
) -> Result<Response, ApiError> {
    serve(state, caller, query, Kind::Pivot).await
}

/// `GET /api/v1/utilisation`.
pub(crate) async fn utilisation(
    state: State<Arc<AppState>>,
    caller: Extension<Caller>,
    query: RawQuery,
) -> Result<Response, ApiError> {
    serve(state, caller, query, Kind::Utilisation).await
}

async fn serve(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    kind: Kind,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let csv = match pairs
        .iter()
        .rfind(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str())
    {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format: {other:?}; expected json or csv"
            )))
        }
    };
    let params = kind.params(&pairs)?;
    let answer = ask(&state, &caller, kind, params)
        .await?
        .map_err(|e| analytics_error(&e))?;
    Ok(if csv {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            answer.csv,
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            answer.json.to_string(),
        )
            .into_response()
    })
}

/// A query string's pairs.
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("query string: {e}")))
}

/// Asks `kind` of the engine for a caller with read access to the
/// database. The outer error is the caller's scope, the timeout or a failed
/// task; the inner one the question's own.
pub(crate) async fn ask(
    state: &AppState,
    caller: &Caller,
    kind: Kind,
    params: Params,
) -> Result<Result<Answer, AnalyticsError>, ApiError> {
    caller.require(Scope::Read, &params.db)?;
    let engine = state.engine.clone();
    bounded(state, async move { kind.run(&engine, &params).await }).await
}

/// Runs `work` on the query runtime (apart from the HTTP threads) under
/// the query timeout.
pub(crate) async fn bounded<T: Send + 'static>(
    state: &AppState,
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    let limit = state.config.query_timeout();
    let limit_secs = state.config.query_timeout_secs;
    let task = state
        .query_runtime
        .spawn(async move { tokio::time::timeout(limit, work).await });
    match task.await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(ApiError::bad_request(format!(
            "the question took longer than {limit_secs} s (query-timeout-secs) and was stopped"
        ))),
        Err(e) => Err(ApiError::internal(format!("the query task failed: {e}"))),
    }
}

/// The answer to an analytics question that failed.
pub(crate) fn analytics_error(e: &AnalyticsError) -> ApiError {
    match e {
        AnalyticsError::BadRequest(m) | AnalyticsError::Missing(m) => ApiError::bad_request(m),
        AnalyticsError::Query(e) => query_error(e),
    }
}
