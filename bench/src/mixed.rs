//! A deterministic corpus that exercises all of line protocol.
//!
//! Where the [TSBS corpus](crate::tsbs) is one regular shape repeated,
//! [`mixed_corpus`] writes what a weir server sees from a varied fleet:
//! active-probe results (`probe_http`), rate-monitor reports (`ratemon`),
//! Telegraf's `net` and `net_response`, connection records and log-like
//! events. Together they use every part of the format:
//!
//! * escapes `\,` `\ ` `\=` `\\` in tag keys, tag values and field keys, and
//!   `\,` `\ ` `\\` in measurements; a bare `=` inside a measurement;
//!   UTF-8 names and values;
//! * string fields with `\"` and `\\` escapes, commas, `=`, spaces, raw line
//!   breaks inside the quotes, and the empty string;
//! * floats as plain decimals, negative, with exponents (`1.5e-3`,
//!   `-2E+06`, `2.50E-03`) and as bare integers (`44`); integers (`12i`)
//!   including negative ones and `i64::MIN`/`i64::MAX`; unsigned integers
//!   (`7u`) up to `u64::MAX`; booleans in all ten spellings;
//! * lines with and without a timestamp, and now and then repeated spaces
//!   between the sections.
//!
//! Every line is accepted by both weir's `lineproto` and the
//! `influxdb-line-protocol` crate (2.0.0), which the benchmarks compare it
//! with, and both read the same values from it. Left out because the two
//! parsers treat them differently (or the peer rejects them):
//!
//! * tokens whose unescaped text ends in a backslash (a tag value `C:\`,
//!   written `C:\\`): `influxdb-line-protocol` rejects them;
//! * trailing spaces on a line without a timestamp: rejected by
//!   `influxdb-line-protocol`;
//! * `\=` in a measurement and a bare `=` in a tag value: not escapes
//!   (respectively not allowed) in `lineproto`, while the peer unescapes
//!   (respectively accepts) them;
//! * tabs, carriage returns, NUL, `NaN`/`inf`, floats like `.5` or `+1`,
//!   comment and blank lines: not what this corpus measures, or not
//!   accepted by one of the two.
//!
//! ```
//! let corpus = weir_bench::mixed::mixed_corpus(1000, 1);
//! let parsed = lineproto::parse_lines(&corpus).filter(Result::is_ok).count();
//! assert_eq!(parsed, 1000);
//! ```

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Writes `lines` points of mixed line protocol, newline-terminated, and
/// returns them; the same `lines` and `seed` always give the same bytes.
///
/// Every point is one item of `lineproto::parse_lines`, although some
/// points span several physical lines (raw line breaks inside string
/// fields). The corpus has no blank or comment lines.
pub fn mixed_corpus(lines: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.saturating_mul(180));
    let mut gen = Mixed {
        rng: SmallRng::seed_from_u64(seed),
        now_ns: 1_700_000_000_000_000_000,
    };
    for _ in 0..lines {
        gen.point(&mut out);
    }
    out
}

