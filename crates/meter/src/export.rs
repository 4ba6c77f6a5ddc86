//! The exporter (feature `export`): a thread that takes connection-rate
//! samples every second, and every interval posts the records (or their
//! 5-minute aggregates) and a snapshot of the counters as line protocol to
//! weir's `/write` or a weir agent's listener, with a write token.
//!
//! What cannot be delivered stays queued, up to a bound; past it the
//! oldest lines are dropped and counted ([`ExportStats::lines_dropped`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::aggregate::Aggregator;
use crate::lines;
use crate::record::Records;
use crate::Meter;

/// Per-connection records, or 5-minute aggregates of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordMode {
    /// One `meter_connection` line per record.
    PerConnection,
    /// `meter_aggregate` lines per window of this length; no
    /// per-connection data leaves the process.
    Aggregated(Duration),
}

/// Where and how often to export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// The server's or agent's base URL, e.g. `http://127.0.0.1:8086`.
    pub url: String,
    /// The database (`db` parameter).
    pub database: String,
    /// A write token, sent as `Authorization: Token …`.
    pub token: Option<String>,
    /// Static tags for every line (e.g. `ingress_country`, `version`).
    pub tags: Vec<(String, String)>,
    /// How often lines are posted (default 10 s).
    pub interval: Duration,
    /// What to do with records.
    pub records: RecordMode,
    /// Whether to post `meter_traffic` and `meter` snapshot lines.
    pub traffic: bool,
    /// Line-protocol bytes kept while the receiver is unreachable (default
    /// 16 MiB); beyond it the oldest lines go.
    pub max_pending_bytes: usize,
}

impl ExportConfig {
    /// Defaults for `url` and `database`.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        ExportConfig {
            url: url.into(),
            database: database.into(),
            token: None,
            tags: Vec::new(),
            interval: Duration::from_secs(10),
            records: RecordMode::PerConnection,
            traffic: true,
            max_pending_bytes: 16 << 20,
        }
    }
}

/// What the exporter has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Lines the receiver accepted.
    pub lines_sent: u64,
    /// Lines dropped: the queue was full, the receiver rejected them as
    /// malformed (400), or they were still undelivered at shutdown.
    pub lines_dropped: u64,
    /// Posts that failed (unreachable, 5xx, auth) and will be retried.
    pub posts_failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// A failure to start the exporter.
#[derive(Debug)]
pub struct ExportError(String);

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExportError {}

