//! Max pooling over each channel's windows (padded cells never win).

use serde::{Deserialize, Serialize};

use super::window::{self, Padding, Pair, Window};
use super::{Layer, need_image};
use crate::nn::Shape;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPool2d {
    pub kernel: Pair,
    /// Default: the kernel (windows side by side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<Pair>,
    #[serde(default)]
    pub padding: Padding,
}

impl MaxPool2d {
    pub fn window(&self, input: Shape) -> Result<Window, String> {
        pool_window(self.kernel, self.stride, self.padding, input)
    }
}

/// The window of a pooling layer over `input` (shared with average pooling).
pub(super) fn pool_window(
    kernel: Pair,
    stride: Option<Pair>,
    padding: Padding,
    input: Shape,
) -> Result<Window, String> {
    let (_, h, w) = need_image(input)?;
    Window::resolve(kernel, stride.unwrap_or(kernel), padding, h, w)
        .map_err(|why| format!("input {input} {why}"))
}

pub(super) fn pool_describe(kind: &str, kernel: Pair, stride: Option<Pair>, padding: Padding) -> String {
    let mut s = format!("{kind} {kernel}");
    if let Some(st) = stride.filter(|&st| st != kernel) {
        s.push_str(&format!(" stride {st}"));
    }
    if padding != Padding::Valid {
        s.push_str(&format!(" {padding}"));
    }
    s
}

pub(super) fn pool_check(
    kernel: Pair,
    stride: Option<Pair>,
    padding: Padding,
) -> Vec<(&'static str, String)> {
    let mut e = Vec::new();
    window::check(kernel, stride.unwrap_or(kernel), padding, &mut e);
    e
}

impl Layer for MaxPool2d {
    fn kind(&self) -> &'static str {
        "max_pool2d"
    }
    fn describe(&self) -> String {
        pool_describe("max_pool2d", self.kernel, self.stride, self.padding)
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let w = self.window(input)?;
        Ok(Shape::image(input.as_image().map(|i| i.0).unwrap_or(1), w.oh, w.ow))
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        pool_check(self.kernel, self.stride, self.padding)
    }
}
