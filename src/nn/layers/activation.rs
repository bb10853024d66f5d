//! A standalone activation (after batch norm, say): `y = f(x)` element by element.

use serde::{Deserialize, Serialize};

use super::{Layer, check_elementwise};
use crate::nn::{Activation, Shape};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationLayer {
    pub activation: Activation,
}

impl Layer for ActivationLayer {
    fn kind(&self) -> &'static str {
        "activation"
    }
    fn describe(&self) -> String {
        self.activation.name().into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(input)
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        check_elementwise(self.activation, &mut e);
        e
    }
    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }
}
