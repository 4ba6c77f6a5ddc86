//! Properties of a rewrite over arbitrary batches: it never fails or
//! panics, keeps every line where it was, reports the same bad lines, and
//! leaves no address in an IP tag that masking would still change.
#![allow(clippy::unwrap_used)]

#[path = "support/mmdb.rs"]
mod mmdb;

use enrich::{mask_value, CountryDb, EnrichConfig, Enricher, Mask};
use lineproto::{Line, LineError};
use proptest::prelude::*;

fn enricher() -> Enricher {
    let mut w = mmdb::MmdbWriter::default();
    w.country("203.0.113.0/24", "NL");
    w.country("2001:db8::/32", "JP");
    let db = CountryDb::from_bytes(w.to_bytes(), "test.mmdb").unwrap();
    Enricher::with_countries(&EnrichConfig::masking(&["ip", "peer"]), db).unwrap()
}

/// Tag values: addresses in every form, and text that may or may not be.
fn ip_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])),
        any::<[u8; 4]>().prop_map(|b| format!("{}.{}.{}.{}:{}", b[0], b[1], b[2], b[3], b[0])),
        any::<u128>().prop_map(|n| std::net::Ipv6Addr::from(n).to_string()),
        any::<u128>().prop_map(|n| format!("[{}]:443", std::net::Ipv6Addr::from(n))),
        any::<u32>().prop_map(|n| format!("::ffff:{}", std::net::Ipv4Addr::from(n))),
        "[0-9a-f.:\\[\\]%/x ,=\\\\]{1,24}",
    ]
}

/// Lines: mostly well formed with IP tags, some of anything.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (ip_value(), ip_value(), 0..3u8, "[a-z\"\n ]{0,6}").prop_map(|(a, b, shape, s)| {
            let esc = |v: &str| v.replace('\\', "\\\\").replace([',', ' ', '='], "\\ ");
            match shape {
                0 => format!("c,ip={},k=v n=1i 1700000000", esc(&a)),
                1 => format!("c,peer={},ip={} s=\"{}\" 17", esc(&a), esc(&b), s.replace('"', "")),
                _ => format!("c,ip={a} n={s}"),
            }
        }),
        1 => "[ -~\r\n]{0,30}",
        1 => Just(String::new()),
        1 => Just("# comment 203.0.113.7".to_owned()),
    ]
}

fn batch() -> impl Strategy<Value = String> {
    (prop::collection::vec(line(), 0..12), any::<bool>())
        .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }))
}

fn errors(body: &[u8]) -> Vec<LineError> {
    lineproto::parse_lines(body)
        .filter_map(Result::err)
        .collect()
}

fn good(body: &[u8]) -> Vec<Line<'_>> {
    lineproto::parse_lines(body)
        .filter_map(Result::ok)
        .collect()
}

/// Checked without the crate's own code: a value that is an address is a
/// /24 or /48 network, and no dotted quad in it has a host part.
fn no_host_bits(value: &str) -> bool {
    if let Some(ip) = enrich::parse_address(value) {
        return match ip {
            std::net::IpAddr::V4(v4) => v4.octets()[3] == 0,
            std::net::IpAddr::V6(v6) => v6.segments()[3..].iter().all(|&s| s == 0),
        };
    }
    value
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|run| run.trim_matches('.').parse::<std::net::Ipv4Addr>().ok())
        .all(|v4| v4.octets()[3] == 0)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_fail_and_keep_their_lines(body in any::<Vec<u8>>()) {
        let out = enricher().rewrite(&body).unwrap();
        let breaks = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
        prop_assert_eq!(breaks(&out), breaks(&body));
        prop_assert_eq!(errors(&out), errors(&body));
    }

    #[test]
    fn batches_keep_their_lines_and_lose_their_addresses(body in batch()) {
        let e = enricher();
        let out = e.rewrite(body.as_bytes()).unwrap();
        let breaks = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
        prop_assert_eq!(breaks(&out), breaks(body.as_bytes()));
        prop_assert_eq!(errors(&out), errors(body.as_bytes()));

        let (before, after) = (good(body.as_bytes()), good(&out));
        prop_assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            prop_assert_eq!(&b.measurement, &a.measurement);
            prop_assert_eq!(&b.fields, &a.fields);
            prop_assert_eq!(b.timestamp, a.timestamp);
            let others = |l: &Line<'_>| -> Vec<(String, String)> {
                l.tags
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_ref(), "ip" | "peer" | "country"))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            };
            prop_assert_eq!(others(b), others(a));
            for (key, value) in &a.tags {
                if matches!(key.as_ref(), "ip" | "peer") {
                    prop_assert_eq!(mask_value(value, Mask::default()), value.as_ref());
                    prop_assert!(no_host_bits(value), "{value:?} in {body:?}");
                }
            }
        }
    }
}
