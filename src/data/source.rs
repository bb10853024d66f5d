//! Data formats behind one trait. A `Source` knows how a location of its format is read: the
//! files behind it, the training data's shape, the rows of a split, and (where it can) rows
//! kept raw and transformed per partition on the worker that trains them. IDX and CSV are the
//! two; a third format (Parquet, image folders, TFRecord) is one new file implementing
//! `Source`, a `DataFormat` variant and its arm in [`source`].

use super::csv::CsvSource;
use super::table::{self, Split};
use super::transform::TransformProcess;
use super::{DataError, DataInputs, DataShape, Dataset, idx};
use crate::job::{DataFormat, DataSpec, ResolvedData};
use crate::nn::saved::Preprocessing;
use crate::storage::Location;

pub trait Source: Sync {
    /// What a saved model does to raw input of this format before its first layer (without a
    /// transform process).
    fn preprocessing(&self, _data: &DataSpec) -> Preprocessing {
        Preprocessing::Identity
    }

    /// The concrete files behind `location`.
    fn resolve(&self, location: &Location, data: &DataSpec) -> Result<DataInputs, DataError>;

    /// The job's transform process fitted on its training rows; `None` for formats that take
    /// no transform.
    fn fitted_process(
        &self,
        _data: &ResolvedData,
        _seed: u64,
    ) -> Result<Option<TransformProcess>, DataError> {
        Ok(None)
    }

    /// The training data's shape, found without keeping all of it (`location` is
    /// `data.train`; the held-out rows are not counted).
    fn describe(
        &self,
        location: &Location,
        data: &DataSpec,
        process: Option<&TransformProcess>,
        seed: u64,
    ) -> Result<DataShape, DataError>;

    /// The rows of `split` in memory.
    fn load(
        &self,
        location: &Location,
        data: &DataSpec,
        process: Option<&TransformProcess>,
        split: Split,
        seed: u64,
    ) -> Result<Dataset, DataError>;

    /// A worker's training rows, kept raw where the format can transform them partition by
    /// partition (`outputs`: the class count the coordinator found); in memory otherwise.
    fn load_lazy(
        &self,
        location: &Location,
        data: &DataSpec,
        process: Option<&TransformProcess>,
        _outputs: usize,
        seed: u64,
    ) -> Result<Dataset, DataError> {
        self.load(location, data, process, Split::Train, seed)
    }
}

/// The source that reads `format`.
pub fn source(format: DataFormat) -> &'static dyn Source {
    match format {
        DataFormat::Idx => &Idx,
        DataFormat::Csv => &Csv,
        DataFormat::Text => &Text,
        DataFormat::SequenceCsv => &SequenceCsv,
    }
}

/// Sequences as CSV, one file per sequence (`data::sequence`): padded, masked.
pub struct SequenceCsv;

impl Source for SequenceCsv {
    fn resolve(&self, location: &Location, data: &DataSpec) -> Result<DataInputs, DataError> {
        Ok(DataInputs::Sequences(super::sequence::files(location, data)?))
    }

    fn fitted_process(&self, data: &ResolvedData, _seed: u64) -> Result<Option<TransformProcess>, DataError> {
        super::sequence::fitted_process(data)
    }

    fn describe(
        &self,
        location: &Location,
        data: &DataSpec,
        process: Option<&TransformProcess>,
        seed: u64,
    ) -> Result<DataShape, DataError> {
        super::sequence::describe(location, data, process, seed)
    }

    fn load(
        &self,
        location: &Location,
        data: &DataSpec,
        process: Option<&TransformProcess>,
        split: Split,
        seed: u64,
    ) -> Result<Dataset, DataError> {
        super::sequence::load(location, data, process, split, seed)
    }
}

/// Text read as characters or bytes (`data::text`): windows of ids, next-id targets.
pub struct Text;

impl Source for Text {
    /// The training text's vocabulary (read again: it was read when training started).
    fn preprocessing(&self, data: &DataSpec) -> Preprocessing {
        match super::text::vocabulary(data) {
            Ok(vocabulary) => Preprocessing::Text { vocabulary },
            Err(e) => {
                tracing::warn!("the model is saved without its vocabulary: {e}");
                Preprocessing::Identity
            }
        }
    }

    fn resolve(&self, location: &Location, _data: &DataSpec) -> Result<DataInputs, DataError> {
        Ok(DataInputs::Text(super::text::files(location)?))
    }

