//! HTTP CONNECT (RFC 9110 §9.3.6): the request head (at most 8 KiB) read
//! and parsed with `httparse`; `CONNECT host:port` is served, any other
//! method gets 405, a malformed head 400, an oversize one 431, missing or
//! wrong `Proxy-Authorization` (when the relay has credentials) 407.

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::dial::{DialError, Host, Target};
use crate::handshake::HandshakeError;
use crate::Credentials;

/// The largest request head read.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// The answer once the target is connected.
pub(crate) const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// Headers parsed at most; more is an oversize head.
const MAX_HEADERS: usize = 64;

/// Why a head is refused, and so the status it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// 400: not HTTP, or a CONNECT without `host:port`.
    BadRequest(String),
    /// 405: a method other than CONNECT.
    MethodNotAllowed(String),
    /// 407: credentials missing or wrong.
    ProxyAuthRequired(&'static str),
    /// 431: no end of the head within [`MAX_HEAD`] bytes, or too many headers.
    TooLarge,
}

impl Refusal {
    /// The response sent before closing.
    fn response(&self) -> Vec<u8> {
        let (status, extra, body) = match self {
            Refusal::BadRequest(why) => (
                "400 Bad Request",
                "",
                format!("weir relay: bad request: {why}\n"),
            ),
            Refusal::MethodNotAllowed(_) => (
                "405 Method Not Allowed",
                "Allow: CONNECT\r\n",
                "weir relay: only CONNECT host:port is served\n".to_owned(),
            ),
            Refusal::ProxyAuthRequired(_) => (
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"weir relay\"\r\n",
                "weir relay: proxy authentication required\n".to_owned(),
            ),
            Refusal::TooLarge => (
                "431 Request Header Fields Too Large",
                "",
                format!("weir relay: the request head is longer than {MAX_HEAD} bytes\n"),
            ),
        };
        response(status, extra, &body)
    }

    /// What the meter records.
    fn error(self) -> HandshakeError {
        match self {
            Refusal::BadRequest(why) => HandshakeError::protocol(format!("bad request: {why}")),
            Refusal::MethodNotAllowed(m) => {
                HandshakeError::unsupported(format!("method {m:?} (only CONNECT is served)"))
            }
            Refusal::ProxyAuthRequired(why) => HandshakeError::auth(why),
            Refusal::TooLarge => HandshakeError::protocol(format!(
                "the request head is longer than {MAX_HEAD} bytes"
            )),
        }
    }
}

