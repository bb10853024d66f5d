//! The threshold scheme (Strom 2015) composed from a backend's primitives: `residual +=
//! update`, select `|r| >= tau`, subtract the quanta from the residual and apply them to this
//! replica, pack the message, adapt tau, clip the residual now and then. Per layer it reports
//! the entries sent and the residual's norm, so a user sees which layers dominate traffic.
//!
//! What is encoded is the updater's output (each worker runs its own updater; the messages are
//! parameter updates the hub's replica follows), or with `sharing.share = "gradient"` the
//! gradient: each worker sums its own quanta and the others' and runs its updater once on the
//! mean, so the moments of an adaptive updater are estimated from the job's gradient, not from
//! each worker's own.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::gradient::GradientSum;
use super::{
    EncodeStats, Figures, MessageView, ResidualClip, Scheme, SchemeInfo, StepCtx, Threshold,
    ThresholdEncoder, TransportError, quantum,
};
use crate::backend::{Backend, Target};
use crate::job::JobSpec;
use crate::nn::Layout;

/// One layer's share of a step's message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerShare {
    /// The layer's index in the architecture.
    pub layer: u32,
    /// Quanta sent for this layer's parameters.
    pub entries: u64,
    /// L2 norm of this layer's part of the residual after the step.
    pub residual_norm: f64,
}

pub struct ThresholdSharing {
    info: SchemeInfo,
    /// Gradient sharing: the sum the updater runs on.
    gradient: Option<GradientSum>,
    encoder: ThresholdEncoder,
    threshold: Threshold,
    clip: ResidualClip,
    /// The parameter ranges of the layers that have parameters, in order.
    segments: Vec<Range<usize>>,
    norm2: Vec<f64>,
    layers: Vec<LayerShare>,
    /// Whether the residual and tau follow the learning rate: `sharing.follow_lr`, with a tau
    /// that adapts (a fixed tau is the user's, and so is its residual).
    follow_lr: bool,
    /// The learning-rate scale the residual and tau are expressed at (0: not yet known).
    lr_scale: f32,
    /// The scale the updates are made at: the schedule's, averaged over the updater's memory
    /// (Nesterov's momentum), since a velocity built at a higher rate keeps the updates above
    /// what the current rate alone gives while the rate falls.
    update_scale: f32,
    /// The updater's memory of past rates ([`crate::job::UpdaterSpec::lr_memory`]).
    lr_memory: f32,
    /// Whether tau still has to be placed in its band from the first step's values
    /// (`sharing.place_tau`; unset: when the gradient is encoded, as `initial` is given at the
    /// scale of an updater's output).
    place_tau: bool,
}

/// How far the learning-rate scale may move before the residual and tau follow it.
const LR_FOLLOW: f32 = 0.01;

impl ThresholdSharing {
    pub fn new(job: &JobSpec, layout: &Layout) -> Self {
        let segments = layout.segments();
        let threshold = Threshold::new(&job.sharing.algorithm);
        let info = super::describe(job);
        let gradient = (!info.replica_follows).then(|| GradientSum::new(layout.len, job));
        let gradient_mode = gradient.is_some();
        ThresholdSharing {
            info,
            encoder: ThresholdEncoder::new(layout.len),
            // The gradient does not scale with the learning rate.
            follow_lr: job.sharing.follow_lr && threshold.adapts() && !gradient_mode,
            gradient,
            threshold,
            clip: ResidualClip::new(&job.sharing.residual_clip),
            norm2: vec![0.0; segments.len()],
            layers: segments
                .iter()
                .map(|(i, _)| LayerShare { layer: *i as u32, ..LayerShare::default() })
                .collect(),
            segments: segments.into_iter().map(|(_, r)| r).collect(),
            lr_scale: 0.0,
            update_scale: 0.0,
            lr_memory: job.updater().lr_memory(),
            // The updater's output has the scale `initial` is given in; a gradient has not.
            place_tau: job.sharing.place_tau.unwrap_or(gradient_mode),
        }
    }

    /// Keeps the residual and an adapting tau in units of the current learning rate: once the
    /// schedule has moved the rate by more than 1 % since they were last scaled, both are
    /// scaled by the same factor. Otherwise updates held back while the rate was high would
    /// be sent after it has decayed (the band lowers tau as the updates shrink): a burst of
    /// stale updates at the end of a cosine schedule that cost the final model up to 8 points.
    /// The rate followed is the one the updates are made at: with Nesterov momentum the
    /// schedule's rate averaged over the velocity's memory, as the velocity lags a falling rate
    /// (at the end of a cosine schedule by up to 4x, which sent twice the bytes per step of the
    /// epochs before). A fixed tau is left alone, and so is the residual with it;
    /// `sharing.follow_lr = false` turns this off.
    pub fn follow_lr(&mut self, backend: &mut dyn Backend, lr_scale: f32) {
        if !(self.follow_lr && lr_scale.is_finite() && lr_scale > 0.0) {
            return;
        }
        if self.lr_scale <= 0.0 {
            self.lr_scale = lr_scale;
            self.update_scale = lr_scale;
            return;
        }
        let m = self.lr_memory;
        self.update_scale = m * self.update_scale + (1.0 - m) * lr_scale;
        let factor = self.update_scale / self.lr_scale;
        if (factor - 1.0).abs() > LR_FOLLOW {
            backend.scale_residual(factor);
            self.threshold.scale(factor);
            self.lr_scale = self.update_scale;
        }
    }

