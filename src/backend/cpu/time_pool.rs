//! Pooling over time, over step-major sequences (`x[r][t][f]`) to one vector per example:
//! each feature's mean or maximum over the steps a sequence has, or its last step's values.
//! Steps past a sequence's end (padding) are never read and get no gradient.

use super::Kernel;
use crate::nn::Real;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Mean,
    Max,
    Last,
}

pub struct TimePoolKernel {
    pub steps: usize,
    pub features: usize,
    pub reduce: Reduce,
    /// Each example's steps this batch (empty: all of them).
    lengths: Vec<u32>,
    /// Max: the step each output came from, `[r][f]`.
    argmax: Vec<u32>,
}

impl TimePoolKernel {
    pub fn new(steps: usize, features: usize, reduce: Reduce, capacity: usize) -> Self {
        let argmax = if reduce == Reduce::Max { vec![0; capacity * features] } else { Vec::new() };
        TimePoolKernel { steps, features, reduce, lengths: Vec::with_capacity(capacity), argmax }
    }

    fn len(&self, r: usize) -> usize {
        super::steps_of(&self.lengths, r, self.steps)
    }
}

impl<F: Real> Kernel<F> for TimePoolKernel {
    fn forward(&mut self, x: &[F], y: &mut [F], _p: &[F], _r: &mut [F], rows: usize, _train: bool) {
        let (t_n, f) = (self.steps, self.features);
        for r in 0..rows {
            let len = self.len(r);
            let out = &mut y[r * f..(r + 1) * f];
            let seq = &x[r * t_n * f..(r * t_n + len) * f];
            match self.reduce {
                Reduce::Mean => {
                    out.fill(F::zero());
                    super::reduce::add_rows(out, seq);
                    let inv = F::one() / F::of(len.max(1) as f64);
                    out.iter_mut().for_each(|v| *v = *v * inv);
                }
                Reduce::Max => {
                    let arg = &mut self.argmax[r * f..(r + 1) * f];
                    out.fill(if len == 0 { F::zero() } else { F::neg_infinity() });
                    arg.fill(0);
                    for (t, step) in seq.chunks_exact(f).enumerate() {
                        for ((o, a), &v) in out.iter_mut().zip(arg.iter_mut()).zip(step) {
                            if v > *o {
                                *o = v;
                                *a = t as u32;
                            }
                        }
                    }
                }
                Reduce::Last if len == 0 => out.fill(F::zero()),
                Reduce::Last => out.copy_from_slice(&seq[(len - 1) * f..]),
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
        rows: usize,
    ) {
        let Some(dx) = dx else { return };
        let (t_n, f) = (self.steps, self.features);
        dx[..rows * t_n * f].fill(F::zero());
        for r in 0..rows {
            let len = self.len(r);
            if len == 0 {
                continue;
            }
            let g = &dy[r * f..(r + 1) * f];
            let seq = &mut dx[r * t_n * f..(r * t_n + len) * f];
            match self.reduce {
                Reduce::Mean => {
                    let inv = F::one() / F::of(len as f64);
                    for step in seq.chunks_exact_mut(f) {
                        step.iter_mut().zip(g).for_each(|(d, &v)| *d = v * inv);
                    }
                }
                Reduce::Max => {
                    for (j, (&a, &v)) in self.argmax[r * f..(r + 1) * f].iter().zip(g).enumerate() {
                        seq[a as usize * f + j] = v;
                    }
                }
                Reduce::Last => seq[(len - 1) * f..].copy_from_slice(g),
            }
        }
    }

    fn mask(&mut self, lengths: Option<&[u32]>) {
        super::keep_lengths(&mut self.lengths, lengths);
    }
}
