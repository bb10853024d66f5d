//! Sequence CSV (`data.format = "sequence_csv"`), with DataVec's semantics
//! (`CSVSequenceRecordReader` + `SequenceRecordReaderDataSetIterator`): one CSV file per
//! sequence, one row per step, the files of a folder in name order. Labels are either
//!
//! - a parallel folder: `DIR/features/NAME` and `DIR/labels/NAME`, one integer class per line;
//!   a label file of one line labels the whole sequence (classification of sequences: DataVec's
//!   many-to-one, `ALIGN_END`), one of as many lines as its sequence labels every step, and a
//!   shorter one is placed by `data.align` (`end` or `start`; the other steps have none); or
//! - a column of the feature files, `data.label`: a class at every step.
//!
//! The transform process (`data.transform`) runs on every step row. Sequences of several
//! lengths are padded with zeros to the longest training sequence and masked: every layer,
//! loss and metric sees only the steps a sequence has.

use rayon::prelude::*;

use super::csv::CsvSource;
use super::schema::{ColumnType, Schema};
use super::table::{self, FeatureLayout, Split};
use super::transform::{Compiled, Report, TransformProcess};
use super::{DataError, DataShape, Dataset, Features, NO_LABEL, Targets};
use crate::job::{Align, DataSpec};
use crate::nn::Shape;
use crate::storage::Location;

/// The files behind a sequence location.
#[derive(Clone, Debug)]
pub struct SequenceFiles {
    pub features: Vec<Location>,
    /// The label file of each feature file (a parallel `labels/` folder), or none: the labels
    /// are the column `data.label`.
    pub labels: Option<Vec<Location>>,
}

fn no_input(location: &Location, message: impl Into<String>) -> DataError {
    DataError::NoInput { location: location.to_string(), message: message.into() }
}

/// A folder's data files, in name order.
fn listed(location: &Location) -> Result<Vec<Location>, DataError> {
    super::csv::folder_files(location, "sequence files")
}

/// The sequence files of `location`: `features/` and `labels/` folders side by side (paired
/// by file name), or a folder of feature files whose label is the column `data.label`.
pub fn files(location: &Location, data: &DataSpec) -> Result<SequenceFiles, DataError> {
    if !location.stat()?.is_dir {
        return Err(no_input(
            location,
            "sequence CSV reads a folder: one file per sequence, or features/ and labels/ folders",
        ));
    }
    let subdirs: Vec<String> =
        location.list()?.into_iter().filter(|e| e.is_dir).map(|e| e.location.file_name()).collect();
    let has = |name: &str| subdirs.iter().any(|d| d == name);
    if has("features") {
        let features = listed(&location.join("features"))?;
        if !has("labels") {
            return Err(no_input(location, "has features/ but no labels/ folder beside it"));
        }
        let labels_dir = location.join("labels");
        let labels = listed(&labels_dir)?;
        // Paired by name: every feature file has its label file and no label file is left over.
        let names: Vec<String> = labels.iter().map(|l| l.file_name()).collect();
        for f in &features {
            if names.binary_search(&f.file_name()).is_err() {
                return Err(no_input(&labels_dir, format!("no label file {} for {f}", f.file_name())));
            }
        }
        if labels.len() > features.len() {
            let feature_names: Vec<String> = features.iter().map(|f| f.file_name()).collect();
            let extra = names.iter().find(|n| feature_names.binary_search(n).is_err());
            return Err(no_input(
                &labels_dir,
                format!("label file {} has no sequence in features/", extra.map_or("?", |s| s.as_str())),
            ));
        }
        return Ok(SequenceFiles { features, labels: Some(labels) });
    }
    if data.label.trim().is_empty() {
        return Err(no_input(
            location,
            "no labels: give features/ and labels/ folders, or data.label naming a column of the sequence files",
        ));
    }
    Ok(SequenceFiles { features: listed(location)?, labels: None })
}

/// How a feature row becomes features (and a label, for a label column).
enum Columns {
    /// Every column is a feature.
    All { width: usize },
    /// `data.label` is the label, the others features.
    Label(FeatureLayout),
}

