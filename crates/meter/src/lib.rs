//! weir-meter: traffic metering for applications of P2P and proxy
//! networks, the libp2p bandwidth metrics and Lantern's connection records
//! in one small library.
//!
//! - A [`Meter`] counts bytes in and out globally, per transport, per
//!   protocol and per peer. Labels are resolved once, when a connection
//!   ([`Meter::connection`]) or stream ([`ConnectionMeter::stream`]) opens;
//!   after that a read or write costs a few relaxed atomic adds: no lock, no
//!   allocation, no map lookup.
//! - Rates are moving averages over 1, 5 and 15 minutes, computed when a
//!   [`Snapshot`] is polled, never pushed per byte.
//! - Memory is bounded: disconnected peers live in an LRU (default 50),
//!   idle labels are evicted, protocol and transport labels are capped.
//! - When a connection's last handle drops, a [`ConnectionRecord`] (dial
//!   time, TTFB, duration, bytes each way, rates, first error and phase,
//!   masked addresses) goes into a bounded channel that counts what it
//!   drops ([`Meter::records`]), optionally sampled; [`Aggregator`] folds
//!   records into 5-minute rows for networks that must not send
//!   per-connection data.
//! - Wrappers: [`Metered`] over `std::io::Read`/`Write`, and with feature
//!   `tokio` over `AsyncRead`/`AsyncWrite`; with [`Off`] in place of a
//!   meter they cost nothing.
//! - Out: [`Snapshot::prometheus`]; with feature `lineproto`, line protocol
//!   ([`lines`]); with feature `export`, a thread that posts it to weir or a
//!   weir agent ([`export::Exporter`]).
//!
//! ```
//! use std::io::{Read, Write};
//! let meter = meter::Meter::new(meter::MeterConfig::default());
//! let records = meter.records().expect("records are on by default");
//! let conn = meter.connection("tcp").peer("example.org").protocol("http").open();
//! // A connection's two halves, each wrapped (here: a Vec and a byte slice).
//! let mut tx = conn.wrap(Vec::new());
//! tx.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
//! let mut rx = conn.wrap(&b"HTTP/1.1 200 OK\r\n"[..]);
//! let mut reply = String::new();
//! rx.read_to_string(&mut reply).unwrap();
//! drop((tx, rx, conn)); // the last handle: the connection ends, its record is sent
//! let snapshot = meter.snapshot();
//! assert_eq!(snapshot.global.bytes_in, 17);
//! assert_eq!(records.drain()[0].bytes_out, 18);
//! ```

mod aggregate;
mod connection;
mod io;
mod labels;
mod record;
mod snapshot;
mod traffic;

#[cfg(feature = "export")]
pub mod export;
#[cfg(feature = "lineproto")]
pub mod lines;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

pub use aggregate::{AggregateKey, AggregateRow, Aggregator, DEFAULT_AGGREGATE_WINDOW};
pub use connection::{ConnectionBuilder, ConnectionMeter, StreamMeter};
pub use io::{is_transient, Metered, Off, Recorder};
pub use labels::{PeerTraffic, OVERFLOW_LABEL};
pub use record::{error_class, ConnectionError, ConnectionRecord, Direction, Mask, Phase, Records};
pub use snapshot::Snapshot;
pub use traffic::{Traffic, EWMA_WINDOWS};

use connection::Conn;
use labels::{LabelTable, PeerTable};
use traffic::Entry;

/// How a [`Meter`] bounds its memory and what it reports.
#[derive(Debug, Clone)]
pub struct MeterConfig {
    /// This process's id in records (default: random, 16 hex digits).
    pub instance: String,
    /// Disconnected peers remembered (libp2p's 50).
    pub peer_lru: usize,
    /// Labels and remembered peers without traffic (and without open
    /// connections) for this long are forgotten at the next snapshot.
    pub idle_timeout: Duration,
    /// Distinct protocol labels; later ones count as [`OVERFLOW_LABEL`].
    pub max_protocols: usize,
    /// Distinct transport labels; later ones count as [`OVERFLOW_LABEL`].
    pub max_transports: usize,
    /// Prefixes addresses are masked to in records.
    pub mask: Mask,
    /// Connection records: `None` builds none.
    pub records: Option<RecordConfig>,
}

