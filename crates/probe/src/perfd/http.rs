//! perfd's HTTP/1.1 side: keep-alive request loop, `/bulk/N` with faults,
//! `/echo`, and plain-text errors that say what was wrong.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::faults::{Ending, Faults};
use super::IDLE;
use crate::payload::{self, CHECKSUM_HEADER};

/// Largest request header perfd reads.
const MAX_HEADER: usize = 16 * 1024;
/// Largest `/echo` body.
const MAX_ECHO: usize = 1024 * 1024;
/// Largest `/bulk` size: 64 GiB.
const MAX_BULK: u64 = 64 << 30;
/// How long a stalled response holds the connection before closing it.
const STALL_HOLD: Duration = Duration::from_secs(600);

/// A connection perfd serves: a TCP socket, maybe under TLS.
pub(super) trait Conn: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;
}

impl Conn for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Conn for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// What happens to the connection after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Serve the next request (unless the client asked to close).
    Keep,
    /// Close with a FIN.
    Close,
    /// Close with a RST (SO_LINGER 0 is set): no FIN before it.
    Reset,
}

impl From<bool> for Next {
    /// `true`: the response went out whole.
    fn from(whole: bool) -> Next {
        if whole {
            Next::Keep
        } else {
            Next::Close
        }
    }
}

/// A parsed request line and the headers perfd cares about.
struct Request {
    method: String,
    path: String,
    query: String,
    content_length: usize,
    close: bool,
}

/// Serves requests on `conn` until the client closes, a request is bad, a
/// fault ends the connection, or it is idle for [`IDLE`].
pub(super) async fn serve(mut conn: impl Conn, defaults: &Faults) {
    let mut pending = Vec::with_capacity(4096);
    loop {
        let request = match read_request(&mut conn, &mut pending).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(reason) => {
                let _ = respond(&mut conn, 400, &reason, true).await;
                return;
            }
        };
        let next = match (request.method.as_str(), request.path.as_str()) {
            ("GET", path) if path.starts_with("/bulk/") => {
                bulk(&mut conn, &request, defaults).await
            }
            ("POST", "/echo") => echo(&mut conn, &request, &mut pending).await.into(),
            ("GET", "/") => respond(&mut conn, 200, USAGE, request.close).await.into(),
            (_, path) if path.starts_with("/bulk/") || path == "/echo" => {
                let text = "method not allowed\n";
                respond(&mut conn, 405, text, request.close).await.into()
            }
            _ => {
                let text = "not found; GET / for usage\n";
                respond(&mut conn, 404, text, request.close).await.into()
            }
        };
        match next {
            Next::Keep if !request.close => {}
            Next::Keep | Next::Close => {
                // Bounded: TLS sends close_notify, which a stalled client may not take.
                let _ = tokio::time::timeout(IDLE, conn.shutdown()).await;
                return;
            }
            // No FIN first: the reset must be the first the client hears.
            Next::Reset => return,
        }
    }
}

const USAGE: &str = "weir perfd\n\
GET /bulk/BYTES   deterministic body, CRC-32C in header x-weir-crc32c\n\
POST /echo        the body back\n\
fault knobs (query): header_delay_ms body_delay_ms rate stall_after reset_after close_after bad_checksum=true status\n";

/// Reads the next request header; `Ok(None)` when the client closed or
/// went idle between requests.
async fn read_request(
    conn: &mut impl Conn,
    pending: &mut Vec<u8>,
) -> Result<Option<Request>, String> {
    let mut buf = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(pending) {
            Ok(httparse::Status::Complete(len)) => {
                let target = req.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let mut request = Request {
                    method: req.method.unwrap_or("").to_owned(),
                    path: path.to_owned(),
                    query: query.to_owned(),
                    content_length: 0,
                    close: req.version == Some(0),
                };
                for h in req.headers.iter() {
                    let value = std::str::from_utf8(h.value).unwrap_or("").trim();
                    if h.name.eq_ignore_ascii_case("content-length") {
                        request.content_length = value
                            .parse()
                            .map_err(|_| format!("Content-Length {value:?} is not a number\n"))?;
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        request.close = value.eq_ignore_ascii_case("close");
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err("chunked request bodies are not supported\n".into());
                    }
                }
                pending.drain(..len);
                return Ok(Some(request));
            }
            Ok(httparse::Status::Partial) if pending.len() >= MAX_HEADER => {
                return Err(format!(
                    "the request header is larger than {MAX_HEADER} bytes\n"
                ));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(format!("malformed request: {e}\n")),
        }
        match tokio::time::timeout(IDLE, conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => pending.extend_from_slice(&buf[..n]),
            _ => return Ok(None),
        }
    }
}

