//! `GET /api/v1/chart/{name}.svg`: an analytics question drawn as SVG
//! (crate `charts`). The question's parameters are the analytics
//! endpoint's (`db`, `table`, `field`, `start`, `end`, `where`,
//! `group_by`, `every`, and the endpoint's own); the drawing's are
//! `width`, `height` (of each panel), `title`, `unit` and `scale` (a factor
//! applied to values). Access is the analytics endpoint's: a read token
//! for the database.
//!
//! A table or column that does not exist yet (nothing was ever written
//! with it) and a database that does not exist are charts that say "no
//! data" and why, not errors: a dashboard asks before the data comes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use charts::analytics::{Chart, Options};
use query::analytics::{AnalyticsError, Params};
use query::QueryError;
use serde_json::json;

use crate::analytics::{analytics_error, ask, query_pairs, Kind};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The analytics question a chart draws.
fn kind(chart: Chart) -> Kind {
    match chart {
        Chart::Cdf => Kind::Cdf,
        Chart::Bands | Chart::Lines => Kind::Quantiles,
        Chart::Rainbow => Kind::Rainbow,
        Chart::Utilisation | Chart::Balance => Kind::Utilisation,
    }
}

/// `GET /api/v1/chart/{file}`.
pub(super) async fn chart(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let chart = file
        .strip_suffix(".svg")
        .and_then(Chart::from_name)
        .ok_or_else(|| {
            let names: Vec<String> = Chart::ALL
                .iter()
                .map(|c| format!("{}.svg", c.name()))
                .collect();
            ApiError::not_found(format!("no chart {file:?}; there are {}", names.join(", ")))
        })?;
    let mut pairs = query_pairs(query.as_deref())?;
    let options = take_options(&mut pairs, chart)?;
    let kind = kind(chart);
    if chart == Chart::Lines && !pairs.iter().any(|(k, _)| k == "q") {
        // A line is one quantile: the median unless asked otherwise.
        pairs.push(("q".to_owned(), "0.5".to_owned()));
    }
    let mut params = kind.params(&pairs)?;
    if chart.has_buckets() && params.every.is_none() {
        params.every = Some(default_every(&params));
    }
    let stub = stub_answer(&params);
    let svg = match ask(&state, &caller, kind, params).await? {
        Ok(answer) => charts::analytics::draw(chart, &answer.json, &options),
        Err(AnalyticsError::Missing(why)) => {
            charts::empty(&charts::analytics::frame(chart, &stub, &options), &why)
        }
        Err(AnalyticsError::Query(QueryError::DatabaseNotFound(db))) => charts::empty(
            &charts::analytics::frame(chart, &stub, &options),
            &format!("database {db:?} does not exist"),
        ),
        Err(e) => return Err(analytics_error(&e)),
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

/// What an answer says about its question, for the title of a chart that
/// has no answer.
fn stub_answer(p: &Params) -> serde_json::Value {
    json!({
        "table": p.table,
        "field": p.field,
        "every": p.every.map(|e| humantime::format_duration(e).to_string()),
        "category": p.extra("category").unwrap_or("error"),
        "node": p.extra("node").unwrap_or("host"),
    })
}

/// The most characters of a title or unit.
const MAX_TEXT: usize = 200;

/// Takes the drawing's parameters out of `pairs`; 400 naming a wrong one.
fn take_options(pairs: &mut Vec<(String, String)>, chart: Chart) -> Result<Options, ApiError> {
    let mut options = Options::default();
    let mut rest = Vec::with_capacity(pairs.len());
    for (key, value) in pairs.drain(..) {
        match key.as_str() {
            "width" => {
                options.width =
                    number(&key, &value, charts::Frame::MIN_WIDTH, charts::Frame::MAX_WIDTH)?;
            }
            "height" => {
                options.height = number(
                    &key,
                    &value,
                    charts::Frame::MIN_HEIGHT,
                    charts::Frame::MAX_HEIGHT,
                )?;
            }
            "scale" => match value.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => options.scale = s,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "scale: {value:?} is not a positive number"
                    )))
                }
            },
            "title" | "unit" if value.chars().count() > MAX_TEXT => {
                return Err(ApiError::bad_request(format!(
                    "{key}: longer than {MAX_TEXT} characters"
                )))
            }
            "title" => options.title = Some(value),
            "unit" => options.unit = Some(value),
            "format" => {
                return Err(ApiError::bad_request(format!(
                    "format: a chart is SVG; for its figures ask /api/v1/{}?format=csv with the same parameters",
                    chart.endpoint()
                )))
            }
            _ => rest.push((key, value)),
        }
    }
    *pairs = rest;
    Ok(options)
}

fn number(key: &str, value: &str, lo: f64, hi: f64) -> Result<f64, ApiError> {
    match value.parse::<f64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(ApiError::bad_request(format!(
            "{key}: {value:?} is not a number from {lo} to {hi}"
        ))),
    }
}

/// Time buckets that make about 60 of the range (`end` defaults to now),
/// rounded up to a step people read; an hour without a start.
fn default_every(p: &Params) -> Duration {
    const STEPS: [u64; 16] = [
        10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800,
        604_800,
    ];
    let Some(start) = p.start else {
        return Duration::from_secs(3600);
    };
    let end = p.end.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    });
    let span_secs = u64::try_from(end.saturating_sub(start) / 1_000_000_000).unwrap_or(0);
    let wanted = span_secs.div_ceil(60);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| *s >= wanted)
        .unwrap_or(STEPS[STEPS.len() - 1]);
    Duration::from_secs(step)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params(q: &str) -> Params {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap();
        Params::from_pairs(&pairs, &[]).unwrap()
    }

    #[test]
    fn buckets_make_about_sixty_of_the_range() {
        assert_eq!(
            default_every(&params("db=d&table=t&start=0&end=3600")),
            Duration::from_secs(60)
        );
        assert_eq!(
            default_every(&params("db=d&table=t&start=0&end=86400")),
            Duration::from_secs(1800)
        );
        assert_eq!(
            default_every(&params("db=d&table=t&start=0&end=2592000")),
            Duration::from_secs(43_200)
        );
        assert_eq!(
            default_every(&params("db=d&table=t")),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn drawing_options_are_taken_out_and_checked() {
        let mut pairs: Vec<(String, String)> =
            serde_urlencoded::from_str("db=d&width=900&unit=ms&scale=0.001&table=t").unwrap();
        let o = take_options(&mut pairs, Chart::Cdf).unwrap();
        assert_eq!(
            (o.width, o.unit.as_deref(), o.scale),
            (900.0, Some("ms"), 0.001)
        );
        assert_eq!(pairs.len(), 2);
        for (q, word) in [
            ("width=10", "width"),
            ("height=tall", "height"),
            ("scale=0", "scale"),
            ("format=csv", "format"),
        ] {
            let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap();
            let e = take_options(&mut pairs, Chart::Cdf).unwrap_err();
            assert!(format!("{e:?}").contains(word), "{q}: {e:?}");
        }
    }
}
