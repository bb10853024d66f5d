//! A dataset held in memory in its most compact form: images as u8, scaled only when a batch is
//! formed; or raw table rows, transformed when their partition is first trained.

use std::sync::Arc;

/// Rows a source keeps raw and turns into features only when their partition is first trained
/// (the distributed executor: each worker transforms what it trains). CSV tables are one such
/// source (`table::LazyTable`); a format that wants the same implements this.
pub trait LazyRows: std::fmt::Debug + Send + Sync {
    /// Transforms the rows `indices` if not done yet; the usable ones (filters may drop rows)
    /// into `out`.
    fn prepare(&self, indices: &[u32], out: &mut Vec<u32>) -> Result<(), super::DataError>;
    /// Copies a prepared row's features into `out`; returns its label (class index or value).
    fn row(&self, i: usize, out: &mut [f32]) -> f32;
}

/// Feature storage: one row of `width` values per example, rows back to back.
#[derive(Clone, Debug)]
pub enum Features {
    /// Bytes turned into `byte as f32 * scale` when a batch is formed.
    U8 {
        data: Vec<u8>,
        scale: f32,
    },
    F32(Vec<f32>),
    /// Raw rows, transformed when their partition is first trained.
    Lazy(Arc<dyn LazyRows>),
}

#[derive(Clone, Debug)]
pub enum Targets {
    /// Class indices in `0..classes`.
    Classes { labels: Vec<u32>, classes: usize },
    /// Regression targets, `width` per example.
    Values { values: Vec<f32>, width: usize },
    /// Inside a lazy table; `classes` is 0 for regression (one target).
    Lazy { classes: usize },
    /// A class at every step (text: the next id), `steps` per example, back to back;
    /// [`NO_LABEL`] at a step without one (padding, labels aligned to one end).
    Steps { next: Vec<u16>, steps: usize, classes: usize },
}

/// A step without a label: no loss, no metric.
pub const NO_LABEL: u16 = u16::MAX;

#[derive(Clone, Debug)]
pub struct Dataset {
    /// Where it came from, for messages.
    pub source: String,
    pub features: Features,
    /// Features per example.
    pub width: usize,
    /// How each example's features are arranged (an image's channels, rows and columns).
    pub shape: crate::nn::Shape,
    pub rows: usize,
    pub targets: Targets,
    /// One name per class (classification) or per target column (regression).
    pub class_names: Vec<String>,
    /// Sequences of several lengths: each example's steps (the rest is zero padding, masked).
    /// Empty when every example fills the shape.
    pub lengths: Vec<u32>,
}

impl Dataset {
    /// Outputs the model needs: the class count, or the regression target width.
    pub fn output_width(&self) -> usize {
        match &self.targets {
            Targets::Classes { classes, .. } | Targets::Steps { classes, .. } => *classes,
            Targets::Values { width, .. } => *width,
            Targets::Lazy { classes } => (*classes).max(1),
        }
    }

    pub fn is_classification(&self) -> bool {
        matches!(
            self.targets,
            Targets::Classes { .. } | Targets::Steps { .. } | Targets::Lazy { classes: 1.. }
        )
    }

    /// The usable rows among `indices` (lazy tables transform them now; filtered rows drop
    /// out); other datasets use them all.
    pub fn prepare(&self, indices: &[u32], out: &mut Vec<u32>) -> Result<(), super::DataError> {
        match &self.features {
            Features::Lazy(t) => t.prepare(indices, out),
            _ => {
                out.clear();
                out.extend_from_slice(indices);
                Ok(())
            }
        }
    }

    /// A dataset of the rows `indices` (held-out splits of in-memory data).
    pub fn select(&self, indices: &[u32]) -> Dataset {
        let w = self.width;
        let pick = |v: &[f32], width: usize| -> Vec<f32> {
            indices
                .iter()
                .flat_map(|&i| v[i as usize * width..(i as usize + 1) * width].iter().copied())
                .collect()
        };
        let features = match &self.features {
            Features::U8 { data, scale } => Features::U8 {
                data: indices
                    .iter()
                    .flat_map(|&i| data[i as usize * w..(i as usize + 1) * w].iter().copied())
                    .collect(),
                scale: *scale,
            },
            Features::F32(v) => Features::F32(pick(v, w)),
            Features::Lazy(t) => Features::Lazy(t.clone()),
        };
        let targets = match &self.targets {
            Targets::Classes { labels, classes } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i as usize]).collect(),
                classes: *classes,
            },
            Targets::Values { values, width } => {
                Targets::Values { values: pick(values, *width), width: *width }
            }
            Targets::Lazy { classes } => Targets::Lazy { classes: *classes },
            Targets::Steps { next, steps, classes } => Targets::Steps {
                next: indices
                    .iter()
                    .flat_map(|&i| next[i as usize * steps..(i as usize + 1) * steps].iter().copied())
                    .collect(),
                steps: *steps,
                classes: *classes,
            },
        };
        Dataset {
            source: self.source.clone(),
            features,
            width: w,
            shape: self.shape,
            rows: indices.len(),
            targets,
            class_names: self.class_names.clone(),
            lengths: if self.lengths.is_empty() {
                Vec::new()
            } else {
                indices.iter().map(|&i| self.lengths[i as usize]).collect()
            },
        }
    }

    /// Bytes held by features and targets.
    pub fn memory_bytes(&self) -> usize {
        let f = match &self.features {
            Features::U8 { data, .. } => data.len(),
            Features::F32(v) => v.len() * 4,
            Features::Lazy(_) => self.rows * self.width * 4,
        };
        let t = match &self.targets {
            Targets::Classes { labels, .. } => labels.len() * 4,
            Targets::Values { values, .. } => values.len() * 4,
            Targets::Lazy { .. } => self.rows * 4,
            Targets::Steps { next, .. } => next.len() * 2,
        };
        f + t + self.lengths.len() * 4
    }
}
