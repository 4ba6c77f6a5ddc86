//! Token management over HTTP, for admin tokens: `GET /api/v1/tokens`,
//! `POST /api/v1/tokens` `{"db": "name" | "*", "scope": "read|write|admin",
//! "description": "..."}` (201 with the new token, shown once) and
//! `DELETE /api/v1/tokens/{id}`. An admin token for one database manages
//! the tokens of that database; one for `*` manages all.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::ApiError;
use crate::tokens::{Scope, TokenError, TokenInfo, Tokens, ALL_DATABASES};

/// The body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenRequest {
    db: String,
    scope: Scope,
    #[serde(default)]
    description: String,
}

fn info_json(t: &TokenInfo) -> Value {
    json!({"id": t.id, "scope": t.scope, "db": t.db, "description": t.description, "created": t.created})
}

/// Runs a token-file operation on the blocking pool.
async fn on_file<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Tokens) -> Result<T, TokenError> + Send + 'static,
) -> Result<T, ApiError> {
    let st = Arc::clone(state);
    tokio::task::spawn_blocking(move || f(&st.tokens))
        .await
        .map_err(|_| ApiError::internal("the token operation failed unexpectedly"))?
        .map_err(|e| match e {
            TokenError::NotFound(_) => ApiError::not_found(e.to_string()),
            TokenError::InvalidDatabase(_) | TokenError::InvalidScope(_) => {
                ApiError::bad_request(e.to_string())
            }
            other => ApiError::internal(other.to_string()),
        })
}

/// `GET /api/v1/tokens`.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope(Scope::Admin)?;
    let tokens = on_file(&state, Tokens::list).await?;
    let visible: Vec<Value> = tokens
        .iter()
        .filter(|t| caller.may(Scope::Admin, &t.db))
        .map(info_json)
        .collect();
    Ok(Json(json!({ "tokens": visible })))
}

/// `POST /api/v1/tokens`.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let raw = body::read(body, &headers, state.config.max_body_bytes).await?;
    let request: NewTokenRequest = serde_json::from_slice(&raw.decode()?).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid token request: {e}; expected JSON {{\"db\": \"name or *\", \"scope\": \
             \"read|write|admin\", \"description\": \"...\"}}"
        ))
    })?;
    caller.require(Scope::Admin, &request.db)?;
    let db = (request.db != ALL_DATABASES).then_some(request.db);
    let new = on_file(&state, move |t| {
        t.create(request.scope, db.as_deref(), &request.description)
    })
    .await?;
    let mut body = info_json(&new.info);
    body["token"] = Value::String(new.secret);
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /api/v1/tokens/{id}`.
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_scope(Scope::Admin)?;
    let tokens = on_file(&state, Tokens::list).await?;
    let target = tokens
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(TokenError::NotFound(id.clone()).to_string()))?;
    caller.require(Scope::Admin, &target.db)?;
    on_file(&state, move |t| t.delete(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
