//! The Prometheus text exposition: every sample line parses as
//! `name{labels} value`, label values are escaped and read back.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::Duration;

use meter::{Meter, MeterConfig};

/// One sample: metric name, labels (unescaped), value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A strict parser for the sample lines of the text format (0.0.4).
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line:?}"))?;
    let name = &line[..name_end];
    let valid_name = !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
    if !valid_name {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut i = name_end;
    if line[i..].starts_with('{') {
        i += 1;
        loop {
            if line[i..].starts_with('}') {
                i += 1;
                break;
            }
            let eq = line[i..].find('=').ok_or("label without =")? + i;
            let lname = &line[i..eq];
            if lname.is_empty() || !lname.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {lname:?}"));
            }
            i = eq + 1;
            if !line[i..].starts_with('"') {
                return Err("label value not quoted".into());
            }
            i += 1;
            let mut value = String::new();
            let mut chars = line[i..].char_indices();
            loop {
                let (at, c) = chars.next().ok_or("unterminated label value")?;
                match c {
                    '\\' => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    '"' => {
                        i += at + 1;
                        break;
                    }
                    '\n' => return Err("raw newline".into()),
                    c => value.push(c),
                }
            }
            if labels.insert(lname.to_owned(), value).is_some() {
                return Err(format!("label {lname} twice"));
            }
            if line[i..].starts_with(',') {
                i += 1;
            } else if !line[i..].starts_with('}') {
                return Err(format!("unexpected {:?} after a label", &line[i..]));
            }
        }
    }
    let rest = &line[i..];
    let value_text = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before the value: {line:?}"))?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|e| format!("bad value {v:?}: {e}"))
            .and_then(|x| {
                if v.contains("inf") || v.contains("NaN") {
                    Err(format!("Rust spelling of a special value: {v}"))
                } else {
                    Ok(x)
                }
            })?,
    };
    Ok((name.to_owned(), labels, value))
}

/// Every line: a `# HELP`/`# TYPE` comment or a sample; every sample's
/// family has a TYPE before it; no series twice.
fn parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'));
    let mut typed = HashSet::new();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(c) = line.strip_prefix("# ") {
            let mut parts = c.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().unwrap();
            match kind {
                "TYPE" => {
                    let t = parts.next().unwrap();
                    assert!(["counter", "gauge"].contains(&t), "{line}");
                    assert!(typed.insert(name.to_owned()), "TYPE twice: {line}");
                }
                "HELP" => assert!(parts.next().is_some_and(|h| !h.is_empty())),
                _ => panic!("line {}: unknown comment {line:?}", n + 1),
            }
            continue;
        }
        let s = parse_sample(line).unwrap_or_else(|e| panic!("line {}: {e}: {line:?}", n + 1));
        assert!(typed.contains(&s.0), "line {}: {} has no TYPE", n + 1, s.0);
        assert!(
            seen.insert(format!("{}{:?}", s.0, s.1)),
            "line {}: series twice: {line}",
            n + 1
        );
        out.push(s);
    }
    out
}

fn get<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