    fn describe(
        &self,
        location: &Location,
        data: &DataSpec,
        _process: Option<&TransformProcess>,
        _seed: u64,
    ) -> Result<DataShape, DataError> {
        super::text::describe(location, data)
    }

    fn load(
        &self,
        location: &Location,
        data: &DataSpec,
        _process: Option<&TransformProcess>,
        split: Split,
        _seed: u64,
    ) -> Result<Dataset, DataError> {
        super::text::load(location, data, split)
    }
}

/// IDX image and label files (MNIST, Fashion-MNIST): u8 images stay u8.
pub struct Idx;

impl Source for Idx {
    /// Pixels 0..=255 scaled to [0, 1], as when training.
    fn preprocessing(&self, _data: &DataSpec) -> Preprocessing {
        Preprocessing::ImageScale { scale: 1.0 / 255.0 }
    }

    fn resolve(&self, location: &Location, _data: &DataSpec) -> Result<DataInputs, DataError> {
        let (images, labels) = idx::resolve(location)?;
        Ok(DataInputs::Idx { images, labels })
    }

    fn describe(
        &self,
        location: &Location,
        data: &DataSpec,
        _process: Option<&TransformProcess>,
        seed: u64,
    ) -> Result<DataShape, DataError> {
        let (images, labels) = idx::resolve(location)?;
        let mut shape = idx::describe(&images, &labels)?;
        if data.holdout > 0.0 {
            shape.rows = table::holdout(shape.rows, data.holdout, seed).0.len();
        }
        Ok(shape)
    }

    fn load(
        &self,
        location: &Location,
        data: &DataSpec,
        _process: Option<&TransformProcess>,
        split: Split,
        seed: u64,
    ) -> Result<Dataset, DataError> {
        let (images, labels) = idx::resolve(location)?;
        let all = idx::load(&images, &labels)?;
        if split == Split::All || data.holdout <= 0.0 {
            return Ok(all);
        }
        let (train, held) = table::holdout(all.rows, data.holdout, seed);
        Ok(all.select(if split == Split::Train { &train } else { &held }))
    }
}

/// CSV files through a DataVec-style transform process.
pub struct Csv;

impl Source for Csv {
    fn resolve(&self, location: &Location, data: &DataSpec) -> Result<DataInputs, DataError> {
        Ok(DataInputs::Csv(CsvSource::open(location, &data.csv)?))
    }

    fn fitted_process(&self, data: &ResolvedData, seed: u64) -> Result<Option<TransformProcess>, DataError> {
        table::fitted_process(data, seed)
    }

    /// Transforms the table once here, which also checks every row before any worker starts.
    fn describe(
        &self,
        location: &Location,
        data: &DataSpec,
        process: Option<&TransformProcess>,
        seed: u64,
    ) -> Result<DataShape, DataError> {
        let (ds, report) = table::load_eager(location, data, process, Split::Train, seed)?;
        // Opening the source lists the files (and reads the first record when the header is
        // `auto`); the rows were counted by the pass above.
        let source = CsvSource::open(location, &data.csv)?;
        if let Some(note) = source.header_note() {
            tracing::info!("{note}");
        }
        let schema = table::process_for(data, &source, process)?.compile()?.output;
        Ok(DataShape {
            rows: report.rows_in as usize,
            columns: schema.columns.iter().map(|c| (c.name.clone(), c.kind.name().to_string())).collect(),
            label: data.label.clone(),
            width: ds.width,
            input: ds.shape,
            outputs: ds.output_width(),
            classification: ds.is_classification(),
            class_names: ds.class_names,
        })
    }

    fn load(
        &self,
        location: &Location,
        data: &DataSpec,
        process: Option<&TransformProcess>,
        split: Split,
        seed: u64,
    ) -> Result<Dataset, DataError> {
        Ok(table::load_eager(location, data, process, split, seed)?.0)
    }

    fn load_lazy(
        &self,
        location: &Location,
        data: &DataSpec,
        process: Option<&TransformProcess>,
        outputs: usize,
        seed: u64,
    ) -> Result<Dataset, DataError> {
        match process {
            Some(p) => table::load_lazy(location, data, p, outputs, seed),
            None => self.load(location, data, None, Split::Train, seed),
        }
    }
}
