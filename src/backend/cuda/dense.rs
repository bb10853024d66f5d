//! Inputs and dense layers on the device: the batch upload (u8 images become floats here),
//! the forward pass (bias rows, cuBLAS, activation) and the backward pass (weight and bias
//! gradients, the gradient into the layer below through its activation).

use std::ops::Range;

use cudarc::cublas::{Gemm, GemmConfig, sys::cublasOperation_t};

use super::CudaBackend;
use super::device::cuda_err;
use super::kernels::cfg;
use crate::backend::BackendError;
use crate::data::{Batch, BatchInput, BatchTargets};
use crate::nn::layers::LayerSpec;
use crate::nn::{Activation, Architecture, Loss};

/// A dense layer's place in the flat buffer (the only layer type with a CUDA kernel so far).
#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub inputs: usize,
    pub outputs: usize,
    pub weights: Range<usize>,
    pub bias: Range<usize>,
    pub activation: Activation,
}

/// The dense layers of a supported architecture (flatten is a no-op on contiguous rows).
pub(super) struct DenseLayout {
    pub inputs: usize,
    pub layers: Vec<Slot>,
    pub len: usize,
    pub loss: Loss,
}

impl DenseLayout {
    /// The dense layers of `architecture`, which [`crate::backend::cuda_lacks`] accepted.
    pub fn of(architecture: &Architecture) -> Self {
        let full = architecture.layout();
        DenseLayout {
            inputs: full.input.size(),
            layers: full
                .layers
                .iter()
                .filter_map(|l| match &l.spec {
                    LayerSpec::Dense(d) => Some(Slot {
                        inputs: l.input.size(),
                        outputs: d.units,
                        weights: l.tensors[0].range.clone(),
                        bias: l.tensors[1].range.clone(),
                        activation: d.activation,
                    }),
                    _ => None,
                })
                .collect(),
            len: full.len,
            loss: full.loss,
        }
    }

    pub fn outputs(&self) -> usize {
        self.layers.last().map(|l| l.outputs).unwrap_or(self.inputs)
    }
}

/// The `kind` argument of activate.cu and activate_backward.cu (softmax is the loss's).
fn activation_kind(a: Activation) -> Option<i32> {
    match a {
        Activation::Relu => Some(0),
        Activation::LeakyRelu => Some(1),
        Activation::Tanh => Some(2),
        Activation::Sigmoid => Some(3),
        Activation::Identity => Some(4),
        Activation::Softmax => None,
    }
}

impl CudaBackend {
    pub(super) fn upload_batch(&mut self, batch: &Batch<'_>) -> Result<(), BackendError> {
        let rows = batch.rows.min(self.capacity);
        let n = rows * self.layout.inputs;
        match batch.input {
            BatchInput::U8 { data, scale } => {
                let mut dst = self.input_bytes.slice_mut(0..n);
                self.stream.memcpy_htod(&data[..n], &mut dst).map_err(cuda_err)?;
                self.k.bytes_to_floats(
                    cfg(n),
                    &self.input_bytes.slice(0..n),
                    &mut self.acts[0].slice_mut(0..n),
                    n as i32,
                    scale,
                )?;
            }
            BatchInput::F32(v) => {
                let mut dst = self.acts[0].slice_mut(0..n);
                self.stream.memcpy_htod(&v[..n], &mut dst).map_err(cuda_err)?;
            }
        }
        match batch.targets {
            BatchTargets::Classes(l) => {
                let mut dst = self.labels.slice_mut(0..rows);
                self.stream.memcpy_htod(&l[..rows], &mut dst).map_err(cuda_err)?;
            }
            BatchTargets::Values(v) => {
                let m = rows * self.layout.outputs();
                let mut dst = self.targets.slice_mut(0..m);
                self.stream.memcpy_htod(&v[..m], &mut dst).map_err(cuda_err)?;
            }
        }
        Ok(())
    }

