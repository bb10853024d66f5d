//! Training data: where it is, how it is read (IDX, CSV), how it is transformed (the ETL
//! pipeline: schemas, transform processes, analysis), how it is held in memory (`Dataset`:
//! u8 images stay u8, table rows are transformed lazily on the worker that trains them) and
//! batched.

pub mod analysis;
mod batch;
pub mod csv;
mod dataset;
pub mod executor;
pub mod idx;
pub mod schema;
pub mod sequence;
mod source;
pub mod table;
pub mod text;
pub mod transform;

pub use batch::{Batch, BatchBuffer, BatchInput, BatchTargets, NO_TARGET};
pub use dataset::{Dataset, Features, LazyRows, NO_LABEL, Targets};
pub use source::{Source, source};

use table::Split;
use transform::{TransformError, TransformProcess};

use crate::job::{DataSpec, ResolvedData};
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
    /// A file a job key names (not the training data) is the problem: "data.transform x: not found".
    #[error("{key} {source}")]
    OfKey {
        key: &'static str,
        #[source]
        source: Box<DataError>,
    },
    #[error(transparent)]
    Transform(Box<TransformError>),
}

impl From<TransformError> for DataError {
    fn from(e: TransformError) -> Self {
        match e {
            TransformError::Data(d) => d,
            other => DataError::Transform(Box::new(other)),
        }
    }
}

/// The concrete files behind a data location.
#[derive(Clone, Debug)]
pub enum DataInputs {
    Idx { images: Location, labels: Location },
    Csv(csv::CsvSource),
    Text(Vec<Location>),
    Sequences(sequence::SequenceFiles),
}

/// Finds the files a data location stands for. For IDX: a directory holding exactly one
/// `*images-idx3-ubyte[.gz]` and one `*labels-idx1-ubyte[.gz]`, or a prefix `P` with
/// `P-images-idx3-ubyte[.gz]` and `P-labels-idx1-ubyte[.gz]`. For CSV: a file or a directory.
pub fn resolve_inputs(location: &Location, data: &DataSpec) -> Result<DataInputs, DataError> {
    source(data.format).resolve(location, data)
}

/// The shape of a dataset, found without keeping all of it.
#[derive(Clone, Debug, PartialEq)]
pub struct DataShape {
    /// Rows the work queue partitions (for tables: raw rows, before filters).
    pub rows: usize,
    pub width: usize,
    /// How each example's `width` features are arranged: the network's input shape.
    pub input: crate::nn::Shape,
    /// Classes, or regression targets.
    pub outputs: usize,
    pub classification: bool,
    pub class_names: Vec<String>,
    /// Tables: the schema after the transform, as (name, type), the label included.
    pub columns: Vec<(String, String)>,
    /// Tables: the label column.
    pub label: String,
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

/// The job's transform process, fitted on its training rows (tables only; `None` for IDX).
pub fn fitted_process(data: &ResolvedData, seed: u64) -> Result<Option<TransformProcess>, DataError> {
    source(data.format).fitted_process(data, seed)
}

/// Loads every row of a location (evaluation, tools).
pub fn load(
    location: &Location,
    data: &DataSpec,
    process: Option<&TransformProcess>,
) -> Result<Dataset, DataError> {
    source(data.format).load(location, data, process, Split::All, 0)
}

/// The training data. Tables load lazily when `lazy` (each worker transforms the partitions
/// it trains); `outputs` is the class count the coordinator found (integer labels).
pub fn load_train(
    data: &ResolvedData,
    seed: u64,
    process: Option<&TransformProcess>,
    lazy: bool,
    outputs: usize,
) -> Result<Dataset, DataError> {
    if lazy {
        source(data.format).load_lazy(&data.train, data, process, outputs, seed)
    } else {
        source(data.format).load(&data.train, data, process, Split::Train, seed)
    }
}

/// The test data: `data.test`, or the rows held out of the training data.
pub fn load_test(
    data: &ResolvedData,
    seed: u64,
    process: Option<&TransformProcess>,
) -> Result<Option<Dataset>, DataError> {
    if let Some(test) = &data.test {
        return load(test, data, process).map(Some);
    }
    if data.holdout > 0.0 {
        return source(data.format).load(&data.train, data, process, Split::Held, seed).map(Some);
    }
    Ok(None)
}

/// What a run knows of its data before training starts: the fitted transform process, the
/// training data's shape (tables checked in full) and the test data, checked against it.
pub struct Prepared {
    pub process: Option<TransformProcess>,
    pub shape: DataShape,
    pub test: Option<std::sync::Arc<Dataset>>,
}

pub fn prepare(data: &ResolvedData, seed: u64) -> Result<Prepared, DataError> {
    let process = fitted_process(data, seed)?;
    let shape = describe(data, seed, process.as_ref())?;
    let test = load_test(data, seed, process.as_ref())?;
    if let Some(t) = &test {
        if t.width != shape.width {
            return Err(DataError::Mismatch(format!(
                "test data has {} features per example, training data {}",
                t.width, shape.width
            )));
        }
        if t.output_width() > shape.outputs {
            return Err(DataError::Mismatch(format!(
                "test data has {} classes, training data only {}",
                t.output_width(),
                shape.outputs
            )));
        }
    }
    Ok(Prepared { process, shape, test: test.map(std::sync::Arc::new) })
}

/// The training data's shape: IDX from the headers, tables by transforming them once here
/// (which also checks every row before any worker starts).
pub fn describe(
    data: &ResolvedData,
    seed: u64,
    process: Option<&TransformProcess>,
) -> Result<DataShape, DataError> {
    source(data.format).describe(&data.train, data, process, seed)
}
