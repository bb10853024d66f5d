//! Classification metrics: accuracy, per-class precision / recall / F1, the confusion matrix,
//! and a table a person can read.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub name: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Examples of this class in the evaluated data.
    pub support: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub samples: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Mean loss over the evaluated data.
    pub loss: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[actual][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

impl Evaluation {
    /// Metrics from a filled confusion matrix.
    pub fn from_confusion(confusion: Vec<Vec<u64>>, names: &[String], loss: f64) -> Evaluation {
        let k = confusion.len();
        let samples: u64 = confusion.iter().flatten().sum();
        let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = confusion[c][c];
                let predicted: u64 = (0..k).map(|a| confusion[a][c]).sum();
                let support: u64 = confusion[c].iter().sum();
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    name: names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        let macro_f1 = if k == 0 { 0.0 } else { per_class.iter().map(|c| c.f1).sum::<f64>() / k as f64 };
        Evaluation { samples, accuracy: ratio(correct, samples), macro_f1, loss, per_class, confusion }
    }

    /// A plain-text report: summary, per-class table and confusion matrix.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "accuracy {:.4}  macro-F1 {:.4}  loss {:.4}  ({} examples)\n",
            self.accuracy, self.macro_f1, self.loss, self.samples
        );
        let width = self.per_class.iter().map(|c| c.name.len()).max().unwrap_or(5).clamp(5, 24);
        let _ = writeln!(out, "{:>3}  {:<width$}  precision  recall     F1  support", "#", "class");
        for (i, c) in self.per_class.iter().enumerate() {
            let _ = writeln!(
                out,
                "{i:>3}  {:<width$}  {:>9.4}  {:>6.4}  {:>5.4}  {:>7}",
                truncate(&c.name, width),
                c.precision,
                c.recall,
                c.f1,
                c.support
            );
        }
        let k = self.confusion.len();
        let cell = self
            .confusion
            .iter()
            .flatten()
            .max()
            .map(|m| m.to_string().len())
            .unwrap_or(1)
            .max(k.to_string().len());
        let _ = writeln!(out, "\nconfusion matrix (rows: actual, columns: predicted)");
        let _ = write!(out, "{:>3} ", "");
        for j in 0..k {
            let _ = write!(out, " {j:>cell$}");
        }
        let _ = writeln!(out);
        for (i, row) in self.confusion.iter().enumerate() {
            let _ = write!(out, "{i:>3} ");
            for v in row {
                let _ = write!(out, " {v:>cell$}");
            }
            let _ = writeln!(out);
        }
        out
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        s.chars().take(width - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        // actual 0: 3 right, 1 predicted as 1; actual 1: 2 right; actual 2: 1 predicted as 0.
        let confusion = vec![vec![3, 1, 0], vec![0, 2, 0], vec![1, 0, 0]];
        let e = Evaluation::from_confusion(confusion, &["a".into(), "b".into(), "c".into()], 0.5);
        assert_eq!(e.samples, 7);
        assert!((e.accuracy - 5.0 / 7.0).abs() < 1e-12);
        let a = &e.per_class[0];
        assert!((a.precision - 0.75).abs() < 1e-12 && (a.recall - 0.75).abs() < 1e-12);
        let b = &e.per_class[1];
        assert!((b.precision - 2.0 / 3.0).abs() < 1e-12 && b.recall == 1.0);
        assert!((b.f1 - 0.8).abs() < 1e-12);
        assert_eq!(e.per_class[2].f1, 0.0);
        assert_eq!(e.per_class[2].support, 1);
        let t = e.table();
        assert!(t.contains("accuracy 0.7143"), "{t}");
        assert!(t.contains("confusion matrix"), "{t}");
    }
}
