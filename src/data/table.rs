//! Tables (CSV) as training data: the record → minibatch step. After the transform process,
//! the label column becomes class indices (or regression targets) and every other column a
//! feature. Two ways to build the dataset: eagerly (the local executor: test data, tools) and
//! lazily (the distributed executor: each worker transforms the partitions the work queue
//! hands it, the first time it needs them).

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::csv::{CsvSource, RawRecord};
use super::schema::{ColumnType, Schema, Value};
use super::transform::{Compiled, Report, TransformProcess};
use super::{DataError, Dataset, Features, LazyRows, Targets};
use crate::job::{DataSpec, ResolvedData, Task};
use crate::rng::Rng;
use crate::storage::Location;

/// Where features and the label sit in the transformed row.
#[derive(Clone, Debug)]
pub struct FeatureLayout {
    pub features: Vec<usize>,
    pub label: usize,
    pub task: Task,
    /// Classes (classification) or 1 (regression).
    pub outputs: usize,
    pub class_names: Vec<String>,
}

fn data_err(location: &str, message: impl Into<String>) -> DataError {
    DataError::NoInput { location: location.into(), message: message.into() }
}

impl FeatureLayout {
    /// Checks that every column but the label is numeric and the label fits the task.
    pub fn new(schema: &Schema, data: &DataSpec, source: &str) -> Result<FeatureLayout, DataError> {
        if data.label.is_empty() {
            return Err(data_err(source, "CSV data needs data.label: the column to predict"));
        }
        let label = schema.index(&data.label).ok_or_else(|| {
            data_err(
                source,
                format!(
                    "no label column '{}' after the transform (columns: {})",
                    data.label,
                    schema.names().join(", ")
                ),
            )
        })?;
        let mut features = Vec::new();
        for (i, c) in schema.columns.iter().enumerate() {
            if i == label {
                continue;
            }
            if !c.kind.is_numeric() {
                return Err(data_err(
                    source,
                    format!(
                        "column '{}' is {} after the transform; remove it or encode it (one-hot, integer) to train on it",
                        c.name,
                        c.kind.name()
                    ),
                ));
            }
            features.push(i);
        }
        if features.is_empty() {
            return Err(data_err(source, "no feature columns besides the label"));
        }
        let lc = &schema.columns[label];
        let (outputs, class_names) = match (data.task, &lc.kind) {
            (Task::Regression, k) if k.is_numeric() => (1, vec![lc.name.clone()]),
            (Task::Regression, k) => {
                return Err(data_err(
                    source,
                    format!("regression label '{}' is {}; expected a number", lc.name, k.name()),
                ));
            }
            (Task::Classification, ColumnType::Categorical { states }) => (states.len(), states.clone()),
            (Task::Classification, ColumnType::Boolean) => (2, vec!["false".into(), "true".into()]),
            (Task::Classification, ColumnType::Integer | ColumnType::Long) => {
                let n = data.num_classes.unwrap_or(0);
                (n, (0..n).map(|c| c.to_string()).collect())
            }
            (Task::Classification, k) => {
                return Err(data_err(
                    source,
                    format!(
                        "class label '{}' is {}; expected categorical, integer or boolean (use string_to_categorical)",
                        lc.name,
                        k.name()
                    ),
                ));
            }
        };
        Ok(FeatureLayout { features, label, task: data.task, outputs, class_names })
    }

    pub fn width(&self) -> usize {
        self.features.len()
    }

    /// Writes a row's features; returns its label (class index or target). `Err` names the
    /// column that cannot be used.
    pub fn encode(&self, row: &[Value], out: &mut [f32]) -> Result<f32, (String, String)> {
        for (o, &c) in out.iter_mut().zip(&self.features) {
            match row[c].as_f64() {
                Some(x) if x.is_finite() => *o = x as f32,
                _ => return Err((c.to_string(), row[c].text().into_owned())),
            }
        }
        let label = match &row[self.label] {
            Value::Str(s) => self.class_names.iter().position(|n| n.as_str() == &**s).map(|i| i as f64),
            v => v.as_f64(),
        };
        match label {
            Some(l) if l.is_finite() => {
                if self.task == Task::Classification
                    && (l < 0.0 || l.fract() != 0.0 || (self.outputs > 0 && l as usize >= self.outputs))
                {
                    return Err((self.label.to_string(), format!("{l}")));
                }
                Ok(l as f32)
            }
            _ => Err((self.label.to_string(), row[self.label].text().into_owned())),
        }
    }
}

/// The process a table is read with: the given one, or an identity process over the schema
/// inferred from the data.
pub fn process_for(
    data: &DataSpec,
    source: &CsvSource,
    given: Option<&TransformProcess>,
) -> Result<TransformProcess, DataError> {
    if let Some(p) = given {
        return Ok(p.clone());
    }
    let sample = source.sample(1000)?;
    let width = sample.first().map(|r| r.len()).unwrap_or(0);
    let names: Vec<String> = match source.header()? {
        Some(h) => h,
        None => (0..width).map(|i| format!("c{i}")).collect(),
    };
    let mut schema = Schema::infer(&names, &sample);
    // A text label becomes categorical on the fly.
    if let Some(i) = schema.index(&data.label)
        && schema.columns[i].kind == ColumnType::String
        && data.task == Task::Classification
    {
        let mut states: Vec<String> = sample.iter().filter_map(|r| r.get(i).cloned()).collect();
        states.sort();
        states.dedup();
        schema.columns[i].kind = ColumnType::Categorical { states };
    }
    Ok(TransformProcess { schema, steps: Vec::new(), policies: Default::default() })
}

