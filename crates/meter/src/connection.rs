//! One metered connection: its labels resolved once, at open; its byte
//! counts, first-byte times and first error; its record at close.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::io::Recorder;
use crate::record::{ConnectionError, ConnectionRecord, Direction, Phase};
use crate::traffic::Entry;
use crate::Inner;

/// Describes a connection before it is metered: `Meter::connection(transport)`
/// then the labels and addresses known at open, then [`open`](Self::open).
#[derive(Debug)]
#[must_use = "a connection is metered only once it is opened"]
pub struct ConnectionBuilder {
    pub(crate) meter: Arc<Inner>,
    pub(crate) transport: String,
    pub(crate) peer: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) direction: Direction,
    pub(crate) local: Option<IpAddr>,
    pub(crate) remote: Option<IpAddr>,
    pub(crate) dial: Option<Duration>,
    pub(crate) started: Option<Instant>,
}

impl ConnectionBuilder {
    /// The peer: a peer id, a host name; counted per peer.
    pub fn peer(mut self, peer: impl Into<String>) -> Self {
        self.peer = Some(peer.into());
        self
    }

    /// The protocol, for connections that carry one protocol (no
    /// multiplexing); otherwise meter each stream with
    /// [`ConnectionMeter::stream`].
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Who dialled (default: outbound).
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Our address; masked before it goes into a record.
    pub fn local_addr(mut self, ip: IpAddr) -> Self {
        self.local = Some(ip);
        self
    }

    /// The peer's address; masked before it goes into a record.
    pub fn remote_addr(mut self, ip: IpAddr) -> Self {
        self.remote = Some(ip);
        self
    }

    /// How long opening the connection took.
    pub fn dial_time(mut self, dial: Duration) -> Self {
        self.dial = Some(dial);
        self
    }

    /// When the connection's life began (default: at `open`), so that a
    /// record's duration includes the dial.
    pub fn started_at(mut self, at: Instant) -> Self {
        self.started = Some(at);
        self
    }

    /// Starts metering: labels are looked up (or created) now, once.
    pub fn open(self) -> ConnectionMeter {
        let now = Instant::now();
        let inner = self.meter;
        let id = inner.connections_total.fetch_add(1, Ordering::Relaxed) + 1;
        let (transport_label, transport) = inner.transports().get(&self.transport, now);
        let protocol = self.protocol.map(|p| inner.protocols().get(&p, now));
        let peer = self.peer.map(|p| inner.peers().open(&p, now));
        inner.active.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            start: self.started.unwrap_or(now),
            transport,
            transport_label,
            protocol,
            peer,
            direction: self.direction,
            local: self.local,
            remote: self.remote,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            first_in: AtomicU64::new(0),
            first_out: AtomicU64::new(0),
            dial: Mutex::new(self.dial),
            error: Mutex::new(None),
            window: Mutex::new(Window::new(now)),
            meter: inner,
        });
        conn.meter.register(&conn);
        ConnectionMeter { conn }
    }
}

/// The counters of one open connection. Clones share them (one per half of
/// a split stream); the connection ends, and its record is sent, when the
/// last clone and the last [`StreamMeter`] drop.
#[derive(Debug, Clone)]
pub struct ConnectionMeter {
    conn: Arc<Conn>,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: u64,
    start: Instant,
    transport: Arc<Entry>,
    transport_label: Arc<str>,
    protocol: Option<(Arc<str>, Arc<Entry>)>,
    peer: Option<(Arc<str>, Arc<Entry>)>,
    direction: Direction,
    local: Option<IpAddr>,
    remote: Option<IpAddr>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Nanoseconds from `start` to the first byte read, plus one; 0: none yet.
    first_in: AtomicU64,
    /// The same for the first byte written.
    first_out: AtomicU64,
    dial: Mutex<Option<Duration>>,
    error: Mutex<Option<ConnectionError>>,
    window: Mutex<Window>,
    meter: Arc<Inner>,
}

/// The rate sampler's view of a connection: bytes at the last sample, and
/// the lowest and highest rates over the samples that saw bytes move.
#[derive(Debug)]
struct Window {
    at: Instant,
    bytes: u64,
    min: f64,
    max: f64,
    samples: u32,
}

impl Window {
    fn new(at: Instant) -> Self {
        Window {
            at,
            bytes: 0,
            min: f64::INFINITY,
            max: 0.0,
            samples: 0,
        }
    }
}

impl ConnectionMeter {
    /// The connection's number within this meter, from 1.
    pub fn id(&self) -> u64 {
        self.conn.id
    }

    /// Sets how long opening the connection took, once known.
    pub fn set_dial_time(&self, dial: Duration) {
        *self.conn.dial.lock().unwrap_or_else(|e| e.into_inner()) = Some(dial);
    }

    /// Records an error; only the first one is kept. The I/O wrappers call
    /// this for read and write errors themselves.
    pub fn error(&self, error: ConnectionError) {
        let mut slot = self.conn.error.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    /// A meter for one stream of `protocol` multiplexed over this
    /// connection: it counts only the protocol (the connection's own
    /// wrapper counts global, transport and peer bytes).
    pub fn stream(&self, protocol: &str) -> StreamMeter {
        let (label, entry) = self.conn.meter.protocols().get(protocol, Instant::now());
        StreamMeter {
            protocol: entry,
            label,
            _conn: self.clone(),
        }
    }

    /// Bytes read and written so far.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.conn.bytes_in.load(Ordering::Relaxed),
            self.conn.bytes_out.load(Ordering::Relaxed),
        )
    }

    /// Wraps `io` so that its reads and writes are counted here.
    pub fn wrap<S>(&self, io: S) -> crate::Metered<S, ConnectionMeter> {
        crate::Metered::new(io, self.clone())
    }
}

