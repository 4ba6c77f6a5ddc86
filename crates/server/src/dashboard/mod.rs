//! The dashboard: a single-page app served at `/` (HTML, JavaScript and
//! CSS compiled into the binary: no build step, nothing from elsewhere),
//! charts drawn on the server as SVG from the analytics API, and a summary
//! of hosts and interfaces. The page holds no data and needs no token;
//! everything it shows comes from the token-checked endpoints below, with
//! the token the user logs in with.
//!
//! | endpoint | what |
//! |---|---|
//! | `GET /` | the app shell ([`shell`]) |
//! | `GET /dashboard/app.js`, `/dashboard/app.css` | its script and style |
//! | `GET /api/v1/chart/{cdf,bands,lines,rainbow,utilisation,balance}.svg` | a chart ([`chart`]) |
//! | `GET /api/v1/overview?db=` | latest state of hosts and interfaces ([`overview`]) |

mod chart;
mod overview;
mod shell;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::app::AppState;

/// The dashboard's routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(shell::index))
        .route("/dashboard/{asset}", get(shell::asset))
        .route("/api/v1/chart/{file}", get(chart::chart))
        .route("/api/v1/overview", get(overview::overview))
}

/// Paths anyone may fetch: the shell and its assets, which hold no data.
pub(crate) fn is_public(path: &str) -> bool {
    path == "/"
        || shell::ASSETS
            .iter()
            .any(|(name, _, _)| path.strip_prefix("/dashboard/") == Some(name))
}

/// The metrics label of a dashboard path, if it is one.
pub(crate) fn endpoint(path: &str) -> Option<&'static str> {
    if path == "/" {
        Some("/")
    } else if path.starts_with("/dashboard/") {
        Some("/dashboard/{asset}")
    } else if path.starts_with("/api/v1/chart/") {
        Some("/api/v1/chart/{file}")
    } else if path == "/api/v1/overview" {
        Some("/api/v1/overview")
    } else {
        None
    }
}
