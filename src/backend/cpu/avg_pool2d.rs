//! Average pooling kernel: each output is the mean of its window's cells inside the input.

use super::Kernel;
use crate::nn::Real;
use crate::nn::layers::Window;

pub struct AvgPoolKernel {
    pub win: Window,
}

impl AvgPoolKernel {
    /// Cells of window (oy, ox) that lie inside the input.
    fn count(&self, oy: usize, ox: usize) -> usize {
        let rows = (0..self.win.kh).filter(|&ky| self.win.in_row(oy, ky).is_some()).count();
        let cols = (0..self.win.kw).filter(|&kx| self.win.in_col(ox, kx).is_some()).count();
        (rows * cols).max(1)
    }
}

impl<F: Real> Kernel<F> for AvgPoolKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], _p: &[F], _r: &mut [F], _rows: usize, _train: bool) {
        let win = self.win;
        for (xp, yp) in x.chunks_exact(win.h * win.w).zip(y.chunks_exact_mut(win.oh * win.ow)) {
            for oy in 0..win.oh {
                for ox in 0..win.ow {
                    let mut sum = F::zero();
                    for ky in 0..win.kh {
                        let Some(iy) = win.in_row(oy, ky) else { continue };
                        for kx in 0..win.kw {
                            if let Some(ix) = win.in_col(ox, kx) {
                                sum = sum + xp[iy * win.w + ix];
                            }
                        }
                    }
                    yp[oy * win.ow + ox] = sum / F::of(self.count(oy, ox) as f64);
                }
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
        _g: &mut [F],
        _rows: usize,
    ) {
        let Some(dx) = dx else { return };
        let win = self.win;
        dx.fill(F::zero());
        for (dxp, dyp) in dx.chunks_exact_mut(win.h * win.w).zip(dy.chunks_exact(win.oh * win.ow)) {
            for oy in 0..win.oh {
                for ox in 0..win.ow {
                    let share = dyp[oy * win.ow + ox] / F::of(self.count(oy, ox) as f64);
                    for ky in 0..win.kh {
                        let Some(iy) = win.in_row(oy, ky) else { continue };
                        for kx in 0..win.kw {
                            if let Some(ix) = win.in_col(ox, kx) {
                                dxp[iy * win.w + ix] = dxp[iy * win.w + ix] + share;
                            }
                        }
                    }
                }
            }
        }
    }
}
