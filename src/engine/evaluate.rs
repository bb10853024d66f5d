//! Evaluation of a model on a dataset, in minibatches through a backend.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::data::{BatchBuffer, Dataset, Targets};
use crate::nn::Evaluation;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub samples: u64,
    pub loss: f64,
    pub mse: f64,
    pub mae: f64,
    /// Coefficient of determination, averaged over the targets.
    pub r2: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvalReport {
    Classification(Evaluation),
    Regression(RegressionMetrics),
}

impl EvalReport {
    pub fn accuracy(&self) -> Option<f64> {
        match self {
            EvalReport::Classification(e) => Some(e.accuracy),
            EvalReport::Regression(_) => None,
        }
    }

    pub fn loss(&self) -> f64 {
        match self {
            EvalReport::Classification(e) => e.loss,
            EvalReport::Regression(r) => r.loss,
        }
    }

    /// One line: "accuracy 0.8512" or "mse 0.0123  r2 0.91".
    pub fn headline(&self) -> String {
        match self {
            EvalReport::Classification(e) => format!("accuracy {:.4}", e.accuracy),
            EvalReport::Regression(r) => format!("mse {:.5}  mae {:.5}  r2 {:.4}", r.mse, r.mae, r.r2),
        }
    }

    /// The full human-readable report.
    pub fn table(&self) -> String {
        match self {
            EvalReport::Classification(e) => e.table(),
            EvalReport::Regression(r) => {
                format!("mse {:.6}  mae {:.6}  r2 {:.4}  ({} examples)\n", r.mse, r.mae, r.r2, r.samples)
            }
        }
    }
}

/// Evaluates the backend's current parameters on every example of `dataset`.
pub fn evaluate(backend: &mut dyn Backend, dataset: &Dataset, batch_size: usize) -> EvalReport {
    let batch_size = batch_size.max(1);
    let mut buf = BatchBuffer::with_capacity(dataset, batch_size);
    let mut outputs = Vec::new();
    let mut indices: Vec<u32> = Vec::with_capacity(batch_size);
    let mut loss_sum = 0.0f64;
    let width = dataset.output_width();
    match &dataset.targets {
        Targets::Classes { labels, classes } => {
            let mut confusion = vec![vec![0u64; *classes]; *classes];
            for start in (0..dataset.rows).step_by(batch_size) {
                let end = (start + batch_size).min(dataset.rows);
                indices.clear();
                indices.extend(start as u32..end as u32);
                let batch = buf.gather(dataset, &indices);
                loss_sum += backend.evaluate(&batch, &mut outputs) as f64 * (end - start) as f64;
                for (r, row) in outputs.chunks_exact(width).enumerate() {
                    let predicted = row
                        .iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |best, (j, &v)| if v > best.1 { (j, v) } else { best })
                        .0;
                    confusion[labels[start + r] as usize][predicted] += 1;
                }
            }
            EvalReport::Classification(Evaluation::from_confusion(
                confusion,
                &dataset.class_names,
                loss_sum / dataset.rows.max(1) as f64,
            ))
        }
        Targets::Values { values, .. } => {
            let (mut se, mut ae) = (vec![0.0f64; width], vec![0.0f64; width]);
            let mut mean = vec![0.0f64; width];
            for (i, v) in values.iter().enumerate() {
                mean[i % width] += *v as f64;
            }
            mean.iter_mut().for_each(|m| *m /= dataset.rows.max(1) as f64);
            let mut total_var = vec![0.0f64; width];
            for (i, v) in values.iter().enumerate() {
                total_var[i % width] += (*v as f64 - mean[i % width]).powi(2);
            }
            for start in (0..dataset.rows).step_by(batch_size) {
                let end = (start + batch_size).min(dataset.rows);
                indices.clear();
                indices.extend(start as u32..end as u32);
                let batch = buf.gather(dataset, &indices);
                loss_sum += backend.evaluate(&batch, &mut outputs) as f64 * (end - start) as f64;
                for (k, &o) in outputs.iter().enumerate() {
                    let t = values[start * width + k] as f64;
                    let d = o as f64 - t;
                    se[k % width] += d * d;
                    ae[k % width] += d.abs();
                }
            }
            let n = dataset.rows.max(1) as f64;
            let r2 = (0..width)
                .map(|j| if total_var[j] > 0.0 { 1.0 - se[j] / total_var[j] } else { 0.0 })
                .sum::<f64>()
                / width.max(1) as f64;
            EvalReport::Regression(RegressionMetrics {
                samples: dataset.rows as u64,
                loss: loss_sum / n,
                mse: se.iter().sum::<f64>() / (n * width as f64),
                mae: ae.iter().sum::<f64>() / (n * width as f64),
                r2,
            })
        }
    }
}
