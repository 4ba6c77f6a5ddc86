//! Typed field values and timestamps from their unquoted tokens.

use crate::error::{quote, ErrorKind};
use crate::{FieldValue, Precision};

/// Why a decimal integer did not parse.
enum IntError {
    Invalid,
    OutOfRange,
}

/// Parses an unquoted field value: integer (`1i`), unsigned (`1u`), float or boolean.
pub(crate) fn field_value(tok: &[u8]) -> Result<FieldValue<'static>, ErrorKind> {
    let (last, body) = match tok.split_last() {
        Some((&last, body)) => (last, body),
        None => return Err(ErrorKind::InvalidFieldValue(String::new())),
    };
    let numeric = matches!(body.first(), None | Some(b'0'..=b'9' | b'-' | b'+' | b'.'));
    match last {
        b'i' if numeric => match signed(body) {
            Ok(v) => Ok(FieldValue::Integer(v)),
            Err(IntError::Invalid) => Err(ErrorKind::InvalidInteger(quote(tok))),
            Err(IntError::OutOfRange) => Err(ErrorKind::IntegerOutOfRange(quote(tok))),
        },
        b'u' if numeric => {
            if body.first() == Some(&b'-') && body.len() > 1 && all_digits(&body[1..]) {
                return Err(ErrorKind::NegativeUnsigned(quote(tok)));
            }
            match unsigned(body) {
                Ok(v) => Ok(FieldValue::UInteger(v)),
                Err(IntError::Invalid) => Err(ErrorKind::InvalidUnsigned(quote(tok))),
                Err(IntError::OutOfRange) => Err(ErrorKind::UnsignedOutOfRange(quote(tok))),
            }
        }
        _ if matches!(tok[0], b'0'..=b'9' | b'-' | b'+' | b'.') => {
            float(tok).map(FieldValue::Float)
        }
        // Spelled like floats, but line protocol carries finite numbers only.
        _ if [&b"nan"[..], b"inf", b"infinity"]
            .iter()
            .any(|w| tok.eq_ignore_ascii_case(w)) =>
        {
            Err(ErrorKind::InvalidFloat(quote(tok)))
        }
        _ => boolean(tok)
            .map(FieldValue::Boolean)
            .ok_or_else(|| ErrorKind::InvalidFieldValue(quote(tok))),
    }
}

/// Parses a timestamp token `-?[0-9]+` and scales it from `precision` to nanoseconds.
pub(crate) fn timestamp(tok: &[u8], precision: Precision) -> Result<i64, ErrorKind> {
    let out_of_range = || ErrorKind::TimestampOutOfRange {
        value: quote(tok),
        precision,
    };
    match signed(tok) {
        Ok(v) => precision.to_nanos(v).ok_or_else(out_of_range),
        Err(IntError::Invalid) => Err(ErrorKind::InvalidTimestamp(quote(tok))),
        Err(IntError::OutOfRange) => Err(out_of_range()),
    }
}

fn all_digits(s: &[u8]) -> bool {
    s.iter().all(u8::is_ascii_digit)
}

/// `[0-9]+` as u64; invalid characters win over overflow in the verdict.
fn unsigned(digits: &[u8]) -> Result<u64, IntError> {
    if digits.is_empty() || !all_digits(digits) {
        return Err(IntError::Invalid);
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or(IntError::OutOfRange)?;
    }
    Ok(v)
}

/// `-?[0-9]+` as i64 with exact bounds.
fn signed(tok: &[u8]) -> Result<i64, IntError> {
    match tok.split_first() {
        Some((b'-', digits)) => {
            let v = unsigned(digits)?;
            // -(2^63) is the one magnitude that has no positive counterpart.
            if v == 1 << 63 {
                Ok(i64::MIN)
            } else {
                i64::try_from(v)
                    .map(|v| -v)
                    .map_err(|_| IntError::OutOfRange)
            }
        }
        _ => i64::try_from(unsigned(tok)?).map_err(|_| IntError::OutOfRange),
    }
}

/// A float in the grammar `-?(d+(.d*)?|.d+)([eE][+-]?d+)?`. The grammar is
/// checked here because Rust's parser also takes `inf`, `NaN` and `+1`.
fn float(tok: &[u8]) -> Result<f64, ErrorKind> {
    let invalid = || ErrorKind::InvalidFloat(quote(tok));
    let n = tok.len();
    let mut i = usize::from(tok.first() == Some(&b'-'));
    let int_start = i;
    while i < n && tok[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < n && tok[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < n && tok[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return Err(invalid());
    }
    if i < n && (tok[i] == b'e' || tok[i] == b'E') {
        i += 1;
        if i < n && (tok[i] == b'+' || tok[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < n && tok[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return Err(invalid());
        }
    }
    if i != n {
        return Err(invalid());
    }
    // The grammar above admits ASCII only, so this cannot fail.
    let text = std::str::from_utf8(tok).map_err(|_| invalid())?;
    let v: f64 = text.parse().map_err(|_| invalid())?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ErrorKind::FloatOutOfRange(quote(tok)))
    }
}

/// The spellings InfluxDB accepts, and no others.
fn boolean(tok: &[u8]) -> Option<bool> {
    match tok {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => Some(true),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_bounds_are_exact() {
        assert_eq!(signed(b"-9223372036854775808").ok(), Some(i64::MIN));
        assert_eq!(signed(b"9223372036854775807").ok(), Some(i64::MAX));
        assert!(matches!(
            signed(b"9223372036854775808"),
            Err(IntError::OutOfRange)
        ));
        assert!(matches!(
            signed(b"-9223372036854775809"),
            Err(IntError::OutOfRange)
        ));
        assert!(matches!(
            signed(b"99999999999999999999x"),
            Err(IntError::Invalid)
        ));
        assert!(matches!(signed(b"-"), Err(IntError::Invalid)));
        assert!(matches!(signed(b"+1"), Err(IntError::Invalid)));
    }

    #[test]
    fn float_grammar() {
        for ok in [
            "0", "-0", "44", "1.", ".5", "-1.2e+06", "1e-0", "1.5e06", "6.6E+06",
        ] {
            assert!(float(ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in [
            "1e", "1e+", "23.1.22", "+1", "-", ".", "1..2", "inf", "NaN", "12x", "-.e1",
        ] {
            assert!(
                matches!(float(bad.as_bytes()), Err(ErrorKind::InvalidFloat(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            float(b"1e400"),
            Err(ErrorKind::FloatOutOfRange(_))
        ));
    }
}
