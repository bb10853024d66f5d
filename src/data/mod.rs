//! Training data: where it is (`resolve_inputs`), how it is read (IDX now, CSV with the ETL
//! pipeline), how it is held in memory (`Dataset`, u8 images stay u8) and batched.

mod batch;
mod dataset;
pub mod idx;

pub use batch::{Batch, BatchBuffer, BatchInput, BatchTargets};
pub use dataset::{Dataset, Features, Targets};

use crate::job::DataFormat;
use crate::storage::{Location, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file is malformed; `file` names it and `message` says what was expected.
    #[error("{file}: {message}")]
    Format { file: String, message: String },
    #[error("{location}: {message}")]
    NoInput { location: String, message: String },
    #[error("{0}")]
    Mismatch(String),
}

/// The concrete files behind a data location.
#[derive(Clone, Debug, PartialEq)]
pub enum DataInputs {
    Idx { images: Location, labels: Location },
}

/// Finds the files a data location stands for. For IDX: a directory holding exactly one
/// `*images-idx3-ubyte[.gz]` and one `*labels-idx1-ubyte[.gz]`, or a prefix `P` with
/// `P-images-idx3-ubyte[.gz]` and `P-labels-idx1-ubyte[.gz]`.
pub fn resolve_inputs(location: &Location, format: DataFormat) -> Result<DataInputs, DataError> {
    match format {
        DataFormat::Idx => idx::resolve(location),
        DataFormat::Csv => Err(DataError::NoInput {
            location: location.to_string(),
            message: "CSV data needs the ETL pipeline, which this build does not have yet".into(),
        }),
    }
}

/// The shape of a dataset, found without loading all of it.
#[derive(Clone, Debug, PartialEq)]
pub struct DataShape {
    pub rows: usize,
    pub width: usize,
    /// Classes, or regression targets.
    pub outputs: usize,
    pub classification: bool,
    pub class_names: Vec<String>,
}

impl std::fmt::Display for DataShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} examples x {} features, ", self.rows, self.width)?;
        if self.classification {
            write!(f, "{} classes", self.outputs)
        } else {
            write!(f, "{} targets", self.outputs)
        }
    }
}

/// Reads just enough of a dataset to know its shape (the coordinator plans partitions and
/// builds the model from it; the workers load the data itself).
pub fn describe(location: &Location, format: DataFormat) -> Result<DataShape, DataError> {
    match resolve_inputs(location, format)? {
        DataInputs::Idx { images, labels } => idx::describe(&images, &labels),
    }
}

/// Loads a dataset from a location.
pub fn load(location: &Location, format: DataFormat) -> Result<Dataset, DataError> {
    match resolve_inputs(location, format)? {
        DataInputs::Idx { images, labels } => idx::load(&images, &labels),
    }
}
