//! `[[outputs.socket_writer]]` (also `[[outputs.socket]]`): metrics to a
//! socket, as Telegraf's `socket_writer`.
//!
//! `address` is `tcp://host:port`, `udp://host:port`, `unix:///path`
//! (stream) or `unixgram:///path` (datagram); `data_format` is `influx` or
//! `json` (with `json_timestamp_units`). A stream gets the batch as one
//! write; a datagram socket gets one datagram per line, as Telegraf sends
//! them (a line longer than a datagram can hold is dropped and logged).
//! The connection is made on first use and dropped on any error, to be
//! made again on the next attempt; a failed batch is sent again whole, so
//! a receiver may see some lines twice after an error. Telegraf's
//! `keep_alive_period` is accepted and has no effect.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket, UnixDatagram, UnixStream};

use super::format::DataFormat;
use super::{Output, OutputError, WriteFuture};
use crate::config::{ConfigError, OutputCommon, PluginSpec};

/// How long connecting or writing one batch may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Options {
    address: String,
    data_format: String,
    #[serde(deserialize_with = "crate::config::duration_option")]
    json_timestamp_units: Duration,
    #[serde(deserialize_with = "crate::config::duration_option")]
    keep_alive_period: Duration,
    content_encoding: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            address: String::new(),
            data_format: "influx".into(),
            json_timestamp_units: Duration::from_secs(1),
            keep_alive_period: Duration::ZERO,
            content_encoding: "identity".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Tcp(String),
    Udp(String),
    Unix(PathBuf),
    Unixgram(PathBuf),
}

#[derive(Debug)]
enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
    Unix(UnixStream),
    Unixgram(UnixDatagram),
}

/// Writes batches to a socket.
#[derive(Debug)]
pub struct SocketWriter {
    label: String,
    address: Address,
    format: DataFormat,
    conn: Option<Conn>,
}

impl SocketWriter {
    /// Builds a `socket_writer` output from its table.
    pub fn build(spec: &PluginSpec<OutputCommon>) -> Result<Self, ConfigError> {
        let o: Options = spec.options()?;
        if !matches!(o.content_encoding.as_str(), "identity" | "") {
            return Err(spec.error(format!(
                "content_encoding {:?} is not supported; use \"identity\"",
                o.content_encoding
            )));
        }
        let address = parse_address(&o.address).map_err(|e| spec.error(e))?;
        let format = DataFormat::from_options(spec, &o.data_format, o.json_timestamp_units, false)?;
        Ok(SocketWriter {
            label: spec.label(),
            address,
            format,
            conn: None,
        })
    }

    async fn connect(&self) -> std::io::Result<Conn> {
        Ok(match &self.address {
            Address::Tcp(a) => Conn::Tcp(TcpStream::connect(a).await?),
            Address::Udp(a) => {
                let target = tokio::net::lookup_host(a).await?.next().ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, format!("{a}: no address"))
                })?;
                let local = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(target).await?;
                Conn::Udp(socket)
            }
            Address::Unix(p) => Conn::Unix(UnixStream::connect(p).await?),
            Address::Unixgram(p) => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(p)?;
                Conn::Unixgram(socket)
            }
        })
    }

    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.conn.is_none() {
            let conn = tokio::time::timeout(IO_TIMEOUT, self.connect())
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                })??;
            self.conn = Some(conn);
        }
        let label = &self.label;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let io = async {
            match conn {
                Conn::Tcp(s) => s.write_all(bytes).await,
                Conn::Unix(s) => s.write_all(bytes).await,
                Conn::Udp(s) => {
                    for line in bytes.split_inclusive(|&b| b == b'\n') {
                        if line.len() > MAX_DATAGRAM {
                            tracing::warn!(output = %label, "dropped a line of {} bytes: too long for a datagram", line.len());
                            continue;
                        }
                        s.send(line).await?;
                    }
                    Ok(())
                }
                Conn::Unixgram(s) => {
                    for line in bytes.split_inclusive(|&b| b == b'\n') {
                        if let Err(e) = s.send(line).await {
                            if e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error()) {
                                tracing::warn!(output = %label, "dropped a line of {} bytes: too long for a datagram", line.len());
                                continue;
                            }
                            return Err(e);
                        }
                    }
                    Ok(())
                }
            }
        };
        tokio::time::timeout(IO_TIMEOUT, io)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))?
    }

    async fn write_batch(&mut self, batch: &[u8]) -> Result<(), OutputError> {
        let (bytes, bad) = self.format.serialize(batch);
        if bad > 0 {
            tracing::warn!(output = %self.label, "skipped {bad} lines that do not parse");
        }
        match self.send(&bytes).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.conn = None;
                Err(OutputError::Retry {
                    reason: format!("{:?}: {e}", self.address),
                    after: None,
                })
            }
        }
    }
}

impl Output for SocketWriter {
    fn write<'a>(&'a mut self, batch: &'a [u8], _lines: usize) -> WriteFuture<'a> {
        Box::pin(self.write_batch(batch))
    }
}

fn parse_address(address: &str) -> Result<Address, String> {
    let Some((scheme, rest)) = address.split_once("://") else {
        return Err(format!(
            "address {address:?}: expected tcp://host:port, udp://host:port, unix:///path or unixgram:///path"
        ));
    };
    if rest.is_empty() {
        return Err(format!("address {address:?}: nothing after {scheme}://"));
    }
    match scheme {
        "tcp" | "tcp4" | "tcp6" => Ok(Address::Tcp(rest.to_owned())),
        "udp" | "udp4" | "udp6" => Ok(Address::Udp(rest.to_owned())),
        "unix" => Ok(Address::Unix(PathBuf::from(rest))),
        "unixgram" => Ok(Address::Unixgram(PathBuf::from(rest))),
        other => Err(format!(
            "address {address:?}: scheme {other:?} is not supported; use tcp, udp, unix or unixgram"
        )),
    }
}
