//! The summed gradient of schemes whose messages are gradients: each worker adds what it sent
//! and what the others sent, then runs its updater once on the mean, so the updater sees the
//! job's gradient rather than one worker's (the way data-parallel training applies it).

use super::MessageView;
use crate::backend::Backend;

/// One updater step on `mean`, the workers' mean gradient: the updater at the schedule's rate
/// times `gain` ([`lr_gain`]), then applied to this replica.
pub fn apply_mean(backend: &mut dyn Backend, mean: &[f32], lr_scale: f32, gain: f32) {
    backend.write_gradient(mean);
    backend.compute_update(lr_scale * gain);
    backend.apply_update();
}

/// What a scheme whose messages are parameter updates (no sum) or gradients (a sum) does with
/// another worker's message.
pub fn receive(sum: &mut Option<GradientSum>, backend: &mut dyn Backend, message: &MessageView<'_>) {
    match sum {
        None => backend.apply_message(message),
        Some(sum) => sum.add_message(message),
    }
}
use crate::job::{JobSpec, UpdaterKind};

/// The factor on the learning rate when one updater runs on the mean gradient of `workers`
/// workers (a batch `workers` times a worker's): `workers` for SGD and Nesterov (the linear
/// scaling rule, what summing the workers' updates does in threshold sharing), its square
/// root for Adam and RMSProp (the square-root rule of adaptive updaters). One worker: 1.
pub fn lr_gain(job: &JobSpec) -> f32 {
    let w = job.cluster.workers.max(1) as f32;
    match job.updater().kind() {
        UpdaterKind::Sgd | UpdaterKind::Nesterov => w,
        UpdaterKind::Adam | UpdaterKind::Rmsprop => w.sqrt(),
    }
}

pub struct GradientSum {
    sum: Vec<f32>,
    workers: f32,
    gain: f32,
}

impl GradientSum {
    pub fn new(params: usize, job: &JobSpec) -> Self {
        GradientSum { sum: vec![0.0; params], workers: job.cluster.workers.max(1) as f32, gain: lr_gain(job) }
    }

    /// Adds `value` at `index` (this worker's own contribution).
    #[inline]
    pub fn add(&mut self, index: usize, value: f32) {
        self.sum[index] += value;
    }

    /// Adds a message another worker sent (messages stand for what receivers subtract, so
    /// a gradient message adds to the gradient).
    pub fn add_message(&mut self, message: &MessageView<'_>) {
        message.subtract_from(&mut self.sum, -1.0);
    }

    /// Runs the updater on the mean over the workers of what has arrived, applies it, and
    /// starts the next sum.
    pub fn apply(&mut self, backend: &mut dyn Backend, lr_scale: f32) {
        let inv = 1.0 / self.workers;
        self.sum.iter_mut().for_each(|g| *g *= inv);
        apply_mean(backend, &self.sum, lr_scale, self.gain);
        self.sum.fill(0.0);
    }
}
