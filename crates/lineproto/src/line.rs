//! The parsed form of one line: measurement, tag set, field set, timestamp.

use std::borrow::Cow;

/// One point of line protocol: `measurement,tag=v field=1.5 1700000000000000000`.
///
/// Every text token borrows from the parsed input unless it contained an
/// escape sequence, in which case it holds the unescaped copy. Use
/// [`Line::into_owned`] to detach a line from its input.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// The measurement (table) name, unescaped.
    pub measurement: Cow<'a, str>,
    /// Tag keys and values in input order, unescaped.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Field keys and values in input order; never empty for a parsed line.
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// Nanoseconds since the Unix epoch, already scaled from the input
    /// precision; `None` when the line carried no timestamp (the receiver
    /// then uses its own clock).
    pub timestamp: Option<i64>,
}

/// A field's typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// A float: `1.5`, `-2e-3`, bare `44`.
    Float(f64),
    /// A signed 64-bit integer: `42i`.
    Integer(i64),
    /// An unsigned 64-bit integer: `42u`.
    UInteger(u64),
    /// A boolean: `t`, `true`, `F`, `FALSE` …
    Boolean(bool),
    /// A double-quoted string with `\"` and `\\` unescaped.
    String(Cow<'a, str>),
}

impl<'a> Line<'a> {
    /// A line with the given measurement, no tags, no fields and no timestamp;
    /// add to it with the `with_*` builders.
    ///
    /// ```
    /// use lineproto::Line;
    /// let line = Line::new("probe_http")
    ///     .with_tag("target", "example.org")
    ///     .with_field("ttfb_us", 1234i64)
    ///     .with_field("ok", true)
    ///     .with_timestamp(1_700_000_000_000_000_000);
    /// assert_eq!(line.encode_to_string().unwrap(),
    ///     "probe_http,target=example.org ttfb_us=1234i,ok=true 1700000000000000000\n");
    /// ```
    pub fn new(measurement: impl Into<Cow<'a, str>>) -> Self {
        Line {
            measurement: measurement.into(),
            tags: Vec::new(),
            fields: Vec::new(),
            timestamp: None,
        }
    }

    /// Appends a tag.
    pub fn with_tag(
        mut self,
        key: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Appends a field.
    pub fn with_field(
        mut self,
        key: impl Into<Cow<'a, str>>,
        value: impl Into<FieldValue<'a>>,
    ) -> Self {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// Sets the timestamp in nanoseconds since the Unix epoch.
    pub fn with_timestamp(mut self, nanos: i64) -> Self {
        self.timestamp = Some(nanos);
        self
    }

    /// The value of the tag `key`, if the line has it (of repeated keys the
    /// last wins, as in InfluxDB).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .rfind(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The value of the field `key`, if the line has it (of repeated keys
    /// the last wins, as in InfluxDB).
    pub fn field(&self, key: &str) -> Option<&FieldValue<'a>> {
        self.fields.iter().rfind(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Copies every borrowed token so the line no longer borrows its input.
    pub fn into_owned(self) -> Line<'static> {
        Line {
            measurement: Cow::Owned(self.measurement.into_owned()),
            tags: self
                .tags
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
            fields: self
                .fields
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
            timestamp: self.timestamp,
        }
    }
}

impl FieldValue<'_> {
    /// Copies a borrowed string value so it no longer borrows its input.
    pub fn into_owned(self) -> FieldValue<'static> {
        match self {
            FieldValue::Float(v) => FieldValue::Float(v),
            FieldValue::Integer(v) => FieldValue::Integer(v),
            FieldValue::UInteger(v) => FieldValue::UInteger(v),
            FieldValue::Boolean(v) => FieldValue::Boolean(v),
            FieldValue::String(s) => FieldValue::String(Cow::Owned(s.into_owned())),
        }
    }

    /// The name of the value's type as users see it in errors and schemas.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValue::Float(_) => "float",
            FieldValue::Integer(_) => "integer",
            FieldValue::UInteger(_) => "unsigned integer",
            FieldValue::Boolean(_) => "boolean",
            FieldValue::String(_) => "string",
        }
    }
}

impl From<f64> for FieldValue<'_> {
    fn from(v: f64) -> Self {
        FieldValue::Float(v)
    }
}

impl From<i64> for FieldValue<'_> {
    fn from(v: i64) -> Self {
        FieldValue::Integer(v)
    }
}

impl From<u64> for FieldValue<'_> {
    fn from(v: u64) -> Self {
        FieldValue::UInteger(v)
    }
}

impl From<bool> for FieldValue<'_> {
    fn from(v: bool) -> Self {
        FieldValue::Boolean(v)
    }
}

impl<'a> From<&'a str> for FieldValue<'a> {
    fn from(v: &'a str) -> Self {
        FieldValue::String(Cow::Borrowed(v))
    }
}

impl From<String> for FieldValue<'_> {
    fn from(v: String) -> Self {
        FieldValue::String(Cow::Owned(v))
    }
}