const VANTAGE_POINTS: [&str; 8] = [
    "fra1",
    "ams3",
    "nyc1",
    "sgp1",
    "São Paulo",
    "Zürich-2",
    "lab rack=3",
    "home, dsl",
];
const TARGETS: [&str; 6] = [
    "example.org",
    "cdn.example.net",
    "files.example.com:8443",
    "[2001:db8::1]:443",
    "mirror, eu",
    "onion=v3 site",
];
const TRANSPORTS: [&str; 4] = ["tcp", "tor", "socks5", "quic"];
const SIZES: [(&str, u64); 3] = [("50KiB", 51_200), ("1MiB", 1_048_576), ("5MiB", 5_242_880)];
const ERRORS: [(&str, &str); 10] = [
    ("DNS", "dns"),
    ("PROXY_CONNECT", "connect"),
    ("SOCKS_REPLY_4", "socks"),
    ("CONNECT", "connect"),
    ("TLS", "tls"),
    ("HTTP_503", "response"),
    ("RESET", "body"),
    ("STALLOUT", "body"),
    ("TIMEOUT", "body"),
    ("SHORT", "body"),
];
const HOSTS: [&str; 6] = [
    "edge-fra-01",
    "edge-ams-02",
    "core-nyc-01",
    "relay-sgp-07",
    "db 1",
    "ws\\01",
];
const INTERFACES: [&str; 6] = ["eth0", "ens3", "wg0", "bond0.100", "Ethernet 2", "en=p1s0"];
const MESSAGES: [&str; 14] = [
    "connection reset by peer",
    "HTTP \"503 Service Unavailable\" from upstream",
    "spool dir C:\\weir\\spool is full",
    "trace:\n  dns ok\n  tcp ok\n  tls handshake failed",
    "key=value, other=thing",
    "path ends with a backslash \\",
    "quote at the end \"",
    "\\\"already escaped\\\" twice",
    "größe überschritten — 限界",
    "",
    "timeout after 270 s (no byte for 60 s)",
    "two\n\nblank lines inside",
    "a,b c=d \"e\" \\f",
    "ok",
];
const MEASUREMENTS_ESCAPED: [&str; 6] = [
    "weir meter",
    "conn,record",
    "path\\stats",
    "probe=dns",
    "conn=v2 record",
    "мониторинг",
];
const ODD_TAG_KEYS: [&str; 5] = ["peer id", "k=v", "label,x", "proto\\ver", "ключ"];
const ODD_TAG_VALUES: [&str; 8] = [
    "/ip4/198.51.100.7/tcp/4001",
    "12D3KooWGz",
    "a=b",
    "x, y",
    "C:\\weir\\spool",
    "with space",
    "\\leading",
    "mixed =, \\ all",
];
const ODD_FIELD_KEYS: [&str; 4] = ["bytes in", "bytes,out", "rate=avg", "dir\\name"];
const LEVELS: [&str; 3] = ["info", "warn", "error"];
const TRUE: [&str; 5] = ["t", "T", "true", "True", "TRUE"];
const FALSE: [&str; 5] = ["f", "F", "false", "False", "FALSE"];

/// The generator's state: its random source and clock.
struct Mixed {
    rng: SmallRng,
    now_ns: i64,
}

/// One line being written: tracks whether the next field needs a comma.
struct LineWriter<'o> {
    out: &'o mut Vec<u8>,
    fields: usize,
}

