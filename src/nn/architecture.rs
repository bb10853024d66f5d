//! A network as a list of layers from an input shape to the output layer, checked once when it
//! is built (or read from a model file), and the layout it implies: where every parameter sits
//! in the ONE flat parameter buffer and every running statistic in the running-state buffer.
//!
//! A model's *state* is the parameter buffer followed by the running-state buffer; that is what
//! checkpoints hold, what the epoch barrier averages and what joining workers receive.
//! Gradient sharing encodes only the parameter part.

use std::fmt::Write;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::layers::{Dense, Dropout, LayerSpec, Role};
use super::{Activation, Init, Loss, Shape};

/// A layer that does not fit its input.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("layer {index} ({layer}): {message}")]
pub struct ShapeError {
    pub index: usize,
    pub layer: String,
    pub message: String,
}

/// A checked network. Every value of this type has layers whose shapes fit, from the input to
/// the output layer (the last one).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "Repr", try_from = "serde_json::Value")]
pub struct Architecture {
    input: Shape,
    layers: Vec<LayerSpec>,
    /// Each layer's name and input nodes (node 0 is the data, node `l + 1` layer `l`'s output).
    wiring: Vec<Wiring>,
    loss: Loss,
    init: Init,
    layout: Arc<Layout>,
}

/// Where a layer takes its input from, and the name later layers call it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wiring {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Node indices: 0 the data, `l + 1` the output of layer `l`; always earlier nodes.
    pub inputs: Vec<usize>,
}

/// A layer as a job file writes it in a graph: the layer, its name, the names of its inputs
/// (`None`: the entry before).
#[derive(Clone, Debug, PartialEq)]
pub struct GraphEntry {
    pub layer: LayerSpec,
    pub name: Option<String>,
    pub inputs: Option<Vec<String>>,
}

/// The most inputs one merge joins (kernels keep them in a fixed array: no allocation).
pub const MAX_MERGE_INPUTS: usize = 8;

/// The name by which a layer's `inputs` refers to the data.
pub const INPUT_NAME: &str = "input";

impl PartialEq for Architecture {
    fn eq(&self, o: &Self) -> bool {
        (self.input, &self.layers, &self.wiring, self.loss, self.init)
            == (o.input, &o.layers, &o.wiring, o.loss, o.init)
    }
}

impl Architecture {
    /// Checks a chain of layers against `input` and lays out the buffers.
    pub fn new(
        input: Shape,
        layers: Vec<LayerSpec>,
        loss: Loss,
        init: Init,
    ) -> Result<Architecture, ShapeError> {
        let wiring = (0..layers.len()).map(|l| Wiring { name: None, inputs: vec![l] }).collect();
        Architecture::wired(input, layers, wiring, loss, init)
    }

    /// Checks layers with their wiring against `input` and lays out the buffers.
    pub fn wired(
        input: Shape,
        layers: Vec<LayerSpec>,
        wiring: Vec<Wiring>,
        loss: Loss,
        init: Init,
    ) -> Result<Architecture, ShapeError> {
        let layout = Arc::new(Layout::plan(input, &layers, &wiring, loss)?);
        Ok(Architecture { input, layers, wiring, loss, init, layout })
    }

