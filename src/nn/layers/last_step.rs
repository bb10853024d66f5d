//! The last step of a sequence (the last it has, on sequences of several lengths): T x F to F.
//! What a recurrent layer with `return_sequences = false` gives, for any sequence layer.

use serde::{Deserialize, Serialize};

use super::Layer;
use crate::nn::Shape;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastStep {}

impl Layer for LastStep {
    fn kind(&self) -> &'static str {
        "last_step"
    }
    fn describe(&self) -> String {
        "last_step".into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Sequence { features, .. } => Ok(Shape::Vector(features)),
            other => Err(format!("takes a sequence's last step (steps x features), not {other}")),
        }
    }
}
