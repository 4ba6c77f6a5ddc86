//! Property tests: `parse(encode(line)) == line` for lines full of characters
//! that need escaping, whole batches read back in order, and a parser that
//! never panics on arbitrary bytes.

use std::borrow::Cow;

use lineproto::{
    parse_lines, EncodeError, FieldValue, Line, LineError, TokenKind, MAX_TIMESTAMP_NANOS,
    MIN_TIMESTAMP_NANOS,
};
use proptest::prelude::*;

/// Characters that are special somewhere in line protocol, multi-byte UTF-8,
/// and letters and digits that look like parts of values.
const NAME_CHARS: &[char] = &[
    ',', '=', ' ', '\\', '"', '#', '\t', 'é', '☃', '😀', 'a', 'm', 'i', 'u', 't', 'e', 'E', 'f',
    'T', 'F', '0', '1', '9', '-', '+', '.',
];

/// 768 cases per property (about a second in a debug build); set
/// `PROPTEST_CASES` to search longer.
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            768
        },
        ..default
    }
}

fn name_char() -> impl Strategy<Value = char> {
    // A carriage return is rare so that most lines stay encodable whichever
    // way the encoder treats it (see `allowed_rejection`).
    prop_oneof![40 => prop::sample::select(NAME_CHARS), 1 => Just('\r')]
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(name_char(), 1..7).prop_map(String::from_iter)
}

fn string_value() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => name_char().prop_map(String::from),
        1 => Just("\n".to_owned()),
        1 => Just("\r\n".to_owned()),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn float() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as pf;
    prop_oneof![
        4 => pf::POSITIVE | pf::NEGATIVE | pf::NORMAL | pf::SUBNORMAL | pf::ZERO,
        1 => prop::sample::select(vec![
            0.0,
            -0.0,
            5e-324,
            -5e-324,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            1e21,
            1e-7,
            0.1,
            -1.0,
        ]),
        1 => (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
    ]
}

fn field_value() -> impl Strategy<Value = FieldValue<'static>> {
    prop_oneof![
        float().prop_map(FieldValue::Float),
        prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -10i64..10]
            .prop_map(FieldValue::Integer),
        prop_oneof![any::<u64>(), Just(u64::MAX), 0u64..10].prop_map(FieldValue::UInteger),
        any::<bool>().prop_map(FieldValue::Boolean),
        string_value().prop_map(|s| FieldValue::String(Cow::Owned(s))),
    ]
}

fn timestamp() -> impl Strategy<Value = Option<i64>> {
    prop::option::of(prop_oneof![
        MIN_TIMESTAMP_NANOS..=MAX_TIMESTAMP_NANOS,
        Just(MIN_TIMESTAMP_NANOS),
        Just(MAX_TIMESTAMP_NANOS),
        -2i64..=2,
    ])
}

fn line() -> impl Strategy<Value = Line<'static>> {
    (
        name(),
        prop::collection::vec((name(), name()), 0..4),
        prop::collection::vec((name(), field_value()), 1..5),
        timestamp(),
    )
        .prop_map(|(measurement, tags, fields, timestamp)| Line {
            measurement: Cow::Owned(measurement),
            tags: tags
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
                .collect(),
            fields: fields
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), v))
                .collect(),
            timestamp,
        })
}

fn names<'l>(line: &'l Line<'_>) -> Vec<(TokenKind, &'l str)> {
    let mut out = vec![(TokenKind::Measurement, line.measurement.as_ref())];
    for (k, v) in &line.tags {
        out.push((TokenKind::TagKey, k.as_ref()));
        out.push((TokenKind::TagValue, v.as_ref()));
    }
    for (k, _) in &line.fields {
        out.push((TokenKind::FieldKey, k.as_ref()));
    }
    out
}

/// The errors the encoder must return for `line` (any one of them when
/// several apply); empty when the line must encode.
fn required_rejections(line: &Line<'_>) -> Vec<EncodeError> {
    let mut why = Vec::new();
    for (kind, text) in names(line) {
        if text.is_empty() {
            why.push(EncodeError::Empty(kind));
        }
        if text.contains('\n') {
            why.push(EncodeError::Newline(kind, text.to_owned()));
        }
    }
    if line.measurement.starts_with('#') || line.measurement.starts_with('\t') {
        why.push(EncodeError::MeasurementStart(line.measurement.to_string()));
    }
    if line.fields.is_empty() {
        why.push(EncodeError::NoFields);
    }
    for (k, v) in &line.fields {
        if let FieldValue::Float(x) = v {
            if !x.is_finite() {
                why.push(EncodeError::NonFiniteFloat(k.to_string(), *x));
            }
        }
    }
    if let Some(ts) = line.timestamp {
        if !(MIN_TIMESTAMP_NANOS..=MAX_TIMESTAMP_NANOS).contains(&ts) {
            why.push(EncodeError::TimestampOutOfRange(ts));
        }
    }
    why
}