    /// The last step's message.
    pub fn message(&self) -> &[u8] {
        self.encoder.message()
    }

    /// One step on the update (or gradient) the backend holds: encodes it, applies this
    /// replica's own quanta (or adds them to the gradient sum) and leaves the message in
    /// [`ThresholdSharing::message`].
    pub fn encode_step(&mut self, backend: &mut dyn Backend, origin: u32, step: u64) -> EncodeStats {
        let tau = self.threshold.tau();
        let selected = self.encoder.selected_mut();
        backend.residual_encode(tau, &self.segments, selected, &mut self.norm2);
        match &mut self.gradient {
            None => backend.scatter_subtract(Target::Params, selected, tau),
            Some(sum) => {
                for &q in selected.iter() {
                    sum.add(quantum::index(q), quantum::value(q, tau));
                }
            }
        }
        let mut k = 0;
        for ((seg, share), n2) in self.segments.iter().zip(&mut self.layers).zip(&self.norm2) {
            let first = k;
            while k < selected.len() && quantum::index(selected[k]) < seg.end {
                k += 1;
            }
            share.entries = (k - first) as u64;
            share.residual_norm = n2.sqrt();
        }
        let norm = self.norm2.iter().sum::<f64>().sqrt();
        let stats = self.encoder.pack(tau, origin, step, norm, None);
        self.threshold.observe(&stats);
        if let Some(limit) = self.clip.step(tau) {
            backend.clip_residual(limit);
        }
        stats
    }
}

impl Scheme for ThresholdSharing {
    fn info(&self) -> SchemeInfo {
        self.info
    }

    fn step(&mut self, ctx: StepCtx<'_>) -> Result<Figures, TransportError> {
        if self.gradient.is_none() {
            ctx.backend.compute_update(ctx.lr_scale);
            self.follow_lr(ctx.backend, ctx.lr_scale);
        }
        if std::mem::take(&mut self.place_tau)
            && let Some((low, high)) = self.threshold.band()
        {
            // The first step's values say where tau belongs: the quantile the band asks for
            // (its geometric middle), instead of climbing there from `initial` at a factor of
            // 2 per 20 steps while every entry goes out.
            let mut values = vec![0.0; ctx.backend.param_count()];
            ctx.backend.read_gradient(&mut values);
            let n = values.len();
            let k = ((low * high).sqrt() * n as f64).ceil() as usize;
            let mut rng = crate::rng::Rng::new(ctx.origin as u64);
            let tau = super::estimate_threshold(&values, k.clamp(1, n.max(1)), &mut rng, &mut Vec::new());
            self.threshold.set_tau(tau);
        }
        let s = self.encode_step(ctx.backend, ctx.origin, ctx.step);
        if s.entries > 0 {
            ctx.link.send(self.encoder.message())?;
        }
        if let Some(sum) = &mut self.gradient {
            sum.apply(ctx.backend, ctx.lr_scale);
        }
        Ok(Figures {
            entries: s.entries as u64,
            sparsity: s.sparsity,
            bytes_sent: if s.entries > 0 { s.bytes as u64 } else { 0 },
            bytes_received: 0,
            tau: self.threshold.tau(),
            residual_norm: s.residual_norm,
            k: s.entries as u64,
            rank: 0,
        })
    }

    fn receive(&mut self, backend: &mut dyn Backend, message: &MessageView<'_>) {
        super::gradient::receive(&mut self.gradient, backend, message);
    }

    fn layers(&self) -> &[LayerShare] {
        &self.layers
    }

    fn tau(&self) -> f32 {
        self.threshold.tau()
    }

