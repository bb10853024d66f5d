//! The CPU backend: one kernel file per layer type (forward and backward side by side) over
//! plain slices, matrix products on the `gemm` crate, the sharing primitives over slices, and
//! an optional rayon pool of the worker's own threads.

mod activation;
mod add;
mod avg_pool2d;
mod batch_norm;
mod concat;
mod conv1d;
mod conv2d;
mod dense;
mod dropout;
mod embedding;
mod flatten;
pub mod gemm;
mod global_avg_pool;
mod gru;
mod layer_norm;
mod loss;
mod lstm;
mod max_pool2d;
mod positional_embedding;
mod recurrent;
mod reduce;
mod self_attention;
pub mod sharing;
#[cfg(test)]
mod tests;
mod time_pool;

use std::ops::Range;

use super::{Backend, DeviceInfo, LayerOps, Target, eval_pass, train_pass};
use crate::data::{Batch, BatchInput, BatchTargets};
use crate::job::UpdaterSpec;
use crate::nn::layers::{LayerSpec, Span, batch_norm_groups};
use crate::nn::{
    Activation, Architecture, Layout, Loss, MAX_MERGE_INPUTS, PlannedLayer, Real, Shape, Updater,
    UpdaterState,
};
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
    /// The steps each example of the next pass has, for sequences of several lengths (`None`:
    /// all of them). Layers that read across steps (pooling over time, a recurrent layer's
    /// last step, attention that looks ahead, convolutions) keep a copy; others ignore it.
    fn mask(&mut self, _lengths: Option<&[u32]>) {}
}

/// A kernel's own copy of each example's steps ([`Kernel::mask`]), in a buffer sized once.
pub(crate) fn keep_lengths(own: &mut Vec<u32>, lengths: Option<&[u32]>) {
    own.clear();
    if let Some(l) = lengths {
        own.extend_from_slice(l);
    }
}

/// Example `r`'s steps from a kernel's copy of the lengths (all `steps` when it holds none).
pub(crate) fn steps_of(lengths: &[u32], r: usize, steps: usize) -> usize {
    lengths.get(r).map_or(steps, |&n| (n as usize).min(steps))
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
            inputs: if input.is_sequence() { input.per_step() } else { input.size() },
            steps: if input.is_sequence() { input.steps() } else { 1 },
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
        LayerSpec::GlobalAvgPool(_) if input.is_sequence() => Box::new(time_pool::TimePoolKernel::new(
            input.steps(),
            input.per_step(),
            time_pool::Reduce::Mean,
            capacity,
        )),
        LayerSpec::GlobalAvgPool(_) => {
            let (_, h, w) = input.as_image().expect(CHECKED);
            Box::new(global_avg_pool::GlobalAvgPoolKernel { area: h * w })
        }
        LayerSpec::GlobalMaxPool(_) => Box::new(time_pool::TimePoolKernel::new(
            input.steps(),
            input.per_step(),
            time_pool::Reduce::Max,
            capacity,
        )),
        LayerSpec::LastStep(_) => Box::new(time_pool::TimePoolKernel::new(
            input.steps(),
            input.per_step(),
            time_pool::Reduce::Last,
            capacity,
        )),
        LayerSpec::Conv1d(c) => Box::new(conv1d::Conv1dKernel::new(
            c.span(input).expect(CHECKED),
            input.per_step(),
            c.filters,
            c.activation,
            capacity,
            threads,
        )),
        LayerSpec::BatchNorm(b) => {
            let (groups, inner) = batch_norm_groups(input);
            Box::new(batch_norm::BatchNormKernel::new(
                groups,
                inner,
                b.decay,
                b.epsilon,
                b.activation,
                capacity,
                threads,
            ))
        }
        LayerSpec::Dropout(d) => Box::new(dropout::DropoutKernel {
            rate: d.rate,
            width: input.size(),
            mask: vec![F::zero(); capacity * input.size()],
        }),
        LayerSpec::Embedding(e) => {
            let Shape::Tokens { steps, vocab } = input else { unreachable!("{CHECKED}") };
            Box::new(embedding::EmbeddingKernel { steps, vocab, dim: e.dim })
        }
        LayerSpec::Lstm(m) => Box::new(lstm::LstmKernel::new(
            input.per_step(),
            m.units,
            input.steps(),
            m.return_sequences,
            capacity,
            threads,
        )),
        LayerSpec::Gru(m) => Box::new(gru::GruKernel::new(
            input.per_step(),
            m.units,
            input.steps(),
            m.return_sequences,
            capacity,
            threads,
        )),
        LayerSpec::LayerNorm(n) => Box::new(layer_norm::LayerNormKernel::new(
            input.per_step(),
            input.steps(),
            n.epsilon as f64,
            capacity,
        )),
        LayerSpec::PositionalEmbedding(_) => {
            Box::new(positional_embedding::PositionalEmbeddingKernel { width: input.size() })
        }
        LayerSpec::SelfAttention(a) => Box::new(self_attention::SelfAttentionKernel::new(
            input.per_step(),
            input.steps(),
            a.heads,
            a.causal,
            a.dropout,
            capacity,
            threads,
        )),
        // Merges are run by `Net` itself (several inputs); this kernel is never called.
        LayerSpec::Flatten(_) | LayerSpec::Add(_) | LayerSpec::Concat(_) => Box::new(flatten::FlattenKernel),
        LayerSpec::Activation(a) => {
            Box::new(activation::ActivationKernel { act: a.activation, width: input.size(), threads })
        }
    }
}

