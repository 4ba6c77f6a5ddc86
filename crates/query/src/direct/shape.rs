//! Which queries the direct path answers, all over one table, filtered by
//! time and tag values, sorted and limited: rows bucketed by `date_bin`
//! and grouped by tags with numeric fields aggregated ([`BucketQuery`]), and
//! rows as they are, also filtered by comparisons with numbers
//! ([`RowQuery`]).
//!
//! Recognition reads the parsed SQL and gives up on anything it does not
//! know, however harmless: every part of a query is either understood here
//! or makes the query DataFusion's. The parse is DataFusion's own (its
//! parser, its identifier normalisation), so names mean the same thing on
//! both paths.

use std::ops::RangeInclusive;

use arrow::compute::kernels::cast_utils::{
    parse_interval_month_day_nano_config, string_to_timestamp_nanos, IntervalParseConfig,
    IntervalUnit,
};
use arrow::compute::SortOptions;
use arrow::temporal_conversions::NANOSECONDS_IN_DAY;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr,
    Ident, Interval, LimitClause, ObjectName, ObjectNamePart, OrderBy, OrderByExpr, OrderByKind,
    Query, Select, SelectFlavor, SelectItem, SetExpr, Statement, TableFactor, TableWithJoins,
    UnaryOperator, Value,
};
use store::catalog::TIME_COLUMN;

/// An aggregate function the direct path computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregate {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

/// One column of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// `date_bin(INTERVAL …, time)` with this stride in nanoseconds: the
    /// start of each row's bucket (origin 1970-01-01).
    Bucket(i64),
    /// A tag column, grouped by.
    Tag(String),
    /// An aggregate of a column; `None` is `count(*)`.
    Aggregate(Aggregate, Option<String>),
}

/// A predicate of the `WHERE` clause other than on time: `column = 'v'`
/// or `column IN ('v', …)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueFilter {
    pub(crate) column: String,
    pub(crate) values: Vec<String>,
}

/// A bucketed aggregate query the direct path can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BucketQuery {
    pub(crate) table: String,
    /// Output names `GROUP BY` and `ORDER BY` refer to that are no column
    /// of the select list: if the table has a column of that name,
    /// DataFusion may read it as that column instead.
    pub(crate) by_alias: Vec<String>,
    /// The answer's columns: name and what it holds.
    pub(crate) outputs: Vec<(String, Output)>,
    /// Rows whose time lies in here (ns, both ends included).
    pub(crate) time: RangeInclusive<i64>,
    /// Rows must pass every one.
    pub(crate) filters: Vec<ValueFilter>,
    /// Sort keys: an output column and its order.
    pub(crate) order: Vec<(usize, SortOptions)>,
    pub(crate) limit: Option<usize>,
}

/// A number a column is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

/// `column <op> number` in a `WHERE` clause, `op` one of `>`, `>=`, `<`,
/// `<=`, `=`, `<>`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    pub(crate) column: String,
    pub(crate) op: BinaryOperator,
    pub(crate) number: Number,
}

/// An `ORDER BY` key of a row query, resolved against its columns later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OrderKey {
    /// A position in the select list, from 0.
    Position(usize),
    Name(String),
}

/// A query of rows as they are: `SELECT * | columns FROM t WHERE … ORDER BY
/// … LIMIT n`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowQuery {
    pub(crate) table: String,
    /// The selected columns, `None` for `*`.
    pub(crate) columns: Option<Vec<String>>,
    pub(crate) time: RangeInclusive<i64>,
    pub(crate) filters: Vec<ValueFilter>,
    pub(crate) comparisons: Vec<Comparison>,
    pub(crate) order: Vec<(OrderKey, SortOptions)>,
    pub(crate) limit: Option<usize>,
}

/// A query the direct path can answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DirectQuery {
    Buckets(BucketQuery),
    Rows(RowQuery),
}

