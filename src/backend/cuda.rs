//! The CUDA backend (feature `cuda`): cudarc with the driver, cuBLAS and NVRTC loaded at run
//! time, so the same binary builds and runs where no CUDA is installed. Parameters, gradients,
//! updater state and the residual live on the device; cuBLAS does the matrix products; the
//! kernels below (compiled by NVRTC when the backend starts) do activations, losses, updaters
//! and the gradient-sharing step. Per step only the selected indices of the threshold encoding
//! cross to the host (to be packed into the wire format), and received messages cross back as
//! index lists.
//!
//! Not yet verified on a GPU (none was available to this work): see README "GPUs (CUDA)".
//! Supported networks: dense layers (and flatten) with hidden activations relu, leaky_relu,
//! tanh, sigmoid, identity; softmax output with cross-entropy, or identity output with MSE.
//! Convolutions, pooling, batch norm and dropout are refused before training starts
//! ([`super::cuda_lacks`]): train those models with `--device cpu`.

use std::ops::Range;
use std::sync::Arc;

use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, sys::cublasOperation_t};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};

use super::{Backend, BackendError, DeviceInfo, Target};
use crate::data::{Batch, BatchInput, BatchTargets};
use crate::job::{UpdaterKind, UpdaterSpec};
use crate::nn::layers::LayerSpec;
use crate::nn::{Activation, Architecture, Loss, UpdaterState};
use crate::rng::Rng;
use crate::sharing::{MessageView, quantum};

const KERNELS: &str = r#"
extern "C" __global__ void fill_rows(float* z, const float* b, int rows, int cols) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows * cols) z[i] = b[i % cols];
}
// kind: 0 relu, 1 leaky_relu, 2 tanh, 3 sigmoid, 4 identity
extern "C" __global__ void activate(const float* z, float* a, int n, int kind) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = z[i];
    if (kind == 0) a[i] = v > 0.f ? v : 0.f;
    else if (kind == 1) a[i] = v > 0.f ? v : 0.01f * v;
    else if (kind == 2) a[i] = tanhf(v);
    else if (kind == 3) a[i] = 1.f / (1.f + expf(-v));
    else a[i] = v;
}
extern "C" __global__ void activate_backward(const float* z, const float* a, const float* ga, float* gz, int n, int kind) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = ga[i];
    if (kind == 0) gz[i] = z[i] > 0.f ? g : 0.f;
    else if (kind == 1) gz[i] = z[i] > 0.f ? g : 0.01f * g;
    else if (kind == 2) gz[i] = g * (1.f - a[i] * a[i]);
    else if (kind == 3) gz[i] = g * a[i] * (1.f - a[i]);
    else gz[i] = g;
}
// One thread per row: softmax, and with labels the cross-entropy gradient (p - y) / rows and
// the summed loss.
extern "C" __global__ void softmax_xent(const float* z, float* a, const unsigned* labels, float* gz, float* loss, int rows, int cols) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float* zr = z + r * cols;
    float* ar = a + r * cols;
    float m = zr[0];
    for (int j = 1; j < cols; j++) m = fmaxf(m, zr[j]);
    float s = 0.f;
    for (int j = 0; j < cols; j++) { ar[j] = expf(zr[j] - m); s += ar[j]; }
    for (int j = 0; j < cols; j++) ar[j] /= s;
    if (labels == 0) return;
    unsigned y = labels[r];
    for (int j = 0; j < cols; j++) gz[r * cols + j] = (ar[j] - (j == (int)y ? 1.f : 0.f)) / rows;
    atomicAdd(loss, -logf(fmaxf(ar[y], 1e-30f)) / rows);
}
extern "C" __global__ void mse(const float* a, const float* t, float* gz, float* loss, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float d = a[i] - t[i];
    gz[i] = 2.f * d / n;
    atomicAdd(loss, d * d / n);
}
extern "C" __global__ void column_sums(const float* g, float* out, int rows, int cols) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s += g[r * cols + j];
    out[j] = s;
}
extern "C" __global__ void bytes_to_floats(const unsigned char* in, float* out, int n, float scale) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i] * scale;
}
extern "C" __global__ void add_l2(float* g, const float* p, int n, float l2) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] += l2 * p[i];
}
// kind: 0 sgd, 1 nesterov, 2 adam, 3 rmsprop; a = lr (adam: the bias-corrected step size).
extern "C" __global__ void updater(float* g, float* m, float* v, int n, int kind, float a, float mu, float b1, float b2, float eps) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gi = g[i];
    if (kind == 0) g[i] = a * gi;
    else if (kind == 1) { float prev = m[i]; m[i] = mu * prev - a * gi; g[i] = mu * prev - (1.f + mu) * m[i]; }
    else if (kind == 2) { m[i] = b1 * m[i] + (1.f - b1) * gi; v[i] = b2 * v[i] + (1.f - b2) * gi * gi; g[i] = a * m[i] / (sqrtf(v[i]) + eps); }
    else { m[i] = b1 * m[i] + (1.f - b1) * gi * gi; g[i] = a * gi / (sqrtf(m[i]) + eps); }
}
extern "C" __global__ void subtract(float* p, const float* u, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] -= u[i];
}
// Sharing primitives. residual += update:
extern "C" __global__ void accumulate(float* r, const float* u, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) r[i] += u[i];
}
// Entries base..base+n at or past tau, appended to `out` packed as sharing::quantum packs
// them (in no order: the host sorts); norm2 += the squares they will have once subtracted.
extern "C" __global__ void select_quanta(const float* r, int base, int n, float tau, unsigned* out, unsigned* count, float* norm2) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = r[base + i];
    if (v >= tau) { v -= tau; out[atomicAdd(count, 1u)] = (unsigned)(base + i); }
    else if (v <= -tau) { v += tau; out[atomicAdd(count, 1u)] = (unsigned)(base + i) | QUANTUM_NEG; }
    atomicAdd(norm2, v * v);
}
// buf -= ±tau at the listed (packed) entries.
extern "C" __global__ void apply_quanta(float* p, const unsigned* sel, int m, float tau) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= m) return;
    unsigned s = sel[k];
    p[s & ~QUANTUM_NEG] -= (s & QUANTUM_NEG) ? -tau : tau;
}
extern "C" __global__ void clip(float* r, int n, float limit) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) r[i] = fminf(fmaxf(r[i], -limit), limit);
}
extern "C" __global__ void scale(float* r, int n, float factor) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) r[i] *= factor;
}
"#;

