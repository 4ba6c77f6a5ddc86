//! Errors: [`ServerError`] for starting and stopping a server, [`ApiError`]
//! for what an HTTP request is answered with.

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::tokens::TokenError;

/// Why a server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration file or a setting is wrong.
    #[error("configuration {path}: {reason}")]
    Config {
        /// The file (or `(settings)` for a value from the command line).
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the server was doing.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address from the configuration.
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("opening the store in {path}: {source}")]
    Store {
        /// The data directory.
        path: PathBuf,
        /// The store's error.
        source: store::StoreError,
    },
    /// A database's enrichment could not be set up (its MaxMind DB file
    /// is missing or not one).
    #[error("database {db}: enrichment: {error}")]
    Enrich {
        /// The database whose `[databases.NAME]` table names it.
        db: String,
        /// What went wrong, naming the file (in the message, not as a
        /// `source`, so that a chain prints it once).
        error: enrich::EnrichError,
    },
    /// The query engine could not be set up.
    #[error("setting up the query engine: {0}")]
    Query(#[from] query::QueryError),
    /// The token file could not be read or written.
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// A thread or runtime the server needs could not be started.
    #[error("starting {what}: {reason}")]
    Runtime {
        /// What was being started.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

/// Which API family a request belongs to; it decides the error body shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// InfluxDB v1 and weir's own endpoints: `{"error": "..."}`.
    V1,
    /// InfluxDB v2 endpoints: `{"code": "...", "message": "..."}`.
    V2,
}

impl Flavor {
    /// The flavor of the endpoint at `path`.
    pub(crate) fn of_path(path: &str) -> Flavor {
        if path.starts_with("/api/v2/") {
            Flavor::V2
        } else {
            Flavor::V1
        }
    }
}

/// An HTTP error answer: a status and a message that names what was wrong,
/// as JSON in the shape of the endpoint's API family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    flavor: Flavor,
    /// 401 answers carry a `WWW-Authenticate` challenge.
    challenge: bool,
}

impl ApiError {
    /// An error with `status` and `message`, in the v1 shape.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            flavor: Flavor::V1,
            challenge: status == StatusCode::UNAUTHORIZED,
        }
    }

    /// 400 Bad Request.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 Internal Server Error.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The same error in the shape of `flavor`.
    pub(crate) fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The v2 `code` for the status, as InfluxDB 2 names them.
    fn v2_code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "invalid",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable entity",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_client_error() => "invalid",
            _ => "internal error",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.flavor {
            Flavor::V1 => serde_json::json!({ "error": self.message }),
            Flavor::V2 => serde_json::json!({ "code": self.v2_code(), "message": self.message }),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Token realm=\"weir\", Basic realm=\"weir\""),
            );
        }
        response
    }
}

/// The answer to a store error: the status says whose fault it is, the
/// message what failed.
pub(crate) fn store_error(e: &store::StoreError) -> ApiError {
    use store::StoreError as E;
    let status = match e {
        E::DatabaseNotFound(_) => StatusCode::NOT_FOUND,
        E::InvalidDatabaseName(_) | E::InvalidRetention => StatusCode::BAD_REQUEST,
        E::WriteTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        // Persisting is behind: the client should retry later (its batch
        // was not stored).
        E::WalUnavailable(_) | E::BufferFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match e {
        E::DatabaseNotFound(db) => format!("database not found: {db:?}"),
        other if status.is_server_error() => format!("storing the write failed: {other}"),
        other => other.to_string(),
    };
    ApiError::new(status, message)
}