/// The record channel.
#[derive(Debug, Clone, Copy)]
pub struct RecordConfig {
    /// Records held until read; more are dropped and counted.
    pub capacity: usize,
    /// The share of connections that get a record, 0–1; the choice is a
    /// hash of the connection id, so it is the same in every run.
    pub sample: f64,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            capacity: 4096,
            sample: 1.0,
        }
    }
}

impl Default for MeterConfig {
    fn default() -> Self {
        MeterConfig {
            instance: random_instance(),
            peer_lru: 50,
            idle_timeout: Duration::from_secs(600),
            max_protocols: 64,
            max_transports: 16,
            mask: Mask::default(),
            records: Some(RecordConfig::default()),
        }
    }
}

fn random_instance() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", h.finish())
}

/// The registry of counters. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Meter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: MeterConfig,
    pub(crate) instance: Arc<str>,
    pub(crate) global: Arc<Entry>,
    transports: Mutex<LabelTable>,
    protocols: Mutex<LabelTable>,
    peers: Mutex<PeerTable>,
    open: Mutex<HashMap<u64, Weak<Conn>>>,
    pub(crate) active: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    records: Option<RecordSender>,
    taken: Mutex<Option<Records>>,
}

#[derive(Debug)]
struct RecordSender {
    sender: SyncSender<ConnectionRecord>,
    dropped: Arc<AtomicU64>,
    sampled_out: AtomicU64,
    /// Keep a connection's record when the hash of its id is below this.
    threshold: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// splitmix64: spreads consecutive ids evenly over u64 for sampling.
fn spread(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Inner {
    pub(crate) fn transports(&self) -> MutexGuard<'_, LabelTable> {
        lock(&self.transports)
    }

    pub(crate) fn protocols(&self) -> MutexGuard<'_, LabelTable> {
        lock(&self.protocols)
    }

