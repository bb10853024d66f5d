//! 2-D convolution over C x H x W inputs: `filters` kernels of C x kh x kw, a bias per filter,
//! then the activation. Weights are saved as [filters, channels, kh, kw].

use serde::{Deserialize, Serialize};

use super::window::{self, Padding, Pair, Window};
use super::{Layer, ParamDecl, Role, check_elementwise, need_image};
use crate::nn::{Activation, Shape};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2d {
    pub filters: usize,
    pub kernel: Pair,
    #[serde(default = "one")]
    pub stride: Pair,
    #[serde(default)]
    pub padding: Padding,
    #[serde(default = "super::relu")]
    pub activation: Activation,
}

fn one() -> Pair {
    Pair(1, 1)
}

impl Conv2d {
    /// The window over an input of `h` x `w`.
    pub fn window(&self, input: Shape) -> Result<Window, String> {
        let (_, h, w) = need_image(input)?;
        Window::resolve(self.kernel, self.stride, self.padding, h, w)
            .map_err(|why| format!("input {input} {why}"))
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }
    fn describe(&self) -> String {
        let stride = if self.stride == one() { String::new() } else { format!(" stride {}", self.stride) };
        format!("conv2d {} {} {}{stride} {}", self.kernel, self.filters, self.padding, self.activation.name())
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let w = self.window(input)?;
        Ok(Shape::image(self.filters, w.oh, w.ow))
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let c = input.as_image().map(|(c, _, _)| c).unwrap_or(1);
        let area = self.kernel.0 * self.kernel.1;
        vec![
            ParamDecl {
                fan_in: c * area,
                fan_out: self.filters * area,
                ..ParamDecl::new("weight", vec![self.filters, c, self.kernel.0, self.kernel.1], Role::Weight)
            },
            ParamDecl::new("bias", vec![self.filters], Role::Bias),
        ]
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        if !(1..=65_536).contains(&self.filters) {
            e.push(("filters", format!("must be 1..=65536 (got {})", self.filters)));
        }
        window::check(self.kernel, self.stride, self.padding, &mut e);
        check_elementwise(self.activation, &mut e);
        e
    }
    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }
}
