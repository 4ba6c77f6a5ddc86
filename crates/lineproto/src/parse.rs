//! The line iterator: finds each line of a batch and parses it in one pass.
//!
//! The batch is checked for UTF-8 once up front; then the parser walks each
//! line once, with a class table deciding where tokens stop. Only when a
//! line is rejected does a second, structural scan
//! ([`Lines::end_of_bad_line`]) find where that line ends so parsing resumes
//! at the next one.

use std::borrow::Cow;
use std::ops::Range;

use memchr::{memchr, memchr2, memchr_iter, memrchr};

use crate::error::{quote, ErrorKind, LineError, TokenKind};
use crate::{number, FieldValue, Line, ParseOptions};

/// Bytes that end a measurement (or start an escape in it).
const STOP_MEASUREMENT: u8 = 1;
/// Bytes that end a tag key, tag value or field key (or start an escape).
const STOP_KEY: u8 = 2;
/// Bytes that end an unquoted field value or a timestamp.
const STOP_VALUE: u8 = 4;

/// For each byte, the set of token kinds it stops.
static STOPS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b',' as usize] = STOP_MEASUREMENT | STOP_KEY | STOP_VALUE;
    t[b' ' as usize] = STOP_MEASUREMENT | STOP_KEY | STOP_VALUE;
    t[b'\n' as usize] = STOP_MEASUREMENT | STOP_KEY | STOP_VALUE;
    t[b'\\' as usize] = STOP_MEASUREMENT | STOP_KEY;
    t[b'=' as usize] = STOP_KEY;
    t[b'\r' as usize] = STOP_VALUE;
    t
};

/// Characters a backslash escapes in a measurement.
const MEASUREMENT_ESCAPES: &[u8] = b", \\";
/// Characters a backslash escapes in tag keys, tag values and field keys.
const KEY_ESCAPES: &[u8] = b",= \\";
/// Characters a backslash escapes in string field values.
const STRING_ESCAPES: &[u8] = b"\"\\";

/// A rejection inside the parser: the absolute byte offset and the reason.
#[derive(Debug)]
struct Fail {
    pos: usize,
    kind: ErrorKind,
}

fn fail<T>(pos: usize, kind: ErrorKind) -> Result<T, Fail> {
    Err(Fail { pos, kind })
}

