//! A DL4J `MultiLayerConfiguration` or `ComputationGraphConfiguration` (`toJson()`) as a Strom
//! job: the same layers (and, for a graph, the same vertices and edges), activations, updater,
//! learning rate, L2, weight initialisation and seed.
//!
//! What differs in meaning, not only in name: DL4J's `idropout` on a layer drops that layer's
//! *input* with retain probability `p`, so it becomes a `dropout` layer with rate `1 - p` in
//! front of it; an `OutputLayer` becomes Strom's output layer, which takes its width from the
//! data; a non-identity activation on `BatchNormalization` stays on it. In a graph, an
//! `ElementWiseVertex` with `Add` becomes an `add` layer and a `MergeVertex` a `concat` layer;
//! DL4J's preprocessors between images and vectors have nothing to become (Strom's dense layer
//! reads an image as its flattened values).

use serde_json::Value;

use super::{ImportError, class_of, number, pair, text};
use crate::job::{DataFormat, JobSpec, LrSchedule, UpdaterKind};
use crate::nn::INPUT_NAME;
use crate::nn::layers::{
    ActivationLayer, Add, AvgPool2d, BatchNorm, Concat, Conv2d, Dense, Dropout, Embedding, GlobalAvgPool,
    GlobalMaxPool, LayerEntry, LayerSpec, Lstm, MaxPool2d, Padding, Pair,
};
use crate::nn::{Activation, Init, Loss};

/// The job, and notes on what was carried over approximately (printed as comments).
pub struct Imported {
    pub job: JobSpec,
    pub notes: Vec<String>,
}

fn activation(layer: &Value) -> Result<Activation, String> {
    let Some(f) = layer.get("activationFn").filter(|f| !f.is_null()) else {
        return Ok(Activation::Identity);
    };
    Ok(match class_of(f) {
        "ActivationReLU" => Activation::Relu,
        "ActivationLReLU" if number(f, "alpha").is_none_or(|a| (a - 0.01).abs() < 1e-9) => {
            Activation::LeakyRelu
        }
        "ActivationTanH" => Activation::Tanh,
        "ActivationSigmoid" => Activation::Sigmoid,
        "ActivationIdentity" => Activation::Identity,
        "ActivationSoftmax" => Activation::Softmax,
        other => return Err(format!("activation {other}")),
    })
}

/// DL4J's convolution modes: `Same` pads to keep the size; `Truncate` and `Strict` use the
/// explicit padding (zero: valid).
fn padding(layer: &Value) -> Padding {
    if text(layer, "convolutionMode") == Some("Same") {
        return Padding::Same;
    }
    match pair(layer, "padding") {
        None | Some((0, 0)) => Padding::Valid,
        Some((h, w)) => Padding::Explicit(Pair(h, w)),
    }
}

/// What one file's layers set for the whole job (DL4J writes them on every layer), and what
/// cannot be carried over, gathered while the layers are read.
#[derive(Default)]
struct Reader {
    job: JobSpec,
    notes: Vec<String>,
    unsupported: Vec<String>,
    updater: Option<Value>,
    l2: Option<f64>,
    init: Option<String>,
}

