//! `GET|POST /query` (InfluxDB v1): just enough InfluxQL for clients that
//! probe the server or prepare a database — `SHOW DATABASES` and
//! `CREATE DATABASE <name>` — answered in InfluxDB's JSON shape. Other
//! statements get an InfluxDB-style error pointing to SQL at
//! `POST /api/v1/query`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::Extension;
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Caller;
use crate::body;
use crate::error::{store_error, ApiError};
use crate::tokens::Scope;
use crate::write::{param, params};

/// One statement weir answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Statement {
    /// `SHOW DATABASES`.
    ShowDatabases,
    /// `CREATE DATABASE name`.
    CreateDatabase(String),
}

/// `GET|POST /query`.
pub(crate) async fn query_v1(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let mut params = params(query.as_deref())?;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let form = body::read(body, &headers, state.config.max_body_bytes)
            .await?
            .decode()?;
        let form = String::from_utf8(form)
            .map_err(|_| ApiError::bad_request("the form body is not UTF-8"))?;
        params.extend(params_of_form(&form)?);
    }
    let q = param(&params, "q")
        .ok_or_else(|| ApiError::bad_request("missing required parameter \"q\""))?;
    let statements = parse(q).map_err(ApiError::bad_request)?;
    let mut results = Vec::with_capacity(statements.len());
    for (id, statement) in statements.into_iter().enumerate() {
        results.push(match statement {
            Statement::ShowDatabases => {
                let names: Vec<Value> = state
                    .store
                    .database_names()
                    .into_iter()
                    .filter(|db| caller.may(Scope::Read, db) || caller.may(Scope::Write, db))
                    .map(|db| json!([db]))
                    .collect();
                let mut series = json!({"name": "databases", "columns": ["name"]});
                if !names.is_empty() {
                    series["values"] = Value::Array(names);
                }
                json!({"statement_id": id, "series": [series]})
            }
            Statement::CreateDatabase(db) => {
                caller.require(Scope::Write, &db)?;
                let st = Arc::clone(&state);
                tokio::task::spawn_blocking(move || st.store.create_database(&db))
                    .await
                    .map_err(|_| ApiError::internal("creating the database failed unexpectedly"))?
                    .map_err(|e| store_error(&e))?;
                json!({"statement_id": id})
            }
        });
    }
    Ok(Json(json!({ "results": results })))
}

/// The fields of a form body, like query parameters.
fn params_of_form(form: &str) -> Result<Vec<(String, String)>, ApiError> {
    params(Some(form))
}

/// The statements of `q`, or why weir cannot answer it.
pub(crate) fn parse(q: &str) -> Result<Vec<Statement>, String> {
    let mut out = Vec::new();
    for text in split(q) {
        let words = words(text)?;
        let upper: Vec<String> = words.iter().map(|(w, _)| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        let quoted = |i: usize| words.get(i).is_some_and(|(_, q)| *q);
        match upper.as_slice() {
            ["SHOW", "DATABASES"] if !quoted(0) && !quoted(1) => out.push(Statement::ShowDatabases),
            ["CREATE", "DATABASE", _] if !quoted(0) && !quoted(1) => {
                out.push(Statement::CreateDatabase(words[2].0.clone()));
            }
            ["CREATE", "DATABASE", _, ..] => {
                return Err(format!(
                    "error parsing query: {text:?}: CREATE DATABASE options (WITH …) are not supported by weir"
                ))
            }
            _ => {
                return Err(format!(
                    "error parsing query: {text:?}: weir does not support InfluxQL beyond SHOW DATABASES \
                     and CREATE DATABASE; ask in SQL with POST /api/v1/query \
                     {{\"db\": \"...\", \"sql\": \"SELECT ...\"}}"
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("error parsing query: empty query".to_owned());
    }
    Ok(out)
}

/// `q` cut at semicolons outside double quotes.
fn split(q: &str) -> impl Iterator<Item = &str> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in q.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                pieces.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&q[start..]);
    pieces.into_iter().map(str::trim).filter(|s| !s.is_empty())
}

/// The words of a statement; `"quoted"` identifiers unescaped and marked.
fn words(text: &str) -> Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut word = String::new();
            loop {
                match chars.next() {
                    Some('\\') => word.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => word.push(c),
                    None => return Err(format!("error parsing query: unclosed quote in {text:?}")),
                }
            }
            out.push((word, true));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push((word, false));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_statements_clients_send() {
        assert_eq!(parse("SHOW DATABASES").unwrap(), [Statement::ShowDatabases]);
        assert_eq!(
            parse("show  databases;").unwrap(),
            [Statement::ShowDatabases]
        );
        assert_eq!(
            parse("CREATE DATABASE \"tele;gr\\\"af\"; SHOW DATABASES").unwrap(),
            [
                Statement::CreateDatabase("tele;gr\"af".into()),
                Statement::ShowDatabases
            ]
        );
        assert_eq!(
            parse("create database net").unwrap(),
            [Statement::CreateDatabase("net".into())]
        );
        let err = parse("SELECT * FROM cpu").unwrap_err();
        assert!(err.contains("/api/v1/query"), "{err}");
        assert!(parse("CREATE DATABASE x WITH DURATION 1d")
            .unwrap_err()
            .contains("not supported"));
        assert!(parse(" ; ").is_err());
        assert!(parse("CREATE DATABASE \"x").is_err());
    }
}
