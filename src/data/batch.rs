//! Minibatches: rows gathered by index into buffers reused for every step.

use super::{Dataset, Features, Targets};

/// A minibatch as the backend sees it.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    pub rows: usize,
    pub input: BatchInput<'a>,
    pub targets: BatchTargets<'a>,
    /// Each example's steps, for sequences of several lengths (padded and masked).
    pub lengths: Option<&'a [u32]>,
}

#[derive(Clone, Copy, Debug)]
pub enum BatchInput<'a> {
    /// Bytes, to be multiplied by `scale` (the image scaler) as they enter the model.
    U8 {
        data: &'a [u8],
        scale: f32,
    },
    F32(&'a [f32]),
}

/// A class label of a step without one (padding, labels aligned to one end): no loss, no metric.
pub const NO_TARGET: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
pub enum BatchTargets<'a> {
    Classes(&'a [u32]),
    Values(&'a [f32]),
}

impl BatchInput<'_> {
    /// Writes row `r` (of `width` values) as f32 into `out`.
    #[inline]
    pub fn row_into(&self, r: usize, width: usize, out: &mut [f32]) {
        match self {
            BatchInput::U8 { data, scale } => {
                for (o, &b) in out.iter_mut().zip(&data[r * width..(r + 1) * width]) {
                    *o = b as f32 * scale;
                }
            }
            BatchInput::F32(v) => out.copy_from_slice(&v[r * width..(r + 1) * width]),
        }
    }
}

/// Reusable gather buffers: after the first batch, forming a batch allocates nothing.
#[derive(Default)]
pub struct BatchBuffer {
    bytes: Vec<u8>,
    floats: Vec<f32>,
    labels: Vec<u32>,
    values: Vec<f32>,
    lengths: Vec<u32>,
}

impl BatchBuffer {
    pub fn with_capacity(dataset: &Dataset, rows: usize) -> Self {
        let mut b = BatchBuffer::default();
        match &dataset.features {
            Features::U8 { .. } => b.bytes.reserve(rows * dataset.width),
            Features::F32(_) | Features::Lazy(_) => b.floats.reserve(rows * dataset.width),
        }
        match &dataset.targets {
            Targets::Classes { .. } => b.labels.reserve(rows),
            Targets::Steps { steps, .. } => b.labels.reserve(rows * steps),
            Targets::Values { width, .. } => b.values.reserve(rows * width),
            Targets::Lazy { .. } => {
                b.labels.reserve(rows);
                b.values.reserve(rows);
            }
        }
        if !dataset.lengths.is_empty() {
            b.lengths.reserve(rows);
        }
        b
    }

    /// Gathers the examples `indices` of `dataset`.
    pub fn gather<'a>(&'a mut self, dataset: &Dataset, indices: &[u32]) -> Batch<'a> {
        let w = dataset.width;
        if let (Features::Lazy(table), Targets::Lazy { classes }) = (&dataset.features, &dataset.targets) {
            self.floats.resize(indices.len() * w, 0.0);
            self.labels.clear();
            self.values.clear();
            for (r, &i) in indices.iter().enumerate() {
                let label = table.row(i as usize, &mut self.floats[r * w..(r + 1) * w]);
                if *classes > 0 {
                    self.labels.push(label as u32);
                } else {
                    self.values.push(label);
                }
            }
            let targets = if *classes > 0 {
                BatchTargets::Classes(&self.labels)
            } else {
                BatchTargets::Values(&self.values)
            };
            return Batch {
                rows: indices.len(),
                input: BatchInput::F32(&self.floats),
                targets,
                lengths: None,
            };
        }
        let input = match &dataset.features {
            Features::U8 { data, scale } => {
                self.bytes.clear();
                for &i in indices {
                    let i = i as usize;
                    self.bytes.extend_from_slice(&data[i * w..(i + 1) * w]);
                }
                BatchInput::U8 { data: &self.bytes, scale: *scale }
            }
            Features::F32(data) => {
                self.floats.clear();
                for &i in indices {
                    let i = i as usize;
                    self.floats.extend_from_slice(&data[i * w..(i + 1) * w]);
                }
                BatchInput::F32(&self.floats)
            }
            Features::Lazy(_) => unreachable!("lazy features come with lazy targets"),
        };
        let targets = match &dataset.targets {
            Targets::Classes { labels, .. } => {
                self.labels.clear();
                self.labels.extend(indices.iter().map(|&i| labels[i as usize]));
                BatchTargets::Classes(&self.labels)
            }
            Targets::Values { values, width } => {
                self.values.clear();
                for &i in indices {
                    let i = i as usize;
                    self.values.extend_from_slice(&values[i * width..(i + 1) * width]);
                }
                BatchTargets::Values(&self.values)
            }
            Targets::Steps { next, steps, .. } => {
                self.labels.clear();
                for &i in indices {
                    let i = i as usize;
                    self.labels.extend(
                        next[i * steps..(i + 1) * steps]
                            .iter()
                            .map(|&b| if b == super::NO_LABEL { NO_TARGET } else { b as u32 }),
                    );
                }
                BatchTargets::Classes(&self.labels)
            }
            Targets::Lazy { .. } => unreachable!("lazy targets come with lazy features"),
        };
        let lengths = (!dataset.lengths.is_empty()).then(|| {
            self.lengths.clear();
            self.lengths.extend(indices.iter().map(|&i| dataset.lengths[i as usize]));
            &self.lengths[..]
        });
        Batch { rows: indices.len(), input, targets, lengths }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_rows_and_scales_bytes_on_the_fly() {
        let ds = Dataset {
            source: "t".into(),
            features: Features::U8 { data: vec![0, 255, 10, 20, 30, 40], scale: 1.0 / 255.0 },
            width: 2,
            shape: crate::nn::Shape::Vector(2),
            rows: 3,
            targets: Targets::Classes { labels: vec![0, 1, 2], classes: 3 },
            class_names: vec![],
            lengths: vec![],
        };
        let mut buf = BatchBuffer::with_capacity(&ds, 2);
        let b = buf.gather(&ds, &[2, 0]);
        assert_eq!(b.rows, 2);
        let BatchTargets::Classes(l) = b.targets else { panic!() };
        assert_eq!(l, &[2, 0]);
        let mut row = [0.0f32; 2];
        b.input.row_into(1, 2, &mut row);
        assert_eq!(row, [0.0, 1.0]);
        b.input.row_into(0, 2, &mut row);
        assert!((row[0] - 30.0 / 255.0).abs() < 1e-7);
    }
}
