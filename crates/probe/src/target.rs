//! What a measurement talks to: a URL taken apart once, and how to reach it.

use std::path::PathBuf;
use std::time::Duration;

/// The protocol of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP/1.1.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
    /// A raw TCP echo port (echo rounds only).
    Tcp,
}

/// A parsed target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// Its scheme.
    pub scheme: Scheme,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (the scheme's default when absent; `tcp://` needs one).
    pub port: u16,
    /// Path and query for the request line.
    pub path: String,
}

/// Why a URL cannot be a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target URL {url:?}: {reason}")]
pub struct TargetError {
    url: String,
    reason: String,
}

impl Target {
    /// Parses `http://`, `https://` or `tcp://` URLs.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let err = |reason: &str| TargetError {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(url).map_err(|e| err(&e.to_string()))?;
        let scheme = match parsed.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "tcp" => Scheme::Tcp,
            _ => return Err(err("the scheme must be http, https or tcp")),
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(err("it has no host")),
        };
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| err("a tcp:// target needs a port"))?;
        let mut path = parsed.path().to_owned();
        if let Some(q) = parsed.query() {
            path.push('?');
            path.push_str(q);
        }
        Ok(Target {
            url: url.to_owned(),
            scheme,
            host,
            port,
            path,
        })
    }

    /// `host:port` as the `target` tag shows it (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The size a perfd `/bulk/N` URL asks for.
    pub fn bulk_size(&self) -> Option<u64> {
        let rest = self.path.strip_prefix("/bulk/")?;
        let digits = rest.split(['?', '/']).next()?;
        digits.parse().ok()
    }

    /// The `Host` header's value: the port only when it is not the default.
    pub(crate) fn host_header(&self) -> String {
        let default = match self.scheme {
            Scheme::Https => 443,
            _ => 80,
        };
        if self.port == default {
            if self.host.contains(':') {
                format!("[{}]", self.host)
            } else {
                self.host.clone()
            }
        } else {
            self.authority()
        }
    }
}

/// A SOCKS5 proxy to measure through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks5 {
    /// Host name or IP literal.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Username and password (method 2), else no authentication.
    pub credentials: Option<(String, String)>,
}

impl Socks5 {
    /// Parses `HOST:PORT` (IPv6 as `[addr]:port`).
    pub fn parse(s: &str) -> Result<Socks5, String> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("SOCKS5 proxy {s:?}: expected HOST:PORT"))?;
        let port = port
            .parse()
            .map_err(|_| format!("SOCKS5 proxy {s:?}: bad port {port:?}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("SOCKS5 proxy {s:?}: no host"));
        }
        Ok(Socks5 {
            host: host.to_owned(),
            port,
            credentials: None,
        })
    }

    /// `host:port`, as the `proxy` tag shows it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How to reach a target and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Reach {
    /// Through this SOCKS5 proxy (names resolved by the proxy), else direct.
    pub socks5: Option<Socks5>,
    /// PEM file of the CAs to trust for HTTPS instead of the bundled web roots.
    pub ca_file: Option<PathBuf>,
    /// The whole measurement's limit (TIMEOUT).
    pub timeout: Duration,
    /// The longest wait for any byte (STALLOUT).
    pub stallout: Duration,
}

impl Default for Reach {
    fn default() -> Self {
        Reach {
            socks5: None,
            ca_file: None,
            timeout: Duration::from_secs(270),
            stallout: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("http://127.0.0.1:8480/bulk/5242880?rate=10").unwrap();
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(t.authority(), "127.0.0.1:8480");
        assert_eq!(t.path, "/bulk/5242880?rate=10");
        assert_eq!(t.bulk_size(), Some(5_242_880));
        let t = Target::parse("https://example.org/x").unwrap();
        assert_eq!((t.port, t.host_header().as_str()), (443, "example.org"));
        let t = Target::parse("tcp://[::1]:7").unwrap();
        assert_eq!(t.authority(), "[::1]:7");
        assert!(Target::parse("tcp://host").is_err());
        assert!(Target::parse("ftp://host/").is_err());
        let p = Socks5::parse("[::1]:1080").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 1080));
        assert!(Socks5::parse("host").is_err());
    }
}
