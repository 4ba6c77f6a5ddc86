//! The write endpoints, with InfluxDB's semantics:
//!
//! - `POST /write?db=&precision=&rp=` (v1): 204; with bad lines the others
//!   are stored and the answer is 400 `{"error": "partial write: …"}`
//!   naming each bad line (at most [`MAX_LISTED`]).
//! - `POST /api/v2/write?bucket=&org=&precision=` (v2): 204; a batch with a
//!   line that does not parse is refused whole (400
//!   `{"code":"invalid","message":…}`); lines that parse but conflict with
//!   a column's type are refused alone (422, the rest stored), as InfluxDB 2
//!   does.
//!
//! A database with enrichment configured (`[databases.NAME] enrich`) has
//! each batch rewritten by its [`enrich::Enricher`] first: addresses in
//! its IP tags masked, a country tag added. Lines keep their numbers, so
//! bad lines are reported as without it.
//!
//! `Store::write_lines` returns once the write is durable (WAL fsync), so
//! it runs on the blocking pool and a 204 means the points survive a crash.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use lineproto::{ParseOptions, Precision};
use store::{RejectedLine, StoreConfig, WriteSummary};

use crate::app::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{store_error, ApiError, Flavor};
use crate::tokens::Scope;

/// At most this many bad lines are named in an error answer.
pub const MAX_LISTED: usize = 100;

/// The query parameters of a request, in order; repeated keys keep the first.
pub(crate) fn params(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
}

/// The value of parameter `key`, if given and not empty.
pub(crate) fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// A v1 `precision`: n, ns, u, us, µs, ms, s, m, h (default ns).
fn precision_v1(value: Option<&str>) -> Result<Precision, ApiError> {
    Ok(match value {
        None | Some("n" | "ns") => Precision::Nanoseconds,
        Some("u" | "us" | "µs") => Precision::Microseconds,
        Some("ms") => Precision::Milliseconds,
        Some("s") => Precision::Seconds,
        Some("m") => Precision::Minutes,
        Some("h") => Precision::Hours,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid precision {other:?}: expected one of n, ns, u, us, ms, s, m, h"
            )))
        }
    })
}

/// A v2 `precision`: ns, us, ms, s (default ns).
fn precision_v2(value: Option<&str>) -> Result<Precision, ApiError> {
    Ok(match value {
        None | Some("ns") => Precision::Nanoseconds,
        Some("us") => Precision::Microseconds,
        Some("ms") => Precision::Milliseconds,
        Some("s") => Precision::Seconds,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid precision {other:?}: expected one of ns, us, ms, s"
            ))
            .flavor(Flavor::V2))
        }
    })
}

/// "line 2, col 5: …; line 7: …; and 3 more".
fn list(rejected: &[RejectedLine]) -> String {
    let mut out: Vec<String> = rejected
        .iter()
        .take(MAX_LISTED)
        .map(ToString::to_string)
        .collect();
    if rejected.len() > MAX_LISTED {
        out.push(format!("and {} more", rejected.len() - MAX_LISTED));
    }
    out.join("; ")
}

/// Stores `body` in `db` off the async threads, counting it in the metrics.
async fn store_lines(
    state: &Arc<AppState>,
    db: String,
    raw: body::RawBody,
    precision: Precision,
    all_or_nothing: bool,
) -> Result<WriteSummary, ApiError> {
    let st = Arc::clone(state);
    let task = tokio::task::spawn_blocking(move || {
        let received = raw.decode()?;
        // Enriched before anything else reads it, so the rest of the write
        // path (and so the disk) only ever sees masked addresses.
        let body = match st.enrichers.get(&db) {
            Some(enricher) => enricher.rewrite(&received).map_err(|e| {
                tracing::error!("enriching a batch for database {db:?}: {e}");
                ApiError::internal(format!("enrichment failed, nothing was stored: {e}"))
            })?,
            None => Cow::Borrowed(&received[..]),
        };
        if all_or_nothing {
            let errors = parse_errors(&body, precision);
            if !errors.is_empty() {
                let total = lineproto::parse_lines(&body).count();
                st.metrics.lines(0, total, received.len());
                return Err(ApiError::bad_request(format!(
                    "{} of {total} lines could not be parsed; nothing was stored: {}",
                    errors.len(),
                    list(&errors)
                )));
            }
        }
        let started = Instant::now();
        let result = st.store.write_lines(&db, &body, precision);
        st.metrics.write_duration.observe(started.elapsed());
        let summary = result.map_err(|e| store_error(&e))?;
        st.metrics
            .lines(summary.accepted, summary.rejected.len(), received.len());
        Ok(summary)
    });
    task.await.map_err(|e| {
        tracing::error!("a write task failed: {e}");
        ApiError::internal("the write failed unexpectedly; see the server log")
    })?
}