/// A short text response; returns whether the connection may go on.
async fn respond(conn: &mut impl Conn, status: u16, text: &str, close: bool) -> bool {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}\r\n",
        reason(status),
        text.len(),
        if close { "Connection: close\r\n" } else { "" },
    );
    send(conn, head.as_bytes()).await.is_ok()
        && send(conn, text.as_bytes()).await.is_ok()
        && flush(conn).await.is_ok()
}

/// `GET /bulk/N`: the fault knobs of the query over perfd's defaults.
async fn bulk(conn: &mut impl Conn, request: &Request, defaults: &Faults) -> Next {
    let size = request.path["/bulk/".len()..].trim_end_matches('/');
    let len = match size.parse::<u64>() {
        Ok(n) if n <= MAX_BULK => n,
        _ => {
            let text = format!("size {size:?} is not a number of bytes up to {MAX_BULK}\n");
            return respond(conn, 400, &text, request.close).await.into();
        }
    };
    let faults = match Faults::from_query(&request.query) {
        Ok(f) => f.or(defaults),
        Err(e) => {
            return respond(conn, 400, &format!("query: {e}\n"), request.close)
                .await
                .into()
        }
    };
    if let Some(ms) = faults.header_delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(status) = faults.status.filter(|&s| s != 200) {
        let text = format!("status {status} as asked\n");
        return respond(conn, status, &text, request.close).await.into();
    }
    let mut crc = payload::checksum(len);
    if faults.bad_checksum == Some(true) {
        crc ^= 1;
    }
    let head =
        format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\
         Cache-Control: no-store\r\n{CHECKSUM_HEADER}: {crc:08x}\r\n{}\r\n",
        if request.close { "Connection: close\r\n" } else { "" },
    );
    if send(conn, head.as_bytes()).await.is_err() || flush(conn).await.is_err() {
        return Next::Close;
    }
    if let Some(ms) = faults.body_delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let (cut, ending) = faults.cut(len);
    if send_body(conn, cut, faults.rate).await.is_err() {
        return Next::Close;
    }
    match ending {
        Ending::Complete => Next::Keep,
        Ending::Reset => {
            // SO_LINGER 0: closing sends RST instead of FIN.
            let _ = socket2::SockRef::from(conn.tcp()).set_linger(Some(Duration::ZERO));
            Next::Reset
        }
        Ending::Close => Next::Close,
        Ending::Stall => {
            // Hold the connection, sending nothing, until the client gives up.
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(STALL_HOLD, async {
                while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            Next::Close
        }
    }
}

/// Sends `len` body bytes, paced to `rate` bytes per second if given: byte
/// k leaves no earlier than k / rate after the first.
async fn send_body(conn: &mut impl Conn, len: u64, rate: Option<u64>) -> std::io::Result<()> {
    // Paced chunks of about 10 ms each, so short downloads are smooth too.
    let chunk = rate.map_or(payload::BLOCK_LEN, |r| {
        usize::try_from(r / 100)
            .unwrap_or(payload::BLOCK_LEN)
            .clamp(1024, payload::BLOCK_LEN)
    });
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < len {
        if let Some(r) = rate {
            let due = Duration::from_secs_f64(sent as f64 / r as f64);
            tokio::time::sleep_until(start + due).await;
        }
        let want = usize::try_from(len - sent).unwrap_or(usize::MAX).min(chunk);
        let bytes = payload::slice_at(sent, want);
        send(conn, bytes).await?;
        sent += bytes.len() as u64;
    }
    flush(conn).await
}

/// `POST /echo`: the request body back, byte for byte.
async fn echo(conn: &mut impl Conn, request: &Request, pending: &mut Vec<u8>) -> bool {
    if request.content_length > MAX_ECHO {
        let text = format!("the echo body is larger than {MAX_ECHO} bytes\n");
        let _ = respond(conn, 413, &text, true).await;
        return false;
    }
    let mut buf = [0u8; 4096];
    while pending.len() < request.content_length {
        match tokio::time::timeout(IDLE, conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => pending.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    let body: Vec<u8> = pending.drain(..request.content_length).collect();
    let head =
        format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if request.close { "Connection: close\r\n" } else { "" },
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(&body);
    send(conn, &message).await.is_ok() && flush(conn).await.is_ok()
}

/// Writes all of `bytes`; a client that takes none of them for [`IDLE`]
/// loses its connection, so a reader that stopped cannot hold a slot.
async fn send(conn: &mut impl Conn, bytes: &[u8]) -> std::io::Result<()> {
    tokio::time::timeout(IDLE, conn.write_all(bytes))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Flushes (TLS buffers), bounded like [`send`].
async fn flush(conn: &mut impl Conn) -> std::io::Result<()> {
    tokio::time::timeout(IDLE, conn.flush())
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// The reason phrase of the statuses perfd sends (any other: "Status").
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
