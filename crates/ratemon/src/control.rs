//! The control port: one JSON object per request, one JSON object back,
//! over TCP (newline-delimited; a request may also end at the client's
//! end of stream). The keys are the SICS original's; anything else — bad
//! JSON, an unknown key, a wrong type — gets an error object and the
//! monitor goes on.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// The original's control port, now only a default.
pub const DEFAULT_CONTROL_PORT: u16 = 54736;
/// The longest request line accepted.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// Connections served at once; more are answered with an error.
const MAX_CONNECTIONS: usize = 32;
/// A connection idle this long between requests is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one request may take to arrive, and its answer to be taken.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One control request, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlRequest {
    /// Stop sampling until resumed.
    pub pause: bool,
    /// Sample again.
    pub resume: bool,
    /// Answer with the status (every answer carries it; kept for the
    /// original's clients).
    pub status: bool,
    /// Stop the monitor; the other keys are ignored.
    pub exit: bool,
    /// Monitor another interface.
    pub interface: Option<String>,
    /// New samples per second.
    pub sample_rate: Option<f64>,
    /// New estimation interval, seconds.
    pub estimation_interval: Option<f64>,
    /// New meter interval, seconds.
    pub meter_interval: Option<f64>,
    /// New link speed in Mbit/s; `Some(None)` (JSON `null`) goes back to
    /// the driver's.
    pub link_speed: Option<Option<f64>>,
    /// New alarm trigger, percent.
    pub alarm_trigger: Option<f64>,
    /// New cutoff, percent.
    pub cutoff: Option<f64>,
}

/// The keys a request may carry.
pub const KEYS: &[&str] = &[
    "pause",
    "resume",
    "status",
    "exit",
    "interface",
    "sample_rate",
    "estimation_interval",
    "meter_interval",
    "link_speed",
    "alarm_trigger",
    "cutoff",
];

impl ControlRequest {
    /// Parses one request, naming the first thing wrong with it.
    pub fn parse(text: &str) -> Result<ControlRequest, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("bad JSON at line {}, column {}: {e}", e.line(), e.column()))?;
        let Value::Object(map) = value else {
            return Err("a request is a JSON object, such as {\"status\": true}".to_owned());
        };
        Self::from_map(&map)
    }

    fn from_map(map: &Map<String, Value>) -> Result<ControlRequest, String> {
        let mut r = ControlRequest::default();
        for (key, value) in map {
            match key.as_str() {
                "pause" => r.pause = flag(key, value)?,
                "resume" => r.resume = flag(key, value)?,
                "status" => r.status = flag(key, value)?,
                "exit" => r.exit = flag(key, value)?,
                "interface" => match value {
                    Value::String(s) => r.interface = Some(s.clone()),
                    _ => return Err(format!("`interface` must be a string, not {value}")),
                },
                "sample_rate" => r.sample_rate = Some(number(key, value)?),
                "estimation_interval" => r.estimation_interval = Some(number(key, value)?),
                "meter_interval" => r.meter_interval = Some(number(key, value)?),
                "link_speed" => {
                    r.link_speed = Some(match value {
                        Value::Null => None,
                        v => Some(number(key, v)?),
                    })
                }
                "alarm_trigger" => r.alarm_trigger = Some(number(key, value)?),
                "cutoff" => r.cutoff = Some(number(key, value)?),
                other => {
                    return Err(format!(
                        "unknown key `{other}`; known keys: {}",
                        KEYS.join(", ")
                    ))
                }
            }
        }
        if r.pause && r.resume {
            return Err("`pause` and `resume` in one request contradict each other".to_owned());
        }
        Ok(r)
    }

    /// Whether the request changes any setting.
    pub fn changes_settings(&self) -> bool {
        self.interface.is_some()
            || self.sample_rate.is_some()
            || self.estimation_interval.is_some()
            || self.meter_interval.is_some()
            || self.link_speed.is_some()
            || self.alarm_trigger.is_some()
            || self.cutoff.is_some()
    }
}

/// A flag key: `true`/`false`, or (as the original's clients send) 1/0.
fn flag(key: &str, value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(false),
        _ => Err(format!("`{key}` must be true or false, not {value}")),
    }
}

/// A number key: a JSON number, or a string holding one (the original's
/// client sent its command-line strings as they were).
fn number(key: &str, value: &Value) -> Result<f64, String> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
        .ok_or_else(|| format!("`{key}` must be a number, not {value}"))
}

/// An error answer.
pub fn error_response(message: impl Into<String>) -> Value {
    json!({"ok": false, "error": message.into()})
}

