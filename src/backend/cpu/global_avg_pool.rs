//! Global average pooling kernel: the mean of each channel plane.

use super::Kernel;
use crate::nn::Real;

pub struct GlobalAvgPoolKernel {
    /// Pixels per channel.
    pub area: usize,
}

impl<F: Real> Kernel<F> for GlobalAvgPoolKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], _p: &[F], _r: &mut [F], _rows: usize, _train: bool) {
        let inv = F::one() / F::of(self.area as f64);
        for (plane, out) in x.chunks_exact(self.area).zip(y.iter_mut()) {
            *out = super::reduce::sum(plane) * inv;
        }
    }

    fn backward(
        &mut self,
        _x: &[F],
        _y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        _p: &[F],
        _g: &mut [F],
        _rows: usize,
    ) {
        let Some(dx) = dx else { return };
        let inv = F::one() / F::of(self.area as f64);
        for (plane, &g) in dx.chunks_exact_mut(self.area).zip(dy.iter()) {
            plane.fill(g * inv);
        }
    }
}
