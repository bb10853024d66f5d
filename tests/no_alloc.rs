//! Strom's code allocates nothing per training step once its buffers exist: forward, backward,
//! updater, and the threshold-sharing step, for the MLP and a CNN with every layer type, on one
//! thread. The one allocation left is the `gemm` crate's own: it allocates its packing buffers
//! inside some products; those are counted apart (and reported) rather than hidden. (A worker's
//! pool of several threads also allocates in rayon's scheduler, outside our code.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use strom::backend::{Backend, CpuBackend};
use strom::data::{Batch, BatchInput, BatchTargets};
use strom::job::{JobSpec, LayerEntry, LayerSpec, ModelPreset, ModelSpec, SharingMode};
use strom::nn::layers::{
    AvgPool2d, BatchNorm, Conv1d, Dropout, Embedding, GlobalAvgPool, GlobalMaxPool, Gru, LayerNorm, Lstm,
    Padding, Pair, PositionalEmbedding, SelfAttention,
};
use strom::nn::{Activation, Architecture, Shape, initial_state};
use strom::rng::Rng;
use strom::sharing::{Collective, Link, Scheme, StepCtx, ThresholdSharing, TransportError};

/// A link that drops what is sent (the transport's own buffers are not the step's).
struct Nowhere;

impl Link for Nowhere {
    fn send(&mut self, _message: &[u8]) -> Result<(), TransportError> {
        Ok(())
    }
    fn all_reduce(&mut self, _values: &mut [f32], _c: Collective) -> Result<u32, TransportError> {
        Ok(1)
    }
}

