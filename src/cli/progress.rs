//! Training progress for people and machines: a progress bar on a terminal, periodic log lines
//! otherwise, and optional JSON-lines metrics.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::engine::{EpochSummary, Observer, StepStats};
use crate::job::JobSpec;
use crate::sharing::SchemeInfo;
use crate::telemetry::{LogFormat, log_format};

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    r#type: &'a str,
    #[serde(flatten)]
    inner: &'a T,
}

pub struct TrainProgress {
    bar: Option<ProgressBar>,
    epochs: u32,
    scheme: SchemeInfo,
    rates: Vec<f64>,
    last_message: Instant,
    metrics: Option<(BufWriter<File>, String)>,
    metrics_error: bool,
}

impl TrainProgress {
    pub fn new(job: &JobSpec, rows: usize, done_epochs: u32, metrics_out: Option<&Path>) -> Result<Self> {
        let metrics = match metrics_out {
            Some(p) => {
                if let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("--metrics-out {}", p.display()))?;
                }
                let f = File::create(p).with_context(|| format!("--metrics-out {}", p.display()))?;
                Some((BufWriter::new(f), p.display().to_string()))
            }
            None => None,
        };
        let terminal = std::io::stderr().is_terminal() && log_format() == LogFormat::Pretty;
        let bar = terminal.then(|| {
            let per_epoch = rows.div_ceil(job.train.batch_size) as u64;
            let total = per_epoch * (job.train.epochs - done_epochs) as u64;
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(8));
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Ok(TrainProgress {
            bar,
            epochs: job.train.epochs,
            scheme: crate::sharing::describe(job),
            rates: vec![0.0; job.cluster.workers.max(1)],
            last_message: Instant::now(),
            metrics,
            metrics_error: false,
        })
    }

    /// One JSON line. Epochs count from 1, as in the logs and on screen.
    fn write_metric<T: Serialize>(&mut self, kind: &str, value: &T) {
        if let Some((w, path)) = &mut self.metrics {
            let mut line = serde_json::to_value(Line { r#type: kind, inner: value }).unwrap_or_default();
            if let Some(e) = line.get_mut("epoch").and_then(|e| e.as_u64()).map(|e| e + 1) {
                line["epoch"] = e.into();
            }
            let result = serde_json::to_writer(&mut *w, &line)
                .map_err(std::io::Error::other)
                .and_then(|_| w.write_all(b"\n"));
            if let Err(e) = result
                && !self.metrics_error
            {
                tracing::warn!("cannot write metrics to {path}: {e}");
                self.metrics_error = true;
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some((w, path)) = &mut self.metrics
            && let Err(e) = w.flush()
        {
            tracing::warn!("cannot write metrics to {path}: {e}");
        }
    }

    fn status(&self, s: &StepStats) -> String {
        let rate: f64 = self.rates.iter().sum();
        let mut msg =
            format!("epoch {}/{}  loss {:.4}  {:.0} samples/s", s.epoch + 1, self.epochs, s.loss, rate);
        if self.scheme.has_tau {
            msg.push_str(&format!("  tau {:.1e}", s.tau));
        }
        if s.k > 0 && !self.scheme.has_tau {
            msg.push_str(&format!("  k {}", s.k));
        }
        if s.rank > 0 {
            msg.push_str(&format!("  rank {}", s.rank));
        }
        if self.scheme.exchanges {
            msg.push_str(&format!("  sparsity {:.1e}  {} B/step", s.sparsity, s.step_bytes));
        }
        msg
    }
}

impl Observer for TrainProgress {
    fn step(&mut self, s: &StepStats) {
        self.write_metric("step", s);
        if let Some(r) = self.rates.get_mut(s.worker as usize) {
            *r = s.samples_per_sec;
        }
        let every = if self.bar.is_some() { Duration::from_millis(100) } else { Duration::from_secs(5) };
        let due = self.last_message.elapsed() >= every;
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if due {
                bar.set_message(self.status(s));
            }
        } else if due {
            tracing::info!("{}", self.status(s));
        }
        if due {
            self.last_message = Instant::now();
        }
    }

    fn epoch(&mut self, e: &EpochSummary) {
        self.write_metric("epoch", e);
        let mut line = format!("epoch {}/{}: train loss {:.4}", e.epoch + 1, self.epochs, e.train_loss);
        if let Some(t) = &e.test {
            line.push_str(&format!(", test {}", t.headline()));
        }
        line.push_str(&format!(" ({:.1} s", e.seconds));
        if self.scheme.exchanges {
            line.push_str(&format!(", replica drift {:.2e}", e.replica_drift));
        }
        line.push(')');
        match &self.bar {
            Some(bar) => bar.println(line),
            None => tracing::info!("{line}"),
        }
    }
}
