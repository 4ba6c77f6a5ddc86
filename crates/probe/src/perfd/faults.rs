//! perfd's fault knobs: set for every request by flags, or per request by
//! query parameters (which win), so one target can play every failure.

use serde::Deserialize;

/// What a `/bulk` response does wrong (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Wait this long before sending the response header.
    pub header_delay_ms: Option<u64>,
    /// Wait this long between the header and the first body byte.
    pub body_delay_ms: Option<u64>,
    /// Send the body at this many bytes per second.
    pub rate: Option<u64>,
    /// Stop sending after this many body bytes and keep the connection open.
    pub stall_after: Option<u64>,
    /// Reset the connection (RST) after this many body bytes.
    pub reset_after: Option<u64>,
    /// Close the connection (FIN) after this many body bytes: a short body.
    pub close_after: Option<u64>,
    /// Announce a checksum that does not match the body.
    pub bad_checksum: Option<bool>,
    /// Answer with this HTTP status (300 to 599 but 304, with a short text
    /// body) instead of 200.
    pub status: Option<u16>,
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// All of it is sent.
    Complete,
    /// RST after the bytes sent.
    Reset,
    /// FIN after the bytes sent.
    Close,
    /// Nothing more is sent; the connection stays open.
    Stall,
}

impl Faults {
    /// Parses a query string (`rate=1000&stall_after=5`); an unknown key or a
    /// bad value is an error naming it.
    pub fn from_query(query: &str) -> Result<Faults, String> {
        let faults: Faults = serde_urlencoded::from_str(query).map_err(|e| e.to_string())?;
        faults.check()?;
        Ok(faults)
    }

    /// Checks the values that parse but make no sense.
    pub fn check(&self) -> Result<(), String> {
        if self.rate == Some(0) {
            return Err("rate must be at least 1 byte per second".into());
        }
        if let Some(s) = self.status {
            // Other 2xx would pass for a download; 1xx, 204 and 304 have no body.
            if s != 200 && !(300..=599).contains(&s) || s == 304 {
                return Err(format!(
                    "status {s} is not 200 or between 300 and 599 (but 304)"
                ));
            }
        }
        Ok(())
    }

    /// These knobs, each unset one taken from `defaults`.
    pub fn or(self, defaults: &Faults) -> Faults {
        Faults {
            header_delay_ms: self.header_delay_ms.or(defaults.header_delay_ms),
            body_delay_ms: self.body_delay_ms.or(defaults.body_delay_ms),
            rate: self.rate.or(defaults.rate),
            stall_after: self.stall_after.or(defaults.stall_after),
            reset_after: self.reset_after.or(defaults.reset_after),
            close_after: self.close_after.or(defaults.close_after),
            bad_checksum: self.bad_checksum.or(defaults.bad_checksum),
            status: self.status.or(defaults.status),
        }
    }

    /// How many of `len` body bytes are sent, and how the body ends: the
    /// earliest cut wins; at a tie, reset before close before stall.
    pub(crate) fn cut(&self, len: u64) -> (u64, Ending) {
        let mut cut = (len, Ending::Complete);
        for (at, ending) in [
            (self.stall_after, Ending::Stall),
            (self.close_after, Ending::Close),
            (self.reset_after, Ending::Reset),
        ] {
            if let Some(at) = at.filter(|&at| at < len && at <= cut.0) {
                cut = (at, ending);
            }
        }
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_knobs_parse_and_name_bad_keys() {
        let f = Faults::from_query("rate=1000&stall_after=5&bad_checksum=true").unwrap();
        assert_eq!(
            (f.rate, f.stall_after, f.bad_checksum),
            (Some(1000), Some(5), Some(true))
        );
        assert!(Faults::from_query("speed=1").unwrap_err().contains("speed"));
        assert!(Faults::from_query("rate=fast").is_err());
        assert!(Faults::from_query("rate=0").is_err());
        assert!(Faults::from_query("status=99").is_err());
        assert!(Faults::from_query("status=204").is_err());
        assert!(Faults::from_query("status=503").is_ok());
    }

    #[test]
    fn the_earliest_cut_wins() {
        let f = Faults {
            stall_after: Some(10),
            reset_after: Some(10),
            close_after: Some(20),
            ..Faults::default()
        };
        assert_eq!(f.cut(100), (10, Ending::Reset));
        assert_eq!(f.cut(5), (5, Ending::Complete));
        let defaults = Faults {
            rate: Some(7),
            ..Faults::default()
        };
        assert_eq!(Faults::default().or(&defaults).rate, Some(7));
    }
}
