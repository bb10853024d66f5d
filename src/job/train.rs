//! `[train]`: epochs, batches, the updater and the learning-rate schedule.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdaterKind {
    Sgd,
    Nesterov,
    Adam,
    Rmsprop,
}

impl UpdaterKind {
    pub fn default_lr(self) -> f32 {
        match self {
            UpdaterKind::Sgd => 0.1,
            UpdaterKind::Nesterov => 0.01,
            UpdaterKind::Adam | UpdaterKind::Rmsprop => 1e-3,
        }
    }
}

/// Adam's first-moment decay for one worker (Kingma and Ba).
pub const ADAM_BETA1: f32 = 0.9;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdaterSpec {
    /// sgd | nesterov | adam | rmsprop. Unset: nesterov with threshold sharing (Adam's
    /// per-entry scaling defeats threshold sparsification), adam otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<UpdaterKind>,
    /// Learning rate; default 0.1 for sgd, 0.01 for nesterov, 1e-3 for adam and rmsprop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f32>,
    /// Nesterov momentum.
    pub momentum: f32,
    /// Adam's first-moment decay. Unset: 0.9, or 0.9^(2W) when W workers share their own Adam
    /// updates by threshold (see [`crate::job::JobSpec::updater`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta1: Option<f32>,
    /// Adam's second-moment decay.
    pub beta2: f32,
    /// RMSProp's decay of the squared-gradient average.
    pub rho: f32,
    pub epsilon: f32,
}

impl Default for UpdaterSpec {
    fn default() -> Self {
        UpdaterSpec {
            kind: None,
            lr: None,
            momentum: 0.9,
            beta1: None,
            beta2: 0.999,
            rho: 0.95,
            epsilon: 1e-8,
        }
    }
}

impl UpdaterSpec {
    /// The updater kind; must be resolved (see [`JobSpec::updater`]).
    pub fn kind(&self) -> UpdaterKind {
        self.kind.unwrap_or(UpdaterKind::Adam)
    }

    pub fn learning_rate(&self) -> f32 {
        self.lr.unwrap_or_else(|| self.kind().default_lr())
    }

    /// Adam's first-moment decay: as set, or resolved (see [`crate::job::JobSpec::updater`]).
    pub fn beta1(&self) -> f32 {
        self.beta1.unwrap_or(ADAM_BETA1)
    }

    /// How much of an update's size carries over from earlier steps' learning rates: Nesterov's
    /// velocity sums past `lr·g`, so its updates trail a falling rate by about 1/(1 - momentum)
    /// steps; SGD, RMSProp and Adam scale each step by that step's rate alone (0).
    pub fn lr_memory(&self) -> f32 {
        match self.kind() {
            UpdaterKind::Nesterov => self.momentum.clamp(0.0, 0.999),
            UpdaterKind::Sgd | UpdaterKind::Rmsprop | UpdaterKind::Adam => 0.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    pub epochs: u32,
    /// Minibatch size, per worker.
    pub batch_size: usize,
    pub updater: UpdaterSpec,
    /// L2 regularisation of the weights (not biases), added to the gradient.
    pub l2: f32,
    pub seed: u64,
    /// Minibatches per data partition of the work queue that feeds the workers.
    pub batches_per_partition: usize,
    /// How the learning rate moves over the job.
    pub lr_schedule: LrSchedule,
    /// Epochs over which the learning rate rises linearly from zero to the schedule's value,
    /// never below 1 % of it (0: none). Several workers that sum their updates take steps the
    /// workers times one worker's; a warm-up lets the model settle first (Goyal et al.).
    pub lr_warmup_epochs: f32,
}

/// The warm-up's floor, as a fraction of the rate: a first step that moves (a scheme that
/// reads the first update, `sharing.place_tau`, needs one that is not zero).
const WARMUP_START: f64 = 0.01;

impl TrainSpec {
    /// The factor on the learning rate after `epochs_done` epochs (fractional): the schedule,
    /// times the warm-up's ramp while it lasts.
    pub fn lr_scale(&self, epochs_done: f64) -> f32 {
        let progress = epochs_done / self.epochs.max(1) as f64;
        let warm = self.lr_warmup_epochs as f64;
        let ramp = if warm > 0.0 { (epochs_done / warm).clamp(WARMUP_START, 1.0) as f32 } else { 1.0 };
        self.lr_schedule.scale(progress) * ramp
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The learning rate throughout.
    Constant,
    /// Half a cosine from the learning rate down to zero over all epochs.
    Cosine,
}

impl LrSchedule {
    /// The factor on the learning rate at `progress` (0 at the start of the job, 1 at the end).
    pub fn scale(self, progress: f64) -> f32 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                (0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())) as f32
            }
        }
    }
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: 5,
            batch_size: 64,
            updater: UpdaterSpec::default(),
            l2: 0.0,
            seed: 42,
            batches_per_partition: 8,
            lr_schedule: LrSchedule::Cosine,
            lr_warmup_epochs: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_ramps_the_schedule_then_leaves_it() {
        let mut t = TrainSpec { epochs: 10, lr_schedule: LrSchedule::Constant, ..Default::default() };
        assert_eq!(t.lr_scale(0.0), 1.0, "no warm-up: the schedule alone");
        t.lr_warmup_epochs = 2.0;
        assert!((t.lr_scale(0.0) - 0.01).abs() < 1e-6, "the first step moves");
        assert!((t.lr_scale(0.5) - 0.25).abs() < 1e-6);
        assert!((t.lr_scale(1.0) - 0.5).abs() < 1e-6);
        assert_eq!(t.lr_scale(2.0), 1.0);
        assert_eq!(t.lr_scale(7.0), 1.0);
        t.lr_schedule = LrSchedule::Cosine;
        let cos = LrSchedule::Cosine.scale(0.1);
        assert!((t.lr_scale(1.0) - 0.5 * cos).abs() < 1e-6, "the ramp multiplies the schedule");
        assert!((t.lr_scale(5.0) - 0.5).abs() < 1e-6, "after it, the cosine alone");
        assert_eq!(t.lr_scale(10.0), 0.0);
    }
}
