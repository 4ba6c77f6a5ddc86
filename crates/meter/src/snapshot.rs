//! A poll of every counter, and its Prometheus text form.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use crate::labels::PeerTraffic;
use crate::traffic::Traffic;

/// Every counter at one poll ([`crate::Meter::snapshot`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When it was taken.
    pub at: SystemTime,
    /// The meter's instance id.
    pub instance: Arc<str>,
    /// All bytes.
    pub global: Traffic,
    /// Per transport, sorted by label.
    pub transports: Vec<(Arc<str>, Traffic)>,
    /// Per protocol, sorted by label.
    pub protocols: Vec<(Arc<str>, Traffic)>,
    /// Per peer (connected and remembered), sorted by peer.
    pub peers: Vec<PeerTraffic>,
    /// Connections open now.
    pub active_connections: u64,
    /// Connections opened since start.
    pub connections_total: u64,
    /// Peers forgotten since start (LRU full, or idle).
    pub peers_evicted: u64,
    /// Transport and protocol labels counted as the overflow label since start.
    pub labels_overflowed: u64,
    /// Connection records dropped because their channel was full.
    pub records_dropped: u64,
    /// Connections that got no record because of sampling.
    pub records_sampled_out: u64,
}

impl Snapshot {
    /// The snapshot in Prometheus' text exposition format, metric names
    /// prefixed `weir_meter_`. Byte totals are counters (a label evicted
    /// and seen again restarts from zero, which Prometheus reads as a
    /// reset); rates are gauges with a `window` label.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut scopes: Vec<(&str, &str, &Traffic)> = vec![("global", "", &self.global)];
        scopes.extend(self.transports.iter().map(|(l, t)| ("transport", &**l, t)));
        scopes.extend(self.protocols.iter().map(|(l, t)| ("protocol", &**l, t)));
        scopes.extend(self.peers.iter().map(|p| ("peer", &*p.peer, &p.traffic)));

        out.push_str("# HELP weir_meter_bytes_total Bytes moved, by scope (global, transport, protocol, peer) and direction.\n");
        out.push_str("# TYPE weir_meter_bytes_total counter\n");
        for (scope, label, t) in &scopes {
            for (dir, v) in [("in", t.bytes_in), ("out", t.bytes_out)] {
                let _ = writeln!(
                    out,
                    "weir_meter_bytes_total{{scope=\"{scope}\",label=\"{}\",direction=\"{dir}\"}} {v}",
                    escape(label)
                );
            }
        }
        out.push_str("# HELP weir_meter_rate_bytes_per_second Moving average of the byte rate over a window.\n");
        out.push_str("# TYPE weir_meter_rate_bytes_per_second gauge\n");
        for (scope, label, t) in &scopes {
            for (dir, rates) in [("in", t.rate_in), ("out", t.rate_out)] {
                for (window, r) in ["1m", "5m", "15m"].iter().zip(rates) {
                    let _ = writeln!(
                        out,
                        "weir_meter_rate_bytes_per_second{{scope=\"{scope}\",label=\"{}\",direction=\"{dir}\",window=\"{window}\"}} {r}",
                        escape(label)
                    );
                }
            }
        }
        let gauges = [
            (
                "weir_meter_active_connections",
                "gauge",
                "Connections open now.",
                self.active_connections,
            ),
            (
                "weir_meter_connections_total",
                "counter",
                "Connections opened since start.",
                self.connections_total,
            ),
            (
                "weir_meter_peers_evicted_total",
                "counter",
                "Peers forgotten: pushed out of the LRU of disconnected peers, or idle.",
                self.peers_evicted,
            ),
            (
                "weir_meter_labels_overflowed_total",
                "counter",
                "Transport and protocol labels past their cap, counted as \"other\".",
                self.labels_overflowed,
            ),
            (
                "weir_meter_records_dropped_total",
                "counter",
                "Connection records dropped because their channel was full.",
                self.records_dropped,
            ),
            (
                "weir_meter_records_sampled_out_total",
                "counter",
                "Connections that got no record because of sampling.",
                self.records_sampled_out,
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

/// A label value as the exposition format wants it: backslash, quote and
/// newline escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
