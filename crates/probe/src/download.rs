//! One timed HTTP(S) download: DESIGN's timestamps, the derived figures and
//! the failure taxonomy. The HTTP/1.1 client is written out over the socket
//! so that the header, the first body byte and every milestone are timed
//! where the bytes arrive.

use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::chunked::Chunked;
use crate::conn::{self, State};
use crate::failure::{Failure, FailureClass, Phase};
use crate::payload::CHECKSUM_HEADER;
use crate::target::{Reach, Scheme, Target};
use crate::timings::{micros, Progress, Timestamps};

/// Read buffer: large enough that a fast loopback download costs few calls.
const READ_BUF: usize = 256 * 1024;
/// A response header larger than this is a READ failure.
const MAX_HEADER: usize = 64 * 1024;

/// The result of one download.
#[derive(Debug, Clone)]
pub struct DownloadResult {
    /// The URL measured.
    pub url: String,
    /// When it started, ns since the Unix epoch.
    pub start_unix_ns: i64,
    /// The body's expected length (Content-Length, else the size asked for).
    pub expected_size: Option<u64>,
    /// The response's status, if a header arrived.
    pub status: Option<u16>,
    /// Body bytes received.
    pub bytes_received: u64,
    /// When each step happened.
    pub times: Timestamps,
    /// Why it failed; `None` for a complete, verified body.
    pub failure: Option<Failure>,
}

impl DownloadResult {
    /// True for a complete download with a 2xx status and a matching checksum.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// True for a failure (not a timeout) after some body bytes arrived.
    pub fn partial(&self) -> bool {
        self.failure
            .as_ref()
            .is_some_and(|f| !f.class.is_timeout() && self.bytes_received > 0)
    }

    /// TTLB: last byte − start, for complete downloads.
    pub fn ttlb_us(&self) -> Option<u64> {
        self.failure
            .is_none()
            .then_some(self.times.last_byte)
            .flatten()
    }
}

/// Nanoseconds since the Unix epoch, now.
pub(crate) fn unix_ns_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Downloads `target` as `reach` says. `size` is the body length expected
/// when the response does not announce one (default: the `/bulk/N` size).
pub async fn download(target: &Target, reach: &Reach, size: Option<u64>) -> DownloadResult {
    let start_unix_ns = unix_ns_now();
    let mut state = State::new();
    state.expected = size.or_else(|| target.bulk_size());
    let failure = if target.scheme == Scheme::Tcp {
        Some(Failure::new(
            FailureClass::Internal,
            Phase::Request,
            "a tcp:// target can only be echoed",
        ))
    } else {
        match tokio::time::timeout(reach.timeout, run(target, reach, &mut state)).await {
            Ok(Ok(())) => None,
            Ok(Err(f)) => Some(f),
            Err(_) => Some(Failure::timeout(state.phase, reach.timeout)),
        }
    };
    DownloadResult {
        url: target.url.clone(),
        start_unix_ns,
        expected_size: state.expected,
        status: state.status,
        bytes_received: state.bytes,
        times: state.times,
        failure,
    }
}

async fn run(target: &Target, reach: &Reach, state: &mut State) -> Result<(), Failure> {
    let mut io = conn::open(target, reach, state).await?;

    state.phase = Phase::Request;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: weir-probe/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path,
        target.host_header(),
        env!("CARGO_PKG_VERSION"),
    );
    io.write_all(request.as_bytes())
        .await
        .map_err(|e| Failure::io(&e, Phase::Request, false))?;
    io.flush()
        .await
        .map_err(|e| Failure::io(&e, Phase::Request, false))?;
    state.times.request_sent = Some(state.now_us());

    state.phase = Phase::Header;
    let mut buf = vec![0u8; READ_BUF];
    let (head, filled) = read_header(&mut io, &mut buf, reach.stallout).await?;
    state.times.response_header = Some(state.now_us());
    state.status = Some(head.status);
    if !(200..300).contains(&head.status) {
        return Err(Failure::new(
            FailureClass::Http(head.status),
            Phase::Header,
            format!("the response's status is {}", head.status),
        ));
    }
    if head.content_length.is_some() {
        state.expected = head.content_length;
    }

    state.phase = Phase::Body;
    let mut body = Body {
        progress: Progress::new(state.start, state.expected),
        crc: 0,
    };
    let mut chunked = head.chunked.then(Chunked::new);
    let bodyless = head.status == 204 || head.status == 304;
    let mut pending = head.len..filled;
    loop {
        let now = Instant::now();
        let bytes = &buf[pending.clone()];
        if let Some(c) = &mut chunked {
            c.feed(bytes, |d| body.take(d, now, state))
                .map_err(|e| Failure::new(FailureClass::Read, Phase::Body, e))?;
        } else {
            let room = match head.content_length {
                Some(len) => usize::try_from(len - state.bytes).unwrap_or(usize::MAX),
                None => usize::MAX,
            };
            body.take(&bytes[..bytes.len().min(room)], now, state);
        }
        let complete = bodyless
            || match (&chunked, head.content_length) {
                (Some(c), _) => c.is_done(),
                (None, Some(len)) => state.bytes >= len,
                (None, None) => false,
            };
        if complete {
            break;
        }
        let n = match read_some(&mut io, &mut buf, reach.stallout, Phase::Body).await {
            Ok(n) => n,
            // TLS without close_notify: a close like any other.
            Err(f) if f.class == FailureClass::Eof => 0,
            Err(f) => return Err(f),
        };
        if n == 0 {
            if chunked.is_none() && head.content_length.is_none() {
                match state.expected {
                    Some(want) if state.bytes < want => {
                        return Err(Failure::new(
                            FailureClass::Short,
                            Phase::Body,
                            format!(
                            "the body ended at the close after {} of the {want} bytes asked for",
                            state.bytes
                        ),
                        ))
                    }
                    _ => break, // the body ends at the close
                }
            }
            return Err(Failure::new(
                FailureClass::Short,
                Phase::Body,
                match head.content_length {
                    Some(len) => format!("the body ended after {} of {len} bytes", state.bytes),
                    None => format!(
                        "the chunked body ended after {} bytes without its last chunk",
                        state.bytes
                    ),
                },
            ));
        }
        pending = 0..n;
    }
    if state.times.first_byte.is_none() {
        // An empty body is complete with its header.
        state.times.last_byte = state.times.response_header;
    }
    if let Some(announced) = head.checksum {
        if announced != body.crc {
            return Err(Failure::new(
                FailureClass::Checksum,
                Phase::Body,
                format!(
                    "the body's CRC-32C is {:08x}, the target announced {announced:08x}",
                    body.crc
                ),
            ));
        }
    }
    Ok(())
}

