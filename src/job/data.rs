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
        }
    }
}
