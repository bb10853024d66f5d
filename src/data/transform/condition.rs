//! Conditions for filters and conditional replacement: comparisons, sets, regular
//! expressions, NaN / infinite / missing / invalid-for-the-schema, combined with and, or, not.

use serde::{Deserialize, Serialize};

use crate::data::schema::{ColumnType, Schema, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// `column op value`: numeric for numeric columns, text otherwise.
    Compare {
        column: String,
        op: CmpOp,
        value: serde_json::Value,
    },
    InSet {
        column: String,
        values: Vec<serde_json::Value>,
    },
    NotInSet {
        column: String,
        values: Vec<serde_json::Value>,
    },
    Nan {
        column: String,
    },
    Infinite {
        column: String,
    },
    Missing {
        column: String,
    },
    /// The value does not fit the column's type (a category outside its states).
    Invalid {
        column: String,
    },
    Regex {
        column: String,
        pattern: String,
    },
    And {
        all: Vec<Condition>,
    },
    Or {
        any: Vec<Condition>,
    },
    Not {
        not: Box<Condition>,
    },
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A condition with its columns resolved.
#[derive(Clone, Debug)]
pub enum Compiled {
    Compare { col: usize, op: CmpOp, number: Option<f64>, text: String },
    InSet { col: usize, values: Vec<String>, negate: bool },
    Nan(usize),
    Infinite(usize),
    Missing(usize),
    Invalid { col: usize, states: Option<Vec<String>> },
    Regex { col: usize, re: regex::Regex },
    And(Vec<Compiled>),
    Or(Vec<Compiled>),
    Not(Box<Compiled>),
}

impl Condition {
    pub fn compile(&self, schema: &Schema) -> Result<Compiled, String> {
        let col = |name: &str| {
            schema
                .index(name)
                .ok_or_else(|| format!("no column '{name}' (columns: {})", schema.names().join(", ")))
        };
        Ok(match self {
            Condition::Compare { column, op, value } => {
                let c = col(column)?;
                let numeric = schema.columns[c].kind.is_numeric();
                let number = value.as_f64().or_else(|| json_text(value).parse().ok());
                if numeric && number.is_none() {
                    return Err(format!(
                        "column '{column}' is {}: compare it with a number, not {value}",
                        schema.columns[c].kind.name()
                    ));
                }
                Compiled::Compare {
                    col: c,
                    op: *op,
                    number: if numeric { number } else { None },
                    text: json_text(value),
                }
            }
            Condition::InSet { column, values } | Condition::NotInSet { column, values } => Compiled::InSet {
                col: col(column)?,
                values: values.iter().map(json_text).collect(),
                negate: matches!(self, Condition::NotInSet { .. }),
            },
            Condition::Nan { column } => Compiled::Nan(col(column)?),
            Condition::Infinite { column } => Compiled::Infinite(col(column)?),
            Condition::Missing { column } => Compiled::Missing(col(column)?),
            Condition::Invalid { column } => {
                let c = col(column)?;
                let states = match &schema.columns[c].kind {
                    ColumnType::Categorical { states } => Some(states.clone()),
                    _ => None,
                };
                Compiled::Invalid { col: c, states }
            }
            Condition::Regex { column, pattern } => Compiled::Regex {
                col: col(column)?,
                re: regex::Regex::new(pattern)
                    .map_err(|e| format!("bad regular expression '{pattern}': {e}"))?,
            },
            Condition::And { all } => {
                Compiled::And(all.iter().map(|c| c.compile(schema)).collect::<Result<_, _>>()?)
            }
            Condition::Or { any } => {
                Compiled::Or(any.iter().map(|c| c.compile(schema)).collect::<Result<_, _>>()?)
            }
            Condition::Not { not } => Compiled::Not(Box::new(not.compile(schema)?)),
        })
    }
}

impl Compiled {
    pub fn test(&self, row: &[Value]) -> bool {
        match self {
            Compiled::Compare { col, op, number, text } => {
                let v = &row[*col];
                if v.is_missing() {
                    return false;
                }
                let ord = match (number, v.as_f64()) {
                    (Some(n), Some(x)) => x.partial_cmp(n),
                    _ => Some(v.text().as_ref().cmp(text.as_str())),
                };
                let Some(ord) = ord else { return *op == CmpOp::Ne }; // NaN compares unequal
                match op {
                    CmpOp::Lt => ord.is_lt(),
                    CmpOp::Le => ord.is_le(),
                    CmpOp::Gt => ord.is_gt(),
                    CmpOp::Ge => ord.is_ge(),
                    CmpOp::Eq => ord.is_eq(),
                    CmpOp::Ne => ord.is_ne(),
                }
            }
            Compiled::InSet { col, values, negate } => {
                let t = row[*col].text();
                values.iter().any(|v| *v == t) != *negate
            }
            Compiled::Nan(c) => matches!(row[*c], Value::Float(f) if f.is_nan()),
            Compiled::Infinite(c) => matches!(row[*c], Value::Float(f) if f.is_infinite()),
            Compiled::Missing(c) => row[*c].is_missing(),
            Compiled::Invalid { col, states } => match (&row[*col], states) {
                (Value::Str(s), Some(states)) => !states.iter().any(|x| x.as_str() == &**s),
                (Value::Float(f), None) => !f.is_finite(),
                _ => false,
            },
            Compiled::Regex { col, re } => !row[*col].is_missing() && re.is_match(&row[*col].text()),
            Compiled::And(all) => all.iter().all(|c| c.test(row)),
            Compiled::Or(any) => any.iter().any(|c| c.test(row)),
            Compiled::Not(c) => !c.test(row),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::schema::Column;

    fn schema() -> Schema {
        Schema {
            columns: vec![
                Column { name: "n".into(), kind: ColumnType::Double },
                Column { name: "s".into(), kind: ColumnType::String },
                Column {
                    name: "c".into(),
                    kind: ColumnType::Categorical { states: vec!["a".into(), "b".into()] },
                },
            ],
        }
    }

    fn check(json: &str, row: &[Value]) -> bool {
        let c: Condition = serde_json::from_str(json).unwrap();
        c.compile(&schema()).unwrap().test(row)
    }

    #[test]
    fn every_condition() {
        let row = [Value::Float(2.5), Value::Str("hello".into()), Value::Str("z".into())];
        assert!(check(r#"{"kind":"compare","column":"n","op":"gt","value":2}"#, &row));
        assert!(!check(r#"{"kind":"compare","column":"n","op":"le","value":2}"#, &row));
        assert!(check(r#"{"kind":"compare","column":"s","op":"eq","value":"hello"}"#, &row));
        assert!(check(r#"{"kind":"in_set","column":"s","values":["x","hello"]}"#, &row));
        assert!(check(r#"{"kind":"not_in_set","column":"s","values":["x"]}"#, &row));
        assert!(check(r#"{"kind":"regex","column":"s","pattern":"^he.+o$"}"#, &row));
        assert!(check(r#"{"kind":"invalid","column":"c"}"#, &row), "z is not a state of c");
        assert!(!check(r#"{"kind":"missing","column":"n"}"#, &row));
        assert!(check(
            r#"{"kind":"and","all":[{"kind":"compare","column":"n","op":"lt","value":3},{"kind":"not","not":{"kind":"missing","column":"s"}}]}"#,
            &row
        ));
        assert!(check(
            r#"{"kind":"or","any":[{"kind":"nan","column":"n"},{"kind":"compare","column":"n","op":"ne","value":1}]}"#,
            &row
        ));
        let nan = [Value::Float(f64::NAN), Value::Missing, Value::Str("a".into())];
        assert!(check(r#"{"kind":"nan","column":"n"}"#, &nan));
        assert!(check(r#"{"kind":"missing","column":"s"}"#, &nan));
        assert!(!check(r#"{"kind":"compare","column":"n","op":"eq","value":1}"#, &nan), "NaN equals nothing");
        assert!(check(
            r#"{"kind":"infinite","column":"n"}"#,
            &[Value::Float(f64::INFINITY), Value::Missing, Value::Missing]
        ));
    }

    #[test]
    fn compile_errors_name_the_problem() {
        let bad: Condition = serde_json::from_str(r#"{"kind":"missing","column":"nope"}"#).unwrap();
        assert!(bad.compile(&schema()).unwrap_err().contains("no column 'nope'"));
        let bad: Condition = serde_json::from_str(r#"{"kind":"regex","column":"s","pattern":"("}"#).unwrap();
        assert!(bad.compile(&schema()).unwrap_err().contains("bad regular expression"));
        let bad: Condition =
            serde_json::from_str(r#"{"kind":"compare","column":"n","op":"lt","value":"abc"}"#).unwrap();
        assert!(bad.compile(&schema()).unwrap_err().contains("compare it with a number"));
    }
}