/// The query `sql` asks, if it has one of the direct path's shapes.
pub(crate) fn recognise(sql: &str) -> Option<DirectQuery> {
    let mut statements = DFParser::parse_sql(sql).ok()?;
    if statements.len() != 1 {
        return None;
    }
    let DfStatement::Statement(statement) = statements.pop_front()? else {
        return None;
    };
    let Statement::Query(query) = *statement else {
        return None;
    };
    from_query(*query)
}

fn from_query(query: Query) -> Option<DirectQuery> {
    let Query {
        with,
        body,
        order_by,
        limit_clause,
        fetch,
        locks,
        for_clause,
        settings,
        format_clause,
        pipe_operators,
    } = query;
    let plain = with.is_none()
        && fetch.is_none()
        && locks.is_empty()
        && for_clause.is_none()
        && settings.is_none()
        && format_clause.is_none()
        && pipe_operators.is_empty();
    if !plain {
        return None;
    }
    let SetExpr::Select(select) = *body else {
        return None;
    };
    let PlainSelect {
        table,
        where_clause,
        group_by,
        projection,
    } = plain_select(*select)?;
    let Predicates {
        time,
        filters,
        comparisons,
    } = match where_clause {
        Some(expr) => predicates(expr)?,
        None => Predicates::default(),
    };
    let limit = limit(limit_clause)?;
    if group_by.is_empty() {
        return Some(DirectQuery::Rows(RowQuery {
            table,
            columns: row_columns(projection)?,
            time,
            filters,
            comparisons,
            order: row_order(order_by)?,
            limit,
        }));
    }
    if !comparisons.is_empty() {
        return None;
    }
    let outputs = projection
        .into_iter()
        .map(output)
        .collect::<Option<Vec<_>>>()?;
    let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    if (1..names.len()).any(|i| names[..i].contains(&names[i])) {
        return None;
    }
    let mut by_alias = check_group_by(&outputs, group_by)?;
    let order = order(&outputs, order_by, &mut by_alias)?;
    Some(DirectQuery::Buckets(BucketQuery {
        table,
        by_alias,
        order,
        limit,
        outputs,
        time,
        filters,
    }))
}

/// The columns of a row query: `None` for a lone `*`, else plain column
/// names, each once.
fn row_columns(projection: Vec<SelectItem>) -> Option<Option<Vec<String>>> {
    if let [SelectItem::Wildcard(options)] = projection.as_slice() {
        let plain = options.opt_ilike.is_none()
            && options.opt_exclude.is_none()
            && options.opt_except.is_none()
            && options.opt_replace.is_none()
            && options.opt_rename.is_none()
            && options.opt_alias.is_none();
        return plain.then_some(None);
    }
    let mut columns: Vec<String> = Vec::new();
    for item in projection {
        let SelectItem::UnnamedExpr(expr) = item else {
            return None;
        };
        let name = column(&expr)?;
        if columns.contains(&name) {
            return None;
        }
        columns.push(name);
    }
    Some(Some(columns))
}

/// The `ORDER BY` keys of a row query: positions or names.
fn row_order(order_by: Option<OrderBy>) -> Option<Vec<(OrderKey, SortOptions)>> {
    order_exprs(order_by)?
        .into_iter()
        .map(|(expr, options)| {
            let key = match number(&expr) {
                Some(n) => OrderKey::Position(n.checked_sub(1)?),
                None => OrderKey::Name(column(&expr)?),
            };
            Some((key, options))
        })
        .collect()
}

/// The parts of a `SELECT` the direct path reads.
struct PlainSelect {
    table: String,
    where_clause: Option<Expr>,
    group_by: Vec<Expr>,
    projection: Vec<SelectItem>,
}

