//! A DL4J `MultiLayerConfiguration` (`toJson()`) as a Strom job: the same layers, activations,
//! updater, learning rate, L2, weight initialisation and seed.
//!
//! What differs in meaning, not only in name: DL4J's `idropout` on a layer drops that layer's
//! *input* with retain probability `p`, so it becomes a `dropout` layer with rate `1 - p` in
//! front of it; an `OutputLayer` becomes Strom's output layer, which takes its width from the
//! data; a non-identity activation on `BatchNormalization` stays on it.

use serde_json::Value;

use super::{ImportError, class_of, number, pair, text};
use crate::job::{JobSpec, LrSchedule, UpdaterKind};
use crate::nn::layers::{
    ActivationLayer, AvgPool2d, BatchNorm, Conv2d, Dense, Dropout, GlobalAvgPool, LayerEntry, LayerSpec,
    MaxPool2d, Padding, Pair,
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

/// Reads `json` (the file's text); `file` names it in errors.
pub fn import(json: &str, file: &str) -> Result<Imported, ImportError> {
    let root = super::parse(json, file)?;
    let invalid = |message: &str| ImportError::Invalid { file: file.into(), message: message.into() };
    let confs = root.get("confs").and_then(Value::as_array).ok_or_else(|| {
        invalid(
            "no `confs` list: expected a MultiLayerConfiguration as DL4J's toJson() writes it \
             (a ComputationGraph configuration is not supported)",
        )
    })?;
    if confs.is_empty() {
        return Err(invalid("`confs` is empty"));
    }
    let mut job = JobSpec::default();
    let mut notes = Vec::new();
    let mut unsupported = Vec::new();
    let mut layers = Vec::new();
    let mut updater: Option<Value> = None;
    let mut l2: Option<f64> = None;
    let mut init: Option<&str> = None;
    let last = confs.len() - 1;
    for (i, conf) in confs.iter().enumerate() {
        let Some(layer) = conf.get("layer") else {
            unsupported.push(format!("layer {i}: no `layer` object"));
            continue;
        };
        let class = class_of(layer);
        let at = format!("layer {i} ({class})");
        if updater.is_none() {
            updater = layer.get("iupdater").filter(|u| !u.is_null()).cloned();
        }
        if let Some(regs) = layer.get("regularization").and_then(Value::as_array) {
            for r in regs {
                match class_of(r) {
                    "L2Regularization" => l2 = l2.or(number(r, "l2")),
                    other => unsupported.push(format!("{at}: regularization {other}")),
                }
            }
        }
        if let Some(w) = layer.get("weightInitFn").filter(|w| !w.is_null()) {
            init = init.or(Some(class_of(w)));
        }
        // Dropout on the layer's input, with DL4J's retain probability.
        if let Some(d) = layer.get("idropout").filter(|d| !d.is_null()) {
            match (class_of(d), number(d, "p")) {
                ("Dropout", Some(p)) if p > 0.0 && p < 1.0 => {
                    layers.push(LayerSpec::Dropout(Dropout { rate: (1.0 - p) as f32 }))
                }
                ("Dropout", _) => {}
                (other, _) => unsupported.push(format!("{at}: dropout {other}")),
            }
        }
        let act = activation(layer).unwrap_or_else(|e| {
            unsupported.push(format!("{at}: {e}"));
            Activation::Identity
        });
        let units = layer.get("nout").and_then(Value::as_u64).unwrap_or(0) as usize;
        match class {
            "DenseLayer" => layers.push(LayerSpec::Dense(Dense { units, activation: act })),
            "ConvolutionLayer" => {
                if pair(layer, "dilation").is_some_and(|d| d != (1, 1)) {
                    unsupported.push(format!("{at}: dilation"));
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
                    other => unsupported.push(format!("{at}: pooling {}", other.unwrap_or("?"))),
                }
            }
            "GlobalPoolingLayer" => match text(layer, "poolingType") {
                Some("AVG") => layers.push(LayerSpec::GlobalAvgPool(GlobalAvgPool {})),
                other => unsupported.push(format!("{at}: global pooling {}", other.unwrap_or("?"))),
            },
            "BatchNormalization" => {
                if layer.get("lockGammaBeta").and_then(Value::as_bool) == Some(true) {
                    unsupported.push(format!("{at}: lockGammaBeta"));
                }
                layers.push(LayerSpec::BatchNorm(BatchNorm {
                    decay: number(layer, "decay").unwrap_or(0.9) as f32,
                    epsilon: number(layer, "eps").unwrap_or(1e-5) as f32,
                    activation: act,
                }))
            }
            "DropoutLayer" => {} // its idropout was handled above
            "ActivationLayer" => layers.push(LayerSpec::Activation(ActivationLayer { activation: act })),
            "OutputLayer" if i == last => {
                let a = act;
                let loss = layer.get("lossFn").map(class_of).unwrap_or("");
                match (loss, a) {
                    ("LossMCXENT" | "LossNegativeLogLikelihood", Activation::Softmax) => {
                        job.model.loss = Loss::Xent
                    }
                    ("LossMSE" | "LossL2", Activation::Identity) => job.model.loss = Loss::Mse,
                    _ => unsupported.push(format!("{at}: loss {loss} with activation {}", a.name())),
                }
                notes.push(format!(
                    "output layer: {units} outputs in DL4J; Strom's output layer takes its width from the data"
                ));
            }
            "OutputLayer" => unsupported.push(format!("{at}: an output layer before the last layer")),
            "" => unsupported.push(format!("layer {i}: no @class")),
            _ => unsupported.push(at),
        }
    }
    let last_class = class_of(&confs[last]["layer"]);
    if last_class != "OutputLayer" && !unsupported.iter().any(|u| u.starts_with(&format!("layer {last} ("))) {
        unsupported.push(format!("layer {last} ({last_class}): the last layer must be an OutputLayer"));
    }
    let updater_name = updater.as_ref().map(class_of).unwrap_or("");
    let u = &mut job.train.updater;
    match updater_name {
        "Adam" => {
            u.kind = Some(UpdaterKind::Adam);
            let up = updater.as_ref().unwrap_or(&Value::Null);
            u.beta1 = number(up, "beta1").unwrap_or(0.9) as f32;
            u.beta2 = number(up, "beta2").unwrap_or(0.999) as f32;
            u.epsilon = number(up, "epsilon").unwrap_or(1e-8) as f32;
        }
        "Nesterovs" => {
            u.kind = Some(UpdaterKind::Nesterov);
            u.momentum = updater.as_ref().and_then(|up| number(up, "momentum")).unwrap_or(0.9) as f32;
        }
        "Sgd" => u.kind = Some(UpdaterKind::Sgd),
        "RmsProp" => {
            u.kind = Some(UpdaterKind::Rmsprop);
            let up = updater.as_ref().unwrap_or(&Value::Null);
            u.rho = number(up, "rmsDecay").unwrap_or(0.95) as f32;
            u.epsilon = number(up, "epsilon").unwrap_or(1e-8) as f32;
        }
        "" => notes.push("no updater in the configuration: Strom's default applies".into()),
        other => unsupported.push(format!("updater {other}")),
    }
    if let Some(up) = &updater {
        u.lr = number(up, "learningRate").map(|lr| lr as f32);
        if up.get("learningRateSchedule").is_some_and(|s| !s.is_null()) {
            notes
                .push("a learning-rate schedule: only its base rate was kept (see train.lr_schedule)".into());
        }
    }
    job.train.l2 = l2.unwrap_or(0.0) as f32;
    // DL4J keeps the learning rate unless a schedule says otherwise.
    job.train.lr_schedule = LrSchedule::Constant;
    match init {
        Some("WeightInitRelu") | Some("WeightInitReluUniform") | None => job.model.init = Init::He,
        Some("WeightInitXavier") | Some("WeightInitXavierUniform") => job.model.init = Init::Xavier,
        Some(other) => {
            notes.push(format!("weight init {other}: Strom starts from He initialisation instead"));
            job.model.init = Init::He;
        }
    }
    if let Some(seed) = confs[0].get("seed").and_then(Value::as_i64) {
        job.train.seed = seed as u64;
    }
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported { file: file.into(), items: unsupported });
    }
    job.name = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "imported".into());
    job.model.layers = Some(layers.into_iter().map(LayerEntry::Layer).collect());
    Ok(Imported { job, notes })
}
