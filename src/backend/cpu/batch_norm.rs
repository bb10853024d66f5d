//! Batch normalisation kernel. Values are laid out [example][group][inner] (groups are
//! channels with inner = pixels, or features with inner = 1). Training normalises with the
//! batch's mean and (biased) variance and moves the running statistics toward them (the
//! running variance unbiased); evaluation uses the running statistics.

use rayon::prelude::*;

use super::Kernel;
use super::activation::{backward_in_place, forward_in_place};
use super::reduce::{dot_and_sum, sum, sum_sq_dev};
use crate::nn::{Activation, Real};

pub struct BatchNormKernel<F> {
    pub groups: usize,
    pub inner: usize,
    pub decay: f32,
    pub epsilon: f32,
    pub act: Activation,
    /// Normalised inputs of the last training pass, capacity x groups x inner.
    pub xhat: Vec<F>,
    /// 1 / sqrt(var + eps) per group, of the last pass.
    pub inv_std: Vec<F>,
    /// The mean per group (forward), then dL/dscale and dL/dshift (backward).
    pub sums: Vec<F>,
    pub sums2: Vec<F>,
    /// With several threads the batch is split into one block of examples per thread; each
    /// block sums into its own 2 x groups partial sums.
    threads: usize,
    partial: Vec<F>,
}

impl<F: Real> BatchNormKernel<F> {
    pub fn new(
        groups: usize,
        inner: usize,
        decay: f32,
        epsilon: f32,
        act: Activation,
        capacity: usize,
        threads: usize,
    ) -> Self {
        let threads = threads.max(1);
        BatchNormKernel {
            groups,
            inner,
            decay,
            epsilon,
            act,
            xhat: vec![F::zero(); capacity * groups * inner],
            inv_std: vec![F::zero(); groups],
            sums: vec![F::zero(); groups],
            sums2: vec![F::zero(); groups],
            threads,
            partial: vec![F::zero(); threads * 2 * groups],
        }
    }

    /// Values per block of examples, so that every thread gets one block.
    fn block(&self, rows: usize) -> usize {
        rows.div_ceil(self.threads).max(1) * self.groups * self.inner
    }

    /// Whether the blocks run on several threads.
    fn parallel(&self, rows: usize) -> bool {
        self.threads > 1 && rows > 1
    }

    /// Adds the blocks' partial sums (first or second half of each block's 2 x groups) into
    /// `out`.
    fn gather(partial: &[F], groups: usize, second: bool, out: &mut [F]) {
        out.fill(F::zero());
        let at = if second { groups } else { 0 };
        for p in partial.chunks_exact(2 * groups) {
            out.iter_mut().zip(&p[at..at + groups]).for_each(|(o, &v)| *o = *o + v);
        }
    }
}

/// (group, value range) of every run of `inner` values in a buffer of `len` values.
fn runs(groups: usize, inner: usize, len: usize) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> {
    (0..len / inner).map(move |k| (k % groups, k * inner..(k + 1) * inner))
}