impl Mixed {
    fn point(&mut self, out: &mut Vec<u8>) {
        // About one point per 10 ms, with jitter, in increasing order.
        self.now_ns += self.rng.gen_range(1..20_000_000);
        let line = LineWriter { out, fields: 0 };
        match self.rng.gen_range(0..100) {
            0..=29 => self.probe_http(line),
            30..=49 => self.ratemon(line),
            50..=64 => self.net(line),
            65..=74 => self.net_response(line),
            75..=87 => self.connection(line),
            _ => self.event(line),
        }
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.rng.gen_range(0..choices.len())]
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.gen_range(0..100) < percent
    }

    fn boolean(&mut self, value: bool) -> &'static str {
        let spellings = if value { &TRUE } else { &FALSE };
        spellings[self.rng.gen_range(0..spellings.len())]
    }

    /// Writes `value` in one of the float spellings line protocol allows.
    fn float(&mut self, line: &mut LineWriter<'_>, key: &str, value: f64) {
        line.field_key(key);
        let out = &mut *line.out;
        match self.rng.gen_range(0..6) {
            0 => push_fmt(out, format_args!("{value}")),
            1 => push_fmt(out, format_args!("{value:.3}")),
            2 => push_fmt(out, format_args!("{value:e}")),
            3 => push_fmt(out, format_args!("{value:E}")),
            4 => {
                // The C `%.2E` form: `-2.00E+06`, `1.50E-03`.
                let exponent = if value == 0.0 {
                    0
                } else {
                    value.abs().log10().floor() as i32
                };
                let mantissa = value / 10f64.powi(exponent);
                let sign = if exponent < 0 { '-' } else { '+' };
                let magnitude = exponent.unsigned_abs();
                push_fmt(out, format_args!("{mantissa:.2}E{sign}{magnitude:02}"));
            }
            _ => push_fmt(out, format_args!("{}", value.round() as i64)),
        }
    }

    /// Ends the line with a timestamp most of the time.
    fn finish(&mut self, line: LineWriter<'_>) {
        if self.chance(85) {
            let separator: &[u8] = if self.chance(3) { b"  " } else { b" " };
            line.out.extend_from_slice(separator);
            line.out
                .extend_from_slice(itoa::Buffer::new().format(self.now_ns).as_bytes());
        }
        line.out.push(b'\n');
    }

    fn probe_http(&mut self, mut line: LineWriter<'_>) {
        line.measurement("probe_http");
        let src = self.pick(&VANTAGE_POINTS);
        line.tag("src", src);
        let target = self.pick(&TARGETS);
        line.tag("target", target);
        let transport = self.pick(&TRANSPORTS);
        line.tag("transport", transport);
        let (size, bytes) = SIZES[self.rng.gen_range(0..SIZES.len())];
        line.tag("size", size);
        let failed = self.chance(15);
        if failed {
            let (error, phase) = ERRORS[self.rng.gen_range(0..ERRORS.len())];
            line.tag("error", error);
            line.tag("phase", phase);
        }
        line.space();

        let dns = self.rng.gen_range(200..40_000i64);
        let connect = dns + self.rng.gen_range(1_000..300_000);
        if failed {
            let received = if self.chance(50) {
                self.rng.gen_range(0..bytes)
            } else {
                0
            };
            line.uint("bytes_received", received);
            line.int("elapsed_us", connect + self.rng.gen_range(0..270_000_000));
            let ok = self.boolean(false);
            line.raw("ok", ok);
            let message = self.pick(&MESSAGES);
            line.string("error_msg", message);
        } else {
            let tls = connect + self.rng.gen_range(2_000..400_000);
            let request = tls + self.rng.gen_range(10..500);
            let ttfb = request + self.rng.gen_range(5_000..900_000);
            let ttlb = ttfb + self.rng.gen_range(10_000..60_000_000);
            line.int("dns_us", dns);
            line.int("connect_us", connect);
            line.int("tls_us", tls);
            line.int("request_us", request);
            line.int("ttfb_us", ttfb);
            line.int("server_ttfb_us", ttfb - request);
            line.int("ttlb_us", ttlb);
            line.uint("bytes_received", bytes);
            let mbps = bytes as f64 * 8.0 / (ttlb - ttfb) as f64;
            self.float(&mut line, "dl_mbps", mbps);
            let ok = self.boolean(true);
            line.raw("ok", ok);
            if self.chance(20) {
                line.string("status", "200 OK");
            }
        }
        self.finish(line);
    }

    fn ratemon(&mut self, mut line: LineWriter<'_>) {
        line.measurement("ratemon");
        let interface = self.pick(&INTERFACES);
        line.tag("interface", interface);
        let host = self.pick(&HOSTS);
        line.tag("host", host);
        line.space();

        let linerate = [100.0, 1000.0, 10_000.0][self.rng.gen_range(0..3)];
        self.float(&mut line, "linerate", linerate);
        self.float(&mut line, "alarm_trigger_value", 95.0);
        self.float(&mut line, "cutoff", 0.99);
        for (dir, scale) in [("tx", 1.0), ("rx", 0.3)] {
            let mean = self.rng.gen_range(1e3..linerate * 125_000.0) * scale;
            let var = mean * mean * self.rng.gen_range(0.001..2.0);
            let sigma2 = (1.0 + var / (mean * mean)).ln();
            let mu = mean.ln() - sigma2 / 2.0;
            let risk = self.rng.gen_range(0.0..100.0) * self.rng.gen_range(0.0..1.0);
            self.float(&mut line, dir, mean);
            self.float(&mut line, &format!("var_{dir}"), var);
            self.float(&mut line, &format!("mu_{dir}"), mu);
            self.float(&mut line, &format!("sigma2_{dir}"), sigma2);
            self.float(&mut line, &format!("overload_risk_{dir}"), risk);
            let alarm = self.boolean(risk > 95.0);
            line.raw(&format!("alarm_{dir}"), alarm);
        }
        line.int("sample_rate", 1000);
        line.int("estimation_interval", 10);
        line.int("meter_interval", 30);
        let achieved = 1000.0 - self.rng.gen_range(0.0..3.0);
        self.float(&mut line, "achieved_sample_rate", achieved);
        let jitter = self.rng.gen_range(-50.0..50.0);
        self.float(&mut line, "jitter_us", jitter);
        self.finish(line);
    }

    fn net(&mut self, mut line: LineWriter<'_>) {
        line.measurement("net");
        let host = self.pick(&HOSTS);
        line.tag("host", host);
        let interface = self.pick(&INTERFACES);
        line.tag("interface", interface);
        line.space();
        let sent = self.rng.gen_range(0..u64::MAX / 4);
        line.uint("bytes_sent", sent);
        let recv = self.rng.gen_range(0..u64::MAX / 4);
        line.uint("bytes_recv", recv);
        line.uint("packets_sent", sent / 900);
        line.uint("packets_recv", recv / 1100);
        for key in ["err_in", "err_out", "drop_in", "drop_out"] {
            let n = if self.chance(80) {
                0
            } else {
                self.rng.gen_range(1..10_000)
            };
            line.uint(key, n);
        }
        if self.chance(5) {
            line.uint("counter_wrapped", u64::MAX);
        }
        self.finish(line);
    }

    fn net_response(&mut self, mut line: LineWriter<'_>) {
        line.measurement("net_response");
        let (protocol, port) =
            [("tcp", "443"), ("tcp", "22"), ("udp", "53")][self.rng.gen_range(0..3)];
        line.tag("protocol", protocol);
        let server = self.pick(&TARGETS);
        line.tag("server", server);
        line.tag("port", port);
        let (result, code) = match self.rng.gen_range(0..10) {
            0 => ("timeout", 2),
            1 => ("connection_failed", 3),
            _ => ("success", 0),
        };
        line.tag("result", result);
        line.space();
        if code == 0 {
            let seconds = self.rng.gen_range(0.0001..0.4);
            self.float(&mut line, "response_time", seconds);
        }
        line.int("result_code", code);
        line.string("result_type", result);
        self.finish(line);
    }

    /// A connection record with escapes in every name.
    fn connection(&mut self, mut line: LineWriter<'_>) {
        let measurement = self.pick(&MEASUREMENTS_ESCAPED);
        line.measurement(measurement);
        // One to three distinct tag keys: consecutive ones from a random start.
        let first = self.rng.gen_range(0..ODD_TAG_KEYS.len());
        for i in 0..self.rng.gen_range(1..4) {
            let key = ODD_TAG_KEYS[(first + i) % ODD_TAG_KEYS.len()];
            let value = self.pick(&ODD_TAG_VALUES);
            line.tag(key, value);
        }
        line.space();
        let key = self.pick(&ODD_FIELD_KEYS);
        let bytes = self.rng.gen_range(0..10_000_000_000u64);
        line.uint(key, bytes);
        line.uint("bytes_out", self.rng.gen_range(0..10_000_000_000u64));
        let dial = self.rng.gen_range(100..3_000_000i64);
        line.int("dial_us", dial);
        let offset = match self.rng.gen_range(0..20) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => 0,
            _ => self.rng.gen_range(-5_000_000..5_000_000),
        };
        line.int("clock_offset_us", offset);
        for key in ["min_rate", "max_rate", "avg_rate"] {
            let rate = self.rng.gen_range(-1e-3..1e9);
            self.float(&mut line, key, rate);
        }
        if self.chance(40) {
            let message = self.pick(&MESSAGES);
            line.string("first_error", message);
        }
        let done = self.chance(50);
        let done = self.boolean(done);
        line.raw("done", done);
        self.finish(line);
    }

    /// A log-like event: mostly one long string.
    fn event(&mut self, mut line: LineWriter<'_>) {
        line.measurement("events");
        let host = self.pick(&HOSTS);
        line.tag("host", host);
        let level = self.pick(&LEVELS);
        line.tag("level", level);
        if self.chance(3) {
            line.out.push(b' ');
        }
        line.space();
        let mut message = String::new();
        for _ in 0..self.rng.gen_range(1..4) {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(self.pick(&MESSAGES));
        }
        line.string("message", &message);
        line.int("code", self.rng.gen_range(-1000..1000));
        if self.chance(10) {
            line.string("detail", "");
        }
        self.finish(line);
    }
}