impl Reader {
    /// One DL4J layer as Strom layers: a dropout in front when DL4J drops the layer's input,
    /// then the layer itself (none for a `DropoutLayer`, whose dropout is its `idropout`, and
    /// none for the output layer, which sets the loss). `at` names the layer in messages.
    fn layer(&mut self, layer: &Value, at: &str, output: bool) -> Vec<LayerSpec> {
        let class = class_of(layer);
        let mut layers = Vec::new();
        if self.updater.is_none() {
            self.updater = layer.get("iupdater").filter(|u| !u.is_null()).cloned();
        }
        if let Some(regs) = layer.get("regularization").and_then(Value::as_array) {
            for r in regs {
                match class_of(r) {
                    "L2Regularization" => self.l2 = self.l2.or(number(r, "l2")),
                    other => self.unsupported.push(format!("{at}: regularization {other}")),
                }
            }
        }
        if let Some(w) = layer.get("weightInitFn").filter(|w| !w.is_null()) {
            self.init = self.init.take().or(Some(class_of(w).to_string()));
        }
        // Dropout on the layer's input, with DL4J's retain probability.
        if let Some(d) = layer.get("idropout").filter(|d| !d.is_null()) {
            match (class_of(d), number(d, "p")) {
                ("Dropout", Some(p)) if p > 0.0 && p < 1.0 => {
                    layers.push(LayerSpec::Dropout(Dropout { rate: (1.0 - p) as f32 }))
                }
                ("Dropout", _) => {}
                (other, _) => self.unsupported.push(format!("{at}: dropout {other}")),
            }
        }
        let act = activation(layer).unwrap_or_else(|e| {
            self.unsupported.push(format!("{at}: {e}"));
            Activation::Identity
        });
        let units = layer.get("nout").and_then(Value::as_u64).unwrap_or(0) as usize;
        match class {
            "DenseLayer" => layers.push(LayerSpec::Dense(Dense { units, activation: act })),
            "ConvolutionLayer" => {
                if pair(layer, "dilation").is_some_and(|d| d != (1, 1)) {
                    self.unsupported.push(format!("{at}: dilation"));
                }
                let (kh, kw) = pair(layer, "kernelSize").unwrap_or((1, 1));
                let (sh, sw) = pair(layer, "stride").unwrap_or((1, 1));
                layers.push(LayerSpec::Conv2d(Conv2d {
                    filters: units,
                    kernel: Pair(kh, kw),
                    stride: Pair(sh, sw),
                    padding: padding(layer),
                    activation: act,
                }))
            }
            "SubsamplingLayer" => {
                let (kh, kw) = pair(layer, "kernelSize").unwrap_or((2, 2));
                let stride = pair(layer, "stride").map(|(h, w)| Pair(h, w));
                match text(layer, "poolingType") {
                    Some("MAX") => layers.push(LayerSpec::MaxPool2d(MaxPool2d {
                        kernel: Pair(kh, kw),
                        stride,
                        padding: padding(layer),
                    })),
                    Some("AVG") => layers.push(LayerSpec::AvgPool2d(AvgPool2d {
                        kernel: Pair(kh, kw),
                        stride,
                        padding: padding(layer),
                    })),
                    other => self.unsupported.push(format!("{at}: pooling {}", other.unwrap_or("?"))),
                }
            }
            "GlobalPoolingLayer" => match text(layer, "poolingType") {
                Some("AVG") => layers.push(LayerSpec::GlobalAvgPool(GlobalAvgPool {})),
                // Over the steps of a sequence (Strom's max pooling over time).
                Some("MAX") => layers.push(LayerSpec::GlobalMaxPool(GlobalMaxPool {})),
                other => self.unsupported.push(format!("{at}: global pooling {}", other.unwrap_or("?"))),
            },
            "BatchNormalization" => {
                if layer.get("lockGammaBeta").and_then(Value::as_bool) == Some(true) {
                    self.unsupported.push(format!("{at}: lockGammaBeta"));
                }
                layers.push(LayerSpec::BatchNorm(BatchNorm {
                    decay: number(layer, "decay").unwrap_or(0.9) as f32,
                    epsilon: number(layer, "eps").unwrap_or(1e-5) as f32,
                    activation: act,
                }))
            }
            "DropoutLayer" => {} // its idropout was handled above
            "ActivationLayer" => layers.push(LayerSpec::Activation(ActivationLayer { activation: act })),
            "EmbeddingSequenceLayer" => {
                if layer.get("hasBias").and_then(Value::as_bool) == Some(true) {
                    self.unsupported.push(format!("{at}: an embedding with a bias"));
                }
                let vocab = layer.get("nin").and_then(Value::as_u64).unwrap_or(0) as usize;
                // Token ids as sequence CSV: one column of ids below DL4J's nIn.
                self.job.data.format = DataFormat::SequenceCsv;
                self.job.data.vocab = vocab;
                self.notes.push(format!(
                    "{at} reads token ids below {vocab}: data.format = \"sequence_csv\" with data.vocab = {vocab} \
                     (set data.train to a folder of one-column id sequences)"
                ));
                layers.push(LayerSpec::Embedding(Embedding { dim: units }));
            }
            "LSTM" => {
                let gate = layer.get("gateActivationFn").map(class_of).unwrap_or("ActivationSigmoid");
                if act != Activation::Tanh || gate != "ActivationSigmoid" {
                    self.unsupported.push(format!(
                        "{at}: activation {} with gates {gate} (Strom's LSTM: tanh, sigmoid gates)",
                        act.name()
                    ));
                }
                if number(layer, "forgetGateBiasInit").is_some_and(|b| b != 1.0) {
                    self.notes.push(format!("{at}: forget-gate bias starts at 1 in Strom"));
                }
                layers.push(LayerSpec::Lstm(Lstm { units, return_sequences: true }));
            }
            "GravesLSTM" | "GravesBidirectionalLSTM" | "Bidirectional" => self.unsupported.push(format!(
                "{at}: peephole or bidirectional LSTM (Strom has LSTM and GRU, one direction)"
            )),
            "LastTimeStep" => self.unsupported.push(format!(
                "{at}: LastTimeStep wrapper (Strom: lstm return_sequences = false, or last_step)"
            )),
            "RnnOutputLayer" | "OutputLayer" if output => {
                let loss = layer.get("lossFn").map(class_of).unwrap_or("");
                match (loss, act) {
                    ("LossMCXENT" | "LossNegativeLogLikelihood", Activation::Softmax) => {
                        self.job.model.loss = Loss::Xent
                    }
                    ("LossMSE" | "LossL2", Activation::Identity) => self.job.model.loss = Loss::Mse,
                    _ => self.unsupported.push(format!("{at}: loss {loss} with activation {}", act.name())),
                }
                self.notes.push(format!(
                    "output layer: {units} outputs in DL4J; Strom's output layer takes its width from the data"
                ));
            }
            "OutputLayer" => self.unsupported.push(format!("{at}: an output layer before the last layer")),
            "" => self.unsupported.push(format!("{at}: no @class")),
            _ => self.unsupported.push(at.to_string()),
        }
        layers
    }

