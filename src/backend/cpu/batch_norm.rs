//! Batch normalisation kernel. Values are laid out [example][group][inner] (groups are
//! channels with inner = pixels, or features with inner = 1). Training normalises with the
//! batch's mean and (biased) variance and moves the running statistics toward them (the
//! running variance unbiased); evaluation uses the running statistics.

use super::Kernel;
use super::activation::{backward_in_place, forward_in_place};
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
    pub sums: Vec<F>,
    pub sums2: Vec<F>,
}

impl<F: Real> BatchNormKernel<F> {
    pub fn new(
        groups: usize,
        inner: usize,
        decay: f32,
        epsilon: f32,
        act: Activation,
        capacity: usize,
    ) -> Self {
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
        }
    }
}

/// (group, value range) of every run of `inner` values in a buffer of `len` values.
fn runs(groups: usize, inner: usize, len: usize) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> {
    (0..len / inner).map(move |k| (k % groups, k * inner..(k + 1) * inner))
}

impl<F: Real> Kernel<F> for BatchNormKernel<F> {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], running: &mut [F], rows: usize, train: bool) {
        let g = self.groups;
        let (scale, shift) = p.split_at(g);
        let (rmean, rvar) = running.split_at_mut(g);
        let eps = F::of32(self.epsilon);
        if train {
            let m = F::of((rows * self.inner).max(1) as f64);
            self.sums.fill(F::zero());
            for (k, r) in runs(g, self.inner, x.len()) {
                self.sums[k] = self.sums[k] + x[r].iter().copied().sum::<F>();
            }
            self.sums.iter_mut().for_each(|s| *s = *s / m);
            self.sums2.fill(F::zero());
            for (k, r) in runs(g, self.inner, x.len()) {
                let mean = self.sums[k];
                self.sums2[k] = self.sums2[k] + x[r].iter().map(|&v| (v - mean) * (v - mean)).sum::<F>();
            }
            let decay = F::of32(self.decay);
            let unbias = if rows * self.inner > 1 { m / (m - F::one()) } else { F::one() };
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
        let xhat = &mut self.xhat[..x.len()];
        for (k, r) in runs(g, self.inner, x.len()) {
            let (mean, inv, a, b) = (self.sums[k], self.inv_std[k], scale[k], shift[k]);
            for ((xh, yv), &xv) in xhat[r.clone()].iter_mut().zip(&mut y[r.clone()]).zip(&x[r]) {
                *xh = (xv - mean) * inv;
                *yv = a * *xh + b;
            }
        }
        forward_in_place(self.act, y, self.inner.max(1));
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
        let g = self.groups;
        backward_in_place(self.act, y, dy, self.inner.max(1));
        let (dscale, dshift) = grad.split_at_mut(g);
        dscale.fill(F::zero());
        dshift.fill(F::zero());
        let xhat = &self.xhat[..dy.len()];
        for (k, r) in runs(g, self.inner, dy.len()) {
            let (mut ds, mut db) = (F::zero(), F::zero());
            for (&d, &xh) in dy[r.clone()].iter().zip(&xhat[r]) {
                ds = ds + d * xh;
                db = db + d;
            }
            dscale[k] = dscale[k] + ds;
            dshift[k] = dshift[k] + db;
        }
        let Some(dx) = dx else { return };
        let m = F::of((rows * self.inner).max(1) as f64);
        for (k, r) in runs(g, self.inner, dy.len()) {
            let c = p[k] * self.inv_std[k] / m;
            let (ds, db) = (dscale[k], dshift[k]);
            for ((o, &d), &xh) in dx[r.clone()].iter_mut().zip(&dy[r.clone()]).zip(&xhat[r]) {
                *o = c * (m * d - db - xh * ds);
            }
        }
    }
}
