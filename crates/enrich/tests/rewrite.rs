//! Enrichment of line-protocol batches against a MaxMind DB built here.
#![allow(clippy::unwrap_used)]

#[path = "support/mmdb.rs"]
mod mmdb;

use enrich::{CountryDb, EnrichConfig, EnrichError, Enricher};
use lineproto::LineError;
use mmdb::{MmdbWriter, Value};

/// NL for 203.0.113.0/24, JP for 2001:db8:1::/48, US (registered country
/// only) for 198.51.100.0/24, and a record without any country for
/// 192.0.2.0/24.
fn test_db() -> Vec<u8> {
    let mut w = MmdbWriter::default();
    w.country("203.0.113.0/24", "NL");
    w.country("2001:db8:1::/48", "JP");
    w.insert(
        "198.51.100.0/24",
        &Value::map([("registered_country", Value::place("US"))]),
    );
    w.insert("192.0.2.0/24", &Value::map([("city", Value::place("XX"))]));
    w.to_bytes()
}

fn enricher(config: &EnrichConfig) -> Enricher {
    let db = CountryDb::from_bytes(test_db(), "test.mmdb").unwrap();
    Enricher::with_countries(config, db).unwrap()
}

fn rewrite(e: &Enricher, body: &str) -> String {
    String::from_utf8(e.rewrite(body.as_bytes()).unwrap().into_owned()).unwrap()
}

fn errors(body: &str) -> Vec<LineError> {
    lineproto::parse_lines(body.as_bytes())
        .filter_map(Result::err)
        .collect()
}

#[test]
fn countries_are_looked_up_then_addresses_masked() {
    let e = enricher(&EnrichConfig::masking(&["client_ip"]));
    let out = rewrite(
        &e,
        "conn,client_ip=203.0.113.77 ms=1i 1\n\
         conn,client_ip=2001:db8:1:ff::9 ms=2i 2\n\
         conn,client_ip=198.51.100.5 ms=3i 3\n\
         conn,client_ip=192.0.2.44 ms=4i 4\n\
         conn,client_ip=10.9.8.7 ms=5i 5\n",
    );
    assert_eq!(
        out,
        "conn,client_ip=203.0.113.0,country=NL ms=1i 1\n\
         conn,client_ip=2001:db8:1::,country=JP ms=2i 2\n\
         conn,client_ip=198.51.100.0,country=US ms=3i 3\n\
         conn,client_ip=192.0.2.0 ms=4i 4\n\
         conn,client_ip=10.9.8.0 ms=5i 5\n",
        "registered_country is the fallback; a record without a country and an \
         address the database lacks get no country tag but are masked"
    );
}

#[test]
fn ports_brackets_zones_and_mapped_addresses() {
    let e = enricher(&EnrichConfig::masking(&["peer"]));
    let out = rewrite(
        &e,
        "c,peer=203.0.113.9:443 n=1i\n\
         c,peer=[2001:db8:1:2::3]:8443 n=2i\n\
         c,peer=[2001:db8:1::5] n=3i\n\
         c,peer=fe80::1:2%eth0 n=4i\n\
         c,peer=::ffff:203.0.113.200 n=5i\n\
         c,peer=203.0.113.1/32 n=6i\n",
    );
    assert_eq!(
        out,
        "c,peer=203.0.113.0,country=NL n=1i\n\
         c,peer=2001:db8:1::,country=JP n=2i\n\
         c,peer=2001:db8:1::,country=JP n=3i\n\
         c,peer=fe80:: n=4i\n\
         c,peer=203.0.113.0,country=NL n=5i\n\
         c,peer=203.0.113.0,country=NL n=6i\n"
    );
}

