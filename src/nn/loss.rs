//! Losses and the gradient they start the backward pass with.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Zip};
use serde::{Deserialize, Serialize};

use super::{Activation, Real};
use crate::data::BatchTargets;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Softmax cross-entropy, mean over the batch. The output activation must be softmax.
    Xent,
    /// Mean squared error, mean over the batch and the outputs.
    Mse,
}

impl Loss {
    /// Writes `dL/dz` of the output layer into `grad_z` and returns the mean loss.
    /// `z` and `a` are the output layer's pre-activation and activation; `scratch` has their
    /// shape and holds `dL/da` on the way for losses that need it.
    pub fn output_gradient<F: Real>(
        self,
        activation: Activation,
        z: ArrayView2<F>,
        a: ArrayView2<F>,
        targets: BatchTargets<'_>,
        mut grad_z: ArrayViewMut2<F>,
        mut scratch: ArrayViewMut2<F>,
    ) -> F {
        let rows = z.nrows();
        let width = z.ncols();
        let inv_rows = F::one() / F::of(rows as f64);
        match self {
            Loss::Xent => {
                debug_assert_eq!(activation, Activation::Softmax);
                let BatchTargets::Classes(labels) = targets else {
                    // Job validation pairs xent with class labels; regression targets get MSE.
                    grad_z.fill(F::zero());
                    return F::nan();
                };
                let mut total = F::zero();
                grad_z.assign(&a);
                for (r, (zr, mut gr)) in z.axis_iter(Axis(0)).zip(grad_z.axis_iter_mut(Axis(0))).enumerate() {
                    let y = labels[r] as usize;
                    let max = zr.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
                    let lse = zr.iter().fold(F::zero(), |s, &v| s + (v - max).exp()).ln() + max;
                    total = total + (lse - zr[y]);
                    gr[y] = gr[y] - F::one();
                    gr.mapv_inplace(|v| v * inv_rows);
                }
                total * inv_rows
            }
            Loss::Mse => {
                let scale = F::one() / F::of((rows * width) as f64);
                let two = F::of(2.0);
                let mut total = F::zero();
                for (r, (ar, mut sr)) in a.axis_iter(Axis(0)).zip(scratch.axis_iter_mut(Axis(0))).enumerate()
                {
                    Zip::indexed(&mut sr).and(&ar).for_each(|j, s, &av| {
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
                        *s = two * d * scale;
                    });
                }
                activation.backward(z, a, scratch.view(), grad_z);
                total * scale
            }
        }
    }
}
