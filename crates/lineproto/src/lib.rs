//! Zero-copy parser and encoder for the InfluxDB line protocol, weir's wire format.
//!
//! A batch of line protocol is parsed by an iterator that yields one
//! `Result<Line, LineError>` per line, so a bad line is reported with its line
//! number, column and reason while the valid rest of the batch is kept:
//!
//! ```
//! use lineproto::{parse_lines, FieldValue};
//!
//! let batch = b"cpu,host=a usage=0.5,cores=8i 1700000000000000000\n\
//!               cpu,host=b usage=oops\n\
//!               cpu,host=c usage=0.7";
//! let (good, bad): (Vec<_>, Vec<_>) = parse_lines(batch).partition(Result::is_ok);
//! assert_eq!(good.len(), 2);
//! let err = bad[0].as_ref().unwrap_err();
//! assert_eq!(err.to_string(), r#"line 2, col 18: invalid field value "oops": expected a number, an integer (42i), an unsigned integer (42u), a boolean (t, T, true, True, TRUE, f, F, false, False, FALSE) or a "quoted string""#);
//!
//! let first = good[0].as_ref().unwrap();
//! assert_eq!(first.tag("host"), Some("a"));
//! assert_eq!(first.field("cores"), Some(&FieldValue::Integer(8)));
//! ```
//!
//! Tokens borrow from the input (`Cow::Borrowed`) unless they contain escape
//! sequences. [`ParseOptions`] sets the timestamp [`Precision`] and the size
//! limits for lines and tokens. [`Line::encode`] writes a line back with
//! every character escaped that needs it, so `parse(encode(line)) == line`.
//!
//! # The format
//!
//! `measurement[,tag=value…] field=value[,field=value…] [timestamp]`
//!
//! * Escapes: `\,` `\ ` and `\\` in measurements; `\,` `\ ` `\=` and `\\` in
//!   tag keys, tag values and field keys. Any other backslash stays as it is;
//!   a backslash at the end of a line is an error. A bare `=` is allowed in a
//!   measurement but not in a tag value.
//! * Field values: floats (`1`, `-1.5`, `2e-3`), integers (`1i`), unsigned
//!   integers (`1u`), booleans (`t` `T` `true` `True` `TRUE` and the same for
//!   false) and double-quoted strings, in which only `\"` and `\\` are escapes
//!   and raw line breaks belong to the string.
//! * The timestamp is optional and may be negative; it is scaled from the
//!   batch's precision to nanoseconds with overflow checks.
//! * Blank lines, lines starting with `#`, CRLF line ends, indentation and
//!   repeated or trailing spaces are accepted.

mod encode;
mod error;
mod line;
mod number;
mod parse;
mod precision;

pub use error::{EncodeError, ErrorKind, LineError, TokenKind};
pub use line::{FieldValue, Line};
pub use parse::Lines;
pub use precision::{Precision, UnknownPrecision, MAX_TIMESTAMP_NANOS, MIN_TIMESTAMP_NANOS};

/// How to parse a batch: timestamp precision and size limits.
///
/// ```
/// use lineproto::{ParseOptions, Precision};
/// let opts = ParseOptions { precision: Precision::Seconds, ..ParseOptions::default() };
/// let line = opts.parse(b"m v=1 1700000000").next().unwrap().unwrap();
/// assert_eq!(line.timestamp, Some(1_700_000_000_000_000_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// The unit of the batch's timestamps.
    pub precision: Precision,
    /// The longest line accepted, in bytes, line break excluded.
    pub max_line_bytes: usize,
    /// The longest single token accepted (a name, tag value, field value or
    /// timestamp), in bytes as written.
    pub max_token_bytes: usize,
}

impl ParseOptions {
    /// Default [`ParseOptions::max_line_bytes`]: 1 MiB.
    pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
    /// Default [`ParseOptions::max_token_bytes`]: 64 KiB, InfluxDB's limit
    /// for keys and string values.
    pub const DEFAULT_MAX_TOKEN_BYTES: usize = 64 << 10;

    /// Parses `input`, one item per line that is not blank or a comment.
    pub fn parse<'a>(&self, input: &'a [u8]) -> Lines<'a> {
        Lines::new(input, *self)
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            precision: Precision::Nanoseconds,
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            max_token_bytes: Self::DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

/// Parses `input` with nanosecond timestamps and the default limits.
pub fn parse_lines(input: &[u8]) -> Lines<'_> {
    ParseOptions::default().parse(input)
}
