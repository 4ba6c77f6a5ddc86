//! `[[inputs.net_response]]`: whether a TCP or UDP service answers, and
//! how fast, as Telegraf's `net_response` input reports it.
//!
//! One `net_response` metric per gather, tagged `server`, `port`,
//! `protocol` and `result` (`success`, `timeout`, `connection_failed`,
//! `read_failed`, `string_mismatch`), with the fields `result_code`
//! (integer 0–4 in that order), `result_type` (the result as a string,
//! deprecated in Telegraf but still emitted), `string_found` (boolean, only
//! when `expect` is set) and `response_time` (float seconds; absent when
//! the connection failed, and for UDP when nothing came back).
//!
//! TCP: connect within `timeout`, write `send` if set, and if `expect` is
//! set read one line within `read_timeout` and match `.*EXPECT.*` (a
//! regular expression) against it. UDP: `send` and `expect` are required;
//! send one datagram and wait `read_timeout` for one back.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use lineproto::{FieldValue, Line};
use regex::Regex;
use serde::Deserialize;

use crate::config::{ConfigError, InputCommon, PluginSpec};
use crate::input::{Accumulator, Input, InputError};
use crate::inputs::BuildContext;

/// The table's own keys (Telegraf's names).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NetResponseConfig {
    /// `tcp` or `udp`.
    protocol: String,
    /// `host:port`; an empty host means `localhost`.
    address: String,
    /// How long connecting may take (default 1 s).
    #[serde(deserialize_with = "crate::config::duration_option")]
    timeout: Duration,
    /// How long to wait for the answer (default 1 s).
    #[serde(deserialize_with = "crate::config::duration_option")]
    read_timeout: Duration,
    /// What to send once connected.
    send: String,
    /// A regular expression the answer must contain.
    expect: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    Tcp,
    Udp,
}

/// The `net_response` input.
#[derive(Debug)]
struct NetResponse {
    protocol: Protocol,
    /// What to connect to (`localhost` filled in).
    address: String,
    host: String,
    port: String,
    timeout: Duration,
    read_timeout: Duration,
    send: String,
    expect: Option<(String, Regex)>,
}

/// Splits `host:port` or `[v6]:port` as Go's `net.SplitHostPort` does.
fn split_host_port(address: &str) -> Option<(String, String)> {
    if let Some(rest) = address.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host.to_owned(), port.to_owned()));
    }
    let (host, port) = address.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host.to_owned(), port.to_owned()))
}

/// Builds the input from its table.
pub(crate) fn build(
    spec: &PluginSpec<InputCommon>,
    _ctx: &BuildContext,
) -> Result<Box<dyn Input>, ConfigError> {
    let config: NetResponseConfig = spec.options()?;
    let protocol = match config.protocol.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => {
            return Err(spec.error(format!(
                "protocol: {other:?} is not one of \"tcp\", \"udp\""
            )))
        }
    };
    if protocol == Protocol::Udp && config.send.is_empty() {
        return Err(spec.error("send: a UDP check needs a string to send"));
    }
    if protocol == Protocol::Udp && config.expect.is_empty() {
        return Err(spec.error("expect: a UDP check needs a string to expect"));
    }
    let (host, port) = split_host_port(&config.address)
        .ok_or_else(|| spec.error(format!("address: {:?} is not host:port", config.address)))?;
    if port.is_empty() {
        return Err(spec.error("address: no port"));
    }
    // Telegraf rewrites an empty host to `localhost`, tag included.
    let (host, address) = if host.is_empty() {
        ("localhost".to_owned(), format!("localhost:{port}"))
    } else {
        (host, config.address.clone())
    };
    let expect = if config.expect.is_empty() {
        None
    } else {
        let re = Regex::new(&format!(".*{}.*", config.expect))
            .map_err(|e| spec.error(format!("expect: not a regular expression: {e}")))?;
        Some((config.expect.clone(), re))
    };
    let or_default = |d: Duration| {
        if d.is_zero() {
            Duration::from_secs(1)
        } else {
            d
        }
    };
    Ok(Box::new(NetResponse {
        protocol,
        address,
        host,
        port,
        timeout: or_default(config.timeout),
        read_timeout: or_default(config.read_timeout),
        send: config.send,
        expect,
    }))
}

/// The outcome of one check, Telegraf's `result_code` order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Success = 0,
    Timeout = 1,
    ConnectionFailed = 2,
    ReadFailed = 3,
    StringMismatch = 4,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Timeout => "timeout",
            Outcome::ConnectionFailed => "connection_failed",
            Outcome::ReadFailed => "read_failed",
            Outcome::StringMismatch => "string_mismatch",
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

