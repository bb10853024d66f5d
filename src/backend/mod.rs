//! Where the arithmetic runs: one replica's parameters, running state, gradients, residual and
//! updater state, behind one trait. The CPU backend is always there; CUDA comes with feature
//! `cuda`. A backend offers device primitives; the network's generic forward/backward loop
//! ([`train_pass`]) and the sharing schemes (`sharing/`) are written once on top of them.

mod cpu;

use std::ops::Range;

pub use cpu::gemm;
pub use cpu::sharing as cpu_sharing;
pub use cpu::{CpuBackend, Net};

use crate::data::{Batch, BatchTargets};
use crate::job::{BackendKind, JobSpec};
use crate::nn::{Architecture, UpdaterState};
use crate::rng::Rng;
use crate::sharing::MessageView;

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
    #[error("the CUDA backend has no kernel for layer {index} ({layer}); train this model with --device cpu")]
    Unsupported { index: usize, layer: String },
    #[error("CUDA kernel {kernel} ({file}) does not compile for {arch}; NVRTC says:\n{log}")]
    KernelCompile { kernel: String, file: String, arch: String, log: String },
    #[error("CUDA error: {0}")]
    Cuda(String),
}

/// Which buffer a scatter-subtraction goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Residual,
    Params,
}

/// One model replica's compute state. Buffers are allocated at creation; the training-step
/// methods allocate nothing. A model's *state* is its parameters followed by its running
/// state (batch-norm statistics).
pub trait Backend: Send {
    fn device(&self) -> DeviceInfo;
    fn param_count(&self) -> usize;
    fn running_len(&self) -> usize;
    fn state_len(&self) -> usize {
        self.param_count() + self.running_len()
    }
    /// Copies the state (parameters, then running state) out.
    fn read_state(&mut self, out: &mut [f32]);
    /// Replaces the state.
    fn write_state(&mut self, state: &[f32]);
    /// Replaces the running state only.
    fn write_running(&mut self, running: &[f32]);
    /// Forward and backward pass; leaves the gradient of the mean loss in the gradient buffer
    /// and returns that loss.
    fn forward_backward(&mut self, batch: &Batch<'_>, rng: &mut Rng) -> f32;
    /// Turns the gradient into the update (updater, learning rate times `lr_scale`, L2), in
    /// place.
    fn compute_update(&mut self, lr_scale: f32);
    /// `params -= update` (no sharing, or parameter averaging between averages).
    fn apply_update(&mut self);
    /// Copies the gradient buffer out (the gradient after `forward_backward`, the update after
    /// `compute_update`): schemes that compress on the host read it here.
    fn read_gradient(&mut self, out: &mut [f32]);
    /// Replaces the gradient buffer (a scheme's aggregated gradient, before `compute_update`,
    /// or a finished update, before `apply_update`).
    fn write_gradient(&mut self, values: &[f32]);

    // Primitives of gradient sharing (the schemes live in `sharing/`).
    /// `residual += update`.
    fn residual_add(&mut self);
    /// Every residual entry with `|r| >= tau`, ascending, packed by `sharing::quantum`, into
    /// `out`; per segment (the segments partition the parameters in order) the squared norm
    /// the residual will have once those quanta are subtracted, into `norm2`.
    fn residual_select(&mut self, tau: f32, segments: &[Range<usize>], out: &mut Vec<u32>, norm2: &mut [f64]);
    /// `target[i] -= ±tau` for the selected entries.
    fn scatter_subtract(&mut self, target: Target, selected: &[u32], tau: f32);
    /// One threshold-encoding step on the residual: `residual_add`, `residual_select` and the
    /// selected quanta subtracted from the residual. A backend may fuse them into one pass.
    fn residual_encode(
        &mut self,
        tau: f32,
        segments: &[Range<usize>],
        out: &mut Vec<u32>,
        norm2: &mut [f64],
    ) {
        self.residual_add();
        self.residual_select(tau, segments, out, norm2);
        self.scatter_subtract(Target::Residual, out, tau);
    }
    /// `params -= message` for a message from another worker (or a merged sum).
    fn apply_message(&mut self, message: &MessageView<'_>);
    /// Clips the residual to ±limit.
    fn clip_residual(&mut self, limit: f32);
    /// `residual *= factor`.
    fn scale_residual(&mut self, factor: f32);

    /// Forward pass without dropout, batch norm on its running statistics; the outputs (rows x
    /// outputs) are written to `outputs`; returns the mean loss.
    fn evaluate(&mut self, batch: &Batch<'_>, outputs: &mut Vec<f32>) -> f32;
    fn updater_state(&self) -> UpdaterState;
    fn restore_updater(&mut self, state: &UpdaterState) -> Result<(), String>;
}

/// A backend's layers as the generic loop drives them: layer `l` reads its input buffer and
/// writes its output buffer; the loss starts the backward pass, which hands each layer the
/// gradient of its output and takes back the gradient of its input.
pub trait LayerOps {
    fn layer_count(&self) -> usize;
    /// Draws the training pass's random masks (dropout).
    fn resample(&mut self, rows: usize, rng: &mut Rng);
    fn forward(&mut self, layer: usize, rows: usize, train: bool);
    /// The output activation and the mean loss; leaves dL/d(output layer) for `backward`.
    fn loss(&mut self, rows: usize, targets: BatchTargets<'_>) -> f64;
    fn backward(&mut self, layer: usize, rows: usize, input_grad: bool);
}

/// The one training pass of every backend: forward through the layers, the loss, backward
/// (the first layer's input gradient is never needed). `rng`: draw new random masks first
/// (`None` reuses the last ones, as gradient checks need).
pub fn train_pass<O: LayerOps + ?Sized>(
    ops: &mut O,
    rows: usize,
    targets: BatchTargets<'_>,
    rng: Option<&mut Rng>,
) -> f64 {
    if let Some(rng) = rng {
        ops.resample(rows, rng);
    }
    let layers = ops.layer_count();
    for l in 0..layers {
        ops.forward(l, rows, true);
    }
    let loss = ops.loss(rows, targets);
    for l in (0..layers).rev() {
        ops.backward(l, rows, l > 0);
    }
    loss
}

/// The evaluation pass: forward in evaluation mode and the loss.
pub fn eval_pass<O: LayerOps + ?Sized>(ops: &mut O, rows: usize, targets: BatchTargets<'_>) -> f64 {
    for l in 0..ops.layer_count() {
        ops.forward(l, rows, false);
    }
    ops.loss(rows, targets)
}

/// The first layer the CUDA backend has no kernel for: it runs dense layers with element-wise
/// activations, flatten, and a softmax or identity output (no dropout, convolutions, pooling
/// or batch norm yet).
pub fn cuda_lacks(architecture: &Architecture) -> Option<(usize, String)> {
    use crate::nn::layers::LayerSpec;
    let last = architecture.layers().len().saturating_sub(1);
    let wiring = architecture.wiring();
    architecture.layers().iter().enumerate().find_map(|(i, l)| {
        if wiring[i].inputs != [i] {
            let from: Vec<String> = wiring[i].inputs.iter().map(|&n| architecture.node_name(n)).collect();
            return Some((i, format!("{} of {} (a graph)", l.layer().describe(), from.join(" + "))));
        }
        let per_step = architecture.layout().layers[i].input.is_sequence();
        let ok = match l {
            // Dense on a sequence runs per step, which the CUDA kernels do not.
            LayerSpec::Dense(d) => !per_step && (i == last || d.activation != crate::nn::Activation::Softmax),
            LayerSpec::Flatten(_) => true,
            _ => false,
        };
        (!ok).then(|| (i, l.layer().describe()))
    })
}

/// Refuses, before training starts, a model the job's device cannot run (unless the job
/// falls back to the CPU).
pub fn check_support(job: &JobSpec, architecture: &Architecture) -> Result<(), BackendError> {
    if job.compute.backend == BackendKind::Cuda
        && !job.compute.cpu_fallback
        && let Some((index, layer)) = cuda_lacks(architecture)
    {
        return Err(BackendError::Unsupported { index, layer });
    }
    Ok(())
}

/// Creates the job's backend holding `state`, for batches up to `batch_capacity` rows.
pub fn create(
    job: &JobSpec,
    architecture: &Architecture,
    batch_capacity: usize,
    state: &[f32],
) -> Result<Box<dyn Backend>, BackendError> {
    let updater = job.updater();
    let cpu = || {
        Box::new(CpuBackend::new(
            architecture,
            &updater,
            job.train.l2,
            batch_capacity,
            state,
            job.threads_per_worker(),
        )) as Box<dyn Backend>
    };
    match job.compute.backend {
        BackendKind::Cpu => Ok(cpu()),
        BackendKind::Cuda => {
            match create_cuda(
                job.compute.cuda_device,
                architecture,
                &updater,
                job.train.l2,
                batch_capacity,
                state,
            ) {
                Err(
                    e @ (BackendError::CudaUnavailable(_)
                    | BackendError::CudaNotBuilt
                    | BackendError::Unsupported { .. }),
                ) if job.compute.cpu_fallback => {
                    tracing::warn!("{e}; training on the CPU (compute.cpu_fallback = true)");
                    Ok(cpu())
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
    state: &[f32],
) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(cuda::CudaBackend::on_device(device, architecture, updater, l2, batch_capacity, state)?))
}

#[cfg(feature = "cuda")]
pub mod cuda;

#[cfg(test)]
mod tests {
    use super::cuda_lacks;
    use crate::nn::layers::{Embedding, LayerSpec, Lstm};
    use crate::nn::{Activation, Architecture, Init, Loss, Shape};

    #[test]
    fn cuda_lacks_names_the_first_sequence_layer() {
        let arch = |input, layers: Vec<LayerSpec>| {
            let mut layers = layers;
            layers.push(LayerSpec::dense(5, Activation::Softmax));
            Architecture::new(input, layers, Loss::Xent, Init::He).unwrap()
        };
        let tokens = Shape::Tokens { steps: 4, vocab: 5 };
        let lstm = LayerSpec::Lstm(Lstm { units: 3, return_sequences: true });
        let a = arch(tokens, vec![LayerSpec::Embedding(Embedding { dim: 3 }), lstm.clone()]);
        assert_eq!(cuda_lacks(&a), Some((0, "embedding 3".into())));
        let features = Shape::Sequence { steps: 4, features: 2 };
        assert_eq!(cuda_lacks(&arch(features, vec![lstm])), Some((0, "lstm 3".into())));
        // A dense layer per step, even the output layer.
        assert_eq!(cuda_lacks(&arch(features, vec![])), Some((0, "dense 5 softmax".into())));
        assert_eq!(cuda_lacks(&arch(Shape::Vector(4), vec![LayerSpec::dense(3, Activation::Relu)])), None);
    }
}
