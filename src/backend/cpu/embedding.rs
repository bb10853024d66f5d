//! Embedding kernel: `y[step] = table[id]`; backward adds each step's `dy` into its id's row,
//! every other row's gradient zero. Ids arrive as values (exact in f32 below 2^24); the data
//! source and the architecture keep them below the table's rows, and an id outside them (never
//! produced by Strom's sources) reads and writes nothing.

use super::Kernel;
use crate::nn::Real;

pub struct EmbeddingKernel {
    pub steps: usize,
    pub vocab: usize,
    pub dim: usize,
}

impl EmbeddingKernel {
    fn row(&self, id: f64) -> Option<usize> {
        (id >= 0.0 && id < self.vocab as f64).then_some(id as usize)
    }
}

impl<F: Real> Kernel<F> for EmbeddingKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let d = self.dim;
        for (&id, out) in x[..rows * self.steps].iter().zip(y.chunks_exact_mut(d)) {
            match self.row(id.f64()) {
                Some(i) => out.copy_from_slice(&p[i * d..(i + 1) * d]),
                None => out.fill(F::zero()),
            }
        }
    }

    fn backward(
        &mut self,
        x: &[F],
        _y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        _p: &[F],
        g: &mut [F],
        rows: usize,
    ) {
        let d = self.dim;
        g.fill(F::zero());
        for (&id, dyr) in x[..rows * self.steps].iter().zip(dy.chunks_exact(d)) {
            if let Some(i) = self.row(id.f64()) {
                g[i * d..(i + 1) * d].iter_mut().zip(dyr).for_each(|(s, &v)| *s = *s + v);
            }
        }
        // Ids have no gradient.
        if let Some(dx) = dx {
            dx[..rows * self.steps].fill(F::zero());
        }
    }
}
