//! Migration from Deeplearning4j: `strom import dl4j-model` reads a `MultiLayerConfiguration`
//! as DL4J's `toJson()` writes it and makes a Strom job; `strom import datavec` reads a DataVec
//! `TransformProcess` (`toJson()`) and makes a Strom transform process. Both read DL4J's JSON as
//! plain values (the `@class` tags name everything), and report everything they cannot carry
//! over at once rather than stopping at the first.

pub mod datavec;
pub mod dl4j;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: not JSON: {message}")]
    Json { file: String, message: String },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: {} part(s) with no equivalent in Strom:\n  - {}", .items.len(), .items.join("\n  - "))]
    Unsupported { file: String, items: Vec<String> },
}

/// The last segment of a JSON object's `@class` (`org.x.DenseLayer` -> `DenseLayer`).
pub(crate) fn class_of(v: &Value) -> &str {
    v.get("@class").and_then(Value::as_str).map(|c| c.rsplit('.').next().unwrap_or(c)).unwrap_or("")
}

pub(crate) fn parse(text: &str, file: &str) -> Result<Value, ImportError> {
    serde_json::from_str(text).map_err(|e| ImportError::Json { file: file.into(), message: e.to_string() })
}

/// A field as f64 (DL4J writes numbers, sometimes as `{"@class": FixedSchedule, "value": x}`).
pub(crate) fn number(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::Object(o) => o.get("value").and_then(Value::as_f64),
        _ => None,
    }
}

/// A `[a, b]` pair of integers.
pub(crate) fn pair(v: &Value, key: &str) -> Option<(usize, usize)> {
    let a = v.get(key)?.as_array()?;
    Some((a.first()?.as_u64()? as usize, a.get(1)?.as_u64()? as usize))
}

pub(crate) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}
