//! A DataVec `TransformProcess` (`toJson()`: `initialSchema` with `@class`-tagged column
//! metadata, `actionList` of transforms and filters) as a Strom transform process that gives the
//! same rows in the same column order. Normalisers keep the statistics DataVec stored in them.

use serde_json::Value;

use super::{ImportError, class_of, number, text};
use crate::data::schema::{Column, ColumnType, Schema};
use crate::data::transform::{
    BinOp, CmpOp, Condition, MathOp, NormKind, NormStats, Step, TimeField, TransformProcess,
};

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn column_type(meta: &Value) -> Result<ColumnType, String> {
    Ok(match class_of(meta) {
        "DoubleMetaData" => ColumnType::Double,
        "FloatMetaData" => ColumnType::Float,
        "IntegerMetaData" => ColumnType::Integer,
        "LongMetaData" => ColumnType::Long,
        "StringMetaData" => ColumnType::String,
        "BooleanMetaData" => ColumnType::Boolean,
        "TimeMetaData" => ColumnType::Time,
        "CategoricalMetaData" => ColumnType::Categorical { states: strings(meta, "stateNames") },
        other => return Err(format!("column type {other}")),
    })
}

fn cmp(op: &str) -> Option<CmpOp> {
    Some(match op {
        "LessThan" => CmpOp::Lt,
        "LessOrEqual" => CmpOp::Le,
        "GreaterThan" => CmpOp::Gt,
        "GreaterOrEqual" => CmpOp::Ge,
        "Equal" => CmpOp::Eq,
        "NotEqual" => CmpOp::Ne,
        _ => return None,
    })
}

fn condition(c: &Value) -> Result<Condition, String> {
    let class = class_of(c);
    let column = || text(c, "columnName").unwrap_or_default().to_string();
    Ok(match class {
        "DoubleColumnCondition"
        | "IntegerColumnCondition"
        | "LongColumnCondition"
        | "FloatColumnCondition"
        | "StringColumnCondition"
        | "CategoricalColumnCondition" => {
            let op = text(c, "op").unwrap_or_default();
            let value = c.get("value").cloned().unwrap_or(Value::Null);
            let set = c.get("set").and_then(Value::as_array).cloned();
            match (op, set) {
                ("InSet", Some(values)) => Condition::InSet { column: column(), values },
                ("NotInSet", Some(values)) => Condition::NotInSet { column: column(), values },
                // DataVec reads every CSV field as text; an empty one is Strom's missing value.
                ("Equal", _) if value.as_str() == Some("") => Condition::Missing { column: column() },
                ("NotEqual", _) if value.as_str() == Some("") => {
                    Condition::Not { not: Box::new(Condition::Missing { column: column() }) }
                }
                (op, _) => Condition::Compare {
                    column: column(),
                    op: cmp(op).ok_or_else(|| format!("condition {class} op {op}"))?,
                    value,
                },
            }
        }
        "NaNColumnCondition" => Condition::Nan { column: column() },
        "InfiniteColumnCondition" => Condition::Infinite { column: column() },
        "NullWritableColumnCondition" => Condition::Missing { column: column() },
        "InvalidValueColumnCondition" => Condition::Invalid { column: column() },
        "StringRegexColumnCondition" => {
            Condition::Regex { column: column(), pattern: text(c, "regex").unwrap_or_default().into() }
        }
        "BooleanCondition" => {
            let parts: Vec<Condition> = c
                .get("conditions")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(condition).collect::<Result<_, _>>())
                .transpose()?
                .unwrap_or_default();
            match text(c, "type") {
                Some("AND") => Condition::And { all: parts },
                Some("OR") => Condition::Or { any: parts },
                Some("NOT") if parts.len() == 1 => Condition::Not {
                    not: Box::new(parts.into_iter().next().unwrap_or(Condition::And { all: vec![] })),
                },
                other => return Err(format!("BooleanCondition {}", other.unwrap_or("?"))),
            }
        }
        other => return Err(format!("condition {other}")),
    })
}

fn math_op(op: &str) -> Option<MathOp> {
    Some(match op {
        "Add" => MathOp::Add,
        "Subtract" => MathOp::Subtract,
        "Multiply" => MathOp::Multiply,
        "Divide" => MathOp::Divide,
        _ => return None,
    })
}

/// Joda-Time patterns (what DataVec's StringToTimeTransform takes) as strftime.
fn joda_to_strftime(p: &str) -> Result<String, String> {
    let mut out = String::new();
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) | ('Y', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', _) => "%3f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('Z', _) => "%z",
            ('\'', _) => "",
            (c, _) if c.is_ascii_alphabetic() => return Err(format!("time pattern letter '{c}' in '{p}'")),
            _ => {
                for _ in 0..n {
                    out.push(c);
                }
                ""
            }
        };
        out.push_str(piece);
        i += n;
    }
    Ok(out)
}

