//! Dropout kernel: a mask of 0 or 1/(1-rate) per value, drawn before each training pass.

use super::Kernel;
use crate::nn::Real;
use crate::rng::Rng;

pub struct DropoutKernel<F> {
    pub rate: f32,
    pub width: usize,
    /// Mask of the current training pass, capacity x width.
    pub mask: Vec<F>,
}

/// An inverted-dropout mask: each value 0 with probability `rate`, else 1/(1-rate).
pub fn draw_mask<F: Real>(mask: &mut [F], rate: f32, rng: &mut Rng) {
    let p = rate as f64;
    let keep = F::of(1.0 / (1.0 - p));
    for m in mask {
        *m = if rng.next_f64() < p { F::zero() } else { keep };
    }
}

impl<F: Real> Kernel<F> for DropoutKernel<F> {
    fn resample(&mut self, rows: usize, rng: &mut Rng) {
        draw_mask(&mut self.mask[..rows * self.width], self.rate, rng);
    }
    fn forward(&mut self, x: &[F], y: &mut [F], _p: &[F], _r: &mut [F], _rows: usize, train: bool) {
        if train {
            y.iter_mut().zip(x).zip(&self.mask).for_each(|((y, &x), &m)| *y = x * m);
        } else {
            y.copy_from_slice(x);
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
        if let Some(dx) = dx {
            dx.iter_mut().zip(dy.iter()).zip(&self.mask).for_each(|((d, &g), &m)| *d = g * m);
        }
    }
}
