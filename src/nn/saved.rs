//! Model files: `model.safetensors` (one named tensor per parameter and running-state tensor:
//! `layers.0.conv2d.weight`, `layers.3.batch_norm.running_mean`, ...), `model.json`
//! (architecture with its layer list, preprocessing, class names, progress, the job) and, for
//! `--resume`, `optimizer.safetensors`. Each file is written atomically; `model.json` goes last, so a
//! directory with a `model.json` always holds a complete model.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::{Architecture, UpdaterState};
use crate::job::{JobSpec, UpdaterKind};
use crate::storage::{Location, StorageError, write_atomic_all};

pub const MODEL_JSON: &str = "model.json";
pub const MODEL_TENSORS: &str = "model.safetensors";
pub const OPTIMIZER_TENSORS: &str = "optimizer.safetensors";
/// 2: typed layers, tensors named `layers.N.<type>.<name>`. 1 (still read): dense layers only,
/// tensors named `layers.K.weight` / `layers.K.bias` for the K-th dense layer.
const FORMAT_VERSION: u32 = 2;

/// How raw inputs become the network's inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Preprocessing {
    /// Multiply each byte by `scale` (1/255 for images).
    ImageScale { scale: f32 },
    /// Features are used as they are.
    Identity,
    /// Table rows go through this transform process (fitted statistics included).
    Transform { process: Box<crate::data::transform::TransformProcess> },
    /// Text becomes ids through the training text's vocabulary (characters or bytes).
    Text { vocabulary: crate::data::text::Vocabulary },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub epochs_completed: u32,
    pub steps: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub format_version: u32,
    pub created_by: String,
    pub architecture: Architecture,
    pub preprocessing: Preprocessing,
    pub class_names: Vec<String>,
    pub progress: Progress,
    pub job: JobSpec,
}

