//! Add: the element-wise sum of two or more inputs of one shape (a residual connection). No
//! parameters.

use serde::{Deserialize, Serialize};

use super::Layer;
use crate::nn::Shape;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {}

impl Layer for Add {
    fn kind(&self) -> &'static str {
        "add"
    }
    fn describe(&self) -> String {
        "add".into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(input)
    }
    fn merge_shape(&self, inputs: &[(String, Shape)]) -> Result<Shape, String> {
        let (first_name, first) = &inputs[0];
        for (name, shape) in &inputs[1..] {
            if shape != first {
                return Err(format!(
                    "inputs: add needs inputs of one shape; '{first_name}' is {first} and '{name}' is {shape}"
                ));
            }
        }
        Ok(*first)
    }
    fn merges(&self) -> bool {
        true
    }
}
