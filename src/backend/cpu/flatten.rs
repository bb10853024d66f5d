//! Flatten kernel: the values are already channel-major and contiguous; a copy each way.

use super::Kernel;
use crate::nn::Real;

pub struct FlattenKernel;

impl<F: Real> Kernel<F> for FlattenKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], _p: &[F], _r: &mut [F], _rows: usize, _train: bool) {
        y.copy_from_slice(x);
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
            dx.copy_from_slice(dy);
        }
    }
}