impl<F: Real> Kernel<F> for BatchNormKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], running: &mut [F], rows: usize, train: bool) {
        let (g, inner, act) = (self.groups, self.inner, self.act);
        let (block, parallel) = (self.block(rows), self.parallel(rows));
        let (scale, shift) = p.split_at(g);
        let (rmean, rvar) = running.split_at_mut(g);
        let eps = F::of32(self.epsilon);
        if train {
            let m = F::of((rows * inner).max(1) as f64);
            let partial = &mut self.partial[..x.len().div_ceil(block) * 2 * g];
            // The mean, then the variance about it, each summed per block.
            let means = |xb: &[F], part: &mut [F]| {
                part[..g].fill(F::zero());
                for (k, r) in runs(g, inner, xb.len()) {
                    part[k] = part[k] + sum(&xb[r]);
                }
            };
            if parallel {
                x.par_chunks(block).zip(partial.par_chunks_mut(2 * g)).for_each(|(xb, part)| means(xb, part));
            } else {
                means(x, partial);
            }
            Self::gather(partial, g, false, &mut self.sums);
            self.sums.iter_mut().for_each(|s| *s = *s / m);
            let mean = &self.sums;
            let deviations = |xb: &[F], part: &mut [F]| {
                part[g..].fill(F::zero());
                for (k, r) in runs(g, inner, xb.len()) {
                    part[g + k] = part[g + k] + sum_sq_dev(&xb[r], mean[k]);
                }
            };
            if parallel {
                x.par_chunks(block)
                    .zip(partial.par_chunks_mut(2 * g))
                    .for_each(|(xb, part)| deviations(xb, part));
            } else {
                deviations(x, partial);
            }
            Self::gather(partial, g, true, &mut self.sums2);
            let decay = F::of32(self.decay);
            let unbias = if rows * inner > 1 { m / (m - F::one()) } else { F::one() };
            for k in 0..g {
                let var = self.sums2[k] / m;
                self.inv_std[k] = F::one() / (var + eps).sqrt();
                rmean[k] = rmean[k] * decay + self.sums[k] * (F::one() - decay);
                rvar[k] = rvar[k] * decay + var * unbias * (F::one() - decay);
            }
        } else {
            for k in 0..g {
                self.sums[k] = rmean[k];
                self.inv_std[k] = F::one() / (rvar[k] + eps).sqrt();
            }
        }
        let (mean, inv_std) = (&self.sums, &self.inv_std);
        let normalise = |xb: &[F], yb: &mut [F], xhb: &mut [F]| {
            for (k, r) in runs(g, inner, xb.len()) {
                let (mean, inv, a, b) = (mean[k], inv_std[k], scale[k], shift[k]);
                for ((xh, yv), &xv) in xhb[r.clone()].iter_mut().zip(&mut yb[r.clone()]).zip(&xb[r]) {
                    *xh = (xv - mean) * inv;
                    *yv = a * *xh + b;
                }
            }
            forward_in_place(act, yb, inner.max(1));
        };
        let xhat = &mut self.xhat[..x.len()];
        if parallel {
            x.par_chunks(block)
                .zip(y.par_chunks_mut(block))
                .zip(xhat.par_chunks_mut(block))
                .for_each(|((xb, yb), xhb)| normalise(xb, yb, xhb));
        } else {
            normalise(x, y, xhat);
        }
    }

    fn backward(
        &mut self,
        _x: &[F],
        y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        p: &[F],
        grad: &mut [F],
        rows: usize,
    ) {
        let (g, inner, act) = (self.groups, self.inner, self.act);
        let (block, parallel) = (self.block(rows), self.parallel(rows));
        let xhat = &self.xhat[..dy.len()];
        let partial = &mut self.partial[..dy.len().div_ceil(block) * 2 * g];
        // dL/dz through the activation, then per block Σ dz·xhat (dscale) and Σ dz (dshift).
        let sums = |yb: &[F], dyb: &mut [F], xhb: &[F], part: &mut [F]| {
            backward_in_place(act, yb, dyb, inner.max(1));
            part.fill(F::zero());
            for (k, r) in runs(g, inner, dyb.len()) {
                let (ds, db) = dot_and_sum(&dyb[r.clone()], &xhb[r]);
                part[k] = part[k] + ds;
                part[g + k] = part[g + k] + db;
            }
        };
        if parallel {
            y.par_chunks(block)
                .zip(dy.par_chunks_mut(block))
                .zip(xhat.par_chunks(block))
                .zip(partial.par_chunks_mut(2 * g))
                .for_each(|(((yb, dyb), xhb), part)| sums(yb, dyb, xhb, part));
        } else {
            sums(y, dy, xhat, partial);
        }
        let (dscale, dshift) = grad.split_at_mut(g);
        Self::gather(partial, g, false, dscale);
        Self::gather(partial, g, true, dshift);
        let Some(dx) = dx else { return };
        let m = F::of((rows * inner).max(1) as f64);
        let (dscale, dshift, inv_std) = (&*dscale, &*dshift, &self.inv_std);
        let input_grad = |dxb: &mut [F], dyb: &[F], xhb: &[F]| {
            for (k, r) in runs(g, inner, dyb.len()) {
                let c = p[k] * inv_std[k] / m;
                let (ds, db) = (dscale[k], dshift[k]);
                for ((o, &d), &xh) in dxb[r.clone()].iter_mut().zip(&dyb[r.clone()]).zip(&xhb[r]) {
                    *o = c * (m * d - db - xh * ds);
                }
            }
        };
        if parallel {
            dx.par_chunks_mut(block)
                .zip(dy.par_chunks(block))
                .zip(xhat.par_chunks(block))
                .for_each(|((dxb, dyb), xhb)| input_grad(dxb, dyb, xhb));
        } else {
            input_grad(dx, dy, xhat);
        }
    }
}
