//! Fully connected: `y = f(x W + b)` with `W` of shape inputs x units. A sequence is read step
//! by step (the same weights at every step, a sequence of `units` features out); any other
//! input shape as the vector of its values (an image is flattened channel by channel).

use serde::{Deserialize, Serialize};

use super::{Layer, ParamDecl, Role};
use crate::nn::{Activation, Shape};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    pub units: usize,
    #[serde(default = "super::relu")]
    pub activation: Activation,
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "dense"
    }
    fn describe(&self) -> String {
        format!("dense {} {}", self.units, self.activation.name())
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(match input {
            Shape::Sequence { steps, .. } => Shape::Sequence { steps, features: self.units },
            _ => Shape::Vector(self.units),
        })
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let n = if input.is_sequence() { input.per_step() } else { input.size() };
        vec![
            ParamDecl {
                fan_in: n,
                fan_out: self.units,
                ..ParamDecl::new("weight", vec![n, self.units], Role::Weight)
            },
            ParamDecl::new("bias", vec![self.units], Role::Bias),
        ]
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        if !(1..=65_536).contains(&self.units) {
            e.push(("units", format!("must be 1..=65536 (got {})", self.units)));
        }
        e
    }
    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }
}
