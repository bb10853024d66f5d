//! Global average pooling: each channel's mean, C x H x W to a vector of C.

use serde::{Deserialize, Serialize};

use super::{Layer, need_image};
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
        let (c, _, _) = need_image(input)?;
        Ok(Shape::Vector(c))
    }
}
