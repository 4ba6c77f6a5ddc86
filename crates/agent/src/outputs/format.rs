//! `data_format` for the outputs that write text: `influx` (line protocol
//! as spooled) or `json` (Telegraf's JSON serializer).

use std::time::Duration;

use lineproto::FieldValue;
use serde_json::{Map, Number, Value};

use crate::config::{ConfigError, OutputCommon, PluginSpec};

/// How lines are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataFormat {
    /// Line protocol, as is.
    Influx,
    /// One JSON object per line:
    /// `{"fields":{…},"name":"…","tags":{…},"timestamp":…}`, the
    /// timestamp in `units` (Telegraf's `json_timestamp_units`, 1 s).
    Json {
        /// Nanoseconds per timestamp unit.
        units: i64,
        /// Telegraf's `use_batch_format`: one `{"metrics":[…]}` per batch.
        batch: bool,
    },
}

impl DataFormat {
    /// From `data_format`, `json_timestamp_units` and `use_batch_format`.
    pub(crate) fn from_options(
        spec: &PluginSpec<OutputCommon>,
        data_format: &str,
        json_timestamp_units: Duration,
        use_batch_format: bool,
    ) -> Result<Self, ConfigError> {
        match data_format {
            "influx" | "" => Ok(DataFormat::Influx),
            "json" => {
                let units = i64::try_from(json_timestamp_units.as_nanos())
                    .unwrap_or(1_000_000_000)
                    .max(1);
                Ok(DataFormat::Json {
                    units,
                    batch: use_batch_format,
                })
            }
            other => Err(spec.error(format!(
                "data_format {other:?} is not supported; use \"influx\" or \"json\""
            ))),
        }
    }

    /// `batch` (line protocol, one line each ending in `\n`) in this
    /// format. Lines that do not parse are skipped and counted.
    pub(crate) fn serialize(self, batch: &[u8]) -> (Vec<u8>, usize) {
        match self {
            DataFormat::Influx => (batch.to_vec(), 0),
            DataFormat::Json { units, batch: one } => {
                let mut out = Vec::with_capacity(batch.len() * 2);
                let mut bad = 0;
                let mut all = Vec::new();
                for line in lineproto::parse_lines(batch) {
                    match line {
                        Ok(line) => {
                            let value = json_metric(&line, units);
                            if one {
                                all.push(value);
                            } else {
                                // Serializing a Value to a Vec cannot fail.
                                let _ = serde_json::to_writer(&mut out, &value);
                                out.push(b'\n');
                            }
                        }
                        Err(_) => bad += 1,
                    }
                }
                if one {
                    let mut m = Map::new();
                    m.insert("metrics".into(), Value::Array(all));
                    let _ = serde_json::to_writer(&mut out, &Value::Object(m));
                    out.push(b'\n');
                }
                (out, bad)
            }
        }
    }
}

/// One line as Telegraf's JSON serializer writes a metric (keys sorted).
fn json_metric(line: &lineproto::Line<'_>, units: i64) -> Value {
    let mut fields = Map::new();
    for (k, v) in &line.fields {
        let v = match v {
            FieldValue::Float(f) => match Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                // NaN and infinities have no JSON form.
                None => continue,
            },
            FieldValue::Integer(i) => Value::Number((*i).into()),
            FieldValue::UInteger(u) => Value::Number((*u).into()),
            FieldValue::Boolean(b) => Value::Bool(*b),
            FieldValue::String(s) => Value::String(s.to_string()),
        };
        fields.insert(k.to_string(), v);
    }
    let mut tags = Map::new();
    for (k, v) in &line.tags {
        tags.insert(k.to_string(), Value::String(v.to_string()));
    }
    let mut m = Map::new();
    m.insert("fields".into(), Value::Object(fields));
    m.insert("name".into(), Value::String(line.measurement.to_string()));
    m.insert("tags".into(), Value::Object(tags));
    let ts = line.timestamp.unwrap_or(0).div_euclid(units);
    m.insert("timestamp".into(), Value::Number(ts.into()));
    Value::Object(m)
}