    /// The job-wide settings DL4J wrote on the layers, then the job (or every part that has no
    /// equivalent, at once).
    fn finish(
        mut self,
        file: &str,
        seed: Option<i64>,
        layers: Vec<LayerEntry>,
    ) -> Result<Imported, ImportError> {
        let updater = self.updater.take();
        let u = &mut self.job.train.updater;
        match updater.as_ref().map(class_of).unwrap_or("") {
            "Adam" => {
                let up = updater.as_ref().unwrap_or(&Value::Null);
                u.kind = Some(UpdaterKind::Adam);
                // Absent: the job's default (0.9, or the sharing workers' own; JobSpec::updater).
                u.beta1 = number(up, "beta1").map(|b| b as f32);
                u.beta2 = number(up, "beta2").unwrap_or(0.999) as f32;
                u.epsilon = number(up, "epsilon").unwrap_or(1e-8) as f32;
            }
            "Nesterovs" => {
                u.kind = Some(UpdaterKind::Nesterov);
                u.momentum = updater.as_ref().and_then(|up| number(up, "momentum")).unwrap_or(0.9) as f32;
            }
            "Sgd" => u.kind = Some(UpdaterKind::Sgd),
            "RmsProp" => {
                let up = updater.as_ref().unwrap_or(&Value::Null);
                u.kind = Some(UpdaterKind::Rmsprop);
                u.rho = number(up, "rmsDecay").unwrap_or(0.95) as f32;
                u.epsilon = number(up, "epsilon").unwrap_or(1e-8) as f32;
            }
            "" => self.notes.push("no updater in the configuration: Strom's default applies".into()),
            other => self.unsupported.push(format!("updater {other}")),
        }
        if let Some(up) = &updater {
            u.lr = number(up, "learningRate").map(|lr| lr as f32);
            if up.get("learningRateSchedule").is_some_and(|s| !s.is_null()) {
                self.notes.push(
                    "a learning-rate schedule: only its base rate was kept (see train.lr_schedule)".into(),
                );
            }
        }
        self.job.train.l2 = self.l2.unwrap_or(0.0) as f32;
        // DL4J keeps the learning rate unless a schedule says otherwise.
        self.job.train.lr_schedule = LrSchedule::Constant;
        self.job.model.init = match self.init.as_deref() {
            Some("WeightInitRelu") | Some("WeightInitReluUniform") | None => Init::He,
            Some("WeightInitXavier") | Some("WeightInitXavierUniform") => Init::Xavier,
            Some(other) => {
                self.notes.push(format!("weight init {other}: Strom starts from He initialisation instead"));
                Init::He
            }
        };
        if let Some(seed) = seed {
            self.job.train.seed = seed as u64;
        }
        if !self.unsupported.is_empty() {
            return Err(ImportError::Unsupported { file: file.into(), items: self.unsupported });
        }
        let mut job = self.job;
        job.name = std::path::Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imported".into());
        job.model.layers = Some(layers);
        Ok(Imported { job, notes: self.notes })
    }
}

