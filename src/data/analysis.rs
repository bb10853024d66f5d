//! `strom analyze`: per column count, missing, invalid, min, max, mean, stdev, distinct values,
//! quantiles, a histogram and the top categories; and a data-quality summary. One streaming pass,
//! bounded memory.

use std::fmt::Write as _;

use serde::Serialize;

use super::DataError;
use super::csv::CsvSource;
use super::schema::{ColumnType, Schema, Value, parse_field};
use super::transform::stats::{Counts, NumStats};

const BINS: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct ColumnAnalysis {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Values that parsed as the column's type.
    pub valid: u64,
    pub missing: u64,
    /// Values that did not parse as the column's type.
    pub invalid: u64,
    pub nan: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub stdev: Option<f64>,
    /// Distinct values; `None` beyond 100,000.
    pub distinct: Option<u64>,
    /// 0, 25, 50, 75 and 100th percentiles (exact up to 100,000 values, sampled beyond).
    pub quantiles: Option<[f64; 5]>,
    pub histogram: Option<Vec<u64>>,
    pub top: Vec<(String, u64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub source: String,
    pub rows: u64,
    /// Rows with the wrong number of columns.
    pub malformed_rows: u64,
    /// The first malformed rows, where they are: "file:line: N fields, expected M".
    pub malformed_examples: Vec<String>,
    pub schema: Schema,
    pub columns: Vec<ColumnAnalysis>,
}

/// The schema of a source: the given one, or inferred from its first 1000 rows.
pub fn schema_of(source: &CsvSource, given: Option<Schema>) -> Result<Schema, DataError> {
    if let Some(s) = given {
        return Ok(s);
    }
    let sample = source.sample(1000)?;
    let width = sample.first().map(|r| r.len()).unwrap_or(0);
    let names = source.header()?.unwrap_or_else(|| (0..width).map(|i| format!("c{i}")).collect());
    Ok(Schema::infer(&names, &sample))
}

/// Malformed rows listed by line (the count says how many there are in all).
const MALFORMED_SHOWN: usize = 10;

pub fn analyze(source: &CsvSource, schema: Option<Schema>) -> Result<Analysis, DataError> {
    let schema = schema_of(source, schema)?;
    let n = schema.columns.len();
    let mut nums = vec![NumStats::default(); n];
    let mut counts = vec![Counts::default(); n];
    let (mut valid, mut missing, mut invalid, mut nan) =
        (vec![0u64; n], vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    let (mut rows, mut malformed) = (0u64, 0u64);
    let mut malformed_examples = Vec::new();
    for rec in source.records() {
        let rec = rec?;
        rows += 1;
        if rec.fields.len() != n {
            malformed += 1;
            if malformed_examples.len() < MALFORMED_SHOWN {
                malformed_examples.push(format!(
                    "{}:{}: {} fields, expected {n}",
                    source.file_name(rec.file),
                    rec.line,
                    rec.fields.len()
                ));
            }
            continue;
        }
        for (i, col) in schema.columns.iter().enumerate() {
            let raw = String::from_utf8_lossy(&rec.fields[i]);
            match parse_field(&raw, &col.kind) {
                Ok(Value::Missing) => missing[i] += 1,
                Ok(v) => {
                    if let ColumnType::Categorical { states } = &col.kind
                        && !states.iter().any(|s| s.as_str() == raw.trim())
                    {
                        invalid[i] += 1;
                        continue;
                    }
                    valid[i] += 1;
                    match v.as_f64() {
                        Some(x) if x.is_finite() => nums[i].push(x),
                        Some(_) => nan[i] += 1,
                        None => {}
                    }
                    counts[i].push(raw.trim());
                }
                Err(_) => invalid[i] += 1,
            }
        }
    }
    let columns = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, col)| {
            let numeric = col.kind.is_numeric() && nums[i].count > 0;
            let s = &nums[i];
            let q = s.quantiles(&[0.0, 0.25, 0.5, 0.75, 1.0]);
            ColumnAnalysis {
                name: col.name.clone(),
                kind: col.kind.name().into(),
                valid: valid[i],
                missing: missing[i],
                invalid: invalid[i],
                nan: nan[i],
                min: numeric.then_some(s.min),
                max: numeric.then_some(s.max),
                mean: numeric.then(|| s.mean()),
                stdev: numeric.then(|| s.stdev()),
                distinct: (!counts[i].overflow).then_some(counts[i].map.len() as u64),
                quantiles: numeric.then(|| [q[0], q[1], q[2], q[3], q[4]]),
                histogram: numeric.then(|| s.histogram(BINS)),
                top: if numeric { Vec::new() } else { counts[i].top(5) },
            }
        })
        .collect();
    Ok(Analysis {
        source: source.files.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", "),
        rows,
        malformed_rows: malformed,
        malformed_examples,
        schema,
        columns,
    })
}

