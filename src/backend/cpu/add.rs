//! Add kernel: the element-wise sum of the inputs; backward hands each input the output's
//! gradient. `first` says whether the input's gradient buffer is written for the first time in
//! this pass (copy) or holds another consumer's share already (add to it).

use crate::nn::Real;

/// y = x₁ + x₂ + ...
pub fn add_forward<F: Real>(xs: &[&[F]], y: &mut [F]) {
    y.copy_from_slice(xs[0]);
    for x in &xs[1..] {
        y.iter_mut().zip(*x).for_each(|(o, &v)| *o = *o + v);
    }
}

/// Each input's gradient is the output's.
pub fn add_backward<F: Real>(dy: &[F], dx: &mut [F], first: bool) {
    if first {
        dx.copy_from_slice(dy);
    } else {
        dx.iter_mut().zip(dy).for_each(|(o, &g)| *o = *o + g);
    }
}
