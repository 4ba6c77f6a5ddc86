//! Results as points (`probe_http`, `probe_echo`) and as JSON objects with
//! the same names, so `weir probe once --json` and the table agree.

use lineproto::{FieldValue, Line};
use serde_json::{Map, Value};

use crate::download::DownloadResult;
use crate::echo::EchoResult;
use crate::failure::Failure;

/// The tags a measurement's rows carry besides error and phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// Tag `target`: a name given in the configuration, else `host:port`.
    pub target: String,
    /// Tag `proxy`: the SOCKS5 proxy's `host:port`, if any.
    pub proxy: Option<String>,
    /// More tags (e.g. `vantage`), added as given.
    pub extra: Vec<(String, String)>,
}

impl Labels {
    fn apply(&self, mut line: Line<'static>) -> Line<'static> {
        line = line.with_tag("target", self.target.clone());
        if let Some(p) = &self.proxy {
            line = line.with_tag("proxy", p.clone());
        }
        for (k, v) in &self.extra {
            line = line.with_tag(k.clone(), v.clone());
        }
        line
    }
}

fn failure_tags(mut line: Line<'static>, failure: Option<&Failure>) -> Line<'static> {
    if let Some(f) = failure {
        line = line
            .with_tag("error", f.class.to_string())
            .with_tag("phase", f.phase.as_str());
    }
    line
}

fn us(v: Option<u64>) -> Option<FieldValue<'static>> {
    v.map(|v| FieldValue::Integer(i64::try_from(v).unwrap_or(i64::MAX)))
}

fn bps(v: Option<f64>) -> Option<FieldValue<'static>> {
    v.filter(|v| v.is_finite()).map(FieldValue::Float)
}

/// The fields of a download, in the table's names; absent ones left out.
pub fn download_fields(r: &DownloadResult) -> Vec<(&'static str, FieldValue<'static>)> {
    let t = &r.times;
    let size = r.expected_size.unwrap_or(r.bytes_received);
    let mut fields: Vec<(&'static str, Option<FieldValue<'static>>)> = vec![
        ("ttfb_us", us(t.ttfb_us())),
        ("server_ttfb_us", us(t.server_ttfb_us())),
        ("ttlb_us", us(r.ttlb_us())),
        ("ttlb_50k_us", us(t.ttlb_50k_us())),
        ("ttlb_1m_us", us(t.ttlb_1m_us())),
        ("ttlb_2_5m_us", us(t.milestones[2])),
        ("ttlb_4m_us", us(t.milestones[3])),
        ("ttlb_5m_us", us(t.milestones[4])),
        ("request_latency_us", us(t.request_latency_us())),
        ("dns_us", us(t.dns_us())),
        ("connect_us", us(t.connect_us())),
        ("socks_us", us(t.socks_us())),
        ("tls_us", us(t.tls_us())),
        ("socks_method_us", us(t.socks_method)),
        ("request_sent_us", us(t.request_sent)),
        ("response_header_us", us(t.response_header)),
        // The latest byte's time, for failed downloads too.
        ("last_byte_us", us(t.last_byte)),
        ("bytes_received", us(Some(r.bytes_received))),
    ];
    if r.ok() {
        fields.extend([
            ("dl_last_mib_bps", bps(t.dl_last_mib_bps())),
            ("dl_second_half_bps", bps(t.dl_second_half_bps(size))),
            ("dl_legacy_bps", bps(t.dl_legacy_bps())),
        ]);
    }
    const DECILES: [&str; 9] = [
        "progress_10_us",
        "progress_20_us",
        "progress_30_us",
        "progress_40_us",
        "progress_50_us",
        "progress_60_us",
        "progress_70_us",
        "progress_80_us",
        "progress_90_us",
    ];
    for (name, at) in DECILES.iter().zip(t.deciles) {
        fields.push((name, us(at)));
    }
    fields.push((
        "status",
        r.status.map(|s| FieldValue::Integer(i64::from(s))),
    ));
    fields.push(("ok", Some(FieldValue::Boolean(r.ok()))));
    fields.push(("partial", Some(FieldValue::Boolean(r.partial()))));
    fields.push((
        "timeout",
        Some(FieldValue::Boolean(
            r.failure.as_ref().is_some_and(|f| f.class.is_timeout()),
        )),
    ));
    fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// A download as one `probe_http` row.
pub fn download_line(r: &DownloadResult, labels: &Labels) -> Line<'static> {
    let mut line = labels.apply(Line::new("probe_http"));
    if let Some(size) = r.expected_size {
        line = line.with_tag("size", size.to_string());
    }
    line = failure_tags(line, r.failure.as_ref());
    for (k, v) in download_fields(r) {
        line = line.with_field(k, v);
    }
    line.with_timestamp(r.start_unix_ns)
}