    /// A graph as a job file writes it: names resolved to nodes, every error naming the layer.
    pub fn graph(
        input: Shape,
        entries: Vec<GraphEntry>,
        loss: Loss,
        init: Init,
    ) -> Result<Architecture, ShapeError> {
        let mut names: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut layers = Vec::with_capacity(entries.len());
        let mut wiring = Vec::with_capacity(entries.len());
        for (l, e) in entries.into_iter().enumerate() {
            let fail =
                |message: String| ShapeError { index: l, layer: label(&e.layer, e.name.as_deref()), message };
            let inputs = match &e.inputs {
                None => vec![l],
                Some(list) if list.is_empty() => {
                    return Err(fail("inputs: empty; name one or more earlier layers".into()));
                }
                Some(list) => {
                    let mut nodes = Vec::with_capacity(list.len());
                    for n in list {
                        let node = if n == INPUT_NAME {
                            0
                        } else {
                            *names.get(n).ok_or_else(|| {
                                fail(format!(
                                    "inputs: '{n}' names no earlier layer (a layer may take only layers above \
                                     it, or \"{INPUT_NAME}\" for the data)"
                                ))
                            })?
                        };
                        if nodes.contains(&node) {
                            return Err(fail(format!("inputs: '{n}' is named twice")));
                        }
                        nodes.push(node);
                    }
                    nodes
                }
            };
            if let Some(n) = &e.name {
                if n == INPUT_NAME || n.trim().is_empty() {
                    return Err(fail(format!("name: '{n}' is reserved for the data; choose another")));
                }
                if names.insert(n.clone(), l + 1).is_some() {
                    return Err(fail(format!("name: '{n}' is already the name of an earlier layer")));
                }
            }
            layers.push(e.layer);
            wiring.push(Wiring { name: e.name, inputs });
        }
        Architecture::wired(input, layers, wiring, loss, init)
    }

    /// The network a job describes for examples of shape `input` and `outputs` classes or
    /// targets: the job's layers, then a dense output layer (softmax for cross-entropy,
    /// identity for MSE) on the last of them.
    pub fn from_job(
        model: &crate::job::ModelSpec,
        input: Shape,
        outputs: usize,
    ) -> Result<Architecture, ShapeError> {
        let mut entries = model.graph();
        entries.push(GraphEntry {
            layer: LayerSpec::dense(outputs, model.output_activation()),
            name: None,
            inputs: None,
        });
        let arch = Architecture::graph(input, entries, model.loss, model.init)?;
        // Token ids come from text, whose target is the next id at every step: the output
        // layer must predict at every step.
        if let (Shape::Tokens { steps, .. }, output) = (input, arch.output())
            && !matches!(output, Shape::Sequence { steps: s, .. } if s == steps)
        {
            let planned = &arch.layout.layers;
            let gives = planned
                .iter()
                .position(|l| l.input.is_sequence() && !l.output.is_sequence())
                .unwrap_or(planned.len() - 1);
            return Err(ShapeError {
                index: gives,
                layer: arch.layers[gives].layer().describe(),
                message: format!(
                    "the data has a target at every step (the next id), so the output must be a \
                     sequence of {steps} steps; this layer makes it {}: keep every step \
                     (return_sequences = true)",
                    planned[gives].output
                ),
            });
        }
        Ok(arch)
    }

    pub fn wiring(&self) -> &[Wiring] {
        &self.wiring
    }

    /// Whether some layer takes other than the layer before it.
    pub fn is_graph(&self) -> bool {
        self.wiring.iter().enumerate().any(|(l, w)| w.inputs != [l])
    }