impl Columns {
    fn new(
        schema: &Schema,
        data: &DataSpec,
        label_files: bool,
        location: &Location,
    ) -> Result<Columns, DataError> {
        if !label_files {
            return Ok(Columns::Label(FeatureLayout::new(schema, data, &location.to_string())?));
        }
        if let Some(c) = schema.columns.iter().find(|c| !c.kind.is_numeric()) {
            return Err(no_input(
                location,
                format!(
                    "column '{}' is {}; every column of a sequence file is a feature (a number)",
                    c.name,
                    c.kind.name()
                ),
            ));
        }
        Ok(Columns::All { width: schema.columns.len() })
    }

    fn width(&self) -> usize {
        match self {
            Columns::All { width } => *width,
            Columns::Label(l) => l.width(),
        }
    }
}

/// One sequence as read: its steps' features, and per-step labels from a label column.
struct Sequence {
    features: Vec<f32>,
    steps: usize,
    labels: Vec<u16>,
}

/// Reads one feature file through the transform.
fn read_sequence(
    file: &Location,
    data: &DataSpec,
    compiled: &Compiled,
    columns: &Columns,
    report: &mut Report,
) -> Result<Sequence, DataError> {
    let source = CsvSource::open(file, &data.csv)?;
    let name = file.to_string();
    let w = columns.width();
    let mut seq = Sequence { features: Vec::new(), steps: 0, labels: Vec::new() };
    for rec in source.records() {
        let rec = rec?;
        let Some(row) = compiled.record(&rec, &name, report).map_err(DataError::from)? else { continue };
        let at = seq.features.len();
        seq.features.resize(at + w, 0.0);
        let out = &mut seq.features[at..];
        match columns {
            Columns::All { .. } => {
                for (o, v) in out.iter_mut().zip(&row) {
                    match v.as_f64() {
                        Some(x) if x.is_finite() => *o = x as f32,
                        _ => {
                            return Err(DataError::Format {
                                file: name,
                                message: format!(
                                    "line {}: value '{}' after the transform; expected a finite number",
                                    rec.line,
                                    v.text()
                                ),
                            });
                        }
                    }
                }
            }
            Columns::Label(layout) => {
                let label = layout.encode(&row, out).map_err(|(c, v)| DataError::Format {
                    file: name.clone(),
                    message: format!(
                        "line {}: column {c}: value '{v}'; expected a number (a class for the label)",
                        rec.line
                    ),
                })?;
                seq.labels.push(label as u16);
            }
        }
        seq.steps += 1;
    }
    if seq.steps == 0 {
        return Err(DataError::Format { file: name, message: "holds no steps".into() });
    }
    Ok(seq)
}

