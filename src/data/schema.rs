//! Schemas: named, typed columns; values of those types; inference from a CSV sample.

use serde::{Deserialize, Serialize};

/// A column's type, DataVec's inventory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnType {
    Integer,
    Long,
    Double,
    Float,
    /// A fixed set of states, in order.
    Categorical {
        states: Vec<String>,
    },
    String,
    /// Milliseconds since the Unix epoch (made by `string_to_time`).
    Time,
    Boolean,
}

impl ColumnType {
    pub fn name(&self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Long => "long",
            ColumnType::Double => "double",
            ColumnType::Float => "float",
            ColumnType::Categorical { .. } => "categorical",
            ColumnType::String => "string",
            ColumnType::Time => "time",
            ColumnType::Boolean => "boolean",
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            ColumnType::Integer
                | ColumnType::Long
                | ColumnType::Double
                | ColumnType::Float
                | ColumnType::Boolean
                | ColumnType::Time
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(flatten)]
    pub kind: ColumnType,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub columns: Vec<Column>,
}

impl Schema {
    pub fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// Infers column types from sample rows: booleans, then integers (they stay integers:
    /// integer if every value fits 32 bits, long otherwise), then doubles, else strings.
    /// Empty fields do not vote.
    pub fn infer(names: &[String], rows: &[Vec<String>]) -> Schema {
        let columns = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let values: Vec<&str> = rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .collect();
                let kind = if values.is_empty() {
                    ColumnType::String
                } else if values.iter().all(|v| parse_bool(v).is_some())
                    && !values.iter().all(|v| v.parse::<i64>().is_ok())
                {
                    // Words (true/false, yes/no); a 0/1 column stays an integer (labels).
                    ColumnType::Boolean
                } else if values.iter().all(|v| v.parse::<i64>().is_ok()) {
                    if values.iter().all(|v| v.parse::<i32>().is_ok()) {
                        ColumnType::Integer
                    } else {
                        ColumnType::Long
                    }
                } else if values.iter().all(|v| v.parse::<f64>().is_ok()) {
                    ColumnType::Double
                } else {
                    ColumnType::String
                };
                Column { name: name.clone(), kind }
            })
            .collect();
        Schema { columns }
    }
}

/// One value of a row. Times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Missing,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(Box<str>),
    Time(i64),
}

impl Value {
    /// The value as a number, where it is one (booleans are 0/1, times milliseconds).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(*b as u8 as f64),
            Value::Time(t) => Some(*t as f64),
            Value::Missing | Value::Str(_) => None,
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Value::Missing)
    }

    /// The value as text (for conditions on strings and categories).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Value::Str(s) => std::borrow::Cow::Borrowed(s),
            Value::Int(i) => i.to_string().into(),
            Value::Float(f) => f.to_string().into(),
            Value::Bool(b) => b.to_string().into(),
            Value::Time(t) => t.to_string().into(),
            Value::Missing => "".into(),
        }
    }
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "1" | "yes" => Some(true),
        "false" | "False" | "FALSE" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Parses a raw field as a value of `kind`; `Err` says what was expected.
pub fn parse_field(raw: &str, kind: &ColumnType) -> Result<Value, &'static str> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(Value::Missing);
    }
    match kind {
        ColumnType::Integer => {
            s.parse::<i32>().map(|v| Value::Int(v as i64)).map_err(|_| "an integer (32-bit)")
        }
        ColumnType::Long => s.parse::<i64>().map(Value::Int).map_err(|_| "an integer"),
        // NaN and infinities parse: conditions can find them.
        ColumnType::Double | ColumnType::Float => s.parse::<f64>().map(Value::Float).map_err(|_| "a number"),
        ColumnType::Boolean => parse_bool(s).map(Value::Bool).ok_or("true or false"),
        ColumnType::String | ColumnType::Categorical { .. } => Ok(Value::Str(s.into())),
        ColumnType::Time => {
            s.parse::<i64>().map(Value::Time).map_err(|_| "milliseconds since the Unix epoch")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_keeps_integers_integers() {
        let names: Vec<String> = ["a", "b", "c", "d", "e", "f"].iter().map(|s| s.to_string()).collect();
        let rows = vec![
            vec!["1", "1.5", "x", "true", "3000000000", ""],
            vec!["2", "2", "y", "false", "1", ""],
            vec!["", "NaN", "z", "true", "2", ""],
        ];
        let rows: Vec<Vec<String>> =
            rows.into_iter().map(|r| r.into_iter().map(String::from).collect()).collect();
        let s = Schema::infer(&names, &rows);
        let kinds: Vec<&str> = s.columns.iter().map(|c| c.kind.name()).collect();
        assert_eq!(kinds, ["integer", "double", "string", "boolean", "long", "string"]);
    }

    #[test]
    fn fields_parse_or_say_what_was_expected() {
        assert_eq!(parse_field(" 42 ", &ColumnType::Integer), Ok(Value::Int(42)));
        assert_eq!(parse_field("", &ColumnType::Double), Ok(Value::Missing));
        assert_eq!(parse_field("4.2x", &ColumnType::Double), Err("a number"));
        assert!(matches!(parse_field("NaN", &ColumnType::Double), Ok(Value::Float(f)) if f.is_nan()));
        assert_eq!(parse_field("maybe", &ColumnType::Boolean), Err("true or false"));
        assert_eq!(parse_field("9999999999", &ColumnType::Integer), Err("an integer (32-bit)"));
    }

    #[test]
    fn schema_json_round_trip() {
        let s = Schema {
            columns: vec![
                Column {
                    name: "a".into(),
                    kind: ColumnType::Categorical { states: vec!["x".into(), "y".into()] },
                },
                Column { name: "b".into(), kind: ColumnType::Double },
            ],
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"columns":[{"name":"a","type":"categorical","states":["x","y"]},{"name":"b","type":"double"}]}"#
        );
        assert_eq!(serde_json::from_str::<Schema>(&json).unwrap(), s);
    }
}