/// Whether `e` is one of `required`, compared by variant and token kind
/// (payload texts are the encoder's to word).
fn is_one_of(e: &EncodeError, required: &[EncodeError]) -> bool {
    required.iter().any(|r| match (r, e) {
        (EncodeError::Empty(a), EncodeError::Empty(b)) => a == b,
        (EncodeError::Newline(a, _), EncodeError::Newline(b, _)) => a == b,
        (EncodeError::MeasurementStart(_), EncodeError::MeasurementStart(_)) => true,
        (EncodeError::NoFields, EncodeError::NoFields) => true,
        (EncodeError::NonFiniteFloat(a, _), EncodeError::NonFiniteFloat(b, _)) => a == b,
        (EncodeError::TimestampOutOfRange(a), EncodeError::TimestampOutOfRange(b)) => a == b,
        _ => false,
    })
}

/// A lone '\r' in a name is left to the encoder: it may write it (the parser
/// reads it back) or call it a line break.
fn allowed_rejection(line: &Line<'_>, e: &EncodeError) -> bool {
    matches!(e, EncodeError::Newline(kind, _)
        if names(line).iter().any(|(k, text)| k == kind && text.contains('\r')))
}

/// Equal as lines, and floats equal bit for bit (so -0.0 stays -0.0).
fn same_line(a: &Line<'_>, b: &Line<'_>) -> bool {
    a == b
        && a.fields
            .iter()
            .zip(&b.fields)
            .all(|((_, x), (_, y))| match (x, y) {
                (FieldValue::Float(x), FieldValue::Float(y)) => x.to_bits() == y.to_bits(),
                _ => true,
            })
}

/// Encodes `line`; `None` when the encoder rejected it as it must or may.
fn encode_checked(line: &Line<'_>) -> Result<Option<Vec<u8>>, TestCaseError> {
    let required = required_rejections(line);
    let mut out = Vec::new();
    match line.encode(&mut out) {
        Ok(()) => {
            prop_assert!(
                required.is_empty(),
                "encoder accepted {line:?} as {:?}; expected one of {required:?}",
                String::from_utf8_lossy(&out)
            );
            prop_assert_eq!(out.last(), Some(&b'\n'));
            Ok(Some(out))
        }
        Err(e) if required.is_empty() => {
            prop_assert!(
                allowed_rejection(line, &e),
                "encoder rejected {line:?}: {e:?}"
            );
            Ok(None)
        }
        Err(e) => {
            prop_assert!(
                is_one_of(&e, &required) || allowed_rejection(line, &e),
                "encoder rejected {line:?} with {e:?}; expected one of {required:?}"
            );
            Ok(None)
        }
    }
}

fn check_round_trip(line: &Line<'_>) -> Result<(), TestCaseError> {
    let Some(text) = encode_checked(line)? else {
        return Ok(());
    };
    let items: Vec<_> = parse_lines(&text).collect();
    let shown = String::from_utf8_lossy(&text);
    prop_assert_eq!(
        items.len(),
        1,
        "encoded {:?} of {:?} gave {:?}",
        shown,
        line,
        items
    );
    match &items[0] {
        Ok(back) => prop_assert!(
            same_line(back, line),
            "encoded {shown:?}\n  parsed {back:?}\nexpected {line:?}"
        ),
        Err(e) => prop_assert!(false, "encoded {shown:?} of {line:?} does not parse: {e}"),
    }
    Ok(())
}

/// Checks the invariants every parse of `input` must hold, including that
/// every parsed line survives encode → parse.
fn check_any_input(input: &[u8]) -> Result<(), TestCaseError> {
    let newlines = input.iter().filter(|&&b| b == b'\n').count();
    let physical: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let items: Vec<Result<Line<'_>, LineError>> = parse_lines(input).collect();
    prop_assert!(
        items.len() <= newlines + 1,
        "{} items from {} newlines",
        items.len(),
        newlines
    );
    for item in &items {
        match item {
            Ok(line) => {
                let mut out = Vec::new();
                let encoded = line.encode(&mut out);
                prop_assert!(
                    encoded.is_ok(),
                    "parsed line {line:?} does not encode: {encoded:?}"
                );
                let back: Vec<_> = parse_lines(&out).collect();
                prop_assert_eq!(
                    back.len(),
                    1,
                    "re-encoded {:?}",
                    String::from_utf8_lossy(&out)
                );
                prop_assert_eq!(
                    back[0].as_ref().ok(),
                    Some(line),
                    "re-encoded {:?}",
                    String::from_utf8_lossy(&out)
                );
            }
            Err(e) => {
                let _ = e.to_string();
                prop_assert!((1..=e.line).contains(&e.first_line), "{e:?}");
                prop_assert!(e.line <= newlines + 1, "{e:?} with {newlines} newlines");
                let len = physical[e.line - 1].len();
                prop_assert!(
                    (1..=len + 1).contains(&e.column),
                    "{e:?}: physical line is {len} bytes"
                );
            }
        }
    }
    Ok(())
}

