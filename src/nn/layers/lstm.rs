//! LSTM (Hochreiter and Schmidhuber 1997, with a forget gate): over a sequence of F features,
//! `units` cells per step; gates in the order input, forget, cell, output; the forget gate's
//! bias starts at 1 (Jozefowicz et al. 2015; DL4J's `forgetGateBiasInit`). Out: the sequence of
//! hidden states, or only the last step's (`return_sequences = false`).

use serde::{Deserialize, Serialize};

use super::{Layer, ParamDecl, Role};
use crate::nn::Shape;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lstm {
    pub units: usize,
    #[serde(default = "yes")]
    pub return_sequences: bool,
}

fn yes() -> bool {
    true
}

impl Layer for Lstm {
    fn kind(&self) -> &'static str {
        "lstm"
    }
    fn describe(&self) -> String {
        if self.return_sequences {
            format!("lstm {}", self.units)
        } else {
            format!("lstm {} last", self.units)
        }
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
                ..ParamDecl::new("input_weight", vec![f, 4 * h], Role::Weight)
            },
            ParamDecl {
                fan_in: h,
                fan_out: h,
                ..ParamDecl::new("recurrent_weight", vec![h, 4 * h], Role::Weight)
            },
            ParamDecl::new("bias", vec![4 * h], Role::GateBias),
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
