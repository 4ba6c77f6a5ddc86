//! Reaching the target: the name resolved here (remote DNS), each address
//! tried in turn under one timeout; a failure classified for the meter and
//! for the client's answer (SOCKS5 reply code, HTTP status).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// A target host as the client named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    /// An address literal.
    Ip(IpAddr),
    /// A name, resolved by the relay.
    Name(String),
}

impl Host {
    /// `text` as a host: an address literal, else a plausible DNS name
    /// (1–253 bytes of letters, digits, `-`, `_` and `.`).
    pub(crate) fn parse(text: &str) -> Option<Host> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        let plausible = !text.is_empty()
            && text.len() <= 253
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        plausible.then(|| Host::Name(text.to_owned()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// Where the client wants to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: Host,
    pub(crate) port: u16,
}

impl Target {
    /// The protocol label of the meter: by the well-known port.
    pub(crate) fn protocol(&self) -> &'static str {
        match self.port {
            80 => "http",
            443 => "https",
            _ => "tcp",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}

/// An open upstream connection.
#[derive(Debug)]
pub(crate) struct Dialed {
    pub(crate) stream: TcpStream,
    /// The address connected to.
    pub(crate) remote: SocketAddr,
    /// Resolving and connecting.
    pub(crate) elapsed: Duration,
}

/// Why a dial failed, in the terms SOCKS5 answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The name did not resolve (or not in time).
    Dns,
    /// The target refused the connection.
    Refused,
    /// No route to the target's network.
    NetworkUnreachable,
    /// No route to the target host.
    HostUnreachable,
    /// Connecting took longer than the timeout.
    Timeout,
    /// Anything else.
    Other,
}

impl Failure {
    /// The SOCKS5 reply code (RFC 1928 §6).
    pub(crate) fn socks_reply(self) -> u8 {
        match self {
            Failure::Other => 0x01,
            Failure::NetworkUnreachable => 0x03,
            Failure::HostUnreachable | Failure::Dns => 0x04,
            Failure::Refused => 0x05,
            Failure::Timeout => 0x06,
        }
    }

    /// The HTTP status a CONNECT gets: 504 for a timeout, else 502.
    pub(crate) fn http_status(self) -> (u16, &'static str) {
        match self {
            Failure::Timeout => (504, "Gateway Timeout"),
            _ => (502, "Bad Gateway"),
        }
    }
}

/// A failed dial: its kind, the meter's error class, a message, the
/// address last tried and the time spent.
#[derive(Debug)]
pub(crate) struct DialError {
    pub(crate) failure: Failure,
    pub(crate) class: &'static str,
    pub(crate) detail: String,
    pub(crate) remote: Option<IpAddr>,
    pub(crate) elapsed: Duration,
}

/// Resolves (names only) and connects to `target`, all within `limit`.
pub(crate) async fn dial(target: &Target, limit: Duration) -> Result<Dialed, DialError> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + limit);
    let fail = |failure, class, detail, remote| DialError {
        failure,
        class,
        detail,
        remote,
        elapsed: start.elapsed(),
    };
    let addrs: Vec<SocketAddr> = match &target.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, target.port)],
        Host::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), target.port));
            match tokio::time::timeout_at(deadline, lookup).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => {
                    return Err(fail(
                        Failure::Dns,
                        "dns",
                        format!("resolving {name}: {e}"),
                        None,
                    ))
                }
                Err(_) => {
                    return Err(fail(
                        Failure::Dns,
                        "dns",
                        format!("resolving {name}: no answer within {limit:?}"),
                        None,
                    ))
                }
            }
        }
    };
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                return Ok(Dialed {
                    stream,
                    remote: addr,
                    elapsed: start.elapsed(),
                })
            }
            Ok(Err(e)) => {
                let (failure, class) = classify(&e);
                last = Some(fail(
                    failure,
                    class,
                    format!("connecting to {addr}: {e}"),
                    Some(addr.ip()),
                ));
            }
            Err(_) => {
                return Err(fail(
                    Failure::Timeout,
                    "timeout",
                    format!("connecting to {addr}: no answer within {limit:?}"),
                    Some(addr.ip()),
                ))
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        fail(
            Failure::Dns,
            "dns",
            format!("resolving {}: no addresses", target.host),
            None,
        )
    }))
}

/// The kind of a failed connect and the meter's class for it.
fn classify(e: &io::Error) -> (Failure, &'static str) {
    use io::ErrorKind as K;
    let failure = match e.kind() {
        K::ConnectionRefused => Failure::Refused,
        K::NetworkUnreachable => Failure::NetworkUnreachable,
        K::HostUnreachable => Failure::HostUnreachable,
        K::TimedOut => Failure::Timeout,
        _ => Failure::Other,
    };
    (failure, meter::error_class(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_their_labels() {
        assert_eq!(
            Host::parse("10.0.0.1"),
            Some(Host::Ip("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(Host::parse("::1"), Some(Host::Ip("::1".parse().unwrap())));
        assert_eq!(
            Host::parse("example.org"),
            Some(Host::Name("example.org".into()))
        );
        for bad in ["", "a b", "a/b", "user@host", "ex\u{e4}mple.org", "a:b"] {
            assert_eq!(Host::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Host::parse(&"a".repeat(254)), None);
        let t = |host: &str, port| Target {
            host: Host::parse(host).unwrap(),
            port,
        };
        assert_eq!(t("::1", 443).to_string(), "[::1]:443");
        assert_eq!(t("example.org", 80).to_string(), "example.org:80");
        assert_eq!(t("example.org", 80).protocol(), "http");
        assert_eq!(t("example.org", 443).protocol(), "https");
        assert_eq!(t("example.org", 22).protocol(), "tcp");
    }

    #[test]
    fn failures_map_to_socks_replies() {
        assert_eq!(Failure::Refused.socks_reply(), 0x05);
        assert_eq!(Failure::NetworkUnreachable.socks_reply(), 0x03);
        assert_eq!(Failure::HostUnreachable.socks_reply(), 0x04);
        assert_eq!(Failure::Dns.socks_reply(), 0x04);
        assert_eq!(Failure::Timeout.socks_reply(), 0x06);
        assert_eq!(Failure::Other.socks_reply(), 0x01);
        assert_eq!(Failure::Timeout.http_status().0, 504);
        assert_eq!(Failure::Refused.http_status().0, 502);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&refused), (Failure::Refused, "refused"));
        let unreachable = io::Error::from(io::ErrorKind::HostUnreachable);
        assert_eq!(
            classify(&unreachable),
            (Failure::HostUnreachable, "unreachable")
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_bad_name_is_dns() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let target = Target {
            host: Host::parse("127.0.0.1").unwrap(),
            port,
        };
        let e = dial(&target, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!((e.failure, e.class), (Failure::Refused, "refused"));
        assert_eq!(e.remote, Some("127.0.0.1".parse().unwrap()));
        let target = Target {
            host: Host::parse("no-such-host.invalid").unwrap(),
            port: 80,
        };
        let e = dial(&target, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!((e.failure, e.class), (Failure::Dns, "dns"), "{}", e.detail);
    }
}