/// Reads `json` (the file's text): a `MultiLayerConfiguration` (`confs`) or a
/// `ComputationGraphConfiguration` (`vertices`); `file` names it in errors.
pub fn import(json: &str, file: &str) -> Result<Imported, ImportError> {
    let root = super::parse(json, file)?;
    if root.get("vertices").is_some() {
        return graph(json, &root, file);
    }
    let invalid = |message: &str| ImportError::Invalid { file: file.into(), message: message.into() };
    let confs = root.get("confs").and_then(Value::as_array).ok_or_else(|| {
        invalid(
            "no `confs` list nor `vertices`: expected a MultiLayerConfiguration or a \
             ComputationGraphConfiguration as DL4J's toJson() writes it",
        )
    })?;
    if confs.is_empty() {
        return Err(invalid("`confs` is empty"));
    }
    let mut reader = Reader::default();
    let mut layers = Vec::new();
    let last = confs.len() - 1;
    for (i, conf) in confs.iter().enumerate() {
        let Some(layer) = conf.get("layer") else {
            reader.unsupported.push(format!("layer {i}: no `layer` object"));
            continue;
        };
        let at = format!("layer {i} ({})", class_of(layer));
        layers.extend(reader.layer(layer, &at, i == last).into_iter().map(LayerEntry::Layer));
    }
    let last_class = class_of(&confs[last]["layer"]);
    if !matches!(last_class, "OutputLayer" | "RnnOutputLayer")
        && !reader.unsupported.iter().any(|u| u.starts_with(&format!("layer {last} (")))
    {
        reader
            .unsupported
            .push(format!("layer {last} ({last_class}): the last layer must be an OutputLayer"));
    }
    let seed = confs[0].get("seed").and_then(Value::as_i64);
    reader.finish(file, seed, layers)
}

/// The vertex names of a graph configuration in the order the file lists them (`serde_json`'s
/// map sorts its keys; DL4J writes the vertices in the order they were added, which is the
/// order a user reads).
fn vertex_order(json: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Root {
        vertices: Ordered,
    }
    struct Ordered(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Ordered {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Keys;
            impl<'de> serde::de::Visitor<'de> for Keys {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a map of vertices")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                        keys.push(k);
                    }
                    Ok(Ordered(keys))
                }
            }
            d.deserialize_map(Keys)
        }
    }
    serde_json::from_str::<Root>(json).map(|r| r.vertices.0).unwrap_or_default()
}

