//! `[data]`: where the training and test data are and how they are read.

use serde::{Deserialize, Serialize};

/// The demo job: the Fashion-MNIST subset compiled into the binary.
pub const DEMO_TRAIN: &str = "builtin:fashion-mnist-demo/train";
pub const DEMO_TEST: &str = "builtin:fashion-mnist-demo/test";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    Idx,
    Csv,
    /// UTF-8 text (a file or a folder of files) read as characters or bytes: windows of
    /// `data.context` ids, each step's target the next id.
    Text,
    /// Sequences as CSV (DataVec's `CSVSequenceRecordReader`): one file per sequence, one row
    /// per step; labels in a parallel `labels/` folder or a column; padded and masked.
    SequenceCsv,
}

/// Sequence CSV: where labels shorter than their sequence sit (DataVec's `AlignmentMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    /// A label file has one label per step, or one for the whole sequence.
    #[default]
    Equal,
    /// The labels are the sequence's last steps' (the steps before have none).
    End,
    /// The labels are the sequence's first steps'.
    Start,
}

/// What one id of a text source stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextUnit {
    /// A Unicode character of the training text (at most 255 distinct; id 0 for a character
    /// the training text lacks).
    #[default]
    Char,
    /// A byte (256 ids; any file, UTF-8 or not).
    Byte,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    #[default]
    Classification,
    Regression,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSpec {
    /// Training data: a local path, file://, hdfs://, viewfs:// or builtin: location.
    pub train: String,
    /// Test data, evaluated after every epoch. Empty: the held-out rows, or no evaluation.
    pub test: String,
    pub format: DataFormat,
    /// Fraction of the training rows held out as test data when `test` is empty.
    pub holdout: f32,
    /// CSV: how files are read.
    pub csv: crate::data::csv::CsvOptions,
    /// CSV: a transform process (JSON) applied to every row, locally and on every worker.
    pub transform: String,
    /// CSV: the column to predict (after the transform).
    pub label: String,
    /// CSV: classification or regression.
    pub task: Task,
    /// CSV: the number of classes, for integer labels (default: found in the data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
    /// Text: steps per example (ids in a window).
    pub context: usize,
    /// Text: characters or bytes.
    pub unit: TextUnit,
    /// Sequence CSV: where per-step labels shorter than their sequence sit.
    pub align: Align,
    /// Sequence CSV: the files hold one column of token ids below this (an embedding reads
    /// them); 0: the columns are features.
    pub vocab: usize,
}

impl DataSpec {
    /// Takes the relative local paths (data.train, data.test, data.transform) from `dir`, the
    /// folder of the job file they were written in, and makes them absolute, so they mean the
    /// same from any working directory and in any file the job is saved to. Locations with a
    /// scheme (hdfs://, builtin:, file:// absolute) and absolute paths stay as written.
    pub fn paths_from(&mut self, dir: &std::path::Path) {
        for value in [&mut self.train, &mut self.test, &mut self.transform] {
            let v = value.trim();
            if v.is_empty() || v.contains(':') || std::path::Path::new(v).is_absolute() {
                continue;
            }
            let joined = dir.join(v);
            let absolute = std::path::absolute(&joined).unwrap_or(joined);
            *value = normalize(&absolute).to_string_lossy().into_owned();
        }
    }
}

/// `a/b/../c/./d` as `a/c/d`, without touching the file system.
fn normalize(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            train: DEMO_TRAIN.into(),
            test: DEMO_TEST.into(),
            format: DataFormat::Idx,
            holdout: 0.0,
            csv: Default::default(),
            transform: String::new(),
            label: String::new(),
            task: Task::Classification,
            num_classes: None,
            context: 64,
            unit: TextUnit::Char,
            align: Align::Equal,
            vocab: 0,
        }
    }
}

#[cfg(test)]
mod paths_tests {
    use super::*;

    #[test]
    fn relative_paths_are_taken_from_the_job_files_folder() {
        let mut d = DataSpec {
            train: "../wine/wine_data.csv".into(),
            test: "".into(),
            transform: "./t.json".into(),
            ..Default::default()
        };
        d.paths_from(std::path::Path::new("/srv/assets/jobs"));
        assert_eq!(d.train, "/srv/assets/wine/wine_data.csv");
        assert_eq!(d.test, "", "empty stays empty");
        assert_eq!(d.transform, "/srv/assets/jobs/t.json");
        let mut d =
            DataSpec { train: "hdfs://nn:9000/x".into(), test: "/abs/t".into(), ..Default::default() };
        d.paths_from(std::path::Path::new("/srv"));
        assert_eq!((d.train.as_str(), d.test.as_str()), ("hdfs://nn:9000/x", "/abs/t"));
        let mut d = DataSpec::default();
        d.paths_from(std::path::Path::new("/srv"));
        assert_eq!(d.train, DEMO_TRAIN, "builtin: has a scheme");
    }
}
