//! Evaluation of a model on a dataset, in minibatches through a backend.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::data::{BatchBuffer, BatchTargets, Dataset, NO_TARGET, Targets};
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

/// A language model's figures: a prediction of the next id at every step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LanguageMetrics {
    /// Steps predicted.
    pub tokens: u64,
    /// Mean cross-entropy in nats per token.
    pub loss: f64,
    /// exp(loss).
    pub perplexity: f64,
    /// Steps whose most likely next id was the right one.
    pub accuracy: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EvalReport {
    Classification(Evaluation),
    Regression(RegressionMetrics),
    Language(LanguageMetrics),
}

impl EvalReport {
    pub fn accuracy(&self) -> Option<f64> {
        match self {
            EvalReport::Classification(e) => Some(e.accuracy),
            EvalReport::Language(l) => Some(l.accuracy),
            EvalReport::Regression(_) => None,
        }
    }

    pub fn loss(&self) -> f64 {
        match self {
            EvalReport::Classification(e) => e.loss,
            EvalReport::Regression(r) => r.loss,
            EvalReport::Language(l) => l.loss,
        }
    }

    /// One line: "accuracy 0.8512" or "mse 0.0123  r2 0.91".
    pub fn headline(&self) -> String {
        match self {
            EvalReport::Classification(e) => format!("accuracy {:.4}", e.accuracy),
            EvalReport::Regression(r) => format!("mse {:.5}  mae {:.5}  r2 {:.4}", r.mse, r.mae, r.r2),
            EvalReport::Language(l) => format!(
                "loss {:.4} nats/token  perplexity {:.3}  accuracy {:.4}",
                l.loss, l.perplexity, l.accuracy
            ),
        }
    }

    /// The full human-readable report.
    pub fn table(&self) -> String {
        match self {
            EvalReport::Classification(e) => e.table(),
            EvalReport::Regression(r) => {
                format!("mse {:.6}  mae {:.6}  r2 {:.4}  ({} examples)\n", r.mse, r.mae, r.r2, r.samples)
            }
            EvalReport::Language(l) => format!("{}  ({} tokens)\n", self.headline(), l.tokens),
        }
    }
}

/// The index of the largest value (the first of equals).
fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (j, &v)| if v > best.1 { (j, v) } else { best })
        .0
}

/// Evaluates the backend's current parameters on every example of `dataset` (for a lazy
/// table: every row that survives its transform).
pub fn evaluate(backend: &mut dyn Backend, dataset: &Dataset, batch_size: usize) -> EvalReport {
    let batch_size = batch_size.max(1);
    let mut buf = BatchBuffer::with_capacity(dataset, batch_size);
    let mut outputs = Vec::new();
    let all: Vec<u32> = (0..dataset.rows as u32).collect();
    let mut rows = Vec::with_capacity(all.len());
    if dataset.prepare(&all, &mut rows).is_err() {
        rows.clear();
    }
    let width = dataset.output_width();
    let n = rows.len().max(1) as f64;
    let mut loss_sum = 0.0f64;
    if let Targets::Steps { .. } = dataset.targets {
        // The backend's loss is the mean over a batch's labelled steps.
        let (mut right, mut tokens) = (0u64, 0u64);
        for chunk in rows.chunks(batch_size) {
            let batch = buf.gather(dataset, chunk);
            let mean = backend.evaluate(&batch, &mut outputs) as f64;
            let BatchTargets::Classes(labels) = batch.targets else { continue };
            let labelled = labels.iter().filter(|&&y| y != NO_TARGET).count() as u64;
            loss_sum += mean * labelled as f64;
            tokens += labelled;
            right += outputs
                .chunks_exact(width)
                .zip(labels)
                .filter(|(row, y)| **y != NO_TARGET && argmax(row) == **y as usize)
                .count() as u64;
        }
        let loss = loss_sum / tokens.max(1) as f64;
        return EvalReport::Language(LanguageMetrics {
            tokens,
            loss,
            perplexity: loss.exp(),
            accuracy: right as f64 / tokens.max(1) as f64,
        });
    }
    if dataset.is_classification() {
        let classes = width;
        let mut confusion = vec![vec![0u64; classes]; classes];
        for chunk in rows.chunks(batch_size) {
            let batch = buf.gather(dataset, chunk);
            loss_sum += backend.evaluate(&batch, &mut outputs) as f64 * chunk.len() as f64;
            let BatchTargets::Classes(labels) = batch.targets else { continue };
            for (r, row) in outputs.chunks_exact(width).enumerate() {
                let predicted = argmax(row);
                if let Some(cell) = confusion.get_mut(labels[r] as usize).and_then(|c| c.get_mut(predicted)) {
                    *cell += 1;
                }
            }
        }
        return EvalReport::Classification(Evaluation::from_confusion(
            confusion,
            &dataset.class_names,
            loss_sum / n,
        ));
    }
    let (mut se, mut ae, mut sum, mut sum_sq) =
        (vec![0.0f64; width], vec![0.0f64; width], vec![0.0f64; width], vec![0.0f64; width]);
    for chunk in rows.chunks(batch_size) {
        let batch = buf.gather(dataset, chunk);
        loss_sum += backend.evaluate(&batch, &mut outputs) as f64 * chunk.len() as f64;
        let BatchTargets::Values(values) = batch.targets else { continue };
        for (k, (&o, &t)) in outputs.iter().zip(values).enumerate() {
            let (o, t, j) = (o as f64, t as f64, k % width);
            se[j] += (o - t).powi(2);
            ae[j] += (o - t).abs();
            sum[j] += t;
            sum_sq[j] += t * t;
        }
    }
    // R² = 1 - SSE / SST, with SST from running sums.
    let r2 = (0..width)
        .map(|j| {
            let sst = sum_sq[j] - sum[j] * sum[j] / n;
            if sst > 0.0 { 1.0 - se[j] / sst } else { 0.0 }
        })
        .sum::<f64>()
        / width.max(1) as f64;
    EvalReport::Regression(RegressionMetrics {
        samples: rows.len() as u64,
        loss: loss_sum / n,
        mse: se.iter().sum::<f64>() / (n * width as f64),
        mae: ae.iter().sum::<f64>() / (n * width as f64),
        r2,
    })
}
