//! Records, aggregates and snapshots as InfluxDB line protocol (feature
//! `lineproto`), for weir, a weir agent or any InfluxDB.
//!
//! | measurement | one line per | tags | fields |
//! |---|---|---|---|
//! | `meter_connection` | connection record | instance, transport, protocol, peer, direction, local_addr, remote_addr, error, phase | dial_us, ttfb_us, duration_us, bytes_in, bytes_out, rate_min_bps, rate_max_bps, rate_avg_bps, ok, error_detail |
//! | `meter_aggregate` | window × dimension set | instance, transport, protocol, direction | connections, errors, bytes_in, bytes_out, dial_min_us, dial_max_us, dial_avg_us, rate_min_bps, rate_max_bps, rate_avg_bps |
//! | `meter_traffic` | label at a snapshot | instance, scope (global, transport, protocol, peer), label | bytes_in, bytes_out, rate_in_1m/5m/15m, rate_out_1m/5m/15m, connections (peers) |
//! | `meter` | snapshot | instance | active_connections, connections_total, peers_evicted, labels_overflowed, records_dropped, records_sampled_out |
//!
//! Times are integers in µs, bytes unsigned integers, rates floats in
//! bytes/s. Every line also gets the caller's static tags (e.g. the relay's
//! `ingress_country`), after the meter's own, which win on a clash.

use std::time::{SystemTime, UNIX_EPOCH};

use lineproto::{EncodeError, Line};

use crate::aggregate::AggregateRow;
use crate::record::ConnectionRecord;
use crate::snapshot::Snapshot;
use crate::traffic::Traffic;

fn nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Appends `tags` the line does not have yet, skipping empty values (line
/// protocol has no empty tag value).
fn with_static<'a>(mut line: Line<'a>, tags: &'a [(String, String)]) -> Line<'a> {
    for (k, v) in tags {
        if !v.is_empty() && line.tag(k).is_none() {
            line = line.with_tag(k.as_str(), v.as_str());
        }
    }
    line
}

fn tag_if<'a>(line: Line<'a>, key: &'a str, value: Option<String>) -> Line<'a> {
    match value {
        Some(v) if !v.is_empty() => line.with_tag(key, v),
        _ => line,
    }
}

/// Appends one `meter_connection` line for `r`.
pub fn encode_record(
    r: &ConnectionRecord,
    tags: &[(String, String)],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut line = Line::new("meter_connection")
        .with_tag("instance", &*r.instance)
        .with_tag("transport", &*r.transport);
    line = tag_if(line, "protocol", r.protocol.as_deref().map(str::to_owned));
    line = tag_if(line, "peer", r.peer.as_deref().map(str::to_owned));
    line = line.with_tag("direction", r.direction.as_str());
    line = tag_if(line, "local_addr", r.local_addr.map(|a| a.to_string()));
    line = tag_if(line, "remote_addr", r.remote_addr.map(|a| a.to_string()));
    if let Some(e) = &r.error {
        line = line
            .with_tag("error", e.class.to_string())
            .with_tag("phase", e.phase.as_str());
    }
    line = with_static(line, tags);
    if let Some(d) = r.dial {
        line = line.with_field("dial_us", micros(d));
    }
    if let Some(t) = r.ttfb {
        line = line.with_field("ttfb_us", micros(t));
    }
    line = line
        .with_field("duration_us", micros(r.duration))
        .with_field("bytes_in", r.bytes_in)
        .with_field("bytes_out", r.bytes_out)
        .with_field("rate_min_bps", r.rate_min)
        .with_field("rate_max_bps", r.rate_max)
        .with_field("rate_avg_bps", r.rate_avg)
        .with_field("ok", r.error.is_none());
    if let Some(e) = &r.error {
        line = line.with_field("error_detail", e.detail.as_str());
    }
    line.with_timestamp(nanos(r.ended_at)).encode(out)
}

/// Appends one `meter_aggregate` line for `row`.
pub fn encode_aggregate(
    row: &AggregateRow,
    instance: &str,
    tags: &[(String, String)],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let k = &row.key;
    let mut line = Line::new("meter_aggregate")
        .with_tag("instance", instance)
        .with_tag("transport", &*k.transport);
    line = tag_if(line, "protocol", Some(k.protocol.to_string()));
    line = with_static(line.with_tag("direction", k.direction), tags)
        .with_field("connections", row.connections)
        .with_field("errors", row.errors)
        .with_field("bytes_in", row.bytes_in)
        .with_field("bytes_out", row.bytes_out);
    if let Some(mean) = row.dial_us.mean() {
        // Times are integer µs, as in `meter_connection`.
        line = line
            .with_field("dial_min_us", row.dial_us.min.round() as i64)
            .with_field("dial_max_us", row.dial_us.max.round() as i64)
            .with_field("dial_avg_us", mean.round() as i64);
    }
    if let Some(mean) = row.rate_bps.mean() {
        line = line
            .with_field("rate_min_bps", row.rate_bps.min)
            .with_field("rate_max_bps", row.rate_bps.max)
            .with_field("rate_avg_bps", mean);
    }
    let start = i64::try_from(k.window_start)
        .unwrap_or(i64::MAX / 1_000_000_000)
        .saturating_mul(1_000_000_000);
    line.with_timestamp(start).encode(out)
}

fn traffic_line<'a>(
    scope: &'a str,
    label: &'a str,
    t: &Traffic,
    instance: &'a str,
    tags: &'a [(String, String)],
) -> Line<'a> {
    let mut line = Line::new("meter_traffic")
        .with_tag("instance", instance)
        .with_tag("scope", scope);
    if !label.is_empty() {
        line = line.with_tag("label", label);
    }
    line = with_static(line, tags)
        .with_field("bytes_in", t.bytes_in)
        .with_field("bytes_out", t.bytes_out);
    for (i, w) in ["1m", "5m", "15m"].iter().enumerate() {
        line = line
            .with_field(format!("rate_in_{w}"), t.rate_in[i])
            .with_field(format!("rate_out_{w}"), t.rate_out[i]);
    }
    line
}

/// Appends the `meter_traffic` lines (one per label) and the `meter` line
/// of a snapshot. Returns how many lines could not be encoded (a label
/// that is not valid UTF-8 text for a tag, say); the rest are written.
pub fn encode_snapshot(s: &Snapshot, tags: &[(String, String)], out: &mut Vec<u8>) -> usize {
    let at = nanos(s.at);
    let inst = &*s.instance;
    let mut failed = 0;
    let mut put = |line: Line<'_>| {
        if line.with_timestamp(at).encode(out).is_err() {
            failed += 1;
        }
    };
    put(traffic_line("global", "", &s.global, inst, tags));
    for (l, t) in &s.transports {
        put(traffic_line("transport", l, t, inst, tags));
    }
    for (l, t) in &s.protocols {
        put(traffic_line("protocol", l, t, inst, tags));
    }
    for p in &s.peers {
        put(traffic_line("peer", &p.peer, &p.traffic, inst, tags)
            .with_field("connections", p.connections as u64));
    }
    put(
        with_static(Line::new("meter").with_tag("instance", inst), tags)
            .with_field("active_connections", s.active_connections)
            .with_field("connections_total", s.connections_total)
            .with_field("peers_evicted", s.peers_evicted)
            .with_field("labels_overflowed", s.labels_overflowed)
            .with_field("records_dropped", s.records_dropped)
            .with_field("records_sampled_out", s.records_sampled_out),
    );
    failed
}
