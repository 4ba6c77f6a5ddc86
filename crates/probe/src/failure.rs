//! The failure taxonomy of DESIGN: every measurement that does not end
//! well ends in exactly one class, in one phase, with the bytes it got.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why a transfer or echo round failed (tag `error`).
///
/// STALLOUT and TIMEOUT roll up as *timeouts*, the rest as *failures*; a
/// failure that received body bytes is also *partial*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The target's (or the proxy's) name did not resolve.
    Dns,
    /// The SOCKS5 proxy did not accept the TCP connection.
    ProxyConnect,
    /// The proxy broke the SOCKS5 protocol, offered no acceptable method,
    /// or refused the credentials.
    ProxyProtocol,
    /// The proxy answered the CONNECT request with this reply code.
    SocksReply(u8),
    /// The target did not accept the TCP connection.
    Connect,
    /// The TLS handshake failed (certificate, protocol, or a close during it).
    Tls,
    /// The response's status was not 2xx.
    Http(u16),
    /// The peer reset the connection.
    Reset,
    /// The connection closed before a complete response header.
    Eof,
    /// Reading failed otherwise (including a malformed response).
    Read,
    /// Writing failed otherwise.
    Write,
    /// No byte arrived for the stallout period.
    Stallout,
    /// The whole measurement took longer than its timeout.
    Timeout,
    /// The body ended before its announced length.
    Short,
    /// The body's checksum did not match the one the target announced.
    Checksum,
    /// A fault in the prober itself.
    Internal,
}

impl FailureClass {
    /// True for the classes that roll up as *timeouts* (STALLOUT, TIMEOUT).
    pub fn is_timeout(self) -> bool {
        matches!(self, FailureClass::Stallout | FailureClass::Timeout)
    }

    /// The class of an I/O error that ended a read (`reading`) or a write.
    pub fn of_io(e: &io::Error, reading: bool) -> FailureClass {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => FailureClass::Reset,
            io::ErrorKind::UnexpectedEof => FailureClass::Eof,
            _ if reading => FailureClass::Read,
            _ => FailureClass::Write,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            FailureClass::Dns => "DNS",
            FailureClass::ProxyConnect => "PROXY_CONNECT",
            FailureClass::ProxyProtocol => "PROXY_PROTOCOL",
            FailureClass::SocksReply(code) => return write!(f, "SOCKS_REPLY_{code}"),
            FailureClass::Connect => "CONNECT",
            FailureClass::Tls => "TLS",
            FailureClass::Http(status) => return write!(f, "HTTP_{status}"),
            FailureClass::Reset => "RESET",
            FailureClass::Eof => "EOF",
            FailureClass::Read => "READ",
            FailureClass::Write => "WRITE",
            FailureClass::Stallout => "STALLOUT",
            FailureClass::Timeout => "TIMEOUT",
            FailureClass::Short => "SHORT",
            FailureClass::Checksum => "CHECKSUM",
            FailureClass::Internal => "INTERNAL",
        };
        f.write_str(name)
    }
}

/// Where in a measurement it was when it failed (tag `phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Phase {
    /// Resolving the target's (or the proxy's) name.
    #[default]
    Dns,
    /// Opening the TCP connection (to the proxy when there is one).
    Connect,
    /// The SOCKS5 handshake: method, authentication, CONNECT.
    Socks,
    /// The TLS handshake.
    Tls,
    /// Sending the request.
    Request,
    /// Waiting for and reading the response header.
    Header,
    /// Reading the body.
    Body,
    /// Exchanging echo requests and replies.
    Echo,
}

impl Phase {
    /// The phase's name as stored in tag `phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Socks => "socks",
            Phase::Tls => "tls",
            Phase::Request => "request",
            Phase::Header => "header",
            Phase::Body => "body",
            Phase::Echo => "echo",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure: its class, the phase it happened in, and what the system said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class} in phase {phase}: {detail}")]
pub struct Failure {
    /// The class (tag `error`).
    pub class: FailureClass,
    /// The phase (tag `phase`).
    pub phase: Phase,
    /// The underlying error in words, for logs and `weir probe once`.
    pub detail: String,
}

impl Failure {
    /// A failure of `class` in `phase`.
    pub fn new(class: FailureClass, phase: Phase, detail: impl Into<String>) -> Failure {
        Failure {
            class,
            phase,
            detail: detail.into(),
        }
    }

    /// STALLOUT in `phase`: no byte arrived for `stallout`.
    pub(crate) fn stallout(phase: Phase, stallout: Duration) -> Failure {
        let d = humantime::format_duration(stallout);
        Failure::new(FailureClass::Stallout, phase, format!("no byte for {d}"))
    }

    /// TIMEOUT in `phase`: the measurement took longer than `timeout`.
    pub(crate) fn timeout(phase: Phase, timeout: Duration) -> Failure {
        let d = humantime::format_duration(timeout);
        Failure::new(FailureClass::Timeout, phase, format!("not done within {d}"))
    }

    /// The failure an I/O error means in `phase`.
    pub fn io(e: &io::Error, phase: Phase, reading: bool) -> Failure {
        Failure::new(FailureClass::of_io(e, reading), phase, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_designs() {
        assert_eq!(FailureClass::SocksReply(5).to_string(), "SOCKS_REPLY_5");
        assert_eq!(FailureClass::Http(503).to_string(), "HTTP_503");
        assert_eq!(FailureClass::ProxyConnect.to_string(), "PROXY_CONNECT");
        assert!(FailureClass::Stallout.is_timeout());
        assert!(!FailureClass::Reset.is_timeout());
    }

    #[test]
    fn io_errors_map_to_classes() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(FailureClass::of_io(&reset, true), FailureClass::Reset);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(FailureClass::of_io(&eof, true), FailureClass::Eof);
        let other = io::Error::other("x");
        assert_eq!(FailureClass::of_io(&other, false), FailureClass::Write);
    }
}