#[test]
fn the_exposition_parses_and_carries_every_counter() {
    let meter = Meter::new(MeterConfig {
        max_protocols: 2,
        ..MeterConfig::default()
    });
    let a = meter
        .connection("tcp")
        .peer("12D3KooWAlice")
        .protocol("/a/1")
        .open();
    let b = meter.connection("quic").peer("bob").protocol("/b/1").open();
    let c = meter.connection("quic").protocol("/c/1").open(); // past the cap
    a.wrap(std::io::sink()).write_all(&[0; 1000]).unwrap();
    b.wrap(std::io::sink()).write_all(&[0; 24]).unwrap();
    c.wrap(std::io::sink()).write_all(&[0; 1]).unwrap();
    drop(c);
    let t0 = std::time::Instant::now();
    meter.snapshot_at(t0);
    a.wrap(std::io::sink()).write_all(&[0; 6000]).unwrap();
    let snap = meter.snapshot_at(t0 + Duration::from_secs(60));
    let text = snap.prometheus();
    let samples = parse(&text);

    let bytes = |scope, label, dir| {
        let v = get(
            &samples,
            "weir_meter_bytes_total",
            &[("scope", scope), ("label", label), ("direction", dir)],
        );
        assert_eq!(v.len(), 1, "{scope} {label} {dir}");
        v[0].2
    };
    assert_eq!(bytes("global", "", "out"), 7025.0);
    assert_eq!(bytes("global", "", "in"), 0.0);
    assert_eq!(bytes("transport", "tcp", "out"), 7000.0);
    assert_eq!(bytes("transport", "quic", "out"), 25.0);
    assert_eq!(bytes("protocol", "/a/1", "out"), 7000.0);
    assert_eq!(bytes("protocol", "other", "out"), 1.0);
    assert_eq!(bytes("peer", "12D3KooWAlice", "out"), 7000.0);
    // 1m, 5m and 15m rates for every scope, label and direction.
    let rates = get(&samples, "weir_meter_rate_bytes_per_second", &[]);
    let scopes = 1 + snap.transports.len() + snap.protocols.len() + snap.peers.len();
    assert_eq!(rates.len(), scopes * 2 * 3);
    let r = get(
        &samples,
        "weir_meter_rate_bytes_per_second",
        &[
            ("scope", "peer"),
            ("label", "12D3KooWAlice"),
            ("direction", "out"),
            ("window", "1m"),
        ],
    );
    assert_eq!(r.len(), 1);
    assert!(
        (r[0].2 - snap.peers[0].traffic.rate_out[0]).abs() < 1e-9,
        "{} vs {:?}",
        r[0].2,
        snap.peers[0].traffic
    );
    assert!(
        r[0].2 > 60.0,
        "6000 B over 60 s, 1-minute window: {}",
        r[0].2
    );
    let one = |name: &str| {
        let v = get(&samples, name, &[]);
        assert_eq!(v.len(), 1, "{name}");
        assert!(v[0].1.is_empty());
        v[0].2
    };
    assert_eq!(one("weir_meter_active_connections"), 2.0);
    assert_eq!(one("weir_meter_connections_total"), 3.0);
    assert_eq!(one("weir_meter_labels_overflowed_total"), 1.0);
    assert_eq!(one("weir_meter_peers_evicted_total"), 0.0);
    assert_eq!(one("weir_meter_records_dropped_total"), 0.0);
    assert_eq!(one("weir_meter_records_sampled_out_total"), 0.0);
    assert!(text.contains("# TYPE weir_meter_bytes_total counter\n"));
    assert!(text.contains("# TYPE weir_meter_active_connections gauge\n"));
    drop((a, b));
}

#[test]
fn label_values_are_escaped() {
    let meter = Meter::new(MeterConfig::default());
    let nasty = [
        "say \"hi\"",
        "back\\slash",
        "two\nlines",
        "all \\\"\n\\n at once",
        "{braces},comma=eq space",
        "ünïcödé ✓",
    ];
    let conns: Vec<_> = nasty
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let c = meter.connection(p).peer(*p).protocol(*p).open();
            c.wrap(std::io::sink()).write_all(&vec![0; i + 1]).unwrap();
            c
        })
        .collect();
    let text = meter.snapshot().prometheus();
    let samples = parse(&text);
    for (i, p) in nasty.iter().enumerate() {
        for scope in ["transport", "protocol", "peer"] {
            let v = get(
                &samples,
                "weir_meter_bytes_total",
                &[("scope", scope), ("label", p), ("direction", "out")],
            );
            assert_eq!(v.len(), 1, "{scope} {p:?} in\n{text}");
            assert_eq!(v[0].2, (i + 1) as f64);
        }
    }
    assert!(text.contains(r#"label="say \"hi\"""#));
    assert!(text.contains(r#"label="back\\slash""#));
    assert!(text.contains(r#"label="two\nlines""#));
    drop(conns);
}

#[test]
fn an_empty_meter_exposes_its_global_series() {
    let text = Meter::new(MeterConfig::default()).snapshot().prometheus();
    let samples = parse(&text);
    assert_eq!(get(&samples, "weir_meter_bytes_total", &[]).len(), 2);
    assert_eq!(
        get(&samples, "weir_meter_rate_bytes_per_second", &[]).len(),
        6
    );
}

/// A label that is literally the overflow label must not make a second
/// series beside the overflow's own.
#[test]
fn a_real_label_named_other_is_not_a_duplicate_series() {
    let meter = Meter::new(MeterConfig {
        max_protocols: 1,
        max_transports: 1,
        ..MeterConfig::default()
    });
    let a = meter.connection("other").protocol("other").open();
    let b = meter.connection("tcp").protocol("/x/1").open();
    let c = meter.connection("quic").protocol("/y/1").open();
    for (i, conn) in [&a, &b, &c].into_iter().enumerate() {
        conn.wrap(std::io::sink())
            .write_all(&vec![0; i + 1])
            .unwrap();
    }
    let snap = meter.snapshot();
    let samples = parse(&snap.prometheus());
    let total = |scope| {
        get(
            &samples,
            "weir_meter_bytes_total",
            &[("scope", scope), ("direction", "out")],
        )
        .iter()
        .map(|s| s.2)
        .sum::<f64>()
    };
    assert_eq!(total("protocol"), 6.0);
    assert_eq!(total("transport"), 6.0);
    assert_eq!(snap.global.bytes_out, 6);
    drop((a, b, c));
}