    pub fn input(&self) -> Shape {
        self.input
    }
    pub fn layers(&self) -> &[LayerSpec] {
        &self.layers
    }
    pub fn loss(&self) -> Loss {
        self.loss
    }
    pub fn init(&self) -> Init {
        self.init
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    pub fn param_count(&self) -> usize {
        self.layout.len
    }
    pub fn running_len(&self) -> usize {
        self.layout.running_len
    }
    /// Parameters followed by running state.
    pub fn state_len(&self) -> usize {
        self.layout.state_len()
    }
    pub fn outputs(&self) -> usize {
        self.layout.outputs()
    }
    /// The output's shape (a sequence for a per-step output layer).
    pub fn output(&self) -> Shape {
        self.layout.output()
    }

    /// One line: "784-256-128-10 relu/softmax, 235146 parameters" for dense networks,
    /// "1x28x28 -> 10: 2 conv2d, 2 max_pool2d, 2 dense; 421642 parameters" otherwise.
    pub fn describe(&self) -> String {
        let dense: Vec<&Dense> = self
            .layers
            .iter()
            .filter_map(|l| match l {
                LayerSpec::Dense(d) => Some(d),
                _ => None,
            })
            .collect();
        let only_dense = self.layers.iter().all(|l| matches!(l, LayerSpec::Dense(_) | LayerSpec::Dropout(_)));
        if only_dense {
            let mut widths = vec![self.input.size().to_string()];
            widths.extend(dense.iter().map(|d| d.units.to_string()));
            let mut acts: Vec<&str> = dense.iter().map(|d| d.activation.name()).collect();
            acts.dedup();
            return format!("{} {}, {} parameters", widths.join("-"), acts.join("/"), self.param_count());
        }
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        for l in &self.layers {
            let k = l.layer().kind();
            match kinds.iter_mut().find(|(name, _)| *name == k) {
                Some((_, n)) => *n += 1,
                None => kinds.push((k, 1)),
            }
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!(
            "{} -> {}: {}; {} parameters",
            self.input,
            self.layout.output(),
            kinds.join(", "),
            self.param_count()
        )
    }

    /// The summary table of `strom train --print-model` and the cockpit.
    pub fn summary(&self) -> String {
        let graph = self.has_wiring();
        let rows: Vec<[String; 5]> = self
            .layout
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut layer = l.spec.layer().describe();
                if graph {
                    let w = &self.wiring[i];
                    if let Some(n) = &w.name {
                        layer = format!("{n}: {layer}");
                    }
                    let from: Vec<String> = w.inputs.iter().map(|&n| self.node_name(n)).collect();
                    layer = format!("{layer} <- {}", from.join(" + "));
                }
                [
                    i.to_string(),
                    layer,
                    l.output.to_string(),
                    group_digits(l.params.len()),
                    if l.running.is_empty() { "-".into() } else { group_digits(l.running.len()) },
                ]
            })
            .collect();
        let head = ["#", "layer", "output", "parameters", "running"];
        let mut width = head.map(str::len);
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let total = group_digits(self.param_count());
        width[3] = width[3].max(total.len());
        let mut out = String::new();
        let line = |out: &mut String, r: &[String; 5]| {
            let _ = writeln!(
                out,
                "{:>w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3],
                w4 = width[4]
            );
        };
        line(&mut out, &head.map(String::from));
        line(
            &mut out,
            &[String::new(), "input".into(), self.input.to_string(), String::new(), String::new()],
        );
        for r in &rows {
            line(&mut out, r);
        }
        let running = if self.running_len() == 0 { "-".into() } else { group_digits(self.running_len()) };
        line(&mut out, &[String::new(), "total".into(), String::new(), total, running]);
        let _ = writeln!(out, "loss {}, init {}", self.loss.name(), self.init.name());
        out
    }
}

impl Architecture {
    /// How summaries name a node: the data, a layer's name, or `#l` for an unnamed layer.
    pub fn node_name(&self, node: usize) -> String {
        node_name(&self.wiring, node)
    }

    /// Where parameter `i` lives: "layer 2 (dense 128 relu), tensor layers.2.dense.weight, entry
    /// 17"; `None` past the parameters.
    pub fn describe_param(&self, i: usize) -> Option<String> {
        let (l, layer) = self.layout.layers.iter().enumerate().find(|(_, l)| l.params.contains(&i))?;
        let name = self.wiring.get(l).and_then(|w| w.name.as_deref());
        let mut text = format!("layer {l} ({})", label(&layer.spec, name));
        if let Some(t) = layer.tensors.iter().find(|t| t.range.contains(&i)) {
            text.push_str(&format!(", tensor {}, entry {}", t.name, i - t.range.start));
        }
        Some(text)
    }

    /// Whether the wiring is worth writing down: some layer is named or takes other than the
    /// layer before it.
    fn has_wiring(&self) -> bool {
        self.is_graph() || self.wiring.iter().any(|w| w.name.is_some())
    }
}

