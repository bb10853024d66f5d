//! The shape of one example as it flows through the network: a vector (tabular rows, dense
//! layers), an image of C channels, H rows and W columns (channel-major, as IDX images are
//! stored and convolutions read them), a sequence of T steps of F features (step-major: the F
//! values of step 0, then step 1, ...) or T token ids (text, before an embedding).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Repr", try_from = "Repr")]
pub enum Shape {
    Vector(usize),
    Image {
        c: usize,
        h: usize,
        w: usize,
    },
    /// `steps` steps of `features` values each.
    Sequence {
        steps: usize,
        features: usize,
    },
    /// `steps` token ids below `vocab` (held as values; an embedding turns them into a
    /// sequence).
    Tokens {
        steps: usize,
        vocab: usize,
    },
}

/// How a shape is written in model files: `[n]`, `[c, h, w]`, `[steps, features]` or
/// `{"tokens": steps, "vocab": ids}`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Dims(Vec<usize>),
    Tokens { tokens: usize, vocab: usize },
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
            Shape::Sequence { steps, features } => steps * features,
            Shape::Tokens { steps, .. } => steps,
        }
    }

    /// Steps of a sequence (of features or tokens); 1 for a vector or an image.
    pub fn steps(self) -> usize {
        match self {
            Shape::Sequence { steps, .. } | Shape::Tokens { steps, .. } => steps,
            Shape::Vector(_) | Shape::Image { .. } => 1,
        }
    }

    /// Values per step: a sequence's features (1 per token id); the whole example otherwise.
    /// A per-step output layer predicts this many classes or values at every step.
    pub fn per_step(self) -> usize {
        match self {
            Shape::Sequence { features, .. } => features,
            Shape::Tokens { .. } => 1,
            other => other.size(),
        }
    }

    /// Whether examples are sequences (of features or of token ids).
    pub fn is_sequence(self) -> bool {
        matches!(self, Shape::Sequence { .. } | Shape::Tokens { .. })
    }

    /// (channels, height, width) of an image.
    pub fn as_image(self) -> Option<(usize, usize, usize)> {
        match self {
            Shape::Image { c, h, w } => Some((c, h, w)),
            Shape::Vector(_) | Shape::Sequence { .. } | Shape::Tokens { .. } => None,
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
            Shape::Sequence { steps, features } => write!(f, "{steps}x{features}"),
            Shape::Tokens { steps, vocab } => write!(f, "{steps} ids<{vocab}"),
        }
    }
}

impl From<Shape> for Repr {
    fn from(s: Shape) -> Repr {
        match s {
            Shape::Vector(n) => Repr::Dims(vec![n]),
            Shape::Image { c, h, w } => Repr::Dims(vec![c, h, w]),
            Shape::Sequence { steps, features } => Repr::Dims(vec![steps, features]),
            Shape::Tokens { steps, vocab } => Repr::Tokens { tokens: steps, vocab },
        }
    }
}

impl TryFrom<Repr> for Shape {
    type Error = String;
    fn try_from(r: Repr) -> Result<Shape, String> {
        let v = match r {
            Repr::Dims(v) => v,
            Repr::Tokens { tokens: 0, .. } | Repr::Tokens { vocab: 0, .. } => {
                return Err("a token sequence needs at least one step and one id".into());
            }
            Repr::Tokens { tokens, vocab } => return Ok(Shape::Tokens { steps: tokens, vocab }),
        };
        let shape = match v[..] {
            [n] => Shape::Vector(n),
            [steps, features] => Shape::Sequence { steps, features },
            [c, h, w] => Shape::Image { c, h, w },
            _ => {
                return Err(format!(
                    "a shape is [n], [steps, features] or [channels, height, width], not {v:?}"
                ));
            }
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
        let seq = Shape::Sequence { steps: 64, features: 128 };
        assert_eq!(
            (seq.size(), seq.steps(), seq.per_step(), seq.to_string()),
            (8192, 64, 128, "64x128".into())
        );
        assert_eq!(serde_json::to_string(&seq).unwrap(), "[64,128]");
        let ids = Shape::Tokens { steps: 64, vocab: 65 };
        assert_eq!((ids.size(), ids.per_step(), ids.to_string()), (64, 1, "64 ids<65".into()));
        assert_eq!(serde_json::to_string(&ids).unwrap(), r#"{"tokens":64,"vocab":65}"#);
        assert_eq!(serde_json::from_str::<Shape>(r#"{"tokens":64,"vocab":65}"#).unwrap(), ids);
        assert_eq!(
            serde_json::from_str::<Shape>("[1,2]").unwrap(),
            Shape::Sequence { steps: 1, features: 2 }
        );
        assert!(serde_json::from_str::<Shape>(r#"{"tokens":0,"vocab":3}"#).is_err());
        assert!(serde_json::from_str::<Shape>("[1,2,3,4]").is_err());
        assert!(serde_json::from_str::<Shape>("[0]").is_err());
        assert!(Shape::Vector(784).accepts(img));
        assert!(!img.accepts(Shape::Vector(784)));
    }
}