/// The classes of a label file, one per non-empty line.
fn read_labels(file: &Location) -> Result<Vec<u16>, DataError> {
    let bytes = file.read()?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| DataError::Format { file: file.to_string(), message: "is not UTF-8 text".into() })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let field = line.split(',').next().unwrap_or("").trim();
        if field.is_empty() {
            continue;
        }
        match field.parse::<u16>() {
            Ok(c) if c < NO_LABEL => out.push(c),
            _ => {
                return Err(DataError::Format {
                    file: file.to_string(),
                    message: format!("line {}: '{field}' is not a class (an integer 0..65534)", i + 1),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(DataError::Format { file: file.to_string(), message: "holds no label".into() });
    }
    Ok(out)
}

/// Where labels come from, once read.
enum Labels {
    /// One class per sequence.
    Sequence(Vec<u32>),
    /// A class (or none) at every step, padded to the longest sequence.
    Steps(Vec<Vec<u16>>),
}

/// Every sequence of a location, how its rows were read, and its label files' classes.
type ReadAll = (Vec<Sequence>, Columns, Option<Vec<Vec<u16>>>);

/// Every sequence of `files` (in parallel).
fn read_all(
    files: &SequenceFiles,
    data: &DataSpec,
    process: Option<&TransformProcess>,
    location: &Location,
) -> Result<ReadAll, DataError> {
    let first = CsvSource::open(&files.features[0], &data.csv)?;
    let given = process.is_some();
    let mut process = table::process_for(data, &first, process)?;
    if !given {
        // Inferred from the first file only: a feature column of whole numbers there may hold
        // fractions in the next file, so features are read as numbers of any kind.
        for c in &mut process.schema.columns {
            if c.name != data.label && matches!(c.kind, ColumnType::Integer | ColumnType::Long) {
                c.kind = ColumnType::Double;
            }
        }
    }
    let compiled = process.compile().map_err(DataError::from)?;
    let columns = Columns::new(&compiled.output, data, files.labels.is_some(), location)?;
    let seqs: Vec<Sequence> = files
        .features
        .par_iter()
        .map(|f| read_sequence(f, data, &compiled, &columns, &mut Report::default()))
        .collect::<Result<_, _>>()?;
    let labels = match &files.labels {
        Some(l) => Some(l.par_iter().map(read_labels).collect::<Result<Vec<_>, _>>()?),
        None => None,
    };
    Ok((seqs, columns, labels))
}

/// The labels of each sequence, placed as `data.align` says.
fn place_labels(
    seqs: &[Sequence],
    files: &SequenceFiles,
    read: Option<Vec<Vec<u16>>>,
    align: Align,
) -> Result<Labels, DataError> {
    let Some(read) = read else {
        return Ok(Labels::Steps(seqs.iter().map(|s| s.labels.clone()).collect()));
    };
    if read.iter().all(|l| l.len() == 1) {
        return Ok(Labels::Sequence(read.iter().map(|l| l[0] as u32).collect()));
    }
    let names = files.labels.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(seqs.len());
    for (i, (s, l)) in seqs.iter().zip(read).enumerate() {
        let (t, n) = (s.steps, l.len());
        let placed = match align {
            _ if n == t => l,
            Align::End if n < t => std::iter::repeat_n(NO_LABEL, t - n).chain(l).collect(),
            Align::Start if n < t => l.into_iter().chain(std::iter::repeat_n(NO_LABEL, t - n)).collect(),
            _ => {
                let hint = if align == Align::Equal && n < t {
                    " (data.align = \"end\" or \"start\" places fewer labels)"
                } else {
                    ""
                };
                return Err(DataError::Format {
                    file: names.get(i).map(|f| f.to_string()).unwrap_or_default(),
                    message: format!(
                        "{n} labels for a sequence of {t} steps ({}); expected {t}, or 1 for the whole sequence{hint}",
                        files.features[i]
                    ),
                });
            }
        };
        out.push(placed);
    }
    Ok(Labels::Steps(out))
}

/// The longest training sequence: every location is padded to it.
fn training_steps(data: &DataSpec, process: Option<&TransformProcess>) -> Result<usize, DataError> {
    let train = Location::parse(&data.train)?;
    let files = files(&train, data)?;
    let (seqs, _, _) = read_all(&files, data, process, &train)?;
    Ok(seqs.iter().map(|s| s.steps).max().unwrap_or(1))
}

/// The sequences of `location` (all, or without / only the held-out sequences).
pub fn load(
    location: &Location,
    data: &DataSpec,
    process: Option<&TransformProcess>,
    split: Split,
    seed: u64,
) -> Result<Dataset, DataError> {
    let files = files(location, data)?;
    let (mut seqs, columns, read) = read_all(&files, data, process, location)?;
    let is_train = Location::parse(&data.train).is_ok_and(|t| t.to_string() == location.to_string());
    let longest = seqs.iter().map(|s| s.steps).max().unwrap_or(1);
    let steps = if is_train { longest } else { training_steps(data, process)? };
    if let Some((i, s)) = seqs.iter().enumerate().find(|(_, s)| s.steps > steps) {
        return Err(DataError::Format {
            file: files.features[i].to_string(),
            message: format!(
                "a sequence of {} steps; the model reads at most {steps} (the longest training sequence)",
                s.steps
            ),
        });
    }
    let mut labels = place_labels(&seqs, &files, read, data.align)?;
    let classes = match &labels {
        Labels::Sequence(l) => l.iter().copied().max().unwrap_or(0) as usize + 1,
        Labels::Steps(l) => {
            l.iter().flatten().filter(|&&c| c != NO_LABEL).map(|&c| c as usize + 1).max().unwrap_or(1)
        }
    };
    let classes = match (&columns, data.num_classes) {
        (Columns::Label(layout), _) if layout.outputs > 0 => layout.outputs,
        (_, Some(n)) => {
            if classes > n {
                return Err(no_input(
                    location,
                    format!("a label of class {} with data.num_classes = {n}", classes - 1),
                ));
            }
            n
        }
        _ => classes.max(2),
    };
    let mut keep: Vec<u32> = (0..seqs.len() as u32).collect();
    if split != Split::All && data.holdout > 0.0 {
        let (train, held) = table::holdout(seqs.len(), data.holdout, seed);
        keep = if split == Split::Train { train } else { held };
        if keep.is_empty() {
            return Err(no_input(
                location,
                format!("no sequences left for this split of data.holdout = {}", data.holdout),
            ));
        }
    }
    let w = columns.width();
    let mut features = vec![0.0f32; keep.len() * steps * w];
    let mut lengths = Vec::with_capacity(keep.len());
    for (r, &i) in keep.iter().enumerate() {
        let s = &mut seqs[i as usize];
        features[r * steps * w..][..s.features.len()].copy_from_slice(&s.features);
        lengths.push(s.steps as u32);
        s.features = Vec::new();
    }
    let targets = match &mut labels {
        Labels::Sequence(l) => {
            Targets::Classes { labels: keep.iter().map(|&i| l[i as usize]).collect(), classes }
        }
        Labels::Steps(l) => {
            let mut next = vec![NO_LABEL; keep.len() * steps];
            for (r, &i) in keep.iter().enumerate() {
                let l = &l[i as usize];
                next[r * steps..r * steps + l.len()].copy_from_slice(l);
            }
            Targets::Steps { next, steps, classes }
        }
    };
    let shape = if data.vocab > 0 {
        token_ids(&features, w, data.vocab, &files, &keep, steps, &lengths)?;
        Shape::Tokens { steps, vocab: data.vocab }
    } else {
        Shape::Sequence { steps, features: w }
    };
    let ragged = lengths.iter().any(|&n| n as usize != steps);
    Ok(Dataset {
        source: location.to_string(),
        features: Features::F32(features),
        width: steps * w,
        shape,
        rows: keep.len(),
        targets,
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        lengths: if ragged { lengths } else { Vec::new() },
    })
}

/// With `data.vocab`: one column of whole ids below it, or an error naming the file and line.
fn token_ids(
    features: &[f32],
    width: usize,
    vocab: usize,
    files: &SequenceFiles,
    keep: &[u32],
    steps: usize,
    lengths: &[u32],
) -> Result<(), DataError> {
    if width != 1 {
        return Err(DataError::Format {
            file: files.features[0].to_string(),
            message: format!(
                "{width} columns; with data.vocab = {vocab} a sequence file holds one column of token ids"
            ),
        });
    }
    for (r, &i) in keep.iter().enumerate() {
        for (t, &v) in features[r * steps..r * steps + lengths[r] as usize].iter().enumerate() {
            if !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < vocab) {
                return Err(DataError::Format {
                    file: files.features[i as usize].to_string(),
                    message: format!("step {}: '{v}' is not a token id below data.vocab = {vocab}", t + 1),
                });
            }
        }
    }
    Ok(())
}

/// The training data's shape (`data.train` without its held-out sequences).
pub fn describe(
    location: &Location,
    data: &DataSpec,
    process: Option<&TransformProcess>,
    seed: u64,
) -> Result<DataShape, DataError> {
    let ds = load(location, data, process, Split::Train, seed)?;
    Ok(DataShape {
        rows: ds.rows,
        width: ds.width,
        input: ds.shape,
        outputs: ds.output_width(),
        classification: true,
        class_names: ds.class_names,
        columns: Vec::new(),
        label: data.label.clone(),
    })
}

/// Fits the job's transform process (if it needs fitting) on every step row of the training
/// sequences.
pub fn fitted_process(data: &crate::job::ResolvedData) -> Result<Option<TransformProcess>, DataError> {
    let Some(transform) = &data.transform else { return Ok(None) };
    let given = TransformProcess::load(transform)
        .map_err(|e| DataError::OfKey { key: "data.transform", source: Box::new(e.into()) })?;
    let files = files(&data.train, data)?;
    let mut process = given;
    if process.needs_fit() {
        let sources: Vec<CsvSource> =
            files.features.iter().map(|f| CsvSource::open(f, &data.csv)).collect::<Result<_, _>>()?;
        let names: Vec<String> = files.features.iter().map(|f| f.to_string()).collect();
        // Each file is its own source: records carry the file's index among them.
        let records = sources.iter().enumerate().flat_map(|(i, s)| {
            s.records().map(move |r| {
                r.map(|mut rec| {
                    rec.file = i as u32;
                    rec
                })
            })
        });
        let all: Vec<_> = records.collect::<Result<_, _>>()?;
        process
            .fit(|| all.iter().cloned().map(Ok), &|i| names.get(i as usize).cloned().unwrap_or_default())
            .map_err(DataError::from)?;
    }
    Ok(Some(process))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::BatchBuffer;

    fn write(dir: &std::path::Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn spec(train: &std::path::Path) -> DataSpec {
        DataSpec {
            train: train.to_string_lossy().into_owned(),
            format: crate::job::DataFormat::SequenceCsv,
            ..DataSpec::default()
        }
    }

    fn at(p: &std::path::Path) -> Location {
        Location::local(p)
    }

    #[test]
    fn parallel_label_files_make_padded_masked_sequence_classes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("train");
        write(&d, "features/a.csv", "1,2\n3,4\n5,6\n");
        write(&d, "features/b.csv", "7,8\n");
        write(&d, "labels/a.csv", "1\n");
        write(&d, "labels/b.csv", "0\n");
        let ds = load(&at(&d), &spec(&d), None, Split::All, 0).unwrap();
        assert_eq!(ds.shape, Shape::Sequence { steps: 3, features: 2 });
        assert_eq!((ds.rows, ds.width), (2, 6));
        let Features::F32(f) = &ds.features else { panic!() };
        assert_eq!(&f[..], &[1., 2., 3., 4., 5., 6., 7., 8., 0., 0., 0., 0.], "padded with zeros");
        assert_eq!(ds.lengths, vec![3, 1]);
        let Targets::Classes { labels, classes } = &ds.targets else { panic!() };
        assert_eq!((&labels[..], *classes), (&[1u32, 0][..], 2));
        // A batch carries the lengths of its rows.
        let mut buf = BatchBuffer::with_capacity(&ds, 2);
        assert_eq!(buf.gather(&ds, &[1, 0]).lengths, Some(&[1u32, 3][..]));
    }

    #[test]
    fn per_step_labels_aligned_to_the_end_or_start_and_a_label_column() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("train");
        write(&d, "features/a.csv", "1\n2\n3\n");
        write(&d, "features/b.csv", "4\n5\n");
        write(&d, "labels/a.csv", "0\n1\n2\n");
        write(&d, "labels/b.csv", "2\n");
        let mut s = spec(&d);
        // One label for a two-step sequence among per-step label files: a mismatch unless aligned.
        let e = load(&at(&d), &s, None, Split::All, 0).unwrap_err().to_string();
        assert!(e.contains("labels/b.csv: 1 labels for a sequence of 2 steps"), "{e}");
        assert!(e.contains("data.align"), "{e}");
        // b (2 steps) is padded to 3: its third step has no label either.
        for (align, want) in [
            (Align::End, [0u16, 1, 2, NO_LABEL, 2, NO_LABEL]),
            (Align::Start, [0, 1, 2, 2, NO_LABEL, NO_LABEL]),
        ] {
            s.align = align;
            let ds = load(&at(&d), &s, None, Split::All, 0).unwrap();
            let Targets::Steps { next, steps, classes } = &ds.targets else { panic!() };
            assert_eq!((&next[..], *steps, *classes), (&want[..], 3, 3), "{align:?}");
        }
        // A label column, with a header: a class at every step.
        let c = dir.path().join("column");
        write(&c, "s1.csv", "x,y\n0.5,1\n0.25,0\n");
        write(&c, "s2.csv", "x,y\n1.5,1\n");
        let s = DataSpec { label: "y".into(), num_classes: Some(2), ..spec(&c) };
        let ds = load(&at(&c), &s, None, Split::All, 0).unwrap();
        assert_eq!(ds.shape, Shape::Sequence { steps: 2, features: 1 });
        let Targets::Steps { next, .. } = &ds.targets else { panic!() };
        assert_eq!(&next[..], &[1, 0, 1, NO_LABEL]);
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("train");
        write(&d, "features/a.csv", "1\n2\n");
        write(&d, "labels/a.csv", "1\n");
        write(&d, "features/b.csv", "3\n");
        let e = files(&at(&d), &spec(&d)).unwrap_err().to_string();
        assert!(e.contains("no label file b.csv"), "{e}");
        write(&d, "labels/b.csv", "1\n");
        write(&d, "labels/c.csv", "1\n");
        let e = files(&at(&d), &spec(&d)).unwrap_err().to_string();
        assert!(e.contains("label file c.csv has no sequence"), "{e}");
        std::fs::remove_file(d.join("labels/c.csv")).unwrap();
        write(&d, "labels/b.csv", "cat\n");
        let e = load(&at(&d), &spec(&d), None, Split::All, 0).unwrap_err().to_string();
        assert!(e.contains("labels/b.csv: line 1: 'cat' is not a class"), "{e}");
        write(&d, "labels/b.csv", "0\n");
        // The first file's whole numbers do not make the column integers.
        write(&d, "features/b.csv", "3.5\n");
        load(&at(&d), &spec(&d), None, Split::All, 0).unwrap();
        write(&d, "features/b.csv", "3\nNaN\n");
        let e = load(&at(&d), &spec(&d), None, Split::All, 0).unwrap_err().to_string();
        assert!(e.contains("features/b.csv") && e.contains("line 2") && e.contains("'NaN'"), "{e}");
        // A test sequence longer than any training one.
        write(&d, "features/b.csv", "3\n");
        let t = dir.path().join("test");
        write(&t, "features/a.csv", "1\n2\n3\n");
        write(&t, "labels/a.csv", "0\n");
        let e = load(&at(&t), &spec(&d), None, Split::All, 0).unwrap_err().to_string();
        assert!(e.contains("a sequence of 3 steps; the model reads at most 2"), "{e}");
        // Test data is padded to the longest training sequence.
        write(&t, "features/a.csv", "1\n");
        assert_eq!(load(&at(&t), &spec(&d), None, Split::All, 0).unwrap().shape.steps(), 2);
        // No labels at all.
        let bare = dir.path().join("bare");
        write(&bare, "a.csv", "1\n");
        let e = files(&at(&bare), &spec(&bare)).unwrap_err().to_string();
        assert!(e.contains("no labels: give features/ and labels/ folders, or data.label"), "{e}");
        let e = files(&at(&d.join("features/a.csv")), &spec(&d)).unwrap_err().to_string();
        assert!(e.contains("sequence CSV reads a folder"), "{e}");
    }

    #[test]
    fn held_out_sequences_and_the_rest_make_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("train");
        for i in 0..10 {
            write(&d, &format!("features/{i:02}.csv"), &format!("{i}\n{i}\n"));
            write(&d, &format!("labels/{i:02}.csv"), &format!("{}\n", i % 2));
        }
        let s = DataSpec { holdout: 0.3, ..spec(&d) };
        let (train, held) = (
            load(&at(&d), &s, None, Split::Train, 7).unwrap(),
            load(&at(&d), &s, None, Split::Held, 7).unwrap(),
        );
        assert_eq!((train.rows, held.rows), (7, 3));
        let firsts = |ds: &Dataset| {
            let Features::F32(f) = &ds.features else { panic!() };
            f.chunks(2).map(|c| c[0] as u32).collect::<Vec<_>>()
        };
        let mut all = firsts(&train);
        all.extend(firsts(&held));
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn the_transform_is_fitted_on_every_step_row_and_runs_on_each() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("train");
        write(&d, "features/a.csv", "1\n2\n3\n");
        write(&d, "features/b.csv", "4\n5\n");
        write(&d, "labels/a.csv", "0\n");
        write(&d, "labels/b.csv", "1\n");
        let tp = dir.path().join("tp.json");
        std::fs::write(
            &tp,
            r#"{"schema": {"columns": [{"name": "x", "type": "double"}]},
                "steps": [{"step": "normalize", "column": "x", "kind": "standardize"}]}"#,
        )
        .unwrap();
        let s = DataSpec { transform: tp.to_string_lossy().into_owned(), ..spec(&d) };
        let resolved = crate::job::ResolvedData::resolve(s.clone()).unwrap();
        let process = fitted_process(&resolved).unwrap().unwrap();
        let ds = load(&at(&d), &s, Some(&process), Split::All, 0).unwrap();
        let Features::F32(f) = &ds.features else { panic!() };
        // Steps 1..5 standardised with the mean 3 of all five rows: a's 1 below, b's 5 above.
        let valid: Vec<f32> = vec![f[0], f[1], f[2], f[3], f[4]];
        assert!(valid.iter().sum::<f32>().abs() < 1e-5, "{f:?}");
        assert!(valid[1] < 0.0 && valid[2] == 0.0 && valid[4] > 0.0, "{f:?}");
        assert_eq!(f[5], 0.0, "padding stays zero");
    }
}
