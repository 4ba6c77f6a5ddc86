//! DDSketch functions (crate `sketch`, 1 % relative accuracy):
//!
//! - `sketch(field)`: aggregate, the values' sketch as a binary value;
//! - `sketch_merge(sketch)`: aggregate, the merge of sketches (exact: the
//!   merge of the parts' sketches is the sketch of the whole);
//! - `sketch_quantile(sketch, q)`: scalar, a sketch's q-quantile, within
//!   1 % of the value of rank ⌊q·(n − 1)⌋ (no interpolation, unlike
//!   `quantiles`).
//!
//! `SELECT sketch_quantile(sketch_merge(s), 0.99) FROM (SELECT host,
//! sketch(ttfb_us) AS s FROM probe_http GROUP BY host)` is the p99 over all
//! hosts. A binary value that is not a sketch is an error naming why.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Float64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use sketch::{DDSketch, DEFAULT_ALPHA};

/// `sketch(field)`.
pub fn sketch_udaf() -> AggregateUDF {
    AggregateUDF::from(SketchAggregate {
        name: "sketch",
        input: Input::Values,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `sketch_merge(sketch)`.
pub fn sketch_merge_udaf() -> AggregateUDF {
    AggregateUDF::from(SketchAggregate {
        name: "sketch_merge",
        input: Input::Sketches,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `sketch_quantile(sketch, q)`.
pub fn sketch_quantile_udf() -> ScalarUDF {
    ScalarUDF::from(SketchQuantile {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// What an aggregate's argument holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Input {
    /// Numbers to count.
    Values,
    /// Sketches to merge.
    Sketches,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchAggregate {
    name: &'static str,
    input: Input,
    signature: Signature,
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null
    )
}

/// Decodes a sketch from a SQL value, naming the function on failure.
fn decode(function: &str, bytes: &[u8]) -> Result<DDSketch> {
    match DDSketch::decode(bytes) {
        Ok(s) => Ok(s),
        Err(e) => exec_err!("{function}: {e}"),
    }
}

impl AggregateUDFImpl for SketchAggregate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match (self.input, arg_types) {
            (Input::Values, [t]) if t.is_numeric() || *t == DataType::Null => {
                Ok(vec![DataType::Float64])
            }
            (Input::Sketches, [t]) if is_binary(t) => Ok(vec![DataType::Binary]),
            (Input::Values, _) => plan_err!("sketch(field) takes one numeric field"),
            (Input::Sketches, _) => {
                plan_err!("sketch_merge(sketch) takes one column of sketches (binary)")
            }
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let sketch = match DDSketch::new(DEFAULT_ALPHA) {
            Ok(s) => s,
            Err(e) => return exec_err!("{e}"),
        };
        Ok(Box::new(SketchAccumulator {
            name: self.name,
            input: self.input,
            sketch,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[sketch]", args.name),
            DataType::Binary,
            true,
        ))])
    }
}

#[derive(Debug)]
struct SketchAccumulator {
    name: &'static str,
    input: Input,
    sketch: DDSketch,
}

impl SketchAccumulator {
    fn merge_binary(&mut self, array: &dyn Array) -> Result<()> {
        for bytes in array.as_binary::<i32>().iter().flatten() {
            if let Err(e) = self.sketch.merge_encoded(bytes) {
                return exec_err!("{}: {e}", self.name);
            }
        }
        Ok(())
    }
}

impl Accumulator for SketchAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(array) = values.first() else {
            return Ok(());
        };
        match self.input {
            Input::Values => {
                for v in array.as_primitive::<Float64Type>().iter().flatten() {
                    self.sketch.add(v);
                }
                Ok(())
            }
            Input::Sketches => self.merge_binary(array.as_ref()),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        match states.first() {
            Some(array) => self.merge_binary(array.as_ref()),
            None => Ok(()),
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.sketch.encode()))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(
            (self.sketch.count() > 0).then(|| self.sketch.encode()),
        ))
    }

    fn size(&self) -> usize {
        self.sketch.size()
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchQuantile {
    signature: Signature,
}

impl ScalarUDFImpl for SketchQuantile {
    fn name(&self) -> &str {
        "sketch_quantile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [s, q] if is_binary(s) && (q.is_numeric() || *q == DataType::Null) => {
                Ok(vec![DataType::Binary, DataType::Float64])
            }
            _ => plan_err!("sketch_quantile(sketch, q) takes a sketch (binary) and a number"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (Some(sketches), Some(qs)) = (arrays.first(), arrays.get(1)) else {
            return exec_err!("sketch_quantile takes two arguments");
        };
        let sketches: &BinaryArray = sketches.as_binary::<i32>();
        let qs = qs.as_primitive::<Float64Type>();
        let mut out = Vec::with_capacity(sketches.len());
        for (bytes, q) in sketches.iter().zip(qs.iter()) {
            let (Some(bytes), Some(q)) = (bytes, q) else {
                out.push(None);
                continue;
            };
            match decode("sketch_quantile", bytes)?.quantile(q) {
                Ok(v) => out.push(v),
                Err(e) => return exec_err!("sketch_quantile: {e}"),
            }
        }
        let result = Arc::new(Float64Array::from(out)) as ArrayRef;
        // All-scalar arguments give a scalar back.
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?));
        }
        Ok(ColumnarValue::Array(result))
    }
}
