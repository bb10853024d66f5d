//! Concat: inputs joined along channels (images of one height and width) or features (vectors).
//! Each example's values are channel-major, so either way an example's output is its inputs'
//! values one after the other. No parameters.

use serde::{Deserialize, Serialize};

use super::Layer;
use crate::nn::Shape;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concat {}

impl Layer for Concat {
    fn kind(&self) -> &'static str {
        "concat"
    }
    fn describe(&self) -> String {
        "concat".into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(input)
    }
    fn merge_shape(&self, inputs: &[(String, Shape)]) -> Result<Shape, String> {
        let (first_name, first) = &inputs[0];
        match first.as_image() {
            Some((_, h, w)) => {
                let mut channels = 0;
                for (name, shape) in inputs {
                    match shape.as_image() {
                        Some((c, hh, ww)) if (hh, ww) == (h, w) => channels += c,
                        _ => {
                            return Err(format!(
                                "inputs: concat joins images of one height and width along channels; \
                                 '{first_name}' is {first} and '{name}' is {shape}"
                            ));
                        }
                    }
                }
                Ok(Shape::image(channels, h, w))
            }
            None => {
                for (name, shape) in inputs {
                    if shape.is_sequence() {
                        return Err(format!(
                            "inputs: concat joins vectors or images; '{name}' is the sequence {shape} \
                             (joining sequences step by step is not supported yet)"
                        ));
                    }
                    if shape.as_image().is_some() {
                        return Err(format!(
                            "inputs: concat joins vectors or images, not both; '{first_name}' is {first} \
                             and '{name}' is {shape}"
                        ));
                    }
                }
                Ok(Shape::Vector(inputs.iter().map(|(_, s)| s.size()).sum()))
            }
        }
    }
    fn merges(&self) -> bool {
        true
    }
}
