//! The shape of one example as it flows through the network: a vector (tabular rows, dense
//! layers) or an image of C channels, H rows and W columns (channel-major, as IDX images are
//! stored and convolutions read them).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<usize>", try_from = "Vec<usize>")]
pub enum Shape {
    Vector(usize),
    Image { c: usize, h: usize, w: usize },
}

impl Shape {
    pub fn image(c: usize, h: usize, w: usize) -> Shape {
        Shape::Image { c, h, w }
    }

    /// Values per example.
    pub fn size(self) -> usize {
        match self {
            Shape::Vector(n) => n,
            Shape::Image { c, h, w } => c * h * w,
        }
    }

    /// (channels, height, width) of an image.
    pub fn as_image(self) -> Option<(usize, usize, usize)> {
        match self {
            Shape::Image { c, h, w } => Some((c, h, w)),
            Shape::Vector(_) => None,
        }
    }

    /// The vector of the same values (what `flatten` and dense layers see).
    pub fn flat(self) -> Shape {
        Shape::Vector(self.size())
    }

    /// Whether a network built for `self` can read examples of shape `data`: the same shape,
    /// or a vector input of the same size (models saved before shapes travelled with data).
    pub fn accepts(self, data: Shape) -> bool {
        self == data || matches!(self, Shape::Vector(n) if n == data.size())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Vector(n) => write!(f, "{n}"),
            Shape::Image { c, h, w } => write!(f, "{c}x{h}x{w}"),
        }
    }
}

impl From<Shape> for Vec<usize> {
    fn from(s: Shape) -> Vec<usize> {
        match s {
            Shape::Vector(n) => vec![n],
            Shape::Image { c, h, w } => vec![c, h, w],
        }
    }
}

impl TryFrom<Vec<usize>> for Shape {
    type Error = String;
    fn try_from(v: Vec<usize>) -> Result<Shape, String> {
        let shape = match v[..] {
            [n] => Shape::Vector(n),
            [c, h, w] => Shape::Image { c, h, w },
            _ => return Err(format!("a shape is [n] or [channels, height, width], not {v:?}")),
        };
        if shape.size() == 0 {
            return Err(format!("shape {v:?} has no values"));
        }
        Ok(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_display_and_serde() {
        let img = Shape::image(1, 28, 28);
        assert_eq!(img.size(), 784);
        assert_eq!(img.to_string(), "1x28x28");
        assert_eq!(serde_json::to_string(&img).unwrap(), "[1,28,28]");
        assert_eq!(serde_json::from_str::<Shape>("[13]").unwrap(), Shape::Vector(13));
        assert!(serde_json::from_str::<Shape>("[1,2]").is_err());
        assert!(serde_json::from_str::<Shape>("[0]").is_err());
        assert!(Shape::Vector(784).accepts(img));
        assert!(!img.accepts(Shape::Vector(784)));
    }
}
