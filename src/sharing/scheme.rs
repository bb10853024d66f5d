//! The threshold scheme (Strom 2015) composed from a backend's primitives: `residual +=
//! update`, select `|r| >= tau`, subtract the quanta from the residual and apply them to this
//! replica, pack the message, adapt tau, clip the residual now and then. Per layer it reports
//! the entries sent and the residual's norm, so a user sees which layers dominate traffic.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{EncodeStats, ResidualClip, Threshold, ThresholdEncoder, quantum};
use crate::backend::{Backend, Target};
use crate::job::JobSpec;
use crate::nn::Layout;

/// One layer's share of a step's message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerShare {
    /// The layer's index in the architecture.
    pub layer: u32,
    /// Quanta sent for this layer's parameters.
    pub entries: u64,
    /// L2 norm of this layer's part of the residual after the step.
    pub residual_norm: f64,
}

pub struct ThresholdSharing {
    encoder: ThresholdEncoder,
    threshold: Threshold,
    clip: ResidualClip,
    /// The parameter ranges of the layers that have parameters, in order.
    segments: Vec<Range<usize>>,
    norm2: Vec<f64>,
    layers: Vec<LayerShare>,
}

impl ThresholdSharing {
    pub fn new(job: &JobSpec, layout: &Layout) -> Self {
        let segments = layout.segments();
        ThresholdSharing {
            encoder: ThresholdEncoder::new(layout.len),
            threshold: Threshold::new(&job.sharing.algorithm),
            clip: ResidualClip::new(&job.sharing.residual_clip),
            norm2: vec![0.0; segments.len()],
            layers: segments
                .iter()
                .map(|(i, _)| LayerShare { layer: *i as u32, ..LayerShare::default() })
                .collect(),
            segments: segments.into_iter().map(|(_, r)| r).collect(),
        }
    }

    pub fn tau(&self) -> f32 {
        self.threshold.tau()
    }

    /// Continue from a saved tau (checkpoint resume, worker rejoin).
    pub fn set_tau(&mut self, tau: f32) {
        self.threshold.set_tau(tau);
    }

    /// The last step's message.
    pub fn message(&self) -> &[u8] {
        self.encoder.message()
    }

    /// The last step's figures per layer.
    pub fn layers(&self) -> &[LayerShare] {
        &self.layers
    }

    /// One step on the update the backend holds: encodes it, applies this replica's own quanta
    /// and leaves the message in [`ThresholdSharing::message`].
    pub fn step(&mut self, backend: &mut dyn Backend, origin: u32, step: u64) -> EncodeStats {
        let tau = self.threshold.tau();
        backend.residual_add();
        let selected = self.encoder.selected_mut();
        backend.residual_select(tau, &self.segments, selected, &mut self.norm2);
        backend.scatter_subtract(Target::Residual, selected, tau);
        backend.scatter_subtract(Target::Params, selected, tau);
        let mut k = 0;
        for ((seg, share), n2) in self.segments.iter().zip(&mut self.layers).zip(&self.norm2) {
            let first = k;
            while k < selected.len() && quantum::index(selected[k]) < seg.end {
                k += 1;
            }
            share.entries = (k - first) as u64;
            share.residual_norm = n2.sqrt();
        }
        let norm = self.norm2.iter().sum::<f64>().sqrt();
        let stats = self.encoder.pack(tau, origin, step, norm, None);
        self.threshold.observe(&stats);
        if let Some(limit) = self.clip.step(tau) {
            backend.clip_residual(limit);
        }
        stats
    }
}
