//! Flatten: an image becomes the vector of its values (channel by channel); no arithmetic.
//! Dense layers flatten their input anyway; this layer makes it explicit in summaries.

use serde::{Deserialize, Serialize};

use super::Layer;
use crate::nn::Shape;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flatten {}

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "flatten"
    }
    fn describe(&self) -> String {
        "flatten".into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(input.flat())
    }
}