/// The table, `WHERE`, `GROUP BY` and select list of a `SELECT` that uses
/// nothing else.
fn plain_select(select: Select) -> Option<PlainSelect> {
    let Select {
        select_token: _,
        optimizer_hints,
        distinct,
        select_modifiers,
        top,
        top_before_distinct: _,
        projection,
        exclude,
        into,
        from,
        lateral_views,
        prewhere,
        selection,
        connect_by,
        group_by,
        cluster_by,
        distribute_by,
        sort_by,
        having,
        named_window,
        qualify,
        window_before_qualify: _,
        value_table_mode,
        flavor,
    } = select;
    let plain = optimizer_hints.is_empty()
        && distinct.is_none()
        && select_modifiers.is_none()
        && top.is_none()
        && exclude.is_none()
        && into.is_none()
        && lateral_views.is_empty()
        && prewhere.is_none()
        && connect_by.is_empty()
        && cluster_by.is_empty()
        && distribute_by.is_empty()
        && sort_by.is_empty()
        && having.is_none()
        && named_window.is_empty()
        && qualify.is_none()
        && value_table_mode.is_none()
        && flavor == SelectFlavor::Standard;
    let [TableWithJoins { relation, joins }] = <[TableWithJoins; 1]>::try_from(from).ok()?;
    if !plain || !joins.is_empty() {
        return None;
    }
    let TableFactor::Table {
        name,
        alias: None,
        args: None,
        with_hints,
        version: None,
        with_ordinality: false,
        partitions,
        json_path: None,
        sample: None,
        index_hints,
    } = relation
    else {
        return None;
    };
    if !with_hints.is_empty() || !partitions.is_empty() || !index_hints.is_empty() {
        return None;
    }
    let GroupByExpr::Expressions(group_by, modifiers) = group_by else {
        return None;
    };
    if !modifiers.is_empty() {
        return None;
    }
    Some(PlainSelect {
        table: single_name(&name)?,
        where_clause: selection,
        group_by,
        projection,
    })
}

/// An identifier as DataFusion reads it: unquoted ones are lower-cased.
fn normalise(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

fn single_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(normalise(ident)),
        _ => None,
    }
}

fn column(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(normalise(ident)),
        _ => None,
    }
}

