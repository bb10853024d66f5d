//! Layer specifications, one file per layer type. A layer answers, from its input shape, three
//! questions: its output shape (or a shape error), the trainable parameters it owns (which live
//! in the one flat parameter buffer that sharing encodes) and the running state it keeps (a
//! second buffer, never encoded, averaged at epoch barriers). Kernels live in `backend/`.

mod activation;
mod add;
mod avg_pool2d;
mod batch_norm;
mod concat;
mod conv1d;
mod conv2d;
mod dense;
mod dropout;
mod embedding;
mod flatten;
mod global_avg_pool;
mod global_max_pool;
mod gru;
mod last_step;
mod layer_norm;
mod lstm;
mod max_pool2d;
mod positional_embedding;
mod self_attention;
pub mod window;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use activation::ActivationLayer;
pub use add::Add;
pub use avg_pool2d::AvgPool2d;
pub use batch_norm::{BatchNorm, groups as batch_norm_groups};
pub use concat::Concat;
pub use conv1d::{Conv1d, Span};
pub use conv2d::Conv2d;
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use global_avg_pool::GlobalAvgPool;
pub use global_max_pool::GlobalMaxPool;
pub use gru::Gru;
pub use last_step::LastStep;
pub use layer_norm::LayerNorm;
pub use lstm::Lstm;
pub use max_pool2d::MaxPool2d;
pub use positional_embedding::PositionalEmbedding;
pub use self_attention::SelfAttention;
pub use window::{Padding, Pair, Window};

use super::{Activation, Shape};

/// What a parameter tensor is for: initialisation and L2 follow the role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Initialised from the job's scheme with the declared fans; L2 applies.
    Weight,
    /// Zero at the start; no L2.
    Bias,
    /// Batch-norm scale: one at the start; no L2.
    Scale,
    /// Batch-norm shift: zero at the start; no L2.
    Shift,
    /// An embedding table: initialised as a weight with the declared fans; no L2, so the rows
    /// of ids a step did not see get no update (and threshold sharing sends nothing for them).
    Table,
    /// LSTM gate biases (input, forget, cell, output): the forget gate's 1, the others 0; no L2.
    GateBias,
}

/// A trainable tensor a layer declares.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    pub name: &'static str,
    /// Tensor dimensions, as saved in model files.
    pub dims: Vec<usize>,
    pub role: Role,
    /// For weights: inputs and outputs that each value connects (initialisation).
    pub fan_in: usize,
    pub fan_out: usize,
}

impl ParamDecl {
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn new(name: &'static str, dims: Vec<usize>, role: Role) -> ParamDecl {
        ParamDecl { name, dims, role, fan_in: 0, fan_out: 0 }
    }
}

/// A running-state tensor (batch-norm statistics).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningDecl {
    pub name: &'static str,
    pub len: usize,
    /// Value at the start.
    pub init: f32,
}

/// One layer type: shapes, parameters and running state from the input shape.
pub trait Layer {
    /// The `type` key of the job file.
    fn kind(&self) -> &'static str;
    /// A short description for summaries and errors: `conv2d 3x3 32 same relu`.
    fn describe(&self) -> String;
    /// The output shape for `input`, or why the layer cannot take it.
    fn output_shape(&self, input: Shape) -> Result<Shape, String>;
    fn params(&self, _input: Shape) -> Vec<ParamDecl> {
        Vec::new()
    }
    fn running(&self, _input: Shape) -> Vec<RunningDecl> {
        Vec::new()
    }
    /// Range checks of the layer's own keys, as (key, message).
    fn check(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// The layer's activation, for layers that end in one.
    fn activation(&self) -> Option<Activation> {
        None
    }
    /// Whether the layer reads token ids (`embedding`); every other layer refuses them.
    fn reads_tokens(&self) -> bool {
        false
    }
    /// Whether the layer joins several inputs (`add`, `concat`); others take exactly one.
    fn merges(&self) -> bool {
        false
    }
    /// A merging layer's output shape for its named inputs (two or more).
    fn merge_shape(&self, inputs: &[(String, Shape)]) -> Result<Shape, String> {
        self.output_shape(inputs[0].1)
    }
}

/// A layer as written in a job file (`[[model.layers]]` with a `type` key) or a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    Dense(Dense),
    Conv2d(Conv2d),
    MaxPool2d(MaxPool2d),
    AvgPool2d(AvgPool2d),
    GlobalAvgPool(GlobalAvgPool),
    BatchNorm(BatchNorm),
    Dropout(Dropout),
    Flatten(Flatten),
    Activation(ActivationLayer),
    Add(Add),
    Concat(Concat),
    Embedding(Embedding),
    Lstm(Lstm),
    Gru(Gru),
    LayerNorm(LayerNorm),
    PositionalEmbedding(PositionalEmbedding),
    SelfAttention(SelfAttention),
    Conv1d(Conv1d),
    GlobalMaxPool(GlobalMaxPool),
    LastStep(LastStep),
}

