//! Global max pooling over time: each feature's largest value over a sequence's steps (only the
//! steps it has), T x F to F.

use serde::{Deserialize, Serialize};

use super::Layer;
use crate::nn::Shape;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalMaxPool {}

impl Layer for GlobalMaxPool {
    fn kind(&self) -> &'static str {
        "global_max_pool"
    }
    fn describe(&self) -> String {
        "global_max_pool".into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Sequence { features, .. } => Ok(Shape::Vector(features)),
            other => Err(format!(
                "pools a sequence (steps x features) over time, not {other} (images: max_pool2d)"
            )),
        }
    }
}
