//! Element-wise activations and softmax, forward and backward.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Zip};
use serde::{Deserialize, Serialize};

use super::Real;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    LeakyRelu,
    Tanh,
    Sigmoid,
    Identity,
    Softmax,
}

/// Slope of leaky ReLU for negative inputs.
const LEAK: f64 = 0.01;

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Identity => "identity",
            Activation::Softmax => "softmax",
        }
    }

    /// `a = f(z)`.
    pub fn forward<F: Real>(self, z: ArrayView2<F>, mut a: ArrayViewMut2<F>) {
        let zero = F::zero();
        match self {
            Activation::Relu => {
                Zip::from(&mut a).and(&z).for_each(|a, &z| *a = if z > zero { z } else { zero })
            }
            Activation::LeakyRelu => {
                let leak = F::of(LEAK);
                Zip::from(&mut a).and(&z).for_each(|a, &z| *a = if z > zero { z } else { z * leak })
            }
            Activation::Tanh => Zip::from(&mut a).and(&z).for_each(|a, &z| *a = z.tanh()),
            Activation::Sigmoid => {
                Zip::from(&mut a).and(&z).for_each(|a, &z| *a = F::one() / (F::one() + (-z).exp()))
            }
            Activation::Identity => a.assign(&z),
            Activation::Softmax => {
                for (zr, mut ar) in z.axis_iter(Axis(0)).zip(a.axis_iter_mut(Axis(0))) {
                    let max = zr.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
                    let mut sum = zero;
                    Zip::from(&mut ar).and(&zr).for_each(|a, &z| {
                        *a = (z - max).exp();
                        sum = sum + *a;
                    });
                    let inv = F::one() / sum;
                    ar.mapv_inplace(|v| v * inv);
                }
            }
        }
    }

    /// `grad_z = dL/dz` from `grad_a = dL/da`, with `z` and `a = f(z)` from the forward pass.
    pub fn backward<F: Real>(
        self,
        z: ArrayView2<F>,
        a: ArrayView2<F>,
        grad_a: ArrayView2<F>,
        mut grad_z: ArrayViewMut2<F>,
    ) {
        let (zero, one) = (F::zero(), F::one());
        match self {
            Activation::Relu => Zip::from(&mut grad_z)
                .and(&z)
                .and(&grad_a)
                .for_each(|g, &z, &ga| *g = if z > zero { ga } else { zero }),
            Activation::LeakyRelu => {
                let leak = F::of(LEAK);
                Zip::from(&mut grad_z)
                    .and(&z)
                    .and(&grad_a)
                    .for_each(|g, &z, &ga| *g = if z > zero { ga } else { ga * leak })
            }
            Activation::Tanh => {
                Zip::from(&mut grad_z).and(&a).and(&grad_a).for_each(|g, &a, &ga| *g = ga * (one - a * a))
            }
            Activation::Sigmoid => {
                Zip::from(&mut grad_z).and(&a).and(&grad_a).for_each(|g, &a, &ga| *g = ga * a * (one - a))
            }
            Activation::Identity => grad_z.assign(&grad_a),
            Activation::Softmax => {
                // dL/dz_i = a_i (g_i - sum_j g_j a_j), row by row.
                for ((ar, gar), mut gzr) in
                    a.axis_iter(Axis(0)).zip(grad_a.axis_iter(Axis(0))).zip(grad_z.axis_iter_mut(Axis(0)))
                {
                    let dot = Zip::from(&ar).and(&gar).fold(zero, |s, &a, &g| s + a * g);
                    Zip::from(&mut gzr).and(&ar).and(&gar).for_each(|gz, &a, &g| *gz = a * (g - dot));
                }
            }
        }
    }
}