/// The lines of `body` that do not parse, with the store's limits.
fn parse_errors(body: &[u8], precision: Precision) -> Vec<RejectedLine> {
    let defaults = StoreConfig::default();
    let opts = ParseOptions {
        precision,
        max_line_bytes: defaults.max_line_bytes,
        max_token_bytes: defaults.max_token_bytes,
    };
    opts.parse(body)
        .filter_map(Result::err)
        .map(|e| RejectedLine {
            line: e.line,
            column: Some(e.column),
            reason: e.kind.to_string(),
        })
        .collect()
}

/// `POST /write`: InfluxDB v1.
pub(crate) async fn write_v1(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let params = params(query.as_deref())?;
    let db = param(&params, "db")
        .ok_or_else(|| ApiError::bad_request("database is required: add ?db=<name>"))?
        .to_owned();
    let precision = precision_v1(param(&params, "precision"))?;
    caller.require(Scope::Write, &db)?;
    let raw = body::read(body, &headers, state.config.max_body_bytes).await?;
    let summary = store_lines(&state, db, raw, precision, false).await?;
    if summary.rejected.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let n = summary.rejected.len();
    let message = if summary.accepted > 0 {
        format!(
            "partial write: {n} of {} lines rejected, the other {} stored: {}",
            n + summary.accepted,
            summary.accepted,
            list(&summary.rejected)
        )
    } else {
        format!(
            "{n} lines rejected, none stored: {}",
            list(&summary.rejected)
        )
    };
    Err(ApiError::bad_request(message))
}

/// `POST /api/v2/write`: InfluxDB v2.
pub(crate) async fn write_v2(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let v2 = |e: ApiError| e.flavor(Flavor::V2);
    let params = params(query.as_deref()).map_err(v2)?;
    // InfluxDB 1.8's v2 API takes "database/retention-policy" as bucket.
    let bucket = param(&params, "bucket").ok_or_else(|| {
        v2(ApiError::bad_request(
            "bucket is required: add ?bucket=<name>",
        ))
    })?;
    let db = bucket
        .split_once('/')
        .map_or(bucket, |(db, _)| db)
        .to_owned();
    let precision = precision_v2(param(&params, "precision"))?;
    caller.require(Scope::Write, &db).map_err(v2)?;
    let raw = body::read(body, &headers, state.config.max_body_bytes)
        .await
        .map_err(v2)?;
    let summary = store_lines(&state, db.clone(), raw, precision, true)
        .await
        .map_err(|e| {
            if e.status() == StatusCode::NOT_FOUND {
                ApiError::not_found(format!("bucket {db:?} not found"))
            } else {
                e
            }
        })
        .map_err(v2)?;
    if summary.rejected.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    Err(v2(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!(
            "partial write: {} of {} lines refused (they conflict with existing columns), the other {} stored: {}",
            summary.rejected.len(),
            summary.rejected.len() + summary.accepted,
            summary.accepted,
            list(&summary.rejected)
        ),
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn precisions_per_api() {
        for (name, p) in [
            ("n", Precision::Nanoseconds),
            ("u", Precision::Microseconds),
            ("ms", Precision::Milliseconds),
            ("s", Precision::Seconds),
            ("m", Precision::Minutes),
            ("h", Precision::Hours),
        ] {
            assert_eq!(precision_v1(Some(name)).unwrap(), p);
        }
        assert_eq!(precision_v1(None).unwrap(), Precision::Nanoseconds);
        assert_eq!(precision_v2(Some("us")).unwrap(), Precision::Microseconds);
        assert!(precision_v2(Some("h")).is_err());
        assert!(precision_v1(Some("auto"))
            .unwrap_err()
            .message()
            .contains("\"auto\""));
    }

    #[test]
    fn long_lists_are_capped() {
        let rejected: Vec<RejectedLine> = (1..=150)
            .map(|line| RejectedLine {
                line,
                column: None,
                reason: "bad".into(),
            })
            .collect();
        let text = list(&rejected);
        assert!(text.starts_with("line 1: bad; line 2: bad"));
        assert!(text.ends_with("line 100: bad; and 50 more"), "{text}");
    }
}
