//! Parser cases written from the line-protocol specification (see the crate
//! docs and DESIGN.md), one small test per rule. Groups are headed by the
//! rule of the specification they cover.

use std::borrow::Cow;

use lineproto::{
    parse_lines, ErrorKind, FieldValue, Line, LineError, ParseOptions, Precision, TokenKind,
    MAX_TIMESTAMP_NANOS, MIN_TIMESTAMP_NANOS,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn parse_all(input: &[u8]) -> Vec<Result<Line<'_>, LineError>> {
    parse_lines(input).collect()
}

/// Parses `input`, which must hold exactly one line, and returns it.
#[track_caller]
fn ok(input: &str) -> Line<'_> {
    ok_with(ParseOptions::default(), input.as_bytes())
}

#[track_caller]
fn ok_with(opts: ParseOptions, input: &[u8]) -> Line<'_> {
    let mut items: Vec<_> = opts.parse(input).collect();
    assert_eq!(
        items.len(),
        1,
        "input {:?}: expected exactly one item, got {items:?}",
        String::from_utf8_lossy(input)
    );
    match items.remove(0) {
        Ok(line) => line,
        Err(e) => panic!(
            "input {:?}: expected a parsed line, got error `{e}` ({e:?})",
            String::from_utf8_lossy(input)
        ),
    }
}

/// Parses `input`, which must hold exactly one (bad) line, and returns its error.
#[track_caller]
fn err(input: &str) -> LineError {
    err_with(ParseOptions::default(), input.as_bytes())
}

#[track_caller]
fn err_with(opts: ParseOptions, input: &[u8]) -> LineError {
    let mut items: Vec<_> = opts.parse(input).collect();
    assert_eq!(
        items.len(),
        1,
        "input {:?}: expected exactly one item, got {items:?}",
        String::from_utf8_lossy(input)
    );
    match items.remove(0) {
        Ok(line) => panic!(
            "input {:?}: expected an error, got line {line:?}",
            String::from_utf8_lossy(input)
        ),
        Err(e) => e,
    }
}

/// The single field value of `m f=<value>`.
#[track_caller]
fn value(v: &str) -> FieldValue<'static> {
    let input = format!("m f={v}");
    let line = ok(&input);
    assert_eq!(line.fields.len(), 1, "input {input:?}: {line:?}");
    assert_eq!(line.fields[0].0, "f", "input {input:?}");
    line.fields[0].1.clone().into_owned()
}

/// The error kind of `m f=<value>`.
#[track_caller]
fn value_err(v: &str) -> ErrorKind {
    err(&format!("m f={v}")).kind
}

#[track_caller]
fn float(v: &str) -> f64 {
    match value(v) {
        FieldValue::Float(x) => x,
        other => panic!("value {v:?}: expected a float, got {other:?}"),
    }
}

fn opts(precision: Precision) -> ParseOptions {
    ParseOptions {
        precision,
        ..ParseOptions::default()
    }
}

fn limits(max_line_bytes: usize, max_token_bytes: usize) -> ParseOptions {
    ParseOptions {
        max_line_bytes,
        max_token_bytes,
        ..ParseOptions::default()
    }
}

/// The timestamp of `m f=1 <ts>` parsed at `precision`.
#[track_caller]
fn ts_at(precision: Precision, ts: &str) -> Option<i64> {
    let input = format!("m f=1 {ts}");
    ok_with(opts(precision), input.as_bytes()).timestamp
}

#[track_caller]
fn ts_err_at(precision: Precision, ts: &str) -> ErrorKind {
    let input = format!("m f=1 {ts}");
    err_with(opts(precision), input.as_bytes()).kind
}

#[allow(clippy::ptr_arg)] // it is the Cow itself that is checked
fn is_borrowed(s: &Cow<'_, str>) -> bool {
    matches!(s, Cow::Borrowed(_))
}

// ---------------------------------------------------------------------------
// Format: `measurement[,tagk=tagv…] fieldk=fieldv[,…] [timestamp]`
// ---------------------------------------------------------------------------

#[test]
fn full_line_with_tags_fields_and_timestamp() {
    let line = ok(
        r#"cpu,host=a,region=eu-west usage=0.5,cores=8i,total=9u,up=t,name="x y" 1700000000000000000"#,
    );
    assert_eq!(line.measurement, "cpu");
    assert_eq!(
        line.tags,
        vec![
            (Cow::from("host"), Cow::from("a")),
            (Cow::from("region"), Cow::from("eu-west"))
        ]
    );
    assert_eq!(
        line.fields,
        vec![
            (Cow::from("usage"), FieldValue::Float(0.5)),
            (Cow::from("cores"), FieldValue::Integer(8)),
            (Cow::from("total"), FieldValue::UInteger(9)),
            (Cow::from("up"), FieldValue::Boolean(true)),
            (Cow::from("name"), FieldValue::String(Cow::from("x y"))),
        ]
    );
    assert_eq!(line.timestamp, Some(1_700_000_000_000_000_000));
}

#[test]
fn measurement_and_one_field_only() {
    let line = ok("m f=1");
    assert_eq!(line, Line::new("m").with_field("f", 1.0));
    assert_eq!(line.timestamp, None);
    assert!(line.tags.is_empty());
}

#[test]
fn repeated_spaces_between_sections() {
    let line = ok("m,t=v    f=1     123");
    assert_eq!(
        line,
        Line::new("m")
            .with_tag("t", "v")
            .with_field("f", 1.0)
            .with_timestamp(123)
    );
}

#[test]
fn trailing_spaces_after_timestamp() {
    assert_eq!(ok("m f=1 123   ").timestamp, Some(123));
}

#[test]
fn trailing_spaces_after_fields_mean_no_timestamp() {
    let line = ok("m f=1    ");
    assert_eq!(line.timestamp, None);
    assert_eq!(line.fields, vec![(Cow::from("f"), FieldValue::Float(1.0))]);
}