/// The strings of a JSON list (`networkInputs`, an entry of `vertexInputs`).
fn names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// A `ComputationGraphConfiguration`: its vertices in an order where every vertex comes after
/// its inputs (the file's order where it allows), each a named Strom layer with its inputs.
fn graph(json: &str, root: &Value, file: &str) -> Result<Imported, ImportError> {
    let invalid = |message: String| ImportError::Invalid { file: file.into(), message };
    let vertices =
        root["vertices"].as_object().ok_or_else(|| invalid("`vertices` is not an object".into()))?;
    let edges = root.get("vertexInputs").and_then(Value::as_object);
    let inputs_of = |name: &str| names(edges.and_then(|e| e.get(name)));
    let network_inputs = names(root.get("networkInputs"));
    let network_outputs = names(root.get("networkOutputs"));
    let mut reader = Reader::default();
    let [data] = network_inputs.as_slice() else {
        return Err(invalid(format!(
            "{} network inputs ({}): Strom's models take one input",
            network_inputs.len(),
            network_inputs.join(", ")
        )));
    };
    let [output] = network_outputs.as_slice() else {
        return Err(invalid(format!(
            "{} network outputs ({}): Strom's models have one output layer",
            network_outputs.len(),
            network_outputs.join(", ")
        )));
    };
    // Every vertex after its inputs, in the file's order where that allows.
    let mut order = vertex_order(json);
    order.retain(|n| vertices.contains_key(n));
    let mut placed: std::collections::HashSet<&str> = std::collections::HashSet::from([data.as_str()]);
    let mut sorted: Vec<&str> = Vec::with_capacity(order.len());
    while sorted.len() < order.len() {
        let Some(next) = order.iter().find(|n| {
            !placed.contains(n.as_str()) && inputs_of(n).iter().all(|i| placed.contains(i.as_str()))
        }) else {
            let stuck: Vec<&str> = order.iter().map(String::as_str).filter(|n| !placed.contains(n)).collect();
            return Err(invalid(format!(
                "vertices {} read inputs that are neither the network input `{data}` nor another vertex \
                 (or form a cycle)",
                stuck.join(", ")
            )));
        };
        placed.insert(next);
        sorted.push(next);
    }
    // DL4J's input becomes Strom's `input`; a vertex Strom keeps nothing for (a dropout layer
    // with no dropout) stands for its input.
    let mut alias: std::collections::HashMap<String, String> =
        std::collections::HashMap::from([(data.clone(), INPUT_NAME.to_string())]);
    let mut layers = Vec::new();
    let mut seed = None;
    for name in sorted {
        let vertex = &vertices[name];
        let class = class_of(vertex);
        let at = format!("vertex {name} ({class})");
        let inputs: Vec<String> =
            inputs_of(name).iter().map(|i| alias.get(i).cloned().unwrap_or_else(|| i.clone())).collect();
        if name == INPUT_NAME && name != data {
            reader.unsupported.push(format!("{at}: the name `{INPUT_NAME}` is Strom's name for the data"));
        }
        let specs = match class {
            "LayerVertex" => {
                let conf = &vertex["layerConf"];
                seed = seed.or_else(|| conf.get("seed").and_then(Value::as_i64));
                let layer = &conf["layer"];
                let at = format!("vertex {name} ({})", class_of(layer));
                match vertex.get("preProcessor").filter(|p| !p.is_null()).map(class_of) {
                    None | Some("CnnToFeedForwardPreProcessor") => {}
                    Some("FeedForwardToCnnPreProcessor") if inputs == [INPUT_NAME] => {
                        reader.notes.push(format!(
                            "{name}: DL4J reshapes flat input to images here; Strom reads images as images"
                        ))
                    }
                    Some(other) => reader.unsupported.push(format!("{at}: preprocessor {other}")),
                }
                let is_output = name == output;
                let specs = reader.layer(layer, &at, is_output);
                if is_output {
                    let feeds = layers.last().map(|e: &LayerEntry| entry_name(e));
                    if inputs.len() != 1 || feeds != Some(inputs[0].as_str()) {
                        reader.unsupported.push(format!(
                            "{at}: the output layer must read the one vertex every other vertex leads to \
                             (it reads {})",
                            inputs.join(", ")
                        ));
                    }
                    continue;
                }
                if inputs.len() != 1 {
                    reader.unsupported.push(format!("{at}: a layer with {} inputs", inputs.len()));
                }
                specs
            }
            "ElementWiseVertex" => match text(vertex, "op") {
                Some("Add") => vec![LayerSpec::Add(Add {})],
                other => {
                    reader.unsupported.push(format!("{at}: element-wise {}", other.unwrap_or("?")));
                    Vec::new()
                }
            },
            "MergeVertex" => {
                if vertex.get("mergeAxis").and_then(Value::as_i64).is_some_and(|a| a != 1) {
                    reader.unsupported.push(format!("{at}: a merge along another axis than channels"));
                }
                vec![LayerSpec::Concat(Concat {})]
            }
            _ => {
                reader.unsupported.push(at);
                Vec::new()
            }
        };
        // The vertex's layers in a row: the first reads the vertex's inputs, the last carries
        // its name (a dropout DL4J applies to the input comes first, as `NAME_dropout`).
        let count = specs.len();
        if count == 0 {
            if let [only] = inputs.as_slice() {
                alias.insert(name.to_string(), only.clone());
            }
            continue;
        }
        let mut from = inputs;
        for (k, layer) in specs.into_iter().enumerate() {
            let node =
                if k + 1 == count { name.to_string() } else { format!("{name}_{}", layer.layer().kind()) };
            layers.push(LayerEntry::Node { layer, name: Some(node.clone()), inputs: Some(from) });
            from = vec![node];
        }
    }
    if vertices.get(output.as_str()).is_none_or(|v| class_of(&v["layerConf"]["layer"]) != "OutputLayer") {
        reader.unsupported.push(format!("network output {output}: not an OutputLayer"));
    }
    reader.finish(file, seed, layers)
}

