//! Multi-head self-attention (Vaswani et al. 2017) over a sequence of `F` features: queries,
//! keys and values from one projection (F x 3F), per head `softmax(Q Kᵀ / √d) V` with d =
//! F / heads, optionally causal (a step attends to itself and earlier steps only, as a
//! language model needs), then an output projection (F x F). Out: the same T x F shape. With
//! `dropout`, attention weights are dropped (inverted dropout) while training.

use serde::{Deserialize, Serialize};

use super::{Layer, ParamDecl, Role};
use crate::nn::Shape;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfAttention {
    pub heads: usize,
    #[serde(default = "yes")]
    pub causal: bool,
    /// Dropout of the attention weights while training.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropout: f32,
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

fn yes() -> bool {
    true
}

impl Layer for SelfAttention {
    fn kind(&self) -> &'static str {
        "self_attention"
    }
    fn describe(&self) -> String {
        let dropout = if self.dropout > 0.0 { format!(" dropout {}", self.dropout) } else { String::new() };
        format!("self_attention {} heads{}{dropout}", self.heads, if self.causal { " causal" } else { "" })
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Sequence { features, .. } if features % self.heads.max(1) == 0 => Ok(input),
            Shape::Sequence { features, .. } => {
                Err(format!("heads: {} heads do not divide the {features} features of each step", self.heads))
            }
            other => Err(format!("reads a sequence (steps x features), not {other}")),
        }
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let f = input.per_step();
        vec![
            ParamDecl { fan_in: f, fan_out: f, ..ParamDecl::new("qkv_weight", vec![f, 3 * f], Role::Weight) },
            ParamDecl::new("qkv_bias", vec![3 * f], Role::Bias),
            ParamDecl { fan_in: f, fan_out: f, ..ParamDecl::new("output_weight", vec![f, f], Role::Weight) },
            ParamDecl::new("output_bias", vec![f], Role::Bias),
        ]
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        if !(1..=256).contains(&self.heads) {
            e.push(("heads", format!("must be 1..=256 (got {})", self.heads)));
        }
        super::check_fraction("dropout", self.dropout, &mut e);
        e
    }
}
