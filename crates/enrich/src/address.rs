//! Addresses in tag values, and masking them to their network.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The prefix lengths addresses are masked to: the network of an IPv4
/// address keeps its first `ipv4` bits, that of an IPv6 address its first
/// `ipv6` bits.
///
/// ```
/// use enrich::Mask;
/// let mask = Mask { ipv4: 24, ipv6: 48 };
/// assert_eq!(mask.network("203.0.113.77".parse().unwrap()).to_string(), "203.0.113.0");
/// assert_eq!(mask.network("2001:db8:1:2::5".parse().unwrap()).to_string(), "2001:db8:1::");
/// // An IPv4-mapped IPv6 address is an IPv4 address.
/// assert_eq!(mask.network("::ffff:203.0.113.77".parse().unwrap()).to_string(), "203.0.113.0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask {
    /// Bits of an IPv4 address kept, at most 32.
    pub ipv4: u8,
    /// Bits of an IPv6 address kept, at most 128.
    pub ipv6: u8,
}

impl Default for Mask {
    /// /24 and /48: the networks that GDPR-minded analytics commonly keep.
    fn default() -> Self {
        Mask { ipv4: 24, ipv6: 48 }
    }
}

impl Mask {
    /// The network of `ip`: its first bits kept, the rest zero. Prefix
    /// lengths beyond the address's width keep it whole.
    pub fn network(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let keep = u32::MAX
                    .checked_shl(32_u32.saturating_sub(u32::from(self.ipv4)))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
            }
            IpAddr::V6(v6) => {
                let keep = u128::MAX
                    .checked_shl(128_u32.saturating_sub(u32::from(self.ipv6)))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
            }
        }
    }
}

/// The address a whole tag value names, in any of the forms tags carry
/// one: bare (`203.0.113.7`, `2001:db8::1`), with a port
/// (`203.0.113.7:443`, `[2001:db8::1]:443`), in brackets, with an IPv6 zone
/// (`fe80::1%eth0`) or with a prefix length (`203.0.113.7/32`). An
/// IPv4-mapped IPv6 address comes back as IPv4.
///
/// ```
/// use enrich::parse_address;
/// assert_eq!(parse_address("[2001:db8::1%2]:443"), Some("2001:db8::1".parse().unwrap()));
/// assert_eq!(parse_address("::ffff:192.0.2.1"), Some("192.0.2.1".parse().unwrap()));
/// assert_eq!(parse_address("example.org:443"), None);
/// ```
pub fn parse_address(value: &str) -> Option<IpAddr> {
    let ip = if let Ok(ip) = value.parse::<IpAddr>() {
        ip
    } else if let Ok(socket) = value.parse::<SocketAddr>() {
        socket.ip()
    } else {
        let inner = value.strip_prefix('[').unwrap_or(value);
        inner.split(['%', '/', ']']).next()?.parse().ok()?
    };
    Some(ip.to_canonical())
}

/// A tag value with every address in it masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MaskedValue {
    /// The new value; `None` when it is the same as before.
    pub(crate) text: Option<String>,
    /// The address the whole value names, unmasked, if it names one.
    pub(crate) address: Option<IpAddr>,
}

/// Masks the addresses in `value`; see [`mask_value`].
pub(crate) fn mask_tag_value(value: &str, mask: Mask) -> MaskedValue {
    if let Some(ip) = parse_address(value) {
        let network = mask.network(ip).to_string();
        return MaskedValue {
            text: (network != value).then_some(network),
            address: Some(ip),
        };
    }
    // Words of IPv6's alphabet first (they may hold a dotted quad), then
    // dotted quads wherever they stand; masking a network again leaves it
    // as it is, so the second pass does not undo the first.
    let v6 = mask_runs(value, mask, |c| {
        c.is_ascii_hexdigit() || matches!(c, ':' | '.')
    });
    let v4 = mask_runs(v6.as_deref().unwrap_or(value), mask, |c| {
        c.is_ascii_digit() || c == '.'
    });
    MaskedValue {
        text: v4.or(v6).filter(|text| text != value),
        address: None,
    }
}

/// Replaces each maximal run of characters that `in_run` accepts and that
/// is an address, as it stands or without the dots and colons of the
/// sentence around it, by its network; `None` when no run is one.
fn mask_runs(value: &str, mask: Mask, in_run: impl Fn(char) -> bool) -> Option<String> {
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while let Some(start) = value[at..].find(&in_run).map(|k| at + k) {
        let end = value[start..]
            .find(|c: char| !in_run(c))
            .map_or(value.len(), |k| start + k);
        at = end;
        let Some((from, to, ip)) = address_in(value, start, end) else {
            continue;
        };
        out.push_str(&value[copied..from]);
        out.push_str(&mask.network(ip).to_string());
        copied = to;
    }
    (copied > 0).then(|| {
        out.push_str(&value[copied..]);
        out
    })
}