fn string(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn number(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, false) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// One item of the select list. Computed columns must be named (`AS`):
/// DataFusion's generated names are its own business.
fn output(item: SelectItem) -> Option<(String, Output)> {
    let (expr, alias) = match item {
        SelectItem::UnnamedExpr(expr) => (expr, None),
        SelectItem::ExprWithAlias { expr, alias } => (expr, Some(normalise(&alias))),
        _ => return None,
    };
    match &expr {
        Expr::Identifier(ident) => {
            let name = normalise(ident);
            Some((alias.unwrap_or_else(|| name.clone()), Output::Tag(name)))
        }
        Expr::Function(function) => Some((alias?, computed(function)?)),
        _ => None,
    }
}

/// `date_bin(INTERVAL '…', time)` or an aggregate of one column.
fn computed(function: &Function) -> Option<Output> {
    let Function {
        name,
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(list),
        filter: None,
        null_treatment: None,
        over: None,
        within_group,
    } = function
    else {
        return None;
    };
    if !within_group.is_empty() || list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    let args: Vec<&FunctionArgExpr> = list
        .args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(arg) => Some(arg),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let function = single_name(name)?;
    if function == "date_bin" {
        let [FunctionArgExpr::Expr(Expr::Interval(interval)), FunctionArgExpr::Expr(source)] =
            args.as_slice()
        else {
            return None;
        };
        if column(source)? != TIME_COLUMN {
            return None;
        }
        return Some(Output::Bucket(stride(interval)?));
    }
    let aggregate = match function.as_str() {
        "count" => Aggregate::Count,
        "sum" => Aggregate::Sum,
        "min" => Aggregate::Min,
        "max" => Aggregate::Max,
        "avg" => Aggregate::Avg,
        _ => return None,
    };
    match args.as_slice() {
        [FunctionArgExpr::Wildcard] if aggregate == Aggregate::Count => {
            Some(Output::Aggregate(aggregate, None))
        }
        [FunctionArgExpr::Expr(arg)] => Some(Output::Aggregate(aggregate, Some(column(arg)?))),
        _ => None,
    }
}

/// The stride of `INTERVAL '<n> <unit> …'` in nanoseconds, if it is a
/// fixed, positive length (no months: date_bin then works by calendar).
fn stride(interval: &Interval) -> Option<i64> {
    let Interval {
        value,
        leading_field: None,
        leading_precision: None,
        last_field: None,
        fractional_seconds_precision: None,
    } = interval
    else {
        return None;
    };
    // A number without a unit is seconds, as DataFusion's planner reads it.
    let config = IntervalParseConfig::new(IntervalUnit::Second);
    let parsed = parse_interval_month_day_nano_config(string(value)?, config).ok()?;
    if parsed.months != 0 {
        return None;
    }
    let stride = i64::from(parsed.days)
        .checked_mul(NANOSECONDS_IN_DAY)?
        .checked_add(parsed.nanoseconds)?;
    (stride > 0).then_some(stride)
}

/// The `GROUP BY` list must be exactly the select list's bucket and tags,
/// each named once: by position, by its output name, or (a tag) by its
/// column name. Returns the names used as output names: DataFusion reads
/// such a name as a column of the table if there is one.
fn check_group_by(outputs: &[(String, Output)], group_by: Vec<Expr>) -> Option<Vec<String>> {
    let mut grouped = vec![false; outputs.len()];
    let mut aliases = Vec::new();
    for expr in group_by {
        let at = match number(&expr) {
            Some(n) => n.checked_sub(1).filter(|&i| i < outputs.len())?,
            None => {
                let name = column(&expr)?;
                // A name both an output and another item's column is ambiguous.
                let by_output = outputs.iter().position(|(n, _)| *n == name);
                let by_column = outputs
                    .iter()
                    .position(|(_, o)| *o == Output::Tag(name.clone()));
                match (by_output, by_column) {
                    (Some(a), Some(b)) if a != b => return None,
                    (_, Some(a)) => a,
                    (Some(a), None) => {
                        aliases.push(name);
                        a
                    }
                    (None, None) => return None,
                }
            }
        };
        if matches!(outputs[at].1, Output::Aggregate(..)) || grouped[at] {
            return None;
        }
        grouped[at] = true;
    }
    let all = outputs
        .iter()
        .zip(&grouped)
        .all(|((_, o), g)| *g != matches!(o, Output::Aggregate(..)));
    all.then_some(aliases)
}

/// What a `WHERE` clause asks.
#[derive(Debug)]
struct Predicates {
    /// Rows whose time lies in here (ns, both ends included).
    time: RangeInclusive<i64>,
    filters: Vec<ValueFilter>,
    comparisons: Vec<Comparison>,
}

impl Default for Predicates {
    fn default() -> Self {
        Predicates {
            time: i64::MIN..=i64::MAX,
            filters: Vec::new(),
            comparisons: Vec::new(),
        }
    }
}

/// A number literal, `-` allowed.
fn number_literal(expr: &Expr) -> Option<Number> {
    let (negative, expr) = match expr {
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => (true, expr.as_ref()),
        _ => (false, expr),
    };
    let Expr::Value(v) = expr else {
        return None;
    };
    let Value::Number(text, false) = &v.value else {
        return None;
    };
    let number = match text.parse::<i64>() {
        Ok(n) => Number::Int(if negative { n.checked_neg()? } else { n }),
        // Digits beyond i64 are another type in DataFusion: leave them.
        Err(_) if text.bytes().all(|b| b.is_ascii_digit()) => return None,
        Err(_) => {
            let f: f64 = text.parse().ok()?;
            Number::Float(if negative { -f } else { f })
        }
    };
    Some(number)
}

/// The time range, tag filters and comparisons of a `WHERE` clause made of
/// `AND`ed comparisons of `time` with string timestamps, of columns with
/// strings (`=`, `IN`) and of columns with numbers.
fn predicates(expr: Expr) -> Option<Predicates> {
    let mut conjuncts = vec![expr];
    let Predicates {
        time,
        mut filters,
        mut comparisons,
    } = Predicates::default();
    let (mut from, mut to) = time.into_inner();
    while let Some(expr) = conjuncts.pop() {
        match expr {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                conjuncts.push(*right);
                conjuncts.push(*left);
            }
            Expr::BinaryOp { left, op, right } => {
                let name = column(&left)?;
                if let Some(number) = number_literal(&right) {
                    let compares = matches!(
                        op,
                        BinaryOperator::Gt
                            | BinaryOperator::GtEq
                            | BinaryOperator::Lt
                            | BinaryOperator::LtEq
                            | BinaryOperator::Eq
                            | BinaryOperator::NotEq
                    );
                    if !compares || name == TIME_COLUMN {
                        return None;
                    }
                    comparisons.push(Comparison {
                        column: name,
                        op,
                        number,
                    });
                    continue;
                }
                let value = string(&right)?;
                if name != TIME_COLUMN {
                    if op != BinaryOperator::Eq {
                        return None;
                    }
                    filters.push(ValueFilter {
                        column: name,
                        values: vec![value.to_owned()],
                    });
                    continue;
                }
                let t = string_to_timestamp_nanos(value).ok()?;
                match op {
                    BinaryOperator::GtEq => from = from.max(t),
                    BinaryOperator::Gt => from = from.max(t.checked_add(1)?),
                    BinaryOperator::LtEq => to = to.min(t),
                    BinaryOperator::Lt => to = to.min(t.checked_sub(1)?),
                    BinaryOperator::Eq => {
                        from = from.max(t);
                        to = to.min(t);
                    }
                    _ => return None,
                }
            }
            Expr::InList {
                expr,
                list,
                negated: false,
            } => {
                let name = column(&expr)?;
                if name == TIME_COLUMN {
                    return None;
                }
                let values = list
                    .iter()
                    .map(|v| string(v).map(str::to_owned))
                    .collect::<Option<Vec<_>>>()?;
                filters.push(ValueFilter {
                    column: name,
                    values,
                });
            }
            _ => return None,
        }
    }
    Some(Predicates {
        time: from..=to,
        filters,
        comparisons,
    })
}