fn time_field(name: &str) -> Option<TimeField> {
    Some(match name {
        "year" => TimeField::Year,
        "monthOfYear" => TimeField::Month,
        "dayOfMonth" => TimeField::Day,
        "dayOfWeek" => TimeField::Weekday,
        "hourOfDay" => TimeField::Hour,
        "minuteOfHour" => TimeField::Minute,
        "dayOfYear" => TimeField::DayOfYear,
        _ => return None,
    })
}

/// DataVec's column order, followed step by step (Strom appends some columns where DataVec
/// inserts them; one reorder at the end makes the two agree).
struct Columns {
    names: Vec<String>,
    /// States of categorical columns, for one-hot names.
    states: Vec<(String, Vec<String>)>,
}

impl Columns {
    fn pos(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
    fn set_states(&mut self, column: &str, states: Vec<String>) {
        self.states.retain(|(c, _)| c != column);
        self.states.push((column.to_string(), states));
    }
    fn states(&self, column: &str) -> Vec<String> {
        self.states.iter().find(|(c, _)| c == column).map(|(_, s)| s.clone()).unwrap_or_default()
    }
    fn replace(&mut self, column: &str, with: Vec<String>) {
        if let Some(p) = self.pos(column) {
            self.names.splice(p..=p, with);
        }
    }
    fn insert_after(&mut self, column: &str, new: Vec<String>) {
        let p = self.pos(column).map(|p| p + 1).unwrap_or(self.names.len());
        self.names.splice(p..p, new);
    }
}

/// The steps one DataVec transform becomes, following the columns as DataVec orders them.
fn transform(t: &Value, cols: &mut Columns) -> Result<Vec<Step>, String> {
    let class = class_of(t);
    let column = text(t, "columnName").unwrap_or_default().to_string();
    let unsupported = || Err(class.to_string());
    Ok(match class {
        "RemoveColumnsTransform" => {
            let columns = strings(t, "columnsToRemove");
            cols.names.retain(|n| !columns.contains(n));
            vec![Step::RemoveColumns { columns }]
        }
        "RemoveAllColumnsExceptForTransform" => {
            let columns = strings(t, "columnsToKeep");
            cols.names.retain(|n| columns.contains(n));
            vec![Step::KeepColumns { columns }]
        }
        "RenameColumnsTransform" => {
            let (old, new) = (strings(t, "oldNames"), strings(t, "newNames"));
            old.into_iter()
                .zip(new)
                .map(|(from, to)| {
                    if let Some(p) = cols.pos(&from) {
                        cols.names[p] = to.clone();
                    }
                    let s = cols.states(&from);
                    cols.set_states(&to, s);
                    Step::RenameColumn { from, to }
                })
                .collect()
        }
        "DuplicateColumnsTransform" => {
            let (from, to) = (strings(t, "columnsToDuplicate"), strings(t, "newColumnNames"));
            from.into_iter()
                .zip(to)
                .map(|(column, to)| {
                    cols.insert_after(&column, vec![to.clone()]);
                    let s = cols.states(&column);
                    cols.set_states(&to, s);
                    Step::DuplicateColumn { column, to }
                })
                .collect()
        }
        "ReorderColumnsTransform" => {
            let order = strings(t, "newOrder");
            let rest: Vec<String> = cols.names.iter().filter(|n| !order.contains(n)).cloned().collect();
            cols.names = order.iter().cloned().chain(rest).collect();
            vec![Step::ReorderColumns { order }]
        }
        "StringToCategoricalTransform" => {
            let states = strings(t, "stateNames");
            cols.set_states(&column, states.clone());
            vec![Step::StringToCategorical { column, states: Some(states) }]
        }
        "IntegerToCategoricalTransform" => {
            let mut pairs: Vec<(i64, String)> = t
                .get("map")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter().filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string()))).collect()
                })
                .unwrap_or_default();
            pairs.sort_by_key(|(k, _)| *k);
            cols.set_states(&column, pairs.iter().map(|(_, v)| v.clone()).collect());
            let map = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            vec![Step::IntegerToCategorical { column, map }]
        }
        "CategoricalToIntegerTransform" => vec![Step::CategoricalToInteger { column }],
        "CategoricalToOneHotTransform" => {
            let names = cols.states(&column).iter().map(|s| format!("{column}[{s}]")).collect();
            cols.replace(&column, names);
            vec![Step::CategoricalToOneHot { column }]
        }
        "IntegerToOneHotTransform" => {
            let (min, max) = (
                t.get("minValue").and_then(Value::as_i64).unwrap_or(0),
                t.get("maxValue").and_then(Value::as_i64).unwrap_or(0),
            );
            cols.replace(&column, (min..=max).map(|v| format!("{column}[{v}]")).collect());
            vec![Step::IntegerToOneHot { column, min, max }]
        }
        "StringToTimeTransform" => vec![Step::StringToTime {
            column,
            format: joda_to_strftime(text(t, "timeFormat").unwrap_or_default())?,
            zone: text(t, "timeZone").unwrap_or("UTC").to_string(),
        }],
        "DeriveColumnsFromTimeTransform" => {
            let mut fields = Vec::new();
            let mut renames = Vec::new();
            let mut names = Vec::new();
            for d in t.get("derivedColumns").and_then(Value::as_array).into_iter().flatten() {
                let name = text(d, "columnName").unwrap_or_default().to_string();
                let kind = d.get("fieldType").and_then(|f| text(f, "fieldType")).unwrap_or_default();
                let field = time_field(kind).ok_or_else(|| format!("{class}: time field {kind}"))?;
                if d.get("format").is_some_and(|f| !f.is_null()) {
                    return Err(format!("{class}: a formatted (text) derived column"));
                }
                fields.push(field);
                renames.push(Step::RenameColumn { from: field.column_name(&column), to: name.clone() });
                names.push(name);
            }
            let after = text(t, "insertAfter").unwrap_or(&column).to_string();
            cols.insert_after(&after, names);
            let zone = text(t, "inputTimeZone").unwrap_or("UTC").to_string();
            std::iter::once(Step::DeriveTime { column, fields, zone }).chain(renames).collect()
        }
        "DoubleMathOpTransform"
        | "IntegerMathOpTransform"
        | "LongMathOpTransform"
        | "FloatMathOpTransform" => {
            let op = text(t, "mathOp").unwrap_or_default();
            let value = number(t, "scalar");
            match (op, value) {
                ("ScalarMin", Some(v)) => {
                    vec![Step::Math { column, op: MathOp::Clip, value: None, min: None, max: Some(v) }]
                }
                ("ScalarMax", Some(v)) => {
                    vec![Step::Math { column, op: MathOp::Clip, value: None, min: Some(v), max: None }]
                }
                (op, Some(v)) => match math_op(op) {
                    Some(op) => vec![Step::Math { column, op, value: Some(v), min: None, max: None }],
                    None => return Err(format!("{class} {op}")),
                },
                _ => return Err(format!("{class} {op}")),
            }
        }
        "DoubleMathFunctionTransform" => {
            let op = match text(t, "mathFunction") {
                Some("LOG") => MathOp::Log,
                Some("ABS") => MathOp::Abs,
                other => return Err(format!("{class} {}", other.unwrap_or("?"))),
            };
            vec![Step::Math { column, op, value: None, min: None, max: None }]
        }
        "DoubleColumnsMathOpTransform" | "IntegerColumnsMathOpTransform" => {
            let columns = strings(t, "columns");
            let op = match text(t, "mathOp") {
                Some("Add") => BinOp::Add,
                Some("Subtract") => BinOp::Subtract,
                Some("Multiply") => BinOp::Multiply,
                Some("Divide") => BinOp::Divide,
                other => return Err(format!("{class} {}", other.unwrap_or("?"))),
            };
            let [left, right] = <[String; 2]>::try_from(columns)
                .map_err(|c| format!("{class} over {} columns (Strom's column_math takes two)", c.len()))?;
            let to = text(t, "newColumnName").unwrap_or_default().to_string();
            cols.names.push(to.clone());
            vec![Step::ColumnMath { left, right, op, to }]
        }
        "StandardizeNormalizer" => {
            let (mean, stdev) = (number(t, "mean").unwrap_or(0.0), number(t, "stdev").unwrap_or(1.0));
            vec![Step::Normalize {
                column,
                kind: NormKind::Standardize,
                stats: Some(NormStats { min: 0.0, max: 0.0, mean, stdev }),
            }]
        }
        "MinMaxNormalizer" => {
            let (min, max) = (number(t, "min").unwrap_or(0.0), number(t, "max").unwrap_or(1.0));
            let (lo, hi) = (number(t, "newMin").unwrap_or(0.0), number(t, "newMax").unwrap_or(1.0));
            let mut steps = vec![Step::Normalize {
                column: column.clone(),
                kind: NormKind::MinMax,
                stats: Some(NormStats { min, max, mean: 0.0, stdev: 0.0 }),
            }];
            if (lo, hi) != (0.0, 1.0) {
                steps.push(Step::Math {
                    column: column.clone(),
                    op: MathOp::Multiply,
                    value: Some(hi - lo),
                    min: None,
                    max: None,
                });
                steps.push(Step::Math { column, op: MathOp::Add, value: Some(lo), min: None, max: None });
            }
            steps
        }
        "SubtractMeanNormalizer" => {
            vec![Step::Math { column, op: MathOp::Subtract, value: number(t, "mean"), min: None, max: None }]
        }
        "ConditionalReplaceValueTransform" => {
            let column = text(t, "columnToReplace").unwrap_or_default().to_string();
            let cond = condition(t.get("condition").unwrap_or(&Value::Null))?;
            let value = t.get("newValue").and_then(|w| w.get("value")).cloned().unwrap_or(Value::Null);
            vec![Step::ConditionalReplace { column, condition: cond, value }]
        }
        _ => return unsupported(),
    })
}

