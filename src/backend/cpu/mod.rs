//! The CPU backend: one kernel file per layer type (forward and backward side by side) over
//! plain slices, matrix products on the `gemm` crate, the sharing primitives over slices, and
//! an optional rayon pool of the worker's own threads.

mod activation;
mod avg_pool2d;
mod batch_norm;
mod conv2d;
mod dense;
mod dropout;
mod flatten;
pub mod gemm;
mod global_avg_pool;
mod loss;
mod max_pool2d;
pub mod sharing;
#[cfg(test)]
mod tests;

use std::ops::Range;

use super::{Backend, DeviceInfo, LayerOps, Target, eval_pass, train_pass};
use crate::data::{Batch, BatchInput, BatchTargets};
use crate::job::UpdaterSpec;
use crate::nn::layers::{LayerSpec, batch_norm_groups};
use crate::nn::{Activation, Architecture, Layout, Loss, PlannedLayer, Real, Updater, UpdaterState};
use crate::rng::Rng;
use crate::sharing::MessageView;

/// One layer's arithmetic on the CPU. `x` and `y` hold `rows` examples of the layer's input
/// and output; `p`, `g` and `r` are the layer's own ranges of the parameter, gradient and
/// running-state buffers.
pub(crate) trait Kernel<F: Real>: Send {
    fn forward(&mut self, x: &[F], y: &mut [F], p: &[F], r: &mut [F], rows: usize, train: bool);
    /// From `dy` = dL/dy (which it may overwrite) writes this layer's gradient into `g` (all
    /// of it) and, when asked, dL/dx into `dx`.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &mut self,
        x: &[F],
        y: &[F],
        dy: &mut [F],
        dx: Option<&mut [F]>,
        p: &[F],
        g: &mut [F],
        rows: usize,
    );
    /// Draws what a training pass needs at random (dropout masks).
    fn resample(&mut self, _rows: usize, _rng: &mut Rng) {}
}

fn kernel_for<F: Real>(
    l: &PlannedLayer,
    output_layer: bool,
    capacity: usize,
    threads: usize,
) -> Box<dyn Kernel<F>> {
    const CHECKED: &str = "layer shapes were checked when the architecture was built";
    let (input, output) = (l.input, l.output);
    match &l.spec {
        LayerSpec::Dense(d) => Box::new(dense::DenseKernel {
            inputs: input.size(),
            units: d.units,
            // The output layer's activation belongs to the loss.
            act: if output_layer { Activation::Identity } else { d.activation },
            threads,
        }),
        LayerSpec::Conv2d(c) => {
            let win = c.window(input).expect(CHECKED);
            let channels = input.as_image().expect(CHECKED).0;
            Box::new(conv2d::Conv2dKernel::new(win, channels, c.filters, c.activation, threads))
        }
        LayerSpec::MaxPool2d(m) => Box::new(max_pool2d::MaxPoolKernel {
            win: m.window(input).expect(CHECKED),
            argmax: vec![0; capacity * output.size()],
            threads,
        }),
        LayerSpec::AvgPool2d(a) => {
            Box::new(avg_pool2d::AvgPoolKernel { win: a.window(input).expect(CHECKED) })
        }
        LayerSpec::GlobalAvgPool(_) => {
            let (_, h, w) = input.as_image().expect(CHECKED);
            Box::new(global_avg_pool::GlobalAvgPoolKernel { area: h * w })
        }
        LayerSpec::BatchNorm(b) => {
            let (groups, inner) = batch_norm_groups(input);
            Box::new(batch_norm::BatchNormKernel::new(
                groups,
                inner,
                b.decay,
                b.epsilon,
                b.activation,
                capacity,
            ))
        }
        LayerSpec::Dropout(d) => Box::new(dropout::DropoutKernel {
            rate: d.rate,
            width: input.size(),
            mask: vec![F::zero(); capacity * input.size()],
        }),
        LayerSpec::Flatten(_) => Box::new(flatten::FlattenKernel),
        LayerSpec::Activation(a) => {
            Box::new(activation::ActivationKernel { act: a.activation, width: input.size() })
        }
    }
}

/// A network's buffers and kernels on the CPU, generic over the float type so gradient checks
/// run this very code in f64.
pub struct Net<F: Real> {
    kernels: Vec<Box<dyn Kernel<F>>>,
    /// Values per example at each layer's input and output.
    widths: Vec<(usize, usize)>,
    param_ranges: Vec<Range<usize>>,
    running_ranges: Vec<Range<usize>>,
    capacity: usize,
    /// `acts[0]` is the input, `acts[l + 1]` the output of layer `l` (the output layer's
    /// pre-activation for the last one).
    acts: Vec<Vec<F>>,
    /// Gradients flowing backward, alternating between two buffers.
    flow: [Vec<F>; 2],
    /// The network's outputs (after the output activation).
    out: Vec<F>,
    loss: Loss,
    out_act: Activation,
    pub params: Vec<F>,
    pub grads: Vec<F>,
    pub running: Vec<F>,
}

