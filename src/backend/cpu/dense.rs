//! Dense layer kernel: `y = f(x W + b)`, W stored inputs x units (row-major). On a sequence
//! every step is a row: `rows` examples of `steps` steps are one product of rows x steps rows.

use super::Kernel;
use super::activation::{backward_in_place, forward_in_place};
use super::gemm::{Op, gemm};
use crate::nn::{Activation, Real};

pub struct DenseKernel {
    pub inputs: usize,
    pub units: usize,
    pub act: Activation,
    /// Steps per example (1 unless the input is a sequence).
    pub steps: usize,
    pub threads: usize,
}

impl<F: Real> Kernel<F> for DenseKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let (n, u, rows) = (self.inputs, self.units, rows * self.steps);
        let (w, b) = p.split_at(n * u);
        for row in y.chunks_exact_mut(u) {
            row.copy_from_slice(b);
        }
        gemm(rows, u, n, x, Op::N, w, Op::N, y, true, self.threads);
        forward_in_place(self.act, y, u);
    }

    fn backward(
        &mut self,
        x: &[F],
        y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        p: &[F],
        g: &mut [F],
        rows: usize,
    ) {
        let (n, u, rows) = (self.inputs, self.units, rows * self.steps);
        backward_in_place(self.act, y, dy, u);
        let (gw, gb) = g.split_at_mut(n * u);
        // dW = x^T dz; db = column sums of dz.
        gemm(n, u, rows, x, Op::T, dy, Op::N, gw, false, self.threads);
        gb.fill(F::zero());
        super::reduce::add_rows(gb, &dy[..rows * u]);
        if let Some(dx) = dx {
            // dx = dz W^T.
            gemm(rows, n, u, dy, Op::N, &p[..n * u], Op::T, dx, false, self.threads);
        }
    }
}
