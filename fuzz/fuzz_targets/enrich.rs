//! Rewrites arbitrary bytes with IP-tag masking: the rewrite must never
//! fail or panic, must keep every line break, must leave the parser's
//! errors (line, column, reason) as they were, and must leave no address
//! in an IP tag that masking would still change.

#![no_main]

use enrich::{mask_value, EnrichConfig, Enricher, Mask};
use libfuzzer_sys::fuzz_target;
use lineproto::{parse_lines, LineError};

fn errors(data: &[u8]) -> Vec<LineError> {
    parse_lines(data).filter_map(Result::err).collect()
}

fuzz_target!(|data: &[u8]| {
    let enricher = Enricher::new(&EnrichConfig::masking(&["ip", "peer"])).expect("settings");
    let out = match enricher.rewrite(data) {
        Ok(out) => out,
        Err(e) => panic!("rewrite of {data:?} failed: {e}"),
    };
    let breaks = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
    assert_eq!(breaks(&out), breaks(data), "line breaks of {data:?}");
    assert_eq!(errors(&out), errors(data), "errors of {data:?}");
    for line in parse_lines(&out).flatten() {
        for (key, value) in &line.tags {
            if key == "ip" || key == "peer" {
                assert_eq!(mask_value(value, Mask::default()), value.as_ref());
            }
        }
    }
});
