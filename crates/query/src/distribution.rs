//! Distribution aggregates, exact over the rows they see:
//!
//! - `quantiles(field, q1, q2, …)`: the field's quantiles as a list of
//!   floats, linearly interpolated between neighbouring values (as
//!   `percentile_cont`), one per constant `q` in 0..=1;
//! - `cdf(field, n)`: the empirical CDF at `n` evenly spaced fractions, as
//!   a list of `{value, fraction}`: for fraction i/n, the smallest value
//!   with at least that share of the rows at or below it. Monotone in both,
//!   and the last point is (max, 1).
//!
//! Over numbers both keep every value of a group in memory (as `median`
//! does) and are exact. Over a sketch column (the `F_sketch` columns of the
//! rollup tables `<table>_30m` and `_1d`, or `sketch(field)`) they merge the
//! sketches and answer from the merge: within 1 % of a value of the
//! distribution, in memory bounded by the sketch. NULLs and NaNs are
//! skipped; a group with no values gives NULL.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float64Array, ListArray, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, EmitTo, GroupsAccumulator,
    Signature, Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use sketch::DDSketch;

/// The most points `cdf` returns.
pub const MAX_CDF_POINTS: i64 = 10_000;

/// `quantiles(field, q1, q2, …)`.
pub fn quantiles_udaf() -> AggregateUDF {
    AggregateUDF::from(Quantiles {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `cdf(field, n)`.
pub fn cdf_udaf() -> AggregateUDF {
    AggregateUDF::from(Cdf {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Quantiles {
    signature: Signature,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Cdf {
    signature: Signature,
}

fn float_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
}

fn point_fields() -> Fields {
    Fields::from(vec![
        Field::new("value", DataType::Float64, false),
        Field::new("fraction", DataType::Float64, false),
    ])
}

fn numeric_or_null(t: &DataType) -> bool {
    t.is_numeric() || *t == DataType::Null
}

/// Whether a first argument of this type is a column of encoded sketches.
fn is_sketch(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// The type the first argument is coerced to: sketches stay binary.
fn field_type(t: &DataType) -> DataType {
    if is_sketch(t) {
        DataType::Binary
    } else {
        DataType::Float64
    }
}

/// The partial state of an aggregate over sketches: one merged sketch.
fn sketch_state(args: &StateFieldsArgs) -> Vec<FieldRef> {
    vec![Arc::new(Field::new(
        format!("{}[sketch]", args.name),
        DataType::Binary,
        true,
    ))]
}

/// Whether the aggregate's input (its first argument) is a sketch column.
fn sketch_input(args: &AccumulatorArgs) -> bool {
    args.expr_fields
        .first()
        .is_some_and(|f| is_sketch(f.data_type()))
}

/// The value of a constant argument (a literal, or a cast of one).
fn constant(expr: &Arc<dyn PhysicalExpr>) -> Option<ScalarValue> {
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    match expr.evaluate(&empty) {
        Ok(ColumnarValue::Scalar(s)) => Some(s),
        _ => None,
    }
}

/// The partial state of both aggregates: a sketch over sketches, else the
/// list of values.
fn state_of(args: &StateFieldsArgs) -> Vec<FieldRef> {
    if args
        .input_fields
        .first()
        .is_some_and(|f| is_sketch(f.data_type()))
    {
        return sketch_state(args);
    }
    vec![Arc::new(Field::new(
        format!("{}[values]", args.name),
        float_list(),
        true,
    ))]
}

impl AggregateUDFImpl for Quantiles {
    fn name(&self) -> &str {
        "quantiles"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 2 {
            return plan_err!("quantiles(field, q1, q2, …) needs a field and at least one q");
        }
        let field = &arg_types[0];
        if !numeric_or_null(field) && !is_sketch(field) {
            return plan_err!("quantiles takes numbers or sketches, not {field}");
        }
        if let Some(t) = arg_types[1..].iter().find(|t| !numeric_or_null(t)) {
            return plan_err!("quantiles: each q must be a number, not {t}");
        }
        let mut types = vec![DataType::Float64; arg_types.len()];
        types[0] = field_type(field);
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(float_list())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(accumulator_for(&args, quantiles_finish(&args)?))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        sketch_input(&args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(SketchGroups::new(quantiles_finish(&args)?)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_of(&args))
    }
}

/// The one-group accumulator: over sketches, or over numbers.
fn accumulator_for(args: &AccumulatorArgs, finish: Finish) -> Box<dyn Accumulator> {
    if sketch_input(args) {
        Box::new(Sketches::new(finish))
    } else {
        Box::new(Values::new(finish))
    }
}

/// The qs of a `quantiles` call: its constant arguments after the first.
fn quantiles_finish(args: &AccumulatorArgs) -> Result<Finish> {
    let mut qs = Vec::with_capacity(args.exprs.len().saturating_sub(1));
    for (i, expr) in args.exprs.iter().enumerate().skip(1) {
        match constant(expr) {
            Some(ScalarValue::Float64(Some(q))) if (0.0..=1.0).contains(&q) => qs.push(q),
            Some(v) => {
                return plan_err!(
                    "quantiles: argument {} is {v}; each q must be a number from 0 to 1",
                    i + 1
                )
            }
            None => return plan_err!("quantiles: argument {} must be a constant", i + 1),
        }
    }
    Ok(Finish::Quantiles(qs))
}

impl AggregateUDFImpl for Cdf {
    fn name(&self) -> &str {
        "cdf"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [field, n]
                if (numeric_or_null(field) || is_sketch(field))
                    && (n.is_integer() || *n == DataType::Null) =>
            {
                Ok(vec![field_type(field), DataType::Int64])
            }
            _ => plan_err!(
                "cdf(field, n) takes a numeric field (or a sketch column) and an integer number of points"
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(point_fields()),
            true,
        ))))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(accumulator_for(&args, cdf_finish(&args)?))
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        sketch_input(&args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(SketchGroups::new(cdf_finish(&args)?)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_of(&args))
    }
}

/// The number of points of a `cdf` call: its constant second argument.
fn cdf_finish(args: &AccumulatorArgs) -> Result<Finish> {
    let n = match args.exprs.get(1).and_then(constant) {
        Some(ScalarValue::Int64(Some(n))) if (1..=MAX_CDF_POINTS).contains(&n) => n,
        Some(v) => return plan_err!("cdf: n is {v}; it must be from 1 to {MAX_CDF_POINTS}"),
        None => return plan_err!("cdf: n must be a constant"),
    };
    Ok(Finish::Cdf(n as usize))
}

/// What to make of the collected values.
#[derive(Debug)]
enum Finish {
    Quantiles(Vec<f64>),
    Cdf(usize),
}

impl Finish {
    /// The answer of a group without values: NULL of the result type.
    fn empty(&self) -> Result<ScalarValue> {
        ScalarValue::try_from(&match self {
            Finish::Quantiles(_) => float_list(),
            Finish::Cdf(_) => DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(point_fields()),
                true,
            ))),
        })
    }

    /// The answer, given the values of the quantiles `qs` and of CDF points
    /// 1..=n of n.
    fn answer(
        &self,
        quantiles: impl FnOnce(&[f64]) -> Vec<f64>,
        cdf_values: impl FnOnce(usize) -> Vec<f64>,
    ) -> ScalarValue {
        match self {
            Finish::Quantiles(qs) => {
                let out = Float64Array::from(quantiles(qs));
                SingleRowListArrayBuilder::new(Arc::new(out)).build_list_scalar()
            }
            Finish::Cdf(n) => {
                let values = cdf_values(*n);
                let fractions: Vec<f64> = (1..=*n).map(|i| i as f64 / *n as f64).collect();
                let points = StructArray::new(
                    point_fields(),
                    vec![
                        Arc::new(Float64Array::from(values)) as ArrayRef,
                        Arc::new(Float64Array::from(fractions)) as ArrayRef,
                    ],
                    None,
                );
                let list = ListArray::new(
                    Arc::new(Field::new_list_field(
                        DataType::Struct(point_fields()),
                        true,
                    )),
                    OffsetBuffer::from_lengths([*n]),
                    Arc::new(points),
                    None,
                );
                ScalarValue::List(Arc::new(list))
            }
        }
    }
}

/// Merges a group's sketches; finishes as quantiles or a CDF from the
/// merged sketch.
#[derive(Debug)]
struct Sketches {
    finish: Finish,
    merged: DDSketch,
}

impl Sketches {
    fn new(finish: Finish) -> Sketches {
        Sketches {
            finish,
            merged: DDSketch::default(),
        }
    }

    fn merge(&mut self, array: &dyn Array) -> Result<()> {
        let Some(binary) = array.as_binary_opt::<i32>() else {
            return plan_err!("expected a column of sketches, got {}", array.data_type());
        };
        for bytes in binary.iter().flatten() {
            self.merged
                .merge_encoded(bytes)
                .map_err(|e| DataFusionError::Execution(format!("merging a sketch: {e}")))?;
        }
        Ok(())
    }
}

impl Accumulator for Sketches {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(a) => self.merge(a.as_ref()),
            None => Ok(()),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.merged.encode()))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        answer_from_sketch(&self.finish, &self.merged)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.merged.size()
    }
}

