//! Positional-embedding kernel: `y[r][t] = x[r][t] + table[t]`; the table's gradient is each
//! step's `dy` summed over the batch, the input's is `dy`.

use super::Kernel;
use crate::nn::Real;

pub struct PositionalEmbeddingKernel {
    /// Values per example: steps x features (the table's size).
    pub width: usize,
}

impl<F: Real> Kernel<F> for PositionalEmbeddingKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let w = self.width;
        for (xr, yr) in x[..rows * w].chunks_exact(w).zip(y.chunks_exact_mut(w)) {
            for ((o, &a), &b) in yr.iter_mut().zip(xr).zip(p) {
                *o = a + b;
            }
        }
    }

    fn backward(
        &mut self,
        _x: &[F],
        _y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        _p: &[F],
        g: &mut [F],
        rows: usize,
    ) {
        let w = self.width;
        g.fill(F::zero());
        super::reduce::add_rows(g, &dy[..rows * w]);
        if let Some(dx) = dx {
            dx[..rows * w].copy_from_slice(&dy[..rows * w]);
        }
    }
}