struct Counting;
/// Allocations by Strom's code, and inside the `gemm` crate's products.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static IN_GEMM: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the measuring thread counts (the test harness allocates on its own threads).
    static MEASURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if !MEASURING.with(|m| m.get()) {
        return;
    }
    if strom::backend::gemm::in_product() {
        IN_GEMM.fetch_add(1, Ordering::Relaxed);
    } else {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn steps_allocate(model: ModelSpec) -> u64 {
    steps_allocate_on(model, Shape::image(1, 28, 28), 10)
}

/// Steps of a model on examples of `input` (images of random bytes, or random token ids with
/// a target at every step) with `outputs` classes.
fn steps_allocate_on(model: ModelSpec, input: Shape, outputs: usize) -> u64 {
    let mut job = JobSpec { model, ..JobSpec::default() };
    job.cluster.workers = 2;
    assert_eq!(job.sharing_mode(), SharingMode::Threshold);
    let arch = Architecture::from_job(&job.model, input, outputs).unwrap();
    let state = initial_state(&arch, 1);
    let mut backend = CpuBackend::new(&arch, &job.updater(), 1e-4, 32, &state, 1);
    let mut sharing = ThresholdSharing::new(&job, arch.layout());
    let mut rng = Rng::new(1);
    let (values, scale) = match input {
        Shape::Tokens { vocab, .. } => (vocab as u64, 1.0),
        _ => (256, 1.0 / 255.0),
    };
    let images: Vec<u8> = (0..32 * input.size()).map(|_| rng.below(values) as u8).collect();
    let labels: Vec<u32> = (0..32 * input.steps()).map(|_| rng.below(outputs as u64) as u32).collect();
    // Sequences of features: of several lengths (masks through every layer).
    let lengths: Vec<u32> = (0..32).map(|r| 1 + (r % input.steps() as u32)).collect();
    let batch = Batch {
        rows: 32,
        input: BatchInput::U8 { data: &images, scale },
        targets: BatchTargets::Classes(&labels),
        lengths: matches!(input, Shape::Sequence { .. }).then_some(&lengths[..]),
    };
    let mut step = |n: u64, backend: &mut CpuBackend| {
        backend.forward_backward(&batch, &mut rng);
        // A decaying learning rate: the residual and tau follow it in place. The scheme's step
        // runs the updater, follows the rate, encodes, sends and applies.
        let lr_scale = 1.0 / (1.0 + n as f32 * 0.05);
        let ctx = StepCtx {
            backend,
            link: &mut Nowhere,
            origin: 0,
            step: n + 1,
            lr_scale,
            epochs_done: 0.0,
            idle: false,
        };
        sharing.step(ctx).expect("a link that cannot fail");
    };
    // Warm-up: the residual and the selection list reach their sizes.
    for n in 0..20 {
        step(n, &mut backend);
    }
    let (before, gemm_before) = (ALLOCATIONS.load(Ordering::Relaxed), IN_GEMM.load(Ordering::Relaxed));
    MEASURING.with(|m| m.set(true));
    for n in 20..40 {
        step(n, &mut backend);
    }
    MEASURING.with(|m| m.set(false));
    let gemm = IN_GEMM.load(Ordering::Relaxed) - gemm_before;
    eprintln!("{}: the gemm crate allocated {} packing buffers per step", arch.describe(), gemm / 20);
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn a_training_step_allocates_nothing() {
    assert_eq!(steps_allocate(ModelSpec::default()), 0, "the MLP step allocated");
    let every_layer = ModelSpec {
        layers: Some(
            [
                LayerSpec::conv(4, 3, Padding::Same, Activation::Identity),
                LayerSpec::BatchNorm(BatchNorm { activation: Activation::Relu, ..BatchNorm::default() }),
                LayerSpec::max_pool(2),
                LayerSpec::AvgPool2d(AvgPool2d { kernel: Pair(2, 2), stride: None, padding: Padding::Valid }),
                LayerSpec::conv(8, 1, Padding::Valid, Activation::Tanh),
                LayerSpec::GlobalAvgPool(GlobalAvgPool {}),
                LayerSpec::dense(16, Activation::Relu),
                LayerSpec::Dropout(Dropout { rate: 0.2 }),
            ]
            .into_iter()
            .map(LayerEntry::Layer)
            .collect(),
        ),
        ..ModelSpec::default()
    };
    assert_eq!(steps_allocate(every_layer), 0, "a CNN step allocated");
    assert_eq!(steps_allocate(ModelSpec { preset: ModelPreset::Cnn, ..ModelSpec::default() }), 0);
    // A graph: residual blocks (add), a projection shortcut, an output feeding two layers.
    let residual = ModelSpec {
        layers: Some(
            strom::job::resnet(&[4, 8], 1, Activation::Relu)
                .into_iter()
                .map(|e| LayerEntry::Node { layer: e.layer, name: e.name, inputs: e.inputs })
                .collect(),
        ),
        ..ModelSpec::default()
    };
    assert_eq!(steps_allocate(residual), 0, "a residual network's step allocated");
    // A sequence model: embeddings, layer norm, attention, recurrent layers, dense per step.
    let sequence = ModelSpec {
        layers: Some(
            [
                LayerSpec::Embedding(Embedding { dim: 8 }),
                LayerSpec::PositionalEmbedding(PositionalEmbedding {}),
                LayerSpec::LayerNorm(LayerNorm::default()),
                LayerSpec::SelfAttention(SelfAttention { heads: 2, causal: true, dropout: 0.1 }),
                LayerSpec::Lstm(Lstm { units: 8, return_sequences: true }),
                LayerSpec::Gru(Gru { units: 8, return_sequences: true }),
                LayerSpec::dense(8, Activation::Tanh),
            ]
            .into_iter()
            .map(LayerEntry::Layer)
            .collect(),
        ),
        ..ModelSpec::default()
    };
    let tokens = Shape::Tokens { steps: 16, vocab: 20 };
    assert_eq!(steps_allocate_on(sequence, tokens, 20), 0, "a sequence model's step allocated");
    // Classification of sequences of several lengths: 1-D convolutions, attention that looks
    // ahead, pooling over time, masked.
    let conv1d = |filters, dilation| {
        LayerSpec::Conv1d(Conv1d {
            filters,
            kernel: 3,
            stride: 1,
            dilation,
            padding: Padding::Same,
            activation: Activation::Relu,
        })
    };
    let classifier = ModelSpec {
        layers: Some(
            [
                conv1d(8, 1),
                LayerSpec::SelfAttention(SelfAttention { heads: 2, causal: false, dropout: 0.0 }),
                conv1d(8, 2),
                LayerSpec::GlobalMaxPool(GlobalMaxPool {}),
            ]
            .into_iter()
            .map(LayerEntry::Layer)
            .collect(),
        ),
        ..ModelSpec::default()
    };
    let series = Shape::Sequence { steps: 12, features: 3 };
    assert_eq!(steps_allocate_on(classifier, series, 4), 0, "a masked sequence classifier's step allocated");
}
