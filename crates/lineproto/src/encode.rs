//! Writing a [`Line`] back as line protocol, escaped so that it parses to
//! an equal line.

use crate::error::{quote, EncodeError, TokenKind};
use crate::{FieldValue, Line, MAX_TIMESTAMP_NANOS, MIN_TIMESTAMP_NANOS};

/// Characters escaped in a measurement.
const MEASUREMENT_SPECIALS: &[u8] = b", \\";
/// Characters escaped in tag keys, tag values and field keys.
const KEY_SPECIALS: &[u8] = b",= \\";
/// Characters escaped in string field values.
const STRING_SPECIALS: &[u8] = b"\"\\";

impl Line<'_> {
    /// Appends the line, escaped, and a `\n` to `out`. Timestamps are written
    /// in nanoseconds. On error `out` is left as it was.
    ///
    /// ```
    /// use lineproto::{parse_lines, Line};
    /// let line = Line::new("net stat").with_tag("if", "eth0,1").with_field("msg", "say \"hi\"");
    /// let mut out = Vec::new();
    /// line.encode(&mut out).unwrap();
    /// assert_eq!(out, br#"net\ stat,if=eth0\,1 msg="say \"hi\""
    /// "#);
    /// assert_eq!(parse_lines(&out).next().unwrap().unwrap(), line);
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mark = out.len();
        let result = self.encode_without_rollback(out);
        if result.is_err() {
            out.truncate(mark);
        }
        result
    }

    /// The line as a `String`, with its trailing `\n`.
    pub fn encode_to_string(&self) -> Result<String, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        // Escaping inserts ASCII backslashes before ASCII characters only, so
        // the bytes stay valid UTF-8 and the fallback never runs.
        Ok(String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn encode_without_rollback(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let m = self.measurement.as_ref();
        if m.starts_with(['#', '\t']) {
            return Err(EncodeError::MeasurementStart(quote(m.as_bytes())));
        }
        name(out, m, TokenKind::Measurement, MEASUREMENT_SPECIALS)?;
        for (key, value) in &self.tags {
            out.push(b',');
            name(out, key, TokenKind::TagKey, KEY_SPECIALS)?;
            out.push(b'=');
            name(out, value, TokenKind::TagValue, KEY_SPECIALS)?;
        }
        if self.fields.is_empty() {
            return Err(EncodeError::NoFields);
        }
        for (n, (key, value)) in self.fields.iter().enumerate() {
            out.push(if n == 0 { b' ' } else { b',' });
            name(out, key, TokenKind::FieldKey, KEY_SPECIALS)?;
            out.push(b'=');
            field_value(out, key, value)?;
        }
        if let Some(t) = self.timestamp {
            if !(MIN_TIMESTAMP_NANOS..=MAX_TIMESTAMP_NANOS).contains(&t) {
                return Err(EncodeError::TimestampOutOfRange(t));
            }
            out.push(b' ');
            out.extend_from_slice(itoa::Buffer::new().format(t).as_bytes());
        }
        out.push(b'\n');
        Ok(())
    }
}

/// Writes a measurement, tag key, tag value or field key.
fn name(out: &mut Vec<u8>, s: &str, kind: TokenKind, specials: &[u8]) -> Result<(), EncodeError> {
    if s.is_empty() {
        return Err(EncodeError::Empty(kind));
    }
    if s.contains('\n') {
        return Err(EncodeError::Newline(kind, quote(s.as_bytes())));
    }
    escape(out, s, specials);
    Ok(())
}

fn field_value(out: &mut Vec<u8>, key: &str, value: &FieldValue<'_>) -> Result<(), EncodeError> {
    match value {
        FieldValue::Float(v) => {
            if !v.is_finite() {
                return Err(EncodeError::NonFiniteFloat(key.to_owned(), *v));
            }
            // Shortest text that reads back as the same f64.
            out.extend_from_slice(ryu::Buffer::new().format_finite(*v).as_bytes());
        }
        FieldValue::Integer(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
            out.push(b'i');
        }
        FieldValue::UInteger(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes());
            out.push(b'u');
        }
        FieldValue::Boolean(v) => out.extend_from_slice(if *v { b"true" } else { b"false" }),
        FieldValue::String(s) => {
            out.push(b'"');
            escape(out, s, STRING_SPECIALS);
            out.push(b'"');
        }
    }
    Ok(())
}

/// Appends `s` with a backslash before every byte in `specials`.
fn escape(out: &mut Vec<u8>, s: &str, specials: &[u8]) {
    let bytes = s.as_bytes();
    let mut copied = 0;
    for (i, c) in bytes.iter().enumerate() {
        if specials.contains(c) {
            out.extend_from_slice(&bytes[copied..i]);
            out.push(b'\\');
            copied = i;
        }
    }
    out.extend_from_slice(&bytes[copied..]);
}
