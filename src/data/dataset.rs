//! A dataset held in memory in its most compact form: images as u8, scaled only when a batch is
//! formed.

/// Feature storage: one row of `width` values per example, rows back to back.
#[derive(Clone, Debug)]
pub enum Features {
    /// Bytes turned into `byte as f32 * scale` when a batch is formed.
    U8 {
        data: Vec<u8>,
        scale: f32,
    },
    F32(Vec<f32>),
}

#[derive(Clone, Debug)]
pub enum Targets {
    /// Class indices in `0..classes`.
    Classes { labels: Vec<u32>, classes: usize },
    /// Regression targets, `width` per example.
    Values { values: Vec<f32>, width: usize },
}

#[derive(Clone, Debug)]
pub struct Dataset {
    /// Where it came from, for messages.
    pub source: String,
    pub features: Features,
    /// Features per example.
    pub width: usize,
    pub rows: usize,
    pub targets: Targets,
    /// One name per class (classification) or per target column (regression).
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Outputs the model needs: the class count, or the regression target width.
    pub fn output_width(&self) -> usize {
        match &self.targets {
            Targets::Classes { classes, .. } => *classes,
            Targets::Values { width, .. } => *width,
        }
    }

    pub fn is_classification(&self) -> bool {
        matches!(self.targets, Targets::Classes { .. })
    }

    /// Bytes held by features and targets.
    pub fn memory_bytes(&self) -> usize {
        let f = match &self.features {
            Features::U8 { data, .. } => data.len(),
            Features::F32(v) => v.len() * 4,
        };
        let t = match &self.targets {
            Targets::Classes { labels, .. } => labels.len() * 4,
            Targets::Values { values, .. } => values.len() * 4,
        };
        f + t
    }
}