fn num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.abs() >= 1e5 || (v != 0.0 && v.abs() < 1e-3) => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
        None => "-".into(),
    }
}

impl Analysis {
    /// Tables a person can read: statistics, then data quality, then categories.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} rows, {} columns, {} malformed rows\n",
            self.source,
            self.rows,
            self.columns.len(),
            self.malformed_rows
        );
        if !self.malformed_examples.is_empty() {
            let more = self.malformed_rows.saturating_sub(self.malformed_examples.len() as u64);
            let _ = writeln!(out, "malformed rows (left out of the statistics):");
            for m in &self.malformed_examples {
                let _ = writeln!(out, "  {m}");
            }
            if more > 0 {
                let _ = writeln!(out, "  ... and {more} more");
            }
            let _ = writeln!(out);
        }
        let w = self.columns.iter().map(|c| c.name.len()).max().unwrap_or(6).clamp(6, 28);
        let _ = writeln!(
            out,
            "{:<w$}  {:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
            "column", "type", "min", "median", "max", "mean", "stdev", "distinct"
        );
        for c in &self.columns {
            let median = c.quantiles.map(|q| q[2]);
            let distinct = c.distinct.map(|d| d.to_string()).unwrap_or_else(|| ">100000".into());
            let _ = writeln!(
                out,
                "{:<w$}  {:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
                c.name,
                c.kind,
                num(c.min),
                num(median),
                num(c.max),
                num(c.mean),
                num(c.stdev),
                distinct
            );
        }
        let _ = writeln!(out, "\ndata quality (per column: valid / invalid / missing / NaN)");
        for c in &self.columns {
            let total = (c.valid + c.invalid + c.missing).max(1) as f64;
            let flag = if c.invalid + c.missing + c.nan > 0 { "  <- check" } else { "" };
            let _ = writeln!(
                out,
                "{:<w$}  {:>9} {:>8} {:>8} {:>6}  ({:.1}% valid){flag}",
                c.name,
                c.valid,
                c.invalid,
                c.missing,
                c.nan,
                100.0 * c.valid as f64 / total
            );
        }
        let cats: Vec<&ColumnAnalysis> = self.columns.iter().filter(|c| !c.top.is_empty()).collect();
        if !cats.is_empty() {
            let _ = writeln!(out, "\ntop categories");
            for c in cats {
                let top: Vec<String> = c.top.iter().map(|(v, n)| format!("{v} ({n})")).collect();
                let _ = writeln!(out, "{:<w$}  {}", c.name, top.join(", "));
            }
        }
        let hists: Vec<&ColumnAnalysis> = self.columns.iter().filter(|c| c.histogram.is_some()).collect();
        if !hists.is_empty() {
            let _ = writeln!(out, "\nhistograms ({BINS} equal bins from min to max)");
            for c in hists {
                let h = c.histogram.as_ref().map(|h| spark(h)).unwrap_or_default();
                let _ = writeln!(out, "{:<w$}  {h}", c.name);
            }
        }
        out
    }
}

fn spark(h: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = h.iter().copied().max().unwrap_or(0).max(1) as f64;
    h.iter().map(|&c| if c == 0 { ' ' } else { BARS[((c as f64 / max) * 7.0).round() as usize] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv::CsvOptions;
    use crate::storage::Location;

    #[test]
    fn statistics_quality_and_categories() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "a,b,c\n1,x,2.5\n2,y,\n3,x,NaN\nfour,x,1\n5,z\n").unwrap();
        let source = CsvSource::open(&Location::local(&p), &CsvOptions::default()).unwrap();
        let schema = Schema {
            columns: vec![
                super::super::schema::Column { name: "a".into(), kind: ColumnType::Integer },
                super::super::schema::Column { name: "b".into(), kind: ColumnType::String },
                super::super::schema::Column { name: "c".into(), kind: ColumnType::Double },
            ],
        };
        let a = analyze(&source, Some(schema)).unwrap();
        assert_eq!((a.rows, a.malformed_rows), (5, 1));
        let col_a = &a.columns[0];
        assert_eq!((col_a.valid, col_a.invalid, col_a.missing), (3, 1, 0));
        assert_eq!((col_a.min, col_a.max, col_a.mean), (Some(1.0), Some(3.0), Some(2.0)));
        assert_eq!(col_a.quantiles.unwrap()[2], 2.0);
        assert_eq!(a.columns[1].top[0], ("x".to_string(), 3));
        assert_eq!(a.columns[1].distinct, Some(2));
        let c = &a.columns[2];
        assert_eq!((c.valid, c.missing, c.nan), (3, 1, 1));
        let t = a.table();
        assert!(
            t.contains("5 rows, 3 columns, 1 malformed rows")
                && t.contains("<- check")
                && t.contains("x (3)"),
            "{t}"
        );
        let inferred = analyze(&source, None).unwrap();
        assert_eq!(inferred.schema.columns[0].kind, ColumnType::String, "'four' makes a text column");
    }
}
