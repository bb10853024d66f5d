//! Add kernel: the element-wise sum of the inputs; backward hands each input the output's
//! gradient. `first` says whether the input's gradient buffer is written for the first time in
//! this pass (copy) or holds another consumer's share already (add to it).

use rayon::prelude::*;

use super::parallel_len;
use crate::nn::{MAX_MERGE_INPUTS, Real};

/// y = x₁ + x₂ + ..., split into one piece per thread when large.
pub fn add_forward<F: Real>(xs: &[&[F]], y: &mut [F], threads: usize) {
    let sum = |at: usize, y: &mut [F]| {
        let n = y.len();
        y.copy_from_slice(&xs[0][at..at + n]);
        for x in &xs[1..] {
            y.iter_mut().zip(&x[at..at + n]).for_each(|(o, &v)| *o = *o + v);
        }
    };
    debug_assert!(xs.len() <= MAX_MERGE_INPUTS);
    match parallel_len(y.len(), threads) {
        Some(piece) => y.par_chunks_mut(piece).enumerate().for_each(|(i, yb)| sum(i * piece, yb)),
        None => sum(0, y),
    }
}

/// Each input's gradient is the output's.
pub fn add_backward<F: Real>(dy: &[F], dx: &mut [F], first: bool, threads: usize) {
    let pass = |dx: &mut [F], dy: &[F]| {
        if first {
            dx.copy_from_slice(dy);
        } else {
            dx.iter_mut().zip(dy).for_each(|(o, &g)| *o = *o + g);
        }
    };
    match parallel_len(dx.len(), threads) {
        Some(piece) => dx.par_chunks_mut(piece).zip(dy.par_chunks(piece)).for_each(|(a, b)| pass(a, b)),
        None => pass(dx, dy),
    }
}