/// For element-wise work over `len` values with `threads` threads: the piece each thread takes,
/// or `None` when one thread should do it all (one thread, or too little work to share).
pub(crate) fn parallel_len(len: usize, threads: usize) -> Option<usize> {
    const MIN_SHARED: usize = 1 << 15;
    (threads > 1 && len >= MIN_SHARED).then(|| len.div_ceil(threads))
}

/// How a merging layer joins its inputs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Merge {
    Add,
    Concat,
}

/// A network's buffers and kernels on the CPU, generic over the float type so gradient checks
/// run this very code in f64. Layers are a graph in topological order: node 0 is the input,
/// node `l + 1` the output of layer `l`, and each layer reads the nodes it names.
pub struct Net<F: Real> {
    kernels: Vec<Box<dyn Kernel<F>>>,
    merges: Vec<Option<Merge>>,
    /// The nodes each layer reads.
    inputs: Vec<Vec<usize>>,
    /// Values per example of every node.
    node_widths: Vec<usize>,
    param_ranges: Vec<Range<usize>>,
    running_ranges: Vec<Range<usize>>,
    capacity: usize,
    /// Threads of the pool the net runs in (element-wise merges split their work).
    threads: usize,
    /// `acts[0]` is the input, `acts[l + 1]` the output of layer `l` (the output layer's
    /// pre-activation for the last one).
    acts: Vec<Vec<F>>,
    /// Gradient buffers, shared by nodes whose gradients are never needed at once (a chain
    /// alternates between two), each `capacity` rows of the widest node.
    slots: Vec<Vec<F>>,
    /// The slot holding each node's gradient (node 0's is never computed).
    slot_of: Vec<usize>,
    /// Whether a node's gradient was written in this backward pass (a node that feeds several
    /// layers sums their shares).
    written: Vec<bool>,
    /// Where a layer's input gradient goes before it is added to a share already there.
    scratch: Vec<F>,
    /// The network's outputs (after the output activation).
    out: Vec<F>,
    loss: Loss,
    out_act: Activation,
    /// Values the loss reads per prediction: the output's size, or per step of a sequence
    /// (a per-step output layer predicts at every step).
    out_per_step: usize,
    /// Per node, each example's steps in this batch (sequences of several lengths).
    node_lengths: Vec<Vec<u32>>,
    /// Per layer, the 1-D window that changes its sequence's steps (`conv1d`).
    spans: Vec<Option<Span>>,
    pub params: Vec<F>,
    pub grads: Vec<F>,
    pub running: Vec<F>,
}

