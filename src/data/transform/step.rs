//! The steps of a transform process: what each does to the schema (checked when the process
//! is compiled, so a bad column name fails before any data is read) and to a row.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::condition::{Compiled as Cond, Condition};
use super::{Policies, UnknownCategory};
use crate::data::schema::{Column, ColumnType, Schema, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MathOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    /// Natural logarithm.
    Log,
    Abs,
    /// Clip to [min, max].
    Clip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Add,
    Subtract,
    Multiply,
    Divide,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// (x - min) / (max - min)
    MinMax,
    /// (x - mean) / stdev
    Standardize,
    /// ln(1 + x - min)
    Log,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImputeStrategy {
    Mean,
    Median,
    Mode,
    Constant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeField {
    Year,
    Month,
    Day,
    /// Monday = 1 .. Sunday = 7.
    Weekday,
    Hour,
    Minute,
    DayOfYear,
}

impl TimeField {
    /// The column `derive_time` makes from `column` for this field: `<column>_<field>`.
    pub fn column_name(self, column: &str) -> String {
        let field =
            serde_json::to_value(self).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        format!("{column}_{field}")
    }
}

/// Statistics a normaliser was fitted with; stored in the process so training and
/// inference use the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NormStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub stdev: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    RemoveColumns {
        columns: Vec<String>,
    },
    KeepColumns {
        columns: Vec<String>,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    /// These columns first, in this order; the others after them, as they were.
    ReorderColumns {
        order: Vec<String>,
    },
    DuplicateColumn {
        column: String,
        to: String,
    },
    /// States given, or learned from the data when fitting (sorted).
    StringToCategorical {
        column: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        states: Option<Vec<String>>,
    },
    /// Integers to categories, by a table (DataVec's IntegerToCategoricalTransform; JSON keys
    /// are the integers, as text): states in the order of their integers.
    IntegerToCategorical {
        column: String,
        map: std::collections::BTreeMap<String, String>,
    },
    CategoricalToInteger {
        column: String,
    },
    CategoricalToOneHot {
        column: String,
    },
    IntegerToOneHot {
        column: String,
        min: i64,
        max: i64,
    },
    /// Parses text as a time with an explicit strftime format and IANA time zone.
    StringToTime {
        column: String,
        format: String,
        zone: String,
    },
    /// Appends `<column>_<field>` columns, in `zone` (default UTC).
    DeriveTime {
        column: String,
        fields: Vec<TimeField>,
        #[serde(default = "utc")]
        zone: String,
    },
    Math {
        column: String,
        op: MathOp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// `to = left op right`, appended.
    ColumnMath {
        left: String,
        right: String,
        op: BinOp,
        to: String,
    },
    ConditionalReplace {
        column: String,
        condition: Condition,
        value: serde_json::Value,
    },
    /// Removes the rows the condition holds for.
    Filter {
        remove: Condition,
    },
    Normalize {
        column: String,
        kind: NormKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stats: Option<NormStats>,
    },
    /// Replaces missing values (and NaN) with the mean, median or mode fitted on the data, or
    /// a constant.
    Impute {
        column: String,
        strategy: ImputeStrategy,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
    },
}

fn utc() -> String {
    "UTC".into()
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::RemoveColumns { .. } => "remove_columns",
            Step::KeepColumns { .. } => "keep_columns",
            Step::RenameColumn { .. } => "rename_column",
            Step::ReorderColumns { .. } => "reorder_columns",
            Step::DuplicateColumn { .. } => "duplicate_column",
            Step::StringToCategorical { .. } => "string_to_categorical",
            Step::IntegerToCategorical { .. } => "integer_to_categorical",
            Step::CategoricalToInteger { .. } => "categorical_to_integer",
            Step::CategoricalToOneHot { .. } => "categorical_to_one_hot",
            Step::IntegerToOneHot { .. } => "integer_to_one_hot",
            Step::StringToTime { .. } => "string_to_time",
            Step::DeriveTime { .. } => "derive_time",
            Step::Math { .. } => "math",
            Step::ColumnMath { .. } => "column_math",
            Step::ConditionalReplace { .. } => "conditional_replace",
            Step::Filter { .. } => "filter",
            Step::Normalize { .. } => "normalize",
            Step::Impute { .. } => "impute",
        }
    }

    /// Still needs statistics from the data.
    pub fn needs_fit(&self) -> bool {
        match self {
            Step::StringToCategorical { states, .. } => states.is_none(),
            Step::Normalize { stats, .. } => stats.is_none(),
            Step::Impute { strategy, value, .. } => value.is_none() && *strategy != ImputeStrategy::Constant,
            _ => false,
        }
    }

    /// The one column a fittable step reads.
    pub fn fit_column(&self) -> Option<&str> {
        match self {
            Step::StringToCategorical { column, .. }
            | Step::Normalize { column, .. }
            | Step::Impute { column, .. } => Some(column),
            _ => None,
        }
    }
}

