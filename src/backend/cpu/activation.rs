//! Activations over buffers of `rows` examples of `width` values: forward in place, backward
//! turns dL/da into dL/dz in place using the outputs `a`. Softmax works row by row; the rest
//! element by element. Also the standalone activation layer's kernel.

use rayon::prelude::*;

use super::{Kernel, parallel_len};
use crate::nn::{Activation, Real};
use crate::rng::Rng;

/// `v = f(v)` for `rows` rows of `width`.
pub fn forward_in_place<F: Real>(act: Activation, v: &mut [F], width: usize) {
    match act {
        Activation::Identity => {}
        Activation::Softmax => v.chunks_exact_mut(width).for_each(softmax_row),
        Activation::Relu => v.iter_mut().for_each(|x| *x = x.max(F::zero())),
        a => v.iter_mut().for_each(|x| *x = a.apply(*x)),
    }
}

/// A numerically stable softmax of one row, in place.
pub fn softmax_row<F: Real>(row: &mut [F]) {
    let max = row.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
    let mut sum = F::zero();
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum = sum + *v;
    }
    let inv = F::one() / sum;
    row.iter_mut().for_each(|v| *v = *v * inv);
}

/// `g = dL/dz` from `g = dL/da` and `a = f(z)`, in place.
pub fn backward_in_place<F: Real>(act: Activation, a: &[F], g: &mut [F], width: usize) {
    match act {
        Activation::Identity => {}
        Activation::Softmax => {
            // dL/dz_i = a_i (g_i - sum_j g_j a_j), row by row.
            for (ar, gr) in a.chunks_exact(width).zip(g.chunks_exact_mut(width)) {
                let dot: F = ar.iter().zip(gr.iter()).map(|(&a, &g)| a * g).sum();
                gr.iter_mut().zip(ar).for_each(|(g, &a)| *g = a * (*g - dot));
            }
        }
        // A select, not a branch: the signs of a layer's outputs are as good as random.
        Activation::Relu => {
            g.iter_mut().zip(a).for_each(|(g, &a)| *g = if a > F::zero() { *g } else { F::zero() })
        }
        act => g.iter_mut().zip(a).for_each(|(g, &a)| *g = *g * act.derivative(a)),
    }
}

/// The `activation` layer: `y = f(x)`.
pub struct ActivationKernel {
    pub act: Activation,
    pub width: usize,
    pub threads: usize,
}

impl ActivationKernel {
    /// Values per piece when the rows are shared between threads (whole rows: softmax works
    /// row by row).
    fn piece(&self, len: usize) -> Option<usize> {
        parallel_len(len, self.threads).map(|p| p.div_ceil(self.width.max(1)) * self.width.max(1))
    }
}

impl<F: Real> Kernel<F> for ActivationKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], _p: &[F], _r: &mut [F], _rows: usize, _train: bool) {
        let (act, width) = (self.act, self.width);
        let run = |x: &[F], y: &mut [F]| {
            y.copy_from_slice(x);
            forward_in_place(act, y, width);
        };
        match self.piece(y.len()) {
            Some(piece) => y.par_chunks_mut(piece).zip(x.par_chunks(piece)).for_each(|(y, x)| run(x, y)),
            None => run(x, y),
        }
    }
    fn backward(
        &mut self,
        _x: &[F],
        y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        _p: &[F],
        _g: &mut [F],
        _rows: usize,
    ) {
        let (act, width) = (self.act, self.width);
        let run = |y: &[F], dy: &mut [F], dx: Option<&mut [F]>| {
            backward_in_place(act, y, dy, width);
            if let Some(dx) = dx {
                dx.copy_from_slice(dy);
            }
        };
        match (self.piece(dy.len()), dx) {
            (Some(piece), Some(dx)) => dy
                .par_chunks_mut(piece)
                .zip(y.par_chunks(piece))
                .zip(dx.par_chunks_mut(piece))
                .for_each(|((dy, y), dx)| run(y, dy, Some(dx))),
            (Some(piece), None) => {
                dy.par_chunks_mut(piece).zip(y.par_chunks(piece)).for_each(|(dy, y)| run(y, dy, None))
            }
            (None, dx) => run(y, dy, dx),
        }
    }
    fn resample(&mut self, _rows: usize, _rng: &mut Rng) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_logits() {
        let mut z = vec![1000.0f32, 0.0, -1000.0, 1.0, 2.0, 3.0];
        forward_in_place(Activation::Softmax, &mut z, 3);
        for r in z.chunks(3) {
            assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(r.iter().all(|v| v.is_finite()));
        }
        assert!((z[0] - 1.0).abs() < 1e-6);
    }
}
