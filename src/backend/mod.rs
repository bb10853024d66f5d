//! Where the arithmetic runs: one replica's parameters, gradients, residual and updater state,
//! behind one trait. The CPU backend (ndarray) is always there; CUDA comes with feature `cuda`.

mod cpu;

pub use cpu::CpuBackend;

use crate::data::Batch;
use crate::job::{BackendKind, JobSpec};
use crate::nn::{Architecture, UpdaterState};
use crate::rng::Rng;
use crate::sharing::{EncodeStats, MessageView, ThresholdEncoder};

/// What a backend runs on, for stats and the cockpit.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    /// "cpu" or "cuda:0".
    pub device: String,
    /// Human-readable description.
    pub name: String,
    pub memory_used: u64,
    pub memory_total: u64,
    /// Utilisation in percent, where the device reports it.
    pub utilization: Option<f32>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "backend 'cuda' is not in this build; rebuild with `cargo build --release --features cuda`, or use backend = \"cpu\""
    )]
    CudaNotBuilt,
    #[error("no usable CUDA device: {0}")]
    CudaUnavailable(String),
    #[error("CUDA error: {0}")]
    Cuda(String),
}

/// One model replica's compute state. Buffers are allocated at creation; the training-step
/// methods allocate nothing.
pub trait Backend: Send {
    fn device(&self) -> DeviceInfo;
    fn param_count(&self) -> usize;
    /// Copies the parameters out.
    fn read_params(&mut self, out: &mut [f32]);
    /// Replaces the parameters.
    fn write_params(&mut self, params: &[f32]);
    /// Forward and backward pass; leaves the gradient of the mean loss in the gradient buffer
    /// and returns that loss.
    fn forward_backward(&mut self, batch: &Batch<'_>, rng: &mut Rng) -> f32;
    /// Turns the gradient into the update (updater, learning rate times `lr_scale`, L2), in
    /// place.
    fn compute_update(&mut self, lr_scale: f32);
    /// `params -= update` (no sharing, or parameter averaging between averages).
    fn apply_update(&mut self);
    /// Gradient sharing's step: `residual += update`, select the quanta at `tau`, subtract them
    /// from the residual, apply them to this replica's parameters, and pack the message into
    /// `encoder`.
    fn encode_and_apply(
        &mut self,
        encoder: &mut ThresholdEncoder,
        tau: f32,
        origin: u32,
        step: u64,
    ) -> EncodeStats;
    /// `params -= message` for a message from another worker (or a merged sum).
    fn apply_message(&mut self, message: &MessageView<'_>);
    /// Clips the residual to ±limit.
    fn clip_residual(&mut self, limit: f32);
    /// Forward pass without dropout; the outputs (rows x outputs) are written to `outputs`;
    /// returns the mean loss.
    fn evaluate(&mut self, batch: &Batch<'_>, outputs: &mut Vec<f32>) -> f32;
    fn updater_state(&self) -> UpdaterState;
    fn restore_updater(&mut self, state: &UpdaterState) -> Result<(), String>;
}

/// Creates the job's backend holding `params`, for batches up to `batch_capacity` rows.
pub fn create(
    job: &JobSpec,
    architecture: &Architecture,
    batch_capacity: usize,
    params: &[f32],
) -> Result<Box<dyn Backend>, BackendError> {
    let updater = job.updater();
    match job.cluster.backend {
        BackendKind::Cpu => {
            Ok(Box::new(CpuBackend::new(architecture, &updater, job.train.l2, batch_capacity, params)))
        }
        BackendKind::Cuda => {
            match create_cuda(
                job.cluster.cuda_device,
                architecture,
                &updater,
                job.train.l2,
                batch_capacity,
                params,
            ) {
                Err(e @ (BackendError::CudaUnavailable(_) | BackendError::CudaNotBuilt))
                    if job.cluster.cpu_fallback =>
                {
                    tracing::warn!("{e}; training on the CPU (cluster.cpu_fallback = true)");
                    Ok(Box::new(CpuBackend::new(
                        architecture,
                        &updater,
                        job.train.l2,
                        batch_capacity,
                        params,
                    )))
                }
                other => other,
            }
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn create_cuda(
    _: usize,
    _: &Architecture,
    _: &crate::job::UpdaterSpec,
    _: f32,
    _: usize,
    _: &[f32],
) -> Result<Box<dyn Backend>, BackendError> {
    Err(BackendError::CudaNotBuilt)
}

#[cfg(feature = "cuda")]
fn create_cuda(
    device: usize,
    architecture: &Architecture,
    updater: &crate::job::UpdaterSpec,
    l2: f32,
    batch_capacity: usize,
    params: &[f32],
) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(cuda::CudaBackend::on_device(device, architecture, updater, l2, batch_capacity, params)?))
}

#[cfg(feature = "cuda")]
pub mod cuda;
