//! Transform processes (DataVec's `TransformProcess`): a schema and ordered steps, as JSON,
//! with the statistics fitted on the training data stored in the process itself, and policies
//! for what does not fit. The same compiled process runs in the local executor, on every
//! worker's partitions during training, and inside Spark tasks.

pub mod condition;
pub mod stats;
pub mod step;

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

pub use condition::{CmpOp, Condition};
pub use step::{BinOp, ImputeStrategy, MathOp, NormKind, NormStats, Op, RowIssue, Step, TimeField};

use self::stats::{Counts, NumStats};
use super::DataError;
use super::csv::RawRecord;
use super::schema::{ColumnType, Schema, Value, parse_field};
use crate::storage::Location;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCategory {
    /// Stop, naming the file, line, column and value.
    #[default]
    Error,
    /// Map it to the reserved state (an extra state, an extra one-hot column).
    Reserved,
    /// Drop the row (counted).
    Drop,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidRecord {
    /// Stop, naming the file, line, column, value and expected type.
    #[default]
    Error,
    /// Drop the row (counted).
    Drop,
    /// Drop the row and log why (the first 20; all are counted).
    DropAndLog,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policies {
    pub unknown_category: UnknownCategory,
    pub reserved_state: String,
    pub invalid_record: InvalidRecord,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            unknown_category: UnknownCategory::Error,
            reserved_state: "__unknown__".into(),
            invalid_record: InvalidRecord::Error,
        }
    }
}

/// What happened to the rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub rows_in: u64,
    pub rows_out: u64,
    pub filtered: u64,
    pub invalid_dropped: u64,
    pub unknown_dropped: u64,
    pub unknown_mapped: u64,
}

impl Report {
    pub fn add(&mut self, o: &Report) {
        self.rows_in += o.rows_in;
        self.rows_out += o.rows_out;
        self.filtered += o.filtered;
        self.invalid_dropped += o.invalid_dropped;
        self.unknown_dropped += o.unknown_dropped;
        self.unknown_mapped += o.unknown_mapped;
    }

    pub fn line(&self) -> String {
        format!(
            "{} rows in, {} out: {} filtered, {} invalid dropped, {} with unknown categories dropped, {} mapped to the reserved state",
            self.rows_in,
            self.rows_out,
            self.filtered,
            self.invalid_dropped,
            self.unknown_dropped,
            self.unknown_mapped
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("{file}: {message}")]
    Process { file: String, message: String },
    #[error("step {index} ({op}): {message}")]
    Step { index: usize, op: &'static str, message: String },
    #[error("{file}:{line}: column '{column}': {message} (value '{value}')")]
    Row { file: String, line: u64, column: String, value: String, message: String },
    #[error(transparent)]
    Data(#[from] DataError),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformProcess {
    /// The columns of the input, in order (DataVec: `initialSchema`).
    #[serde(alias = "initialSchema")]
    pub schema: Schema,
    /// DataVec: `actionList`.
    #[serde(default, alias = "actionList")]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub policies: Policies,
}

impl TransformProcess {
    pub fn from_json(text: &str, file: &str) -> Result<TransformProcess, TransformError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let process: TransformProcess = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            TransformError::Process { file: file.into(), message: format!("at '{path}': {}", e.into_inner()) }
        })?;
        process.compile_prefix(process.first_unfitted().unwrap_or(process.steps.len()))?;
        Ok(process)
    }

    pub fn load(location: &Location) -> Result<TransformProcess, TransformError> {
        let bytes = location.read().map_err(DataError::from)?;
        let text = String::from_utf8(bytes).map_err(|_| TransformError::Process {
            file: location.to_string(),
            message: "not UTF-8 text".into(),
        })?;
        TransformProcess::from_json(&text, &location.to_string())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn needs_fit(&self) -> bool {
        self.first_unfitted().is_some()
    }

    fn first_unfitted(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.needs_fit())
    }

    /// Compiles the first `k` steps; every step must be fitted.
    fn compile_prefix(&self, k: usize) -> Result<Compiled, TransformError> {
        let mut schema = self.schema.clone();
        if schema.columns.is_empty() {
            return Err(TransformError::Process {
                file: "schema".into(),
                message: "the schema has no columns".into(),
            });
        }
        let mut ops = Vec::with_capacity(k);
        for (index, step) in self.steps.iter().enumerate().take(k) {
            let op = step.compile(&mut schema, &self.policies).map_err(|message| TransformError::Step {
                index,
                op: step.name(),
                message,
            })?;
            ops.push(op);
        }
        let input_states = self
            .schema
            .columns
            .iter()
            .map(|c| match &c.kind {
                ColumnType::Categorical { states } => {
                    Some(states.iter().map(|s| s.as_str().into()).collect())
                }
                _ => None,
            })
            .collect();
        Ok(Compiled {
            input: self.schema.clone(),
            input_states,
            output: schema,
            ops,
            policies: self.policies.clone(),
            logged: AtomicU64::new(0),
        })
    }

