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
    /// He et al.'s CIFAR ResNet-20: a 3x3 conv of 16 with batch norm, three stages of three
    /// basic blocks (16, 32, 64 filters; stride 2 and a 1x1 projection shortcut where a stage
    /// starts narrower), global average pooling.
    Resnet20,
    /// Deeplearning4j's character-modelling network: an embedding of 64, two LSTM layers of
    /// 200 (text).
    CharLstm,
    /// A pre-norm decoder-only transformer as nanoGPT's CPU configuration: 4 blocks, 4 heads,
    /// 128 dimensions (learned positions; relu in the MLP, not GELU) (text).
    Gpt,
}

impl ModelPreset {
    pub fn name(self) -> &'static str {
        match self {
            ModelPreset::Mlp => "mlp",
            ModelPreset::Cnn => "cnn",
            ModelPreset::Lenet5 => "lenet5",
            ModelPreset::Resnet20 => "resnet20",
            ModelPreset::CharLstm => "char_lstm",
            ModelPreset::Gpt => "gpt",
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
    /// The hidden layers as a graph: names and inputs where entries give them.
    pub fn graph(&self) -> Vec<crate::nn::GraphEntry> {
        let plain = |layer| crate::nn::GraphEntry { layer, name: None, inputs: None };
        let Some(entries) = &self.layers else {
            match self.preset {
                ModelPreset::Resnet20 => return resnet(&[16, 32, 64], 3, self.activation),
                ModelPreset::Gpt => return gpt(4, 4, 128),
                _ => {}
            }
            return self.layers().into_iter().map(plain).collect();
        };
        let mut out = Vec::new();
        for e in entries {
            match e {
                LayerEntry::Node { layer, name, inputs } => out.push(crate::nn::GraphEntry {
                    layer: layer.clone(),
                    name: name.clone(),
                    inputs: inputs.clone(),
                }),
                other => {
                    let mut specs = Vec::new();
                    other.expand(&mut specs);
                    out.extend(specs.into_iter().map(plain));
                }
            }
        }
        out
    }

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
            ModelPreset::Resnet20 => {
                out.extend(resnet(&[16, 32, 64], 3, act).into_iter().map(|e| e.layer));
            }
            ModelPreset::CharLstm => {
                use crate::nn::layers::{Embedding, Lstm};
                out.extend([
                    LayerSpec::Embedding(Embedding { dim: 64 }),
                    LayerSpec::Lstm(Lstm { units: 200, return_sequences: true }),
                    LayerSpec::Lstm(Lstm { units: 200, return_sequences: true }),
                ]);
            }
            ModelPreset::Gpt => out.extend(gpt(4, 4, 128).into_iter().map(|e| e.layer)),
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

/// A CIFAR-style residual network (He et al. 2016, section 4.2): a 3x3 convolution of
/// `widths[0]` filters with batch norm, then per width a stage of `blocks` basic blocks (two
/// 3x3 convolutions with batch norm, the block's input added before the last activation); a
/// stage that widens starts with stride 2 and a 1x1 projection shortcut; global average pooling
/// at the end. `resnet(&[16, 32, 64], 3, relu)` is ResNet-20.
pub fn resnet(widths: &[usize], blocks: usize, act: Activation) -> Vec<crate::nn::GraphEntry> {
    use crate::nn::GraphEntry;
    use crate::nn::layers::{ActivationLayer, Add, BatchNorm, Conv2d, GlobalAvgPool, Pair};
    let conv = |filters: usize, kernel: usize, stride: usize| {
        LayerSpec::Conv2d(Conv2d {
            filters,
            kernel: Pair::square(kernel),
            stride: Pair::square(stride),
            padding: Padding::Same,
            activation: Activation::Identity,
        })
    };
    let bn = |activation: Activation| LayerSpec::BatchNorm(BatchNorm { activation, ..BatchNorm::default() });
    let mut out: Vec<GraphEntry> = Vec::new();
    let mut push = |layer: LayerSpec, name: String, inputs: Option<Vec<String>>| {
        out.push(GraphEntry { layer, name: Some(name), inputs });
    };
    push(conv(widths[0], 3, 1), "stem".into(), None);
    push(bn(act), "stem_bn".into(), None);
    let mut prev = "stem_bn".to_string();
    let mut width = widths[0];
    for (s, &w) in widths.iter().enumerate() {
        for b in 0..blocks {
            let id = format!("s{}b{}", s + 1, b + 1);
            let stride = if b == 0 && w != width { 2 } else { 1 };
            push(conv(w, 3, stride), format!("{id}_conv1"), Some(vec![prev.clone()]));
            push(bn(act), format!("{id}_bn1"), None);
            push(conv(w, 3, 1), format!("{id}_conv2"), None);
            push(bn(Activation::Identity), format!("{id}_bn2"), None);
            let shortcut = if stride != 1 || w != width {
                push(conv(w, 1, stride), format!("{id}_proj"), Some(vec![prev.clone()]));
                push(bn(Activation::Identity), format!("{id}_proj_bn"), None);
                format!("{id}_proj_bn")
            } else {
                prev.clone()
            };
            push(LayerSpec::Add(Add {}), format!("{id}_add"), Some(vec![format!("{id}_bn2"), shortcut]));
            push(LayerSpec::Activation(ActivationLayer { activation: act }), format!("{id}_out"), None);
            prev = format!("{id}_out");
            width = w;
        }
    }
    push(LayerSpec::GlobalAvgPool(GlobalAvgPool {}), "pool".into(), None);
    out
}

/// A pre-norm decoder-only transformer (GPT-2's block order, nanoGPT's CPU sizes for
/// `gpt(4, 4, 128)`): token and learned position embeddings of `dim`, then `blocks` blocks of
/// `x + attention(layer_norm(x))` (causal, `heads` heads) and `x + mlp(layer_norm(x))` (dense
/// 4·dim relu, dense dim), a final layer norm. The output layer (a dense softmax over the
/// vocabulary at every step) is added as for any model.
pub fn gpt(blocks: usize, heads: usize, dim: usize) -> Vec<crate::nn::GraphEntry> {
    use crate::nn::GraphEntry;
    use crate::nn::layers::{Add, Embedding, LayerNorm, PositionalEmbedding, SelfAttention};
    let mut out: Vec<GraphEntry> = Vec::new();
    let mut push = |layer: LayerSpec, name: String, inputs: Option<Vec<String>>| {
        out.push(GraphEntry { layer, name: Some(name), inputs });
    };
    push(LayerSpec::Embedding(Embedding { dim }), "tokens".into(), None);
    push(LayerSpec::PositionalEmbedding(PositionalEmbedding {}), "positions".into(), None);
    let mut prev = "positions".to_string();
    for b in 1..=blocks {
        let id = format!("b{b}");
        push(LayerSpec::LayerNorm(LayerNorm::default()), format!("{id}_ln1"), Some(vec![prev.clone()]));
        push(
            LayerSpec::SelfAttention(SelfAttention { heads, causal: true, dropout: 0.0 }),
            format!("{id}_attention"),
            None,
        );
        push(
            LayerSpec::Add(Add {}),
            format!("{id}_res1"),
            Some(vec![prev.clone(), format!("{id}_attention")]),
        );
        push(LayerSpec::LayerNorm(LayerNorm::default()), format!("{id}_ln2"), None);
        push(LayerSpec::dense(4 * dim, Activation::Relu), format!("{id}_mlp1"), None);
        push(LayerSpec::dense(dim, Activation::Identity), format!("{id}_mlp2"), None);
        push(
            LayerSpec::Add(Add {}),
            format!("{id}_res2"),
            Some(vec![format!("{id}_res1"), format!("{id}_mlp2")]),
        );
        prev = format!("{id}_res2");
    }
    push(LayerSpec::LayerNorm(LayerNorm::default()), "ln_final".into(), None);
    out
}
