//! `[sharing]`: how workers share updates (threshold, top-k, PowerSGD, dense fp16, averaging,
//! none) and each scheme's knobs. The schemes themselves live in `sharing/`.

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
    /// Deep Gradient Compression: the top-k of the accumulated gradient, with error feedback
    /// and momentum correction (Lin et al. 2018).
    Topk,
    /// Low-rank gradients by power iteration, summed across workers (Vogels et al. 2019).
    Powersgd,
    /// The whole gradient in 16-bit floats, summed across workers every step.
    Dense16,
}

impl SharingMode {
    pub const ALL: [SharingMode; 6] = [
        SharingMode::Threshold,
        SharingMode::Topk,
        SharingMode::Powersgd,
        SharingMode::Dense16,
        SharingMode::Averaging,
        SharingMode::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SharingMode::Threshold => "threshold",
            SharingMode::Averaging => "averaging",
            SharingMode::None => "none",
            SharingMode::Topk => "topk",
            SharingMode::Powersgd => "powersgd",
            SharingMode::Dense16 => "dense16",
        }
    }
}

/// What threshold sharing encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareWhat {
    /// The updater's output: each worker runs its own updater (Strom 2015, DL4J).
    Update,
    /// The gradient: every worker applies its updater to the sum of what all workers sent.
    Gradient,
}

/// `[sharing.topk]`: Deep Gradient Compression's knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopkSpec {
    /// Fraction of the entries sent each step once warmed up.
    pub density: f32,
    /// Epochs over which the density falls exponentially from 25 % to `density`.
    pub warmup_epochs: f32,
    /// Local gradient clipping: the L2 norm each worker clips its gradient to, scaled by
    /// 1/sqrt(workers); 0: off.
    pub clip_norm: f32,
}

impl Default for TopkSpec {
    fn default() -> Self {
        TopkSpec { density: 1e-3, warmup_epochs: 4.0, clip_norm: 0.0 }
    }
}

/// `[sharing.powersgd]`: PowerSGD's knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowersgdSpec {
    /// Rank of the approximation.
    pub rank: u32,
    /// Steps of dense all-reduce before compression starts.
    pub warmup_steps: u32,
    /// The error feedback's norm is kept within this many times the step's gradient norm;
    /// 0: unbounded.
    pub error_clip: f32,
}

impl Default for PowersgdSpec {
    fn default() -> Self {
        PowersgdSpec { rank: 2, warmup_steps: 100, error_clip: 2.0 }
    }
}

/// The 16-bit float format of `dense16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HalfKind {
    F16,
    Bf16,
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
    /// Threshold sharing: what is encoded.
    pub share: ShareWhat,
    /// Threshold sharing with an adapting tau: set tau on the first step to the quantile of
    /// that step's values the band asks for, instead of starting at `initial`. Unset: only
    /// when the gradient is encoded (`initial` is given at the scale of an updater's output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_tau: Option<bool>,
    pub topk: TopkSpec,
    pub powersgd: PowersgdSpec,
    /// dense16: f16 or bf16.
    pub precision: HalfKind,
}

impl Default for SharingSpec {
    fn default() -> Self {
        SharingSpec {
            mode: None,
            algorithm: ThresholdSpec::default(),
            residual_clip: ResidualClipSpec::default(),
            follow_lr: true,
            averaging_frequency: 5,
            share: ShareWhat::Update,
            place_tau: None,
            topk: TopkSpec::default(),
            powersgd: PowersgdSpec::default(),
            precision: HalfKind::F16,
        }
    }
}
