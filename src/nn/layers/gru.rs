//! GRU (Cho et al. 2014), as PyTorch and cuDNN compute it: gates reset, update, new, with the
//! reset gate applied to the recurrent term after its product (`n = tanh(x W_n + b_n + r ·
//! (h W_hn + b_hn))`), `h' = (1 - z) · n + z · h`, input and recurrent biases both. Out: the
//! sequence of hidden states, or only the last step's (`return_sequences = false`).

use serde::{Deserialize, Serialize};

use super::{Layer, ParamDecl, Role};
use crate::nn::Shape;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gru {
    pub units: usize,
    #[serde(default = "yes")]
    pub return_sequences: bool,
}

fn yes() -> bool {
    true
}

impl Layer for Gru {
    fn kind(&self) -> &'static str {
        "gru"
    }
    fn describe(&self) -> String {
        if self.return_sequences { format!("gru {}", self.units) } else { format!("gru {} last", self.units) }
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Sequence { steps, .. } if self.return_sequences => {
                Ok(Shape::Sequence { steps, features: self.units })
            }
            Shape::Sequence { .. } => Ok(Shape::Vector(self.units)),
            other => Err(format!("reads a sequence (steps x features), not {other}")),
        }
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let (f, h) = (input.per_step(), self.units);
        vec![
            ParamDecl {
                fan_in: f,
                fan_out: h,
                ..ParamDecl::new("input_weight", vec![f, 3 * h], Role::Weight)
            },
            ParamDecl {
                fan_in: h,
                fan_out: h,
                ..ParamDecl::new("recurrent_weight", vec![h, 3 * h], Role::Weight)
            },
            ParamDecl::new("input_bias", vec![3 * h], Role::Bias),
            ParamDecl::new("recurrent_bias", vec![3 * h], Role::Bias),
        ]
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        if !(1..=16_384).contains(&self.units) {
            e.push(("units", format!("must be 1..=16384 (got {})", self.units)));
        }
        e
    }
}