/// Why a row cannot go on.
#[derive(Clone, Debug, PartialEq)]
pub enum RowIssue {
    /// A category outside the known states (the unknown-category policy decides).
    Unknown { column: String, value: String },
    /// A value the step cannot use (the invalid-record policy decides).
    Invalid { column: String, value: String, message: String },
}

/// A step with its columns resolved.
#[derive(Clone, Debug)]
pub enum Op {
    /// Keep these input columns, in this order.
    Select(Vec<usize>),
    Nothing,
    Duplicate(usize),
    Categorical {
        col: usize,
        name: String,
        states: HashMap<Box<str>, u32>,
        list: Vec<String>,
        reserved: Option<u32>,
    },
    IntToCat {
        col: usize,
        name: String,
        map: HashMap<i64, Box<str>>,
    },
    CatToInt {
        col: usize,
        name: String,
        states: HashMap<Box<str>, u32>,
    },
    OneHot {
        col: usize,
        name: String,
        states: HashMap<Box<str>, u32>,
        width: usize,
    },
    IntOneHot {
        col: usize,
        name: String,
        min: i64,
        width: usize,
    },
    ToTime {
        col: usize,
        name: String,
        format: String,
        zone: jiff::tz::TimeZone,
    },
    Derive {
        col: usize,
        fields: Vec<TimeField>,
        zone: jiff::tz::TimeZone,
    },
    Math {
        col: usize,
        name: String,
        op: MathOp,
        value: f64,
        min: f64,
        max: f64,
    },
    ColumnMath {
        left: usize,
        right: usize,
        op: BinOp,
        name: String,
    },
    Replace {
        col: usize,
        cond: Cond,
        value: Value,
    },
    Filter(Cond),
    Normalize {
        col: usize,
        name: String,
        kind: NormKind,
        a: f64,
        b: f64,
    },
    Impute {
        col: usize,
        value: Value,
    },
    /// A fittable step not fitted yet (only when compiling a prefix for fitting).
    Unfitted,
}

fn find(schema: &Schema, name: &str) -> Result<usize, String> {
    schema
        .index(name)
        .ok_or_else(|| format!("no column '{name}' here (columns: {})", schema.names().join(", ")))
}

fn numeric(schema: &Schema, c: usize) -> Result<(), String> {
    let col = &schema.columns[c];
    if col.kind.is_numeric() {
        Ok(())
    } else {
        Err(format!("column '{}' is {}; this step needs a number", col.name, col.kind.name()))
    }
}

fn state_map(states: &[String]) -> HashMap<Box<str>, u32> {
    states.iter().enumerate().map(|(i, s)| (s.as_str().into(), i as u32)).collect()
}

fn categorical(schema: &Schema, c: usize) -> Result<Vec<String>, String> {
    match &schema.columns[c].kind {
        ColumnType::Categorical { states } => Ok(states.clone()),
        other => Err(format!(
            "column '{}' is {}; this step needs a categorical column (use string_to_categorical first)",
            schema.columns[c].name,
            other.name()
        )),
    }
}

/// A JSON value as a value of `kind`.
pub fn typed(v: &serde_json::Value, kind: &ColumnType) -> Result<Value, String> {
    let bad = || format!("{v} is not a {} value", kind.name());
    Ok(match (v, kind) {
        (serde_json::Value::Null, _) => Value::Missing,
        (serde_json::Value::Number(n), ColumnType::Integer | ColumnType::Long) => {
            Value::Int(n.as_i64().ok_or_else(bad)?)
        }
        (serde_json::Value::Number(n), ColumnType::Double | ColumnType::Float) => {
            Value::Float(n.as_f64().ok_or_else(bad)?)
        }
        (serde_json::Value::Number(n), ColumnType::Time) => Value::Time(n.as_i64().ok_or_else(bad)?),
        (serde_json::Value::Bool(b), ColumnType::Boolean) => Value::Bool(*b),
        (serde_json::Value::String(s), ColumnType::String | ColumnType::Categorical { .. }) => {
            Value::Str(s.as_str().into())
        }
        (serde_json::Value::Number(n), ColumnType::String | ColumnType::Categorical { .. }) => {
            Value::Str(n.to_string().into())
        }
        _ => return Err(bad()),
    })
}