fn response(status: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The answer to a CONNECT whose target could not be reached: 502, or 504
/// for a timeout.
pub(crate) fn dial_failed(e: &DialError) -> Vec<u8> {
    let (code, reason) = e.failure.http_status();
    response(
        &format!("{code} {reason}"),
        "",
        &format!("weir relay: {} ({})\n", e.detail, e.class),
    )
}

/// Reads the head that begins with `first`; returns the target and the
/// bytes read past the head. Refusals are answered before they are
/// returned.
pub(crate) async fn negotiate<S>(
    first: u8,
    io: &mut S,
    credentials: Option<&Credentials>,
) -> Result<(Target, Vec<u8>), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    buf.push(first);
    let mut chunk = [0u8; 2048];
    loop {
        let parsed = match parse_head(&buf, credentials) {
            Ok(Some((target, len))) => return Ok((target, buf.split_off(len))),
            Ok(None) if buf.len() >= MAX_HEAD => Err(Refusal::TooLarge),
            Ok(None) => Ok(()),
            Err(refusal) => Err(refusal),
        };
        if let Err(refusal) = parsed {
            let _ = io.write_all(&refusal.response()).await;
            return Err(refusal.error());
        }
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        let n = io
            .read(&mut chunk[..room])
            .await
            .map_err(|e| HandshakeError::io(&e, "HTTP request head"))?;
        if n == 0 {
            return Err(HandshakeError::io(
                &std::io::ErrorKind::UnexpectedEof.into(),
                "HTTP request head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A complete head's target and length, `None` while incomplete.
fn parse_head(
    buf: &[u8],
    credentials: Option<&Credentials>,
) -> Result<Option<(Target, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooLarge),
        Err(e) => return Err(Refusal::BadRequest(e.to_string())),
    };
    let method = req.method.unwrap_or_default();
    if method != "CONNECT" {
        return Err(Refusal::MethodNotAllowed(method.to_owned()));
    }
    let authority = req.path.unwrap_or_default();
    let target = parse_authority(authority).ok_or_else(|| {
        Refusal::BadRequest(format!("CONNECT needs host:port, not {authority:?}"))
    })?;
    if let Some(c) = credentials {
        let given = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
            .map(|h| h.value);
        let Some(given) = given else {
            return Err(Refusal::ProxyAuthRequired("no Proxy-Authorization"));
        };
        if !basic_matches(given, c) {
            return Err(Refusal::ProxyAuthRequired(
                "wrong Proxy-Authorization credentials",
            ));
        }
    }
    Ok(Some((target, len)))
}

/// `host:port` or `[v6]:port`, port 1–65535.
fn parse_authority(s: &str) -> Option<Target> {
    let (host, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (h, p) = rest.split_once("]:")?;
            (Host::Ip(std::net::IpAddr::V6(h.parse().ok()?)), p)
        }
        None => {
            let (h, p) = s.split_once(':')?;
            (Host::parse(h)?, p)
        }
    };
    let port = p_u16(port).filter(|&p| p != 0)?;
    Some(Target { host, port })
}

fn p_u16(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether `Basic base64(user:password)` carries `c`.
fn basic_matches(value: &[u8], c: &Credentials) -> bool {
    let text = String::from_utf8_lossy(value);
    let mut parts = text.trim().splitn(2, ' ');
    let (Some(scheme), Some(token)) = (parts.next(), parts.next()) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    c.matches(&decoded[..colon], &decoded[colon + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::{handshake, Outcome};

    fn run(input: &[u8], credentials: Option<&Credentials>) -> (Outcome, String) {
        let (o, out) = handshake(input, usize::MAX, credentials);
        assert_eq!(
            handshake(input, 7, credentials),
            (o.clone(), out.clone()),
            "{input:?}"
        );
        (o, String::from_utf8(out).unwrap())
    }

    fn status(out: &str) -> &str {
        out.split(' ').nth(1).unwrap_or_default()
    }

    #[test]
    fn connect_with_early_bytes() {
        let (o, out) = run(
            b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n\x16\x03\x01",
            None,
        );
        assert_eq!(
            o,
            Outcome::Request {
                target: "example.org:443".into(),
                transport: "http-connect",
                early: 3
            }
        );
        assert_eq!(out, "", "no answer until the dial is done");
        let (o, _) = run(b"CONNECT [::1]:8080 HTTP/1.0\r\n\r\n", None);
        assert!(
            matches!(o, Outcome::Request { ref target, .. } if target == "[::1]:8080"),
            "{o:?}"
        );
    }

    #[test]
    fn other_methods_get_405() {
        let (o, out) = run(b"GET http://example.org/ HTTP/1.1\r\nHost: x\r\n\r\n", None);
        assert_eq!(o, Outcome::Failed("unsupported"));
        assert_eq!(status(&out), "405");
        assert!(out.contains("Allow: CONNECT\r\n"), "{out}");
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        assert!(out.contains(&format!("Content-Length: {}\r\n", body.len())));
    }

    #[test]
    fn malformed_heads_get_400() {
        for input in [
            &b"CONNECT example.org HTTP/1.1\r\n\r\n"[..],
            b"CONNECT example.org:0 HTTP/1.1\r\n\r\n",
            b"CONNECT example.org:99999 HTTP/1.1\r\n\r\n",
            b"CONNECT :443 HTTP/1.1\r\n\r\n",
            b"CONNECT [::1:443 HTTP/1.1\r\n\r\n",
            b"CONNECT exa mple.org:443 HTTP/1.1\r\n\r\n",
            b"CONNECT a:b:443 HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"CONNECT host:443 HTTP/9\r\n\r\n",
        ] {
            let (o, out) = run(input, None);
            assert_eq!(
                o,
                Outcome::Failed("protocol"),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(status(&out), "400", "{out}");
        }
    }

    #[test]
    fn a_truncated_head_is_eof() {
        let (o, out) = run(b"CONNECT example.org:443 HTTP/1.1\r\nHost: x\r\n", None);
        assert_eq!(o, Outcome::Failed("eof"));
        assert_eq!(out, "");
    }

    #[test]
    fn an_oversize_head_gets_431() {
        let mut head = b"CONNECT example.org:443 HTTP/1.1\r\n".to_vec();
        while head.len() < MAX_HEAD + 100 {
            head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let (o, out) = run(&head, None);
        assert_eq!(o, Outcome::Failed("protocol"));
        assert_eq!(status(&out), "431");
        // Without line breaks at all.
        let (o, out) = run(&[b'A'; MAX_HEAD * 2], None);
        assert_eq!(o, Outcome::Failed("protocol"));
        assert!(matches!(status(&out), "431" | "400"), "{out}");
    }

    #[test]
    fn proxy_authorization_when_the_relay_has_credentials() {
        let c = Credentials::new("alice", "s3cret").unwrap();
        let (o, out) = run(b"CONNECT example.org:443 HTTP/1.1\r\n\r\n", Some(&c));
        assert_eq!(o, Outcome::Failed("auth"));
        assert_eq!(status(&out), "407");
        assert!(out.contains("Proxy-Authenticate: Basic"), "{out}");
        let token = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let good = format!(
            "CONNECT example.org:443 HTTP/1.1\r\nProxy-Authorization: Basic {token}\r\n\r\n"
        );
        assert!(matches!(
            run(good.as_bytes(), Some(&c)).0,
            Outcome::Request { .. }
        ));
        let wrong = base64::engine::general_purpose::STANDARD.encode("alice:secret");
        let bad = format!(
            "CONNECT example.org:443 HTTP/1.1\r\nproxy-authorization: basic {wrong}\r\n\r\n"
        );
        assert_eq!(run(bad.as_bytes(), Some(&c)).0, Outcome::Failed("auth"));
    }
}