/// An iterator over the lines of a batch, yielding one
/// `Result<Line, LineError>` per line that is neither blank nor a comment.
///
/// Created by [`crate::parse_lines`] or [`ParseOptions::parse`]. A rejected
/// line never stops the iteration: the next item is the next line.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    input: &'a [u8],
    /// The longest prefix of `input` that is valid UTF-8; tokens inside it
    /// need no further validation.
    valid: &'a str,
    opts: ParseOptions,
    /// Offset of the next unread byte.
    pos: usize,
    /// 1-based physical line number at `pos`.
    line_no: usize,
    /// 1-based physical line on which the last returned item starts.
    item_line: usize,
    /// Byte range of the last returned item, its line break included.
    item_span: Range<usize>,
    /// Line breaks inside string values of the line being parsed.
    string_newlines: usize,
    /// Tag and field counts of the previous line, to size the next line's
    /// vectors with one allocation each.
    tags_hint: usize,
    fields_hint: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(input: &'a [u8], opts: ParseOptions) -> Self {
        let valid = match std::str::from_utf8(input) {
            Ok(s) => s,
            // `valid_up_to` is a character boundary, so this cannot fail.
            Err(e) => std::str::from_utf8(&input[..e.valid_up_to()]).unwrap_or_default(),
        };
        Lines {
            input,
            valid,
            opts,
            pos: 0,
            line_no: 1,
            item_line: 0,
            item_span: 0..0,
            string_newlines: 0,
            tags_hint: 0,
            fields_hint: 1,
        }
    }

    /// The 1-based physical line on which the item last returned by `next`
    /// starts (0 before the first), so callers can name the line when they
    /// reject a parsed line for reasons of their own.
    ///
    /// ```
    /// let mut lines = lineproto::parse_lines(b"# header\nm a=1\n\nm b=2");
    /// lines.next();
    /// assert_eq!(lines.line_number(), 2);
    /// lines.next();
    /// assert_eq!(lines.line_number(), 4);
    /// ```
    pub fn line_number(&self) -> usize {
        self.item_line
    }

    /// The bytes of the item last returned by `next` (empty before the
    /// first): from the start of its first physical line, indentation
    /// included, to the start of the next line, its line break included.
    /// The blank and comment lines skipped before it lie between the
    /// previous item's span and this one, so a caller that rewrites some
    /// lines can copy everything else as it was.
    ///
    /// ```
    /// let input = b"m a=1\n# note\n  m b=2\r\nm c=oops";
    /// let mut lines = lineproto::parse_lines(input);
    /// lines.next();
    /// assert_eq!(&input[lines.span()], b"m a=1\n");
    /// lines.next();
    /// assert_eq!(&input[lines.span()], b"  m b=2\r\n");
    /// assert!(lines.next().unwrap().is_err());
    /// assert_eq!(&input[lines.span()], b"m c=oops");
    /// ```
    pub fn span(&self) -> Range<usize> {
        self.item_span.clone()
    }

    /// Scans a name or tag value from `start` to the first unescaped byte in
    /// `stop`; returns its end and whether it contains one of `escapes`
    /// (other backslash pairs are kept as written, so need no unescaping).
    #[inline(always)]
    fn scan_token(
        &self,
        start: usize,
        stop: u8,
        kind: TokenKind,
        escapes: &[u8],
    ) -> Result<(usize, bool), Fail> {
        let b = self.input;
        let mut i = start;
        let mut escaped = false;
        while let Some(&c) = b.get(i) {
            if STOPS[c as usize] & stop == 0 {
                i += 1;
                continue;
            }
            if c != b'\\' {
                break;
            }
            match b.get(i + 1) {
                None | Some(b'\n') => return fail(i, ErrorKind::LoneBackslash(kind)),
                Some(b'\r') if matches!(b.get(i + 2), None | Some(b'\n')) => {
                    return fail(i, ErrorKind::LoneBackslash(kind))
                }
                Some(next) => {
                    escaped |= escapes.contains(next);
                    i += 2;
                }
            }
        }
        Ok((i, escaped))
    }

    /// Scans an unquoted field value or timestamp from `start`.
    #[inline(always)]
    fn scan_value(&self, start: usize) -> usize {
        let b = self.input;
        let mut i = start;
        while let Some(&c) = b.get(i) {
            if STOPS[c as usize] & STOP_VALUE != 0 {
                break;
            }
            i += 1;
        }
        i
    }

    fn check_len(&self, start: usize, end: usize, kind: TokenKind) -> Result<(), Fail> {
        let len = end - start;
        if len > self.opts.max_token_bytes {
            return fail(
                start,
                ErrorKind::TokenTooLong {
                    kind,
                    len,
                    limit: self.opts.max_token_bytes,
                },
            );
        }
        Ok(())
    }

    /// The text of `input[start..end]`, unescaped if `escaped`.
    #[inline(always)]
    fn text(
        &self,
        start: usize,
        end: usize,
        escaped: bool,
        kind: TokenKind,
        escapes: &[u8],
    ) -> Result<Cow<'a, str>, Fail> {
        self.check_len(start, end, kind)?;
        // Token bounds sit next to ASCII separators, hence on character
        // boundaries; `get` only fails outside the valid prefix.
        let s = match self.valid.get(start..end) {
            Some(s) => s,
            None => match std::str::from_utf8(&self.input[start..end]) {
                Ok(s) => s,
                Err(_) => return fail(start, ErrorKind::InvalidUtf8(kind)),
            },
        };
        Ok(if escaped {
            Cow::Owned(unescape(s, escapes))
        } else {
            Cow::Borrowed(s)
        })
    }

    /// Parses a double-quoted string value whose opening quote is at `open`;
    /// returns it and the offset after the closing quote.
    fn string_value(&mut self, open: usize) -> Result<(FieldValue<'a>, usize), Fail> {
        let b = self.input;
        let start = open + 1;
        let Some((close, escaped)) = closing_quote(b, start) else {
            return fail(open, ErrorKind::UnterminatedString);
        };
        let body = &b[start..close];
        if memchr(b'\n', body).is_some() {
            self.string_newlines += memchr_iter(b'\n', body).count();
        }
        let s = self.text(start, close, escaped, TokenKind::FieldValue, STRING_ESCAPES)?;
        Ok((FieldValue::String(s), close + 1))
    }

    /// Parses the line whose first non-blank byte is at `start`. Returns the
    /// line, the offset where its content ends (at `\r\n`, `\n` or the end of
    /// input) and the offset where the next line begins.
    fn parse_line(&mut self, line_start: usize, start: usize) -> Result<(Line<'a>, usize), Fail> {
        let b = self.input;

        let (mut i, escaped) = self.scan_token(
            start,
            STOP_MEASUREMENT,
            TokenKind::Measurement,
            MEASUREMENT_ESCAPES,
        )?;
        if i == start {
            return fail(start, ErrorKind::MissingMeasurement);
        }
        let measurement = self.text(
            start,
            i,
            escaped,
            TokenKind::Measurement,
            MEASUREMENT_ESCAPES,
        )?;

        let mut tags = Vec::with_capacity(self.tags_hint);
        while b.get(i) == Some(&b',') {
            let key_start = i + 1;
            let (key_end, escaped) =
                self.scan_token(key_start, STOP_KEY, TokenKind::TagKey, KEY_ESCAPES)?;
            if key_end == key_start {
                return fail(key_start, ErrorKind::MissingTagKey);
            }
            if b.get(key_end) != Some(&b'=') {
                let key = quote(&b[key_start..key_end]);
                return fail(key_end, ErrorKind::MissingTagEquals(key));
            }
            let key = self.text(key_start, key_end, escaped, TokenKind::TagKey, KEY_ESCAPES)?;
            let value_start = key_end + 1;
            let (value_end, escaped) =
                self.scan_token(value_start, STOP_KEY, TokenKind::TagValue, KEY_ESCAPES)?;
            if value_end == value_start {
                return fail(
                    value_start,
                    ErrorKind::MissingTagValue(quote(key.as_bytes())),
                );
            }
            if b.get(value_end) == Some(&b'=') {
                let value = quote(&b[value_start..value_end]);
                return fail(value_end, ErrorKind::UnescapedEqualsInTagValue(value));
            }
            let value = self.text(
                value_start,
                value_end,
                escaped,
                TokenKind::TagValue,
                KEY_ESCAPES,
            )?;
            tags.push((key, value));
            i = value_end;
            self.check_line_len(line_start, i)?;
        }

        i = skip_spaces(b, i);
        if line_end_at(b, i).is_some() {
            return fail(i, ErrorKind::MissingFields);
        }

        let mut fields = Vec::with_capacity(self.fields_hint);
        loop {
            let key_start = i;
            let (key_end, escaped) =
                self.scan_token(key_start, STOP_KEY, TokenKind::FieldKey, KEY_ESCAPES)?;
            if key_end == key_start {
                return fail(key_start, ErrorKind::MissingFieldKey);
            }
            if b.get(key_end) != Some(&b'=') {
                let key = quote(&b[key_start..key_end]);
                return fail(key_end, ErrorKind::MissingFieldEquals(key));
            }
            let key = self.text(
                key_start,
                key_end,
                escaped,
                TokenKind::FieldKey,
                KEY_ESCAPES,
            )?;
            let value_start = key_end + 1;
            let (value, value_end) = if b.get(value_start) == Some(&b'"') {
                self.string_value(value_start)?
            } else {
                let value_end = self.scan_value(value_start);
                if value_end == value_start {
                    return fail(
                        value_start,
                        ErrorKind::MissingFieldValue(quote(key.as_bytes())),
                    );
                }
                self.check_len(value_start, value_end, TokenKind::FieldValue)?;
                match number::field_value(&b[value_start..value_end]) {
                    Ok(v) => (v, value_end),
                    Err(kind) => return fail(value_start, kind),
                }
            };
            fields.push((key, value));
            i = value_end;
            self.check_line_len(line_start, i)?;
            if b.get(i) == Some(&b',') {
                i += 1;
            } else {
                break;
            }
        }

        let mut timestamp = None;
        if b.get(i) == Some(&b' ') {
            i = skip_spaces(b, i);
            if line_end_at(b, i).is_none() {
                let ts_end = self.scan_value(i);
                self.check_len(i, ts_end, TokenKind::Timestamp)?;
                match number::timestamp(&b[i..ts_end], self.opts.precision) {
                    Ok(t) => timestamp = Some(t),
                    Err(kind) => return fail(i, kind),
                }
                i = skip_spaces(b, ts_end);
            }
        }

        let Some(next) = line_end_at(b, i) else {
            let rest = quote(&b[i..memchr(b'\n', &b[i..]).map_or(b.len(), |k| i + k)]);
            let kind = if timestamp.is_some() {
                ErrorKind::TrailingText(rest)
            } else {
                ErrorKind::TextAfterFieldValue(rest)
            };
            return fail(i, kind);
        };
        self.check_line_len(line_start, i)?;

        self.tags_hint = tags.len();
        self.fields_hint = fields.len();
        let line = Line {
            measurement,
            tags,
            fields,
            timestamp,
        };
        Ok((line, next))
    }

    /// Fails with [`ErrorKind::LineTooLong`] once the line reaches past its
    /// limit at `i`, so an oversized line costs no more than the limit's worth
    /// of tokens. The length is filled in once the line's end is known.
    #[inline(always)]
    fn check_line_len(&self, line_start: usize, i: usize) -> Result<(), Fail> {
        let limit = self.opts.max_line_bytes;
        if i - line_start > limit {
            return fail(line_start + limit, ErrorKind::LineTooLong { len: 0, limit });
        }
        Ok(())
    }

    /// Where a rejected line that starts at `start` ends (the offset of its
    /// `\n`, or the input's length). It retraces the parser's structure
    /// without checking values: line breaks end the line except inside a
    /// string, and a string opens only where a field value starts, as when
    /// parsing. `fail_pos` is where parsing stopped; the line never ends
    /// before it.
    fn end_of_bad_line(&self, start: usize, fail_pos: usize) -> usize {
        let b = self.input;
        let end = 'scan: {
            // Measurement and tags: to the first unescaped space.
            let mut i = skip_escaped(b, start, |c| c == b' ' || c == b'\n');
            if b.get(i) != Some(&b' ') {
                break 'scan i;
            }
            i = skip_spaces(b, i);
            // Fields: key=value pairs separated by commas.
            loop {
                i = skip_escaped(b, i, |c| matches!(c, b'=' | b',' | b' ' | b'\n'));
                if b.get(i) != Some(&b'=') {
                    break;
                }
                i += 1;
                if b.get(i) == Some(&b'"') {
                    match closing_quote(b, i + 1) {
                        Some((close, _)) => i = close + 1,
                        None => break 'scan b.len(),
                    }
                } else {
                    while matches!(b.get(i), Some(&c) if !matches!(c, b',' | b' ' | b'\n' | b'\r'))
                    {
                        i += 1;
                    }
                }
                if b.get(i) != Some(&b',') {
                    break;
                }
                i += 1;
            }
            // Timestamp or anything else: no strings open here.
            memchr(b'\n', &b[i.min(b.len())..]).map_or(b.len(), |k| i + k)
        };
        let end = end.min(b.len());
        if end >= fail_pos {
            end
        } else {
            memchr(b'\n', &b[fail_pos.min(b.len())..]).map_or(b.len(), |k| fail_pos + k)
        }
    }

    /// Turns a rejection into a user-facing error with line and column.
    fn error(&self, line_start: usize, fail: Fail) -> LineError {
        let pos = fail.pos.min(self.input.len());
        let before = &self.input[line_start..pos];
        let (line, column) = match memrchr(b'\n', before) {
            None => (self.line_no, pos - line_start + 1),
            Some(k) => (
                self.line_no + memchr_iter(b'\n', before).count(),
                pos - (line_start + k + 1) + 1,
            ),
        };
        LineError {
            line,
            column,
            first_line: self.line_no,
            kind: fail.kind,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.input;
        loop {
            let line_start = self.pos;
            if line_start >= b.len() {
                return None;
            }
            let mut i = line_start;
            while matches!(b.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
            if let Some(next) = line_end_at(b, i) {
                self.pos = next;
                self.line_no += 1;
                continue;
            }
            if b[i] == b'#' {
                self.pos = memchr(b'\n', &b[i..]).map_or(b.len(), |k| i + k + 1);
                self.line_no += 1;
                continue;
            }
            self.string_newlines = 0;
            self.item_line = self.line_no;
            let item = match self.parse_line(line_start, i) {
                Ok((line, next)) => {
                    self.pos = next;
                    self.line_no += 1 + self.string_newlines;
                    Ok(line)
                }
                Err(mut fail) => {
                    let end = self.end_of_bad_line(i, fail.pos);
                    if let ErrorKind::LineTooLong { len, .. } = &mut fail.kind {
                        let crlf = end > line_start && b.get(end - 1) == Some(&b'\r');
                        *len = end - line_start - usize::from(crlf);
                    }
                    let err = self.error(line_start, fail);
                    self.line_no += 1 + memchr_iter(b'\n', &b[line_start..end]).count();
                    self.pos = end + 1;
                    Err(err)
                }
            };
            self.item_span = line_start..self.pos.min(b.len());
            return Some(item);
        }
    }
}

/// The offset of the quote that closes a string value whose text starts at
/// `start`, and whether the text holds an escape to undo. A backslash escapes
/// whatever byte follows it, a line break included.
#[inline(always)]
fn closing_quote(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start;
    let mut escaped = false;
    loop {
        let k = memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i + k] == b'"' {
            return Some((i + k, escaped));
        }
        escaped |= matches!(b.get(i + k + 1), Some(c) if STRING_ESCAPES.contains(c));
        i += k + 2;
    }
}

