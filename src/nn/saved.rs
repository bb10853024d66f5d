//! Model files: `model.safetensors` (one tensor per layer weight and bias), `model.json`
//! (architecture, preprocessing, class names, progress, the job) and, for `--resume`,
//! `optimizer.safetensors`. Each file is written atomically; `model.json` goes last, so a
//! directory with a `model.json` always holds a complete model.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::{Architecture, UpdaterState};
use crate::job::{JobSpec, UpdaterKind};
use crate::storage::{Location, StorageError};

pub const MODEL_JSON: &str = "model.json";
pub const MODEL_TENSORS: &str = "model.safetensors";
pub const OPTIMIZER_TENSORS: &str = "optimizer.safetensors";
const FORMAT_VERSION: u32 = 1;

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
    pub params: Vec<f32>,
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
        let layout = self.meta.architecture.layout();
        if self.params.len() != layout.len {
            return Err(invalid(
                dir,
                format!("{} parameters for a layout of {}", self.params.len(), layout.len),
            ));
        }
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, l) in layout.layers.iter().enumerate() {
            tensors.push((
                format!("layers.{i}.weight"),
                vec![l.inputs, l.outputs],
                f32_bytes(&self.params[l.weights.clone()]),
            ));
            tensors.push((
                format!("layers.{i}.bias"),
                vec![l.outputs],
                f32_bytes(&self.params[l.bias.clone()]),
            ));
        }
        let bytes = serialize(&tensors, None).map_err(|e| invalid(&dir.join(MODEL_TENSORS), e))?;
        dir.join(MODEL_TENSORS).write_atomic(&bytes)?;

        let opt_file = dir.join(OPTIMIZER_TENSORS);
        match &self.optimizer {
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
                let bytes = serialize(&t, Some(info)).map_err(|e| invalid(&opt_file, e))?;
                opt_file.write_atomic(&bytes)?;
            }
            None => opt_file.remove_file()?,
        }
        let json = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| invalid(&dir.join(MODEL_JSON), e.to_string()))?;
        dir.join(MODEL_JSON).write_atomic(&json)?;
        Ok(())
    }

    /// Reads a model directory written by [`SavedModel::save`].
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
        if meta.format_version != FORMAT_VERSION {
            return Err(invalid(
                &meta_file,
                format!(
                    "format version {} is not supported (expected {FORMAT_VERSION})",
                    meta.format_version
                ),
            ));
        }
        let layout = meta.architecture.layout();
        let tensor_file = dir.join(MODEL_TENSORS);
        let bytes = tensor_file.read()?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| invalid(&tensor_file, e.to_string()))?;
        let mut params = vec![0.0f32; layout.len];
        for (i, l) in layout.layers.iter().enumerate() {
            params[l.weights.clone()].copy_from_slice(&tensor_f32(
                &st,
                &format!("layers.{i}.weight"),
                &[l.inputs, l.outputs],
                &tensor_file,
            )?);
            params[l.bias.clone()].copy_from_slice(&tensor_f32(
                &st,
                &format!("layers.{i}.bias"),
                &[l.outputs],
                &tensor_file,
            )?);
        }
        if params.iter().any(|p| !p.is_finite()) {
            return Err(invalid(&tensor_file, "parameters contain NaN or infinity"));
        }
        let opt_file = dir.join(OPTIMIZER_TENSORS);
        let optimizer = match opt_file.read() {
            Ok(bytes) => Some(read_optimizer(&opt_file, &bytes, layout.len)?),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        Ok(SavedModel { meta, params, optimizer })
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
    use crate::job::ModelSpec;

    fn model() -> SavedModel {
        let arch = Architecture::from_job(&ModelSpec { hidden: vec![3], ..ModelSpec::default() }, 4, 2);
        let n = arch.param_count();
        SavedModel {
            meta: ModelMeta::new(
                arch,
                Preprocessing::ImageScale { scale: 1.0 / 255.0 },
                vec!["a".into(), "b".into()],
                Progress { epochs_completed: 2, steps: 10 },
                JobSpec::default(),
            ),
            params: (0..n).map(|i| i as f32 * 0.5).collect(),
            optimizer: Some(UpdaterState {
                kind: UpdaterKind::Adam,
                step: 10,
                first: vec![0.25; n],
                second: vec![0.5; n],
            }),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        let m = model();
        m.save(&loc).unwrap();
        assert_eq!(SavedModel::load(&loc).unwrap(), m);
    }

    #[test]
    fn corrupt_or_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        let e = SavedModel::load(&loc).unwrap_err().to_string();
        assert!(e.contains("not a model directory"), "{e}");
        model().save(&loc).unwrap();
        loc.join(MODEL_TENSORS).write_atomic(b"garbage").unwrap();
        let e = SavedModel::load(&loc).unwrap_err().to_string();
        assert!(e.contains("model.safetensors"), "{e}");
        model().save(&loc).unwrap();
        loc.join(MODEL_JSON).write_atomic(b"{").unwrap();
        let e = SavedModel::load(&loc).unwrap_err().to_string();
        assert!(e.contains("model.json"), "{e}");
    }
}
