//! `dense16`: the whole gradient in f16 or bf16, summed across workers by the transport's
//! all-reduce every step, then one updater on the mean (what DDP's fp16 compression hook and
//! Horovod's `Compression.fp16` do). No error feedback: the rounding is lost, as there.

use super::{Collective, Figures, Format, Scheme, SchemeInfo, StepCtx, TransportError, codec};
use crate::job::{HalfKind, JobSpec};
use crate::nn::Layout;

pub struct Dense16 {
    info: SchemeInfo,
    /// The learning rate's factor for a batch of all the workers' ([`super::gradient::lr_gain`]).
    gain: f32,
    format: Format,
    grad: Vec<f32>,
}

impl Dense16 {
    pub fn new(job: &JobSpec, layout: &Layout) -> Self {
        let format = match job.sharing.precision {
            HalfKind::F16 => Format::Half,
            HalfKind::Bf16 => Format::Bf16,
        };
        Dense16 {
            info: super::describe(job),
            gain: super::gradient::lr_gain(job),
            format,
            grad: vec![0.0; layout.len],
        }
    }
}

impl Scheme for Dense16 {
    fn info(&self) -> SchemeInfo {
        self.info
    }

    fn step(&mut self, ctx: StepCtx<'_>) -> Result<Figures, TransportError> {
        ctx.backend.read_gradient(&mut self.grad);
        codec::round_half_slice(self.format, &mut self.grad);
        let n = ctx.link.all_reduce(&mut self.grad, Collective::sum(0, self.format, ctx.idle))?;
        if n > 0 {
            let inv = 1.0 / n as f32;
            self.grad.iter_mut().for_each(|g| *g *= inv);
            super::gradient::apply_mean(ctx.backend, &self.grad, ctx.lr_scale, self.gain);
        }
        Ok(Figures::dense(self.grad.len(), 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::job::{SharingMode, UpdaterKind};
    use crate::sharing::testing::{Loopback, ctx, model, params};

    #[test]
    fn the_step_applies_the_gradient_rounded_to_its_wire() {
        for (precision, wire) in [(HalfKind::F16, Format::Half), (HalfKind::Bf16, Format::Bf16)] {
            let mut job = JobSpec::default();
            job.sharing.mode = Some(SharingMode::Dense16);
            job.sharing.precision = precision;
            job.train.updater.kind = Some(UpdaterKind::Sgd);
            job.train.updater.lr = Some(1.0);
            let (arch, mut backend) = model(&mut job);
            let mut d = Dense16::new(&job, arch.layout());
            let n = arch.param_count();
            let g: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 * 1e-4).collect();
            let before = params(&mut backend);
            backend.write_gradient(&g);
            let mut link = Loopback::default();
            let f = d.step(ctx(&mut backend, &mut link, 1)).unwrap();
            let after = params(&mut backend);
            for i in 0..n {
                assert!(
                    (before[i] - after[i] - codec::round_half(wire, g[i])).abs()
                        <= 1e-6 * before[i].abs().max(1.0)
                );
            }
            assert_eq!(link.reduced, vec![(Collective::sum(0, wire, false), n)]);
            assert_eq!(f.bytes_sent, (crate::sharing::HEADER_LEN + 2 * n) as u64);
        }
    }
}