fn since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

impl Recorder for ConnectionMeter {
    #[inline]
    fn record_read(&self, n: usize) {
        let c = &*self.conn;
        let n = n as u64;
        c.transport.add_in(n);
        if let Some((_, p)) = &c.protocol {
            p.add_in(n);
        }
        if let Some((_, p)) = &c.peer {
            p.add_in(n);
        }
        c.bytes_in.fetch_add(n, Ordering::Relaxed);
        if n > 0 && c.first_in.load(Ordering::Relaxed) == 0 {
            let _ = c.first_in.compare_exchange(
                0,
                since(c.start),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    #[inline]
    fn record_write(&self, n: usize) {
        let c = &*self.conn;
        let n = n as u64;
        c.transport.add_out(n);
        if let Some((_, p)) = &c.protocol {
            p.add_out(n);
        }
        if let Some((_, p)) = &c.peer {
            p.add_out(n);
        }
        c.bytes_out.fetch_add(n, Ordering::Relaxed);
        if n > 0 && c.first_out.load(Ordering::Relaxed) == 0 {
            let _ = c.first_out.compare_exchange(
                0,
                since(c.start),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn record_error(&self, phase: Phase, e: &std::io::Error) {
        self.error(ConnectionError::io(phase, e));
    }
}

/// The counters of one protocol stream over a metered connection; holds
/// the connection open.
#[derive(Debug, Clone)]
pub struct StreamMeter {
    protocol: Arc<Entry>,
    label: Arc<str>,
    _conn: ConnectionMeter,
}

impl StreamMeter {
    /// The protocol label this stream is counted under (the overflow label
    /// once the protocol cap is reached).
    pub fn protocol(&self) -> &str {
        &self.label
    }

    /// Wraps `io` so that its reads and writes are counted here.
    pub fn wrap<S>(&self, io: S) -> crate::Metered<S, StreamMeter> {
        crate::Metered::new(io, self.clone())
    }
}

impl Recorder for StreamMeter {
    #[inline]
    fn record_read(&self, n: usize) {
        self.protocol.add_in(n as u64);
    }

    #[inline]
    fn record_write(&self, n: usize) {
        self.protocol.add_out(n as u64);
    }

    fn record_error(&self, _phase: Phase, _e: &std::io::Error) {}
}

impl Conn {
    /// Takes a rate sample: the rate since the last one, kept as min/max
    /// when bytes moved.
    pub(crate) fn sample(&self, now: Instant) {
        let bytes = self.bytes_in.load(Ordering::Relaxed) + self.bytes_out.load(Ordering::Relaxed);
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let dt = now.saturating_duration_since(w.at).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        let moved = bytes.saturating_sub(w.bytes);
        if moved > 0 {
            let rate = moved as f64 / dt;
            w.min = w.min.min(rate);
            w.max = w.max.max(rate);
            w.samples += 1;
        }
        w.at = now;
        w.bytes = bytes;
    }

    fn record(&self, now: Instant) -> ConnectionRecord {
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let bytes_out = self.bytes_out.load(Ordering::Relaxed);
        let first_in = self.first_in.load(Ordering::Relaxed);
        let first_out = self.first_out.load(Ordering::Relaxed);
        let ttfb = (first_in > first_out && first_out > 0)
            .then(|| Duration::from_nanos(first_in - first_out));
        let duration = now.saturating_duration_since(self.start);
        let first_byte = match (first_in, first_out) {
            (0, 0) => None,
            (0, x) | (x, 0) => Some(x - 1),
            (a, b) => Some(a.min(b) - 1),
        };
        let moving = first_byte
            .map(|f| {
                duration
                    .saturating_sub(Duration::from_nanos(f))
                    .as_secs_f64()
            })
            .unwrap_or(0.0);
        let total = (bytes_in + bytes_out) as f64;
        let rate_avg = if moving > 0.0 { total / moving } else { 0.0 };
        let w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let (rate_min, rate_max) = if w.samples > 0 {
            (w.min, w.max)
        } else {
            (rate_avg, rate_avg)
        };
        let mask = self.meter.config.mask;
        ConnectionRecord {
            instance: Arc::clone(&self.meter.instance),
            id: self.id,
            ended_at: SystemTime::now(),
            transport: Arc::clone(&self.transport_label),
            protocol: self.protocol.as_ref().map(|(l, _)| Arc::clone(l)),
            peer: self.peer.as_ref().map(|(l, _)| Arc::clone(l)),
            direction: self.direction,
            local_addr: self.local.map(|ip| mask.apply(ip)),
            remote_addr: self.remote.map(|ip| mask.apply(ip)),
            dial: *self.dial.lock().unwrap_or_else(|e| e.into_inner()),
            ttfb,
            duration,
            bytes_in,
            bytes_out,
            rate_min,
            rate_max,
            rate_avg,
            error: self.error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let now = Instant::now();
        self.meter.unregister(self.id);
        self.meter.active.fetch_sub(1, Ordering::Relaxed);
        if let Some((peer, _)) = &self.peer {
            self.meter.peers().close(peer, now);
        }
        if self.meter.wants_record(self.id) {
            let record = self.record(now);
            self.meter.send(record);
        }
    }
}
