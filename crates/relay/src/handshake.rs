//! A client's first bytes: which protocol it speaks (SOCKS5 begins with
//! its version, 5; anything else is read as an HTTP request head), what it
//! asks for, and the answers each protocol gives.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::dial::{DialError, Target};
use crate::{connect, socks, Credentials};

/// The protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Socks5,
    HttpConnect,
}

impl Transport {
    /// The protocol that starts with `first`.
    pub(crate) fn of(first: u8) -> Transport {
        if first == socks::VERSION {
            Transport::Socks5
        } else {
            Transport::HttpConnect
        }
    }

    /// The meter's transport label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Transport::Socks5 => crate::SOCKS5,
            Transport::HttpConnect => crate::HTTP_CONNECT,
        }
    }

    /// The answer to a request whose target is now connected; `bound` is
    /// the upstream socket's local address.
    pub(crate) fn success(self, bound: Option<SocketAddr>) -> Vec<u8> {
        match self {
            Transport::Socks5 => socks::reply(socks::SUCCEEDED, bound),
            Transport::HttpConnect => connect::ESTABLISHED.to_vec(),
        }
    }

    /// The answer to a request whose target could not be reached.
    pub(crate) fn refusal(self, e: &DialError) -> Vec<u8> {
        match self {
            Transport::Socks5 => socks::reply(e.failure.socks_reply(), None),
            Transport::HttpConnect => connect::dial_failed(e),
        }
    }
}

/// A complete request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) transport: Transport,
    pub(crate) target: Target,
    /// Bytes the client sent past its request (an HTTP client that did not
    /// wait for the answer); they go to the target first.
    pub(crate) early: Vec<u8>,
}

/// A failed handshake: the meter's error class (`protocol`, `auth`,
/// `unsupported`, `eof`, `timeout` or an I/O class) and a message. The
/// client has been answered already where its protocol has an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HandshakeError {
    pub(crate) class: &'static str,
    pub(crate) detail: String,
}

impl HandshakeError {
    /// Bytes that break the protocol.
    pub(crate) fn protocol(detail: impl Into<String>) -> Self {
        HandshakeError {
            class: "protocol",
            detail: detail.into(),
        }
    }

    /// No acceptable method, wrong or missing credentials.
    pub(crate) fn auth(detail: impl Into<String>) -> Self {
        HandshakeError {
            class: "auth",
            detail: detail.into(),
        }
    }

    /// A well-formed request the relay does not serve.
    pub(crate) fn unsupported(detail: impl Into<String>) -> Self {
        HandshakeError {
            class: "unsupported",
            detail: detail.into(),
        }
    }

    /// Reading `during` failed.
    pub(crate) fn io(e: &io::Error, during: &str) -> Self {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => HandshakeError {
                class: "eof",
                detail: format!("the client closed the connection during the {during}"),
            },
            _ => HandshakeError {
                class: meter::error_class(e),
                detail: format!("reading the {during}: {e}"),
            },
        }
    }
}

/// The client's first byte; `None` if it closed without sending one.
pub(crate) async fn first_byte<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    match io.read(&mut b).await? {
        0 => Ok(None),
        _ => Ok(Some(b[0])),
    }
}

/// Reads the rest of the request that begins with `first`, answering
/// whatever fails in the handshake itself.
pub(crate) async fn negotiate<S>(
    first: u8,
    io: &mut S,
    credentials: Option<&Credentials>,
) -> Result<Request, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match Transport::of(first) {
        Transport::Socks5 => Ok(Request {
            transport: Transport::Socks5,
            target: socks::negotiate(io, credentials).await?,
            early: Vec::new(),
        }),
        Transport::HttpConnect => {
            let (target, early) = connect::negotiate(first, io, credentials).await?;
            Ok(Request {
                transport: Transport::HttpConnect,
                target,
                early,
            })
        }
    }
}
