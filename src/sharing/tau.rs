//! How tau moves (fixed, adaptive band, target sparsity) and when the residual is clipped.

use super::{EncodeStats, Format};
use crate::job::{ResidualClipSpec, ThresholdSpec};

/// Per-step factor of tau outside the band: 0.5^(1/20), a factor 2 per 20 steps.
pub const DECAY: f32 = 0.965_936_3;
/// A bitmap step counts as this sparsity, whatever its entry count (DL4J's convention).
const BITMAP_SPARSITY: f64 = 1.0 / 16.0;
const TAU_MIN: f32 = 1e-10;
const TAU_MAX: f32 = super::codec::MAX_TAU;

#[derive(Clone, Debug)]
pub struct Threshold {
    spec: ThresholdSpec,
    tau: f32,
}

impl Threshold {
    pub fn new(spec: &ThresholdSpec) -> Self {
        let tau = match *spec {
            ThresholdSpec::Fixed { tau } => tau,
            ThresholdSpec::Adaptive { initial, .. } | ThresholdSpec::Target { initial, .. } => initial,
        };
        Threshold { spec: spec.clone(), tau }
    }

    pub fn tau(&self) -> f32 {
        self.tau
    }

    /// Continue from a saved tau (checkpoint resume, worker rejoin).
    pub fn set_tau(&mut self, tau: f32) {
        if tau.is_finite() && tau > 0.0 {
            self.tau = tau.clamp(TAU_MIN, TAU_MAX);
        }
    }

    /// Whether tau follows the updates (adaptive band, target); a fixed tau is the user's.
    pub fn adapts(&self) -> bool {
        !matches!(self.spec, ThresholdSpec::Fixed { .. })
    }

    /// Scales tau with the updates (a learning-rate schedule moved them).
    pub fn scale(&mut self, factor: f32) {
        if factor.is_finite() && factor > 0.0 {
            self.tau = (self.tau * factor).clamp(TAU_MIN, TAU_MAX);
        }
    }

    /// Adapts tau after a step.
    pub fn observe(&mut self, stats: &EncodeStats) {
        let sparsity = if stats.format == Format::Bitmap { BITMAP_SPARSITY } else { stats.sparsity };
        let (low, high) = match self.spec {
            ThresholdSpec::Fixed { .. } => return,
            ThresholdSpec::Adaptive { min_sparsity, max_sparsity, .. } => {
                (min_sparsity as f64, max_sparsity as f64)
            }
            ThresholdSpec::Target { target, .. } => (target as f64, target as f64),
        };
        if sparsity < low {
            self.tau *= DECAY; // too few entries sent: lower the bar
        } else if sparsity > high {
            self.tau /= DECAY;
        }
        self.tau = self.tau.clamp(TAU_MIN, TAU_MAX);
    }

    /// The target band of the sparsity ratio, for displays.
    pub fn band(&self) -> Option<(f64, f64)> {
        match self.spec {
            ThresholdSpec::Fixed { .. } => None,
            ThresholdSpec::Adaptive { min_sparsity, max_sparsity, .. } => {
                Some((min_sparsity as f64, max_sparsity as f64))
            }
            ThresholdSpec::Target { target, .. } => Some((target as f64, target as f64)),
        }
    }
}

/// The residual post-processor: every `every` steps clip the residual to ±multiple·tau, so a
/// residual cannot grow without bound when the threshold lags behind the updates.
#[derive(Clone, Debug)]
pub struct ResidualClip {
    multiple: f32,
    every: u32,
    count: u32,
}

impl ResidualClip {
    pub fn new(spec: &ResidualClipSpec) -> Self {
        ResidualClip { multiple: spec.multiple, every: spec.every, count: 0 }
    }

    /// Counts a step; returns the clip limit when this step is due.
    pub fn step(&mut self, tau: f32) -> Option<f32> {
        if self.every == 0 {
            return None;
        }
        self.count += 1;
        if self.count >= self.every {
            self.count = 0;
            Some(self.multiple * tau)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(sparsity: f64, format: Format) -> EncodeStats {
        EncodeStats { entries: 0, format, bytes: 0, sparsity, residual_norm: 0.0 }
    }

    #[test]
    fn adaptive_halves_in_twenty_steps_below_the_band_and_doubles_above() {
        let mut t = Threshold::new(&ThresholdSpec::default());
        for _ in 0..20 {
            t.observe(&stats(1e-6, Format::Sparse));
        }
        assert!((t.tau() - 5e-4).abs() < 1e-6, "{}", t.tau());
        for _ in 0..40 {
            t.observe(&stats(0.5, Format::Sparse));
        }
        assert!((t.tau() - 2e-3).abs() < 1e-5, "{}", t.tau());
        let before = t.tau();
        t.observe(&stats(1e-3, Format::Sparse));
        assert_eq!(t.tau(), before, "inside the band tau stays");
        t.observe(&stats(0.0, Format::Bitmap));
        assert!(t.tau() > before, "a bitmap step counts as 1/16, above the band");
    }

    #[test]
    fn fixed_never_moves_and_target_approaches() {
        let mut f = Threshold::new(&ThresholdSpec::Fixed { tau: 0.1 });
        f.observe(&stats(0.9, Format::Sparse));
        assert_eq!(f.tau(), 0.1);
        let mut t = Threshold::new(&ThresholdSpec::Target { initial: 1e-3, target: 1e-3 });
        t.observe(&stats(1e-2, Format::Sparse));
        assert!(t.tau() > 1e-3);
    }

    #[test]
    fn clip_every_n_steps_or_never() {
        let mut c = ResidualClip::new(&ResidualClipSpec { multiple: 5.0, every: 3 });
        assert_eq!(c.step(0.1), None);
        assert_eq!(c.step(0.1), None);
        assert_eq!(c.step(0.1), Some(0.5));
        let mut off = ResidualClip::new(&ResidualClipSpec { multiple: 5.0, every: 0 });
        assert!((0..10).all(|_| off.step(1.0).is_none()));
    }
}