impl LineWriter<'_> {
    /// Writes the measurement, escaping `,` ` ` and `\`; `=` stays bare.
    fn measurement(&mut self, name: &str) {
        escape(self.out, name, b", \\");
    }

    /// Writes `,key=value`, escaping `,` ` ` `=` and `\` in both.
    fn tag(&mut self, key: &str, value: &str) {
        self.out.push(b',');
        escape(self.out, key, b", =\\");
        self.out.push(b'=');
        escape(self.out, value, b", =\\");
    }

    /// The space between the series key and the fields.
    fn space(&mut self) {
        self.out.push(b' ');
    }

    /// Writes the separator before a field and its escaped key with `=`.
    fn field_key(&mut self, key: &str) {
        if self.fields > 0 {
            self.out.push(b',');
        }
        self.fields += 1;
        escape(self.out, key, b", =\\");
        self.out.push(b'=');
    }

    fn int(&mut self, key: &str, value: i64) {
        self.field_key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.out.push(b'i');
    }

    fn uint(&mut self, key: &str, value: u64) {
        self.field_key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.out.push(b'u');
    }

    /// Writes a field whose value is already line protocol (a boolean).
    fn raw(&mut self, key: &str, value: &str) {
        self.field_key(key);
        self.out.extend_from_slice(value.as_bytes());
    }

    /// Writes a quoted string field, escaping `"` and `\`.
    fn string(&mut self, key: &str, value: &str) {
        self.field_key(key);
        self.out.push(b'"');
        escape(self.out, value, b"\"\\");
        self.out.push(b'"');
    }
}