impl ModelMeta {
    pub fn new(
        architecture: Architecture,
        preprocessing: Preprocessing,
        class_names: Vec<String>,
        progress: Progress,
        job: JobSpec,
    ) -> ModelMeta {
        ModelMeta {
            format_version: FORMAT_VERSION,
            created_by: format!("strom {}", env!("CARGO_PKG_VERSION")),
            architecture,
            preprocessing,
            class_names,
            progress,
            job,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SavedModel {
    pub meta: ModelMeta,
    /// The model state: parameters, then running state.
    pub state: Vec<f32>,
    pub optimizer: Option<UpdaterState>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

fn invalid(file: &Location, message: impl Into<String>) -> ModelFileError {
    ModelFileError::Invalid { file: file.to_string(), message: message.into() }
}

/// An f32 buffer as little-endian bytes (model files, checkpoints, the wire).
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes back to f32; the length must be a multiple of 4.
pub fn f32_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

pub(crate) fn tensor_f32(
    st: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    file: &Location,
) -> Result<Vec<f32>, ModelFileError> {
    let t = st.tensor(name).map_err(|e| invalid(file, format!("tensor '{name}': {e}")))?;
    if t.dtype() != Dtype::F32 {
        return Err(invalid(file, format!("tensor '{name}' is {:?}, expected F32", t.dtype())));
    }
    if t.shape() != shape {
        return Err(invalid(file, format!("tensor '{name}' has shape {:?}, expected {shape:?}", t.shape())));
    }
    Ok(f32_from_bytes(t.data()))
}

impl SavedModel {
    /// Writes the model into directory `dir`.
    pub fn save(&self, dir: &Location) -> Result<(), ModelFileError> {
        self.save_with(dir, &[])
    }

    /// Writes the model into directory `dir`, with `extra` files (name, bytes) beside it. The
    /// tensors are written first, side by side; `model.json`, which makes the folder a model,
    /// and the extra files after them.
    pub fn save_with(&self, dir: &Location, extra: &[(&str, &[u8])]) -> Result<(), ModelFileError> {
        let layout = self.meta.architecture.layout();
        if self.state.len() != layout.state_len() {
            return Err(invalid(
                dir,
                format!("{} values for a model state of {}", self.state.len(), layout.state_len()),
            ));
        }
        let (params, running) = self.state.split_at(layout.len);
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for t in layout.tensors() {
            tensors.push((t.name.clone(), t.dims.clone(), f32_bytes(&params[t.range.clone()])));
        }
        for r in layout.running_tensors() {
            tensors.push((r.name.clone(), vec![r.range.len()], f32_bytes(&running[r.range.clone()])));
        }
        let model_file = dir.join(MODEL_TENSORS);
        let bytes = serialize(&tensors, None).map_err(|e| invalid(&model_file, e))?;

        let opt_file = dir.join(OPTIMIZER_TENSORS);
        let opt_bytes = match &self.optimizer {
            Some(state) => {
                let mut t = Vec::new();
                if !state.first.is_empty() {
                    t.push(("first".to_string(), vec![state.first.len()], f32_bytes(&state.first)));
                }
                if !state.second.is_empty() {
                    t.push(("second".to_string(), vec![state.second.len()], f32_bytes(&state.second)));
                }
                let info = HashMap::from([
                    ("kind".to_string(), serde_json::to_string(&state.kind).unwrap_or_default()),
                    ("step".to_string(), state.step.to_string()),
                ]);
                Some(serialize(&t, Some(info)).map_err(|e| invalid(&opt_file, e))?)
            }
            None => None,
        };
        match &opt_bytes {
            Some(b) => write_atomic_all(&[(&model_file, &bytes), (&opt_file, b)])?,
            None => {
                opt_file.remove_file()?;
                model_file.write_atomic(&bytes)?;
            }
        }
        // Whatever version it was read as, it is written as this one.
        let meta = ModelMeta { format_version: FORMAT_VERSION, ..self.meta.clone() };
        let meta_file = dir.join(MODEL_JSON);
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| invalid(&meta_file, e.to_string()))?;
        let extra: Vec<(Location, &[u8])> = extra.iter().map(|(name, b)| (dir.join(name), *b)).collect();
        let mut files: Vec<(&Location, &[u8])> = vec![(&meta_file, &json)];
        files.extend(extra.iter().map(|(l, b)| (l, *b)));
        write_atomic_all(&files)?;
        Ok(())
    }

    /// Reads a model directory written by [`SavedModel::save`] (this version or the last).
    pub fn load(dir: &Location) -> Result<SavedModel, ModelFileError> {
        let meta_file = dir.join(MODEL_JSON);
        let meta_bytes = meta_file.read().map_err(|e| match e {
            StorageError::NotFound { .. } => {
                invalid(dir, "no model.json here: not a model directory (written by `strom train --output`)")
            }
            other => other.into(),
        })?;
        let meta: ModelMeta =
            serde_json::from_slice(&meta_bytes).map_err(|e| invalid(&meta_file, e.to_string()))?;
        if !(1..=FORMAT_VERSION).contains(&meta.format_version) {
            return Err(invalid(
                &meta_file,
                format!(
                    "format version {} is not supported (this build reads 1 to {FORMAT_VERSION})",
                    meta.format_version
                ),
            ));
        }
        let layout = meta.architecture.layout();
        let tensor_file = dir.join(MODEL_TENSORS);
        let bytes = tensor_file.read()?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| invalid(&tensor_file, e.to_string()))?;
        let mut state = vec![0.0f32; layout.state_len()];
        let (params, running) = state.split_at_mut(layout.len);
        if meta.format_version == 1 {
            // Dense layers only: `layers.K.weight` [inputs, units] and `layers.K.bias`.
            let dense = layout.layers.iter().filter(|l| !l.tensors.is_empty());
            for (k, l) in dense.enumerate() {
                for (t, suffix) in l.tensors.iter().zip(["weight", "bias"]) {
                    let name = format!("layers.{k}.{suffix}");
                    params[t.range.clone()].copy_from_slice(&tensor_f32(&st, &name, &t.dims, &tensor_file)?);
                }
            }
        } else {
            for t in layout.tensors() {
                params[t.range.clone()].copy_from_slice(&tensor_f32(&st, &t.name, &t.dims, &tensor_file)?);
            }
            for r in layout.running_tensors() {
                running[r.range.clone()].copy_from_slice(&tensor_f32(
                    &st,
                    &r.name,
                    &[r.range.len()],
                    &tensor_file,
                )?);
            }
        }
        if state.iter().any(|p| !p.is_finite()) {
            return Err(invalid(&tensor_file, "parameters or running state contain NaN or infinity"));
        }
        let opt_file = dir.join(OPTIMIZER_TENSORS);
        let optimizer = match opt_file.read() {
            Ok(bytes) => Some(read_optimizer(&opt_file, &bytes, layout.len)?),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        Ok(SavedModel { meta, state, optimizer })
    }
}

fn read_optimizer(file: &Location, bytes: &[u8], len: usize) -> Result<UpdaterState, ModelFileError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| invalid(file, e.to_string()))?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| invalid(file, e.to_string()))?;
    let info = metadata.metadata().clone().unwrap_or_default();
    let kind: UpdaterKind = info
        .get("kind")
        .and_then(|k| serde_json::from_str(k).ok())
        .ok_or_else(|| invalid(file, "missing or unknown updater kind in the metadata"))?;
    let step: u64 = info
        .get("step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(file, "missing step count in the metadata"))?;
    let names = st.names();
    let get = |name: &str| -> Result<Vec<f32>, ModelFileError> {
        if names.contains(&name) { tensor_f32(&st, name, &[len], file) } else { Ok(Vec::new()) }
    };
    Ok(UpdaterState { kind, step, first: get("first")?, second: get("second")? })
}

pub(crate) fn serialize(
    tensors: &[(String, Vec<usize>, Vec<u8>)],
    info: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, String> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, shape, data)| TensorView::new(Dtype::F32, shape.clone(), data).map(|v| (n.clone(), v)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize(views, info).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ModelPreset, ModelSpec};
    use crate::nn::Shape;