impl LayerSpec {
    pub fn layer(&self) -> &dyn Layer {
        match self {
            LayerSpec::Dense(l) => l,
            LayerSpec::Conv2d(l) => l,
            LayerSpec::MaxPool2d(l) => l,
            LayerSpec::AvgPool2d(l) => l,
            LayerSpec::GlobalAvgPool(l) => l,
            LayerSpec::BatchNorm(l) => l,
            LayerSpec::Dropout(l) => l,
            LayerSpec::Flatten(l) => l,
            LayerSpec::Activation(l) => l,
            LayerSpec::Add(l) => l,
            LayerSpec::Concat(l) => l,
            LayerSpec::Embedding(l) => l,
            LayerSpec::Lstm(l) => l,
            LayerSpec::Gru(l) => l,
            LayerSpec::LayerNorm(l) => l,
            LayerSpec::PositionalEmbedding(l) => l,
            LayerSpec::SelfAttention(l) => l,
            LayerSpec::Conv1d(l) => l,
            LayerSpec::GlobalMaxPool(l) => l,
            LayerSpec::LastStep(l) => l,
        }
    }

    pub fn dense(units: usize, activation: Activation) -> LayerSpec {
        LayerSpec::Dense(Dense { units, activation })
    }

    pub fn conv(filters: usize, kernel: usize, padding: Padding, activation: Activation) -> LayerSpec {
        LayerSpec::Conv2d(Conv2d {
            filters,
            kernel: Pair::square(kernel),
            stride: Pair::square(1),
            padding,
            activation,
        })
    }

    pub fn max_pool(size: usize) -> LayerSpec {
        LayerSpec::MaxPool2d(MaxPool2d { kernel: Pair::square(size), stride: None, padding: Padding::Valid })
    }
}

/// A hidden layer as `model.layers` entries were written before layer types existed:
/// `{ units, activation, dropout }`, a dense layer with dropout on its output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenLayer {
    pub units: usize,
    #[serde(default = "relu")]
    pub activation: Activation,
    #[serde(default)]
    pub dropout: f32,
}

fn relu() -> Activation {
    Activation::Relu
}

/// One entry of `model.layers`: a typed layer, a typed layer with a `name` and/or `inputs`
/// (a graph), or the older untyped dense form.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerEntry {
    Layer(LayerSpec),
    Node { layer: LayerSpec, name: Option<String>, inputs: Option<Vec<String>> },
    Hidden(HiddenLayer),
}

impl LayerEntry {
    /// The layers this entry stands for.
    pub fn expand(&self, out: &mut Vec<LayerSpec>) {
        match self {
            LayerEntry::Layer(l) | LayerEntry::Node { layer: l, .. } => out.push(l.clone()),
            LayerEntry::Hidden(h) => {
                out.push(LayerSpec::dense(h.units, h.activation));
                if h.dropout > 0.0 {
                    out.push(LayerSpec::Dropout(Dropout { rate: h.dropout }));
                }
            }
        }
    }
}

impl Serialize for LayerEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LayerEntry::Layer(l) => l.serialize(s),
            LayerEntry::Node { layer, name, inputs } => {
                // The graph's keys first, then the layer's own (numbers keep their f32 spelling).
                #[derive(Serialize)]
                struct Node<'a> {
                    #[serde(skip_serializing_if = "Option::is_none")]
                    name: &'a Option<String>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    inputs: &'a Option<Vec<String>>,
                    #[serde(flatten)]
                    layer: &'a LayerSpec,
                }
                Node { name, inputs, layer }.serialize(s)
            }
            LayerEntry::Hidden(h) => h.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LayerEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LayerEntry, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(d)?;
        let typed = value.get("type").is_some();
        // A graph's keys sit beside the layer's own: taken off before the layer is read.
        let (mut name, mut inputs) = (None, None);
        if typed && let Some(map) = value.as_object_mut() {
            if let Some(n) = map.remove("name") {
                name =
                    Some(n.as_str().map(str::to_string).ok_or_else(|| {
                        D::Error::custom("name: expected a string, e.g. name = \"block1\"")
                    })?);
            }
            if let Some(i) = map.remove("inputs") {
                let list: Option<Vec<String>> =
                    i.as_array().and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
                inputs = Some(list.ok_or_else(|| {
                    D::Error::custom("inputs: expected a list of layer names, e.g. inputs = [\"a\", \"b\"]")
                })?);
            }
        }
        let result = if typed {
            serde_json::from_value::<LayerSpec>(value).map(|layer| {
                if name.is_none() && inputs.is_none() {
                    LayerEntry::Layer(layer)
                } else {
                    LayerEntry::Node { layer, name: name.take(), inputs: inputs.take() }
                }
            })
        } else if value.is_object() {
            serde_json::from_value::<HiddenLayer>(value).map(LayerEntry::Hidden)
        } else {
            return Err(D::Error::custom(
                "a layer is a table with a `type` key, e.g. { type = \"dense\", units = 128 }",
            ));
        };
        result.map_err(|e| {
            let m = e.to_string();
            // serde_json appends " at line 0 column 0" to errors from values.
            let m = m.split(" at line ").next().unwrap_or(&m).to_string();
            D::Error::custom(if typed { m } else { format!("{m} (a layer without `type` is a dense layer)") })
        })
    }
}

