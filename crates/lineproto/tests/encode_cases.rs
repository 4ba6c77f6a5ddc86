//! Encoder cases written from the specification: what each special character
//! becomes in each position, the number formats, and every `EncodeError`.

use lineproto::{
    parse_lines, EncodeError, FieldValue, Line, TokenKind, MAX_TIMESTAMP_NANOS, MIN_TIMESTAMP_NANOS,
};

#[track_caller]
fn enc(line: &Line<'_>) -> String {
    match line.encode_to_string() {
        Ok(s) => s,
        Err(e) => panic!("line {line:?}: expected to encode, got `{e}` ({e:?})"),
    }
}

#[track_caller]
fn enc_err(line: &Line<'_>) -> EncodeError {
    match line.encode_to_string() {
        Ok(s) => panic!("line {line:?}: expected an encode error, got {s:?}"),
        Err(e) => e,
    }
}

/// Encodes `line`, parses it back and checks it reads as the same line
/// (floats compared bit for bit).
#[track_caller]
fn round_trip(line: &Line<'_>) {
    let text = enc(line);
    let items: Vec<_> = parse_lines(text.as_bytes()).collect();
    assert_eq!(items.len(), 1, "encoded {text:?}: {items:?}");
    let back = match &items[0] {
        Ok(l) => l,
        Err(e) => panic!("encoded {text:?} of {line:?} does not parse: `{e}`"),
    };
    assert_eq!(back, line, "encoded {text:?}");
    for ((_, a), (_, b)) in back.fields.iter().zip(&line.fields) {
        if let (FieldValue::Float(a), FieldValue::Float(b)) = (a, b) {
            assert_eq!(a.to_bits(), b.to_bits(), "encoded {text:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Plain lines and value formats
// ---------------------------------------------------------------------------

#[test]
fn plain_line() {
    let line = Line::new("cpu")
        .with_tag("host", "a")
        .with_tag("dc", "eu")
        .with_field("n", 3i64)
        .with_field("ok", true)
        .with_timestamp(1_700_000_000_000_000_000);
    assert_eq!(
        enc(&line),
        "cpu,host=a,dc=eu n=3i,ok=true 1700000000000000000\n"
    );
}

#[test]
fn integer_formats() {
    assert_eq!(enc(&Line::new("m").with_field("f", -42i64)), "m f=-42i\n");
    assert_eq!(
        enc(&Line::new("m").with_field("f", i64::MIN)),
        "m f=-9223372036854775808i\n"
    );
    assert_eq!(
        enc(&Line::new("m").with_field("f", i64::MAX)),
        "m f=9223372036854775807i\n"
    );
}

#[test]
fn unsigned_formats() {
    assert_eq!(enc(&Line::new("m").with_field("f", 0u64)), "m f=0u\n");
    assert_eq!(
        enc(&Line::new("m").with_field("f", u64::MAX)),
        "m f=18446744073709551615u\n"
    );
}

#[test]
fn boolean_formats() {
    assert_eq!(
        enc(&Line::new("m").with_field("a", true).with_field("b", false)),
        "m a=true,b=false\n"
    );
}

#[test]
fn float_formats() {
    assert_eq!(enc(&Line::new("m").with_field("f", 0.5)), "m f=0.5\n");
    assert_eq!(enc(&Line::new("m").with_field("f", -2.25)), "m f=-2.25\n");
    assert_eq!(enc(&Line::new("m").with_field("f", 0.1)), "m f=0.1\n");
    let one = enc(&Line::new("m").with_field("f", 1.0));
    assert!(one == "m f=1\n" || one == "m f=1.0\n", "{one:?}");
}

#[test]
fn float_shortest_form_round_trips() {
    for x in [
        0.1 + 0.2,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        5e-324,
        1e21,
        1e-7,
        123456789.125,
        -0.0,
        0.0,
        f64::EPSILON,
    ] {
        round_trip(&Line::new("m").with_field("f", x));
    }
}

#[test]
fn float_shortest_form_is_short() {
    // Shortest round-trip form, not 17 significant digits.
    let s = enc(&Line::new("m").with_field("f", 0.3));
    assert_eq!(s, "m f=0.3\n");
}

#[test]
fn timestamps() {
    assert_eq!(
        enc(&Line::new("m").with_field("f", 1i64).with_timestamp(-1)),
        "m f=1i -1\n"
    );
    assert_eq!(
        enc(&Line::new("m").with_field("f", 1i64).with_timestamp(0)),
        "m f=1i 0\n"
    );
    assert_eq!(
        enc(&Line::new("m")
            .with_field("f", 1i64)
            .with_timestamp(MIN_TIMESTAMP_NANOS)),
        "m f=1i -9223372036854775806\n"
    );
    assert_eq!(
        enc(&Line::new("m")
            .with_field("f", 1i64)
            .with_timestamp(MAX_TIMESTAMP_NANOS)),
        "m f=1i 9223372036854775806\n"
    );
}

#[test]
fn no_timestamp() {
    assert_eq!(enc(&Line::new("m").with_field("f", 1i64)), "m f=1i\n");
}

#[test]
fn encode_appends_to_the_buffer() {
    let mut out = b"# head\n".to_vec();
    Line::new("a")
        .with_field("f", 1i64)
        .encode(&mut out)
        .unwrap();
    Line::new("b")
        .with_field("f", 2u64)
        .encode(&mut out)
        .unwrap();
    assert_eq!(out, b"# head\na f=1i\nb f=2u\n");
}

#[test]
fn encode_and_encode_to_string_agree() {
    let line = Line::new("m,x")
        .with_tag("t", "a b")
        .with_field("s", "q\"")
        .with_timestamp(9);
    let mut out = Vec::new();
    line.encode(&mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), enc(&line));
}

// ---------------------------------------------------------------------------
// Escaping, per position
// ---------------------------------------------------------------------------

#[test]
fn measurement_escapes_comma_space_backslash() {
    let line = Line::new(r"a,b c\d").with_field("f", 1i64);
    assert_eq!(enc(&line), r"a\,b\ c\\d f=1i".to_owned() + "\n");
    round_trip(&line);
}

#[test]
fn measurement_keeps_equals_quote_and_hash() {
    let line = Line::new("a=b\"c#").with_field("f", 1i64);
    assert_eq!(enc(&line), "a=b\"c# f=1i\n");
    round_trip(&line);
}

#[test]
fn measurement_with_leading_space_or_trailing_backslash() {
    let line = Line::new(" m").with_field("f", 1i64);
    assert_eq!(enc(&line), "\\ m f=1i\n");
    round_trip(&line);
    let line = Line::new("m\\").with_field("f", 1i64);
    assert_eq!(enc(&line), "m\\\\ f=1i\n");
    round_trip(&line);
}

#[test]
fn tag_key_escapes() {
    let line = Line::new("m").with_tag(r"k,= \", "v").with_field("f", 1i64);
    assert_eq!(enc(&line), r"m,k\,\=\ \\=v f=1i".to_owned() + "\n");
    round_trip(&line);
}

#[test]
fn tag_value_escapes() {
    let line = Line::new("m").with_tag("k", r"v,= \").with_field("f", 1i64);
    assert_eq!(enc(&line), r"m,k=v\,\=\ \\ f=1i".to_owned() + "\n");
    round_trip(&line);
}

#[test]
fn field_key_escapes() {
    let line = Line::new("m").with_field(r"f,= \", 1i64);
    assert_eq!(enc(&line), r"m f\,\=\ \\=1i".to_owned() + "\n");
    round_trip(&line);
}

#[test]
fn string_escapes_quote_and_backslash_only() {
    let line = Line::new("m").with_field("s", r#"a"b\c, =d"#);
    assert_eq!(enc(&line), r#"m s="a\"b\\c, =d""#.to_owned() + "\n");
    round_trip(&line);
}

#[test]
fn string_ending_in_backslash() {
    let line = Line::new("m").with_field("s", "a\\");
    assert_eq!(enc(&line), "m s=\"a\\\\\"\n");
    round_trip(&line);
}

#[test]
fn string_keeps_line_breaks_raw() {
    let line = Line::new("m").with_field("s", "a\nb\r\nc");
    assert_eq!(enc(&line), "m s=\"a\nb\r\nc\"\n");
    round_trip(&line);
}

#[test]
fn empty_string_value() {
    let line = Line::new("m").with_field("s", "");
    assert_eq!(enc(&line), "m s=\"\"\n");
    round_trip(&line);
}

#[test]
fn names_that_look_like_values_or_comments() {
    for line in [
        Line::new("m").with_tag("#t", "#v").with_field("#f", 1i64),
        Line::new("m")
            .with_tag("t", "\"q\"")
            .with_field("\"f\"", "x"),
        Line::new("m").with_field("f", "# not a comment\n# still not"),
        Line::new("1i")
            .with_tag("t", "true")
            .with_field("1.5", 2u64),
        Line::new("m").with_tag("t", "\tx").with_field("\tf", 1i64),
        Line::new("é☃😀").with_tag("ü", "☃").with_field("😀", "é"),
    ] {
        round_trip(&line);
    }
}

#[test]
fn many_tags_and_fields_keep_their_order() {
    let line = Line::new("m")
        .with_tag("z", "1")
        .with_tag("a", "2")
        .with_field("y", 1.5)
        .with_field("b", "s")
        .with_field("c", false)
        .with_timestamp(5);
    assert_eq!(enc(&line), "m,z=1,a=2 y=1.5,b=\"s\",c=false 5\n");
    round_trip(&line);
}

// ---------------------------------------------------------------------------
// Encode errors
// ---------------------------------------------------------------------------

#[test]
fn empty_measurement() {
    assert_eq!(
        enc_err(&Line::new("").with_field("f", 1i64)),
        EncodeError::Empty(TokenKind::Measurement)
    );
}

#[test]
fn empty_tag_key() {
    let line = Line::new("m").with_tag("", "v").with_field("f", 1i64);
    assert_eq!(enc_err(&line), EncodeError::Empty(TokenKind::TagKey));
}

#[test]
fn empty_tag_value() {
    let line = Line::new("m").with_tag("t", "").with_field("f", 1i64);
    assert_eq!(enc_err(&line), EncodeError::Empty(TokenKind::TagValue));
}

#[test]
fn empty_field_key() {
    let line = Line::new("m").with_field("", 1i64);
    assert_eq!(enc_err(&line), EncodeError::Empty(TokenKind::FieldKey));
}

#[test]
fn newline_in_each_name() {
    let cases = [
        (
            Line::new("a\nb").with_field("f", 1i64),
            TokenKind::Measurement,
        ),
        (
            Line::new("m").with_tag("a\nb", "v").with_field("f", 1i64),
            TokenKind::TagKey,
        ),
        (
            Line::new("m").with_tag("t", "a\nb").with_field("f", 1i64),
            TokenKind::TagValue,
        ),
        (Line::new("m").with_field("a\nb", 1i64), TokenKind::FieldKey),
    ];
    for (line, kind) in cases {
        let e = enc_err(&line);
        assert!(
            matches!(&e, EncodeError::Newline(k, _) if *k == kind),
            "{line:?}: {e:?}"
        );
    }
}

#[test]
fn measurement_starting_with_hash_or_tab() {
    for m in ["#m", "\tm", "#", "\t"] {
        let e = enc_err(&Line::new(m).with_field("f", 1i64));
        assert!(
            matches!(e, EncodeError::MeasurementStart(_)),
            "{m:?}: {e:?}"
        );
    }
}

#[test]
fn no_fields() {
    assert_eq!(enc_err(&Line::new("m")), EncodeError::NoFields);
    assert_eq!(
        enc_err(&Line::new("m").with_tag("t", "v").with_timestamp(1)),
        EncodeError::NoFields
    );
}

#[test]
fn non_finite_floats() {
    for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = enc_err(&Line::new("m").with_field("ok", 1.0).with_field("bad", x));
        assert!(
            matches!(&e, EncodeError::NonFiniteFloat(k, _) if k == "bad"),
            "{x}: {e:?}"
        );
    }
}

#[test]
fn timestamp_out_of_range() {
    for ts in [i64::MAX, i64::MIN, i64::MIN + 1] {
        let e = enc_err(&Line::new("m").with_field("f", 1i64).with_timestamp(ts));
        assert_eq!(e, EncodeError::TimestampOutOfRange(ts), "{ts}");
    }
}
