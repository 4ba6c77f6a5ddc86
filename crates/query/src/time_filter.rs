//! The time range a query's filters imply, so scans can skip data outside it.

use std::ops::RangeInclusive;

use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;
use store::catalog::TIME_COLUMN;

/// The range of `time` (ns, inclusive) outside which every row fails at
/// least one of `filters` (which DataFusion combines with AND). Filters
/// that say nothing about `time` leave it open.
pub(crate) fn time_range(filters: &[Expr]) -> RangeInclusive<i64> {
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    for filter in filters {
        if let Some(r) = bounds(filter) {
            lo = lo.max(*r.start());
            hi = hi.min(*r.end());
        }
    }
    lo..=hi
}

/// The inclusive range `filter` allows for `time`, if it is a comparison of
/// the time column with a timestamp literal (or a BETWEEN of two).
fn bounds(filter: &Expr) -> Option<RangeInclusive<i64>> {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, value) = match (is_time(left), is_time(right)) {
                (true, false) => (*op, nanos(right)?),
                (false, true) => (op.swap()?, nanos(left)?),
                _ => return None,
            };
            match op {
                Operator::Eq => Some(value..=value),
                Operator::Gt => Some(value.checked_add(1)?..=i64::MAX),
                Operator::GtEq => Some(value..=i64::MAX),
                Operator::Lt => Some(i64::MIN..=value.checked_sub(1)?),
                Operator::LtEq => Some(i64::MIN..=value),
                _ => None,
            }
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_time(expr) => Some(nanos(low)?..=nanos(high)?),
        _ => None,
    }
}

fn is_time(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(c) if c.name == TIME_COLUMN)
}

/// A timestamp literal in nanoseconds; `None` for anything else or on overflow.
fn nanos(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn ts(v: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(Some(v), None))
    }

    #[test]
    fn comparisons_narrow_the_range() {
        let filters = [
            col("time").gt_eq(ts(10)),
            ts(20).gt(col("time")),
            col("host").eq(lit("a")),
        ];
        assert_eq!(time_range(&filters), 10..=19);
        assert_eq!(time_range(&[col("time").between(ts(5), ts(7))]), 5..=7);
        assert_eq!(
            time_range(&[lit(ScalarValue::TimestampSecond(Some(2), None)).lt_eq(col("time"))]),
            2_000_000_000..=i64::MAX
        );
        assert_eq!(
            time_range(&[col("time").not_eq(ts(3))]),
            i64::MIN..=i64::MAX
        );
        assert_eq!(
            time_range(&[col("usage").gt(lit(1.0))]),
            i64::MIN..=i64::MAX
        );
    }
}