/// Body bookkeeping: progress marks and the running checksum.
struct Body {
    progress: Progress,
    crc: u32,
}

impl Body {
    fn take(&mut self, data: &[u8], now: Instant, state: &mut State) {
        if data.is_empty() {
            return;
        }
        let us = micros(state.start, now);
        if state.times.first_byte.is_none() {
            state.times.first_byte = Some(us);
        }
        // Until the body is complete this is the latest byte's time.
        state.times.last_byte = Some(us);
        self.crc = crc32c::crc32c_append(self.crc, data);
        state.bytes += data.len() as u64;
        self.progress.advance(state.bytes, now, &mut state.times);
    }
}

/// What the response header says about the body.
#[derive(Debug)]
struct Head {
    status: u16,
    /// Length of the header in the buffer.
    len: usize,
    content_length: Option<u64>,
    chunked: bool,
    checksum: Option<u32>,
}

/// One read, bounded by the stallout.
pub(crate) async fn read_some(
    io: &mut (impl AsyncRead + Unpin + ?Sized),
    buf: &mut [u8],
    stallout: Duration,
    phase: Phase,
) -> Result<usize, Failure> {
    match tokio::time::timeout(stallout, io.read(buf)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(Failure::io(&e, phase, true)),
        Err(_) => Err(Failure::stallout(phase, stallout)),
    }
}

/// Reads until a complete response header (skipping 1xx ones) is in `buf`;
/// returns it and how many bytes of `buf` are filled.
async fn read_header(
    io: &mut (impl AsyncRead + Unpin + ?Sized),
    buf: &mut [u8],
    stallout: Duration,
) -> Result<(Head, usize), Failure> {
    let mut filled = 0;
    loop {
        if let Some(head) = parse_header(&buf[..filled])? {
            if (100..200).contains(&head.status) {
                buf.copy_within(head.len..filled, 0);
                filled -= head.len;
                continue;
            }
            return Ok((head, filled));
        }
        if filled >= MAX_HEADER.min(buf.len()) {
            return Err(Failure::new(
                FailureClass::Read,
                Phase::Header,
                format!("the response header is larger than {MAX_HEADER} bytes"),
            ));
        }
        let room = MAX_HEADER.min(buf.len());
        let n = read_some(io, &mut buf[filled..room], stallout, Phase::Header).await?;
        if n == 0 {
            return Err(Failure::new(
                FailureClass::Eof,
                Phase::Header,
                format!("the connection closed after {filled} bytes of the response header"),
            ));
        }
        filled += n;
    }
}

fn parse_header(bytes: &[u8]) -> Result<Option<Head>, Failure> {
    let bad = |detail: String| Failure::new(FailureClass::Read, Phase::Header, detail);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(format!("malformed response header: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let mut head = Head {
        status,
        len,
        content_length: None,
        chunked: false,
        checksum: None,
    };
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(
                value
                    .parse()
                    .map_err(|_| bad(format!("Content-Length {value:?} is not a number")))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case(CHECKSUM_HEADER) {
            head.checksum = u32::from_str_radix(value, 16).ok();
        }
    }
    if head.chunked {
        // RFC 9112 6.3: chunked framing wins over a Content-Length.
        head.content_length = None;
    }
    Ok(Some(head))
}

/// Reads a whole response held in `bytes` as a download would: the header
/// (1xx skipped), then the body by its framing. Returns the status and the
/// number of body bytes, or the failure a download would report.
pub(crate) fn decode_response(mut bytes: &[u8]) -> Result<(u16, u64), Failure> {
    let head = loop {
        match parse_header(bytes)? {
            Some(h) if (100..200).contains(&h.status) => bytes = &bytes[h.len..],
            Some(h) => break h,
            None => {
                return Err(Failure::new(
                    FailureClass::Eof,
                    Phase::Header,
                    "the response header is incomplete",
                ))
            }
        }
    };
    let body = &bytes[head.len..];
    if head.chunked {
        let mut chunked = Chunked::new();
        let mut n = 0u64;
        chunked
            .feed(body, |d| n += d.len() as u64)
            .map_err(|e| Failure::new(FailureClass::Read, Phase::Body, e))?;
        if !chunked.is_done() {
            return Err(Failure::new(
                FailureClass::Short,
                Phase::Body,
                "no last chunk",
            ));
        }
        return Ok((head.status, n));
    }
    let n = body.len() as u64;
    match head.content_length {
        Some(len) if n < len => Err(Failure::new(
            FailureClass::Short,
            Phase::Body,
            format!("{n} of {len} bytes"),
        )),
        Some(len) => Ok((head.status, len)),
        None => Ok((head.status, n)),
    }
}