fn cuda_err(e: impl std::fmt::Debug) -> BackendError {
    BackendError::Cuda(format!("{e:?}"))
}

fn cfg(n: usize) -> LaunchConfig {
    LaunchConfig::for_num_elems(n.max(1) as u32)
}

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

struct Kernels {
    _module: Arc<CudaModule>,
    fill_rows: CudaFunction,
    activate: CudaFunction,
    activate_backward: CudaFunction,
    softmax_xent: CudaFunction,
    mse: CudaFunction,
    column_sums: CudaFunction,
    bytes_to_floats: CudaFunction,
    add_l2: CudaFunction,
    updater: CudaFunction,
    subtract: CudaFunction,
    accumulate: CudaFunction,
    select_quanta: CudaFunction,
    apply_quanta: CudaFunction,
    clip: CudaFunction,
    scale: CudaFunction,
}

/// A dense layer's place in the flat buffer (the only layer type with a CUDA kernel so far).
#[derive(Clone, Debug)]
struct Slot {
    inputs: usize,
    outputs: usize,
    weights: Range<usize>,
    bias: Range<usize>,
    activation: Activation,
}

/// The dense layers of a supported architecture (flatten is a no-op on contiguous rows).
struct DenseLayout {
    inputs: usize,
    layers: Vec<Slot>,
    len: usize,
    loss: Loss,
}

