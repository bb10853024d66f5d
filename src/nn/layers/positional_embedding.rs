//! Learned positional embedding: a vector per step added to a sequence (`y[t] = x[t] + P[t]`),
//! so that layers which treat steps alike (attention) can tell them apart. A table of steps x
//! features, no L2.

use serde::{Deserialize, Serialize};

use super::{Layer, ParamDecl, Role};
use crate::nn::Shape;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionalEmbedding {}

impl Layer for PositionalEmbedding {
    fn kind(&self) -> &'static str {
        "positional_embedding"
    }
    fn describe(&self) -> String {
        "positional_embedding".into()
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Sequence { .. } => Ok(input),
            other => Err(format!("adds a vector per step to a sequence, not to {other}")),
        }
    }
    fn params(&self, input: Shape) -> Vec<ParamDecl> {
        let (t, f) = (input.steps(), input.per_step());
        vec![ParamDecl { fan_in: f, fan_out: f, ..ParamDecl::new("table", vec![t, f], Role::Table) }]
    }
}