    fn set_tau(&mut self, tau: f32) {
        self.threshold.set_tau(tau);
        self.place_tau = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::data::{Batch, BatchInput, BatchTargets};
    use crate::job::ThresholdSpec;
    use crate::nn::{Architecture, Shape, initial_state};
    use crate::rng::Rng;

    /// A small MLP trained a few steps with sharing, so its residual holds something.
    fn trained(algorithm: ThresholdSpec) -> (CpuBackend, ThresholdSharing) {
        let mut job = JobSpec::default();
        job.sharing.mode = Some(crate::job::SharingMode::Threshold);
        job.cluster.workers = 2;
        job.train.updater.kind = Some(crate::job::UpdaterKind::Sgd);
        job.model.hidden = vec![8];
        job.sharing.algorithm = algorithm;
        let arch = Architecture::from_job(&job.model, Shape::Vector(6), 3).unwrap();
        let mut backend = CpuBackend::new(&arch, &job.updater(), 0.0, 4, &initial_state(&arch, 1), 1);
        let mut sharing = ThresholdSharing::new(&job, arch.layout());
        let mut rng = Rng::new(3);
        let x: Vec<f32> = (0..24).map(|_| rng.next_f64() as f32).collect();
        let batch = Batch {
            rows: 4,
            input: BatchInput::F32(&x),
            targets: BatchTargets::Classes(&[0, 1, 2, 1]),
            lengths: None,
        };
        for step in 0..3 {
            backend.forward_backward(&batch, &mut rng);
            backend.compute_update(1.0);
            sharing.encode_step(&mut backend, 0, step);
        }
        (backend, sharing)
    }

    /// `sharing.place_tau = true`: on the first step tau jumps to where the band wants it (about
    /// the band's middle of the entries past it) instead of starting at `initial`; unset, with
    /// the updater's output encoded, it starts at `initial` and nearly every entry goes out.
    #[test]
    fn place_tau_sets_tau_from_the_first_steps_values() {
        use crate::sharing::testing::{Loopback, ctx, model};
        for place in [Some(true), None] {
            let mut job = JobSpec::default();
            job.sharing.mode = Some(crate::job::SharingMode::Threshold);
            job.cluster.workers = 2;
            job.train.updater.kind = Some(crate::job::UpdaterKind::Sgd);
            job.sharing.place_tau = place;
            job.sharing.algorithm =
                ThresholdSpec::Adaptive { initial: 1e-3, min_sparsity: 0.05, max_sparsity: 0.2 };
            let (arch, mut backend) = model(&mut job);
            let mut sharing = ThresholdSharing::new(&job, arch.layout());
            let n = arch.param_count();
            let mut rng = Rng::new(4);
            let g: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
            backend.write_gradient(&g);
            let mut link = Loopback::default();
            let f = sharing.step(ctx(&mut backend, &mut link, 1)).unwrap();
            let share = f.entries as f64 / n as f64;
            if place == Some(true) {
                assert!((0.03..=0.3).contains(&share), "placed: {share} of the entries sent");
                assert!(sharing.tau() > 0.05, "placed: tau {}", sharing.tau());
            } else {
                assert!(share > 0.9, "from initial: {share} of the entries sent");
                assert!(sharing.tau() < 0.01, "from initial: tau {}", sharing.tau());
            }
        }
    }

    #[test]
    fn the_residual_and_an_adaptive_tau_follow_the_learning_rate() {
        let (mut backend, mut sharing) = trained(ThresholdSpec::default());
        let (r0, tau0) = (backend.residual().to_vec(), sharing.tau());
        assert!(r0.iter().any(|&r| r != 0.0), "the residual holds what was not sent");
        sharing.follow_lr(&mut backend, 0.8); // the first scale seen: what they are expressed at
        sharing.follow_lr(&mut backend, 0.795); // within 1 %: left alone
        assert_eq!((backend.residual(), sharing.tau()), (&r0[..], tau0));
        sharing.follow_lr(&mut backend, 0.4); // the schedule halved the rate
        for (r, r0) in backend.residual().iter().zip(&r0) {
            assert!((r - r0 * 0.5).abs() <= 1e-7 * r0.abs(), "{r} vs {r0}");
        }
        assert!((sharing.tau() - tau0 * 0.5).abs() <= 1e-6 * tau0, "{} vs {tau0}", sharing.tau());
        sharing.follow_lr(&mut backend, 0.0); // a schedule's very end: nothing to scale by
        assert!((sharing.tau() - tau0 * 0.5).abs() <= 1e-6 * tau0);
    }

    #[test]
    fn with_nesterov_they_follow_the_rate_the_velocity_carries() {
        let (mut backend, mut sharing) = trained(ThresholdSpec::default());
        sharing.lr_memory = 0.9;
        let tau0 = sharing.tau();
        sharing.follow_lr(&mut backend, 0.8);
        sharing.follow_lr(&mut backend, 0.4); // halved, but the velocity still holds 0.8's steps
        let first = sharing.tau() / tau0;
        assert!((first - 0.95).abs() < 1e-4, "one step in, a tenth of the way: {first}");
        for _ in 0..100 {
            sharing.follow_lr(&mut backend, 0.4);
        }
        let settled = sharing.tau() / tau0;
        assert!((settled - 0.5).abs() < 0.5 * 0.011, "then all the way, within 1 %: {settled}");
    }

    #[test]
    fn follow_lr_false_leaves_them_alone() {
        let (mut backend, mut sharing) = trained(ThresholdSpec::default());
        sharing.follow_lr = false;
        let (r0, tau0) = (backend.residual().to_vec(), sharing.tau());
        sharing.follow_lr(&mut backend, 1.0);
        sharing.follow_lr(&mut backend, 0.1);
        assert_eq!((backend.residual(), sharing.tau()), (&r0[..], tau0));
    }

    #[test]
    fn a_fixed_tau_and_its_residual_are_left_alone() {
        let (mut backend, mut sharing) = trained(ThresholdSpec::Fixed { tau: 1e-3 });
        let r0 = backend.residual().to_vec();
        sharing.follow_lr(&mut backend, 1.0);
        sharing.follow_lr(&mut backend, 0.1);
        assert_eq!((backend.residual(), sharing.tau()), (&r0[..], 1e-3));
    }
}
