//! What a run leaves on disk when it ends, whoever ran it (`strom train`, the coordinator behind
//! the cockpit, `strom coordinator`): the model directory (`strom eval --model`, `--resume`)
//! and its `summary.json`.

use serde_json::json;

use super::{EvalReport, TrainOutcome};
use crate::job::JobSpec;
use crate::nn::Architecture;
use crate::nn::saved::{ModelFileError, ModelMeta, Preprocessing, Progress, SavedModel};
use crate::storage::Location;

/// The folder a job's model goes to unless told otherwise.
pub fn default_output(job_name: &str) -> String {
    format!("strom-runs/{job_name}")
}

/// Where a coordinator saves the model of each run that finishes or is stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelOutput {
    /// This folder, for every run.
    Dir(Location),
    /// `strom-runs/<job name>` under the working directory.
    PerJob,
}

impl ModelOutput {
    pub fn for_job(&self, job_name: &str) -> Result<Location, crate::storage::StorageError> {
        match self {
            ModelOutput::Dir(l) => Ok(l.clone()),
            ModelOutput::PerJob => Location::parse(&default_output(job_name)),
        }
    }

    /// `-o/--output` as given, or the per-job default.
    pub fn from_flag(flag: Option<&str>) -> Result<ModelOutput, crate::storage::StorageError> {
        Ok(match flag {
            Some(dir) => ModelOutput::Dir(Location::parse(dir)?),
            None => ModelOutput::PerJob,
        })
    }
}

/// A run that ended: what is saved and summarised.
pub struct FinishedRun<'a> {
    pub job: &'a JobSpec,
    pub architecture: &'a Architecture,
    pub preprocessing: Preprocessing,
    pub class_names: Vec<String>,
    /// Epochs the model had before this run (resume).
    pub epochs_before: u32,
    pub outcome: &'a TrainOutcome,
}

impl FinishedRun<'_> {
    /// Epochs the saved model has (absolute: a resumed run continues the count).
    pub fn epochs_completed(&self) -> u32 {
        self.outcome.epochs.last().map(|e| e.epoch + 1).unwrap_or(self.epochs_before)
    }

    /// The last epoch's test evaluation, if there was test data.
    pub fn final_report(&self) -> Option<EvalReport> {
        self.outcome.epochs.last().and_then(|e| e.test.clone())
    }

    /// Saves the model and `summary.json` into `output` (atomically, file by file).
    pub fn save(&self, output: &Location) -> Result<(), ModelFileError> {
        let model = SavedModel {
            meta: ModelMeta::new(
                self.architecture.clone(),
                self.preprocessing.clone(),
                self.class_names.clone(),
                Progress { epochs_completed: self.epochs_completed(), steps: self.outcome.totals.steps },
                self.job.clone(),
            ),
            state: self.outcome.state.clone(),
            optimizer: self.outcome.optimizer.clone(),
        };
        model.save_with(output, &[("summary.json", self.summary_text(output).as_bytes())])?;
        Ok(())
    }

    /// The summary JSON, pretty-printed.
    pub fn summary_text(&self, output: &Location) -> String {
        let value = self.summary(output);
        serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
    }

    fn summary(&self, output: &Location) -> serde_json::Value {
        let (job, architecture, outcome) = (self.job, self.architecture, self.outcome);
        let report = self.final_report();
        let t = &outcome.totals;
        json!({
            "job": job.name,
            "test_accuracy": report.as_ref().and_then(|r| r.accuracy()),
            "test_loss": report.as_ref().map(|r| r.loss()),
            "epochs": self.epochs_completed(),
            "steps": t.steps,
            "samples": t.samples,
            "train_seconds": t.train_seconds,
            "eval_seconds": t.eval_seconds,
            "samples_per_sec": t.samples_per_sec(),
            "parameters": architecture.param_count(),
            "running_state": architecture.running_len(),
            "threads_per_worker": job.threads_per_worker(),
            "architecture": architecture.describe(),
            "workers": job.cluster.workers,
            "sharing": job.sharing_mode(),
            "bytes_sent": t.bytes_sent,
            "bytes_received": t.bytes_received,
            "dense_bytes": t.dense_bytes,
            "compression_ratio": t.compression_ratio(),
            "final_tau": t.final_tau,
            "mean_sparsity": t.mean_sparsity,
            "messages_merged": t.messages_merged,
            "messages_rejected": t.messages_rejected,
            "calls_refused": t.calls_refused,
            "workers_lost": t.workers_lost,
            "partitions_requeued": t.partitions_requeued,
            // Step time (the mean of the last steps), bytes in and out, queue depth, straggler.
            "per_worker": t.per_worker,
            "replica_drift": outcome.epochs.last().map(|e| e.replica_drift),
            "per_epoch": outcome.epochs.iter().map(|e| json!({
                // Counted from 1, as in the logs.
                "epoch": e.epoch + 1,
                "train_loss": e.train_loss,
                "test_accuracy": e.test_accuracy(),
                "test_loss": e.test.as_ref().map(|t| t.loss()),
                "seconds": e.seconds,
                "replica_drift": e.replica_drift,
                "bytes_sent": e.bytes_sent,
                // Why the run looked diverged at this epoch (null when it did not).
                "divergence": e.divergence,
            })).collect::<Vec<_>>(),
            "evaluation": report,
            "model_dir": output.to_string(),
        })
    }
}