/// Which of `n` rows are held out (test) and which train, from the seed.
pub fn holdout(n: usize, fraction: f32, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    Rng::derive(seed, 0x484F_4C44).shuffle(&mut idx);
    let k = ((n as f64) * fraction as f64).round() as usize;
    let (mut test, mut train) = (idx[..k].to_vec(), idx[k..].to_vec());
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

/// Which rows of a location to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    All,
    /// Without the held-out rows.
    Train,
    /// Only the held-out rows.
    Held,
}

pub fn read_records(
    location: &Location,
    data: &DataSpec,
    split: Split,
    seed: u64,
) -> Result<(CsvSource, Vec<RawRecord>), DataError> {
    let source = CsvSource::open(location, &data.csv)?;
    let mut records: Vec<RawRecord> = source.records().collect::<Result<_, _>>()?;
    if split != Split::All && data.holdout > 0.0 {
        let (train, held) = holdout(records.len(), data.holdout, seed);
        let keep = if split == Split::Train { train } else { held };
        records = keep.into_iter().map(|i| records[i as usize].clone()).collect();
    }
    if records.is_empty() {
        return Err(data_err(&location.to_string(), "holds no data rows"));
    }
    Ok((source, records))
}

/// Fits the job's transform process (if it needs fitting) on the training rows.
pub fn fitted_process(data: &ResolvedData, seed: u64) -> Result<Option<TransformProcess>, DataError> {
    let given = match &data.transform {
        Some(t) => Some(
            TransformProcess::load(t)
                .map_err(|e| DataError::OfKey { key: "data.transform", source: Box::new(e.into()) })?,
        ),
        None => None,
    };
    let (source, records) = read_records(&data.train, data, Split::Train, seed)?;
    let mut process = process_for(data, &source, given.as_ref())?;
    if process.needs_fit() {
        process.fit(|| records.iter().cloned().map(Ok), &|i| source.file_name(i)).map_err(DataError::from)?;
    }
    Ok(Some(process))
}

fn encode_error(
    layout: &FeatureLayout,
    schema: &Schema,
    file: &str,
    line: u64,
    col: (String, String),
) -> DataError {
    let idx: usize = col.0.parse().unwrap_or(layout.label);
    let name = schema.columns.get(idx).map(|c| c.name.clone()).unwrap_or_default();
    let what = if idx == layout.label {
        match layout.task {
            Task::Classification => format!("a class in 0..{}", layout.outputs),
            Task::Regression => "a finite number".into(),
        }
    } else {
        "a finite number (add an impute step or a filter for missing values and NaN)".into()
    };
    DataError::Format {
        file: file.into(),
        message: format!(
            "line {line}: column '{name}': value '{}' after the transform; expected {what}",
            col.1
        ),
    }
}

/// A transformed row's features (empty when dropped), its label, and what happened to it.
type EncodedRow = (Vec<f32>, f32, Report);

/// The local executor's record → minibatch step: every row transformed now, in parallel.
pub fn load_eager(
    location: &Location,
    data: &DataSpec,
    process: Option<&TransformProcess>,
    split: Split,
    seed: u64,
) -> Result<(Dataset, Report), DataError> {
    let (source, records) = read_records(location, data, split, seed)?;
    let process = process_for(data, &source, process)?;
    let compiled = process.compile().map_err(DataError::from)?;
    let mut layout = FeatureLayout::new(&compiled.output, data, &location.to_string())?;
    let w = layout.width();
    let mut report = Report::default();
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for chunk in records.chunks(4096) {
        let out: Vec<Result<EncodedRow, DataError>> = chunk
            .par_iter()
            .map(|rec| {
                let mut rep = Report::default();
                let file = source.file_name(rec.file);
                match compiled.record(rec, &file, &mut rep).map_err(DataError::from)? {
                    Some(row) => {
                        let mut f = vec![0.0f32; w];
                        let label = layout
                            .encode(&row, &mut f)
                            .map_err(|c| encode_error(&layout, &compiled.output, &file, rec.line, c))?;
                        Ok((f, label, rep))
                    }
                    None => Ok((Vec::new(), f32::NAN, rep)),
                }
            })
            .collect();
        for r in out {
            let (f, label, rep) = r?;
            report.add(&rep);
            if !f.is_empty() {
                features.extend_from_slice(&f);
                labels.push(label);
            }
        }
    }
    if labels.is_empty() {
        return Err(data_err(
            &location.to_string(),
            format!("no rows left after the transform ({})", report.line()),
        ));
    }
    if layout.task == Task::Classification && layout.outputs == 0 {
        let max = labels.iter().fold(0.0f32, |m, &l| m.max(l)) as usize;
        layout.outputs = (max + 1).max(2);
        layout.class_names = (0..layout.outputs).map(|c| c.to_string()).collect();
    }
    let rows = labels.len();
    let targets = match layout.task {
        Task::Classification => {
            Targets::Classes { labels: labels.iter().map(|&l| l as u32).collect(), classes: layout.outputs }
        }
        Task::Regression => Targets::Values { values: labels, width: 1 },
    };
    Ok((
        Dataset {
            source: location.to_string(),
            features: Features::F32(features),
            width: w,
            shape: crate::nn::Shape::Vector(w.max(1)),
            rows,
            targets,
            class_names: layout.class_names,
            lengths: Vec::new(),
        },
        report,
    ))
}