fn node_name(wiring: &[Wiring], node: usize) -> String {
    match node {
        0 => INPUT_NAME.to_string(),
        n => wiring[n - 1].name.clone().unwrap_or_else(|| format!("#{}", n - 1)),
    }
}

fn label(spec: &LayerSpec, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{} '{n}'", spec.layer().describe()),
        None => spec.layer().describe(),
    }
}

/// 421642 -> "421,642".
pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One parameter tensor's place in the flat buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSlot {
    /// `layers.0.conv2d.weight`.
    pub name: String,
    pub dims: Vec<usize>,
    pub range: Range<usize>,
    pub role: Role,
    pub fan_in: usize,
    pub fan_out: usize,
}

/// One running-state tensor's place in the running-state buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningSlot {
    pub name: String,
    pub range: Range<usize>,
    pub init: f32,
}

/// A layer placed in the network.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedLayer {
    pub spec: LayerSpec,
    /// The nodes it reads (0: the data, `l + 1`: layer `l`); one unless it merges.
    pub inputs: Vec<usize>,
    /// The shape of its (first) input.
    pub input: Shape,
    pub output: Shape,
    /// All of this layer's parameters (its tensors, back to back).
    pub params: Range<usize>,
    pub tensors: Vec<TensorSlot>,
    /// All of this layer's running state.
    pub running: Range<usize>,
    pub running_tensors: Vec<RunningSlot>,
}

/// The buffers' map.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub input: Shape,
    pub layers: Vec<PlannedLayer>,
    /// Parameter count.
    pub len: usize,
    /// Running-state values.
    pub running_len: usize,
    pub loss: Loss,
}

