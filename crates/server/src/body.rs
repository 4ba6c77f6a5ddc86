//! Request bodies: read up to a limit, gzip decoded up to the same limit
//! (so a small "gzip bomb" is refused like a large body), with answers that
//! say which limit was hit.

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use futures::StreamExt;

use crate::error::ApiError;

/// How long a refused oversized body is still read (and dropped) so that
/// the client gets to see the 413 rather than a reset connection.
const DRAIN_FOR: Duration = Duration::from_secs(5);

/// A request body as it came, before decompression.
#[derive(Debug)]
pub(crate) struct RawBody {
    bytes: Vec<u8>,
    gzip: bool,
    limit: usize,
}

/// Reads the body of a request with `headers`, refusing more than `limit`
/// bytes (413) and content encodings other than gzip (415).
pub(crate) async fn read(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<RawBody, ApiError> {
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {other:?}: send gzip or an unencoded body"),
            ))
        }
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(&mut stream, limit).await;
        return Err(too_large(limit, "request body"));
    }
    let mut bytes = Vec::with_capacity(declared.map_or(64 << 10, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            drain(&mut stream, limit).await;
            return Err(too_large(limit, "request body"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(RawBody { bytes, gzip, limit })
}

impl RawBody {
    /// The body, decompressed if it was gzip; CPU work for a large body, so
    /// call it off the async threads.
    pub(crate) fn decode(self) -> Result<Vec<u8>, ApiError> {
        if !self.gzip {
            return Ok(self.bytes);
        }
        let mut out = Vec::with_capacity(self.bytes.len().saturating_mul(4).min(self.limit));
        flate2::read::MultiGzDecoder::new(self.bytes.as_slice())
            .take(self.limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::bad_request(format!("invalid gzip body: {e}")))?;
        if out.len() > self.limit {
            return Err(too_large(self.limit, "decompressed request body"));
        }
        Ok(out)
    }
}

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "{what} is larger than the limit of {limit} bytes (max-body-bytes); send smaller batches"
        ),
    )
}

/// Reads and drops up to `limit` more bytes for at most [`DRAIN_FOR`].
async fn drain(stream: &mut axum::body::BodyDataStream, limit: usize) {
    let mut left = limit;
    let _ = tokio::time::timeout(DRAIN_FOR, async {
        while let Some(Ok(chunk)) = stream.next().await {
            left = left.saturating_sub(chunk.len());
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_decoded_within_the_limit() {
        let raw = |bytes, limit| RawBody {
            bytes,
            gzip: true,
            limit,
        };
        assert_eq!(raw(gz(b"m v=1"), 5).decode().unwrap(), b"m v=1");
        let bomb = raw(gz(&vec![b'a'; 1 << 20]), 1000).decode().unwrap_err();
        assert_eq!(bomb.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(bomb.message().contains("decompressed"));
        let bad = raw(b"not gzip".to_vec(), 1000).decode().unwrap_err();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(bad.message().starts_with("invalid gzip body"), "{bad}");
    }
}