    /// Forward pass, then the loss and the output layer's dL/dz; returns the mean loss.
    pub(super) fn forward_loss(&mut self, rows: usize) -> Result<f32, BackendError> {
        let r32 = rows as i32;
        for l in 0..self.layout.layers.len() {
            let slot = self.layout.layers[l].clone();
            let (o32, i32_) = (slot.outputs as i32, slot.inputs as i32);
            let n = rows * slot.outputs;
            self.k.fill_rows(
                cfg(n),
                &mut self.pre[l].as_view_mut(),
                &self.params.slice(slot.bias.clone()),
                r32,
                o32,
            )?;
            // Row-major Z = X W is column-major Z^T = W^T X^T.
            let gemm = GemmConfig {
                transa: cublasOperation_t::CUBLAS_OP_N,
                transb: cublasOperation_t::CUBLAS_OP_N,
                m: o32,
                n: r32,
                k: i32_,
                alpha: 1.0f32,
                lda: o32,
                ldb: i32_,
                beta: 1.0f32,
                ldc: o32,
            };
            let w = self.params.slice(slot.weights.clone());
            // SAFETY: w holds inputs x outputs floats, acts[l] at least rows x inputs and
            // pre[l] rows x outputs (allocated for the batch capacity, rows <= capacity): the
            // extents the configuration above names.
            unsafe { self.blas.gemm(gemm, &w, &self.acts[l], &mut self.pre[l]) }.map_err(cuda_err)?;
            if let Some(kind) = activation_kind(slot.activation) {
                self.k.activate(
                    cfg(n),
                    &self.pre[l].as_view(),
                    &mut self.acts[l + 1].as_view_mut(),
                    n as i32,
                    kind,
                )?;
            }
        }
        self.loss(rows)
    }

    pub(super) fn backward(&mut self, rows: usize) -> Result<(), BackendError> {
        let r32 = rows as i32;
        for l in (0..self.layout.layers.len()).rev() {
            let slot = self.layout.layers[l].clone();
            let (o32, i32_) = (slot.outputs as i32, slot.inputs as i32);
            // dW (row-major in x out) = X^T gz: column-major dW^T = gz^T X.
            let gemm = GemmConfig {
                transa: cublasOperation_t::CUBLAS_OP_N,
                transb: cublasOperation_t::CUBLAS_OP_T,
                m: o32,
                n: i32_,
                k: r32,
                alpha: 1.0f32,
                lda: o32,
                ldb: i32_,
                beta: 0.0f32,
                ldc: o32,
            };
            {
                let mut gw = self.grads.slice_mut(slot.weights.clone());
                // SAFETY: grad_z[l] holds rows x outputs floats, acts[l] rows x inputs, gw
                // inputs x outputs: the extents the configuration names.
                unsafe { self.blas.gemm(gemm, &self.grad_z[l], &self.acts[l], &mut gw) }.map_err(cuda_err)?;
            }
            self.k.column_sums(
                cfg(slot.outputs),
                &self.grad_z[l].as_view(),
                &mut self.grads.slice_mut(slot.bias.clone()),
                r32,
                o32,
            )?;
            if l == 0 {
                break;
            }
            // gin (rows x in) = gz W^T: column-major gin^T = W gz^T.
            let gemm = GemmConfig {
                transa: cublasOperation_t::CUBLAS_OP_T,
                transb: cublasOperation_t::CUBLAS_OP_N,
                m: i32_,
                n: r32,
                k: o32,
                alpha: 1.0f32,
                lda: o32,
                ldb: o32,
                beta: 0.0f32,
                ldc: i32_,
            };
            let w = self.params.slice(slot.weights.clone());
            // SAFETY: w holds inputs x outputs floats, grad_z[l] rows x outputs, grad_in[l]
            // rows x inputs: the extents the configuration names.
            unsafe { self.blas.gemm(gemm, &w, &self.grad_z[l], &mut self.grad_in[l]) }.map_err(cuda_err)?;
            let kind = activation_kind(self.layout.layers[l - 1].activation).unwrap_or(4);
            let n = rows * slot.inputs;
            let (below, _) = self.grad_z.split_at_mut(l);
            self.k.activate_backward(
                cfg(n),
                &self.pre[l - 1].as_view(),
                &self.acts[l].as_view(),
                &self.grad_in[l].as_view(),
                &mut below[l - 1].as_view_mut(),
                n as i32,
                kind,
            )?;
        }
        Ok(())
    }

    pub(super) fn try_forward_backward(&mut self, batch: &Batch<'_>) -> Result<f32, BackendError> {
        self.upload_batch(batch)?;
        let rows = batch.rows.min(self.capacity);
        let loss = self.forward_loss(rows)?;
        self.backward(rows)?;
        Ok(loss)
    }
}
