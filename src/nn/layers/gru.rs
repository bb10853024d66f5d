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
        super::recurrent_output(self.units, self.return_sequences, input)
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let mut p = super::recurrent_weights(input, self.units, 3);
        p.push(ParamDecl::new("input_bias", vec![3 * self.units], Role::Bias));
        p.push(ParamDecl::new("recurrent_bias", vec![3 * self.units], Role::Bias));
        p
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        super::check_units(self.units)
    }
}
