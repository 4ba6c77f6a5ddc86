//! Timestamp precision: how to scale a line's timestamp to nanoseconds.

use std::fmt;
use std::str::FromStr;

/// The earliest timestamp accepted, in nanoseconds. Like InfluxDB, the two
/// lowest `i64` values are kept out of range so stores may use them as
/// sentinels.
pub const MIN_TIMESTAMP_NANOS: i64 = i64::MIN + 2;
/// The latest timestamp accepted, in nanoseconds (`i64::MAX` is reserved).
pub const MAX_TIMESTAMP_NANOS: i64 = i64::MAX - 1;

/// The unit of the timestamps in a batch, as given by the `precision` query
/// parameter of InfluxDB's write APIs.
///
/// ```
/// use lineproto::Precision;
/// let p: Precision = "ms".parse().unwrap();
/// assert_eq!(p.to_nanos(1_700_000_000_000), Some(1_700_000_000_000_000_000));
/// assert_eq!("auto".parse::<Precision>().unwrap().to_nanos(1_700_000_000), Some(1_700_000_000_000_000_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// Nanoseconds (`n`, `ns`); the default.
    #[default]
    Nanoseconds,
    /// Microseconds (`u`, `us`, `µs`).
    Microseconds,
    /// Milliseconds (`ms`).
    Milliseconds,
    /// Seconds (`s`).
    Seconds,
    /// Minutes (`m`).
    Minutes,
    /// Hours (`h`).
    Hours,
    /// Guess each timestamp's unit from its magnitude (`auto`): around the
    /// present, seconds, milliseconds, microseconds and nanoseconds differ by
    /// three orders of magnitude, so the number of digits tells them apart.
    Auto,
}

/// A `precision` value that is none of the known units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision {0:?}; expected one of n, ns, u, us, ms, s, m, h, auto")]
pub struct UnknownPrecision(pub String);

impl Precision {
    /// How many nanoseconds one unit is; `None` for [`Precision::Auto`].
    pub fn nanos_per_unit(self) -> Option<i64> {
        match self {
            Precision::Nanoseconds => Some(1),
            Precision::Microseconds => Some(1_000),
            Precision::Milliseconds => Some(1_000_000),
            Precision::Seconds => Some(1_000_000_000),
            Precision::Minutes => Some(60_000_000_000),
            Precision::Hours => Some(3_600_000_000_000),
            Precision::Auto => None,
        }
    }

    /// The unit [`Precision::Auto`] picks for `value`: below 5·10⁹ it reads
    /// seconds (until the year 2128), below 5·10¹² milliseconds, below 5·10¹⁵
    /// microseconds, else nanoseconds. Concrete precisions return themselves.
    pub fn resolve(self, value: i64) -> Precision {
        if self != Precision::Auto {
            return self;
        }
        match value.unsigned_abs() {
            v if v < 5_000_000_000 => Precision::Seconds,
            v if v < 5_000_000_000_000 => Precision::Milliseconds,
            v if v < 5_000_000_000_000_000 => Precision::Microseconds,
            _ => Precision::Nanoseconds,
        }
    }

    /// Scales `value` in this unit to nanoseconds, or `None` when the result
    /// falls outside [`MIN_TIMESTAMP_NANOS`]..=[`MAX_TIMESTAMP_NANOS`].
    pub fn to_nanos(self, value: i64) -> Option<i64> {
        let unit = self.resolve(value).nanos_per_unit()?;
        value
            .checked_mul(unit)
            .filter(|t| (MIN_TIMESTAMP_NANOS..=MAX_TIMESTAMP_NANOS).contains(t))
    }

    /// The canonical short name, as accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
            Precision::Minutes => "m",
            Precision::Hours => "h",
            Precision::Auto => "auto",
        }
    }
}

impl FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "n" | "ns" => Precision::Nanoseconds,
            "u" | "us" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            "auto" => Precision::Auto,
            other => return Err(UnknownPrecision(other.to_owned())),
        })
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tells_units_apart_around_the_present() {
        let secs = 1_700_000_000_i64;
        for (value, unit) in [
            (secs, Precision::Seconds),
            (secs * 1_000, Precision::Milliseconds),
            (secs * 1_000_000, Precision::Microseconds),
            (secs * 1_000_000_000, Precision::Nanoseconds),
            (-secs, Precision::Seconds),
        ] {
            assert_eq!(Precision::Auto.resolve(value), unit, "{value}");
            assert_eq!(
                Precision::Auto.to_nanos(value),
                Some(value.signum() * secs * 1_000_000_000)
            );
        }
    }

    #[test]
    fn scaling_overflow_is_none() {
        assert_eq!(Precision::Hours.to_nanos(i64::MAX / 2), None);
        assert_eq!(Precision::Nanoseconds.to_nanos(i64::MAX), None);
        assert_eq!(Precision::Nanoseconds.to_nanos(i64::MIN), None);
        assert_eq!(
            Precision::Nanoseconds.to_nanos(MAX_TIMESTAMP_NANOS),
            Some(MAX_TIMESTAMP_NANOS)
        );
        assert_eq!(Precision::Minutes.to_nanos(-2), Some(-120_000_000_000));
    }
}
