//! 1-D convolution over a sequence of T steps of F features: `filters` kernels of `kernel`
//! steps x F features (taps `dilation` steps apart), moved `stride` steps at a time, a bias
//! per filter, then the activation. Out: a sequence of `filters` features. Weights are saved
//! as [kernel, features, filters]. On sequences of several lengths a step past a sequence's
//! end is zero (the next convolution reads zeros there, as its padding).

use serde::{Deserialize, Serialize};

use super::window::Padding;
use super::{Layer, ParamDecl, Role, check_elementwise};
use crate::nn::{Activation, Shape};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv1d {
    pub filters: usize,
    pub kernel: usize,
    #[serde(default = "one")]
    pub stride: usize,
    #[serde(default = "one")]
    pub dilation: usize,
    #[serde(default)]
    pub padding: Padding,
    #[serde(default = "super::relu")]
    pub activation: Activation,
}

fn one() -> usize {
    1
}

/// Where a 1-D window runs over `steps` steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub steps: usize,
    pub out_steps: usize,
    /// Zeros before the first step.
    pub pad: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    /// `same` padding (the sequence's own output is ceil(len / stride) steps).
    pub same: bool,
}

impl Span {
    /// The output steps of a sequence of `len` steps, as if it ran alone (the rest are past
    /// its end).
    pub fn out_len(&self, len: usize) -> usize {
        let reach = (self.kernel - 1) * self.dilation + 1;
        let n = if self.same {
            len.div_ceil(self.stride)
        } else {
            let padded = len + 2 * self.pad;
            if padded < reach { 0 } else { (padded - reach) / self.stride + 1 }
        };
        n.min(self.out_steps)
    }
}

impl Conv1d {
    /// The window over `input`'s steps.
    pub fn span(&self, input: Shape) -> Result<Span, String> {
        let Shape::Sequence { steps, .. } = input else {
            return Err(format!("reads a sequence (steps x features), not {input}"));
        };
        let (k, s, d) = (self.kernel, self.stride, self.dilation);
        let reach = (k - 1) * d + 1;
        let (out_steps, pad) = match self.padding {
            Padding::Valid if steps < reach => {
                return Err(format!(
                    "input {input}: a kernel of {k} taps {d} apart spans {reach} steps, more than {steps}"
                ));
            }
            Padding::Valid => ((steps - reach) / s + 1, 0),
            Padding::Same => {
                let out = steps.div_ceil(s);
                let total = ((out - 1) * s + reach).saturating_sub(steps);
                (out, total / 2)
            }
            Padding::Explicit(p) => {
                let padded = steps + 2 * p.0;
                if padded < reach {
                    return Err(format!(
                        "input {input} padded by {} spans fewer than the kernel's {reach} steps",
                        p.0
                    ));
                }
                ((padded - reach) / s + 1, p.0)
            }
        };
        Ok(Span {
            steps,
            out_steps,
            pad,
            kernel: k,
            stride: s,
            dilation: d,
            same: self.padding == Padding::Same,
        })
    }
}

impl Layer for Conv1d {
    fn kind(&self) -> &'static str {
        "conv1d"
    }
    fn describe(&self) -> String {
        let mut extra = String::new();
        if self.stride != 1 {
            extra += &format!(" stride {}", self.stride);
        }
        if self.dilation != 1 {
            extra += &format!(" dilation {}", self.dilation);
        }
        format!("conv1d {} {} {}{extra} {}", self.kernel, self.filters, self.padding, self.activation.name())
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let span = self.span(input)?;
        Ok(Shape::Sequence { steps: span.out_steps, features: self.filters })
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let f = input.per_step();
        vec![
            ParamDecl {
                fan_in: self.kernel * f,
                fan_out: self.kernel * self.filters,
                ..ParamDecl::new("weight", vec![self.kernel, f, self.filters], Role::Weight)
            },
            ParamDecl::new("bias", vec![self.filters], Role::Bias),
        ]
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        if !(1..=65_536).contains(&self.filters) {
            e.push(("filters", format!("must be 1..=65536 (got {})", self.filters)));
        }
        for (key, v) in [("kernel", self.kernel), ("stride", self.stride), ("dilation", self.dilation)] {
            if !(1..=1024).contains(&v) {
                e.push((key, format!("must be 1..=1024 (got {v})")));
            }
        }
        if let Padding::Explicit(p) = self.padding
            && p.0 != p.1
        {
            e.push((
                "padding",
                format!("a sequence is padded the same at both ends: one number (got [{}, {}])", p.0, p.1),
            ));
        }
        check_elementwise(self.activation, &mut e);
        e
    }
    fn activation(&self) -> Option<Activation> {
        Some(self.activation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(kernel: usize, stride: usize, dilation: usize, padding: Padding) -> Conv1d {
        Conv1d { filters: 4, kernel, stride, dilation, padding, activation: Activation::Relu }
    }

    #[test]
    fn spans_of_same_valid_strided_and_dilated_windows() {
        let seq = Shape::Sequence { steps: 10, features: 3 };
        let s = conv(3, 1, 1, Padding::Same).span(seq).unwrap();
        assert_eq!((s.out_steps, s.pad), (10, 1));
        assert_eq!((s.out_len(10), s.out_len(4)), (10, 4));
        let s = conv(3, 1, 2, Padding::Valid).span(seq).unwrap();
        assert_eq!((s.out_steps, s.pad), (6, 0), "5 steps reached, 10 - 5 + 1 windows");
        assert_eq!(s.out_len(7), 3);
        let s = conv(4, 2, 1, Padding::Same).span(seq).unwrap();
        assert_eq!(s.out_steps, 5);
        assert_eq!(
            conv(3, 1, 1, Padding::Same).output_shape(seq).unwrap(),
            Shape::Sequence { steps: 10, features: 4 }
        );
        let e = conv(6, 1, 2, Padding::Valid).span(seq).unwrap_err();
        assert!(e.contains("spans 11 steps, more than 10"), "{e}");
        let e = conv(3, 1, 1, Padding::Same).span(Shape::Vector(3)).unwrap_err();
        assert!(e.contains("reads a sequence"), "{e}");
    }
}
