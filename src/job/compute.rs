//! `[compute]`: what each worker computes on (the backend, the CUDA device, CPU threads).
//! These keys were once in `[cluster]`; a job file that still puts them there is read with a
//! warning naming the new key.

use serde::{Deserialize, Serialize};

use super::ClusterSpec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Cpu,
    Cuda,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeSpec {
    pub backend: BackendKind,
    /// backend = "cuda": the device ordinal (`--device cuda:N`).
    pub cuda_device: usize,
    /// backend = "cuda": train on the CPU (with a warning) where no CUDA device can be used,
    /// instead of stopping.
    pub cpu_fallback: bool,
    /// CPU threads each worker computes with. 0: the machine's cores shared among the workers
    /// that run on it (embedded and local: all of them; SSH: those of one host; Spark: one).
    pub threads: usize,
}

impl Default for ComputeSpec {
    fn default() -> Self {
        ComputeSpec { backend: BackendKind::Cpu, cuda_device: 0, cpu_fallback: false, threads: 0 }
    }
}

/// The keys `[compute]` took over from `[cluster]`.
pub(super) const KEYS: [&str; 4] = ["backend", "cuda_device", "cpu_fallback", "threads"];

/// The error for a key given in `[cluster]` (its old place) and `[compute]` with two values.
pub(super) fn both_places(key: &str, file: Option<&str>) -> super::JobError {
    super::JobError::Invalid {
        file: file.map(str::to_string),
        errors: vec![super::KeyError {
            key: format!("cluster.{key}"),
            line: None,
            message: format!("moved to `compute.{key}`, which gives another value: give it once, there"),
        }],
    }
}

/// Moves the `[compute]` keys an older job file gives in `[cluster]` to `compute`; returns the
/// keys moved, or the first one also given in `[compute]` with another value.
pub(super) fn move_legacy(
    cluster: &mut ClusterSpec,
    compute: &mut ComputeSpec,
) -> Result<Vec<&'static str>, &'static str> {
    let defaults = ComputeSpec::default();
    let mut moved = Vec::new();
    macro_rules! take {
        ($legacy:ident, $field:ident) => {
            if let Some(v) = cluster.$legacy.take() {
                if compute.$field != defaults.$field && compute.$field != v {
                    return Err(stringify!($field));
                }
                compute.$field = v;
                moved.push(stringify!($field));
            }
        };
    }
    take!(legacy_backend, backend);
    take!(legacy_cuda_device, cuda_device);
    take!(legacy_cpu_fallback, cpu_fallback);
    take!(legacy_threads, threads);
    Ok(moved)
}
