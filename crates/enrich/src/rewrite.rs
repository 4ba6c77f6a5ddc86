//! Rewriting a batch of line protocol: each line's IP tags masked, its
//! country added.

use std::borrow::Cow;
use std::net::IpAddr;

use lineproto::{Line, ParseOptions, Precision};

use crate::address::mask_tag_value;
use crate::{CountryDb, EnrichConfig, EnrichError, Mask};

/// One database's enrichment, ready to rewrite batches: the IP tags, the
/// prefix lengths, and the country database if there is one.
#[derive(Debug)]
pub struct Enricher {
    ip_tags: Vec<String>,
    country_tag: String,
    mask: Mask,
    countries: Option<CountryDb>,
}

/// How a batch is parsed here: timestamps as written (nanoseconds scale
/// nothing) and no size limits, so that every line the store will accept
/// parses here too, and so is enriched, whatever precision and limits the
/// store applies.
const PARSE: ParseOptions = ParseOptions {
    precision: Precision::Nanoseconds,
    max_line_bytes: usize::MAX,
    max_token_bytes: usize::MAX,
};

impl Enricher {
    /// Checks `config` and reads its MaxMind DB file, if it names one.
    pub fn new(config: &EnrichConfig) -> Result<Enricher, EnrichError> {
        config.validate()?;
        let countries = config.mmdb.as_deref().map(CountryDb::open).transpose()?;
        Ok(Self::build(config, countries))
    }

    /// Checks `config` and looks countries up in `countries` (its `mmdb`
    /// key is not read).
    pub fn with_countries(
        config: &EnrichConfig,
        countries: CountryDb,
    ) -> Result<Enricher, EnrichError> {
        config.validate()?;
        Ok(Self::build(config, Some(countries)))
    }

    fn build(config: &EnrichConfig, countries: Option<CountryDb>) -> Enricher {
        Enricher {
            ip_tags: config.ip_tags.clone(),
            country_tag: config.country_tag.clone(),
            mask: config.mask(),
            countries,
        }
    }

    /// The country database, if countries are looked up.
    pub fn countries(&self) -> Option<&CountryDb> {
        self.countries.as_ref()
    }

    /// Enriches one line: masks the addresses in its IP tags and, when one
    /// of them has a country and the line has no country tag yet, adds it
    /// (last). Returns whether the line changed.
    pub fn enrich_line(&self, line: &mut Line<'_>) -> bool {
        let mut changed = false;
        // The address of the earliest-listed IP tag that names one.
        let mut first: Option<(usize, IpAddr)> = None;
        for (key, value) in &mut line.tags {
            let Some(rank) = self.ip_tags.iter().position(|t| t == key) else {
                continue;
            };
            let masked = mask_tag_value(value, self.mask);
            if let Some(ip) = masked.address {
                if first.is_none_or(|(r, _)| rank < r) {
                    first = Some((rank, ip));
                }
            }
            if let Some(text) = masked.text {
                *value = Cow::Owned(text);
                changed = true;
            }
        }
        if let (Some(countries), Some((_, ip))) = (&self.countries, first) {
            if line.tag(&self.country_tag).is_none() {
                if let Some(code) = countries.country(ip) {
                    line.tags.push((
                        Cow::Owned(self.country_tag.clone()),
                        Cow::Owned(code.into()),
                    ));
                    changed = true;
                }
            }
        }
        changed
    }

    /// Rewrites a batch: every line that parses is enriched
    /// ([`Enricher::enrich_line`]) and, if it changed, written back
    /// (timestamps as they were written, so the batch's precision still
    /// applies). Everything else — lines that do not parse, unchanged lines,
    /// blank and comment lines — is copied as it is, and a rewritten line
    /// keeps its line breaks, so the lines of the result are numbered as the
    /// input's: the store names a bad line by the same line and column. A
    /// batch that needs no change comes back borrowed.
    ///
    /// ```
    /// let enricher = enrich::Enricher::new(&enrich::EnrichConfig::masking(&["client"])).unwrap();
    /// let out = enricher.rewrite(b"conn,client=203.0.113.7:5123 ms=12.5 1700000000\nconn,client=x ms=oops\n").unwrap();
    /// assert_eq!(&out[..], &b"conn,client=203.0.113.0 ms=12.5 1700000000\nconn,client=x ms=oops\n"[..]);
    /// ```
    pub fn rewrite<'a>(&self, body: &'a [u8]) -> Result<Cow<'a, [u8]>, EnrichError> {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut lines = PARSE.parse(body);
        while let Some(item) = lines.next() {
            let Ok(mut line) = item else {
                continue;
            };
            if !self.enrich_line(&mut line) {
                continue;
            }
            let span = lines.span();
            let out = out.get_or_insert_with(|| Vec::with_capacity(body.len() + body.len() / 8));
            out.extend_from_slice(&body[copied..span.start]);
            line.encode(out).map_err(|error| EnrichError::Encode {
                line: lines.line_number(),
                error,
            })?;
            // `encode` ends the line with `\n`; the last line may have had none.
            if !body[..span.end].ends_with(b"\n") {
                out.pop();
            }
            copied = span.end;
        }
        Ok(match out {
            None => Cow::Borrowed(body),
            Some(mut out) => {
                out.extend_from_slice(&body[copied..]);
                Cow::Owned(out)
            }
        })
    }
}
