//! Who is asking: the token of a request, from any of the places InfluxDB
//! clients put it, and what it allows.
//!
//! Accepted, in this order: `Authorization: Token <t>` or `Bearer <t>`
//! (InfluxDB 2's v1-compatible `Token user:<t>` too), `Authorization: Basic`
//! with the token as password (or as user name with an empty password), and
//! the v1 query parameter `p` (`u` is ignored). No token or an unknown one
//! is answered with 401, a token without the needed scope or database with
//! 403.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::app::AppState;
use crate::error::{ApiError, Flavor};
use crate::tokens::{Grant, Scope};

/// Who a request comes from; put in the request's extensions by
/// [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Authentication is off (`--no-auth`) or the endpoint is public.
    Anyone,
    /// A verified token.
    Token(Grant),
}

impl Caller {
    /// Whether the caller may do `need` on database `db`.
    pub(crate) fn may(&self, need: Scope, db: &str) -> bool {
        match self {
            Caller::Anyone => true,
            Caller::Token(grant) => grant.allows(need, db),
        }
    }

    /// 403 unless the caller may do `need` on database `db`.
    pub(crate) fn require(&self, need: Scope, db: &str) -> Result<(), ApiError> {
        match self {
            Caller::Token(grant) if !grant.allows(need, db) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} may not {} database {db:?}; that needs a {} or admin token for it",
                    grant.describe(),
                    verb(need),
                    need
                ),
            )),
            _ => Ok(()),
        }
    }

    /// 403 unless the caller has `need` on at least one database.
    pub(crate) fn require_scope(&self, need: Scope) -> Result<(), ApiError> {
        match self {
            Caller::Token(grant) if !grant.scope.allows(need) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("{} lacks the {need} scope", grant.describe()),
            )),
            _ => Ok(()),
        }
    }
}

fn verb(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "read",
        Scope::Write => "write to",
        Scope::Admin => "manage",
    }
}

/// Endpoints anyone may call.
fn is_public(path: &str, state: &AppState) -> bool {
    matches!(path, "/ping" | "/health")
        || (path == "/metrics" && !state.config.metrics_auth)
        || crate::dashboard::is_public(path)
}

/// Middleware: verifies the request's token and records the [`Caller`], or
/// answers 401.
pub(crate) async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let caller =
        if state.config.no_auth || is_public(path, &state) {
            Caller::Anyone
        } else {
            let flavor = Flavor::of_path(path);
            let unauthorized = |m: String| {
                ApiError::new(StatusCode::UNAUTHORIZED, m)
                    .flavor(flavor)
                    .into_response()
            };
            match credentials(request.headers(), request.uri().query()) {
                Err(message) => return unauthorized(message),
                Ok(None) => return unauthorized(
                    "missing token: send \"Authorization: Token <token>\" (or Bearer, or Basic \
                     with the token as password, or the v1 parameter p=<token>)"
                        .to_owned(),
                ),
                Ok(Some(secret)) => match state.verifier.verify(&secret) {
                    Some(grant) => Caller::Token(grant),
                    None => return unauthorized("unknown token".to_owned()),
                },
            }
        };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The token a request carries, if any; an error message for an
/// `Authorization` header that cannot be read.
pub(crate) fn credentials(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<String>, String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| "the Authorization header is not ASCII".to_owned())?;
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        return match scheme.to_ascii_lowercase().as_str() {
            // `Token user:password` is InfluxDB 2's v1-compatible form.
            "token" | "bearer" => Ok(Some(
                rest.rsplit_once(':').map_or(rest, |(_, t)| t).to_owned(),
            )),
            "basic" => {
                let decoded = STANDARD
                    .decode(rest)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        "the Basic credentials are not base64 of user:password".to_owned()
                    })?;
                let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
                Ok(Some(
                    if password.is_empty() { user } else { password }.to_owned(),
                ))
            }
            other => Err(format!(
                "Authorization scheme {other:?} is not supported; use Token, Bearer or Basic"
            )),
        };
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    Ok(params.into_iter().find(|(k, _)| k == "p").map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn every_form_of_credentials() {
        let t = Some("weir_abc".to_owned());
        assert_eq!(
            credentials(&with_auth("Token weir_abc"), None),
            Ok(t.clone())
        );
        assert_eq!(
            credentials(&with_auth("bearer  weir_abc "), None),
            Ok(t.clone())
        );
        assert_eq!(
            credentials(&with_auth("Token me:weir_abc"), None),
            Ok(t.clone())
        );
        let basic = format!("Basic {}", STANDARD.encode("anyone:weir_abc"));
        assert_eq!(credentials(&with_auth(&basic), None), Ok(t.clone()));
        let basic = format!("Basic {}", STANDARD.encode("weir_abc:"));
        assert_eq!(credentials(&with_auth(&basic), None), Ok(t.clone()));
        assert_eq!(
            credentials(&HeaderMap::new(), Some("db=x&u=me&p=weir_abc")),
            Ok(t)
        );
        assert_eq!(credentials(&HeaderMap::new(), Some("db=x")), Ok(None));
        assert!(credentials(&with_auth("Digest x"), None)
            .unwrap_err()
            .contains("\"digest\" is not supported"));
        assert!(credentials(&with_auth("Basic !!!"), None).is_err());
    }
}
