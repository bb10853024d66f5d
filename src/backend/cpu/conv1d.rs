//! 1-D convolution kernel over step-major sequences (`x[r][t][f]`): im2col into one column
//! buffer of (rows·T') x (K·F) (a window of K taps is K runs of F contiguous values), one product
//! with the weights [K·F, filters], the bias, the activation. Backward: dW = colsᵀ · dz, the
//! bias' column sums, and dx = col2im(dz · Wᵀ). On sequences of several lengths taps past a
//! sequence's end read zeros (whatever the layer before left there), and the output steps past
//! its end are zero and pass no gradient. Buffers are sized once for the batch capacity.

use super::Kernel;
use super::activation::{backward_in_place, forward_in_place};
use super::gemm::{Op, gemm};
use crate::nn::layers::Span;
use crate::nn::{Activation, Real};

pub struct Conv1dKernel<F> {
    span: Span,
    features: usize,
    filters: usize,
    act: Activation,
    threads: usize,
    cols: Vec<F>,
    dcols: Vec<F>,
    /// Each example's input steps this batch (empty: all of them): taps past a sequence's end
    /// read zeros, as padding.
    lengths: Vec<u32>,
}

impl<F: Real> Conv1dKernel<F> {
    pub fn new(
        span: Span,
        features: usize,
        filters: usize,
        act: Activation,
        capacity: usize,
        threads: usize,
    ) -> Self {
        let n = capacity * span.out_steps * span.kernel * features;
        Conv1dKernel {
            span,
            features,
            filters,
            act,
            threads,
            cols: vec![F::zero(); n],
            dcols: vec![F::zero(); n],
            lengths: Vec::with_capacity(capacity),
        }
    }
}

/// The input step tap `k` of output step `o` reads, if inside the sequence (of `len` steps).
#[inline]
fn source(s: &Span, o: usize, k: usize, len: usize) -> Option<usize> {
    (o * s.stride + k * s.dilation).checked_sub(s.pad).filter(|&t| t < len)
}

impl<F: Real> Conv1dKernel<F> {
    /// Example `r`'s input steps.
    fn len(&self, r: usize) -> usize {
        super::steps_of(&self.lengths, r, self.span.steps)
    }

    /// Zeroes the output steps past each example's end.
    fn clear_past_end(&self, v: &mut [F], rows: usize) {
        if self.lengths.is_empty() {
            return;
        }
        let (to, o) = (self.span.out_steps, self.filters);
        for r in 0..rows {
            let end = self.span.out_len(self.len(r));
            v[(r * to + end) * o..(r + 1) * to * o].fill(F::zero());
        }
    }
}

impl<F: Real> Kernel<F> for Conv1dKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let (t_in, to, f, k_n, o) =
            (self.span.steps, self.span.out_steps, self.features, self.span.kernel, self.filters);
        let kf = k_n * f;
        for r in 0..rows {
            let len = self.len(r);
            for step in 0..to {
                let col = &mut self.cols[(r * to + step) * kf..][..kf];
                for k in 0..k_n {
                    let dst = &mut col[k * f..(k + 1) * f];
                    match source(&self.span, step, k, len) {
                        Some(t) => dst.copy_from_slice(&x[(r * t_in + t) * f..][..f]),
                        None => dst.fill(F::zero()),
                    }
                }
            }
        }
        let (w, b) = p.split_at(kf * o);
        let y = &mut y[..rows * to * o];
        for row in y.chunks_exact_mut(o) {
            row.copy_from_slice(b);
        }
        gemm(rows * to, o, kf, &self.cols[..rows * to * kf], Op::N, w, Op::N, y, true, self.threads);
        forward_in_place(self.act, y, o);
        self.clear_past_end(y, rows);
    }

    fn backward(
        &mut self,
        _x: &[F],
        y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        p: &[F],
        g: &mut [F],
        rows: usize,
    ) {
        let (t_in, to, f, k_n, o) =
            (self.span.steps, self.span.out_steps, self.features, self.span.kernel, self.filters);
        let kf = k_n * f;
        let m = rows * to;
        self.clear_past_end(dy, rows);
        backward_in_place(self.act, &y[..m * o], &mut dy[..m * o], o);
        let (gw, gb) = g.split_at_mut(kf * o);
        gemm(kf, o, m, &self.cols[..m * kf], Op::T, &dy[..m * o], Op::N, gw, false, self.threads);
        gb.fill(F::zero());
        super::reduce::add_rows(gb, &dy[..m * o]);
        let Some(dx) = dx else { return };
        gemm(
            m,
            kf,
            o,
            &dy[..m * o],
            Op::N,
            &p[..kf * o],
            Op::T,
            &mut self.dcols[..m * kf],
            false,
            self.threads,
        );
        dx[..rows * t_in * f].fill(F::zero());
        for r in 0..rows {
            let len = self.len(r);
            for step in 0..to {
                let col = &self.dcols[(r * to + step) * kf..][..kf];
                for k in 0..k_n {
                    if let Some(t) = source(&self.span, step, k, len) {
                        let d = &mut dx[(r * t_in + t) * f..][..f];
                        d.iter_mut().zip(&col[k * f..(k + 1) * f]).for_each(|(a, &b)| *a = *a + b);
                    }
                }
            }
        }
    }

    fn mask(&mut self, lengths: Option<&[u32]>) {
        super::keep_lengths(&mut self.lengths, lengths);
    }
}
