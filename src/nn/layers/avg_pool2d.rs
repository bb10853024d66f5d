//! Average pooling over each channel's windows; padded cells are not counted.

use serde::{Deserialize, Serialize};

use super::Layer;
use super::max_pool2d::{pool_check, pool_describe, pool_window};
use super::window::{Padding, Pair, Window};
use crate::nn::Shape;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvgPool2d {
    pub kernel: Pair,
    /// Default: the kernel (windows side by side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<Pair>,
    #[serde(default)]
    pub padding: Padding,
}

impl AvgPool2d {
    pub fn window(&self, input: Shape) -> Result<Window, String> {
        pool_window(self.kernel, self.stride, self.padding, input)
    }
}

impl Layer for AvgPool2d {
    fn kind(&self) -> &'static str {
        "avg_pool2d"
    }
    fn describe(&self) -> String {
        pool_describe("avg_pool2d", self.kernel, self.stride, self.padding)
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let w = self.window(input)?;
        Ok(Shape::image(input.as_image().map(|i| i.0).unwrap_or(1), w.oh, w.ow))
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        pool_check(self.kernel, self.stride, self.padding)
    }
}
