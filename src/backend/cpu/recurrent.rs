//! What the recurrent kernels (`lstm`, `gru`) share: the gate activation, the output (every
//! step's hidden state or the last step's), the output's gradient at a step, and the input side
//! of the backward pass once every step's gate gradients are known.

use super::gemm::{Op, gemm};
use crate::nn::Real;

pub fn sigmoid<F: Real>(z: F) -> F {
    z.sigmoid_fast()
}

/// The logistic function over a slice, in place (a loop the compiler vectorises).
pub fn sigmoid_slice<F: Real>(v: &mut [F]) {
    v.iter_mut().for_each(|z| *z = z.sigmoid_fast());
}

/// tanh over a slice, in place.
pub fn tanh_slice<F: Real>(v: &mut [F]) {
    v.iter_mut().for_each(|z| *z = z.tanh_fast());
}

/// Threads for one step's recurrent product (`m` x `n` x `k`): one below a few million
/// multiply-adds, where splitting the product costs more than it saves (measured on the
/// `char_lstm` preset, batch 12: two threads were slower than one).
pub fn step_threads(m: usize, n: usize, k: usize, threads: usize) -> usize {
    if m * n * k < 4 << 20 { 1 } else { threads }
}

/// Example `r`'s last step: `steps - 1`, or the last it has (`lengths`, when not empty).
#[inline]
pub fn last_step(lengths: &[u32], r: usize, steps: usize) -> usize {
    super::steps_of(lengths, r, steps).max(1) - 1
}

/// The layer's output from the hidden states `[r][t][units]`: all of them, or each example's
/// last (the last it has, on sequences of several lengths).
#[allow(clippy::too_many_arguments)]
pub fn write_output<F: Real>(
    hidden: &[F],
    y: &mut [F],
    rows: usize,
    steps: usize,
    units: usize,
    every_step: bool,
    lengths: &[u32],
) {
    if every_step {
        y[..rows * steps * units].copy_from_slice(&hidden[..rows * steps * units]);
    } else {
        for r in 0..rows {
            let last = (r * steps + last_step(lengths, r, steps)) * units;
            y[r * units..(r + 1) * units].copy_from_slice(&hidden[last..last + units]);
        }
    }
}

/// dL/dh of example `r`, step `t`, unit `j` from the layer's output gradient `dy` (`last`:
/// the example's last step).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn output_grad<F: Real>(
    dy: &[F],
    r: usize,
    t: usize,
    j: usize,
    steps: usize,
    units: usize,
    every_step: bool,
    last: usize,
) -> F {
    if every_step {
        dy[(r * steps + t) * units + j]
    } else if t == last {
        dy[r * units + j]
    } else {
        F::zero()
    }
}

/// From the gradients `dz` of every step's input term `x W_x + b` (`[r][t][width]`): the input
/// weights' and biases' gradients, and the input's when asked.
#[allow(clippy::too_many_arguments)]
pub fn input_side<F: Real>(
    x: &[F],
    dz: &[F],
    wx: &[F],
    gwx: &mut [F],
    gb: &mut [F],
    dx: Option<&mut [F]>,
    examples: usize,
    inputs: usize,
    threads: usize,
) {
    let width = gb.len();
    gemm(inputs, width, examples, &x[..examples * inputs], Op::T, dz, Op::N, gwx, false, threads);
    gb.fill(F::zero());
    super::reduce::add_rows(gb, dz);
    if let Some(dx) = dx {
        gemm(examples, inputs, width, dz, Op::N, wx, Op::T, &mut dx[..examples * inputs], false, threads);
    }
}
