//! Dropout: while training, each value is zeroed with probability `rate` and the others scaled
//! by 1 / (1 - rate) (inverted dropout); evaluation passes values through.

use serde::{Deserialize, Serialize};

use super::{Layer, check_fraction};
use crate::nn::Shape;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dropout {
    pub rate: f32,
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "dropout"
    }
    fn describe(&self) -> String {
        format!("dropout {}", self.rate)
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(input)
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut e = Vec::new();
        check_fraction("rate", self.rate, &mut e);
        e
    }
}
