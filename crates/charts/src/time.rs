//! Time labels: Unix seconds as UTC dates.

use std::time::{Duration, UNIX_EPOCH};

/// The first second humantime cannot format (year 10000).
const YEAR_10000: f64 = 253_402_300_800.0;

/// `YYYY-MM-DD HH:MM` (UTC) for Unix seconds; times before 1970 or after
/// year 9999 as `<secs> s`.
pub fn utc(secs: f64) -> String {
    let secs = secs.floor();
    if !(0.0..YEAR_10000).contains(&secs) {
        return format!("{secs} s");
    }
    let at = UNIX_EPOCH + Duration::from_secs(secs as u64);
    // "YYYY-MM-DDTHH:MM:SSZ"
    let rfc3339 = humantime::format_rfc3339_seconds(at).to_string();
    rfc3339[..16].replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00");
        assert_eq!(utc(1_700_000_000.0), "2023-11-14 22:13");
        assert_eq!(utc(951_782_400.0), "2000-02-29 00:00");
        assert_eq!(utc(-60.0), "-60 s");
        assert_eq!(utc(f64::NAN), "NaN s");
    }
}