/// A download as one JSON object: the row's fields plus url, target,
/// proxy, size, and error, phase and detail on failure.
pub fn download_json(r: &DownloadResult, labels: &Labels) -> Value {
    let mut o = Map::new();
    o.insert("url".into(), Value::from(r.url.clone()));
    o.insert("target".into(), Value::from(labels.target.clone()));
    if let Some(p) = &labels.proxy {
        o.insert("proxy".into(), Value::from(p.clone()));
    }
    if let Some(s) = r.expected_size {
        o.insert("size".into(), Value::from(s));
    }
    o.insert("start_unix_ns".into(), Value::from(r.start_unix_ns));
    for (k, v) in download_fields(r) {
        o.insert(k.into(), json_value(v));
    }
    insert_failure(&mut o, r.failure.as_ref());
    Value::Object(o)
}

fn insert_failure(o: &mut Map<String, Value>, failure: Option<&Failure>) {
    if let Some(f) = failure {
        o.insert("error".into(), Value::from(f.class.to_string()));
        o.insert("phase".into(), Value::from(f.phase.as_str()));
        o.insert("detail".into(), Value::from(f.detail.clone()));
    }
}

fn json_value(v: FieldValue<'_>) -> Value {
    match v {
        FieldValue::Float(f) => Value::from(f),
        FieldValue::Integer(i) => Value::from(i),
        FieldValue::UInteger(u) => Value::from(u),
        FieldValue::Boolean(b) => Value::from(b),
        FieldValue::String(s) => Value::from(s.into_owned()),
    }
}

/// An echo round as `probe_echo` rows: one per pair sent (time = when the
/// request left; `rtt_us` when the reply came, `ok`), and, when the round
/// failed, a row at its start carrying `error` and `phase`.
pub fn echo_lines(r: &EchoResult, labels: &Labels) -> Vec<Line<'static>> {
    let base = || {
        labels
            .apply(Line::new("probe_echo"))
            .with_tag("transport", r.transport)
    };
    let mut lines: Vec<Line<'static>> = r
        .samples
        .iter()
        .map(|s| {
            let mut line = base()
                .with_field("seq", i64::from(s.seq))
                .with_field("ok", s.rtt_us.is_some());
            if let Some(rtt) = us(s.rtt_us) {
                line = line.with_field("rtt_us", rtt);
            }
            line.with_timestamp(s.sent_unix_ns)
        })
        .collect();
    if let Some(f) = &r.failure {
        let mut line = failure_tags(base(), Some(f))
            .with_field("ok", false)
            .with_field("timeout", f.class.is_timeout());
        for (k, v) in [
            ("dns_us", r.times.dns_us()),
            ("connect_us", r.times.connect_us()),
            ("socks_us", r.times.socks_us()),
            ("tls_us", r.times.tls_us()),
        ] {
            if let Some(v) = us(v) {
                line = line.with_field(k, v);
            }
        }
        // Just before the first pair's row, so both survive as points.
        lines.push(line.with_timestamp(r.start_unix_ns.saturating_sub(1)));
    }
    lines
}

/// An echo round as one JSON object: the RTTs in order (null when lost),
/// their summary, and error, phase and detail on failure.
pub fn echo_json(r: &EchoResult, labels: &Labels) -> Value {
    let mut o = Map::new();
    o.insert("url".into(), Value::from(r.url.clone()));
    o.insert("target".into(), Value::from(labels.target.clone()));
    if let Some(p) = &labels.proxy {
        o.insert("proxy".into(), Value::from(p.clone()));
    }
    o.insert("transport".into(), Value::from(r.transport));
    o.insert("start_unix_ns".into(), Value::from(r.start_unix_ns));
    let rtts: Vec<Value> = r.samples.iter().map(|s| Value::from(s.rtt_us)).collect();
    o.insert("rtt_us".into(), Value::from(rtts));
    o.insert("sent".into(), Value::from(r.samples.len()));
    o.insert("lost".into(), Value::from(r.lost()));
    let mut got: Vec<u64> = r.samples.iter().filter_map(|s| s.rtt_us).collect();
    got.sort_unstable();
    if let (Some(min), Some(max)) = (got.first(), got.last()) {
        o.insert("rtt_min_us".into(), Value::from(*min));
        o.insert("rtt_median_us".into(), Value::from(got[got.len() / 2]));
        o.insert("rtt_max_us".into(), Value::from(*max));
    }
    o.insert("ok".into(), Value::from(r.failure.is_none()));
    insert_failure(&mut o, r.failure.as_ref());
    Value::Object(o)
}
