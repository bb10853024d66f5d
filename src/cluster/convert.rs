//! Between the engine's types and the wire's.

use strom_proto::v1 as pb;

use crate::backend::DeviceInfo;
use crate::engine::{EpochSummary, Partition, StepStats};
use crate::nn::Architecture;
use crate::sharing::{Format, LayerShare, MessageView, codec};

pub use crate::nn::saved::f32_bytes as params_to_bytes;

/// Parameters from the wire; `None` unless exactly `expected` finite values.
pub fn params_from_bytes(bytes: &[u8], expected: usize) -> Option<Vec<f32>> {
    if bytes.len() != expected * 4 {
        return None;
    }
    let v = crate::nn::saved::f32_from_bytes(bytes);
    v.iter().all(|x| x.is_finite()).then_some(v)
}

/// A collective's values as a dense update message in `wire` (f32, f16 or bf16).
pub fn reduce_to_bytes(values: &[f32], wire: Format) -> Vec<u8> {
    let mut out = Vec::new();
    if wire == Format::Dense {
        codec::encode_dense(&mut out, values, 0, 0);
    } else {
        codec::encode_half(&mut out, wire, values, 0, 0);
    }
    out
}

/// A collective's values from a dense update message of at most `limit` values, checked
/// whole (finite, the length its header claims) before anything is used.
pub fn reduce_from_bytes(bytes: &[u8], limit: usize) -> Result<(Vec<f32>, Format), String> {
    let header = codec::peek_header(bytes).map_err(|e| e.to_string())?;
    if !header.format.is_dense() {
        return Err(format!("a collective takes dense values, not {} messages", header.format.name()));
    }
    if header.params as usize > limit {
        return Err(format!("{} values is more than this job's {limit}", header.params));
    }
    let view = MessageView::parse(bytes, header.params as usize).map_err(|e| e.to_string())?;
    Ok((view.dense_values().collect(), header.format))
}

pub fn partition_to_pb(p: &Partition) -> pb::Partition {
    pb::Partition { epoch: p.epoch, index: p.index, start: p.start, end: p.end }
}

pub fn partition_from_pb(p: &pb::Partition) -> Partition {
    Partition { epoch: p.epoch, index: p.index, start: p.start, end: p.end }
}

pub fn stats_to_pb(s: &StepStats) -> pb::StepStats {
    pb::StepStats {
        worker: s.worker,
        epoch: s.epoch,
        step: s.step,
        time: s.time,
        loss: s.loss,
        samples_per_sec: s.samples_per_sec,
        sparsity: s.sparsity,
        tau: s.tau,
        residual_norm: s.residual_norm,
        bytes_sent: s.bytes_sent,
        bytes_received: s.bytes_received,
        pending: s.pending,
        merged: s.merged,
        rejected: s.rejected,
        layers: s.layers.iter().map(share_to_pb).collect(),
        samples: s.samples,
        k: s.k,
        rank: s.rank,
        step_bytes: s.step_bytes,
        step_seconds: s.step_seconds,
    }
}

pub fn share_to_pb(l: &LayerShare) -> pb::LayerShare {
    pb::LayerShare { layer: l.layer, entries: l.entries, residual_norm: l.residual_norm }
}

/// A model, layer by layer, for the cockpit.
pub fn model_to_pb(architecture: &Architecture) -> Vec<pb::ModelLayer> {
    architecture
        .layout()
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| pb::ModelLayer {
            index: i as u32,
            description: l.spec.layer().describe(),
            output: l.output.to_string(),
            parameters: l.params.len() as u64,
            running: l.running.len() as u64,
        })
        .collect()
}

/// A worker's `samples`, never more than its steps of full batches could hold (a worker that
/// sends none is taken to have trained full batches).
pub fn stats_from_pb(s: &pb::StepStats, batch_size: usize) -> StepStats {
    let most = s.step.saturating_mul(batch_size as u64);
    StepStats {
        worker: s.worker,
        epoch: s.epoch,
        step: s.step,
        samples: if s.samples == 0 { most } else { s.samples.min(most) },
        time: s.time,
        loss: s.loss,
        samples_per_sec: s.samples_per_sec,
        sparsity: s.sparsity,
        tau: s.tau,
        residual_norm: s.residual_norm,
        bytes_sent: s.bytes_sent,
        bytes_received: s.bytes_received,
        pending: s.pending,
        merged: s.merged,
        rejected: s.rejected,
        layers: s
            .layers
            .iter()
            .map(|l| LayerShare { layer: l.layer, entries: l.entries, residual_norm: l.residual_norm })
            .collect(),
        k: s.k,
        rank: s.rank,
        step_bytes: s.step_bytes,
        step_seconds: if s.step_seconds.is_finite() { s.step_seconds.max(0.0) } else { 0.0 },
    }
}

pub fn device_to_pb(d: &DeviceInfo) -> pb::DeviceStats {
    pb::DeviceStats {
        device: d.device.clone(),
        name: d.name.clone(),
        memory_used: d.memory_used,
        memory_total: d.memory_total,
        utilization: d.utilization,
    }
}

pub fn epoch_to_pb(e: &EpochSummary) -> pb::EpochPoint {
    pb::EpochPoint {
        epoch: e.epoch,
        train_loss: e.train_loss,
        test_accuracy: e.test_accuracy(),
        test_loss: e.test.as_ref().map(|t| t.loss()).unwrap_or(f64::NAN),
        replica_drift: e.replica_drift,
        seconds: e.seconds,
        language: matches!(e.test, Some(crate::engine::EvalReport::Language(_))),
        divergence: e.divergence.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_reject_bad_lengths_and_nan() {
        let p = vec![1.0, -2.5, 3.25];
        assert_eq!(params_from_bytes(&params_to_bytes(&p), 3), Some(p));
        assert_eq!(params_from_bytes(&[0; 11], 3), None);
        assert_eq!(params_from_bytes(&params_to_bytes(&[f32::NAN]), 1), None);
    }
}
