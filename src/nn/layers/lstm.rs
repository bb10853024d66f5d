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
        super::recurrent_output(self.units, self.return_sequences, input)
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let mut p = super::recurrent_weights(input, self.units, 4);
        p.push(ParamDecl::new("bias", vec![4 * self.units], Role::GateBias));
        p
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        super::check_units(self.units)
    }
}