    /// The compiled process; every fittable step must have been fitted.
    pub fn compile(&self) -> Result<Compiled, TransformError> {
        if let Some(k) = self.first_unfitted() {
            return Err(TransformError::Step {
                index: k,
                op: self.steps[k].name(),
                message: "not fitted: fit the process on the training data first".into(),
            });
        }
        self.compile_prefix(self.steps.len())
    }

    /// Fits every step that needs statistics, on the records `source` yields (called once per
    /// pass; consecutive column-local steps share a pass).
    pub fn fit<S, I>(
        &mut self,
        mut source: S,
        file_name: &dyn Fn(u32) -> String,
    ) -> Result<(), TransformError>
    where
        S: FnMut() -> I,
        I: Iterator<Item = Result<RawRecord, DataError>>,
    {
        while let Some(k) = self.first_unfitted() {
            // The group: consecutive unfitted steps on distinct columns (they do not see each
            // other's output, so one pass fits them all).
            let mut group = vec![k];
            let mut cols = vec![self.steps[k].fit_column().unwrap_or_default().to_string()];
            for (j, s) in self.steps.iter().enumerate().skip(k + 1) {
                match s.fit_column() {
                    Some(c) if s.needs_fit() && !cols.iter().any(|x| x == c) => {
                        group.push(j);
                        cols.push(c.to_string());
                    }
                    _ => break,
                }
            }
            let prefix = self.compile_prefix(k)?;
            let indices: Vec<usize> = group
                .iter()
                .map(|&j| {
                    let c = self.steps[j].fit_column().unwrap_or_default();
                    prefix.output.index(c).ok_or_else(|| TransformError::Step {
                        index: j,
                        op: self.steps[j].name(),
                        message: format!("no column '{c}' here"),
                    })
                })
                .collect::<Result<_, _>>()?;
            // Text counts only where they are used (categories, modes).
            let wants_counts: Vec<bool> = group
                .iter()
                .map(|&j| {
                    matches!(
                        self.steps[j],
                        Step::StringToCategorical { .. }
                            | Step::Impute { strategy: ImputeStrategy::Mode, .. }
                    )
                })
                .collect();
            let mut nums = vec![NumStats::default(); group.len()];
            let mut counts = vec![Counts::default(); group.len()];
            let mut report = Report::default();
            for rec in source() {
                let rec = rec?;
                let Some(row) = prefix.record(&rec, &file_name(rec.file), &mut report)? else { continue };
                for (g, &c) in indices.iter().enumerate() {
                    match &row[c] {
                        Value::Missing => {}
                        Value::Str(s) => counts[g].push(s),
                        v => {
                            if let Some(x) = v.as_f64().filter(|x| x.is_finite()) {
                                nums[g].push(x);
                            }
                            if wants_counts[g] {
                                counts[g].push(&v.text());
                            }
                        }
                    }
                }
            }
            for (g, &j) in group.iter().enumerate() {
                let kind = prefix.output.columns[indices[g]].kind.clone();
                let op = self.steps[j].name();
                let fail = |message: String| TransformError::Step { index: j, op, message };
                let (n, c) = (&nums[g], &counts[g]);
                match &mut self.steps[j] {
                    Step::StringToCategorical { states, column } => {
                        if c.overflow {
                            return Err(fail(format!(
                                "more than {} distinct values in '{column}': list the states",
                                stats::MAX_DISTINCT
                            )));
                        }
                        *states = Some(c.sorted());
                    }
                    Step::Normalize { stats, column, .. } => {
                        if n.count == 0 {
                            return Err(fail(format!("no numeric values in '{column}' to fit on")));
                        }
                        *stats = Some(NormStats { min: n.min, max: n.max, mean: n.mean(), stdev: n.stdev() });
                    }
                    Step::Impute { strategy, value, column } => {
                        let v = match strategy {
                            ImputeStrategy::Mean => serde_json::json!(n.mean()),
                            ImputeStrategy::Median => serde_json::json!(n.quantiles(&[0.5])[0]),
                            ImputeStrategy::Mode => {
                                let Some((top, _)) = c.top(1).into_iter().next() else {
                                    return Err(fail(format!("no values in '{column}' to take the mode of")));
                                };
                                match kind {
                                    ColumnType::Integer | ColumnType::Long | ColumnType::Time => {
                                        serde_json::json!(top.parse::<i64>().unwrap_or_default())
                                    }
                                    ColumnType::Double | ColumnType::Float => {
                                        serde_json::json!(top.parse::<f64>().unwrap_or_default())
                                    }
                                    ColumnType::Boolean => serde_json::json!(top == "true"),
                                    _ => serde_json::json!(top),
                                }
                            }
                            ImputeStrategy::Constant => continue,
                        };
                        if v.as_f64().is_some_and(|x| !x.is_finite()) {
                            return Err(fail(format!("no numeric values in '{column}' to fit on")));
                        }
                        *value = Some(v);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// A process ready to run.
pub struct Compiled {
    pub input: Schema,
    /// State lookups of categorical input columns.
    input_states: Vec<Option<std::collections::HashSet<Box<str>>>>,
    pub output: Schema,
    ops: Vec<Op>,
    policies: Policies,
    logged: AtomicU64,
}

impl Compiled {
    /// Applies the policy to a problem with a row; `Ok(None)` drops the row.
    fn issue(
        &self,
        issue: RowIssue,
        file: &str,
        line: u64,
        report: &mut Report,
    ) -> Result<Option<Vec<Value>>, TransformError> {
        match issue {
            RowIssue::Unknown { column, value } => match self.policies.unknown_category {
                UnknownCategory::Drop => {
                    report.unknown_dropped += 1;
                    Ok(None)
                }
                _ => Err(TransformError::Row {
                    file: file.into(),
                    line,
                    column,
                    value,
                    message: "unknown category (set policies.unknown_category to \"reserved\" or \"drop\" to accept it)".into(),
                }),
            },
            RowIssue::Invalid { column, value, message } => match self.policies.invalid_record {
                InvalidRecord::Error => Err(TransformError::Row { file: file.into(), line, column, value, message }),
                InvalidRecord::Drop => {
                    report.invalid_dropped += 1;
                    Ok(None)
                }
                InvalidRecord::DropAndLog => {
                    report.invalid_dropped += 1;
                    if self.logged.fetch_add(1, Ordering::Relaxed) < 20 {
                        tracing::warn!("{file}:{line}: dropped: column '{column}': {message} (value '{value}')");
                    }
                    Ok(None)
                }
            },
        }
    }

    /// Parses a raw record into values of the input schema.
    pub fn parse(
        &self,
        fields: &csv::ByteRecord,
        file: &str,
        line: u64,
        report: &mut Report,
    ) -> Result<Option<Vec<Value>>, TransformError> {
        let n = self.input.columns.len();
        if fields.len() != n {
            let issue = RowIssue::Invalid {
                column: "(row)".into(),
                value: fields
                    .iter()
                    .map(String::from_utf8_lossy)
                    .collect::<Vec<_>>()
                    .join(",")
                    .chars()
                    .take(60)
                    .collect(),
                message: format!("expected {n} columns, found {}", fields.len()),
            };
            return self.issue(issue, file, line, report);
        }
        let mut row = Vec::with_capacity(n + 4);
        for (i, col) in self.input.columns.iter().enumerate() {
            let raw = match std::str::from_utf8(&fields[i]) {
                Ok(s) => s,
                Err(_) => {
                    let issue = RowIssue::Invalid {
                        column: col.name.clone(),
                        value: String::from_utf8_lossy(&fields[i]).into_owned(),
                        message: "not UTF-8 text".into(),
                    };
                    return self.issue(issue, file, line, report);
                }
            };
            match parse_field(raw, &col.kind) {
                Ok(Value::Str(s)) if self.input_states[i].as_ref().is_some_and(|st| !st.contains(&s)) => {
                    let issue = RowIssue::Unknown { column: col.name.clone(), value: s.to_string() };
                    return self.issue(issue, file, line, report);
                }
                Ok(v) => row.push(v),
                Err(expected) => {
                    let issue = RowIssue::Invalid {
                        column: col.name.clone(),
                        value: raw.to_string(),
                        message: format!("expected {expected} ({})", col.kind.name()),
                    };
                    return self.issue(issue, file, line, report);
                }
            }
        }
        Ok(Some(row))
    }

    /// Runs the steps over a parsed row; `Ok(None)` when it was filtered out or dropped.
    pub fn run(
        &self,
        mut row: Vec<Value>,
        file: &str,
        line: u64,
        report: &mut Report,
    ) -> Result<Option<Vec<Value>>, TransformError> {
        for op in &self.ops {
            let reserved_before = match op {
                Op::Categorical { col, states, .. } => {
                    matches!(&row[*col], Value::Str(s) if !states.contains_key(s))
                }
                _ => false,
            };
            match op.apply(&mut row) {
                Ok(true) => {
                    if reserved_before {
                        report.unknown_mapped += 1;
                    }
                }
                Ok(false) => {
                    report.filtered += 1;
                    return Ok(None);
                }
                Err(issue) => return self.issue(issue, file, line, report),
            }
        }
        Ok(Some(row))
    }

    /// Parse and run; counts the row in and, if it survives, out.
    pub fn record(
        &self,
        rec: &RawRecord,
        file: &str,
        report: &mut Report,
    ) -> Result<Option<Vec<Value>>, TransformError> {
        report.rows_in += 1;
        let Some(row) = self.parse(&rec.fields, file, rec.line, report)? else { return Ok(None) };
        let out = self.run(row, file, rec.line, report)?;
        if out.is_some() {
            report.rows_out += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