/// Reads `json` (the file's text); `file` names it in errors.
pub fn import(json: &str, file: &str) -> Result<TransformProcess, ImportError> {
    let root = super::parse(json, file)?;
    let invalid = |message: String| ImportError::Invalid { file: file.into(), message };
    let columns =
        root.get("initialSchema").and_then(|s| s.get("columns")).and_then(Value::as_array).ok_or_else(
            || {
                invalid(
                    "no `initialSchema.columns`: expected a TransformProcess as DataVec's toJson() writes it"
                        .into(),
                )
            },
        )?;
    let mut unsupported = Vec::new();
    let mut schema = Schema::default();
    for (i, meta) in columns.iter().enumerate() {
        let name = text(meta, "name").unwrap_or_default().to_string();
        match column_type(meta) {
            Ok(kind) => schema.columns.push(Column { name, kind }),
            Err(e) => unsupported.push(format!("schema column {i} ('{name}'): {e}")),
        }
    }
    let mut cols =
        Columns { names: schema.names().iter().map(|s| s.to_string()).collect(), states: Vec::new() };
    for c in &schema.columns {
        if let ColumnType::Categorical { states } = &c.kind {
            cols.set_states(&c.name, states.clone());
        }
    }
    let mut steps = Vec::new();
    for (i, action) in root.get("actionList").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Some(t) = action.get("transform").filter(|t| !t.is_null()) {
            match transform(t, &mut cols) {
                Ok(s) => steps.extend(s),
                Err(what) => unsupported.push(format!("action {i}: {what}")),
            }
        } else if let Some(f) = action.get("filter").filter(|f| !f.is_null()) {
            match class_of(f) {
                "ConditionFilter" => match condition(f.get("condition").unwrap_or(&Value::Null)) {
                    Ok(remove) => steps.push(Step::Filter { remove }),
                    Err(what) => unsupported.push(format!("action {i}: ConditionFilter: {what}")),
                },
                "FilterInvalidValues" => {
                    let any = strings(f, "columnsToFilterIfInvalid")
                        .into_iter()
                        .map(|column| Condition::Invalid { column })
                        .collect();
                    steps.push(Step::Filter { remove: Condition::Or { any } })
                }
                other => unsupported.push(format!("action {i}: filter {other}")),
            }
        } else {
            let kind = action
                .as_object()
                .and_then(|o| {
                    o.iter().find(|(_, v)| !v.is_null()).map(|(k, v)| format!("{k} {}", class_of(v)))
                })
                .unwrap_or_else(|| "an empty action".into());
            unsupported.push(format!("action {i}: {kind}"));
        }
    }
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported { file: file.into(), items: unsupported });
    }
    let mut process = TransformProcess { schema, steps, policies: Default::default() };
    let compiled =
        process.compile().map_err(|e| invalid(format!("the imported process does not compile: {e}")))?;
    let ours: Vec<String> = compiled.output.names().iter().map(|s| s.to_string()).collect();
    if ours != cols.names {
        let (mut a, mut b) = (ours.clone(), cols.names.clone());
        a.sort();
        b.sort();
        if a != b {
            return Err(invalid(format!(
                "the imported process makes columns {ours:?}, DataVec's makes {:?}",
                cols.names
            )));
        }
        process.steps.push(Step::ReorderColumns { order: cols.names.clone() });
    }
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joda_patterns_become_strftime() {
        assert_eq!(joda_to_strftime("yyyy-MM-dd HH:mm:ss").unwrap(), "%Y-%m-%d %H:%M:%S");
        assert_eq!(joda_to_strftime("dd/MM/yy").unwrap(), "%d/%m/%y");
        assert!(joda_to_strftime("yyyy-ww").unwrap_err().contains("'w'"));
    }
}
