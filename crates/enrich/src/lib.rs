//! Enrichment at ingest: the country of an address looked up in a MaxMind
//! DB file the user supplies, then the address masked to its network
//! (/24 IPv4, /48 IPv6 by default), so raw addresses never reach the store.
//!
//! An [`Enricher`] is built per database from an [`EnrichConfig`] (the IP
//! tags, the country tag, the prefix lengths, the `.mmdb` file, which is
//! read once) and rewrites each batch of line protocol before it is stored:
//!
//! ```
//! use enrich::{EnrichConfig, Enricher};
//!
//! let enricher = Enricher::new(&EnrichConfig::masking(&["client_ip", "peer"])).unwrap();
//! let batch = b"conn,client_ip=198.51.100.23,peer=[2001:db8:7:1::9]:443 rtt=12.5\n\
//!               conn,client_ip=example.net rtt=7\n";
//! let out = enricher.rewrite(batch).unwrap();
//! assert_eq!(
//!     std::str::from_utf8(&out).unwrap(),
//!     "conn,client_ip=198.51.100.0,peer=2001:db8:7:: rtt=12.5\n\
//!      conn,client_ip=example.net rtt=7\n",
//! );
//! ```
//!
//! What counts as an address in a tag value is [`mask_value`]'s business;
//! countries come from [`CountryDb`]. A line that does not parse is left
//! as it is, and every line keeps its number, so the store reports bad
//! lines exactly as it would have without enrichment.

mod address;
mod config;
mod country;
mod error;
mod rewrite;

pub use address::{mask_value, parse_address, Mask};
pub use config::EnrichConfig;
pub use country::CountryDb;
pub use error::EnrichError;
pub use rewrite::Enricher;
