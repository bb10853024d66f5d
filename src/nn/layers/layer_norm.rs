//! Layer normalisation (Ba et al. 2016): each step of a sequence (or each vector) normalised
//! over its own features, then scaled and shifted per feature. Unlike batch norm it keeps no
//! running state and computes the same in training and evaluation.

use serde::{Deserialize, Serialize};

use super::{Layer, ParamDecl, Role};
use crate::nn::Shape;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerNorm {
    #[serde(default = "epsilon")]
    pub epsilon: f32,
}

fn epsilon() -> f32 {
    1e-5
}

impl Default for LayerNorm {
    fn default() -> Self {
        LayerNorm { epsilon: epsilon() }
    }
}

impl Layer for LayerNorm {
    fn kind(&self) -> &'static str {
        "layer_norm"
    }
    fn describe(&self) -> String {
        "layer_norm".into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Sequence { .. } | Shape::Vector(_) => Ok(input),
            other => {
                Err(format!("normalises the features of a vector or of each step of a sequence, not {other}"))
            }
        }
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let f = input.per_step();
        vec![ParamDecl::new("scale", vec![f], Role::Scale), ParamDecl::new("shift", vec![f], Role::Shift)]
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        if self.epsilon.is_finite() && self.epsilon > 0.0 {
            Vec::new()
        } else {
            vec![("epsilon", format!("must be positive (got {})", self.epsilon))]
        }
    }
}