impl<F: Real> Net<F> {
    pub fn new(layout: &Layout, capacity: usize, threads: usize) -> Self {
        let cap = capacity.max(1);
        let last = layout.layers.len() - 1;
        let out_act = match &layout.layers[last].spec {
            LayerSpec::Dense(d) => d.activation,
            _ => Activation::Identity,
        };
        let widest = layout.widest();
        let mut acts = vec![vec![F::zero(); cap * layout.input.size()]];
        acts.extend(layout.layers.iter().map(|l| vec![F::zero(); cap * l.output.size()]));
        Net {
            kernels: layout
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| kernel_for(l, i == last, cap, threads))
                .collect(),
            widths: layout.layers.iter().map(|l| (l.input.size(), l.output.size())).collect(),
            param_ranges: layout.layers.iter().map(|l| l.params.clone()).collect(),
            running_ranges: layout.layers.iter().map(|l| l.running.clone()).collect(),
            capacity: cap,
            acts,
            flow: [vec![F::zero(); cap * widest], vec![F::zero(); cap * widest]],
            out: vec![F::zero(); cap * layout.outputs()],
            loss: layout.loss,
            out_act,
            params: vec![F::zero(); layout.len],
            grads: vec![F::zero(); layout.len],
            running: vec![F::zero(); layout.running_len],
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn outputs(&self) -> usize {
        self.widths.last().map(|w| w.1).unwrap_or(0)
    }

    /// Fills the input rows from a batch (u8 scaled here, as the batch enters the model).
    pub fn set_input(&mut self, input: BatchInput<'_>, rows: usize) {
        assert!(rows <= self.capacity, "batch of {rows} rows exceeds the capacity {}", self.capacity);
        let width = self.widths[0].0;
        let x = &mut self.acts[0][..rows * width];
        match input {
            BatchInput::U8 { data, scale } => {
                x.iter_mut().zip(&data[..rows * width]).for_each(|(o, &b)| *o = F::of32(b as f32 * scale))
            }
            BatchInput::F32(v) => x.iter_mut().zip(&v[..rows * width]).for_each(|(o, &b)| *o = F::of32(b)),
        }
    }

    /// The input rows (tests and gradient checks set inputs directly).
    pub fn input_mut(&mut self, rows: usize) -> &mut [F] {
        let width = self.widths[0].0;
        &mut self.acts[0][..rows * width]
    }

    /// The outputs of the last forward pass with a loss.
    pub fn output(&self, rows: usize) -> &[F] {
        &self.out[..rows * self.outputs()]
    }
}

impl<F: Real> LayerOps for Net<F> {
    fn layer_count(&self) -> usize {
        self.kernels.len()
    }

    fn resample(&mut self, rows: usize, rng: &mut Rng) {
        self.kernels.iter_mut().for_each(|k| k.resample(rows, rng));
    }

    fn forward(&mut self, l: usize, rows: usize, train: bool) {
        let (win, wout) = self.widths[l];
        let (before, after) = self.acts.split_at_mut(l + 1);
        self.kernels[l].forward(
            &before[l][..rows * win],
            &mut after[0][..rows * wout],
            &self.params[self.param_ranges[l].clone()],
            &mut self.running[self.running_ranges[l].clone()],
            rows,
            train,
        );
    }

    fn loss(&mut self, rows: usize, targets: BatchTargets<'_>) -> f64 {
        let last = self.kernels.len() - 1;
        let width = self.outputs();
        let n = rows * width;
        loss::output(
            self.loss,
            self.out_act,
            &self.acts[last + 1][..n],
            &mut self.out[..n],
            targets,
            &mut self.flow[last % 2][..n],
            width,
        )
        .f64()
    }

    fn backward(&mut self, l: usize, rows: usize, input_grad: bool) {
        let (win, wout) = self.widths[l];
        let [a, b] = &mut self.flow;
        let (dy, dx) = if l.is_multiple_of(2) { (a, b) } else { (b, a) };
        let range = self.param_ranges[l].clone();
        self.kernels[l].backward(
            &self.acts[l][..rows * win],
            &self.acts[l + 1][..rows * wout],
            &mut dy[..rows * wout],
            input_grad.then(|| &mut dx[..rows * win]),
            &self.params[range.clone()],
            &mut self.grads[range],
            rows,
        );
    }
}

pub struct CpuBackend {
    net: Net<f32>,
    /// Allocated on first use: only gradient sharing needs it.
    residual: Vec<f32>,
    updater: Updater,
    pool: Option<rayon::ThreadPool>,
    threads: usize,
}

impl CpuBackend {
    /// `updater` must be resolved ([`crate::job::JobSpec::updater`]); `state` is the
    /// parameters followed by the running state; `threads` the cores this replica may use.
    pub fn new(
        architecture: &Architecture,
        updater: &UpdaterSpec,
        l2: f32,
        batch_capacity: usize,
        state: &[f32],
        threads: usize,
    ) -> Self {
        let layout = architecture.layout();
        assert_eq!(state.len(), layout.state_len(), "model state does not match the architecture");
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("strom-cpu-{i}"))
                    .build()
                    .map_err(|e| tracing::warn!("cannot start {threads} compute threads ({e}); using one"))
                    .ok()
            })
            .flatten();
        let threads = if pool.is_some() { threads } else { 1 };
        let mut net = Net::new(layout, batch_capacity, threads);
        let (params, running) = state.split_at(layout.len);
        net.params.copy_from_slice(params);
        net.running.copy_from_slice(running);
        CpuBackend {
            updater: Updater::new(updater, l2, layout.weight_ranges(), layout.len),
            net,
            residual: Vec::new(),
            pool,
            threads,
        }
    }

    /// The residual (tests, diagnostics).
    pub fn residual(&self) -> &[f32] {
        &self.residual
    }

    /// The gradient of the last pass (before `compute_update`), or the update after it.
    pub fn gradient(&self) -> &[f32] {
        &self.net.grads
    }

    fn run<T: Send>(&mut self, f: impl FnOnce(&mut Net<f32>) -> T + Send) -> T {
        match &self.pool {
            Some(pool) => pool.install(|| f(&mut self.net)),
            None => f(&mut self.net),
        }
    }
}

