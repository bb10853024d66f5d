//! Element-wise activations and softmax: the functions and their derivatives, written in terms
//! of the activation's output `a` so a backward pass never needs the pre-activation. The
//! kernels that apply them to buffers live in the backends.

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
pub const LEAK: f64 = 0.01;

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

    /// `f(z)` of an element-wise activation (softmax works on rows: see the backends).
    #[inline(always)]
    pub fn apply<F: Real>(self, z: F) -> F {
        match self {
            Activation::Relu => {
                if z > F::zero() {
                    z
                } else {
                    F::zero()
                }
            }
            Activation::LeakyRelu => {
                if z > F::zero() {
                    z
                } else {
                    z * F::of(LEAK)
                }
            }
            Activation::Tanh => z.tanh(),
            Activation::Sigmoid => F::one() / (F::one() + (-z).exp()),
            Activation::Identity | Activation::Softmax => z,
        }
    }

    /// `f'(z)` from `a = f(z)` (element-wise activations).
    #[inline(always)]
    pub fn derivative<F: Real>(self, a: F) -> F {
        match self {
            Activation::Relu => {
                if a > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Activation::LeakyRelu => {
                if a > F::zero() {
                    F::one()
                } else {
                    F::of(LEAK)
                }
            }
            Activation::Tanh => F::one() - a * a,
            Activation::Sigmoid => a * (F::one() - a),
            Activation::Identity | Activation::Softmax => F::one(),
        }
    }
}
