//! Losses. The gradient they start the backward pass with is computed by the backends'
//! loss kernels.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Softmax cross-entropy, mean over the batch. The output activation must be softmax.
    Xent,
    /// Mean squared error, mean over the batch and the outputs.
    Mse,
}

impl Loss {
    pub fn name(self) -> &'static str {
        match self {
            Loss::Xent => "xent",
            Loss::Mse => "mse",
        }
    }
}