impl Layout {
    fn plan(input: Shape, layers: &[LayerSpec], wiring: &[Wiring], loss: Loss) -> Result<Layout, ShapeError> {
        let fail = |index: usize, spec: &LayerSpec, message: String| ShapeError {
            index,
            layer: label(spec, wiring.get(index).and_then(|w| w.name.as_deref())),
            message,
        };
        if wiring.len() != layers.len() {
            return Err(ShapeError {
                index: 0,
                layer: "network".into(),
                message: format!("{} layers but {} wirings", layers.len(), wiring.len()),
            });
        }
        let Some(LayerSpec::Dense(last)) = layers.last() else {
            let i = layers.len().saturating_sub(1);
            return Err(match layers.last() {
                Some(l) => fail(i, l, "the output layer must be dense".into()),
                None => {
                    ShapeError { index: 0, layer: "none".into(), message: "the network has no layers".into() }
                }
            });
        };
        match (loss, last.activation) {
            (Loss::Xent, Activation::Softmax) | (Loss::Mse, _) => {}
            (Loss::Xent, _) => {
                return Err(fail(
                    layers.len() - 1,
                    &layers[layers.len() - 1],
                    "cross-entropy needs a softmax output".into(),
                ));
            }
        }
        let (mut offset, mut run_offset) = (0, 0);
        let mut outputs = vec![input];
        let mut used = vec![false; layers.len() + 1];
        let mut planned = Vec::with_capacity(layers.len());
        for (i, spec) in layers.iter().enumerate() {
            let layer = spec.layer();
            if let Some((key, msg)) = layer.check().into_iter().next() {
                return Err(fail(i, spec, format!("{key} {msg}")));
            }
            let inputs = &wiring[i].inputs;
            if let Some(&late) = inputs.iter().find(|&&n| n > i) {
                return Err(fail(i, spec, format!("inputs: node {late} is not an earlier layer")));
            }
            match (layer.merges(), inputs.len()) {
                (true, 0 | 1) => {
                    return Err(fail(i, spec, "inputs: a merge joins two or more inputs".into()));
                }
                (true, n) if n > MAX_MERGE_INPUTS => {
                    return Err(fail(
                        i,
                        spec,
                        format!(
                            "inputs: a merge joins at most {MAX_MERGE_INPUTS} inputs (got {n}); merge in steps"
                        ),
                    ));
                }
                (false, n) if n != 1 => {
                    return Err(fail(
                        i,
                        spec,
                        format!("inputs: takes one input (got {n}); join several with add or concat first"),
                    ));
                }
                _ => {}
            }
            inputs.iter().for_each(|&n| used[n] = true);
            let shape = outputs[inputs[0]];
            if let (Shape::Tokens { .. }, false) = (shape, layer.reads_tokens()) {
                return Err(fail(
                    i,
                    spec,
                    format!("reads {shape}, token ids: put an `embedding` layer before it"),
                ));
            }
            let output = if layer.merges() {
                let named: Vec<(String, Shape)> =
                    inputs.iter().map(|&n| (node_name(wiring, n), outputs[n])).collect();
                layer.merge_shape(&named)
            } else {
                layer.output_shape(shape)
            }
            .map_err(|m| fail(i, spec, m))?;
            let start = offset;
            let tensors: Vec<TensorSlot> = layer
                .params(shape)
                .into_iter()
                .map(|d| {
                    let range = offset..offset + d.len();
                    offset = range.end;
                    TensorSlot {
                        name: format!("layers.{i}.{}.{}", layer.kind(), d.name),
                        dims: d.dims,
                        range,
                        role: d.role,
                        fan_in: d.fan_in,
                        fan_out: d.fan_out,
                    }
                })
                .collect();
            let run_start = run_offset;
            let running_tensors: Vec<RunningSlot> = layer
                .running(shape)
                .into_iter()
                .map(|d| {
                    let range = run_offset..run_offset + d.len;
                    run_offset = range.end;
                    RunningSlot {
                        name: format!("layers.{i}.{}.{}", layer.kind(), d.name),
                        range,
                        init: d.init,
                    }
                })
                .collect();
            planned.push(PlannedLayer {
                spec: spec.clone(),
                inputs: inputs.clone(),
                input: shape,
                output,
                params: start..offset,
                tensors,
                running: run_start..run_offset,
                running_tensors,
            });
            outputs.push(output);
        }
        if let Some(l) = (1..layers.len()).find(|&n| !used[n]) {
            return Err(fail(
                l - 1,
                &layers[l - 1],
                "its output is used by no layer: name it in a later layer's inputs, or remove it".into(),
            ));
        }
        if offset >= (1 << 31) {
            return Err(ShapeError {
                index: layers.len() - 1,
                layer: "network".into(),
                message: format!("{offset} parameters; at most 2^31 can be shared"),
            });
        }
        Ok(Layout { input, layers: planned, len: offset, running_len: run_offset, loss })
    }

    pub fn output(&self) -> Shape {
        self.layers.last().map(|l| l.output).unwrap_or(self.input)
    }

    pub fn outputs(&self) -> usize {
        self.output().size()
    }

    pub fn state_len(&self) -> usize {
        self.len + self.running_len
    }

    /// The weight tensors (L2 applies to these only).
    pub fn weight_ranges(&self) -> Vec<Range<usize>> {
        self.tensors().filter(|t| t.role == Role::Weight).map(|t| t.range.clone()).collect()
    }

    pub fn tensors(&self) -> impl Iterator<Item = &TensorSlot> {
        self.layers.iter().flat_map(|l| l.tensors.iter())
    }

    pub fn running_tensors(&self) -> impl Iterator<Item = &RunningSlot> {
        self.layers.iter().flat_map(|l| l.running_tensors.iter())
    }

    /// The layers that own parameters, with their ranges: the segments per-layer sharing
    /// figures are reported for.
    pub fn segments(&self) -> Vec<(usize, Range<usize>)> {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.params.is_empty())
            .map(|(i, l)| (i, l.params.clone()))
            .collect()
    }

    /// Values per example at the input of every layer and at the output (for buffers).
    pub fn widest(&self) -> usize {
        self.layers.iter().map(|l| l.output.size()).chain([self.input.size()]).max().unwrap_or(1)
    }
}