    pub(crate) fn peers(&self) -> MutexGuard<'_, PeerTable> {
        lock(&self.peers)
    }

    pub(crate) fn register(&self, conn: &Arc<Conn>) {
        lock(&self.open).insert(conn.id, Arc::downgrade(conn));
    }

    pub(crate) fn unregister(&self, id: u64) {
        lock(&self.open).remove(&id);
    }

    /// Whether connection `id` gets a record (counting those sampled out).
    pub(crate) fn wants_record(&self, id: u64) -> bool {
        let Some(r) = &self.records else { return false };
        let keep = r.threshold == u64::MAX || spread(id) < r.threshold;
        if !keep {
            r.sampled_out.fetch_add(1, Ordering::Relaxed);
        }
        keep
    }

    pub(crate) fn send(&self, record: ConnectionRecord) {
        if let Some(r) = &self.records {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                r.sender.try_send(record)
            {
                r.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Meter {
    /// A meter with `config`.
    pub fn new(config: MeterConfig) -> Self {
        let now = Instant::now();
        let (records, taken) = match config.records {
            Some(rc) => {
                let (sender, receiver) = sync_channel(rc.capacity.max(1));
                let dropped = Arc::new(AtomicU64::new(0));
                let sample = rc.sample.clamp(0.0, 1.0);
                let threshold = if sample >= 1.0 {
                    u64::MAX
                } else {
                    (sample * u64::MAX as f64) as u64
                };
                (
                    Some(RecordSender {
                        sender,
                        dropped: Arc::clone(&dropped),
                        sampled_out: AtomicU64::new(0),
                        threshold,
                    }),
                    Some(Records { receiver, dropped }),
                )
            }
            None => (None, None),
        };
        Meter {
            inner: Arc::new(Inner {
                instance: Arc::from(config.instance.as_str()),
                global: Arc::new(Entry::new(now)),
                transports: Mutex::new(LabelTable::new(config.max_transports)),
                protocols: Mutex::new(LabelTable::new(config.max_protocols)),
                peers: Mutex::new(PeerTable::new(config.peer_lru)),
                open: Mutex::new(HashMap::new()),
                active: AtomicU64::new(0),
                connections_total: AtomicU64::new(0),
                records,
                taken: Mutex::new(taken),
                config,
            }),
        }
    }

    /// The receiving end of the record channel; `Some` once, for the one
    /// reader (an exporter, an aggregator), and `None` without records.
    pub fn records(&self) -> Option<Records> {
        lock(&self.inner.taken).take()
    }

    /// This meter's instance id.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Starts describing a connection over `transport` (`tcp`, `quic`,
    /// `socks5`, …).
    pub fn connection(&self, transport: &str) -> ConnectionBuilder {
        ConnectionBuilder {
            meter: Arc::clone(&self.inner),
            transport: transport.to_owned(),
            peer: None,
            protocol: None,
            direction: Direction::Outbound,
            local: None,
            remote: None,
            dial: None,
            started: None,
        }
    }

    /// Records a connection that failed before it opened (a refused dial,
    /// a failed handshake): counted, and recorded with its error.
    pub fn failed(&self, builder: ConnectionBuilder, error: ConnectionError) {
        let conn = builder.open();
        conn.error(error);
    }

    /// Connections open now.
    pub fn active_connections(&self) -> u64 {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// Takes a rate sample of every open connection (for the min/max rates
    /// in their records); call it every second or so, e.g. from a ticker.
    pub fn sample_connections(&self) {
        self.sample_connections_at(Instant::now());
    }

    /// [`sample_connections`](Self::sample_connections) as of `now`.
    pub fn sample_connections_at(&self, now: Instant) {
        // Upgrade under the lock, sample and drop outside it: dropping the
        // last handle of a connection runs its close, which takes the lock.
        let open: Vec<Arc<Conn>> = lock(&self.inner.open)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for conn in &open {
            conn.sample(now);
        }
    }

    /// Polls every counter: totals, and the moving averages brought up to
    /// now; forgets what has been idle past the configured timeout.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot_at(Instant::now())
    }

    /// [`snapshot`](Self::snapshot) as of `now` (for simulations and tests;
    /// `now` must not go backwards between calls).
    pub fn snapshot_at(&self, now: Instant) -> Snapshot {
        let i = &self.inner;
        let idle = i.config.idle_timeout;
        // Every connection has one transport, so the global totals are the
        // transports' (and the hot path adds to one counter fewer).
        let (transports, transports_overflowed) = {
            let mut t = i.transports();
            let polled = t.poll(now, idle);
            let (bytes_in, bytes_out) = t.total(&polled);
            i.global.set(bytes_in, bytes_out);
            (polled, t.overflowed)
        };
        let (protocols, protocols_overflowed) = {
            let mut t = i.protocols();
            (t.poll(now, idle), t.overflowed)
        };
        let (peers, peers_evicted) = {
            let mut t = i.peers();
            (t.poll(now, idle), t.evicted)
        };
        let (records_dropped, records_sampled_out) = match &i.records {
            Some(r) => (
                r.dropped.load(Ordering::Relaxed),
                r.sampled_out.load(Ordering::Relaxed),
            ),
            None => (0, 0),
        };
        Snapshot {
            at: SystemTime::now(),
            instance: Arc::clone(&i.instance),
            global: i.global.poll(now),
            transports,
            protocols,
            peers,
            active_connections: i.active.load(Ordering::Relaxed),
            connections_total: i.connections_total.load(Ordering::Relaxed),
            peers_evicted,
            labels_overflowed: transports_overflowed + protocols_overflowed,
            records_dropped,
            records_sampled_out,
        }
    }

    /// Peers tracked now (connected and remembered): what bounds memory.
    pub fn tracked_peers(&self) -> usize {
        self.inner.peers().len()
    }
}