/// The expressions and options of an `ORDER BY` without extras. Without
/// `NULLS FIRST|LAST`, nulls sort as the largest value (DataFusion's
/// default).
fn order_exprs(order_by: Option<OrderBy>) -> Option<Vec<(Expr, SortOptions)>> {
    let Some(OrderBy {
        kind,
        interpolate: None,
    }) = order_by
    else {
        return Some(Vec::new());
    };
    let OrderByKind::Expressions(exprs) = kind else {
        return None;
    };
    exprs
        .into_iter()
        .map(
            |OrderByExpr {
                 expr,
                 options,
                 with_fill,
             }| {
                if with_fill.is_some() {
                    return None;
                }
                let descending = options.asc == Some(false);
                let nulls_first = options.nulls_first.unwrap_or(descending);
                Some((
                    expr,
                    SortOptions {
                        descending,
                        nulls_first,
                    },
                ))
            },
        )
        .collect()
}

/// Sort keys of a bucket query, from `ORDER BY` positions or output names.
fn order(
    outputs: &[(String, Output)],
    order_by: Option<OrderBy>,
    by_alias: &mut Vec<String>,
) -> Option<Vec<(usize, SortOptions)>> {
    let mut keys = Vec::new();
    for (expr, options) in order_exprs(order_by)? {
        let at = match number(&expr) {
            Some(n) => n.checked_sub(1).filter(|&i| i < outputs.len())?,
            None => {
                let name = column(&expr)?;
                let at = outputs.iter().position(|(n, _)| *n == name)?;
                if outputs[at].1 != Output::Tag(name.clone()) {
                    by_alias.push(name);
                }
                at
            }
        };
        keys.push((at, options));
    }
    Some(keys)
}

