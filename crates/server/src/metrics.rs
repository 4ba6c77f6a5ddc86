//! The server's own metrics, exposed at `GET /metrics` in the Prometheus
//! text format (version 0.0.4).
//!
//! | name | type | what |
//! |---|---|---|
//! | `weir_http_requests_total{endpoint,status}` | counter | answered requests |
//! | `weir_write_lines_accepted_total` | counter | lines stored |
//! | `weir_write_lines_rejected_total` | counter | lines refused (parse errors, type conflicts) |
//! | `weir_write_bytes_total` | counter | line protocol received, after decompression |
//! | `weir_write_duration_seconds` | histogram | one `Store::write_lines` call: parse, schema check, WAL append and fsync wait, buffer apply |
//! | `weir_query_duration_seconds` | histogram | one query from planning to the last byte sent |
//! | `weir_wal_fsync_duration_seconds` | histogram | one fsync of the write-ahead log, shared by a commit group of concurrent writes |
//! | `weir_queries_total{result}` | counter | queries by result: `ok`, `error`, `timeout` |
//! | `weir_buffer_rows` | gauge | rows in the write buffer, not yet persisted |
//! | `weir_buffer_bytes` | gauge | memory of the write buffer as its budget counts it (Arrow bytes of big writes, line-protocol bytes of the rest) |
//! | `weir_persisted_files`, `weir_persisted_bytes` | gauge | Parquet files and their size |
//! | `weir_databases` | gauge | databases in the catalog |
//! | `weir_build_info{version}` | gauge | always 1 |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use store::latency::LatencyHistogram;
use store::Store;

/// Writes `h` as Prometheus histogram `name`.
fn render_histogram(out: &mut String, h: &LatencyHistogram, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut count = 0;
    for (bound, cumulative) in h.cumulative() {
        let le = bound.map_or("+Inf".to_owned(), |b| b.to_string());
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        count = cumulative;
    }
    let _ = writeln!(out, "{name}_sum {}\n{name}_count {count}", h.sum_seconds());
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryResult {
    /// Every row was sent.
    Ok,
    /// It failed (planning, execution, or the client went away).
    Error,
    /// It ran past the query timeout.
    Timeout,
}

/// Everything the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    lines_accepted: AtomicU64,
    lines_rejected: AtomicU64,
    write_bytes: AtomicU64,
    /// One `Store::write_lines` call.
    pub write_duration: LatencyHistogram,
    /// One query, to its last byte.
    pub query_duration: LatencyHistogram,
    queries: [AtomicU64; 3],
}

impl Metrics {
    /// Counts an answered request to `endpoint` (a fixed label, never the
    /// raw path) with `status`.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((endpoint, status)).or_default() += 1;
    }

    /// Counts a write's lines and decompressed bytes.
    pub fn lines(&self, accepted: usize, rejected: usize, bytes: usize) {
        self.lines_accepted
            .fetch_add(accepted as u64, Ordering::Relaxed);
        self.lines_rejected
            .fetch_add(rejected as u64, Ordering::Relaxed);
        self.write_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Records a finished query.
    pub fn query(&self, result: QueryResult, took: Duration) {
        self.queries[result as usize].fetch_add(1, Ordering::Relaxed);
        self.query_duration.observe(took);
    }

    /// The exposition text, with gauges read from `store` now.
    pub fn render(&self, store: &Store) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP weir_build_info weir's version.\n# TYPE weir_build_info gauge\n\
             weir_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP weir_http_requests_total HTTP requests answered, by endpoint and status.\n\
             # TYPE weir_http_requests_total counter"
        );
        for ((endpoint, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "weir_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            &mut out,
            "weir_write_lines_accepted_total",
            "Lines of line protocol stored.",
            &self.lines_accepted,
        );
        counter(
            &mut out,
            "weir_write_lines_rejected_total",
            "Lines of line protocol refused (parse errors, type conflicts).",
            &self.lines_rejected,
        );
        counter(
            &mut out,
            "weir_write_bytes_total",
            "Bytes of line protocol received, after decompression.",
            &self.write_bytes,
        );
        render_histogram(
            &mut out,
            &self.write_duration,
            "weir_write_duration_seconds",
            "Time of one store write: parse, schema check, WAL append and fsync wait, buffer apply.",
        );
        render_histogram(
            &mut out,
            &self.query_duration,
            "weir_query_duration_seconds",
            "Time of one query from planning to its last byte sent.",
        );
        render_histogram(
            &mut out,
            store.wal_sync_latency(),
            "weir_wal_fsync_duration_seconds",
            "Time of one fsync of the write-ahead log (one per commit group of concurrent writes).",
        );
        let _ = writeln!(
            out,
            "# HELP weir_queries_total Queries by result.\n# TYPE weir_queries_total counter"
        );
        for (i, result) in ["ok", "error", "timeout"].iter().enumerate() {
            let _ = writeln!(
                out,
                "weir_queries_total{{result=\"{result}\"}} {}",
                self.queries[i].load(Ordering::Relaxed)
            );
        }
        let files = store.files();
        let bytes: u64 = files.iter().map(|f| f.bytes).sum();
        let gauges = [
            (
                "weir_buffer_rows",
                "Rows in the write buffer, not yet persisted.",
                store.buffered_rows() as u64,
            ),
            (
                "weir_buffer_bytes",
                "Memory of the write buffer (live and being persisted) as the buffer budget counts it: Arrow bytes of rows from big writes, line-protocol bytes of the rest.",
                store.buffered_bytes() as u64,
            ),
            (
                "weir_persisted_files",
                "Persisted Parquet files.",
                files.len() as u64,
            ),
            (
                "weir_persisted_bytes",
                "Bytes of persisted Parquet files.",
                bytes,
            ),
            (
                "weir_databases",
                "Databases in the catalog.",
                store.database_names().len() as u64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        render_histogram(&mut out, &h, "x_seconds", "X.");
        assert!(out.contains("x_seconds_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 60.00305\n"), "{out}");
    }
}
