//! `[model]`: the network, a preset or explicit layers.

use serde::{Deserialize, Serialize};

use super::{Activation, HiddenLayer, Init, LayerEntry, LayerSpec, Loss, Padding};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPreset {
    /// Dense layers of `model.hidden` widths.
    Mlp,
    /// conv 3x3 32 same, max-pool 2, conv 3x3 64 same, max-pool 2, dense 128 (about 420k
    /// parameters on 28x28 images).
    Cnn,
    /// LeNet-5: conv 5x5 6 same, max-pool 2, conv 5x5 16 valid, max-pool 2, dense 120, dense 84.
    Lenet5,
}

impl ModelPreset {
    pub fn name(self) -> &'static str {
        match self {
            ModelPreset::Mlp => "mlp",
            ModelPreset::Cnn => "cnn",
            ModelPreset::Lenet5 => "lenet5",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    pub preset: ModelPreset,
    /// Hidden layer widths of the MLP preset.
    pub hidden: Vec<usize>,
    /// Activation of the preset's hidden layers.
    pub activation: Activation,
    /// Dropout probability after each of the preset's hidden dense layers.
    pub dropout: f32,
    /// Explicit hidden layers (`[[model.layers]]` with a `type` key each); when set, the preset,
    /// `hidden`, `activation` and `dropout` are ignored. The output layer is always added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerEntry>>,
    pub loss: Loss,
    pub init: Init,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            preset: ModelPreset::Mlp,
            hidden: vec![256, 128],
            activation: Activation::Relu,
            dropout: 0.0,
            layers: None,
            loss: Loss::Xent,
            init: Init::He,
        }
    }
}

impl ModelSpec {
    /// The hidden layers, whichever way they were given (the output layer comes after them).
    pub fn layers(&self) -> Vec<LayerSpec> {
        let mut out = Vec::new();
        if let Some(entries) = &self.layers {
            entries.iter().for_each(|e| e.expand(&mut out));
            return out;
        }
        let act = self.activation;
        let dense = |units: usize, out: &mut Vec<LayerSpec>| {
            LayerEntry::Hidden(HiddenLayer { units, activation: act, dropout: self.dropout }).expand(out)
        };
        match self.preset {
            ModelPreset::Mlp => self.hidden.iter().for_each(|&u| dense(u, &mut out)),
            ModelPreset::Cnn => {
                out.extend([
                    LayerSpec::conv(32, 3, Padding::Same, act),
                    LayerSpec::max_pool(2),
                    LayerSpec::conv(64, 3, Padding::Same, act),
                    LayerSpec::max_pool(2),
                ]);
                dense(128, &mut out);
            }
            ModelPreset::Lenet5 => {
                out.extend([
                    LayerSpec::conv(6, 5, Padding::Same, act),
                    LayerSpec::max_pool(2),
                    LayerSpec::conv(16, 5, Padding::Valid, act),
                    LayerSpec::max_pool(2),
                ]);
                dense(120, &mut out);
                dense(84, &mut out);
            }
        }
        out
    }

    /// The output activation that goes with the loss.
    pub fn output_activation(&self) -> Activation {
        match self.loss {
            Loss::Xent => Activation::Softmax,
            Loss::Mse => Activation::Identity,
        }
    }
}
