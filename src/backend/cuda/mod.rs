//! The CUDA backend (feature `cuda`): cudarc with the driver, cuBLAS and NVRTC loaded at run
//! time, so the same binary builds and runs where no CUDA is installed. Parameters, gradients,
//! updater state and the residual live on the device; cuBLAS does the matrix products; the
//! kernels (one `.cu` file each beside this module, compiled by NVRTC when the backend starts)
//! do activations, losses, updaters and the gradient-sharing step. Per step only the selected
//! indices of the threshold encoding cross to the host (to be packed into the wire format),
//! and received messages cross back as index lists.
//!
//! Split as the CPU backend is: [`device`] (driver, context, memory), [`kernels`] (every
//! kernel's file, signature and typed launcher, and NVRTC), then one file per family of work:
//! `dense` (inputs, dense layers and their activations), `loss`, `updater`, `sharing` (the
//! residual and the threshold code).
//!
//! Not yet verified on a GPU (none was available to this work): see README "GPUs (CUDA)";
//! every kernel is compiled and assembled in CI (`tests/cuda_kernels.rs`). Supported networks:
//! dense layers (and flatten) with hidden activations relu, leaky_relu, tanh, sigmoid,
//! identity; softmax output with cross-entropy, or identity output with MSE. Other layers are
//! refused before training starts ([`super::cuda_lacks`]): train those models with
//! `--device cpu`.

// Every unsafe block says what makes it sound (clippy, in CI).
#![deny(clippy::undocumented_unsafe_blocks)]

mod dense;
pub mod device;
pub mod kernels;
mod loss;
mod sharing;
mod updater;

use std::ops::Range;
use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaSlice, CudaStream};

use self::dense::DenseLayout;
use self::device::{cuda_err, zeros};
use self::kernels::Kernels;
use super::{Backend, BackendError, DeviceInfo, Target};
use crate::data::Batch;
use crate::job::{UpdaterKind, UpdaterSpec};
use crate::nn::{Architecture, UpdaterState};
use crate::rng::Rng;
use crate::sharing::MessageView;

pub struct CudaBackend {
    ordinal: usize,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    k: Kernels,
    layout: DenseLayout,
    capacity: usize,
    params: CudaSlice<f32>,
    grads: CudaSlice<f32>,
    residual: Option<CudaSlice<f32>>,
    first: CudaSlice<f32>,
    second: CudaSlice<f32>,
    /// acts[0] is the input; acts[l + 1] the output of layer l; pre[l] its pre-activation.
    acts: Vec<CudaSlice<f32>>,
    pre: Vec<CudaSlice<f32>>,
    grad_z: Vec<CudaSlice<f32>>,
    grad_in: Vec<CudaSlice<f32>>,
    input_bytes: CudaSlice<u8>,
    labels: CudaSlice<u32>,
    targets: CudaSlice<f32>,
    scalars: CudaSlice<f32>,
    selected: CudaSlice<u32>,
    count: CudaSlice<u32>,
    /// Per-segment squared norms of the last selection.
    norms: CudaSlice<f32>,
    host_selected: Vec<u32>,
    updater: UpdaterSpec,
    l2: f32,
    step: u64,
    /// The first device error; the backend stops working after it.
    fault: Option<String>,
}

impl CudaBackend {
    /// On device 0.
    pub fn new(
        architecture: &Architecture,
        updater: &UpdaterSpec,
        l2: f32,
        batch_capacity: usize,
        state: &[f32],
    ) -> Result<Self, BackendError> {
        Self::on_device(0, architecture, updater, l2, batch_capacity, state)
    }

    pub fn on_device(
        ordinal: usize,
        architecture: &Architecture,
        updater: &UpdaterSpec,
        l2: f32,
        batch_capacity: usize,
        state: &[f32],
    ) -> Result<Self, BackendError> {
        if let Some((index, layer)) = super::cuda_lacks(architecture) {
            return Err(BackendError::Unsupported { index, layer });
        }
        let full = architecture.layout();
        let layout = DenseLayout::of(architecture);
        let params = &state[..layout.len];
        let (ctx, stream) = device::open(ordinal)?;
        let blas = CudaBlas::new(stream.clone()).map_err(cuda_err)?;
        let k = Kernels::load(&ctx, stream.clone())?;
        let cap = batch_capacity.max(1);
        let zeros = |n: usize| zeros::<f32>(&stream, n);
        let mut acts = vec![zeros(cap * layout.inputs)?];
        let (mut pre, mut grad_z, mut grad_in) = (vec![], vec![], vec![]);
        for l in &layout.layers {
            acts.push(zeros(cap * l.outputs)?);
            pre.push(zeros(cap * l.outputs)?);
            grad_z.push(zeros(cap * l.outputs)?);
            grad_in.push(zeros(cap * l.inputs)?);
        }
        let n = layout.len;
        let (first_len, second_len) = match updater.kind.unwrap_or(UpdaterKind::Adam) {
            UpdaterKind::Sgd => (0, 0),
            UpdaterKind::Nesterov | UpdaterKind::Rmsprop => (n, 0),
            UpdaterKind::Adam => (n, n),
        };
        Ok(CudaBackend {
            ordinal,
            params: stream.memcpy_stod(params).map_err(cuda_err)?,
            grads: zeros(n)?,
            residual: None,
            first: zeros(first_len)?,
            second: zeros(second_len)?,
            input_bytes: device::zeros::<u8>(&stream, cap * layout.inputs)?,
            labels: device::zeros::<u32>(&stream, cap)?,
            targets: zeros(cap * layout.outputs())?,
            scalars: zeros(2)?,
            selected: device::zeros::<u32>(&stream, n)?,
            count: device::zeros::<u32>(&stream, 1)?,
            norms: zeros(full.layers.len())?,
            host_selected: Vec::with_capacity(n / 64),
            acts,
            pre,
            grad_z,
            grad_in,
            capacity: cap,
            layout,
            stream,
            blas,
            k,
            updater: updater.clone(),
            l2,
            step: 0,
            fault: None,
        })
    }