/// How architectures are written: the current form, with an input shape and typed layers.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Repr {
    input: Shape,
    layers: Vec<LayerSpec>,
    /// Names and inputs, for graphs only (absent: a chain, as every file before graphs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wiring: Option<Vec<Wiring>>,
    loss: Loss,
    init: Init,
}

/// Model files and checkpoints written before layer types existed: dense layers only, with
/// dropout on a layer's input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyRepr {
    inputs: usize,
    layers: Vec<LegacyDense>,
    loss: Loss,
    init: Init,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyDense {
    units: usize,
    activation: Activation,
    #[serde(default)]
    input_dropout: f32,
}

impl From<Architecture> for Repr {
    fn from(a: Architecture) -> Repr {
        let graph = a.has_wiring();
        Repr {
            input: a.input,
            layers: a.layers,
            wiring: graph.then_some(a.wiring),
            loss: a.loss,
            init: a.init,
        }
    }
}

impl TryFrom<serde_json::Value> for Architecture {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Architecture, String> {
        let clean = |e: serde_json::Error| {
            let m = e.to_string();
            m.split(" at line ").next().unwrap_or(&m).to_string()
        };
        if v.get("inputs").is_some() {
            let old: LegacyRepr = serde_json::from_value(v).map_err(clean)?;
            let mut layers = Vec::new();
            for l in old.layers {
                if l.input_dropout > 0.0 {
                    layers.push(LayerSpec::Dropout(Dropout { rate: l.input_dropout }));
                }
                layers.push(LayerSpec::dense(l.units, l.activation));
            }
            return Architecture::new(Shape::Vector(old.inputs), layers, old.loss, old.init)
                .map_err(|e| e.to_string());
        }
        let r: Repr = serde_json::from_value(v).map_err(clean)?;
        match r.wiring {
            Some(wiring) => Architecture::wired(r.input, r.layers, wiring, r.loss, r.init),
            None => Architecture::new(r.input, r.layers, r.loss, r.init),
        }
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ModelPreset, ModelSpec};

    #[test]
    fn mlp_layout_is_the_same_one_contiguous_buffer_as_before() {
        let arch = Architecture::from_job(&ModelSpec::default(), Shape::image(1, 28, 28), 10).unwrap();
        let layout = arch.layout();
        assert_eq!(layout.len, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
        let mut end = 0;
        for t in layout.tensors() {
            assert_eq!(t.range.start, end);
            end = t.range.end;
        }
        assert_eq!(end, layout.len);
        assert_eq!(arch.describe(), "784-256-128-10 relu/softmax, 235146 parameters");
        assert_eq!(layout.tensors().next().unwrap().name, "layers.0.dense.weight");
    }

    #[test]
    fn cnn_preset_shapes_and_parameter_count() {
        let model = ModelSpec { preset: ModelPreset::Cnn, ..ModelSpec::default() };
        let arch = Architecture::from_job(&model, Shape::image(1, 28, 28), 10).unwrap();
        let outs: Vec<String> = arch.layout().layers.iter().map(|l| l.output.to_string()).collect();
        assert_eq!(outs, ["32x28x28", "32x14x14", "64x14x14", "64x7x7", "128", "10"]);
        assert_eq!(arch.param_count(), 320 + 18_496 + 3136 * 128 + 128 + 1290);
        let s = arch.summary();
        assert!(s.contains("conv2d 3x3 32 same relu") && s.contains("421,642"), "{s}");
        let lenet = Architecture::from_job(
            &ModelSpec { preset: ModelPreset::Lenet5, ..ModelSpec::default() },
            Shape::image(1, 28, 28),
            10,
        )
        .unwrap();
        assert_eq!(lenet.param_count(), 156 + 2416 + 48_120 + 10_164 + 850);
    }

    #[test]
    fn shape_errors_name_the_layer_and_the_shapes() {
        let layers = vec![
            LayerSpec::conv(8, 3, super::super::layers::Padding::Valid, Activation::Relu),
            LayerSpec::max_pool(2),
            LayerSpec::max_pool(2),
            LayerSpec::max_pool(2),
            LayerSpec::max_pool(2),
            LayerSpec::dense(10, Activation::Softmax),
        ];
        let e = Architecture::new(Shape::image(1, 16, 16), layers, Loss::Xent, Init::He).unwrap_err();
        assert_eq!(e.to_string(), "layer 4 (max_pool2d 2x2): input 8x1x1 is smaller than its window");
        let e = Architecture::new(
            Shape::Vector(13),
            vec![
                LayerSpec::conv(4, 3, Default::default(), Activation::Relu),
                LayerSpec::dense(2, Activation::Softmax),
            ],
            Loss::Xent,
            Init::He,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("layer 0 (conv2d 3x3 4 valid relu): needs an image input"), "{e}");
    }

    #[test]
    fn batch_norm_declares_running_state_and_serde_round_trips() {
        let layers = vec![
            LayerSpec::conv(4, 3, Default::default(), Activation::Identity),
            LayerSpec::BatchNorm(Default::default()),
            LayerSpec::dense(3, Activation::Softmax),
        ];
        let arch = Architecture::new(Shape::image(2, 5, 5), layers, Loss::Xent, Init::He).unwrap();
        assert_eq!(arch.running_len(), 8);
        let names: Vec<&str> = arch.layout().running_tensors().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["layers.1.batch_norm.running_mean", "layers.1.batch_norm.running_var"]);
        let json = serde_json::to_string(&arch).unwrap();
        assert_eq!(serde_json::from_str::<Architecture>(&json).unwrap(), arch);
    }

