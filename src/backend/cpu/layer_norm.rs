//! Layer-norm kernel: each group of `features` values (a vector, or one step of a sequence)
//! normalised by its own mean and variance, then `scale · x̂ + shift`. The normalised values and
//! each group's reciprocal deviation are kept (capacity rows, allocated once) for the backward
//! pass.

use super::Kernel;
use crate::nn::Real;

pub struct LayerNormKernel<F> {
    pub features: usize,
    /// Groups per example (steps of a sequence, 1 for a vector).
    pub groups: usize,
    pub epsilon: f64,
    normalised: Vec<F>,
    inv_std: Vec<F>,
}

impl<F: Real> LayerNormKernel<F> {
    pub fn new(features: usize, groups: usize, epsilon: f64, capacity: usize) -> Self {
        LayerNormKernel {
            features,
            groups,
            epsilon,
            normalised: vec![F::zero(); capacity * groups * features],
            inv_std: vec![F::zero(); capacity * groups],
        }
    }
}

impl<F: Real> Kernel<F> for LayerNormKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let f = self.features;
        let (scale, shift) = p.split_at(f);
        let n = rows * self.groups;
        let inv_f = F::one() / F::of(f as f64);
        let eps = F::of(self.epsilon);
        for (k, ((xg, yg), ng)) in x[..n * f]
            .chunks_exact(f)
            .zip(y.chunks_exact_mut(f))
            .zip(self.normalised.chunks_exact_mut(f))
            .enumerate()
        {
            let mean = xg.iter().copied().sum::<F>() * inv_f;
            let var = xg.iter().map(|&v| (v - mean) * (v - mean)).sum::<F>() * inv_f;
            let inv = F::one() / (var + eps).sqrt();
            self.inv_std[k] = inv;
            for j in 0..f {
                ng[j] = (xg[j] - mean) * inv;
                yg[j] = scale[j] * ng[j] + shift[j];
            }
        }
    }

    fn backward(
        &mut self,
        _x: &[F],
        _y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        p: &[F],
        g: &mut [F],
        rows: usize,
    ) {
        let f = self.features;
        let scale = &p[..f];
        let (gscale, gshift) = g.split_at_mut(f);
        gscale.fill(F::zero());
        gshift.fill(F::zero());
        let n = rows * self.groups;
        for (dyg, ng) in dy[..n * f].chunks_exact(f).zip(self.normalised.chunks_exact(f)) {
            for j in 0..f {
                gscale[j] = gscale[j] + dyg[j] * ng[j];
                gshift[j] = gshift[j] + dyg[j];
            }
        }
        let Some(dx) = dx else { return };
        let inv_f = F::one() / F::of(f as f64);
        for (k, ((dyg, ng), dxg)) in dy[..n * f]
            .chunks_exact(f)
            .zip(self.normalised.chunks_exact(f))
            .zip(dx.chunks_exact_mut(f))
            .enumerate()
        {
            // dx = inv_std · (d - mean(d) - x̂ · mean(d · x̂)), d = dy · scale
            let (mut m1, mut m2) = (F::zero(), F::zero());
            for j in 0..f {
                let d = dyg[j] * scale[j];
                m1 = m1 + d;
                m2 = m2 + d * ng[j];
            }
            let (m1, m2) = (m1 * inv_f, m2 * inv_f);
            let inv = self.inv_std[k];
            for j in 0..f {
                dxg[j] = inv * (dyg[j] * scale[j] - m1 - ng[j] * m2);
            }
        }
    }
}