/// The address in `value[start..end]` and where it lies: the whole run, or
/// the run without trailing dots and colons and one leading dot or colon
/// (but not IPv6's leading `::`).
fn address_in(value: &str, start: usize, end: usize) -> Option<(usize, usize, IpAddr)> {
    if let Ok(ip) = value[start..end].parse() {
        return Some((start, end, ip));
    }
    let trimmed = value[start..end].trim_end_matches(['.', ':']);
    let to = start + trimmed.len();
    let from = if !trimmed.starts_with("::") && trimmed.starts_with(['.', ':']) {
        start + 1
    } else {
        start
    };
    let ip = value.get(from..to)?.parse().ok()?;
    Some((from, to, ip))
}

/// Masks every address in `value` as [`crate::Enricher`] does with the
/// value of an IP tag. A value that is one address ([`parse_address`])
/// becomes its network alone: port, zone and prefix length go. In any
/// other value each IPv6 address standing as a word and each IPv4 address
/// wherever it stands is replaced by its network, so lists, URLs and
/// `host:address` pairs are masked too; the rest of the text stays. Host
/// names stay as they are.
///
/// ```
/// use enrich::{mask_value, Mask};
/// let m = Mask::default();
/// assert_eq!(mask_value("198.51.100.9:5353", m), "198.51.100.0");
/// assert_eq!(mask_value("[2001:db8:1:2::1]:443", m), "2001:db8:1::");
/// assert_eq!(mask_value("203.0.113.7, 2001:db8:5:6::7", m), "203.0.113.0, 2001:db8:5::");
/// assert_eq!(mask_value("http://203.0.113.7:8080/x", m), "http://203.0.113.0:8080/x");
/// assert_eq!(mask_value("example.org", m), "example.org");
/// ```
pub fn mask_value(value: &str, mask: Mask) -> Cow<'_, str> {
    match mask_tag_value(value, mask).text {
        Some(text) => Cow::Owned(text),
        None => Cow::Borrowed(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(value: &str) -> Cow<'_, str> {
        mask_value(value, Mask::default())
    }

    #[test]
    fn prefix_lengths_at_their_limits() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let all = Mask {
            ipv4: 32,
            ipv6: 128,
        };
        let none = Mask { ipv4: 0, ipv6: 0 };
        let (v4, v6) = (ip("203.0.113.77"), ip("2001:db8::1"));
        assert_eq!(v4.map(|a| all.network(a)), v4);
        assert_eq!(v6.map(|a| all.network(a)), v6);
        assert_eq!(v4.map(|a| none.network(a)), ip("0.0.0.0"));
        assert_eq!(v6.map(|a| none.network(a)), ip("::"));
    }

    #[test]
    fn addresses_inside_other_text() {
        // Sentence punctuation around an address stays.
        assert_eq!(masked("seen from 203.0.113.77."), "seen from 203.0.113.0.");
        assert_eq!(
            masked("for=203.0.113.7;proto=https"),
            "for=203.0.113.0;proto=https"
        );
        // Dotted quads wherever they stand, even inside a host name.
        assert_eq!(masked("host-10.1.2.3.nip.io"), "host-10.1.2.0.nip.io");
        assert_eq!(
            masked("2001:db8:1:2:: and ::ffff:10.9.8.7"),
            "2001:db8:1:: and 10.9.8.0"
        );
        for text in [
            "1.2.3.4.5",
            "v1.2.3",
            "12:30:00",
            "00:1a:2b:3c:4d:5e",
            "dead-beef",
        ] {
            assert_eq!(masked(text), text);
        }
    }

    #[test]
    fn the_whole_value_is_the_address_or_not() {
        let m = mask_tag_value("203.0.113.9:80", Mask::default());
        assert_eq!(m.text.as_deref(), Some("203.0.113.0"));
        assert_eq!(m.address, "203.0.113.9".parse().ok());
        // Already a network: nothing to change, but still an address.
        let m = mask_tag_value("203.0.113.0", Mask::default());
        assert_eq!((m.text, m.address), (None, "203.0.113.0".parse().ok()));
        // A list: masked, but no single address to look up.
        let m = mask_tag_value("203.0.113.9 203.0.113.10", Mask::default());
        assert_eq!(
            (m.text.as_deref(), m.address),
            (Some("203.0.113.0 203.0.113.0"), None)
        );
    }
}
