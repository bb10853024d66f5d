//! Global average pooling: each channel's mean (C x H x W to a vector of C), or each feature's
//! mean over a sequence's steps (T x F to F; only the steps a sequence has).

use serde::{Deserialize, Serialize};

use super::Layer;
use crate::nn::Shape;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalAvgPool {}

impl Layer for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "global_avg_pool"
    }
    fn describe(&self) -> String {
        "global_avg_pool".into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Image { c, .. } => Ok(Shape::Vector(c)),
            Shape::Sequence { features, .. } => Ok(Shape::Vector(features)),
            other => Err(format!(
                "pools an image (channels x height x width) or a sequence (steps x features), not {other}"
            )),
        }
    }
}