fn entry_name(entry: &LayerEntry) -> &str {
    match entry {
        LayerEntry::Node { name: Some(n), .. } => n,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layer(class: &str, extra: Value) -> Value {
        let mut l = json!({
            "@class": format!("org.deeplearning4j.nn.conf.layers.{class}"),
            "activationFn": {"@class": "org.nd4j.linalg.activations.impl.ActivationReLU"},
            "iupdater": {"@class": "org.nd4j.linalg.learning.config.Sgd", "learningRate": 0.1},
            "nout": 8
        });
        if let (Some(l), Some(e)) = (l.as_object_mut(), extra.as_object()) {
            l.extend(e.clone());
        }
        json!({"@class": "org.deeplearning4j.nn.conf.graph.LayerVertex", "layerConf": {"layer": l, "seed": 7}})
    }

    fn output() -> Value {
        layer(
            "OutputLayer",
            json!({"activationFn": {"@class": "org.nd4j.linalg.activations.impl.ActivationSoftmax"},
                   "lossFn": {"@class": "org.nd4j.linalg.lossfunctions.impl.LossMCXENT"}}),
        )
    }

    /// A graph file with `vertices` in the order given (the text keeps it).
    fn graph_json(vertices: &[(&str, Value, &[&str])], outputs: &[&str]) -> String {
        let body: Vec<String> =
            vertices.iter().map(|(n, v, _)| format!("{}: {v}", Value::from(*n))).collect();
        let edges: serde_json::Map<String, Value> =
            vertices.iter().map(|(n, _, i)| (n.to_string(), json!(i))).collect();
        format!(
            "{{\"networkInputs\": [\"in\"], \"networkOutputs\": {}, \"vertexInputs\": {}, \"vertices\": {{{}}}}}",
            json!(outputs),
            Value::Object(edges),
            body.join(", ")
        )
    }

    fn names_and_inputs(job: &JobSpec) -> Vec<(String, Vec<String>)> {
        job.model
            .layers
            .iter()
            .flatten()
            .map(|e| match e {
                LayerEntry::Node { name, inputs, .. } => {
                    (name.clone().unwrap_or_default(), inputs.clone().unwrap_or_default())
                }
                _ => panic!("a graph's layers are named"),
            })
            .collect()
    }

    #[test]
    fn a_graph_keeps_the_files_order_renames_the_input_and_carries_dropout_as_its_own_node() {
        let file = graph_json(
            &[
                // Listed before the vertex it reads: placed after it.
                ("late", layer("DenseLayer", json!({})), &["first"]),
                (
                    "first",
                    layer("DenseLayer", json!({"idropout": {"@class": "x.Dropout", "p": 0.8}})),
                    &["in"],
                ),
                ("drop", layer("DropoutLayer", json!({})), &["late"]),
                ("out", output(), &["drop"]),
            ],
            &["out"],
        );
        let imported = import(&file, "g.json").unwrap();
        assert_eq!(
            names_and_inputs(&imported.job),
            [
                ("first_dropout".to_string(), vec!["input".to_string()]),
                ("first".into(), vec!["first_dropout".into()]),
                ("late".into(), vec!["first".into()]),
                // A DropoutLayer without a dropout keeps nothing: `out` reads `late`.
            ]
        );
        assert_eq!(imported.job.train.seed, 7);
    }

    #[test]
    fn graph_errors_name_what_strom_cannot_take() {
        let two = graph_json(
            &[
                ("a", layer("DenseLayer", json!({})), &["in"]),
                ("out", output(), &["a"]),
                ("out2", output(), &["a"]),
            ],
            &["out", "out2"],
        );
        let err = import(&two, "g.json").err().unwrap().to_string();
        assert!(err.contains("2 network outputs (out, out2)"), "{err}");

        let dangling = graph_json(
            &[("a", layer("DenseLayer", json!({})), &["nowhere"]), ("out", output(), &["a"])],
            &["out"],
        );
        let err = import(&dangling, "g.json").err().unwrap().to_string();
        assert!(err.contains("g.json") && err.contains("vertices a, out read inputs"), "{err}");

        // An output layer that does not read the vertex everything leads to.
        let side = graph_json(
            &[
                ("a", layer("DenseLayer", json!({})), &["in"]),
                ("b", layer("DenseLayer", json!({})), &["in"]),
                ("out", output(), &["a"]),
            ],
            &["out"],
        );
        let err = import(&side, "g.json").err().unwrap().to_string();
        assert!(err.contains("vertex out (OutputLayer): the output layer must read"), "{err}");
    }
}