#[test]
fn leading_spaces_and_tabs_are_skipped() {
    let line = ok(" \t \tm,t=v f=1i");
    assert_eq!(
        line,
        Line::new("m").with_tag("t", "v").with_field("f", 1i64)
    );
}

#[test]
fn last_line_needs_no_newline() {
    let items = parse_all(b"m f=1\nm f=2");
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[1].as_ref().unwrap().fields[0].1,
        FieldValue::Float(2.0)
    );
}

#[test]
fn empty_input_yields_nothing() {
    assert_eq!(parse_all(b"").len(), 0);
}

#[test]
fn blank_lines_yield_nothing() {
    assert_eq!(parse_all(b"\n\n  \n\t\t\n \t \r\n\r\n   ").len(), 0);
}

#[test]
fn comment_lines_yield_nothing() {
    let items =
        parse_all(b"# a comment\nm f=1\n   # indented comment, with = and \\\n\t# tabbed\n#");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap().measurement, "m");
}

#[test]
fn quote_in_comment_does_not_open_a_string() {
    let items = parse_all(b"# say \"hi\nm f=1\nm f=2\n");
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items.iter().all(Result::is_ok), "{items:?}");
}

#[test]
fn hash_inside_a_line_is_not_a_comment() {
    let line = ok("m#1,t=#x f#=1");
    assert_eq!(line.measurement, "m#1");
    assert_eq!(line.tag("t"), Some("#x"));
    assert_eq!(line.field("f#"), Some(&FieldValue::Float(1.0)));
}

#[test]
fn many_fields_keep_their_order() {
    let line = ok(r#"m z=1i,a=2i,m="3",b=f"#);
    let keys: Vec<&str> = line.fields.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys, ["z", "a", "m", "b"]);
}

#[test]
fn unicode_names_and_values() {
    let line = ok("温度,地点=東京 値=1.5,ü=\"☃😀\"");
    assert_eq!(line.measurement, "温度");
    assert_eq!(line.tag("地点"), Some("東京"));
    assert_eq!(line.field("値"), Some(&FieldValue::Float(1.5)));
    assert_eq!(line.field("ü"), Some(&FieldValue::String(Cow::from("☃😀"))));
}

#[test]
fn emoji_measurement_and_tag() {
    let line = ok("😀,☃=é f=1i");
    assert_eq!(line.measurement, "😀");
    assert_eq!(line.tags, vec![(Cow::from("☃"), Cow::from("é"))]);
}

// ---------------------------------------------------------------------------
// Line ends: '\n', "\r\n"
// ---------------------------------------------------------------------------

#[test]
fn crlf_batch() {
    let items = parse_all(b"m,t=a f=1 1\r\nm,t=b f=2i 2\r\nm,t=c s=\"x\"\r\nm,t=d f=t\r\n");
    assert_eq!(items.len(), 4, "{items:?}");
    let lines: Vec<_> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        lines[0],
        Line::new("m")
            .with_tag("t", "a")
            .with_field("f", 1.0)
            .with_timestamp(1)
    );
    assert_eq!(
        lines[1],
        Line::new("m")
            .with_tag("t", "b")
            .with_field("f", 2i64)
            .with_timestamp(2)
    );
    assert_eq!(
        lines[2],
        Line::new("m").with_tag("t", "c").with_field("s", "x")
    );
    assert_eq!(
        lines[3],
        Line::new("m").with_tag("t", "d").with_field("f", true)
    );
}

#[test]
fn crlf_after_field_value_without_timestamp() {
    let items = parse_all(b"m f=1.5\r\nm f=2u\r\n");
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].as_ref().unwrap().fields[0].1,
        FieldValue::Float(1.5)
    );
    assert_eq!(
        items[1].as_ref().unwrap().fields[0].1,
        FieldValue::UInteger(2)
    );
}

#[test]
fn crlf_with_trailing_spaces() {
    assert_eq!(ok("m f=1 42  \r\n").timestamp, Some(42));
}

// ---------------------------------------------------------------------------
// Escapes in names
// ---------------------------------------------------------------------------

#[test]
fn measurement_escapes() {
    let line = ok(r"my\,meas\ ure\\x f=1");
    assert_eq!(line.measurement, r"my,meas ure\x");
}

