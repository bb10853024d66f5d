//! What training reports: per-step stats of every worker, per-epoch summaries, job totals.

use serde::{Deserialize, Serialize};

use super::EvalReport;

/// One worker's step, as the cockpit and `--metrics-out` see it. Byte counters are cumulative.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub worker: u32,
    pub epoch: u32,
    /// Steps this worker has taken.
    pub step: u64,
    /// Examples this worker has trained on.
    pub samples: u64,
    /// Seconds since the job started.
    pub time: f64,
    pub loss: f32,
    /// Smoothed samples per second of this worker.
    pub samples_per_sec: f64,
    /// Entries sent / parameters, this step.
    pub sparsity: f64,
    pub tau: f32,
    pub residual_norm: f64,
    /// Top-k: this step's k.
    #[serde(default)]
    pub k: u64,
    /// PowerSGD: the rank (0 while still dense).
    #[serde(default)]
    pub rank: u32,
    /// Bytes this worker sent this step.
    #[serde(default)]
    pub step_bytes: u64,
    /// Wall seconds of this step (forward, backward, updater, sharing).
    #[serde(default)]
    pub step_seconds: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Messages waiting to be applied when this step finished.
    pub pending: u32,
    /// Messages merged into a dense sum because this worker fell behind (cumulative).
    pub merged: u64,
    /// Incoming messages rejected as invalid (cumulative).
    pub rejected: u64,
    /// Threshold sharing: this step's entries sent and residual norm per layer with parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<crate::sharing::LayerShare>,
}

/// One epoch of the job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    pub epoch: u32,
    pub seconds: f64,
    pub train_loss: f64,
    pub samples: u64,
    pub steps: u64,
    /// Max over workers of ||p_i - p_mean|| / ||p_mean|| at the end of the epoch.
    pub replica_drift: f64,
    pub test: Option<EvalReport>,
    pub bytes_sent: u64,
    pub dense_bytes: u64,
    /// Why the run looked diverged at this epoch ([`crate::engine::driver::Divergence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<String>,
}

impl EpochSummary {
    pub fn test_accuracy(&self) -> Option<f64> {
        self.test.as_ref().and_then(|t| t.accuracy())
    }
}

/// Totals over the whole job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub steps: u64,
    pub samples: u64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
    /// Update bytes the workers sent.
    pub bytes_sent: u64,
    /// Update bytes the workers received and applied.
    pub bytes_received: u64,
    /// What exchanging dense f32 updates every step would have sent.
    pub dense_bytes: u64,
    pub final_tau: f32,
    pub mean_sparsity: f64,
    pub messages_merged: u64,
    pub messages_rejected: u64,
    /// Worker calls refused for not proving the identity they claimed (cluster runs).
    #[serde(default)]
    pub calls_refused: u64,
    /// Workers declared lost (cluster runs).
    pub workers_lost: u64,
    /// Partitions re-queued because their worker was lost.
    pub partitions_requeued: u64,
    /// Each worker's figures, by worker id.
    #[serde(default)]
    pub per_worker: Vec<WorkerTotals>,
}

/// One worker's figures over the job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerTotals {
    pub worker: u32,
    pub steps: u64,
    /// Its step time: the mean of its last steps, in seconds.
    pub step_seconds: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Messages waiting to be applied after its last step.
    pub pending: u32,
    /// Slower than [`crate::engine::driver::STRAGGLER_FACTOR`] times the median of the others
    /// at its last step.
    pub straggler: bool,
    /// How often it was flagged as a straggler.
    pub flagged: u32,
}

impl Totals {
    pub fn compression_ratio(&self) -> f64 {
        if self.bytes_sent == 0 { 0.0 } else { self.dense_bytes as f64 / self.bytes_sent as f64 }
    }

    pub fn samples_per_sec(&self) -> f64 {
        let t = (self.train_seconds - self.eval_seconds).max(1e-9);
        self.samples as f64 / t
    }
}

/// Receives progress while a job runs (progress bar, metrics file, cockpit feed).
pub trait Observer: Send {
    fn step(&mut self, _stats: &StepStats) {}
    fn epoch(&mut self, _summary: &EpochSummary) {}
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {}