    /// The trait's step methods return no errors: a device fault is logged once, later steps
    /// do nothing, and losses read NaN, which stops the run as diverged (the log says why).
    /// Logs a failed step once (see [`Self::fail`]).
    fn check(&mut self, what: &str, result: Result<(), BackendError>) {
        if let Err(e) = result {
            self.fail(what, e);
        }
    }

    fn fail(&mut self, what: &str, e: BackendError) -> f32 {
        if self.fault.is_none() {
            tracing::error!("CUDA device {}: {what}: {e}", self.ordinal);
            self.fault = Some(format!("{what}: {e}"));
        }
        f32::NAN
    }
}

impl Backend for CudaBackend {
    fn device(&self) -> DeviceInfo {
        device::info(self.ordinal)
    }

    fn param_count(&self) -> usize {
        self.layout.len
    }

    fn running_len(&self) -> usize {
        0
    }

    fn read_state(&mut self, out: &mut [f32]) {
        let n = self.layout.len;
        let result = self.stream.memcpy_dtoh(&self.params, &mut out[..n]).map_err(cuda_err);
        self.check("reading parameters", result);
    }

    fn write_state(&mut self, state: &[f32]) {
        let n = self.layout.len;
        let result = self.stream.memcpy_htod(&state[..n], &mut self.params).map_err(cuda_err);
        self.check("writing parameters", result);
    }

    fn write_running(&mut self, _running: &[f32]) {}

    fn forward_backward(&mut self, batch: &Batch<'_>, _rng: &mut Rng) -> f32 {
        if self.fault.is_some() {
            return f32::NAN;
        }
        match self.try_forward_backward(batch) {
            Ok(loss) => loss,
            Err(e) => self.fail("training step", e),
        }
    }

    fn compute_update(&mut self, lr_scale: f32) {
        let result = self.try_compute_update(lr_scale);
        self.check("updater", result);
    }

    fn apply_update(&mut self) {
        let result = self.try_apply_update();
        self.check("applying the update", result);
    }

    fn read_gradient(&mut self, out: &mut [f32]) {
        let n = self.layout.len;
        let result = self.stream.memcpy_dtoh(&self.grads, &mut out[..n]).map_err(cuda_err);
        self.check("reading the gradient", result);
    }

    fn write_gradient(&mut self, values: &[f32]) {
        let n = self.layout.len;
        let result = self.stream.memcpy_htod(&values[..n], &mut self.grads).map_err(cuda_err);
        self.check("writing the gradient", result);
    }

    fn residual_add(&mut self) {
        let result = self.try_residual_add();
        self.check("accumulating the residual", result);
    }

    fn residual_select(
        &mut self,
        tau: f32,
        segments: &[Range<usize>],
        out: &mut Vec<u32>,
        norm2: &mut [f64],
    ) {
        if let Err(e) = self.try_select(tau, segments, out, norm2) {
            self.fail("threshold selection", e);
            out.clear();
            norm2.iter_mut().for_each(|n| *n = f64::NAN);
        }
    }

    fn scatter_subtract(&mut self, target: Target, selected: &[u32], tau: f32) {
        let result = self.try_scatter(target, selected, tau);
        self.check("subtracting quanta", result);
    }

    fn apply_message(&mut self, message: &MessageView<'_>) {
        let result = self.try_apply_message(message);
        self.check("applying a message", result);
    }

    fn clip_residual(&mut self, limit: f32) {
        let result = self.try_clip_residual(limit);
        self.check("clipping the residual", result);
    }

    fn scale_residual(&mut self, factor: f32) {
        let result = self.try_scale_residual(factor);
        self.check("scaling the residual", result);
    }

    fn evaluate(&mut self, batch: &Batch<'_>, outputs: &mut Vec<f32>) -> f32 {
        let rows = batch.rows.min(self.capacity);
        let result = self.upload_batch(batch).and_then(|_| self.forward_loss(rows));
        let loss = match result {
            Ok(l) => l,
            Err(e) => self.fail("evaluation", e),
        };
        let n = rows * self.layout.outputs();
        outputs.resize(n, 0.0);
        let last = self.layout.layers.len();
        let view = self.acts[last].slice(0..n);
        if let Err(e) = self.stream.memcpy_dtoh(&view, outputs.as_mut_slice()).map_err(cuda_err) {
            return self.fail("reading outputs", e);
        }
        loss
    }

    fn updater_state(&self) -> UpdaterState {
        self.read_updater_state()
    }

    fn restore_updater(&mut self, state: &UpdaterState) -> Result<(), String> {
        self.write_updater_state(state)
    }
}
