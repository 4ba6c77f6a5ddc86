//! The settings of one database's enrichment, as TOML keys.

use std::path::PathBuf;

use serde::Deserialize;

use crate::{EnrichError, Mask};

/// How the lines written to one database are enriched. In a server's
/// configuration file it is the `enrich` table of `[databases.NAME]`, with
/// these kebab-case keys (unknown keys are refused):
///
/// ```
/// let config: enrich::EnrichConfig = toml::from_str(r#"
///     mmdb = "/var/lib/GeoLite2-Country.mmdb"
///     ip-tags = ["client_ip", "peer_addr"]
/// "#).unwrap();
/// assert_eq!(config.country_tag, "country");
/// assert_eq!((config.ipv4_mask, config.ipv6_mask), (24, 48));
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnrichConfig {
    /// `mmdb`: a MaxMind DB file (GeoLite2-Country, GeoIP2-City …) to look
    /// up countries in; without it addresses are only masked.
    #[serde(default)]
    pub mmdb: Option<PathBuf>,
    /// `ip-tags`: the tags that hold addresses. Their values are masked; the
    /// first of them (in this order) whose address has a country sets the
    /// country tag.
    pub ip_tags: Vec<String>,
    /// `country-tag`: the tag that receives the ISO 3166-1 country code
    /// (default `country`). A line that already has it keeps its own value.
    #[serde(default = "default_country_tag")]
    pub country_tag: String,
    /// `ipv4-mask`: IPv4 prefix length kept, 0–32 (default 24).
    #[serde(default = "default_ipv4_mask")]
    pub ipv4_mask: u8,
    /// `ipv6-mask`: IPv6 prefix length kept, 0–128 (default 48).
    #[serde(default = "default_ipv6_mask")]
    pub ipv6_mask: u8,
}

fn default_country_tag() -> String {
    "country".to_owned()
}

fn default_ipv4_mask() -> u8 {
    Mask::default().ipv4
}

fn default_ipv6_mask() -> u8 {
    Mask::default().ipv6
}

impl EnrichConfig {
    /// Masking of `ip_tags` with the default prefix lengths, no country
    /// lookups.
    pub fn masking(ip_tags: &[&str]) -> EnrichConfig {
        EnrichConfig {
            mmdb: None,
            ip_tags: ip_tags.iter().map(|t| (*t).to_owned()).collect(),
            country_tag: default_country_tag(),
            ipv4_mask: default_ipv4_mask(),
            ipv6_mask: default_ipv6_mask(),
        }
    }

    /// The prefix lengths.
    pub fn mask(&self) -> Mask {
        Mask {
            ipv4: self.ipv4_mask,
            ipv6: self.ipv6_mask,
        }
    }

    /// Checks the values that parse but make no sense, naming the key.
    pub fn validate(&self) -> Result<(), EnrichError> {
        let bad = |key, reason: String| Err(EnrichError::Setting { key, reason });
        if self.ip_tags.is_empty() {
            return bad(
                "ip-tags",
                "name at least one tag that holds addresses".into(),
            );
        }
        if let Some(tag) = self.ip_tags.iter().find(|t| t.is_empty()) {
            return bad("ip-tags", format!("{tag:?} is not a tag name"));
        }
        if self.country_tag.is_empty() || self.country_tag.chars().any(char::is_control) {
            return bad(
                "country-tag",
                format!("{:?} is not a tag name", self.country_tag),
            );
        }
        if self.ip_tags.contains(&self.country_tag) {
            return bad(
                "country-tag",
                format!("{:?} is also one of ip-tags", self.country_tag),
            );
        }
        if self.ipv4_mask > 32 {
            return bad(
                "ipv4-mask",
                format!("{} is more than 32 bits", self.ipv4_mask),
            );
        }
        if self.ipv6_mask > 128 {
            return bad(
                "ipv6-mask",
                format!("{} is more than 128 bits", self.ipv6_mask),
            );
        }
        Ok(())
    }
}
