//! Parses arbitrary bytes with several option sets: the parser must never
//! panic, and every line it accepts must survive encode → parse unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lineproto::{parse_lines, ParseOptions, Precision};

const OPTIONS: [ParseOptions; 4] = [
    ParseOptions {
        precision: Precision::Nanoseconds,
        max_line_bytes: ParseOptions::DEFAULT_MAX_LINE_BYTES,
        max_token_bytes: ParseOptions::DEFAULT_MAX_TOKEN_BYTES,
    },
    ParseOptions {
        precision: Precision::Seconds,
        max_line_bytes: 64,
        max_token_bytes: 16,
    },
    ParseOptions {
        precision: Precision::Auto,
        max_line_bytes: 256,
        max_token_bytes: 8,
    },
    ParseOptions {
        precision: Precision::Hours,
        max_line_bytes: 1,
        max_token_bytes: 1,
    },
];

fuzz_target!(|data: &[u8]| {
    let newlines = data.iter().filter(|&&b| b == b'\n').count();
    for opts in OPTIONS {
        let mut items = 0;
        for item in opts.parse(data) {
            items += 1;
            let line = match item {
                Ok(line) => line,
                Err(e) => {
                    let _ = e.to_string();
                    assert!(e.first_line >= 1 && e.first_line <= e.line, "{e:?}");
                    assert!(e.line <= newlines + 1 && e.column >= 1, "{e:?}");
                    continue;
                }
            };
            if let Some(ts) = line.timestamp {
                assert!(
                    (lineproto::MIN_TIMESTAMP_NANOS..=lineproto::MAX_TIMESTAMP_NANOS).contains(&ts)
                );
            }
            let text = match line.encode_to_string() {
                Ok(text) => text,
                Err(e) => panic!("parsed line {line:?} (options {opts:?}) does not encode: {e}"),
            };
            // Timestamps are nanoseconds once parsed, so read back at ns.
            let back: Vec<_> = parse_lines(text.as_bytes()).collect();
            assert_eq!(back.len(), 1, "encoded {text:?} of {line:?}: {back:?}");
            match &back[0] {
                // FieldValue::Float compares with ==, so -0.0 equals 0.0; the
                // parser never yields NaN.
                Ok(again) => assert_eq!(again, &line, "encoded {text:?}"),
                Err(e) => panic!("encoded {text:?} of {line:?} does not parse: {e}"),
            }
        }
        assert!(
            items <= newlines + 1,
            "{items} items from {newlines} newlines"
        );
    }
});