/// The answer of a merged sketch: quantiles interpolated as over exact
/// values, CDF points at their ranks; NULL if it is empty.
fn answer_from_sketch(finish: &Finish, sketch: &DDSketch) -> Result<ScalarValue> {
    if sketch.count() == 0 {
        return finish.empty();
    }
    let or_nan = |values: Result<Vec<Option<f64>>, _>, len: usize| match values {
        Ok(v) => v.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
        Err(_) => vec![f64::NAN; len],
    };
    Ok(finish.answer(
        |qs| or_nan(sketch.quantiles_interpolated(qs), qs.len()),
        |n| {
            let fractions: Vec<f64> = (1..=n).map(|i| i as f64 / n as f64).collect();
            or_nan(sketch.quantiles(&fractions), n)
        },
    ))
}

/// [`Sketches`] for every group of a grouped aggregation at once: each row's
/// sketch merges straight into its group's, without DataFusion splitting
/// the batch per group first.
#[derive(Debug)]
struct SketchGroups {
    finish: Finish,
    groups: Vec<DDSketch>,
}

impl SketchGroups {
    fn new(finish: Finish) -> SketchGroups {
        SketchGroups {
            finish,
            groups: Vec::new(),
        }
    }
}

impl GroupsAccumulator for SketchGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups
            .resize_with(total_num_groups.max(self.groups.len()), DDSketch::default);
        let Some(binary) = values.first().and_then(|a| a.as_binary_opt::<i32>()) else {
            return plan_err!("expected a column of sketches");
        };
        for (row, &group) in group_indices.iter().enumerate() {
            let kept = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if !kept || binary.is_null(row) {
                continue;
            }
            let Some(sketch) = self.groups.get_mut(group) else {
                return plan_err!("group {group} of {total_num_groups}");
            };
            sketch
                .merge_encoded(binary.value(row))
                .map_err(|e| DataFusionError::Execution(format!("merging a sketch: {e}")))?;
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.update_batch(values, group_indices, None, total_num_groups)
    }

    /// A row's state is its own sketch (filtered rows: none).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let Some(binary) = values.first().and_then(|a| a.as_binary_opt::<i32>()) else {
            return plan_err!("expected a column of sketches");
        };
        let kept: BinaryArray = binary
            .iter()
            .enumerate()
            .map(|(row, v)| {
                v.filter(|_| opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row)))
            })
            .collect();
        Ok(vec![Arc::new(kept)])
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        if groups.is_empty() {
            return self.finish.empty()?.to_array_of_size(0);
        }
        let answers = groups
            .iter()
            .map(|g| answer_from_sketch(&self.finish, g))
            .collect::<Result<Vec<_>>>()?;
        ScalarValue::iter_to_array(answers)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        let encoded: BinaryArray = groups.iter().map(|g| Some(g.encode())).collect();
        Ok(vec![Arc::new(encoded)])
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.groups.iter().map(DDSketch::size).sum::<usize>()
    }
}