/// Gives each node (but the input) a gradient slot, reusing a slot once its node's gradient
/// has been used: backward runs from the last layer to the first, a node's gradient is live
/// from its first write (by its last consumer, or the loss) to its producer's backward.
fn plan_slots(inputs: &[Vec<usize>]) -> (Vec<usize>, usize) {
    let layers = inputs.len();
    let mut slot_of = vec![usize::MAX; layers + 1];
    let mut free: Vec<usize> = Vec::new();
    let mut count = 0;
    let take = |free: &mut Vec<usize>, count: &mut usize| {
        free.pop().unwrap_or_else(|| {
            *count += 1;
            *count - 1
        })
    };
    slot_of[layers] = take(&mut free, &mut count);
    for l in (0..layers).rev() {
        for &n in &inputs[l] {
            if n > 0 && slot_of[n] == usize::MAX {
                slot_of[n] = take(&mut free, &mut count);
            }
        }
        // Layer l's backward is the last use of its output's gradient.
        free.push(slot_of[l + 1]);
    }
    (slot_of, count)
}

/// Two distinct elements of a slice, both mutable.
fn two_mut<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b, "two gradients in one buffer");
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
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
        let inputs: Vec<Vec<usize>> = layout.layers.iter().map(|l| l.inputs.clone()).collect();
        let (slot_of, slots) = plan_slots(&inputs);
        let mut readers = vec![0usize; inputs.len() + 1];
        inputs.iter().flatten().for_each(|&n| readers[n] += 1);
        let fan_out = readers.iter().skip(1).any(|&r| r > 1);
        let mut node_widths = vec![layout.input.size()];
        node_widths.extend(layout.layers.iter().map(|l| l.output.size()));
        Net {
            kernels: layout
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| kernel_for(l, i == last, cap, threads))
                .collect(),
            merges: layout
                .layers
                .iter()
                .map(|l| match l.spec {
                    LayerSpec::Add(_) => Some(Merge::Add),
                    LayerSpec::Concat(_) => Some(Merge::Concat),
                    _ => None,
                })
                .collect(),
            written: vec![false; inputs.len() + 1],
            inputs,
            node_widths,
            param_ranges: layout.layers.iter().map(|l| l.params.clone()).collect(),
            running_ranges: layout.layers.iter().map(|l| l.running.clone()).collect(),
            capacity: cap,
            threads,
            acts,
            slots: (0..slots).map(|_| vec![F::zero(); cap * widest]).collect(),
            slot_of,
            // Only a node read by several layers sums shares through the scratch buffer.
            scratch: if fan_out { vec![F::zero(); cap * widest] } else { Vec::new() },
            out: vec![F::zero(); cap * layout.outputs()],
            loss: layout.loss,
            out_act,
            out_per_step: layout.output().per_step(),
            node_lengths: (0..=layout.layers.len())
                .map(|n| {
                    let seq = n == 0 && layout.input.is_sequence()
                        || n > 0 && layout.layers[n - 1].output.is_sequence();
                    Vec::with_capacity(if seq { cap } else { 0 })
                })
                .collect(),
            spans: layout
                .layers
                .iter()
                .map(|l| match &l.spec {
                    LayerSpec::Conv1d(c) => c.span(l.input).ok(),
                    _ => None,
                })
                .collect(),
            params: vec![F::zero(); layout.len],
            grads: vec![F::zero(); layout.len],
            running: vec![F::zero(); layout.running_len],
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn outputs(&self) -> usize {
        self.node_widths.last().copied().unwrap_or(0)
    }

    /// Fills the input rows from a batch (u8 scaled here, as the batch enters the model).
    pub fn set_input(&mut self, input: BatchInput<'_>, rows: usize) {
        assert!(rows <= self.capacity, "batch of {rows} rows exceeds the capacity {}", self.capacity);
        let width = self.node_widths[0];
        let x = &mut self.acts[0][..rows * width];
        match input {
            BatchInput::U8 { data, scale } => {
                x.iter_mut().zip(&data[..rows * width]).for_each(|(o, &b)| *o = F::of32(b as f32 * scale))
            }
            BatchInput::F32(v) => x.iter_mut().zip(&v[..rows * width]).for_each(|(o, &b)| *o = F::of32(b)),
        }
    }

    /// The steps each example of the next pass has (`None`: all of them), passed to every
    /// layer as its input's: a convolution's output has its own.
    pub fn set_lengths(&mut self, lengths: Option<&[u32]>, rows: usize) {
        let Some(lengths) = lengths else {
            self.kernels.iter_mut().for_each(|k| k.mask(None));
            return;
        };
        self.node_lengths[0].clear();
        self.node_lengths[0].extend_from_slice(&lengths[..rows]);
        for l in 0..self.kernels.len() {
            let n = self.inputs[l][0];
            let (before, after) = self.node_lengths.split_at_mut(l + 1);
            let (input, output) = (&before[n], &mut after[0]);
            output.clear();
            if output.capacity() > 0 {
                match self.spans[l] {
                    Some(s) => output.extend(input.iter().map(|&t| s.out_len(t as usize) as u32)),
                    None => output.extend_from_slice(input),
                }
            }
            self.kernels[l].mask((!input.is_empty()).then_some(&input[..]));
        }
    }

    /// The input rows (tests and gradient checks set inputs directly).
    pub fn input_mut(&mut self, rows: usize) -> &mut [F] {
        let width = self.node_widths[0];
        &mut self.acts[0][..rows * width]
    }

    /// The outputs of the last forward pass with a loss.
    pub fn output(&self, rows: usize) -> &[F] {
        &self.out[..rows * self.outputs()]
    }

    /// Adds the share in the scratch buffer (rows of node `n`'s width) to node `n`'s gradient.
    fn add_share(&mut self, n: usize, rows: usize) {
        let w = self.node_widths[n] * rows;
        let slot = &mut self.slots[self.slot_of[n]][..w];
        add::add_backward(&self.scratch[..w], slot, false, self.threads);
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
        let wout = self.node_widths[l + 1];
        let (before, after) = self.acts.split_at_mut(l + 1);
        let y = &mut after[0][..rows * wout];
        let inputs = &self.inputs[l];
        match self.merges[l] {
            Some(merge) => {
                // At most MAX_MERGE_INPUTS (the layout checked it): a fixed array, no allocation.
                let mut xs: [&[F]; MAX_MERGE_INPUTS] = [&[]; MAX_MERGE_INPUTS];
                let mut widths = [0usize; MAX_MERGE_INPUTS];
                for (k, &n) in inputs.iter().enumerate() {
                    widths[k] = self.node_widths[n];
                    xs[k] = &before[n][..rows * widths[k]];
                }
                let k = inputs.len();
                match merge {
                    Merge::Add => add::add_forward(&xs[..k], y, self.threads),
                    Merge::Concat => concat::concat_forward(&xs[..k], &widths[..k], y, rows),
                }
            }
            None => {
                let n = inputs[0];
                self.kernels[l].forward(
                    &before[n][..rows * self.node_widths[n]],
                    y,
                    &self.params[self.param_ranges[l].clone()],
                    &mut self.running[self.running_ranges[l].clone()],
                    rows,
                    train,
                );
            }
        }
    }

    fn loss(&mut self, rows: usize, targets: BatchTargets<'_>) -> f64 {
        let last = self.kernels.len() - 1;
        let n = rows * self.outputs();
        // A new backward pass: no node has its gradient yet but the output's.
        self.written.iter_mut().for_each(|w| *w = false);
        self.written[last + 1] = true;
        let slot = self.slot_of[last + 1];
        loss::output(
            self.loss,
            self.out_act,
            &self.acts[last + 1][..n],
            &mut self.out[..n],
            targets,
            &mut self.slots[slot][..n],
            self.out_per_step,
        )
        .f64()
    }

    /// `input_grad` false: the data's gradient is never needed, and a layer that reads only
    /// the data computes none; a graph decides per input node.
    fn backward(&mut self, l: usize, rows: usize, _input_grad: bool) {
        let wout = self.node_widths[l + 1];
        let dy_slot = self.slot_of[l + 1];
        let k = self.inputs[l].len();
        match self.merges[l] {
            Some(merge) => {
                let mut widths = [0usize; MAX_MERGE_INPUTS];
                for (j, &n) in self.inputs[l].iter().enumerate() {
                    widths[j] = self.node_widths[n];
                }
                for j in 0..k {
                    let n = self.inputs[l][j];
                    if n == 0 {
                        continue;
                    }
                    let first = !self.written[n];
                    self.written[n] = true;
                    let (dy, dx) = two_mut(&mut self.slots, dy_slot, self.slot_of[n]);
                    let dx = &mut dx[..rows * widths[j]];
                    match merge {
                        Merge::Add => add::add_backward(&dy[..rows * wout], dx, first, self.threads),
                        Merge::Concat => {
                            concat::concat_backward(&dy[..rows * wout], &widths[..k], j, dx, rows, first)
                        }
                    }
                }
            }
            None => {
                let n = self.inputs[l][0];
                let win = self.node_widths[n];
                let range = self.param_ranges[l].clone();
                let first = n > 0 && !self.written[n];
                if n > 0 {
                    self.written[n] = true;
                }
                let (x, y) = (&self.acts[n][..rows * win], &self.acts[l + 1][..rows * wout]);
                if n == 0 || first {
                    // The input's gradient goes straight into its buffer (or nowhere).
                    let (dy, dx) = if n == 0 {
                        (&mut self.slots[dy_slot], None)
                    } else {
                        let (dy, dx) = two_mut(&mut self.slots, dy_slot, self.slot_of[n]);
                        (dy, Some(&mut dx[..rows * win]))
                    };
                    self.kernels[l].backward(
                        x,
                        y,
                        &mut dy[..rows * wout],
                        dx,
                        &self.params[range.clone()],
                        &mut self.grads[range],
                        rows,
                    );
                } else {
                    // Another layer reading the same node gave its share already: add this one.
                    self.kernels[l].backward(
                        x,
                        y,
                        &mut self.slots[dy_slot][..rows * wout],
                        Some(&mut self.scratch[..rows * win]),
                        &self.params[range.clone()],
                        &mut self.grads[range],
                        rows,
                    );
                    self.add_share(n, rows);
                }
            }
        }
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
    /// The residual, allocated (zero) on the first sharing primitive that needs it.
    fn ensure_residual(&mut self) {
        if self.residual.len() != self.net.params.len() {
            self.residual = vec![0.0; self.net.params.len()];
        }
    }

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
        let buffers = n.acts.iter().map(Vec::len).sum::<usize>()
            + n.slots.iter().map(Vec::len).sum::<usize>()
            + n.scratch.len();
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
        self.net.set_lengths(batch.lengths, rows);
        let targets = batch.targets;
        self.run(|net| train_pass(net, rows, targets, Some(rng))) as f32
    }

    fn compute_update(&mut self, lr_scale: f32) {
        self.updater.apply(&self.net.params, &mut self.net.grads, lr_scale);
    }

    fn apply_update(&mut self) {
        self.net.params.iter_mut().zip(&self.net.grads).for_each(|(p, u)| *p -= u);
    }

    fn read_gradient(&mut self, out: &mut [f32]) {
        out.copy_from_slice(&self.net.grads);
    }

    fn write_gradient(&mut self, values: &[f32]) {
        self.net.grads.copy_from_slice(values);
    }

    fn residual_add(&mut self) {
        self.ensure_residual();
        sharing::add(&mut self.residual, &self.net.grads);
    }

    fn residual_select(
        &mut self,
        tau: f32,
        segments: &[Range<usize>],
        out: &mut Vec<u32>,
        norm2: &mut [f64],
    ) {
        self.ensure_residual();
        sharing::select(&self.residual, tau, segments, out, norm2);
    }

    fn residual_encode(
        &mut self,
        tau: f32,
        segments: &[Range<usize>],
        out: &mut Vec<u32>,
        norm2: &mut [f64],
    ) {
        self.ensure_residual();
        sharing::add_select(&mut self.residual, &self.net.grads, tau, segments, out, norm2);
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
        self.net.set_lengths(batch.lengths, rows);
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