    fn model(spec: ModelSpec, input: Shape) -> SavedModel {
        let arch = Architecture::from_job(&spec, input, 2).unwrap();
        let n = arch.param_count();
        SavedModel {
            state: (0..arch.state_len()).map(|i| i as f32 * 0.5).collect(),
            meta: ModelMeta::new(
                arch,
                Preprocessing::ImageScale { scale: 1.0 / 255.0 },
                vec!["a".into(), "b".into()],
                Progress { epochs_completed: 2, steps: 10 },
                JobSpec::default(),
            ),
            optimizer: Some(UpdaterState {
                kind: UpdaterKind::Adam,
                step: 10,
                first: vec![0.25; n],
                second: vec![0.5; n],
            }),
        }
    }

    fn mlp() -> SavedModel {
        model(ModelSpec { hidden: vec![3], ..ModelSpec::default() }, Shape::Vector(4))
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        let m = mlp();
        m.save(&loc).unwrap();
        assert_eq!(SavedModel::load(&loc).unwrap(), m);
    }

    #[test]
    fn cnn_round_trip_with_named_tensors_and_running_state() {
        let spec = ModelSpec {
            layers: Some(vec![
                crate::nn::layers::LayerEntry::Layer(crate::nn::layers::LayerSpec::conv(
                    3,
                    3,
                    crate::nn::layers::Padding::Same,
                    crate::nn::Activation::Identity,
                )),
                crate::nn::layers::LayerEntry::Layer(crate::nn::layers::LayerSpec::BatchNorm(
                    Default::default(),
                )),
            ]),
            ..ModelSpec::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        let m = model(spec, Shape::image(1, 4, 4));
        m.save(&loc).unwrap();
        let bytes = loc.join(MODEL_TENSORS).read().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(
            names,
            [
                "layers.0.conv2d.bias",
                "layers.0.conv2d.weight",
                "layers.1.batch_norm.running_mean",
                "layers.1.batch_norm.running_var",
                "layers.1.batch_norm.scale",
                "layers.1.batch_norm.shift",
                "layers.2.dense.bias",
                "layers.2.dense.weight",
            ]
        );
        assert_eq!(st.tensor("layers.0.conv2d.weight").unwrap().shape(), [3, 1, 3, 3]);
        assert_eq!(SavedModel::load(&loc).unwrap(), m);
        let _ = ModelPreset::Cnn;
    }

    #[test]
    fn a_model_written_before_layer_types_still_loads() {
        // model.json and tensor names as format 1 wrote them: dense layers K with dropout on
        // a layer's input, tensors `layers.K.weight` [inputs, units] and `layers.K.bias`.
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        let w0: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let b0 = vec![0.5f32; 3];
        let w1: Vec<f32> = (0..6).map(|i| -(i as f32)).collect();
        let b1 = vec![0.25f32; 2];
        let tensors = vec![
            ("layers.0.weight".to_string(), vec![4, 3], f32_bytes(&w0)),
            ("layers.0.bias".to_string(), vec![3], f32_bytes(&b0)),
            ("layers.1.weight".to_string(), vec![3, 2], f32_bytes(&w1)),
            ("layers.1.bias".to_string(), vec![2], f32_bytes(&b1)),
        ];
        loc.join(MODEL_TENSORS).write_atomic(&serialize(&tensors, None).unwrap()).unwrap();
        let mut job = serde_json::to_value(JobSpec::default()).unwrap();
        job["model"]["layers"] = serde_json::json!([{ "units": 3, "activation": "tanh", "dropout": 0.25 }]);
        let meta = serde_json::json!({
            "format_version": 1,
            "created_by": "strom 0.1.0",
            "architecture": { "inputs": 4, "layers": [
                { "units": 3, "activation": "tanh", "input_dropout": 0.0 },
                { "units": 2, "activation": "softmax", "input_dropout": 0.25 }],
                "loss": "xent", "init": "he" },
            "preprocessing": { "kind": "identity" },
            "class_names": ["a", "b"],
            "progress": { "epochs_completed": 3, "steps": 30 },
            "job": job,
        });
        loc.join(MODEL_JSON).write_atomic(meta.to_string().as_bytes()).unwrap();
        let m = SavedModel::load(&loc).unwrap();
        let expect: Vec<f32> = [w0, b0, w1, b1].concat();
        assert_eq!(m.state, expect);
        assert_eq!(m.meta.architecture.layers().len(), 3, "dense, dropout, dense");
        assert_eq!(m.meta.progress.epochs_completed, 3);
        // Saved again, it is a current model file.
        let again = tempfile::tempdir().unwrap();
        let again = Location::local(again.path());
        m.save(&again).unwrap();
        let reloaded = SavedModel::load(&again).unwrap();
        assert_eq!(reloaded.state, m.state);
        assert_eq!(reloaded.meta.format_version, FORMAT_VERSION);
    }

    #[test]
    fn corrupt_or_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        let e = SavedModel::load(&loc).unwrap_err().to_string();
        assert!(e.contains("not a model directory"), "{e}");
        mlp().save(&loc).unwrap();
        loc.join(MODEL_TENSORS).write_atomic(b"garbage").unwrap();
        let e = SavedModel::load(&loc).unwrap_err().to_string();
        assert!(e.contains("model.safetensors"), "{e}");
        mlp().save(&loc).unwrap();
        loc.join(MODEL_JSON).write_atomic(b"{").unwrap();
        let e = SavedModel::load(&loc).unwrap_err().to_string();
        assert!(e.contains("model.json"), "{e}");
    }
}