/// Collects a group's values; finishes as quantiles or a CDF.
#[derive(Debug)]
struct Values {
    finish: Finish,
    values: Vec<f64>,
}

impl Values {
    fn new(finish: Finish) -> Values {
        Values {
            finish,
            values: Vec::new(),
        }
    }

    fn extend(&mut self, array: &dyn Array) {
        let floats = array.as_primitive::<Float64Type>();
        self.values
            .extend(floats.iter().flatten().filter(|v| !v.is_nan()));
    }
}

/// The q-quantile of sorted, non-empty `v`, interpolated linearly.
fn interpolate(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

impl Accumulator for Values {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if let Some(a) = values.first() {
            self.extend(a.as_ref());
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first() else {
            return Ok(());
        };
        let lists = lists.as_list::<i32>();
        for i in 0..lists.len() {
            if !lists.is_null(i) {
                self.extend(lists.value(i).as_ref());
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let array = Arc::new(Float64Array::from(std::mem::take(&mut self.values)));
        Ok(vec![
            SingleRowListArrayBuilder::new(array).build_list_scalar()
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let v = &mut self.values;
        if v.is_empty() {
            return self.finish.empty();
        }
        v.sort_unstable_by(f64::total_cmp);
        let total = v.len();
        Ok(self.finish.answer(
            |qs| qs.iter().map(|&q| interpolate(v, q)).collect(),
            |n| {
                (1..=n)
                    .map(|i| {
                        // The smallest rank r with r / total >= i / n.
                        let rank = (i * total).div_ceil(n).max(1);
                        v[rank - 1]
                    })
                    .collect()
            },
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_matches_percentile_cont() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(interpolate(&v, 0.0), 1.0);
        assert_eq!(interpolate(&v, 1.0), 4.0);
        assert_eq!(interpolate(&v, 0.5), 2.5);
        assert_eq!(interpolate(&[7.0], 0.3), 7.0);
    }
}