/// The running exporter; [`Exporter::shutdown`] flushes and stops it.
#[derive(Debug)]
pub struct Exporter {
    stop: Arc<(Mutex<bool>, Condvar)>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

/// Largest body per post.
const MAX_POST_BYTES: usize = 1 << 20;

impl Exporter {
    /// Starts the thread. `records` is the meter's record channel
    /// ([`Meter::records`]); without it only snapshots are sent.
    pub fn spawn(
        meter: &Meter,
        records: Option<Records>,
        config: ExportConfig,
    ) -> Result<Exporter, ExportError> {
        let base = url::Url::parse(&config.url)
            .map_err(|e| ExportError(format!("export URL {:?}: {e}", config.url)))?;
        let mut endpoint = base
            .join("write")
            .map_err(|e| ExportError(format!("export URL {:?}: {e}", config.url)))?;
        endpoint
            .query_pairs_mut()
            .append_pair("db", &config.database)
            .append_pair("precision", "ns");
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let counters = Arc::new(Counters::default());
        let meter = meter.clone();
        let aggregator = match config.records {
            RecordMode::Aggregated(w) => Some(Aggregator::new(w)),
            RecordMode::PerConnection => None,
        };
        let endpoint = endpoint.to_string();
        let worker_counters = Arc::clone(&counters);
        let stop2 = Arc::clone(&stop);
        // reqwest's blocking client runs a runtime of its own, which must
        // not be built or dropped on a tokio runtime thread (the caller may
        // be async code): it is built, used and dropped on the export thread.
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("weir-meter-export".into())
            .spawn(move || {
                let client = match reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ExportError(format!("HTTP client: {e}"))));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut worker = Worker {
                    meter,
                    records,
                    aggregator,
                    pending: VecDeque::new(),
                    pending_bytes: 0,
                    client,
                    endpoint,
                    config,
                    counters: worker_counters,
                };
                worker.run(&stop2);
            })
            .map_err(|e| ExportError(format!("starting the export thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(ExportError("the export thread ended at start".into()));
            }
        }
        Ok(Exporter {
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// What it has done so far.
    pub fn stats(&self) -> ExportStats {
        ExportStats {
            lines_sent: self.counters.sent.load(Ordering::Relaxed),
            lines_dropped: self.counters.dropped.load(Ordering::Relaxed),
            posts_failed: self.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// Sends what is queued (records, open aggregates, a last snapshot) in
    /// one attempt and stops the thread.
    pub fn shutdown(mut self) -> ExportStats {
        self.stop_and_join();
        self.stats()
    }

    fn stop_and_join(&mut self) {
        let (flag, cv) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

struct Worker {
    meter: Meter,
    records: Option<Records>,
    aggregator: Option<Aggregator>,
    /// Encoded lines waiting to be posted, oldest first.
    pending: VecDeque<Vec<u8>>,
    pending_bytes: usize,
    client: reqwest::blocking::Client,
    endpoint: String,
    config: ExportConfig,
    counters: Arc<Counters>,
}

impl Worker {
    fn run(&mut self, stop: &(Mutex<bool>, Condvar)) {
        let tick = Duration::from_secs(1).min(self.config.interval);
        let mut next_post = Instant::now() + self.config.interval;
        loop {
            let stopping = {
                let (flag, cv) = stop;
                let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
                let (guard, _) = cv
                    .wait_timeout_while(guard, tick, |stopped| !*stopped)
                    .unwrap_or_else(|e| e.into_inner());
                *guard
            };
            self.meter.sample_connections();
            self.collect(stopping);
            if stopping || Instant::now() >= next_post {
                if self.config.traffic {
                    let mut out = Vec::new();
                    lines::encode_snapshot(&self.meter.snapshot(), &self.config.tags, &mut out);
                    self.queue(out);
                }
                self.post();
                next_post = Instant::now() + self.config.interval;
            }
            if stopping {
                // What the last attempt could not deliver is lost: count it.
                let left: u64 = self.pending.iter().map(|c| count_lines(c)).sum();
                if left > 0 {
                    self.counters.dropped.fetch_add(left, Ordering::Relaxed);
                    tracing::warn!(lines = left, "meter export stopped with undelivered lines");
                }
                return;
            }
        }
    }

    /// Moves records from the channel into lines or the aggregator, and
    /// closed aggregate windows (all of them when stopping) into lines.
    fn collect(&mut self, all: bool) {
        let records = self
            .records
            .as_ref()
            .map(Records::drain)
            .unwrap_or_default();
        let mut out = Vec::new();
        match &mut self.aggregator {
            None => {
                for r in &records {
                    if lines::encode_record(r, &self.config.tags, &mut out).is_err() {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some(agg) => {
                for r in &records {
                    agg.add(r);
                }
                let rows = if all {
                    agg.take_all()
                } else {
                    agg.take_closed(SystemTime::now())
                };
                for row in &rows {
                    if lines::encode_aggregate(
                        row,
                        self.meter.instance(),
                        &self.config.tags,
                        &mut out,
                    )
                    .is_err()
                    {
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.queue(out);
    }

    fn queue(&mut self, lines: Vec<u8>) {
        if lines.is_empty() {
            return;
        }
        self.pending_bytes += lines.len();
        self.pending.push_back(lines);
        while self.pending_bytes > self.config.max_pending_bytes {
            let excess = self.pending_bytes - self.config.max_pending_bytes;
            let Some(old) = self.pending.front_mut() else {
                break;
            };
            // Whole lines from the front, the oldest first, and no more than
            // needed: one batch larger than the bound keeps its newest lines.
            let cut = match old
                .get(excess - 1..)
                .and_then(|t| t.iter().position(|&b| b == b'\n'))
            {
                Some(i) => excess + i,
                None => old.len(),
            };
            let n = count_lines(&old[..cut]);
            old.drain(..cut);
            if old.is_empty() {
                self.pending.pop_front();
            }
            self.pending_bytes -= cut;
            self.counters.dropped.fetch_add(n, Ordering::Relaxed);
            tracing::warn!(
                lines = n,
                "meter export queue full: dropped the oldest lines"
            );
        }
    }

    /// Posts the queue in bodies of at most 1 MiB, oldest first, until one
    /// fails; what failed stays queued for the next interval.
    fn post(&mut self) {
        while !self.pending.is_empty() {
            let mut body = Vec::new();
            let mut taken = 0;
            for chunk in &self.pending {
                if !body.is_empty() && body.len() + chunk.len() > MAX_POST_BYTES {
                    break;
                }
                body.extend_from_slice(chunk);
                taken += 1;
            }
            let n = count_lines(&body);
            let mut request = self
                .client
                .post(&self.endpoint)
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(body);
            if let Some(t) = &self.config.token {
                request = request.header("Authorization", format!("Token {t}"));
            }
            let delivered = match request.send() {
                Ok(resp) if resp.status().is_success() => {
                    self.counters.sent.fetch_add(n, Ordering::Relaxed);
                    true
                }
                Ok(resp) if resp.status() == reqwest::StatusCode::BAD_REQUEST => {
                    // The valid lines were stored; the rest will never be.
                    let text = resp.text().unwrap_or_default();
                    tracing::warn!(%text, "weir rejected some meter lines");
                    self.counters.dropped.fetch_add(n, Ordering::Relaxed);
                    true
                }
                Ok(resp) => {
                    tracing::warn!(status = %resp.status(), url = %self.endpoint, "meter export failed; will retry");
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, url = %self.endpoint, "meter export failed; will retry");
                    false
                }
            };
            if !delivered {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            for _ in 0..taken {
                if let Some(c) = self.pending.pop_front() {
                    self.pending_bytes -= c.len();
                }
            }
        }
    }
}

fn count_lines(body: &[u8]) -> u64 {
    body.iter().filter(|&&b| b == b'\n').count() as u64
}