impl NetResponse {
    fn matches(&self, answer: &[u8]) -> Outcome {
        match &self.expect {
            Some((_, re)) if re.is_match(&String::from_utf8_lossy(answer)) => Outcome::Success,
            Some(_) => Outcome::StringMismatch,
            None => Outcome::Success,
        }
    }

    fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        Ok(self.address.to_socket_addrs()?.collect())
    }

    /// Returns the outcome and the response time when there is one.
    fn tcp(&self) -> Result<(Outcome, Option<f64>), InputError> {
        let start = Instant::now();
        let addrs = match self.resolve() {
            Ok(a) if !a.is_empty() => a,
            _ => return Ok((Outcome::ConnectionFailed, None)),
        };
        let mut stream = None;
        let mut timed_out = false;
        for addr in addrs {
            let left = self.timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                timed_out = true;
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => timed_out = is_timeout(&e),
            }
        }
        let Some(mut stream) = stream else {
            let outcome = if timed_out {
                Outcome::Timeout
            } else {
                Outcome::ConnectionFailed
            };
            return Ok((outcome, None));
        };
        if !self.send.is_empty() {
            stream
                .write_all(self.send.as_bytes())
                .map_err(|e| InputError::Other(format!("sending to {}: {e}", self.address)))?;
        }
        if self.expect.is_none() {
            return Ok((Outcome::Success, Some(start.elapsed().as_secs_f64())));
        }
        stream
            .set_read_timeout(Some(self.read_timeout))
            .map_err(|e| InputError::Other(format!("{}: {e}", self.address)))?;
        let deadline = Instant::now() + self.read_timeout;
        let outcome = match read_line(&mut stream, deadline) {
            Ok(line) => self.matches(&line),
            Err(_) => Outcome::ReadFailed,
        };
        Ok((outcome, Some(start.elapsed().as_secs_f64())))
    }

    fn udp(&self) -> Result<(Outcome, Option<f64>), InputError> {
        let start = Instant::now();
        let addr = match self.resolve() {
            Ok(a) => match a.into_iter().next() {
                Some(a) => a,
                None => return Ok((Outcome::ConnectionFailed, None)),
            },
            Err(_) => return Ok((Outcome::ConnectionFailed, None)),
        };
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = match UdpSocket::bind(local).and_then(|s| s.connect(addr).map(|()| s)) {
            Ok(s) => s,
            Err(_) => return Ok((Outcome::ConnectionFailed, None)),
        };
        socket
            .send(self.send.as_bytes())
            .map_err(|e| InputError::Other(format!("sending to {}: {e}", self.address)))?;
        socket
            .set_read_timeout(Some(self.read_timeout))
            .map_err(|e| InputError::Other(format!("{}: {e}", self.address)))?;
        let mut buf = [0u8; 1024];
        match socket.recv(&mut buf) {
            Ok(n) => Ok((self.matches(&buf[..n]), Some(start.elapsed().as_secs_f64()))),
            Err(_) => Ok((Outcome::ReadFailed, None)),
        }
    }
}

/// Reads up to the first newline (dropping `\r\n`) or the end of the
/// stream; an error when nothing at all came, or the deadline passed
/// before a newline or the end.
fn read_line(stream: &mut TcpStream, deadline: Instant) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if Instant::now() >= deadline {
            return Err(ErrorKind::TimedOut.into());
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if line.is_empty() {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            return Ok(line);
        }
        if let Some(pos) = buf[..n].iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..pos]);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        line.extend_from_slice(&buf[..n]);
    }
}

impl Input for NetResponse {
    fn gather(&mut self, acc: &mut Accumulator) -> Result<(), InputError> {
        let (outcome, response_time) = match self.protocol {
            Protocol::Tcp => self.tcp()?,
            Protocol::Udp => self.udp()?,
        };
        let protocol = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let mut line = Line::new("net_response")
            .with_tag("port", self.port.clone())
            .with_tag("protocol", protocol)
            .with_tag("result", outcome.name())
            .with_tag("server", self.host.clone());
        if let Some(t) = response_time {
            line = line.with_field("response_time", FieldValue::Float(t));
        }
        line = line
            .with_field("result_code", FieldValue::Integer(outcome as i64))
            .with_field("result_type", FieldValue::String(outcome.name().into()));
        if self.expect.is_some() {
            line = line.with_field(
                "string_found",
                FieldValue::Boolean(outcome == Outcome::Success),
            );
        }
        acc.add(line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_split_like_go() {
        assert_eq!(
            split_host_port("example.org:80"),
            Some(("example.org".into(), "80".into()))
        );
        assert_eq!(
            split_host_port("[::1]:53"),
            Some(("::1".into(), "53".into()))
        );
        assert_eq!(split_host_port(":22"), Some(("".into(), "22".into())));
        assert_eq!(split_host_port("::1:53"), None);
        assert_eq!(split_host_port("nohost"), None);
    }
}
