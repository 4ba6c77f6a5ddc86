//! A small MaxMind DB writer for tests: an IPv6 tree with 24-bit records,
//! IPv4 networks under `::/96`, records of maps, strings and integers
//! (<https://maxmind.github.io/MaxMind-DB/>). Tests build the databases
//! they look addresses up in, so no GeoLite2 file is needed; the reader
//! under test (`maxminddb`) is the check that the bytes are right.
//!
//! Shared by the `enrich` tests and `weir`'s end-to-end test (`#[path]`).

#![allow(dead_code)]

use std::net::IpAddr;

/// A value of the data section.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A UTF-8 string.
    Str(String),
    /// An unsigned 32-bit integer.
    U32(u32),
    /// A map with string keys, in this order.
    Map(Vec<(String, Value)>),
}

impl Value {
    /// A map from `(key, value)` pairs.
    pub(crate) fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// A GeoIP2-shaped `{"iso_code": code, "names": {"en": …}}`.
    pub(crate) fn place(code: &str) -> Value {
        Value::map([
            ("geoname_id", Value::U32(1)),
            ("iso_code", Value::Str(code.to_owned())),
            (
                "names",
                Value::map([("en", Value::Str(format!("Land {code}")))]),
            ),
        ])
    }
}

/// One child of a tree node.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Child {
    Empty,
    Node(usize),
    Data(usize),
}

/// Builds a database: networks inserted with their records, then
/// [`MmdbWriter::to_bytes`].
#[derive(Debug)]
pub(crate) struct MmdbWriter {
    nodes: Vec<[Child; 2]>,
    /// Each record's offset in `data`.
    records: Vec<usize>,
    data: Vec<u8>,
}

impl Default for MmdbWriter {
    fn default() -> Self {
        MmdbWriter {
            nodes: vec![[Child::Empty; 2]],
            records: Vec::new(),
            data: Vec::new(),
        }
    }
}

impl MmdbWriter {
    /// Maps `network` (`"203.0.113.0/24"`, `"2001:db8::/32"`) to `record`;
    /// a later, more specific network wins inside an earlier one.
    pub(crate) fn insert(&mut self, network: &str, record: &Value) {
        let (address, len) = network.split_once('/').expect("network/len");
        let len: u32 = len.parse().expect("prefix length");
        let (bits, len) = match address.parse::<IpAddr>().expect("address") {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 96 + len),
            IpAddr::V6(v6) => (u128::from(v6), len),
        };
        assert!((1..=128).contains(&len), "prefix length of {network}");
        let offset = self.data.len();
        encode(&mut self.data, record);
        self.records.push(offset);
        let data = Child::Data(self.records.len() - 1);

        let bit = |depth: u32| usize::from((bits >> (127 - depth)) & 1 == 1);
        let mut node = 0;
        for depth in 0..len - 1 {
            let side = bit(depth);
            node = match self.nodes[node][side] {
                Child::Node(next) => next,
                old => {
                    // A shorter network covers this one: split it.
                    self.nodes.push([old; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][side] = Child::Node(next);
                    next
                }
            };
        }
        self.nodes[node][bit(len - 1)] = data;
    }

    /// Maps `network` to a GeoIP2-Country-shaped record with `country`.
    pub(crate) fn country(&mut self, network: &str, code: &str) {
        self.insert(network, &Value::map([("country", Value::place(code))]));
    }

    /// The file's bytes.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let node_count = u32::try_from(self.nodes.len()).expect("few nodes");
        let record = |child: Child| -> u32 {
            match child {
                Child::Empty => node_count,
                Child::Node(n) => u32::try_from(n).expect("few nodes"),
                Child::Data(d) => {
                    node_count + 16 + u32::try_from(self.records[d]).expect("small data")
                }
            }
        };
        let mut out = Vec::new();
        for children in &self.nodes {
            for child in children {
                let value = record(*child);
                assert!(value < 1 << 24, "24-bit records");
                out.extend_from_slice(&value.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = Value::map([
            ("binary_format_major_version", Value::U32(2)),
            ("binary_format_minor_version", Value::U32(0)),
            ("build_epoch", Value::U32(1_700_000_000)),
            ("database_type", Value::Str("Weir-Test-Country".into())),
            (
                "description",
                Value::map([("en", Value::Str("test".into()))]),
            ),
            ("ip_version", Value::U32(6)),
            ("languages", Value::Map(Vec::new())),
            ("node_count", Value::U32(node_count)),
            ("record_size", Value::U32(24)),
        ]);
        encode_metadata(&mut out, &metadata);
        out
    }
}

/// Type numbers of the data section.
const STRING: u8 = 2;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
/// Extended types (stored as type − 7 after a zero type).
const UINT64: u8 = 9;
const ARRAY: u8 = 11;

/// A control byte (and extended type and size bytes) for `kind` and `size`.
fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..=28 => (u8::try_from(size).expect("small"), Vec::new()),
        29..=284 => (29, vec![u8::try_from(size - 29).expect("fits")]),
        285..=65_820 => (
            30,
            u16::try_from(size - 285)
                .expect("fits")
                .to_be_bytes()
                .to_vec(),
        ),
        _ => (
            31,
            u32::try_from(size - 65_821).expect("fits").to_be_bytes()[1..].to_vec(),
        ),
    };
    if kind <= 7 {
        out.push(kind << 5 | size_bits);
    } else {
        out.push(size_bits);
        out.push(kind - 7);
    }
    out.extend_from_slice(&extra);
}

fn encode(out: &mut Vec<u8>, value: &Value) {
    encode_typed(out, value, UINT32);
}

/// Metadata wants `uint16` for versions, `ip_version` and `record_size`,
/// `uint64` for `build_epoch` and an array for `languages`.
fn encode_metadata(out: &mut Vec<u8>, value: &Value) {
    let Value::Map(pairs) = value else {
        unreachable!("metadata is a map")
    };
    control(out, MAP, pairs.len());
    for (key, value) in pairs {
        encode_typed(out, &Value::Str(key.clone()), UINT32);
        match (key.as_str(), value) {
            ("node_count", v) => encode_typed(out, v, UINT32),
            ("build_epoch", v) => encode_typed(out, v, UINT64),
            ("languages", _) => control(out, ARRAY, 0),
            (_, v) => encode_typed(out, v, UINT16),
        }
    }
}

/// Encodes `value`, integers as `int_kind`.
fn encode_typed(out: &mut Vec<u8>, value: &Value, int_kind: u8) {
    match value {
        Value::Str(s) => {
            control(out, STRING, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::U32(n) => {
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            control(out, int_kind, bytes.len() - skip);
            out.extend_from_slice(&bytes[skip..]);
        }
        Value::Map(pairs) => {
            control(out, MAP, pairs.len());
            for (key, value) in pairs {
                encode_typed(out, &Value::Str(key.clone()), int_kind);
                encode_typed(out, value, int_kind);
            }
        }
    }
}
