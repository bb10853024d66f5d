//! `[sharing]`: how workers share updates (threshold, averaging, none).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharingMode {
    /// Threshold-encoded, residual-accumulated updates (Strom 2015).
    Threshold,
    /// Parameter averaging every `averaging_frequency` minibatches.
    Averaging,
    /// A single worker, no exchange.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ThresholdSpec {
    /// Keep tau constant.
    Fixed {
        #[serde(default = "default_tau")]
        tau: f32,
    },
    /// Move tau so the fraction of entries sent stays within [min_sparsity, max_sparsity].
    Adaptive {
        #[serde(default = "default_tau")]
        initial: f32,
        #[serde(default = "default_min_sparsity")]
        min_sparsity: f32,
        #[serde(default = "default_max_sparsity")]
        max_sparsity: f32,
    },
    /// Move tau toward one target fraction of entries sent.
    Target {
        #[serde(default = "default_tau")]
        initial: f32,
        #[serde(default = "default_target")]
        target: f32,
    },
}

fn default_tau() -> f32 {
    1e-3
}
fn default_min_sparsity() -> f32 {
    1e-4
}
fn default_max_sparsity() -> f32 {
    1e-2
}
fn default_target() -> f32 {
    1e-3
}

impl Default for ThresholdSpec {
    fn default() -> Self {
        ThresholdSpec::Adaptive {
            initial: default_tau(),
            min_sparsity: default_min_sparsity(),
            max_sparsity: default_max_sparsity(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResidualClipSpec {
    /// Clip the residual to ±multiple·tau ...
    pub multiple: f32,
    /// ... every this many steps; 0 turns clipping off.
    pub every: u32,
}

impl Default for ResidualClipSpec {
    fn default() -> Self {
        ResidualClipSpec { multiple: 5.0, every: 5 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharingSpec {
    /// threshold | averaging | none. Unset: threshold with several workers, none with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SharingMode>,
    pub algorithm: ThresholdSpec,
    pub residual_clip: ResidualClipSpec,
    /// Scale the residual and an adapting tau with the learning-rate schedule.
    pub follow_lr: bool,
    /// Minibatches between parameter averages (averaging mode).
    pub averaging_frequency: u32,
}

impl Default for SharingSpec {
    fn default() -> Self {
        SharingSpec {
            mode: None,
            algorithm: ThresholdSpec::default(),
            residual_clip: ResidualClipSpec::default(),
            follow_lr: true,
            averaging_frequency: 5,
        }
    }
}