#[test]
fn values_that_are_not_one_address() {
    let e = enricher(&EnrichConfig::masking(&["peer"]));
    // Host names stay; addresses inside other text are masked, but such
    // a value gets no country.
    let out = rewrite(
        &e,
        "c,peer=example.org n=1i\n\
         c,peer=example.org:443 n=2i\n\
         c,peer=203.0.113.7\\,\\ 198.51.100.8 n=3i\n\
         c,peer=http://[2001:db8:1:2::3]:80/x n=4i\n\
         c,peer=proxy:203.0.113.7 n=5i\n\
         c,peer=unknown n=6i\n",
    );
    assert_eq!(
        out,
        "c,peer=example.org n=1i\n\
         c,peer=example.org:443 n=2i\n\
         c,peer=203.0.113.0\\,\\ 198.51.100.0 n=3i\n\
         c,peer=http://[2001:db8:1::]:80/x n=4i\n\
         c,peer=proxy:203.0.113.0 n=5i\n\
         c,peer=unknown n=6i\n"
    );
}

#[test]
fn other_tags_fields_and_escapes_survive() {
    let e = enricher(&EnrichConfig::masking(&["client_ip"]));
    let body = "net\\ conn,path=a\\ b\\,c\\=d,client_ip=203.0.113.7 msg=\"say \\\"hi\\\"\",ok=t,n=3i,u=4u 1700000000\n";
    let out = rewrite(&e, body);
    assert_eq!(
        out,
        "net\\ conn,path=a\\ b\\,c\\=d,client_ip=203.0.113.0,country=NL msg=\"say \\\"hi\\\"\",ok=true,n=3i,u=4u 1700000000\n"
    );
    let line = lineproto::parse_lines(out.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(line.tag("path"), Some("a b,c=d"));
}

#[test]
fn an_existing_country_tag_wins_and_the_first_listed_ip_tag_decides() {
    let e = enricher(&EnrichConfig::masking(&["client", "peer"]));
    let out = rewrite(
        &e,
        "c,country=DE,client=203.0.113.7 n=1i\n\
         c,peer=203.0.113.7,client=2001:db8:1::1 n=2i\n\
         c,peer=203.0.113.7,client=10.0.0.1 n=3i\n",
    );
    assert_eq!(
        out,
        "c,country=DE,client=203.0.113.0 n=1i\n\
         c,peer=203.0.113.0,client=2001:db8:1::,country=JP n=2i\n\
         c,peer=203.0.113.0,client=10.0.0.0 n=3i\n",
        "client is listed first, so its address decides even without a country"
    );
}

#[test]
fn country_tag_and_masks_are_configurable() {
    let mut config = EnrichConfig::masking(&["ip"]);
    config.country_tag = "geo".into();
    config.ipv4_mask = 16;
    config.ipv6_mask = 32;
    let e = enricher(&config);
    assert_eq!(
        rewrite(&e, "c,ip=203.0.113.7 n=1i\nc,ip=2001:db8:1:2::1 n=2i\n"),
        "c,ip=203.0.0.0,geo=NL n=1i\nc,ip=2001:db8::,geo=JP n=2i\n"
    );
}

#[test]
fn masking_alone_needs_no_database() {
    let e = Enricher::new(&EnrichConfig::masking(&["ip"])).unwrap();
    assert!(e.countries().is_none());
    assert_eq!(
        rewrite(&e, "c,ip=203.0.113.7 n=1i\n"),
        "c,ip=203.0.113.0 n=1i\n"
    );
}

#[test]
fn line_numbers_and_bad_lines_are_kept() {
    let e = enricher(&EnrichConfig::masking(&["ip"]));
    let body = "# a comment\r\n\
                \n\
                c,ip=203.0.113.7 n=1i 1\r\n\
                c,ip=203.0.113.8 n=oops\n\
                \x20\x20c,ip=203.0.113.9 s=\"two\nlines\" 2\n\
                c,ip=bad=value n=1i\n\
                c,ip=203.0.113.10 n=3i 3";
    let out = rewrite(&e, body);
    assert_eq!(
        out,
        "# a comment\r\n\
         \n\
         c,ip=203.0.113.0,country=NL n=1i 1\n\
         c,ip=203.0.113.8 n=oops\n\
         c,ip=203.0.113.0,country=NL s=\"two\nlines\" 2\n\
         c,ip=bad=value n=1i\n\
         c,ip=203.0.113.0,country=NL n=3i 3"
    );
    let before = errors(body);
    assert_eq!(before.len(), 2);
    assert_eq!(errors(&out), before, "same lines, columns and reasons");
    assert_eq!(before[0].line, 4);
    assert_eq!(before[1].line, 7);
}

#[test]
fn timestamps_stay_as_written() {
    let e = enricher(&EnrichConfig::masking(&["ip"]));
    // Seconds stay seconds: the store applies the batch's precision.
    assert_eq!(
        rewrite(&e, "c,ip=10.1.2.3 n=1i 1700000000\n"),
        "c,ip=10.1.2.0 n=1i 1700000000\n"
    );
}

#[test]
fn a_batch_without_changes_is_borrowed() {
    let e = enricher(&EnrichConfig::masking(&["ip"]));
    for body in [
        &b"c,other=203.0.113.7 n=1i\n"[..],
        b"c,ip=203.0.113.0,country=NL n=1i\n",
        b"not line protocol\n\xff\xfe",
        b"",
    ] {
        assert!(matches!(
            e.rewrite(body).unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}

#[test]
fn database_files_are_read_and_bad_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("countries.mmdb");
    std::fs::write(&path, test_db()).unwrap();
    let mut config = EnrichConfig::masking(&["ip"]);
    config.mmdb = Some(path.clone());
    let e = Enricher::new(&config).unwrap();
    assert_eq!(e.countries().unwrap().path(), path);
    assert_eq!(
        rewrite(&e, "c,ip=203.0.113.7 n=1i\n"),
        "c,ip=203.0.113.0,country=NL n=1i\n"
    );

    config.mmdb = Some(dir.path().join("missing.mmdb"));
    let err = Enricher::new(&config).unwrap_err();
    assert!(matches!(err, EnrichError::Mmdb { .. }));
    assert!(err.to_string().contains("missing.mmdb"), "{err}");

    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"not a database").unwrap();
    config.mmdb = Some(junk);
    let err = Enricher::new(&config).unwrap_err();
    assert!(err.to_string().contains("junk.mmdb"), "{err}");
}

#[test]
fn settings_are_checked_by_key() {
    let parse = |text: &str| toml::from_str::<EnrichConfig>(text);
    let config = parse("ip-tags = [\"a\"]\nmmdb = \"x.mmdb\"\ncountry-tag = \"cc\"\nipv4-mask = 16\nipv6-mask = 56").unwrap();
    assert_eq!(
        (
            config.country_tag.as_str(),
            config.ipv4_mask,
            config.ipv6_mask
        ),
        ("cc", 16, 56)
    );
    let err = parse("ip-tags = [\"a\"]\nipv4_mask = 16").unwrap_err();
    assert!(
        err.to_string().contains("unknown field `ipv4_mask`"),
        "{err}"
    );
    assert!(parse("mmdb = \"x\"")
        .unwrap_err()
        .to_string()
        .contains("missing field `ip-tags`"));

    for (text, key) in [
        ("ip-tags = []", "ip-tags"),
        ("ip-tags = [\"a\"]\nipv4-mask = 33", "ipv4-mask"),
        ("ip-tags = [\"a\"]\nipv6-mask = 129", "ipv6-mask"),
        ("ip-tags = [\"a\"]\ncountry-tag = \"a\"", "country-tag"),
        ("ip-tags = [\"a\"]\ncountry-tag = \"\"", "country-tag"),
    ] {
        let err = Enricher::new(&parse(text).unwrap()).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("{key}: ")),
            "{text}: {err}"
        );
    }
}
