//! Country lookups in a MaxMind DB file (GeoLite2-Country, GeoIP2-City or
//! any database with the same record shape).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::EnrichError;

/// A MaxMind DB file, read into memory, that maps addresses to countries.
#[derive(Debug)]
pub struct CountryDb {
    reader: maxminddb::Reader<Vec<u8>>,
    /// Where it was read from, for messages.
    path: PathBuf,
}

/// The part of a record that is read: GeoIP2's `country` and
/// `registered_country` (where the address's block is registered, for
/// addresses without a `country` such as some anycast blocks).
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Place<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<Place<'a>>,
}

#[derive(Deserialize)]
struct Place<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

impl CountryDb {
    /// Reads the database at `path`.
    pub fn open(path: &Path) -> Result<CountryDb, EnrichError> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|error| EnrichError::Mmdb {
            path: path.to_owned(),
            error,
        })?;
        Ok(CountryDb {
            reader,
            path: path.to_owned(),
        })
    }

    /// A database held in memory; `name` stands for its path in messages.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<CountryDb, EnrichError> {
        let path = PathBuf::from(name);
        let reader = maxminddb::Reader::from_source(bytes).map_err(|error| EnrichError::Mmdb {
            path: path.clone(),
            error,
        })?;
        Ok(CountryDb { reader, path })
    }

    /// Where the database came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ISO 3166-1 code of the country of `ip` (`country.iso_code`, else
    /// `registered_country.iso_code`), or `None` when the database does not
    /// know the address. A record that cannot be decoded, or whose code is
    /// empty or holds control characters, counts as unknown: enrichment never
    /// fails a write.
    pub fn country(&self, ip: IpAddr) -> Option<&str> {
        // An IPv6 address in an IPv4-only database is an error, not unknown.
        let found = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        [record.country, record.registered_country]
            .into_iter()
            .flatten()
            .find_map(|place| place.iso_code)
            .filter(|code| !code.is_empty() && !code.chars().any(char::is_control))
    }
}