const BLOCK: usize = 1024;

#[derive(Default)]
struct Block {
    /// 0 not yet transformed, 1 usable, 2 dropped (filtered or by policy).
    state: Vec<u8>,
    features: Vec<f32>,
    labels: Vec<f32>,
}

/// Raw rows transformed on demand, by whichever worker trains their partition.
pub struct LazyTable {
    records: Vec<RawRecord>,
    source: CsvSource,
    compiled: Compiled,
    layout: FeatureLayout,
    blocks: Vec<Mutex<Block>>,
    report: Mutex<Report>,
}

impl std::fmt::Debug for LazyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LazyTable({} rows)", self.records.len())
    }
}

impl LazyTable {
    pub fn layout(&self) -> &FeatureLayout {
        &self.layout
    }

    pub fn report(&self) -> Report {
        self.report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl LazyRows for LazyTable {
    /// Transforms the rows of `indices` not yet transformed; puts the usable ones in `out`.
    fn prepare(&self, indices: &[u32], out: &mut Vec<u32>) -> Result<(), DataError> {
        out.clear();
        let w = self.layout.width();
        let mut report = Report::default();
        let mut feats = vec![0.0f32; w];
        for &i in indices {
            let i = i as usize;
            let mut block = self.blocks[i / BLOCK].lock().unwrap_or_else(|p| p.into_inner());
            if block.state.is_empty() {
                let n = BLOCK.min(self.records.len() - (i / BLOCK) * BLOCK);
                block.state = vec![0; n];
                block.features = vec![0.0; n * w];
                block.labels = vec![0.0; n];
            }
            let j = i % BLOCK;
            if block.state[j] == 0 {
                let rec = &self.records[i];
                let file = self.source.file_name(rec.file);
                block.state[j] =
                    match self.compiled.record(rec, &file, &mut report).map_err(DataError::from)? {
                        Some(row) => {
                            let label = self.layout.encode(&row, &mut feats).map_err(|c| {
                                encode_error(&self.layout, &self.compiled.output, &file, rec.line, c)
                            })?;
                            block.features[j * w..(j + 1) * w].copy_from_slice(&feats);
                            block.labels[j] = label;
                            1
                        }
                        None => 2,
                    };
            }
            if block.state[j] == 1 {
                out.push(i as u32);
            }
        }
        self.report.lock().unwrap_or_else(|p| p.into_inner()).add(&report);
        Ok(())
    }

    /// Copies a prepared row's features; returns its label.
    fn row(&self, i: usize, out: &mut [f32]) -> f32 {
        let w = self.layout.width();
        let block = self.blocks[i / BLOCK].lock().unwrap_or_else(|p| p.into_inner());
        let j = i % BLOCK;
        out.copy_from_slice(&block.features[j * w..(j + 1) * w]);
        block.labels[j]
    }
}

/// The distributed executor's dataset: raw rows now, transformed partition by partition.
pub fn load_lazy(
    location: &Location,
    data: &DataSpec,
    process: &TransformProcess,
    outputs: usize,
    seed: u64,
) -> Result<Dataset, DataError> {
    let (source, records) = read_records(location, data, Split::Train, seed)?;
    let compiled = process.compile().map_err(DataError::from)?;
    let mut layout = FeatureLayout::new(&compiled.output, data, &location.to_string())?;
    if layout.outputs == 0 {
        layout.outputs = outputs;
        layout.class_names = (0..outputs).map(|c| c.to_string()).collect();
    }
    let rows = records.len();
    let table = LazyTable {
        blocks: (0..rows.div_ceil(BLOCK)).map(|_| Mutex::new(Block::default())).collect(),
        records,
        source,
        compiled,
        layout: layout.clone(),
        report: Mutex::new(Report::default()),
    };
    let targets = match layout.task {
        Task::Classification => Targets::Lazy { classes: layout.outputs },
        Task::Regression => Targets::Lazy { classes: 0 },
    };
    Ok(Dataset {
        source: location.to_string(),
        features: Features::Lazy(Arc::new(table)),
        width: layout.width(),
        shape: crate::nn::Shape::Vector(layout.width().max(1)),
        rows,
        targets,
        class_names: layout.class_names,
        lengths: Vec::new(),
    })
}