fn limit(clause: Option<LimitClause>) -> Option<Option<usize>> {
    match clause {
        None => Some(None),
        Some(LimitClause::LimitOffset {
            limit: Some(limit),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => Some(Some(number(&limit)?)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(sql: &str) -> Option<BucketQuery> {
        match recognise(sql)? {
            DirectQuery::Buckets(q) => Some(q),
            DirectQuery::Rows(_) => None,
        }
    }

    fn minute_max(where_clause: &str) -> String {
        format!(
            "SELECT date_bin(INTERVAL '1 minute', time) AS minute, max(usage_user) AS m \
             FROM cpu WHERE {where_clause} GROUP BY 1 ORDER BY 1"
        )
    }

    #[test]
    fn reads_the_tsbs_shape() {
        let q = buckets(&minute_max(
            "hostname IN ('host_7', 'host_9') AND time >= '2016-01-01T05:13:00Z' \
             AND time < '2016-01-01T06:13:00Z'",
        ))
        .expect("recognised");
        assert_eq!(q.table, "cpu");
        assert_eq!(
            q.outputs,
            vec![
                ("minute".to_owned(), Output::Bucket(60_000_000_000)),
                (
                    "m".to_owned(),
                    Output::Aggregate(Aggregate::Max, Some("usage_user".to_owned()))
                ),
            ]
        );
        let start = 1_451_625_180_000_000_000;
        assert_eq!(q.time, start..=start + 3_600_000_000_000 - 1);
        assert_eq!(
            q.filters,
            vec![ValueFilter {
                column: "hostname".to_owned(),
                values: vec!["host_7".to_owned(), "host_9".to_owned()]
            }]
        );
        assert_eq!(q.order.len(), 1);
        assert!(!q.order[0].1.descending);
        assert_eq!(q.limit, None);
    }

    #[test]
    fn groups_by_names_and_sorts_descending_with_a_limit() {
        let q = buckets(
            "SELECT date_bin(INTERVAL '1 hour', time) AS hour, Hostname, avg(x) AS a, count(*) AS n \
             FROM cpu GROUP BY hostname, hour ORDER BY hour DESC, 2 LIMIT 5",
        )
        .expect("recognised");
        assert_eq!(
            q.outputs[1],
            ("hostname".to_owned(), Output::Tag("hostname".to_owned()))
        );
        assert_eq!(q.outputs[3].1, Output::Aggregate(Aggregate::Count, None));
        assert_eq!(q.order[0].0, 0);
        assert!(q.order[0].1.descending && q.order[0].1.nulls_first);
        assert_eq!(q.order[1].0, 1);
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.time, i64::MIN..=i64::MAX);
    }

    #[test]
    fn reads_row_queries() {
        let Some(DirectQuery::Rows(q)) = recognise(
            "SELECT * FROM cpu WHERE usage_user > 90 AND x <= -2.5 AND hostname IN ('a') \
             AND time >= '2016-01-01T00:00:00Z' ORDER BY time DESC, 2 LIMIT 3",
        ) else {
            panic!("not a row query");
        };
        assert_eq!(q.columns, None);
        assert_eq!(
            q.comparisons,
            vec![
                Comparison {
                    column: "usage_user".to_owned(),
                    op: BinaryOperator::Gt,
                    number: Number::Int(90)
                },
                Comparison {
                    column: "x".to_owned(),
                    op: BinaryOperator::LtEq,
                    number: Number::Float(-2.5)
                },
            ]
        );
        assert_eq!(q.filters.len(), 1);
        assert_eq!(*q.time.start(), 1_451_606_400_000_000_000);
        assert_eq!(q.order[0].0, OrderKey::Name("time".to_owned()));
        assert!(q.order[0].1.descending);
        assert_eq!(q.order[1].0, OrderKey::Position(1));
        assert_eq!(q.limit, Some(3));
        let Some(DirectQuery::Rows(q)) = recognise("SELECT time, Host FROM cpu") else {
            panic!("not a row query");
        };
        assert_eq!(q.columns, Some(vec!["time".to_owned(), "host".to_owned()]));
    }

    #[test]
    fn reads_interval_numbers_without_a_unit_as_seconds() {
        let q = buckets(
            "SELECT date_bin(INTERVAL '0.5', time) AS b, count(*) AS n FROM cpu GROUP BY 1",
        )
        .expect("recognised");
        assert_eq!(q.outputs[0].1, Output::Bucket(500_000_000));
    }

    #[test]
    fn leaves_everything_else_to_datafusion() {
        for sql in [
            // Not grouped, a projection, a join, a subquery, a CTE.
            "SELECT max(x) AS m FROM cpu",
            "SELECT *, h FROM cpu",
            "SELECT * EXCLUDE (h) FROM cpu",
            "SELECT h AS g FROM cpu",
            "SELECT h, h FROM cpu",
            "SELECT * FROM cpu WHERE x > 9223372036854775808",
            "SELECT * FROM cpu WHERE 90 < x",
            "SELECT * FROM cpu WHERE x > 1 + 1",
            "SELECT * FROM cpu WHERE time > 5",
            "SELECT a.h, max(x) AS m FROM cpu a GROUP BY 1",
            "SELECT h, max(x) AS m FROM cpu JOIN mem USING (h) GROUP BY 1",
            "SELECT h, max(x) AS m FROM (SELECT * FROM cpu) GROUP BY 1",
            "WITH c AS (SELECT 1) SELECT h, max(x) AS m FROM cpu GROUP BY 1",
            // Unnamed aggregate, unknown function, expression argument.
            "SELECT h, max(x) FROM cpu GROUP BY 1",
            "SELECT h, median(x) AS m FROM cpu GROUP BY 1",
            "SELECT h, max(x + 1) AS m FROM cpu GROUP BY 1",
            "SELECT h, max(DISTINCT x) AS m FROM cpu GROUP BY 1",
            "SELECT h, count(x) FILTER (WHERE x > 1) AS m FROM cpu GROUP BY 1",
            // A group key not selected, a selected column not grouped.
            "SELECT max(x) AS m FROM cpu GROUP BY h",
            "SELECT h, g, max(x) AS m FROM cpu GROUP BY h",
            // Calendar and odd intervals, another origin, another source.
            "SELECT date_bin(INTERVAL '1 month', time) AS b, max(x) AS m FROM cpu GROUP BY 1",
            "SELECT date_bin(INTERVAL '0 seconds', time) AS b, max(x) AS m FROM cpu GROUP BY 1",
            "SELECT date_bin(INTERVAL '1' HOUR, time) AS b, max(x) AS m FROM cpu GROUP BY 1",
            "SELECT date_bin(INTERVAL '1 hour', time, '2000-01-01T00:00:00Z') AS b, max(x) AS m FROM cpu GROUP BY 1",
            "SELECT date_bin(INTERVAL '1 hour', other) AS b, max(x) AS m FROM cpu GROUP BY 1",
            // Predicates beyond time ranges and tag equality.
            "SELECT h, max(x) AS m FROM cpu WHERE x > 90 GROUP BY 1",
            "SELECT h, max(x) AS m FROM cpu WHERE h = 'a' OR h = 'b' GROUP BY 1",
            "SELECT h, max(x) AS m FROM cpu WHERE h NOT IN ('a') GROUP BY 1",
            "SELECT h, max(x) AS m FROM cpu WHERE time >= now() GROUP BY 1",
            "SELECT h, max(x) AS m FROM cpu WHERE time >= 'yesterday' GROUP BY 1",
            "SELECT h, max(x) AS m FROM cpu WHERE (h = 'a') GROUP BY 1",
            // HAVING, OFFSET, DISTINCT, two statements, EXPLAIN.
            "SELECT h, max(x) AS m FROM cpu GROUP BY 1 HAVING max(x) > 1",
            "SELECT h, max(x) AS m FROM cpu GROUP BY 1 LIMIT 5 OFFSET 1",
            "SELECT DISTINCT h, max(x) AS m FROM cpu GROUP BY 1",
            "SELECT h, max(x) AS m FROM cpu GROUP BY 1; SELECT 1",
            "EXPLAIN SELECT h, max(x) AS m FROM cpu GROUP BY 1",
            // Duplicate output names; an unknown sort key.
            "SELECT h, max(x) AS h FROM cpu GROUP BY 1",
            "SELECT h, max(x) AS m FROM cpu GROUP BY 1 ORDER BY y",
            "SELECT h, max(x) AS m FROM cpu GROUP BY 1 ORDER BY 3",
        ] {
            assert_eq!(recognise(sql), None, "{sql}");
        }
    }
}
