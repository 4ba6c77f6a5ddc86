//! Query result formats, encoded batch by batch so results can stream:
//! `json` (an array of row objects keyed by column name), `jsonl` (one
//! object per line), `csv` (with a header line) and `arrow` (an Arrow IPC
//! stream). JSON rows carry every column (null included); timestamps are
//! RFC 3339 UTC in JSON and CSV.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Float64Array, StringArray};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use arrow::record_batch::RecordBatch;
//! use server::format::{Encoder, OutputFormat};
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("dst", DataType::Utf8, false),
//!     Field::new("rtt", DataType::Float64, true),
//! ]));
//! let batch = RecordBatch::try_new(Arc::clone(&schema), vec![
//!     Arc::new(StringArray::from(vec!["a", "b"])),
//!     Arc::new(Float64Array::from(vec![Some(1.5), None])),
//! ]).unwrap();
//!
//! let mut out = Vec::new();
//! let mut encoder = Encoder::new(OutputFormat::Json, &schema).unwrap();
//! out.extend(encoder.start());
//! out.extend(encoder.encode(&batch).unwrap());
//! out.extend(encoder.finish().unwrap());
//! assert_eq!(String::from_utf8(out).unwrap(), r#"[{"dst":"a","rtt":1.5},{"dst":"b","rtt":null}]"#);
//! ```

use std::str::FromStr;
use std::sync::Arc;

use arrow::csv;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::StreamWriter;
use arrow::json::writer::{JsonArray, LineDelimited};
use arrow::json::{Writer as JsonWriter, WriterBuilder as JsonWriterBuilder};
use arrow::record_batch::RecordBatch;
use serde::Deserialize;

/// How timestamps without a time zone (weir's `time`) are written: UTC.
const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";

/// A result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// A JSON array of row objects.
    #[default]
    Json,
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header line.
    Csv,
    /// The Arrow IPC stream format.
    Arrow,
}

impl OutputFormat {
    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::Jsonl => "application/jsonl",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// The name as written in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Csv => "csv",
            OutputFormat::Arrow => "arrow",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(OutputFormat::Json),
            "jsonl" => Ok(OutputFormat::Jsonl),
            "csv" => Ok(OutputFormat::Csv),
            "arrow" => Ok(OutputFormat::Arrow),
            other => Err(format!(
                "unknown format {other:?}; expected json, jsonl, csv or arrow"
            )),
        }
    }
}

/// Turns record batches into the bytes of one format, piece by piece:
/// [`Encoder::start`], then [`Encoder::encode`] per batch, then
/// [`Encoder::finish`]; the pieces concatenated are the whole document.
#[derive(Debug)]
pub struct Encoder {
    schema: SchemaRef,
    kind: Kind,
}

enum Kind {
    Json(JsonWriter<Vec<u8>, JsonArray>),
    Jsonl(JsonWriter<Vec<u8>, LineDelimited>),
    Csv { header_written: bool },
    Arrow(StreamWriter<Vec<u8>>),
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Json(_) => "Json",
            Kind::Jsonl(_) => "Jsonl",
            Kind::Csv { .. } => "Csv",
            Kind::Arrow(_) => "Arrow",
        })
    }
}

fn json_builder() -> JsonWriterBuilder {
    JsonWriterBuilder::new()
        .with_explicit_nulls(true)
        .with_timestamp_format(TIMESTAMP_FORMAT.to_owned())
}

impl Encoder {
    /// An encoder of `format` for batches of `schema`.
    pub fn new(format: OutputFormat, schema: &SchemaRef) -> Result<Self, ArrowError> {
        let kind = match format {
            OutputFormat::Json => Kind::Json(json_builder().build(Vec::new())),
            OutputFormat::Jsonl => Kind::Jsonl(json_builder().build(Vec::new())),
            OutputFormat::Csv => {
                // CSV has no form for lists and structs (quantiles(), cdf()).
                if let Some(f) = schema.fields().iter().find(|f| f.data_type().is_nested()) {
                    return Err(ArrowError::InvalidArgumentError(format!(
                        "column {:?} is a {} and CSV cannot hold it; use format json, jsonl or arrow, or unnest it",
                        f.name(),
                        f.data_type()
                    )));
                }
                Kind::Csv {
                    header_written: false,
                }
            }
            OutputFormat::Arrow => Kind::Arrow(StreamWriter::try_new(Vec::new(), schema)?),
        };
        Ok(Encoder {
            schema: Arc::clone(schema),
            kind,
        })
    }

