//! The job's side of an epoch, shared by the embedded runner and the coordinator: the
//! [`Driver`] folds the workers' step stats into epoch summaries and totals; the
//! [`Evaluation`] evaluates the job's model when the epoch barrier completes. They are apart so
//! a coordinator evaluates (seconds) without holding what every report takes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::evaluate;
use super::hub::EpochReady;
use super::metrics::{EpochSummary, StepStats, Totals};
use super::sample::Sampler;
use crate::backend::{Backend, CpuBackend};
use crate::data::Dataset;
use crate::job::ResolvedJob;
use crate::nn::Architecture;

/// The job's model on its test data: an evaluator, the test set and a language model's sampler.
pub struct Evaluation {
    evaluator: CpuBackend,
    test: Option<Arc<Dataset>>,
    /// A language model's sampler: a short sample is logged after each epoch's evaluation.
    sampler: Option<Sampler>,
}

/// What an epoch's evaluation found, and how long it took.
pub struct EpochEval {
    pub test: Option<super::EvalReport>,
    pub seconds: f64,
}

impl Evaluation {
    pub fn new(job: &ResolvedJob, architecture: &Architecture, test: Option<Arc<Dataset>>, state: &[f32]) -> Self {
        Evaluation {
            evaluator: CpuBackend::new(
                architecture,
                &job.updater(),
                0.0,
                512,
                state,
                crate::job::available_cores(),
            ),
            test,
            sampler: (job.data.format == crate::job::DataFormat::Text)
                .then(|| crate::data::text::vocabulary(&job.data).ok())
                .flatten()
                .and_then(|v| Sampler::new(architecture, v).ok()),
        }
    }

    /// Evaluates the barrier's model (and logs a language model's sample).
    pub fn epoch(&mut self, ready: &EpochReady) -> EpochEval {
        let t0 = Instant::now();
        if self.test.is_some() || self.sampler.is_some() {
            self.evaluator.write_state(&ready.model);
        }
        let test = self.test.as_ref().map(|t| evaluate(&mut self.evaluator, t, 512));
        if let Some(sampler) = &self.sampler {
            let text = sampler.line(&mut self.evaluator, 100, ready.epoch as u64);
            tracing::info!("sample after epoch {}: {text}", ready.epoch + 1);
        }
        EpochEval { test, seconds: t0.elapsed().as_secs_f64() }
    }
}

pub struct Driver {
    /// Whether workers exchange anything (then a dense f32 exchange per step is the
    /// reference the compression is measured against).
    exchanges: bool,
    params: usize,
    rows: u64,
    started: Instant,
    epoch_started: Option<Instant>,
    epoch_loss: f64,
    epoch_steps: u64,
    bytes_at_epoch_start: u64,
    /// The latest stats of every worker (their counters are cumulative).
    latest: BTreeMap<u32, StepStats>,
    sparsity_sum: f64,
    steps_seen: u64,
    pub epochs: Vec<EpochSummary>,
    pub eval_seconds: f64,
}

impl Driver {
    pub fn new(job: &ResolvedJob, architecture: &Architecture, rows: usize) -> Self {
        Driver {
            exchanges: crate::sharing::describe(job).exchanges,
            params: architecture.param_count(),
            rows: rows as u64,
            started: Instant::now(),
            epoch_started: None,
            epoch_loss: 0.0,
            epoch_steps: 0,
            bytes_at_epoch_start: 0,
            latest: BTreeMap::new(),
            sparsity_sum: 0.0,
            steps_seen: 0,
            epochs: Vec::new(),
            eval_seconds: 0.0,
        }
    }

    /// Continue the epoch history of a resumed job.
    pub fn with_history(mut self, epochs: Vec<EpochSummary>) -> Self {
        self.epochs = epochs;
        self
    }

    /// Folds in one step of one worker. A worker id belongs to one process whose step counter
    /// only grows, so a step already seen (a late, reordered report) is ignored.
    pub fn on_stats(&mut self, s: &StepStats) {
        if self.latest.get(&s.worker).is_some_and(|prev| s.step <= prev.step) {
            return;
        }
        self.epoch_started.get_or_insert_with(Instant::now);
        self.epoch_loss += s.loss as f64;
        self.epoch_steps += 1;
        if self.exchanges {
            self.sparsity_sum += s.sparsity;
        }
        self.steps_seen += 1;
        self.latest.insert(s.worker, s.clone());
    }

    fn bytes_sent(&self) -> u64 {
        self.latest.values().map(|s| s.bytes_sent).sum()
    }

    /// Records the epoch whose barrier's model `eval` evaluated.
    pub fn on_epoch_ready(&mut self, ready: &EpochReady, eval: EpochEval) -> EpochSummary {
        let EpochEval { test, seconds } = eval;
        self.eval_seconds += seconds;
        let bytes_now = self.bytes_sent();
        let summary = EpochSummary {
            epoch: ready.epoch,
            seconds: self.epoch_started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
            train_loss: if self.epoch_steps > 0 {
                self.epoch_loss / self.epoch_steps as f64
            } else {
                f64::NAN
            },
            samples: self.rows,
            steps: self.epoch_steps,
            replica_drift: ready.drift,
            test,
            bytes_sent: bytes_now.saturating_sub(self.bytes_at_epoch_start),
            dense_bytes: if self.exchanges { self.epoch_steps * self.params as u64 * 4 } else { 0 },
        };
        self.epochs.push(summary.clone());
        self.epoch_started = None;
        self.epoch_loss = 0.0;
        self.epoch_steps = 0;
        self.bytes_at_epoch_start = bytes_now;
        summary
    }

    pub fn totals(&self) -> Totals {
        let steps: u64 = self.latest.values().map(|s| s.step).sum();
        Totals {
            steps,
            samples: self.latest.values().map(|s| s.samples).sum(),
            train_seconds: self.started.elapsed().as_secs_f64(),
            eval_seconds: self.eval_seconds,
            bytes_sent: self.bytes_sent(),
            bytes_received: self.latest.values().map(|s| s.bytes_received).sum(),
            dense_bytes: if self.exchanges { steps * self.params as u64 * 4 } else { 0 },
            // The newest report's: a worker lost early keeps its last (stale) report here.
            final_tau: self
                .latest
                .values()
                .max_by(|a, b| a.time.total_cmp(&b.time))
                .map(|s| s.tau)
                .unwrap_or(0.0),
            mean_sparsity: if self.steps_seen > 0 { self.sparsity_sum / self.steps_seen as f64 } else { 0.0 },
            messages_merged: self.latest.values().map(|s| s.merged).sum(),
            messages_rejected: self.latest.values().map(|s| s.rejected).sum(),
            workers_lost: 0,
            partitions_requeued: 0,
            calls_refused: 0,
        }
    }
}