fn zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    jiff::tz::TimeZone::get(name)
        .map_err(|e| format!("unknown time zone '{name}' (use an IANA name like Europe/Berlin or UTC): {e}"))
}

impl Step {
    /// Resolves the step against `schema` and turns `schema` into the schema after it.
    pub fn compile(&self, schema: &mut Schema, policies: &Policies) -> Result<Op, String> {
        let op = match self {
            Step::RemoveColumns { columns } => {
                for c in columns {
                    find(schema, c)?;
                }
                let keep: Vec<usize> = (0..schema.columns.len())
                    .filter(|&i| !columns.contains(&schema.columns[i].name))
                    .collect();
                schema.columns = keep.iter().map(|&i| schema.columns[i].clone()).collect();
                Op::Select(keep)
            }
            Step::KeepColumns { columns } | Step::ReorderColumns { order: columns } => {
                let mut idx = Vec::new();
                for c in columns {
                    idx.push(find(schema, c)?);
                }
                if matches!(self, Step::ReorderColumns { .. }) {
                    let rest: Vec<usize> = (0..schema.columns.len()).filter(|i| !idx.contains(i)).collect();
                    idx.extend(rest);
                }
                schema.columns = idx.iter().map(|&i| schema.columns[i].clone()).collect();
                Op::Select(idx)
            }
            Step::RenameColumn { from, to } => {
                let c = find(schema, from)?;
                if schema.index(to).is_some() {
                    return Err(format!("a column '{to}' exists already"));
                }
                schema.columns[c].name = to.clone();
                Op::Nothing
            }
            Step::DuplicateColumn { column, to } => {
                let c = find(schema, column)?;
                if schema.index(to).is_some() {
                    return Err(format!("a column '{to}' exists already"));
                }
                let kind = schema.columns[c].kind.clone();
                schema.columns.push(Column { name: to.clone(), kind });
                Op::Duplicate(c)
            }
            Step::StringToCategorical { column, states } => {
                let c = find(schema, column)?;
                if !matches!(schema.columns[c].kind, ColumnType::String | ColumnType::Categorical { .. }) {
                    return Err(format!(
                        "column '{column}' is {}; expected text",
                        schema.columns[c].kind.name()
                    ));
                }
                let Some(states) = states else { return Ok(Op::Unfitted) };
                let mut list = states.clone();
                let reserved = match &policies.unknown_category {
                    UnknownCategory::Reserved => {
                        if !list.contains(&policies.reserved_state) {
                            list.push(policies.reserved_state.clone());
                        }
                        list.iter().position(|s| *s == policies.reserved_state).map(|i| i as u32)
                    }
                    _ => None,
                };
                schema.columns[c].kind = ColumnType::Categorical { states: list.clone() };
                Op::Categorical { col: c, name: column.clone(), states: state_map(&list), list, reserved }
            }
            Step::IntegerToCategorical { column, map } => {
                let c = find(schema, column)?;
                if !matches!(schema.columns[c].kind, ColumnType::Integer | ColumnType::Long) {
                    return Err(format!(
                        "column '{column}' is {}; expected an integer",
                        schema.columns[c].kind.name()
                    ));
                }
                let mut pairs = map
                    .iter()
                    .map(|(k, v)| {
                        k.trim()
                            .parse::<i64>()
                            .map(|k| (k, v.clone()))
                            .map_err(|_| format!("map key '{k}' is not an integer"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if pairs.is_empty() {
                    return Err("the map is empty".into());
                }
                pairs.sort_by_key(|(k, _)| *k);
                schema.columns[c].kind =
                    ColumnType::Categorical { states: pairs.iter().map(|(_, v)| v.clone()).collect() };
                Op::IntToCat {
                    col: c,
                    name: column.clone(),
                    map: pairs.into_iter().map(|(k, v)| (k, v.into())).collect(),
                }
            }
            Step::CategoricalToInteger { column } => {
                let c = find(schema, column)?;
                let states = categorical(schema, c)?;
                schema.columns[c].kind = ColumnType::Integer;
                Op::CatToInt { col: c, name: column.clone(), states: state_map(&states) }
            }
            Step::CategoricalToOneHot { column } => {
                let c = find(schema, column)?;
                let states = categorical(schema, c)?;
                let new: Vec<Column> = states
                    .iter()
                    .map(|s| Column { name: format!("{column}[{s}]"), kind: ColumnType::Integer })
                    .collect();
                schema.columns.splice(c..=c, new);
                Op::OneHot { col: c, name: column.clone(), width: states.len(), states: state_map(&states) }
            }
            Step::IntegerToOneHot { column, min, max } => {
                let c = find(schema, column)?;
                if !matches!(schema.columns[c].kind, ColumnType::Integer | ColumnType::Long) {
                    return Err(format!(
                        "column '{column}' is {}; expected an integer",
                        schema.columns[c].kind.name()
                    ));
                }
                if max < min || max - min >= 10_000 {
                    return Err(format!("min {min} .. max {max} must span 1 to 10000 values"));
                }
                let new: Vec<Column> = (*min..=*max)
                    .map(|v| Column { name: format!("{column}[{v}]"), kind: ColumnType::Integer })
                    .collect();
                schema.columns.splice(c..=c, new);
                Op::IntOneHot { col: c, name: column.clone(), min: *min, width: (max - min + 1) as usize }
            }
            Step::StringToTime { column, format, zone: z } => {
                let c = find(schema, column)?;
                if !matches!(schema.columns[c].kind, ColumnType::String) {
                    return Err(format!(
                        "column '{column}' is {}; expected text",
                        schema.columns[c].kind.name()
                    ));
                }
                schema.columns[c].kind = ColumnType::Time;
                Op::ToTime { col: c, name: column.clone(), format: format.clone(), zone: zone(z)? }
            }
            Step::DeriveTime { column, fields, zone: z } => {
                let c = find(schema, column)?;
                if schema.columns[c].kind != ColumnType::Time {
                    return Err(format!(
                        "column '{column}' is {}; expected a time (use string_to_time first)",
                        schema.columns[c].kind.name()
                    ));
                }
                for f in fields {
                    schema.columns.push(Column { name: f.column_name(column), kind: ColumnType::Integer });
                }
                Op::Derive { col: c, fields: fields.clone(), zone: zone(z)? }
            }
            Step::Math { column, op, value, min, max } => {
                let c = find(schema, column)?;
                numeric(schema, c)?;
                let needs_value =
                    matches!(op, MathOp::Add | MathOp::Subtract | MathOp::Multiply | MathOp::Divide);
                if needs_value && value.is_none() {
                    return Err(format!("{op:?} needs a value"));
                }
                if *op == MathOp::Clip && min.is_none() && max.is_none() {
                    return Err("clip needs min, max or both".into());
                }
                schema.columns[c].kind = ColumnType::Double;
                Op::Math {
                    col: c,
                    name: column.clone(),
                    op: *op,
                    value: value.unwrap_or(0.0),
                    min: min.unwrap_or(f64::NEG_INFINITY),
                    max: max.unwrap_or(f64::INFINITY),
                }
            }
            Step::ColumnMath { left, right, op, to } => {
                let (l, r) = (find(schema, left)?, find(schema, right)?);
                numeric(schema, l)?;
                numeric(schema, r)?;
                if schema.index(to).is_some() {
                    return Err(format!("a column '{to}' exists already"));
                }
                schema.columns.push(Column { name: to.clone(), kind: ColumnType::Double });
                Op::ColumnMath { left: l, right: r, op: *op, name: to.clone() }
            }
            Step::ConditionalReplace { column, condition, value } => {
                let c = find(schema, column)?;
                let cond = condition.compile(schema)?;
                let v = typed(value, &schema.columns[c].kind)?;
                Op::Replace { col: c, cond, value: v }
            }
            Step::Filter { remove } => Op::Filter(remove.compile(schema)?),
            Step::Normalize { column, kind, stats } => {
                let c = find(schema, column)?;
                numeric(schema, c)?;
                let Some(s) = stats else { return Ok(Op::Unfitted) };
                let (a, b) = match kind {
                    NormKind::MinMax => (s.min, if s.max > s.min { s.max - s.min } else { 1.0 }),
                    NormKind::Standardize => (s.mean, if s.stdev > 0.0 { s.stdev } else { 1.0 }),
                    NormKind::Log => (s.min, 0.0),
                };
                schema.columns[c].kind = ColumnType::Double;
                Op::Normalize { col: c, name: column.clone(), kind: *kind, a, b }
            }
            Step::Impute { column, strategy, value } => {
                let c = find(schema, column)?;
                if matches!(strategy, ImputeStrategy::Mean | ImputeStrategy::Median) {
                    numeric(schema, c)?;
                }
                let Some(v) = value else {
                    if *strategy == ImputeStrategy::Constant {
                        return Err("a constant imputation needs a value".into());
                    }
                    return Ok(Op::Unfitted);
                };
                let kind = &schema.columns[c].kind;
                // Means and medians of integer columns are fractional: the column becomes a double.
                let target = if matches!(strategy, ImputeStrategy::Mean | ImputeStrategy::Median) {
                    ColumnType::Double
                } else {
                    kind.clone()
                };
                let v = typed(v, &target)?;
                schema.columns[c].kind = target;
                Op::Impute { col: c, value: v }
            }
        };
        Ok(op)
    }
}

fn unknown(name: &str, v: &Value) -> RowIssue {
    RowIssue::Unknown { column: name.to_string(), value: v.text().into_owned() }
}

impl Op {
    /// Applies the step to a row. `Ok(false)`: the row is filtered out.
    pub fn apply(&self, row: &mut Vec<Value>) -> Result<bool, RowIssue> {
        match self {
            Op::Select(idx) => {
                let mut taken: Vec<Value> =
                    idx.iter().map(|&i| std::mem::replace(&mut row[i], Value::Missing)).collect();
                std::mem::swap(row, &mut taken);
            }
            Op::Nothing | Op::Unfitted => {}
            Op::Duplicate(c) => row.push(row[*c].clone()),
            Op::Categorical { col, name, states, list, reserved } => match &row[*col] {
                Value::Missing => {}
                Value::Str(s) if states.contains_key(s) => {}
                v => match reserved {
                    Some(r) => row[*col] = Value::Str(list[*r as usize].as_str().into()),
                    None => return Err(unknown(name, v)),
                },
            },
            Op::IntToCat { col, name, map } => {
                let v = &row[*col];
                row[*col] = match v {
                    Value::Missing => Value::Missing,
                    Value::Int(i) => Value::Str(map.get(i).ok_or_else(|| unknown(name, v))?.clone()),
                    other => return Err(unknown(name, other)),
                };
            }
            Op::CatToInt { col, name, states } => {
                let v = &row[*col];
                row[*col] = match v {
                    Value::Missing => Value::Missing,
                    Value::Str(s) => Value::Int(*states.get(s).ok_or_else(|| unknown(name, v))? as i64),
                    other => return Err(unknown(name, other)),
                };
            }
            Op::OneHot { col, name, states, width } => {
                let v = std::mem::replace(&mut row[*col], Value::Missing);
                let hot = match &v {
                    Value::Str(s) => Some(*states.get(s).ok_or_else(|| unknown(name, &v))? as usize),
                    Value::Missing => None,
                    other => return Err(unknown(name, other)),
                };
                let cols = (0..*width).map(|i| {
                    if hot.is_none() { Value::Missing } else { Value::Int((Some(i) == hot) as i64) }
                });
                row.splice(*col..=*col, cols);
            }
            Op::IntOneHot { col, name, min, width } => {
                let v = std::mem::replace(&mut row[*col], Value::Missing);
                let hot = match v {
                    Value::Int(i) if i >= *min && ((i - min) as usize) < *width => Some((i - min) as usize),
                    Value::Missing => None,
                    other => return Err(unknown(name, &other)),
                };
                let cols = (0..*width).map(|i| {
                    if hot.is_none() { Value::Missing } else { Value::Int((Some(i) == hot) as i64) }
                });
                row.splice(*col..=*col, cols);
            }
            Op::ToTime { col, name, format, zone } => {
                if let Value::Str(s) = &row[*col] {
                    let ms = parse_time(s, format, zone).map_err(|message| RowIssue::Invalid {
                        column: name.clone(),
                        value: s.to_string(),
                        message,
                    })?;
                    row[*col] = Value::Time(ms);
                }
            }
            Op::Derive { col, fields, zone } => {
                let t = match row[*col] {
                    Value::Time(ms) => {
                        jiff::Timestamp::from_millisecond(ms).ok().map(|ts| ts.to_zoned(zone.clone()))
                    }
                    _ => None,
                };
                for f in fields {
                    row.push(match &t {
                        Some(z) => Value::Int(match f {
                            TimeField::Year => z.year() as i64,
                            TimeField::Month => z.month() as i64,
                            TimeField::Day => z.day() as i64,
                            TimeField::Weekday => z.weekday().to_monday_one_offset() as i64,
                            TimeField::Hour => z.hour() as i64,
                            TimeField::Minute => z.minute() as i64,
                            TimeField::DayOfYear => z.day_of_year() as i64,
                        }),
                        None => Value::Missing,
                    });
                }
            }
            Op::Math { col, name, op, value, min, max } => {
                if let Some(x) = row[*col].as_f64() {
                    let y = match op {
                        MathOp::Add => x + value,
                        MathOp::Subtract => x - value,
                        MathOp::Multiply => x * value,
                        MathOp::Divide => x / value,
                        MathOp::Log => x.ln(),
                        MathOp::Abs => x.abs(),
                        MathOp::Clip => x.clamp(*min, *max),
                    };
                    finite_result(name, x.is_finite(), y, &format!("{op:?}").to_lowercase())?;
                    row[*col] = Value::Float(y);
                }
            }
            Op::ColumnMath { left, right, op, name } => {
                let v = match (row[*left].as_f64(), row[*right].as_f64()) {
                    (Some(a), Some(b)) => {
                        let y = match op {
                            BinOp::Add => a + b,
                            BinOp::Subtract => a - b,
                            BinOp::Multiply => a * b,
                            BinOp::Divide => a / b,
                        };
                        finite_result(
                            name,
                            a.is_finite() && b.is_finite(),
                            y,
                            &format!("{op:?}").to_lowercase(),
                        )?;
                        Value::Float(y)
                    }
                    _ => Value::Missing,
                };
                row.push(v);
            }
            Op::Replace { col, cond, value } => {
                if cond.test(row) {
                    row[*col] = value.clone();
                }
            }
            Op::Filter(cond) => return Ok(!cond.test(row)),
            Op::Normalize { col, name, kind, a, b } => {
                if let Some(x) = row[*col].as_f64() {
                    if !x.is_finite() {
                        // One NaN would turn every later statistic and weight into NaN.
                        return Err(RowIssue::Invalid {
                            column: name.clone(),
                            value: row[*col].text().into_owned(),
                            message: "expected a finite number to normalise (filter NaN and infinite values or impute them first)".into(),
                        });
                    }
                    row[*col] = Value::Float(match kind {
                        NormKind::MinMax | NormKind::Standardize => (x - a) / b,
                        NormKind::Log => (1.0 + x - a).max(0.0).ln(),
                    });
                }
            }
            Op::Impute { col, value } => {
                if row[*col].is_missing() || matches!(row[*col], Value::Float(f) if f.is_nan()) {
                    row[*col] = value.clone();
                } else if let (Value::Float(_), Value::Int(i)) = (value, &row[*col]) {
                    row[*col] = Value::Float(*i as f64);
                }
            }
        }
        Ok(true)
    }
}

/// Math on finite inputs must give a finite result (no log of a negative, no division by
/// zero) or the row is invalid; NaN already in the data passes through to be handled later.
fn finite_result(column: &str, inputs_finite: bool, y: f64, op: &str) -> Result<(), RowIssue> {
    if inputs_finite && !y.is_finite() {
        return Err(RowIssue::Invalid {
            column: column.to_string(),
            value: y.to_string(),
            message: format!("{op} gave a non-finite result"),
        });
    }
    Ok(())
}

/// Parses `s` with a strftime `format`; without an offset in the text, in `zone`.
pub fn parse_time(s: &str, format: &str, zone: &jiff::tz::TimeZone) -> Result<i64, String> {
    let expected = || format!("expected a time like '{format}'");
    let tm = jiff::fmt::strtime::parse(format, s).map_err(|e| format!("{}: {e}", expected()))?;
    if let Ok(ts) = tm.to_timestamp() {
        return Ok(ts.as_millisecond());
    }
    let dt = match tm.to_datetime() {
        Ok(dt) => dt,
        Err(_) => tm.to_date().map_err(|e| format!("{}: {e}", expected()))?.at(0, 0, 0, 0),
    };
    let zoned = zone.to_ambiguous_zoned(dt).compatible().map_err(|e| format!("{}: {e}", expected()))?;
    Ok(zoned.timestamp().as_millisecond())
}
