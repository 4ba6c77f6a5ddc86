//! `GET /` and the assets it loads. The shell learns from the server
//! whether tokens are needed (`data-auth` on `<body>`), so that with
//! `--no-auth` it skips the login without a probing request.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::ApiError;

const INDEX: &str = include_str!("assets/index.html");

/// The assets: name, content type, text.
pub(super) const ASSETS: [(&str, &str, &str); 2] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
];

/// Scripts and styles from this server only, no inline code, no frames:
/// the token lives in the page's storage, so nothing else may run there.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Headers every dashboard file carries.
fn headers(content_type: &'static str) -> [(HeaderName, &'static str); 5] {
    [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        // The files change with the binary: revalidate rather than cache.
        (header::CACHE_CONTROL, "no-cache"),
    ]
}

/// `GET /`: the app shell.
pub(super) async fn index(State(state): State<Arc<AppState>>) -> Response {
    let auth = if state.config.no_auth { "off" } else { "on" };
    let html = INDEX
        .replace("{{auth}}", auth)
        .replace("{{version}}", env!("CARGO_PKG_VERSION"));
    (headers("text/html; charset=utf-8"), html).into_response()
}

/// `GET /dashboard/{asset}`.
pub(super) async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, text) = ASSETS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no dashboard asset {name:?}"),
        )
    })?;
    Ok((headers(content_type), *text).into_response())
}