/// The offset of the first byte from `i` on that `stop` accepts and that is
/// not escaped by a backslash. A backslash before a line break escapes
/// nothing: the line break still ends the scan.
fn skip_escaped(b: &[u8], mut i: usize, stop: impl Fn(u8) -> bool) -> usize {
    while let Some(&c) = b.get(i) {
        if c == b'\\' && b.get(i + 1).is_some_and(|&n| n != b'\n') {
            i += 2;
        } else if stop(c) {
            break;
        } else {
            i += 1;
        }
    }
    i.min(b.len())
}

/// The offset after spaces starting at `i`.
#[inline(always)]
fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// If a line ends at `i` (end of input, `\n` or `\r\n`), the offset where the
/// next line begins.
#[inline(always)]
fn line_end_at(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i) {
        None => Some(b.len()),
        Some(b'\n') => Some(i + 1),
        Some(b'\r') => match b.get(i + 1) {
            None => Some(b.len()),
            Some(b'\n') => Some(i + 2),
            Some(_) => None,
        },
        Some(_) => None,
    }
}

/// Removes the backslash of each escape whose character is in `escapes`;
/// other backslashes stay.
fn unescape(s: &str, escapes: &[u8]) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            if escapes.contains(&bytes[i + 1]) {
                // Both offsets sit next to an ASCII backslash: char boundaries.
                out.push_str(&s[copied..i]);
                copied = i + 1;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_keeps_unknown_escapes() {
        assert_eq!(unescape(r"a\,b\ c\=d\\e\nf", KEY_ESCAPES), r"a,b c=d\e\nf");
        assert_eq!(unescape(r"a\=b\,", MEASUREMENT_ESCAPES), r"a\=b,");
        assert_eq!(unescape(r#"q\"\\\n"#, STRING_ESCAPES), r#"q"\\n"#);
        assert_eq!(unescape(r"\é", KEY_ESCAPES), r"\é");
    }
}