/// Bytes drawn mostly from line protocol's special characters.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    const BYTES: &[u8] = b"m,=\\ \"#\t\r\n\n\nfiuetTFE1290.-+ ";
    let byte = prop_oneof![
        12 => prop::sample::select(BYTES),
        1 => prop::sample::select(vec![0xC3u8, 0xA9, 0xE2, 0x98, 0x83, 0xFF, 0x80, 0x00]),
    ];
    prop::collection::vec(byte, 0..96)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn encode_then_parse_gives_the_line_back(line in line()) {
        check_round_trip(&line)?;
    }

    #[test]
    fn encoder_rejects_what_it_must(
        line in line(),
        spoil in 0usize..6,
        at in any::<prop::sample::Index>(),
    ) {
        let mut line = line;
        match spoil {
            0 => line.measurement = Cow::Owned(String::new()),
            1 => line.measurement = Cow::Owned(format!("{}\n", line.measurement)),
            2 => line.measurement = Cow::Owned(format!("#{}", line.measurement)),
            3 => {
                let i = at.index(line.fields.len());
                line.fields[i].0 = Cow::Owned(format!("x\n{}", line.fields[i].0));
            }
            4 if !line.tags.is_empty() => {
                let i = at.index(line.tags.len());
                line.tags[i].1 = Cow::Owned(String::new());
            }
            _ => {
                let i = at.index(line.fields.len());
                line.fields[i].1 = FieldValue::Float(f64::NAN);
            }
        }
        prop_assert!(!required_rejections(&line).is_empty());
        prop_assert_eq!(encode_checked(&line)?, None);
    }

    #[test]
    fn batches_read_back_in_order(
        lines in prop::collection::vec((line(), 0usize..4, any::<bool>()), 1..8),
    ) {
        let mut batch = Vec::new();
        let mut expected = Vec::new();
        for (line, junk, crlf) in &lines {
            // Blank and comment lines between the lines produce no items.
            batch.extend_from_slice(match junk {
                0 => &b""[..],
                1 => b"\n",
                2 => b"# comment, with = and \" and \\\n",
                _ => b" \t \r\n",
            });
            if let Some(mut text) = encode_checked(line)? {
                if *crlf {
                    text.pop();
                    text.extend_from_slice(b"\r\n");
                }
                batch.extend_from_slice(&text);
                expected.push(line);
            }
        }
        let items: Vec<_> = parse_lines(&batch).collect();
        let shown = String::from_utf8_lossy(&batch);
        prop_assert_eq!(items.len(), expected.len(), "batch {:?}: {:?}", shown, items);
        for (i, (item, want)) in items.iter().zip(&expected).enumerate() {
            match item {
                Ok(got) => prop_assert!(same_line(got, want), "batch {shown:?} item {i}: {got:?} != {want:?}"),
                Err(e) => prop_assert!(false, "batch {shown:?} item {i}: {e}"),
            }
        }
    }

    /// Whatever a bad line holds (bar a quote that opens a string value), the
    /// good line after it is read.
    #[test]
    fn a_bad_line_never_hides_the_next_one(
        junk in prop::collection::vec(any::<u8>().prop_filter("one line, no quotes", |b| *b != b'\n' && *b != b'"'), 0..64),
        line in line(),
    ) {
        if let Some(good) = encode_checked(&line)? {
            let mut input = junk.clone();
            input.push(b'\n');
            input.extend_from_slice(&good);
            let items: Vec<_> = parse_lines(&input).collect();
            let last = items.last().cloned();
            prop_assert!(
                matches!(&last, Some(Ok(l)) if same_line(l, &line)),
                "junk {:?} then {:?}: {:?}", String::from_utf8_lossy(&junk), String::from_utf8_lossy(&good), items
            );
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256)) {
        check_any_input(&input)?;
    }

    #[test]
    fn hostile_bytes_never_panic(input in hostile_bytes()) {
        check_any_input(&input)?;
    }

    #[test]
    fn mangled_encodings_never_panic(line in line(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        // An encoded line with one byte replaced reaches deep into the parser.
        if let Ok(mut text) = line.encode_to_string().map(String::into_bytes) {
            let i = cut.index(text.len());
            text[i] = byte;
            check_any_input(&text)?;
        }
    }
}
