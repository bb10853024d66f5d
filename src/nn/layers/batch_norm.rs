//! Batch normalisation (Ioffe and Szegedy 2015) after a convolution (per channel, over the
//! batch and every pixel) or a dense layer (per feature, over the batch), then an optional
//! activation. Training normalises with the batch's statistics and moves the running mean and
//! variance toward them; evaluation uses the running statistics. The running statistics are
//! running state: never threshold-encoded, averaged across workers at epoch barriers.

use serde::{Deserialize, Serialize};

use super::{Layer, ParamDecl, Role, RunningDecl, check_elementwise, check_fraction};
use crate::nn::{Activation, Shape};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNorm {
    /// running = decay * running + (1 - decay) * batch statistic.
    #[serde(default = "decay")]
    pub decay: f32,
    #[serde(default = "epsilon")]
    pub epsilon: f32,
    #[serde(default = "identity")]
    pub activation: Activation,
}

fn decay() -> f32 {
    0.9
}
fn epsilon() -> f32 {
    1e-5
}
fn identity() -> Activation {
    Activation::Identity
}

impl Default for BatchNorm {
    fn default() -> Self {
        BatchNorm { decay: decay(), epsilon: epsilon(), activation: identity() }
    }
}

/// Normalised groups (channels or features) and values per group per example.
pub fn groups(input: Shape) -> (usize, usize) {
    match input {
        Shape::Image { c, h, w } => (c, h * w),
        // Sequences are refused by `output_shape`; as values they would be a vector.
        other => (other.size(), 1),
    }
}

impl Layer for BatchNorm {
    fn kind(&self) -> &'static str {
        "batch_norm"
    }
    fn describe(&self) -> String {
        match self.activation {
            Activation::Identity => "batch_norm".into(),
            a => format!("batch_norm {}", a.name()),
        }
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        if input.is_sequence() {
            return Err(format!("takes an image or a vector, not the sequence {input}"));
        }
        Ok(input)
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let (g, _) = groups(input);
        vec![ParamDecl::new("scale", vec![g], Role::Scale), ParamDecl::new("shift", vec![g], Role::Shift)]
    }
    fn running(&self, input: Shape) -> Vec<RunningDecl> {
        let (g, _) = groups(input);
        vec![
            RunningDecl { name: "running_mean", len: g, init: 0.0 },
            RunningDecl { name: "running_var", len: g, init: 1.0 },
        ]
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        check_fraction("decay", self.decay, &mut e);
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            e.push(("epsilon", format!("must be positive (got {})", self.epsilon)));
        }
        check_elementwise(self.activation, &mut e);
        e
    }
    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }
}
