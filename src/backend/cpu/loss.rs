//! The output layer's activation and the loss: from the output layer's pre-activation `z`
//! to the network's outputs `a`, the mean loss and dL/dz, which starts the backward pass.

use super::activation::{backward_in_place, forward_in_place};
use crate::data::{BatchTargets, NO_TARGET};
use crate::nn::{Activation, Loss, Real};

/// Writes the outputs into `a` and dL/dz into `dz` (both rows x width) and returns the mean
/// loss. Cross-entropy goes with a softmax output (the architecture checks it).
pub fn output<F: Real>(
    loss: Loss,
    act: Activation,
    z: &[F],
    a: &mut [F],
    targets: BatchTargets<'_>,
    dz: &mut [F],
    width: usize,
) -> F {
    let rows = z.len() / width;
    a.copy_from_slice(z);
    forward_in_place(act, a, width);
    let inv_rows = F::one() / F::of(rows.max(1) as f64);
    match loss {
        Loss::Xent => {
            let BatchTargets::Classes(labels) = targets else {
                // Job validation pairs xent with class labels; regression targets get MSE.
                dz.fill(F::zero());
                return F::nan();
            };
            // Steps without a label (padding, labels aligned to one end) count for nothing:
            // the mean is over the labelled ones.
            let labelled = labels[..rows].iter().filter(|&&y| y != NO_TARGET).count();
            let inv = if labelled == rows { inv_rows } else { F::one() / F::of(labelled.max(1) as f64) };
            let mut total = F::zero();
            for (r, ((zr, ar), gr)) in
                z.chunks_exact(width).zip(a.chunks_exact(width)).zip(dz.chunks_exact_mut(width)).enumerate()
            {
                if labels[r] == NO_TARGET {
                    gr.fill(F::zero());
                    continue;
                }
                let y = labels[r] as usize;
                let max = zr.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
                let lse = zr.iter().map(|&v| (v - max).exp()).sum::<F>().ln() + max;
                total = total + (lse - zr[y]);
                for (j, (g, &p)) in gr.iter_mut().zip(ar).enumerate() {
                    let t = if j == y { F::one() } else { F::zero() };
                    *g = (p - t) * inv;
                }
            }
            total * inv
        }
        Loss::Mse => {
            let scale = F::one() / F::of((rows * width).max(1) as f64);
            let two = F::of(2.0);
            let mut total = F::zero();
            for (r, (ar, gr)) in a.chunks_exact(width).zip(dz.chunks_exact_mut(width)).enumerate() {
                for (j, (g, &av)) in gr.iter_mut().zip(ar).enumerate() {
                    let t = match targets {
                        BatchTargets::Classes(labels) => {
                            if labels[r] as usize == j {
                                F::one()
                            } else {
                                F::zero()
                            }
                        }
                        BatchTargets::Values(values) => F::of32(values[r * width + j]),
                    };
                    let d = av - t;
                    total = total + d * d;
                    *g = two * d * scale;
                }
            }
            backward_in_place(act, a, dz, width);
            total * scale
        }
    }
}