impl DenseLayout {
    fn outputs(&self) -> usize {
        self.layers.last().map(|l| l.outputs).unwrap_or(self.inputs)
    }
}

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
        // Without the driver library cudarc would panic on first use: check first.
        // SAFETY: only tries to load the driver library; no CUDA call is made.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(BackendError::CudaUnavailable(
                "the CUDA driver library (libcuda.so) is not installed on this machine; use backend = \"cpu\"".into(),
            ));
        }
        let full = architecture.layout();
        let layout = DenseLayout {
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
        };
        let params = &state[..layout.len];
        let ctx = CudaContext::new(ordinal).map_err(|e| BackendError::CudaUnavailable(format!("{e:?}")))?;
        let stream = ctx.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(cuda_err)?;
        // The sign bit of a selected entry, as `sharing::quantum` packs it.
        let source = KERNELS.replace("QUANTUM_NEG", &format!("{}u", quantum::NEG));
        let ptx = cudarc::nvrtc::compile_ptx(source).map_err(cuda_err)?;
        let module = ctx.load_module(ptx).map_err(cuda_err)?;
        let f = |name: &str| module.load_function(name).map_err(cuda_err);
        let k = Kernels {
            fill_rows: f("fill_rows")?,
            activate: f("activate")?,
            activate_backward: f("activate_backward")?,
            softmax_xent: f("softmax_xent")?,
            mse: f("mse")?,
            column_sums: f("column_sums")?,
            bytes_to_floats: f("bytes_to_floats")?,
            add_l2: f("add_l2")?,
            updater: f("updater")?,
            subtract: f("subtract")?,
            accumulate: f("accumulate")?,
            select_quanta: f("select_quanta")?,
            apply_quanta: f("apply_quanta")?,
            clip: f("clip")?,
            scale: f("scale")?,
            _module: module,
        };
        let cap = batch_capacity.max(1);
        let zeros = |n: usize| stream.alloc_zeros::<f32>(n.max(1)).map_err(cuda_err);
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
            input_bytes: stream.alloc_zeros::<u8>(cap * layout.inputs).map_err(cuda_err)?,
            labels: stream.alloc_zeros::<u32>(cap).map_err(cuda_err)?,
            targets: zeros(cap * layout.outputs())?,
            scalars: zeros(2)?,
            selected: stream.alloc_zeros::<u32>(n).map_err(cuda_err)?,
            count: stream.alloc_zeros::<u32>(1).map_err(cuda_err)?,
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

    fn upload_batch(&mut self, batch: &Batch<'_>) -> Result<(), BackendError> {
        let rows = batch.rows.min(self.capacity);
        let n = rows * self.layout.inputs;
        match batch.input {
            BatchInput::U8 { data, scale } => {
                let mut dst = self.input_bytes.slice_mut(0..n);
                self.stream.memcpy_htod(&data[..n], &mut dst).map_err(cuda_err)?;
                let mut b = self.stream.launch_builder(&self.k.bytes_to_floats);
                let n32 = n as i32;
                b.arg(&self.input_bytes).arg(&mut self.acts[0]).arg(&n32).arg(&scale);
                unsafe { b.launch(cfg(n)) }.map_err(cuda_err)?;
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
    fn forward_loss(&mut self, rows: usize) -> Result<f32, BackendError> {
        let r32 = rows as i32;
        for l in 0..self.layout.layers.len() {
            let slot = self.layout.layers[l].clone();
            let (o32, i32_) = (slot.outputs as i32, slot.inputs as i32);
            let bias = self.params.slice(slot.bias.clone());
            let mut b = self.stream.launch_builder(&self.k.fill_rows);
            b.arg(&mut self.pre[l]).arg(&bias).arg(&r32).arg(&o32);
            unsafe { b.launch(cfg(rows * slot.outputs)) }.map_err(cuda_err)?;
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
            unsafe { self.blas.gemm(gemm, &w, &self.acts[l], &mut self.pre[l]) }.map_err(cuda_err)?;
            let n = (rows * slot.outputs) as i32;
            if let Some(kind) = activation_kind(slot.activation) {
                let mut b = self.stream.launch_builder(&self.k.activate);
                b.arg(&self.pre[l]).arg(&mut self.acts[l + 1]).arg(&n).arg(&kind);
                unsafe { b.launch(cfg(rows * slot.outputs)) }.map_err(cuda_err)?;
            }
        }
        let last = self.layout.layers.len() - 1;
        let cols = self.layout.outputs() as i32;
        self.stream.memset_zeros(&mut self.scalars).map_err(cuda_err)?;
        match self.layout.loss {
            Loss::Xent => {
                let mut b = self.stream.launch_builder(&self.k.softmax_xent);
                b.arg(&self.pre[last])
                    .arg(&mut self.acts[last + 1])
                    .arg(&self.labels)
                    .arg(&mut self.grad_z[last])
                    .arg(&mut self.scalars)
                    .arg(&r32)
                    .arg(&cols);
                unsafe { b.launch(cfg(rows)) }.map_err(cuda_err)?;
            }
            Loss::Mse => {
                let n = rows * self.layout.outputs();
                let n32 = n as i32;
                let mut b = self.stream.launch_builder(&self.k.mse);
                b.arg(&self.acts[last + 1])
                    .arg(&self.targets)
                    .arg(&mut self.grad_z[last])
                    .arg(&mut self.scalars)
                    .arg(&n32);
                unsafe { b.launch(cfg(n)) }.map_err(cuda_err)?;
            }
        }
        let mut loss = [0.0f32; 2];
        self.stream.memcpy_dtoh(&self.scalars, &mut loss).map_err(cuda_err)?;
        Ok(loss[0])
    }

    fn backward(&mut self, rows: usize) -> Result<(), BackendError> {
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
                unsafe { self.blas.gemm(gemm, &self.grad_z[l], &self.acts[l], &mut gw) }.map_err(cuda_err)?;
            }
            {
                let mut gb = self.grads.slice_mut(slot.bias.clone());
                let mut b = self.stream.launch_builder(&self.k.column_sums);
                b.arg(&self.grad_z[l]).arg(&mut gb).arg(&r32).arg(&o32);
                unsafe { b.launch(cfg(slot.outputs)) }.map_err(cuda_err)?;
            }
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
            unsafe { self.blas.gemm(gemm, &w, &self.grad_z[l], &mut self.grad_in[l]) }.map_err(cuda_err)?;
            let kind = activation_kind(self.layout.layers[l - 1].activation).unwrap_or(4);
            let n = (rows * slot.inputs) as i32;
            let (before, after) = self.grad_z.split_at_mut(l);
            let _ = after;
            let mut b = self.stream.launch_builder(&self.k.activate_backward);
            b.arg(&self.pre[l - 1])
                .arg(&self.acts[l])
                .arg(&self.grad_in[l])
                .arg(&mut before[l - 1])
                .arg(&n)
                .arg(&kind);
            unsafe { b.launch(cfg(rows * slot.inputs)) }.map_err(cuda_err)?;
        }
        Ok(())
    }

    fn try_forward_backward(&mut self, batch: &Batch<'_>) -> Result<f32, BackendError> {
        self.upload_batch(batch)?;
        let rows = batch.rows.min(self.capacity);
        let loss = self.forward_loss(rows)?;
        self.backward(rows)?;
        Ok(loss)
    }

    fn try_compute_update(&mut self, lr_scale: f32) -> Result<(), BackendError> {
        if self.l2 > 0.0 {
            for slot in self.layout.layers.clone() {
                let n = slot.weights.len() as i32;
                let mut g = self.grads.slice_mut(slot.weights.clone());
                let p = self.params.slice(slot.weights.clone());
                let mut b = self.stream.launch_builder(&self.k.add_l2);
                b.arg(&mut g).arg(&p).arg(&n).arg(&self.l2);
                unsafe { b.launch(cfg(slot.weights.len())) }.map_err(cuda_err)?;
            }
        }
        self.step += 1;
        let u = &self.updater;
        let lr = u.learning_rate() * lr_scale;
        let (kind, a, b1) = match u.kind.unwrap_or(UpdaterKind::Adam) {
            UpdaterKind::Sgd => (0, lr, 0.0),
            UpdaterKind::Nesterov => (1, lr, 0.0),
            UpdaterKind::Adam => {
                let t = self.step as i32;
                (2, lr * (1.0 - u.beta2.powi(t)).sqrt() / (1.0 - u.beta1.powi(t)), u.beta1)
            }
            // RMSProp keeps its average in `first`, with rho in the b1 slot.
            UpdaterKind::Rmsprop => (3, lr, u.rho),
        };
        let n = self.layout.len as i32;
        let mut bld = self.stream.launch_builder(&self.k.updater);
        bld.arg(&mut self.grads)
            .arg(&mut self.first)
            .arg(&mut self.second)
            .arg(&n)
            .arg(&kind)
            .arg(&a)
            .arg(&u.momentum)
            .arg(&b1)
            .arg(&u.beta2)
            .arg(&u.epsilon);
        unsafe { bld.launch(cfg(self.layout.len)) }.map_err(cuda_err)?;
        Ok(())
    }

    fn residual(&mut self) -> Result<&mut CudaSlice<f32>, BackendError> {
        if self.residual.is_none() {
            self.residual = Some(self.stream.alloc_zeros::<f32>(self.layout.len).map_err(cuda_err)?);
        }
        self.residual.as_mut().ok_or_else(|| BackendError::Cuda("no residual".into()))
    }

    fn try_residual_add(&mut self) -> Result<(), BackendError> {
        let n = self.layout.len;
        let n32 = n as i32;
        self.residual()?;
        let residual = self.residual.as_mut().ok_or_else(|| BackendError::Cuda("no residual".into()))?;
        let mut b = self.stream.launch_builder(&self.k.accumulate);
        b.arg(residual).arg(&self.grads).arg(&n32);
        unsafe { b.launch(cfg(n)) }.map_err(cuda_err)?;
        Ok(())
    }

    fn try_select(
        &mut self,
        tau: f32,
        segments: &[Range<usize>],
        out: &mut Vec<u32>,
        norm2: &mut [f64],
    ) -> Result<(), BackendError> {
        self.residual()?;
        if self.norms.len() < segments.len() {
            self.norms = self.stream.alloc_zeros::<f32>(segments.len()).map_err(cuda_err)?;
        }
        self.stream.memset_zeros(&mut self.count).map_err(cuda_err)?;
        self.stream.memset_zeros(&mut self.norms).map_err(cuda_err)?;
        let residual = self.residual.as_ref().ok_or_else(|| BackendError::Cuda("no residual".into()))?;
        for (i, seg) in segments.iter().enumerate() {
            let (base, n) = (seg.start as i32, seg.len() as i32);
            let mut slot = self.norms.slice_mut(i..i + 1);
            let mut b = self.stream.launch_builder(&self.k.select_quanta);
            b.arg(residual)
                .arg(&base)
                .arg(&n)
                .arg(&tau)
                .arg(&mut self.selected)
                .arg(&mut self.count)
                .arg(&mut slot);
            unsafe { b.launch(cfg(seg.len())) }.map_err(cuda_err)?;
        }
        let mut count = [0u32];
        self.stream.memcpy_dtoh(&self.count, &mut count).map_err(cuda_err)?;
        let m = count[0] as usize;
        out.clear();
        out.resize(m, 0);
        if m > 0 {
            let view = self.selected.slice(0..m);
            self.stream.memcpy_dtoh(&view, out.as_mut_slice()).map_err(cuda_err)?;
        }
        out.sort_unstable_by_key(|&q| quantum::index(q));
        let mut norms = vec![0.0f32; self.norms.len()];
        self.stream.memcpy_dtoh(&self.norms, &mut norms).map_err(cuda_err)?;
        for (n2, &v) in norm2.iter_mut().zip(&norms) {
            *n2 = v as f64;
        }
        Ok(())
    }

    fn try_scatter(&mut self, target: Target, selected: &[u32], tau: f32) -> Result<(), BackendError> {
        let m = selected.len();
        if m == 0 {
            return Ok(());
        }
        let mut dst = self.selected.slice_mut(0..m);
        self.stream.memcpy_htod(selected, &mut dst).map_err(cuda_err)?;
        let m32 = m as i32;
        let buf = match target {
            Target::Params => &mut self.params,
            Target::Residual => {
                self.residual()?;
                self.residual.as_mut().ok_or_else(|| BackendError::Cuda("no residual".into()))?
            }
        };
        let mut b = self.stream.launch_builder(&self.k.apply_quanta);
        b.arg(buf).arg(&self.selected).arg(&m32).arg(&tau);
        unsafe { b.launch(cfg(m)) }.map_err(cuda_err)?;
        Ok(())
    }

    fn try_apply_message(&mut self, message: &MessageView<'_>) -> Result<(), BackendError> {
        self.host_selected.clear();
        let dense: Vec<f32> = message.dense_values().collect();
        if !dense.is_empty() {
            let u = self.stream.memcpy_stod(&dense).map_err(cuda_err)?;
            let n = self.layout.len as i32;
            let mut b = self.stream.launch_builder(&self.k.subtract);
            b.arg(&mut self.params).arg(&u).arg(&n);
            unsafe { b.launch(cfg(self.layout.len)) }.map_err(cuda_err)?;
            return Ok(());
        }
        let sel = &mut self.host_selected;
        message.for_each_quantum(|i, negative| sel.push(quantum::pack(i, negative)));
        let m = self.host_selected.len();
        if m == 0 {
            return Ok(());
        }
        let mut dst = self.selected.slice_mut(0..m);
        self.stream.memcpy_htod(&self.host_selected, &mut dst).map_err(cuda_err)?;
        let (m32, tau) = (m as i32, message.header.tau);
        let mut b = self.stream.launch_builder(&self.k.apply_quanta);
        b.arg(&mut self.params).arg(&self.selected).arg(&m32).arg(&tau);
        unsafe { b.launch(cfg(m)) }.map_err(cuda_err)?;
        Ok(())
    }

    /// The trait's step methods return no errors: a device fault is logged once, later steps
    /// do nothing, and losses read NaN, which stops the run as diverged (the log says why).
    /// Runs an elementwise kernel `(residual, n, value)` over the residual, if there is one.
    fn residual_kernel(&mut self, kernel: fn(&Kernels) -> &CudaFunction, value: f32, what: &str) {
        let n = self.layout.len;
        let Some(r) = self.residual.as_mut() else { return };
        let n32 = n as i32;
        let mut b = self.stream.launch_builder(kernel(&self.k));
        b.arg(r).arg(&n32).arg(&value);
        let result = unsafe { b.launch(cfg(n)) }.map_err(cuda_err);
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
        let (free, total) = cudarc::driver::result::mem_get_info().unwrap_or((0, 0));
        DeviceInfo {
            device: format!("cuda:{}", self.ordinal),
            name: format!("CUDA device {}", self.ordinal),
            memory_used: (total - free) as u64,
            memory_total: total as u64,
            utilization: None,
        }
    }

    fn param_count(&self) -> usize {
        self.layout.len
    }

    fn running_len(&self) -> usize {
        0
    }

    fn read_state(&mut self, out: &mut [f32]) {
        let n = self.layout.len;
        if let Err(e) = self.stream.memcpy_dtoh(&self.params, &mut out[..n]).map_err(cuda_err) {
            self.fail("reading parameters", e);
        }
    }

    fn write_state(&mut self, state: &[f32]) {
        let n = self.layout.len;
        if let Err(e) = self.stream.memcpy_htod(&state[..n], &mut self.params).map_err(cuda_err) {
            self.fail("writing parameters", e);
        }
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
        if let Err(e) = self.try_compute_update(lr_scale) {
            self.fail("updater", e);
        }
    }

    fn apply_update(&mut self) {
        let n = self.layout.len as i32;
        let mut b = self.stream.launch_builder(&self.k.subtract);
        b.arg(&mut self.params).arg(&self.grads).arg(&n);
        let result = unsafe { b.launch(cfg(self.layout.len)) }.map_err(cuda_err);
        if let Err(e) = result {
            self.fail("applying the update", e);
        }
    }

    fn read_gradient(&mut self, out: &mut [f32]) {
        let n = self.layout.len;
        if let Err(e) = self.stream.memcpy_dtoh(&self.grads, &mut out[..n]).map_err(cuda_err) {
            self.fail("reading the gradient", e);
        }
    }

    fn write_gradient(&mut self, values: &[f32]) {
        let n = self.layout.len;
        if let Err(e) = self.stream.memcpy_htod(&values[..n], &mut self.grads).map_err(cuda_err) {
            self.fail("writing the gradient", e);
        }
    }

    fn residual_add(&mut self) {
        if let Err(e) = self.try_residual_add() {
            self.fail("accumulating the residual", e);
        }
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
        if let Err(e) = self.try_scatter(target, selected, tau) {
            self.fail("subtracting quanta", e);
        }
    }

    fn apply_message(&mut self, message: &MessageView<'_>) {
        if let Err(e) = self.try_apply_message(message) {
            self.fail("applying a message", e);
        }
    }

    fn clip_residual(&mut self, limit: f32) {
        self.residual_kernel(|k| &k.clip, limit, "clipping the residual");
    }

    fn scale_residual(&mut self, factor: f32) {
        self.residual_kernel(|k| &k.scale, factor, "scaling the residual");
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
        let mut first = vec![0.0; if self.first.len() > 1 { self.layout.len } else { 0 }];
        let mut second = vec![0.0; if self.second.len() > 1 { self.layout.len } else { 0 }];
        if !first.is_empty() {
            let _ = self.stream.memcpy_dtoh(&self.first, &mut first);
        }
        if !second.is_empty() {
            let _ = self.stream.memcpy_dtoh(&self.second, &mut second);
        }
        UpdaterState { kind: self.updater.kind.unwrap_or(UpdaterKind::Adam), step: self.step, first, second }
    }

    fn restore_updater(&mut self, state: &UpdaterState) -> Result<(), String> {
        if Some(state.kind) != self.updater.kind {
            return Err(format!("saved updater is {:?}, the job uses {:?}", state.kind, self.updater.kind));
        }
        let err = |e: cudarc::driver::DriverError| format!("{e:?}");
        if !state.first.is_empty() {
            self.stream.memcpy_htod(&state.first, &mut self.first).map_err(err)?;
        }
        if !state.second.is_empty() {
            self.stream.memcpy_htod(&state.second, &mut self.second).map_err(err)?;
        }
        self.step = state.step;
        Ok(())
    }
}