#[test]
fn measurement_escaped_backslash_before_separator() {
    // `\\` is one backslash, then the space separates.
    assert_eq!(ok(r"m\\ f=1").measurement, r"m\");
    assert_eq!(ok(r"m\\\ x f=1").measurement, r"m\ x");
}

#[test]
fn measurement_keeps_backslash_equals() {
    assert_eq!(ok(r"a\=b f=1").measurement, r"a\=b");
}

#[test]
fn measurement_keeps_unknown_escape() {
    assert_eq!(ok(r"a\nb\tc f=1").measurement, r"a\nb\tc");
}

#[test]
fn bare_equals_in_measurement() {
    let line = ok("a=b,t=1 f=1");
    assert_eq!(line.measurement, "a=b");
    assert_eq!(line.tags, vec![(Cow::from("t"), Cow::from("1"))]);
}

#[test]
fn tag_key_and_value_escapes() {
    let line = ok(r"m,k\,1\ x\=y\\z=v\,1\ x\=y\\z f=1");
    assert_eq!(
        line.tags,
        vec![(Cow::from(r"k,1 x=y\z"), Cow::from(r"v,1 x=y\z"))]
    );
}

#[test]
fn field_key_escapes() {
    let line = ok(r"m f\,1\ x\=y\\z=1i");
    assert_eq!(
        line.fields,
        vec![(Cow::from(r"f,1 x=y\z"), FieldValue::Integer(1))]
    );
}

#[test]
fn tag_value_keeps_unknown_escape() {
    let line = ok(r"m,t=a\nb f=1");
    assert_eq!(line.tag("t"), Some(r"a\nb"));
    assert_eq!(line.tag("t").unwrap().len(), 4);
}

#[test]
fn field_key_keeps_unknown_escape() {
    assert_eq!(ok(r"m f\x=1").fields[0].0, r"f\x");
}

#[test]
fn escaped_space_in_tag_value_then_fields() {
    let line = ok(r"m,host=my\ host,dc=a\,b value=1 5");
    assert_eq!(line.tag("host"), Some("my host"));
    assert_eq!(line.tag("dc"), Some("a,b"));
    assert_eq!(line.timestamp, Some(5));
}

#[test]
fn lone_backslash_in_each_name() {
    for (input, kind) in [
        (r"m\", TokenKind::Measurement),
        (r"m,t\", TokenKind::TagKey),
        (r"m,t=v\", TokenKind::TagValue),
        (r"m f\", TokenKind::FieldKey),
    ] {
        let e = err(input);
        assert_eq!(e.kind, ErrorKind::LoneBackslash(kind), "input {input:?}");
    }
}

#[test]
fn lone_backslash_before_newline_does_not_join_lines() {
    let items = parse_all(b"m,t=v\\\nm f=1\n");
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap_err().kind,
        ErrorKind::LoneBackslash(TokenKind::TagValue)
    );
    assert_eq!(items[1].as_ref().unwrap().measurement, "m");
}

// ---------------------------------------------------------------------------
// Structural errors
// ---------------------------------------------------------------------------

#[test]
fn unescaped_equals_in_tag_value() {
    let e = err("m,t=a=b f=1");
    assert!(
        matches!(e.kind, ErrorKind::UnescapedEqualsInTagValue(_)),
        "{e:?}"
    );
}

#[test]
fn missing_measurement() {
    assert_eq!(err(",t=v f=1").kind, ErrorKind::MissingMeasurement);
}

#[test]
fn missing_tag_key() {
    assert_eq!(err("m,=v f=1").kind, ErrorKind::MissingTagKey);
}

#[test]
fn missing_tag_key_after_trailing_comma() {
    assert_eq!(err("m,t=v, f=1").kind, ErrorKind::MissingTagKey);
}

#[test]
fn missing_tag_equals() {
    assert_eq!(err("m,t f=1").kind, ErrorKind::MissingTagEquals("t".into()));
}

#[test]
fn missing_tag_value() {
    assert_eq!(err("m,t= f=1").kind, ErrorKind::MissingTagValue("t".into()));
    assert_eq!(
        err("m,t=,u=v f=1").kind,
        ErrorKind::MissingTagValue("t".into())
    );
}

#[test]
fn missing_fields_after_measurement() {
    assert_eq!(err("m").kind, ErrorKind::MissingFields);
    assert_eq!(err("m   ").kind, ErrorKind::MissingFields);
}

#[test]
fn missing_fields_after_tags() {
    let e = err("m,t=v");
    assert_eq!(e.kind, ErrorKind::MissingFields);
    assert_eq!((e.line, e.column, e.first_line), (1, 6, 1));
}

#[test]
fn missing_field_equals() {
    assert_eq!(err("m f").kind, ErrorKind::MissingFieldEquals("f".into()));
}

#[test]
fn missing_field_value() {
    assert_eq!(err("m f=").kind, ErrorKind::MissingFieldValue("f".into()));
    assert_eq!(
        err("m f=,g=1").kind,
        ErrorKind::MissingFieldValue("f".into())
    );
}

#[test]
fn missing_field_key() {
    assert_eq!(err("m f=1,").kind, ErrorKind::MissingFieldKey);
    assert_eq!(err("m f=1,=2").kind, ErrorKind::MissingFieldKey);
}

// ---------------------------------------------------------------------------
// Zero copy: tokens borrow unless they contain an escape
// ---------------------------------------------------------------------------

#[test]
fn plain_tokens_borrow() {
    let line = ok(r#"cpu,host=a f=1,s="plain""#);
    assert!(is_borrowed(&line.measurement));
    assert!(is_borrowed(&line.tags[0].0));
    assert!(is_borrowed(&line.tags[0].1));
    assert!(is_borrowed(&line.fields[0].0));
    assert!(is_borrowed(&line.fields[1].0));
    assert!(matches!(
        line.fields[1].1,
        FieldValue::String(Cow::Borrowed("plain"))
    ));
}

#[test]
fn escaped_tokens_are_owned_and_the_rest_still_borrow() {
    let line = ok(r#"c\ pu,ho\=st=a\,b,plain=v f\ 1=1,s="a\"b",t="x""#);
    assert!(matches!(&line.measurement, Cow::Owned(s) if s == "c pu"));
    assert!(matches!(&line.tags[0].0, Cow::Owned(s) if s == "ho=st"));
    assert!(matches!(&line.tags[0].1, Cow::Owned(s) if s == "a,b"));
    assert!(is_borrowed(&line.tags[1].0));
    assert!(is_borrowed(&line.tags[1].1));
    assert!(matches!(&line.fields[0].0, Cow::Owned(s) if s == "f 1"));
    assert!(matches!(&line.fields[1].1, FieldValue::String(Cow::Owned(s)) if s == "a\"b"));
    assert!(matches!(
        &line.fields[2].1,
        FieldValue::String(Cow::Borrowed("x"))
    ));
}

/// Which of `tokens` (name, value, expected text) are not borrowed with the
/// expected text.
fn not_borrowed<'t>(tokens: &[(&'t str, &Cow<'_, str>, &str)]) -> Vec<(&'t str, String)> {
    tokens
        .iter()
        .filter(|(_, tok, want)| !matches!(tok, Cow::Borrowed(s) if s == want))
        .map(|(name, tok, _)| {
            let how = if matches!(tok, Cow::Owned(_)) {
                "Owned"
            } else {
                "Borrowed"
            };
            (*name, format!("{how}({tok:?})"))
        })
        .collect()
}

#[test]
fn unknown_backslash_sequence_in_tag_value_is_no_escape_and_borrows() {
    let line = ok(r"m,t=a\nb f=1");
    let wrong = not_borrowed(&[("tag value", &line.tags[0].1, r"a\nb")]);
    assert!(wrong.is_empty(), "expected Cow::Borrowed: {wrong:?}");
}

#[test]
fn unknown_backslash_sequence_in_names_is_no_escape_and_borrows() {
    let line = ok(r"a\=b,k\x=v f\y=1");
    let wrong = not_borrowed(&[
        ("measurement", &line.measurement, r"a\=b"),
        ("tag key", &line.tags[0].0, r"k\x"),
        ("field key", &line.fields[0].0, r"f\y"),
    ]);
    assert!(wrong.is_empty(), "expected Cow::Borrowed: {wrong:?}");
}

#[test]
fn unknown_backslash_sequence_in_string_is_no_escape_and_borrows() {
    let line = ok(r#"m s="a\nb""#);
    let FieldValue::String(s) = &line.fields[0].1 else {
        panic!("not a string: {line:?}");
    };
    let wrong = not_borrowed(&[("string value", s, r"a\nb")]);
    assert!(wrong.is_empty(), "expected Cow::Borrowed: {wrong:?}");
}

// ---------------------------------------------------------------------------
// String field values
// ---------------------------------------------------------------------------

#[test]
fn string_with_separators_inside() {
    assert_eq!(
        value(r#""a, b=c d""#),
        FieldValue::String("a, b=c d".into())
    );
}

#[test]
fn string_unescapes_quote_and_backslash() {
    assert_eq!(value(r#""a\"b\\c""#), FieldValue::String(r#"a"b\c"#.into()));
}

#[test]
fn string_keeps_other_backslashes() {
    assert_eq!(
        value(r#""a\nb\t\,""#),
        FieldValue::String(r"a\nb\t\,".into())
    );
}

#[test]
fn string_ending_in_escaped_backslash() {
    assert_eq!(value(r#""a\\""#), FieldValue::String(r"a\".into()));
}

#[test]
fn empty_string() {
    assert_eq!(value(r#""""#), FieldValue::String("".into()));
}

#[test]
fn string_followed_by_more_fields() {
    let line = ok(r#"m s="x,y",n=1i 7"#);
    assert_eq!(
        line,
        Line::new("m")
            .with_field("s", "x,y")
            .with_field("n", 1i64)
            .with_timestamp(7)
    );
}

#[test]
fn raw_newline_belongs_to_string() {
    let items = parse_all(b"m s=\"line1\nline2\" 5\nm f=2");
    assert_eq!(items.len(), 2, "{items:?}");
    let first = items[0].as_ref().unwrap();
    assert_eq!(
        first.field("s"),
        Some(&FieldValue::String("line1\nline2".into()))
    );
    assert_eq!(first.timestamp, Some(5));
    assert_eq!(
        items[1].as_ref().unwrap().fields[0].1,
        FieldValue::Float(2.0)
    );
}

#[test]
fn crlf_inside_string_is_kept() {
    let items = parse_all(b"m s=\"a\r\nb\"\r\nm f=1\r\n");
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap().field("s"),
        Some(&FieldValue::String("a\r\nb".into()))
    );
}

#[test]
fn hash_after_newline_in_string_is_not_a_comment() {
    let items = parse_all(b"m s=\"a\n# not a comment\" 1\nm f=1");
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap().field("s"),
        Some(&FieldValue::String("a\n# not a comment".into()))
    );
}

#[test]
fn unterminated_string_swallows_the_rest() {
    let items = parse_all(b"m f=1\nm s=\"abc\nm f=2\nm f=3\n");
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].is_ok());
    let e = items[1].as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnterminatedString);
    assert_eq!(e.first_line, 2);
}

#[test]
fn escaped_closing_quote_leaves_string_unterminated() {
    let items = parse_all(b"m s=\"a\\\"\nm f=2");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap_err().kind,
        ErrorKind::UnterminatedString
    );
}

#[test]
fn text_right_after_closing_quote() {
    // error.rs: text after a field value that is neither ',', a space nor the line end.
    let e = err(r#"m s="abc"x,g=1"#);
    assert!(matches!(e.kind, ErrorKind::TextAfterFieldValue(_)), "{e:?}");
}

// ---------------------------------------------------------------------------
// Integers and unsigned integers
// ---------------------------------------------------------------------------

#[test]
fn integers() {
    assert_eq!(value("123i"), FieldValue::Integer(123));
    assert_eq!(value("-123i"), FieldValue::Integer(-123));
    assert_eq!(value("0i"), FieldValue::Integer(0));
}

#[test]
fn integer_bounds() {
    assert_eq!(value("9223372036854775807i"), FieldValue::Integer(i64::MAX));
    assert_eq!(
        value("-9223372036854775808i"),
        FieldValue::Integer(i64::MIN)
    );
}

#[test]
fn integer_out_of_range() {
    assert_eq!(
        value_err("9223372036854775808i"),
        ErrorKind::IntegerOutOfRange("9223372036854775808i".into())
    );
    assert_eq!(
        value_err("-9223372036854775809i"),
        ErrorKind::IntegerOutOfRange("-9223372036854775809i".into())
    );
    assert!(matches!(
        value_err("99999999999999999999999i"),
        ErrorKind::IntegerOutOfRange(_)
    ));
}

#[test]
fn invalid_integers() {
    for v in ["12xi", "1.5i", "i", "-i"] {
        assert_eq!(
            value_err(v),
            ErrorKind::InvalidInteger(v.into()),
            "value {v:?}"
        );
    }
}

#[test]
fn unsigned_integers() {
    assert_eq!(value("123u"), FieldValue::UInteger(123));
    assert_eq!(value("0u"), FieldValue::UInteger(0));
    assert_eq!(
        value("18446744073709551615u"),
        FieldValue::UInteger(u64::MAX)
    );
}

#[test]
fn unsigned_out_of_range() {
    assert_eq!(
        value_err("18446744073709551616u"),
        ErrorKind::UnsignedOutOfRange("18446744073709551616u".into())
    );
}

#[test]
fn negative_unsigned() {
    assert_eq!(value_err("-1u"), ErrorKind::NegativeUnsigned("-1u".into()));
}

#[test]
fn invalid_unsigned() {
    assert_eq!(value_err("1.5u"), ErrorKind::InvalidUnsigned("1.5u".into()));
}

// ---------------------------------------------------------------------------
// Floats
// ---------------------------------------------------------------------------

#[test]
fn float_forms() {
    for (v, want) in [
        ("1e-0", 1.0),
        ("1.5e06", 1.5e6),
        ("6.632243E+06", 6.632243e6),
        ("-1.2e+06", -1.2e6),
        ("44", 44.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("-0.25", -0.25),
        ("0.1", 0.1),
        ("1E5", 1e5),
        ("2e-3", 2e-3),
    ] {
        assert_eq!(float(v), want, "value {v:?}");
    }
}

#[test]
fn float_extremes_are_exact() {
    assert_eq!(float("1.7976931348623157e308"), f64::MAX);
    assert_eq!(float("-1.7976931348623157e308"), f64::MIN);
    assert_eq!(float("2.2250738585072014e-308"), f64::MIN_POSITIVE);
    assert_eq!(float("5e-324"), 5e-324);
    assert_eq!(float("0.30000000000000004"), 0.1 + 0.2);
}

#[test]
fn negative_zero_keeps_its_sign() {
    let x = float("-0");
    assert_eq!(x.to_bits(), (-0.0f64).to_bits());
    let y = float("-0.0");
    assert_eq!(y.to_bits(), (-0.0f64).to_bits());
}

#[test]
fn invalid_floats() {
    let mut wrong = Vec::new();
    for v in [
        "1e", "1e+", "23.1.22", "+1", "-", ".", "1..2", "12x", "-inf", "1-2", "0x10", "-.", "1e5.0",
    ] {
        let got = value_err(v);
        if got != ErrorKind::InvalidFloat(v.into()) {
            wrong.push((v, got));
        }
    }
    assert!(wrong.is_empty(), "expected InvalidFloat, got: {wrong:?}");
}

#[test]
fn inf_and_nan_are_invalid_floats() {
    // The specification lists `inf` and `NaN` among the InvalidFloat cases.
    let mut wrong = Vec::new();
    for v in ["inf", "NaN", "nan", "Infinity"] {
        let got = value_err(v);
        if got != ErrorKind::InvalidFloat(v.into()) {
            wrong.push((v, got));
        }
    }
    assert!(wrong.is_empty(), "expected InvalidFloat, got: {wrong:?}");
}

#[test]
fn float_out_of_range() {
    assert_eq!(
        value_err("1e400"),
        ErrorKind::FloatOutOfRange("1e400".into())
    );
    assert_eq!(
        value_err("-1e400"),
        ErrorKind::FloatOutOfRange("-1e400".into())
    );
}

// ---------------------------------------------------------------------------
// Booleans and bare words
// ---------------------------------------------------------------------------

#[test]
fn booleans() {
    for v in ["t", "T", "true", "True", "TRUE"] {
        assert_eq!(value(v), FieldValue::Boolean(true), "value {v:?}");
    }
    for v in ["f", "F", "false", "False", "FALSE"] {
        assert_eq!(value(v), FieldValue::Boolean(false), "value {v:?}");
    }
}

#[test]
fn other_bare_words_are_invalid() {
    for v in ["yes", "tRUE", "truee", "abc", "fALSE", "tr", "no"] {
        assert_eq!(
            value_err(v),
            ErrorKind::InvalidFieldValue(v.into()),
            "value {v:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

#[test]
fn timestamp_nanoseconds_by_default() {
    assert_eq!(
        ok("m f=1 1700000000000000000").timestamp,
        Some(1_700_000_000_000_000_000)
    );
}

#[test]
fn negative_timestamps() {
    assert_eq!(ok("m f=1 -1").timestamp, Some(-1));
    assert_eq!(
        ok("m f=1 -1700000000000000000").timestamp,
        Some(-1_700_000_000_000_000_000)
    );
    assert_eq!(
        ts_at(Precision::Milliseconds, "-1500"),
        Some(-1_500_000_000)
    );
}

#[test]
fn zero_timestamp() {
    assert_eq!(ok("m f=1 0").timestamp, Some(0));
}

#[test]
fn invalid_timestamps() {
    assert_eq!(
        err("m f=1 12a").kind,
        ErrorKind::InvalidTimestamp("12a".into())
    );
    assert_eq!(
        err("m f=1 1.5").kind,
        ErrorKind::InvalidTimestamp("1.5".into())
    );
}

#[test]
fn timestamp_range_at_nanoseconds() {
    assert_eq!(
        ts_at(Precision::Nanoseconds, "9223372036854775806"),
        Some(MAX_TIMESTAMP_NANOS)
    );
    assert_eq!(
        ts_at(Precision::Nanoseconds, "-9223372036854775806"),
        Some(MIN_TIMESTAMP_NANOS)
    );
    for v in [
        "9223372036854775807",
        "-9223372036854775807",
        "-9223372036854775808",
    ] {
        assert_eq!(
            ts_err_at(Precision::Nanoseconds, v),
            ErrorKind::TimestampOutOfRange {
                value: v.into(),
                precision: Precision::Nanoseconds
            },
            "timestamp {v}"
        );
    }
}

#[test]
fn timestamp_beyond_i64_is_out_of_range() {
    assert!(matches!(
        ts_err_at(Precision::Nanoseconds, "99999999999999999999"),
        ErrorKind::TimestampOutOfRange { .. }
    ));
}

#[test]
fn timestamp_overflow_when_scaling_seconds() {
    assert_eq!(
        ts_err_at(Precision::Seconds, "10000000000000000"),
        ErrorKind::TimestampOutOfRange {
            value: "10000000000000000".into(),
            precision: Precision::Seconds
        }
    );
    assert_eq!(
        ts_at(Precision::Seconds, "9223372036"),
        Some(9_223_372_036_000_000_000)
    );
}

#[test]
fn timestamp_overflow_when_scaling_hours() {
    assert_eq!(
        ts_at(Precision::Hours, "2562047"),
        Some(9_223_369_200_000_000_000)
    );
    assert!(matches!(
        ts_err_at(Precision::Hours, "2562048"),
        ErrorKind::TimestampOutOfRange {
            precision: Precision::Hours,
            ..
        }
    ));
    assert!(matches!(
        ts_err_at(Precision::Hours, "-2562048"),
        ErrorKind::TimestampOutOfRange {
            precision: Precision::Hours,
            ..
        }
    ));
}

#[test]
fn every_precision_scales() {
    let cases = [
        (
            Precision::Nanoseconds,
            "1700000000123456789",
            1_700_000_000_123_456_789,
        ),
        (
            Precision::Microseconds,
            "1700000000123456",
            1_700_000_000_123_456_000,
        ),
        (
            Precision::Milliseconds,
            "1700000000123",
            1_700_000_000_123_000_000,
        ),
        (Precision::Seconds, "1700000000", 1_700_000_000_000_000_000),
        (Precision::Minutes, "28333333", 1_699_999_980_000_000_000),
        (Precision::Hours, "472222", 1_699_999_200_000_000_000),
    ];
    for (precision, written, nanos) in cases {
        assert_eq!(
            ts_at(precision, written),
            Some(nanos),
            "precision {precision}"
        );
    }
}

#[test]
fn minutes_and_hours_small_values() {
    assert_eq!(ts_at(Precision::Minutes, "1"), Some(60_000_000_000));
    assert_eq!(ts_at(Precision::Minutes, "-2"), Some(-120_000_000_000));
    assert_eq!(ts_at(Precision::Hours, "1"), Some(3_600_000_000_000));
}

#[test]
fn precision_names() {
    for (name, p) in [
        ("n", Precision::Nanoseconds),
        ("ns", Precision::Nanoseconds),
        ("u", Precision::Microseconds),
        ("us", Precision::Microseconds),
        ("ms", Precision::Milliseconds),
        ("s", Precision::Seconds),
        ("m", Precision::Minutes),
        ("h", Precision::Hours),
        ("auto", Precision::Auto),
    ] {
        assert_eq!(name.parse::<Precision>(), Ok(p), "name {name:?}");
    }
    assert!("x".parse::<Precision>().is_err());
    assert!("M".parse::<Precision>().is_err());
}

#[test]
fn auto_precision_guesses_by_magnitude() {
    let want = Some(1_700_000_000_000_000_000);
    for written in [
        "1700000000",
        "1700000000000",
        "1700000000000000",
        "1700000000000000000",
    ] {
        assert_eq!(ts_at(Precision::Auto, written), want, "timestamp {written}");
    }
    assert_eq!(
        ts_at(Precision::Auto, "-1700000000"),
        Some(-1_700_000_000_000_000_000)
    );
}

#[test]
fn auto_precision_boundaries() {
    assert_eq!(
        ts_at(Precision::Auto, "4999999999"),
        Some(4_999_999_999_000_000_000)
    );
    assert_eq!(
        ts_at(Precision::Auto, "5000000000"),
        Some(5_000_000_000_000_000)
    );
    assert_eq!(
        ts_at(Precision::Auto, "4999999999999"),
        Some(4_999_999_999_999_000_000)
    );
    assert_eq!(
        ts_at(Precision::Auto, "5000000000000"),
        Some(5_000_000_000_000_000)
    );
    assert_eq!(
        ts_at(Precision::Auto, "4999999999999999"),
        Some(4_999_999_999_999_999_000)
    );
    assert_eq!(
        ts_at(Precision::Auto, "5000000000000000"),
        Some(5_000_000_000_000_000)
    );
    assert_eq!(ts_at(Precision::Auto, "0"), Some(0));
}

#[test]
fn trailing_text_after_timestamp() {
    assert!(matches!(
        err("m f=1 123 456").kind,
        ErrorKind::TrailingText(_)
    ));
    assert!(matches!(
        err("m f=1 123 x").kind,
        ErrorKind::TrailingText(_)
    ));
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

#[test]
fn tokens_at_the_limit_are_accepted() {
    let line = ok_with(limits(1 << 20, 4), b"abcd,abcd=abcd abcd=1234 1234");
    assert_eq!(line.measurement, "abcd");
    assert_eq!(line.timestamp, Some(1234));
}

#[test]
fn each_token_over_the_limit() {
    for (input, kind) in [
        ("abcde f=1", TokenKind::Measurement),
        ("m,abcde=v f=1", TokenKind::TagKey),
        ("m,t=abcde f=1", TokenKind::TagValue),
        ("m abcde=1", TokenKind::FieldKey),
        ("m f=12345", TokenKind::FieldValue),
        ("m f=1 12345", TokenKind::Timestamp),
    ] {
        let e = err_with(limits(1 << 20, 4), input.as_bytes());
        assert_eq!(
            e.kind,
            ErrorKind::TokenTooLong {
                kind,
                len: 5,
                limit: 4
            },
            "input {input:?}"
        );
    }
}

#[test]
fn token_limit_counts_raw_bytes() {
    // 4 bytes as written: accepted.
    assert_eq!(ok_with(limits(1 << 20, 4), br"a\,b f=1").measurement, "a,b");
    // 5 bytes as written, 4 unescaped: too long.
    let e = err_with(limits(1 << 20, 4), br"a\,bc f=1");
    assert_eq!(
        e.kind,
        ErrorKind::TokenTooLong {
            kind: TokenKind::Measurement,
            len: 5,
            limit: 4
        }
    );
}

#[test]
fn long_string_value_over_token_limit() {
    let e = err_with(limits(1 << 20, 4), br#"m f="abcdefgh""#);
    assert!(
        matches!(
            e.kind,
            ErrorKind::TokenTooLong {
                kind: TokenKind::FieldValue,
                limit: 4,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn line_limit() {
    assert_eq!(ok_with(limits(10, 1024), b"m f=123456").fields.len(), 1);
    let e = err_with(limits(10, 1024), b"m f=1234567");
    assert_eq!(e.kind, ErrorKind::LineTooLong { len: 11, limit: 10 });
}

#[test]
fn line_limit_excludes_crlf() {
    let line = ok_with(limits(10, 1024), b"m f=123456\r\n");
    assert_eq!(line.fields[0].1, FieldValue::Float(123456.0));
}

#[test]
fn long_line_does_not_stop_the_batch() {
    let items: Vec<_> = limits(10, 1024).parse(b"m f=1234567\nm f=1\n").collect();
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap_err().kind,
        ErrorKind::LineTooLong { len: 11, limit: 10 }
    );
    assert_eq!(
        items[1].as_ref().unwrap().fields[0].1,
        FieldValue::Float(1.0)
    );
}

#[test]
fn default_token_limit_is_64_kib() {
    let fits = format!("m,t={} f=1", "a".repeat(64 << 10));
    assert_eq!(ok(&fits).tag("t").unwrap().len(), 64 << 10);
    let over = format!("m,t={} f=1", "a".repeat((64 << 10) + 1));
    assert_eq!(
        err(&over).kind,
        ErrorKind::TokenTooLong {
            kind: TokenKind::TagValue,
            len: (64 << 10) + 1,
            limit: 64 << 10
        }
    );
}

#[test]
fn default_line_limit_is_1_mib() {
    // Fields of 60 000-byte strings keep every token under the token limit.
    let build = |total: usize| {
        let mut s = String::from("m f0=\"");
        let mut i = 1;
        loop {
            // `s` ends inside an open string; keep one byte for its closing quote.
            let room = total - s.len() - 1;
            if room <= 60_000 {
                s.push_str(&"x".repeat(room));
                s.push('"');
                break;
            }
            s.push_str(&"x".repeat(50_000));
            s.push_str(&format!("\",f{i}=\""));
            i += 1;
        }
        assert_eq!(s.len(), total);
        s
    };
    let fits = build(1 << 20);
    assert!(ok(&fits).fields.len() > 16);
    let over = build((1 << 20) + 1);
    assert_eq!(
        err(&over).kind,
        ErrorKind::LineTooLong {
            len: (1 << 20) + 1,
            limit: 1 << 20
        }
    );
}

// ---------------------------------------------------------------------------
// A bad line never stops the batch
// ---------------------------------------------------------------------------

#[test]
fn batch_of_five_with_two_bad_keeps_three_in_order() {
    let batch = b"m,n=1 f=1i\nm,n=2 f=12xi\nm,n=3 f=3i\nm,n=4 f=\nm,n=5 f=5i\n";
    let items = parse_all(batch);
    assert_eq!(items.len(), 5, "{items:?}");
    let good: Vec<&str> = items
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|l| l.tag("n").unwrap())
        .collect();
    assert_eq!(good, ["1", "3", "5"]);
    let bad_lines: Vec<usize> = items
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| e.line)
        .collect();
    assert_eq!(bad_lines, [2, 4]);
    assert!(
        items[0].is_ok()
            && items[1].is_err()
            && items[2].is_ok()
            && items[3].is_err()
            && items[4].is_ok()
    );
}

/// A quote that does not open a string value (after a bad number, after
/// the timestamp, after a closed string) must not make the bad line reach
/// into the good lines after it.
#[test]
fn stray_quotes_in_a_bad_line_do_not_swallow_the_next_lines() {
    let cases: [&[u8]; 6] = [
        b"m v=1\r,s=\"a\nm v=2\nm v=3\n",
        b"m v=1=\"\nm v=2\nm v=3\n",
        b"m v=1 12=\"\nm v=2\nm v=3\n",
        b"m v=\"a\"x=\"\nm v=2\nm v=3\n",
        b"m v=1 5 x=\"y\nm v=2\nm v=3\n",
        b"m v=t=\"\nm v=2\nm v=3\n",
    ];
    for input in cases {
        let items = parse_all(input);
        let shown = String::from_utf8_lossy(input);
        assert_eq!(items.len(), 3, "{shown:?}: {items:?}");
        assert_eq!(items[0].as_ref().unwrap_err().line, 1, "{shown:?}");
        assert_eq!(
            items[1].as_ref().unwrap().field("v"),
            Some(&FieldValue::Float(2.0)),
            "{shown:?}"
        );
        assert_eq!(
            items[2].as_ref().unwrap().field("v"),
            Some(&FieldValue::Float(3.0)),
            "{shown:?}"
        );
    }
}

/// A bad line whose string value holds a line break still ends after it.
#[test]
fn bad_line_with_multiline_string_ends_after_the_string() {
    let items = parse_all(b"m s=\"a\nb\",v=oops\nm v=2\n");
    assert_eq!(items.len(), 2, "{items:?}");
    let e = items[0].as_ref().unwrap_err();
    assert_eq!((e.first_line, e.line), (1, 2));
    assert!(items[1].is_ok());
}

/// An oversized line is refused without parsing all of it, and the error
/// still tells its full length.
#[test]
fn huge_line_is_refused_with_its_length() {
    let mut input = b"m ".to_vec();
    for i in 0..200_000 {
        input.extend_from_slice(format!("f{i}=1,").as_bytes());
    }
    input.extend_from_slice(b"last=1\nm v=2\n");
    let len = input.len() - "\nm v=2\n".len();
    let opts = ParseOptions {
        max_line_bytes: 1000,
        ..ParseOptions::default()
    };
    let items: Vec<_> = opts.parse(&input).collect();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].as_ref().unwrap_err().kind,
        ErrorKind::LineTooLong { len, limit: 1000 }
    );
    assert!(items[1].is_ok());
}

#[test]
fn invalid_utf8_rejects_only_its_line() {
    let items = parse_all(b"m,t=\xff f=1\nm f=2\n");
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(
        items[0].as_ref().unwrap_err().kind,
        ErrorKind::InvalidUtf8(TokenKind::TagValue)
    );
    assert_eq!(
        items[1].as_ref().unwrap().fields[0].1,
        FieldValue::Float(2.0)
    );
}

#[test]
fn invalid_utf8_in_each_token() {
    for (input, kind) in [
        (&b"m\xc3 f=1"[..], TokenKind::Measurement),
        (&b"m,\xfe=v f=1"[..], TokenKind::TagKey),
        (&b"m f\x80=1"[..], TokenKind::FieldKey),
        (&b"m s=\"a\xffb\""[..], TokenKind::FieldValue),
    ] {
        let e = err_with(ParseOptions::default(), input);
        assert_eq!(e.kind, ErrorKind::InvalidUtf8(kind), "input {input:?}");
    }
}

#[test]
fn invalid_utf8_in_comment_is_ignored() {
    let items = parse_all(b"# \xff\xfe\nm f=1");
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(items[0].is_ok());
}

#[test]
fn error_then_good_line_without_trailing_newline() {
    let items = parse_all(b"m f=1,g=\nm f=2");
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].as_ref().unwrap_err().kind,
        ErrorKind::MissingFieldValue("g".into())
    );
    assert!(items[1].is_ok());
}

// ---------------------------------------------------------------------------
// Error positions and messages
// ---------------------------------------------------------------------------

#[test]
fn invalid_integer_position_and_message() {
    let e = err("m f=12xi");
    assert_eq!((e.line, e.column, e.first_line), (1, 5, 1));
    assert_eq!(
        e.to_string(),
        r#"line 1, col 5: invalid integer field value "12xi""#
    );
}

#[test]
fn missing_fields_message() {
    assert_eq!(
        err("m,t=v").to_string(),
        "line 1, col 6: missing fields: expected a space and then field=value after the measurement and tags"
    );
}

#[test]
fn invalid_field_value_message() {
    assert_eq!(
        err("cpu,host=b usage=oops").to_string(),
        r#"line 1, col 18: invalid field value "oops": expected a number, an integer (42i), an unsigned integer (42u), a boolean (t, T, true, True, TRUE, f, F, false, False, FALSE) or a "quoted string""#
    );
}

#[test]
fn invalid_float_message() {
    assert_eq!(
        err("m a=1,b=23.1.22").to_string(),
        r#"line 1, col 9: invalid float field value "23.1.22""#
    );
}

#[test]
fn timestamp_out_of_range_message() {
    let e = err_with(opts(Precision::Seconds), b"m f=1 10000000000000000");
    assert_eq!(
        e.to_string(),
        r#"line 1, col 7: timestamp "10000000000000000" at precision s is out of range for nanoseconds since the epoch in a signed 64-bit integer"#
    );
}

#[test]
fn column_is_a_byte_column() {
    // '☃' is three bytes.
    let e = err("☃ f=12xi");
    assert_eq!((e.line, e.column), (1, 7));
}

#[test]
fn column_counts_indentation() {
    let e = err(" \t m f=12xi");
    assert_eq!((e.line, e.column), (1, 8));
}

#[test]
fn line_number_after_blank_and_comment_lines() {
    let items = parse_all(b"\n# comment\n   \nm f=1\n\nm f=12xi\n");
    assert_eq!(items.len(), 2, "{items:?}");
    let e = items[1].as_ref().unwrap_err();
    assert_eq!((e.line, e.column, e.first_line), (6, 5, 6));
    assert_eq!(
        e.to_string(),
        r#"line 6, col 5: invalid integer field value "12xi""#
    );
}

#[test]
fn line_number_after_multiline_string() {
    let items = parse_all(b"m s=\"a\nb\nc\" 1\nm f=12xi");
    assert_eq!(items.len(), 2, "{items:?}");
    let e = items[1].as_ref().unwrap_err();
    assert_eq!((e.line, e.column, e.first_line), (4, 5, 4));
}

#[test]
fn error_after_newline_inside_the_same_line() {
    // Physical line 2 is `b",f=12xi`; the bad value starts at its 6th byte.
    let e = err("m s=\"a\nb\",f=12xi");
    assert_eq!((e.line, e.column, e.first_line), (2, 6, 1));
    assert_eq!(
        e.to_string(),
        r#"line 2, col 6: invalid integer field value "12xi""#
    );
}

#[test]
fn error_on_line_after_crlf_line() {
    let items = parse_all(b"m f=1\r\nm f=12xi\r\nm f=3\r\n");
    assert_eq!(items.len(), 3, "{items:?}");
    let e = items[1].as_ref().unwrap_err();
    assert_eq!((e.line, e.column, e.first_line), (2, 5, 2));
    assert_eq!(e.kind, ErrorKind::InvalidInteger("12xi".into()));
    assert!(items[2].is_ok());
}