/// Appends `text`, putting a backslash before every byte in `special`.
fn escape(out: &mut Vec<u8>, text: &str, special: &[u8]) {
    for &b in text.as_bytes() {
        if special.contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
}

fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    std::io::Write::write_fmt(out, args).expect("writing to a Vec<u8> cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use influxdb_line_protocol as influx;
    use lineproto::FieldValue;

    const LINES: usize = 5_000;

    #[test]
    fn same_seed_same_bytes_different_seed_different_bytes() {
        assert_eq!(mixed_corpus(500, 7), mixed_corpus(500, 7));
        assert_ne!(mixed_corpus(500, 7), mixed_corpus(500, 8));
        assert!(mixed_corpus(0, 7).is_empty());
    }

    #[test]
    fn is_valid_utf8_and_ends_with_a_newline() {
        let corpus = mixed_corpus(LINES, 1);
        let text = std::str::from_utf8(&corpus).unwrap();
        assert!(text.ends_with('\n'));
        assert!(!text.contains('\r') && !text.contains('\t'));
    }

    #[test]
    fn covers_every_feature() {
        let corpus = mixed_corpus(LINES, 1);
        let text = std::str::from_utf8(&corpus).unwrap();
        for needle in [
            "\\,",
            "\\ ",
            "\\=",
            "\\\\",
            "\\\"",
            "probe=dns",
            "e-",
            "E+",
            "E-",
            "i,",
            "u,",
        ] {
            assert!(text.contains(needle), "no {needle:?} in the corpus");
        }
        for spelling in TRUE.iter().chain(&FALSE) {
            assert!(
                text.contains(&format!("={spelling},"))
                    || text.contains(&format!("={spelling} "))
                    || text.contains(&format!("={spelling}\n")),
                "no boolean spelled {spelling}"
            );
        }
        let lines = lineproto::parse_lines(&corpus).map(Result::unwrap);
        let (mut with_ts, mut without_ts, mut raw_newline, mut negative_int, mut bare_int) =
            (0, 0, 0, 0, 0);
        for line in lines {
            if line.timestamp.is_some() {
                with_ts += 1;
            } else {
                without_ts += 1;
            }
            for (_, value) in &line.fields {
                match value {
                    FieldValue::String(s) if s.contains('\n') => raw_newline += 1,
                    FieldValue::Integer(i) if *i < 0 => negative_int += 1,
                    FieldValue::Float(f) if f.fract() == 0.0 => bare_int += 1,
                    _ => {}
                }
            }
        }
        for (what, n) in [
            ("with timestamp", with_ts),
            ("without timestamp", without_ts),
            ("raw newline in a string", raw_newline),
            ("negative integer", negative_int),
            ("integral float", bare_int),
        ] {
            assert!(n > 10, "only {n} of {what}");
        }
    }

    #[test]
    fn parses_fully_with_lineproto() {
        let corpus = mixed_corpus(LINES, 1);
        let mut n = 0;
        for (i, line) in lineproto::parse_lines(&corpus).enumerate() {
            if let Err(e) = line {
                panic!("point {i}: {e}");
            }
            n += 1;
        }
        assert_eq!(n, LINES);
    }

    #[test]
    fn parses_fully_with_influxdb_line_protocol() {
        let corpus = mixed_corpus(LINES, 1);
        let text = std::str::from_utf8(&corpus).unwrap();
        let mut n = 0;
        for (i, line) in influx::parse_lines(text).enumerate() {
            if let Err(e) = line {
                panic!("point {i}: {e}");
            }
            n += 1;
        }
        assert_eq!(n, LINES);
    }

    /// Both parsers read the same measurement, tags, fields and timestamp
    /// from every point.
    #[test]
    fn both_parsers_agree() {
        let corpus = mixed_corpus(LINES, 2);
        let text = std::str::from_utf8(&corpus).unwrap();
        let ours = lineproto::parse_lines(&corpus).map(Result::unwrap);
        let theirs = influx::parse_lines(text).map(Result::unwrap);
        let mut n = 0;
        for (i, (a, b)) in ours.zip(theirs).enumerate() {
            assert_eq!(a.measurement, b.series.measurement.as_str(), "point {i}");
            let b_tags: Vec<(&str, &str)> = b
                .series
                .tag_set
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let a_tags: Vec<(&str, &str)> = a
                .tags
                .iter()
                .map(|(k, v)| (k.as_ref(), v.as_ref()))
                .collect();
            assert_eq!(a_tags, b_tags, "point {i}");
            assert_eq!(a.fields.len(), b.field_set.len(), "point {i}");
            for ((ak, av), (bk, bv)) in a.fields.iter().zip(&b.field_set) {
                assert_eq!(ak, bk.as_str(), "point {i}");
                let same = match (av, bv) {
                    (FieldValue::Float(x), influx::FieldValue::F64(y)) => {
                        x.to_bits() == y.to_bits()
                    }
                    (FieldValue::Integer(x), influx::FieldValue::I64(y)) => x == y,
                    (FieldValue::UInteger(x), influx::FieldValue::U64(y)) => x == y,
                    (FieldValue::Boolean(x), influx::FieldValue::Boolean(y)) => x == y,
                    (FieldValue::String(x), influx::FieldValue::String(y)) => x == y.as_str(),
                    _ => false,
                };
                assert!(same, "point {i}, field {ak}: {av:?} vs {bv:?}");
            }
            assert_eq!(a.timestamp, b.timestamp, "point {i}");
            n += 1;
        }
        assert_eq!(n, LINES);
    }

    /// What `influxdb-line-protocol` 2.0.0 does not accept, so the corpus
    /// leaves it out (see the module documentation).
    #[test]
    fn influxdb_line_protocol_exclusions() {
        let rejects = |s: &str| influx::parse_lines(s).next().unwrap().is_err();
        assert!(
            rejects(r"m,path=C:\\ v=1 1"),
            "unescaped tag value ends in a backslash"
        );
        assert!(
            rejects(r"m,k\\=v v=1 1"),
            "unescaped tag key ends in a backslash"
        );
        assert!(
            rejects(r"m f\\=1 1"),
            "unescaped field key ends in a backslash"
        );
        assert!(rejects("m v=1 "), "trailing space without a timestamp");
        assert!(rejects("m v=.5"), "float without integral digits");
        assert!(rejects("m v=+1"), "float with a plus sign");
        assert!(rejects("m v=NaN"), "NaN");
        // What it accepts that the corpus relies on.
        let accepts = |s: &str| influx::parse_lines(s).all(|l| l.is_ok());
        assert!(accepts("m s=\"a\nb\" 1"), "raw newline in a string");
        assert!(accepts("a=b v=1"), "bare = in a measurement");
        assert!(
            accepts("m v=-2E+06,w=1.50E-03,x=2e6,y=44"),
            "float spellings"
        );
        assert!(accepts("m v=18446744073709551615u,w=-9223372036854775808i"));
        assert!(accepts("m  v=1  1"), "two spaces between sections");
    }
}
