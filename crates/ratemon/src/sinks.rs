//! Where records go, off the sampler's thread: standard output, a JSON
//! lines file (appended), a TCP port (the original's `-b`, reconnecting)
//! and a channel to whoever embeds the monitor (the agent).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::record::Record;

/// The destinations of records.
#[derive(Debug, Default)]
pub struct Sinks {
    /// Print each record on standard output.
    pub stdout: bool,
    /// Append each record as a JSON line to this file.
    pub file: Option<PathBuf>,
    /// Send each record as JSON plus newline to this TCP address.
    pub tcp: Option<String>,
    /// Hand each record to this channel (dropped, and counted, when full).
    pub forward: Option<SyncSender<Record>>,
}

impl Sinks {
    /// Opens the file (so that a bad path fails at start).
    pub(crate) fn open(self) -> std::io::Result<OpenSinks> {
        let file = match &self.file {
            Some(path) => Some((
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    })?,
                path.clone(),
            )),
            None => None,
        };
        Ok(OpenSinks {
            stdout: self.stdout,
            file,
            tcp: self.tcp.map(TcpSink::new),
            forward: self.forward,
            forward_dropped: 0,
        })
    }
}

/// Sinks ready to write.
#[derive(Debug)]
pub(crate) struct OpenSinks {
    stdout: bool,
    file: Option<(File, PathBuf)>,
    tcp: Option<TcpSink>,
    forward: Option<SyncSender<Record>>,
    forward_dropped: u64,
}

impl OpenSinks {
    /// Writes every record received until the sampler hangs up.
    pub(crate) fn run(mut self, records: Receiver<Record>) {
        for record in records {
            self.write(record);
        }
    }

    fn write(&mut self, record: Record) {
        let mut line = record.to_json();
        line.push('\n');
        if self.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
        }
        if let Some((file, path)) = &mut self.file {
            if let Err(e) = file.write_all(line.as_bytes()) {
                tracing::warn!(
                    "ratemon: writing {}: {e}; this record is lost",
                    path.display()
                );
            }
        }
        if let Some(tcp) = &mut self.tcp {
            tcp.send(line.as_bytes());
        }
        if let Some(forward) = &self.forward {
            match forward.try_send(record) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    self.forward_dropped += 1;
                    tracing::warn!(
                        "ratemon: the record queue is full; {} records dropped so far",
                        self.forward_dropped
                    );
                }
            }
        }
    }
}

/// The `-b` destination: connected on demand, reconnected after an error
/// at most once per [`RECONNECT_EVERY`]; records sent while it is down are
/// dropped (and counted in the log), as a TCP listener that is not there
/// cannot take them.
#[derive(Debug)]
struct TcpSink {
    target: String,
    stream: Option<TcpStream>,
    last_attempt: Option<Instant>,
    dropped: u64,
}

const RECONNECT_EVERY: Duration = Duration::from_secs(5);

impl TcpSink {
    fn new(target: String) -> TcpSink {
        TcpSink {
            target,
            stream: None,
            last_attempt: None,
            dropped: 0,
        }
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let addrs: Vec<SocketAddr> = self.target.to_socket_addrs()?.collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                Ok(s) => {
                    s.set_write_timeout(Some(Duration::from_secs(1)))?;
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn send(&mut self, line: &[u8]) {
        if self.stream.is_none() {
            let due = self
                .last_attempt
                .is_none_or(|t| t.elapsed() >= RECONNECT_EVERY);
            if due {
                self.last_attempt = Some(Instant::now());
                match self.connect() {
                    Ok(s) => {
                        if self.dropped > 0 {
                            tracing::info!("ratemon: connected to {} again", self.target);
                        }
                        self.stream = Some(s);
                    }
                    Err(e) => {
                        if self.dropped == 0 {
                            tracing::warn!("ratemon: cannot send records to {}: {e}", self.target);
                        }
                    }
                }
            }
        }
        let sent = match &mut self.stream {
            Some(s) => s.write_all(line).is_ok(),
            None => false,
        };
        if !sent {
            self.stream = None;
            self.dropped += 1;
            tracing::debug!(
                "ratemon: {} records not sent to {}",
                self.dropped,
                self.target
            );
        }
    }
}