    /// The bytes that open the document (the Arrow schema message).
    pub fn start(&mut self) -> Vec<u8> {
        match &mut self.kind {
            Kind::Arrow(w) => std::mem::take(w.get_mut()),
            _ => Vec::new(),
        }
    }

    /// The bytes of one batch.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        match &mut self.kind {
            Kind::Json(w) => {
                w.write(batch)?;
                Ok(std::mem::take(w.get_mut()))
            }
            Kind::Jsonl(w) => {
                w.write(batch)?;
                Ok(std::mem::take(w.get_mut()))
            }
            Kind::Csv { header_written } => {
                let mut w = csv::WriterBuilder::new()
                    .with_header(!*header_written)
                    .with_timestamp_format(TIMESTAMP_FORMAT.to_owned())
                    .build(Vec::new());
                w.write(batch)?;
                *header_written = true;
                Ok(w.into_inner())
            }
            Kind::Arrow(w) => {
                w.write(batch)?;
                Ok(std::mem::take(w.get_mut()))
            }
        }
    }

    /// The bytes that close the document.
    pub fn finish(mut self) -> Result<Vec<u8>, ArrowError> {
        match &mut self.kind {
            Kind::Json(w) => {
                w.finish()?;
                Ok(std::mem::take(w.get_mut()))
            }
            Kind::Jsonl(_) => Ok(Vec::new()),
            Kind::Csv { header_written } => {
                if *header_written {
                    return Ok(Vec::new());
                }
                // No rows: the header alone.
                let empty = RecordBatch::new_empty(Arc::clone(&self.schema));
                self.encode(&empty)
            }
            Kind::Arrow(w) => {
                w.finish()?;
                Ok(std::mem::take(w.get_mut()))
            }
        }
    }

    /// Every batch at once: the whole document.
    pub fn encode_all(
        format: OutputFormat,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<Vec<u8>, ArrowError> {
        let mut encoder = Encoder::new(format, schema)?;
        let mut out = encoder.start();
        for batch in batches {
            out.extend(encoder.encode(batch)?);
        }
        out.extend(encoder.finish()?);
        Ok(out)
    }
}

/// The schema of `batches`, or an empty one.
pub fn schema_of(batches: &[RecordBatch]) -> SchemaRef {
    batches
        .first()
        .map_or_else(|| Arc::new(Schema::empty()), RecordBatch::schema)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{Int64Array, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, TimeUnit};

    fn batch(from: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("n", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![
                    from * 1_000_000_000,
                    from * 1_000_000_000 + 5_000_000,
                ])),
                Arc::new(Int64Array::from(vec![Some(from), None])),
            ],
        )
        .unwrap()
    }

    fn all(format: OutputFormat, batches: &[RecordBatch]) -> String {
        let schema = batch(0).schema();
        String::from_utf8(Encoder::encode_all(format, &schema, batches).unwrap()).unwrap()
    }

    #[test]
    fn every_text_format_across_batches() {
        let b = [batch(1), batch(2)];
        assert_eq!(
            all(OutputFormat::Json, &b),
            r#"[{"time":"1970-01-01T00:00:01Z","n":1},{"time":"1970-01-01T00:00:01.005Z","n":null},{"time":"1970-01-01T00:00:02Z","n":2},{"time":"1970-01-01T00:00:02.005Z","n":null}]"#
        );
        assert_eq!(all(OutputFormat::Jsonl, &b).lines().count(), 4);
        assert_eq!(
            all(OutputFormat::Csv, &b),
            "time,n\n1970-01-01T00:00:01Z,1\n1970-01-01T00:00:01.005Z,\n\
             1970-01-01T00:00:02Z,2\n1970-01-01T00:00:02.005Z,\n"
        );
        assert_eq!(all(OutputFormat::Json, &[]), "[]");
        assert_eq!(all(OutputFormat::Jsonl, &[]), "");
        assert_eq!(all(OutputFormat::Csv, &[]), "time,n\n");
    }

    #[test]
    fn arrow_stream_reads_back() {
        let schema = batch(0).schema();
        let bytes =
            Encoder::encode_all(OutputFormat::Arrow, &schema, &[batch(1), batch(2)]).unwrap();
        let reader = arrow::ipc::reader::StreamReader::try_new(bytes.as_slice(), None).unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 4);
    }
}