/// Dropout rate / probability checks shared by layers.
pub(crate) fn check_fraction(key: &'static str, v: f32, errors: &mut Vec<(&'static str, String)>) {
    if !(0.0..1.0).contains(&v) {
        errors.push((key, format!("must be in [0, 1) (got {v})")));
    }
}

/// Activations that work element by element (softmax is for dense layers).
pub(crate) fn check_elementwise(a: Activation, errors: &mut Vec<(&'static str, String)>) {
    if a == Activation::Softmax {
        errors.push(("activation", "softmax applies to dense layers only".into()));
    }
}

/// A recurrent layer's output for `input`: the sequence of its `units` states, or the last.
pub(crate) fn recurrent_output(units: usize, every_step: bool, input: Shape) -> Result<Shape, String> {
    match input {
        Shape::Sequence { steps, .. } if every_step => Ok(Shape::Sequence { steps, features: units }),
        Shape::Sequence { .. } => Ok(Shape::Vector(units)),
        other => Err(format!("reads a sequence (steps x features), not {other}")),
    }
}

/// A recurrent layer's input and recurrent weights, `gates` blocks of `units` columns each.
pub(crate) fn recurrent_weights(input: Shape, units: usize, gates: usize) -> Vec<ParamDecl> {
    let (f, h) = (input.per_step(), units);
    vec![
        ParamDecl {
            fan_in: f,
            fan_out: h,
            ..ParamDecl::new("input_weight", vec![f, gates * h], Role::Weight)
        },
        ParamDecl {
            fan_in: h,
            fan_out: h,
            ..ParamDecl::new("recurrent_weight", vec![h, gates * h], Role::Weight)
        },
    ]
}

/// A recurrent layer's `units` check.
pub(crate) fn check_units(units: usize) -> Vec<(&'static str, String)> {
    if (1..=16_384).contains(&units) {
        Vec::new()
    } else {
        vec![("units", format!("must be 1..=16384 (got {units})"))]
    }
}

pub(crate) fn need_image(input: Shape) -> Result<(usize, usize, usize), String> {
    input.as_image().ok_or_else(|| {
        let what = if input.is_sequence() { "the sequence" } else { "a vector of" };
        format!("needs an image input (channels x height x width), got {what} {input}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct Model {
        layers: Vec<LayerEntry>,
    }

    fn parse(text: &str) -> Result<Model, String> {
        toml::from_str::<Model>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn typed_and_legacy_entries_parse_and_round_trip() {
        let m = parse(
            r#"
[[layers]]
type = "conv2d"
filters = 32
kernel = 3
padding = "same"
[[layers]]
type = "max_pool2d"
kernel = 2
[[layers]]
units = 64
dropout = 0.5
"#,
        )
        .unwrap();
        assert!(
            matches!(&m.layers[0], LayerEntry::Layer(LayerSpec::Conv2d(c)) if c.filters == 32 && c.padding == Padding::Same)
        );
        assert!(
            matches!(&m.layers[2], LayerEntry::Hidden(h) if h.units == 64 && h.activation == Activation::Relu)
        );
        let mut expanded = Vec::new();
        m.layers.iter().for_each(|e| e.expand(&mut expanded));
        assert_eq!(expanded.len(), 4, "the legacy entry is a dense layer and a dropout layer");
        let again = parse(&toml::to_string(&m).unwrap()).unwrap();
        assert_eq!(again.layers, m.layers);
    }

    #[test]
    fn unknown_types_and_fields_are_named() {
        let e = parse("[[layers]]\ntype = \"conv\"\nfilters = 3\n").unwrap_err();
        assert!(e.contains("unknown variant `conv`"), "{e}");
        let e = parse("[[layers]]\ntype = \"conv2d\"\nfilter = 3\n").unwrap_err();
        assert!(e.contains("unknown field `filter`"), "{e}");
        let e = parse("[[layers]]\ntype = \"dense\"\n").unwrap_err();
        assert!(e.contains("missing field `units`"), "{e}");
        let e = parse("[[layers]]\nunits = 3\nkernel = 2\n").unwrap_err();
        assert!(e.contains("without `type`"), "{e}");
    }
}