/// Whatever answers requests: the sampler, through a channel.
pub trait Handler: Send + Sync + 'static {
    /// Answers one checked request.
    fn handle(&self, request: ControlRequest) -> Value;
}

/// A running control port.
#[derive(Debug)]
pub struct ControlServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `addr` and serves requests with `handler` on background
    /// threads, one per connection.
    pub fn start(addr: SocketAddr, handler: Arc<dyn Handler>) -> std::io::Result<ControlServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("ratemon-control".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || accept_loop(listener, handler, stop)
            })?;
        Ok(ControlServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept call.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, handler: Arc<dyn Handler>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else {
            // Out of descriptors, most likely: let some connections end.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = writeln!(stream, "{}", error_response("too many control connections"));
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let (handler, active2) = (Arc::clone(&handler), Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("ratemon-control-conn".into())
            .spawn(move || {
                serve(stream, handler.as_ref());
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Answers each request of one connection until it closes. A connection
/// may idle [`IDLE_TIMEOUT`] between requests; once a request has begun
/// it must end within [`REQUEST_TIMEOUT`], and an answer the client does
/// not read within it is abandoned, so no client holds a thread for long.
fn serve(stream: TcpStream, handler: &dyn Handler) {
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let ended = match read_request(&mut reader, &mut line) {
            Ok(Some(ended)) => ended,
            Ok(None) | Err(_) => return,
        };
        if line.len() as u64 > MAX_REQUEST_BYTES {
            let _ = writeln!(
                writer,
                "{}",
                error_response(format!("request longer than {MAX_REQUEST_BYTES} bytes"))
            );
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            if ended {
                continue;
            }
            return;
        }
        let answer = match ControlRequest::parse(text.trim()) {
            Ok(request) => handler.handle(request),
            Err(message) => error_response(message),
        };
        if writeln!(writer, "{answer}").is_err() || !ended {
            return;
        }
    }
}

/// Reads one request into `line` (without its newline): `Some(true)` when
/// a newline ended it, `Some(false)` at the end of the stream (the request
/// is what came before), `None` at the end of the stream with nothing
/// read. Stops early past [`MAX_REQUEST_BYTES`].
fn read_request(
    reader: &mut BufReader<TcpStream>,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut deadline: Option<Instant> = None;
    loop {
        let wait = match deadline {
            None => IDLE_TIMEOUT,
            Some(d) => d
                .checked_duration_since(Instant::now())
                .filter(|w| !w.is_zero())
                .ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "request too slow")
                })?,
        };
        reader.get_ref().set_read_timeout(Some(wait))?;
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((!line.is_empty()).then_some(false));
        }
        deadline.get_or_insert_with(|| Instant::now() + REQUEST_TIMEOUT);
        if let Some(at) = buf.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..at]);
            reader.consume(at + 1);
            return Ok(Some(true));
        }
        let n = buf.len();
        line.extend_from_slice(buf);
        reader.consume(n);
        if line.len() as u64 > MAX_REQUEST_BYTES {
            return Ok(Some(false));
        }
    }
}

/// Sends one request to a control port and returns its answer.
pub fn request(addr: SocketAddr, request: &Value, timeout: Duration) -> std::io::Result<Value> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    writeln!(stream, "{request}")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the monitor answered `{}`: {e}", line.trim()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses() {
        let r = ControlRequest::parse(
            r#"{"pause": true, "status": 1, "interface": "lo", "sample_rate": 500,
                "estimation_interval": "5", "meter_interval": 2.5, "link_speed": null,
                "alarm_trigger": 90, "cutoff": 80}"#,
        )
        .expect("valid");
        assert!(r.pause && r.status && !r.exit);
        assert_eq!(r.interface.as_deref(), Some("lo"));
        assert_eq!(r.sample_rate, Some(500.0));
        assert_eq!(r.estimation_interval, Some(5.0));
        assert_eq!(r.meter_interval, Some(2.5));
        assert_eq!(r.link_speed, Some(None));
        assert_eq!((r.alarm_trigger, r.cutoff), (Some(90.0), Some(80.0)));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |t| ControlRequest::parse(t).expect_err("invalid");
        assert!(err(r#"{"paws": true}"#).contains("unknown key `paws`"));
        assert!(err(r#"{"pause": "yes"}"#).contains("`pause` must be true or false"));
        assert!(err(r#"{"sample_rate": [1]}"#).contains("`sample_rate` must be a number"));
        assert!(err(r#"{"status": tru"#).starts_with("bad JSON at line 1, column"));
        assert!(err("[1]").contains("JSON object"));
        assert!(err(r#"{"pause": true, "resume": true}"#).contains("contradict"));
    }
}
