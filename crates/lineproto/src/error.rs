//! What can be wrong with a line, and where.

use std::fmt;

/// A line that could not be parsed: where it went wrong and why.
///
/// Displays as `line 3, col 17: invalid integer field value "12xi"`, where the
/// line is the 1-based physical line of the input (newlines inside string
/// fields count) and the column the 1-based byte offset in that line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, col {column}: {kind}")]
pub struct LineError {
    /// 1-based physical line number of the error.
    pub line: usize,
    /// 1-based byte column of the error within its physical line.
    pub column: usize,
    /// 1-based physical line number on which the rejected line starts.
    pub first_line: usize,
    /// What was wrong.
    pub kind: ErrorKind,
}

/// Which part of a line a token belongs to; used in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The measurement name.
    Measurement,
    /// A tag key.
    TagKey,
    /// A tag value.
    TagValue,
    /// A field key.
    FieldKey,
    /// A field value.
    FieldValue,
    /// The timestamp.
    Timestamp,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Measurement => "measurement",
            TokenKind::TagKey => "tag key",
            TokenKind::TagValue => "tag value",
            TokenKind::FieldKey => "field key",
            TokenKind::FieldValue => "field value",
            TokenKind::Timestamp => "timestamp",
        })
    }
}

/// Why a line was rejected. Quoted input is cut to 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The line starts with a comma or otherwise has no measurement.
    #[error("missing measurement")]
    MissingMeasurement,
    /// The line ends before its field set.
    #[error(
        "missing fields: expected a space and then field=value after the measurement and tags"
    )]
    MissingFields,
    /// A `,` or the tag set's start is followed by no key.
    #[error("missing tag key")]
    MissingTagKey,
    /// A tag key is not followed by `=`.
    #[error("missing '=' after tag key {0:?}")]
    MissingTagEquals(String),
    /// `key=` with nothing after it in the tag set.
    #[error("missing value for tag {0:?}")]
    MissingTagValue(String),
    /// A bare `=` inside a tag value.
    #[error("unescaped '=' in tag value {0:?}; write it as \\=")]
    UnescapedEqualsInTagValue(String),
    /// A `,` in the field set is followed by no key.
    #[error("missing field key")]
    MissingFieldKey,
    /// A field key is not followed by `=`.
    #[error("missing '=' after field key {0:?}")]
    MissingFieldEquals(String),
    /// `key=` with nothing after it in the field set.
    #[error("missing value for field {0:?}")]
    MissingFieldValue(String),
    /// A token ends in a backslash that escapes nothing.
    #[error("{0} ends in a lone backslash; write a literal backslash as \\\\")]
    LoneBackslash(TokenKind),
    /// A string field value has no closing quote.
    #[error("unterminated string field value: no closing '\"' before the end of the input")]
    UnterminatedString,
    /// A value ending in `i` that is not a decimal integer.
    #[error("invalid integer field value {0:?}")]
    InvalidInteger(String),
    /// A value ending in `i` beyond the range of `i64`.
    #[error("integer field value {0:?} is out of range for a signed 64-bit integer")]
    IntegerOutOfRange(String),
    /// A value ending in `u` that is not a decimal integer.
    #[error("invalid unsigned integer field value {0:?}")]
    InvalidUnsigned(String),
    /// A negative value ending in `u`.
    #[error("unsigned integer field value {0:?} cannot be negative")]
    NegativeUnsigned(String),
    /// A value ending in `u` beyond the range of `u64`.
    #[error("unsigned integer field value {0:?} is out of range for an unsigned 64-bit integer")]
    UnsignedOutOfRange(String),
    /// A value that looks like a number but is not a valid float.
    #[error("invalid float field value {0:?}")]
    InvalidFloat(String),
    /// A float too large for `f64`.
    #[error("float field value {0:?} is out of range for a 64-bit float")]
    FloatOutOfRange(String),
    /// A bare word that is not one of the accepted booleans.
    #[error(
        "invalid field value {0:?}: expected a number, an integer (42i), an unsigned integer (42u), \
         a boolean (t, T, true, True, TRUE, f, F, false, False, FALSE) or a \"quoted string\""
    )]
    InvalidFieldValue(String),
    /// A timestamp that is not a decimal integer.
    #[error("invalid timestamp {0:?}: expected an integer")]
    InvalidTimestamp(String),
    /// A timestamp that does not fit nanoseconds in `i64` once scaled.
    #[error("timestamp {value:?} at precision {precision} is out of range for nanoseconds since the epoch in a signed 64-bit integer")]
    TimestampOutOfRange {
        /// The timestamp as written.
        value: String,
        /// The precision it was scaled from.
        precision: crate::Precision,
    },
    /// Text after the timestamp.
    #[error("unexpected text {0:?} after the timestamp")]
    TrailingText(String),
    /// Text right after a field value that is neither `,`, a space nor the line end.
    #[error(
        "unexpected text {0:?} after a field value; expected ',', a space or the end of the line"
    )]
    TextAfterFieldValue(String),
    /// A token of the line is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(TokenKind),
    /// A token longer than [`crate::ParseOptions::max_token_bytes`].
    #[error("{kind} is {len} bytes long, more than the limit of {limit}")]
    TokenTooLong {
        /// Which token.
        kind: TokenKind,
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A line longer than [`crate::ParseOptions::max_line_bytes`].
    #[error("line is {len} bytes long, more than the limit of {limit}")]
    LineTooLong {
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
}

/// How much of an offending token an error message quotes.
pub(crate) const QUOTE_LIMIT: usize = 64;

/// The offending bytes as text for an error message, cut to [`QUOTE_LIMIT`]
/// bytes (with `…`) and with invalid UTF-8 replaced.
pub(crate) fn quote(bytes: &[u8]) -> String {
    if bytes.len() <= QUOTE_LIMIT {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut s = String::from_utf8_lossy(&bytes[..QUOTE_LIMIT]).into_owned();
    // A cut inside a multi-byte character shows as U+FFFD; drop it.
    if s.ends_with('\u{FFFD}') {
        s.pop();
    }
    s.push('…');
    s
}

/// A [`crate::Line`] that line protocol cannot carry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Measurement, tag key, tag value or field key is empty.
    #[error("{0} is empty; line protocol has no way to write an empty {0}")]
    Empty(TokenKind),
    /// A name or tag value contains a line break.
    #[error("{0} {1:?} contains a line break, which line protocol can only carry inside string field values")]
    Newline(TokenKind, String),
    /// The measurement starts with `#` (a comment) or a tab (skipped as indentation).
    #[error("measurement {0:?} starts with '#' or a tab, which would not read back")]
    MeasurementStart(String),
    /// The line has no field.
    #[error("line has no fields; line protocol needs at least one")]
    NoFields,
    /// A float field is NaN or infinite.
    #[error("float field {0:?} is {1}, which line protocol cannot carry")]
    NonFiniteFloat(String, f64),
    /// The timestamp is one of the reserved extreme values.
    #[error("timestamp {0} is outside the accepted range")]
    TimestampOutOfRange(i64),
}