impl Backend for CpuBackend {
    fn device(&self) -> DeviceInfo {
        let n = &self.net;
        let floats = n.params.len() * 2 + n.running.len() + self.residual.len();
        let buffers = n.acts.iter().map(Vec::len).sum::<usize>() + n.flow[0].len() * 2;
        DeviceInfo {
            device: "cpu".into(),
            name: format!(
                "CPU ({} of {} threads)",
                self.threads,
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
            ),
            memory_used: ((floats + buffers) * 4) as u64,
            memory_total: 0,
            utilization: None,
        }
    }

    fn param_count(&self) -> usize {
        self.net.params.len()
    }

    fn running_len(&self) -> usize {
        self.net.running.len()
    }

    fn read_state(&mut self, out: &mut [f32]) {
        let (p, r) = out.split_at_mut(self.net.params.len());
        p.copy_from_slice(&self.net.params);
        r.copy_from_slice(&self.net.running);
    }

    fn write_state(&mut self, state: &[f32]) {
        let (p, r) = state.split_at(self.net.params.len());
        self.net.params.copy_from_slice(p);
        self.net.running.copy_from_slice(r);
    }

    fn write_running(&mut self, running: &[f32]) {
        self.net.running.copy_from_slice(running);
    }

    fn forward_backward(&mut self, batch: &Batch<'_>, rng: &mut Rng) -> f32 {
        let rows = batch.rows;
        self.net.set_input(batch.input, rows);
        let targets = batch.targets;
        self.run(|net| train_pass(net, rows, targets, Some(rng))) as f32
    }

    fn compute_update(&mut self, lr_scale: f32) {
        self.updater.apply(&self.net.params, &mut self.net.grads, lr_scale);
    }

    fn apply_update(&mut self) {
        self.net.params.iter_mut().zip(&self.net.grads).for_each(|(p, u)| *p -= u);
    }

    fn residual_add(&mut self) {
        if self.residual.len() != self.net.params.len() {
            self.residual = vec![0.0; self.net.params.len()];
        }
        sharing::add(&mut self.residual, &self.net.grads);
    }

    fn residual_select(
        &mut self,
        tau: f32,
        segments: &[Range<usize>],
        out: &mut Vec<u32>,
        norm2: &mut [f64],
    ) {
        if self.residual.len() != self.net.params.len() {
            self.residual = vec![0.0; self.net.params.len()];
        }
        sharing::select(&self.residual, tau, segments, out, norm2);
    }

    fn scatter_subtract(&mut self, target: Target, selected: &[u32], tau: f32) {
        let buf = match target {
            Target::Residual => &mut self.residual,
            Target::Params => &mut self.net.params,
        };
        sharing::scatter_subtract(buf, selected, tau);
    }

    fn apply_message(&mut self, message: &MessageView<'_>) {
        message.subtract_from(&mut self.net.params, 1.0);
    }

    fn clip_residual(&mut self, limit: f32) {
        sharing::clip(&mut self.residual, limit);
    }

    fn scale_residual(&mut self, factor: f32) {
        self.residual.iter_mut().for_each(|r| *r *= factor);
    }

    fn evaluate(&mut self, batch: &Batch<'_>, outputs: &mut Vec<f32>) -> f32 {
        let rows = batch.rows;
        self.net.set_input(batch.input, rows);
        let targets = batch.targets;
        let loss = self.run(|net| eval_pass(net, rows, targets)) as f32;
        outputs.clear();
        outputs.extend_from_slice(self.net.output(rows));
        loss
    }

    fn updater_state(&self) -> UpdaterState {
        self.updater.state()
    }

    fn restore_updater(&mut self, state: &UpdaterState) -> Result<(), String> {
        self.updater.restore(state)
    }
}