    #[test]
    fn a_graph_round_trips_and_a_chain_is_written_as_before() {
        use crate::nn::layers::Add;
        let entry = |layer, name: &str, inputs: Option<Vec<&str>>| GraphEntry {
            layer,
            name: Some(name.to_string()),
            inputs: inputs.map(|v| v.into_iter().map(String::from).collect()),
        };
        let g = Architecture::graph(
            Shape::Vector(4),
            vec![
                entry(LayerSpec::dense(3, Activation::Relu), "a", None),
                entry(LayerSpec::dense(3, Activation::Relu), "b", None),
                entry(LayerSpec::Add(Add {}), "sum", Some(vec!["a", "b"])),
                entry(LayerSpec::dense(2, Activation::Softmax), "out", None),
            ],
            Loss::Xent,
            Init::He,
        )
        .unwrap();
        assert!(g.is_graph());
        assert_eq!(g.wiring()[2].inputs, [1, 2]);
        let json = serde_json::to_string(&g).unwrap();
        assert!(json.contains("\"wiring\""), "{json}");
        assert_eq!(serde_json::from_str::<Architecture>(&json).unwrap(), g);
        let chain = Architecture::from_job(&crate::job::ModelSpec::default(), Shape::Vector(4), 2).unwrap();
        assert!(!chain.is_graph());
        assert!(!serde_json::to_string(&chain).unwrap().contains("wiring"), "chains are written as before");
    }

    #[test]
    fn models_written_before_layer_types_still_read() {
        let old = r#"{"inputs":4,"layers":[{"units":3,"activation":"tanh","input_dropout":0.0},
            {"units":2,"activation":"softmax","input_dropout":0.25}],"loss":"xent","init":"xavier"}"#;
        let arch: Architecture = serde_json::from_str(old).unwrap();
        assert_eq!(arch.input(), Shape::Vector(4));
        assert_eq!(arch.layers().len(), 3, "dense, dropout, dense");
        assert_eq!(arch.param_count(), 4 * 3 + 3 + 3 * 2 + 2);
        let bad = r#"{"input":[4],"layers":[{"type":"dense","units":2,"activation":"relu"}],"loss":"xent","init":"he"}"#;
        let e = serde_json::from_str::<Architecture>(bad).unwrap_err().to_string();
        assert!(e.contains("softmax"), "{e}");
    }
}
