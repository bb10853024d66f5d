//! Embedding: token ids in, one learned vector of `dim` values per id out (`Tokens { steps,
//! vocab }` to `Sequence { steps, features: dim }`), a table of vocab x dim. A step's gradient
//! touches only the rows of the ids it saw, so threshold sharing sends nothing for the rest.

use serde::{Deserialize, Serialize};

use super::{Layer, ParamDecl, Role};
use crate::nn::Shape;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedding {
    /// Values per token.
    pub dim: usize,
}

impl Layer for Embedding {
    fn kind(&self) -> &'static str {
        "embedding"
    }
    fn describe(&self) -> String {
        format!("embedding {}", self.dim)
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Tokens { steps, .. } => Ok(Shape::Sequence { steps, features: self.dim }),
            other => Err(format!("reads token ids (a text source's input), not {other}")),
        }
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let vocab = match input {
            Shape::Tokens { vocab, .. } => vocab,
            _ => 0,
        };
        // Fans of `dim` both ways: He gives rows of about unit length (variance 2/dim).
        vec![ParamDecl {
            fan_in: self.dim,
            fan_out: self.dim,
            ..ParamDecl::new("weight", vec![vocab, self.dim], Role::Table)
        }]
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        if !(1..=65_536).contains(&self.dim) {
            e.push(("dim", format!("must be 1..=65536 (got {})", self.dim)));
        }
        e
    }
    fn reads_tokens(&self) -> bool {
        true
    }
}
