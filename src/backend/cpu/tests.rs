//! Every CPU kernel against central finite differences, in f64, through the very code that
//! trains (the generic pass over [`Net`]): over several shapes, strides and paddings, and a
//! property test over random convolution geometries.

use proptest::prelude::*;

use super::Net;
use crate::backend::{LayerOps, train_pass};
use crate::data::BatchTargets;
use crate::nn::layers::{
    ActivationLayer, AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, GlobalAvgPool, LayerSpec, MaxPool2d,
    Padding, Pair,
};
use crate::nn::{Activation, Architecture, Init, Loss, Real, Shape, initial_running};
use crate::rng::Rng;

fn net(arch: &Architecture, rows: usize, threads: usize, seed: u64) -> Net<f64> {
    let layout = arch.layout();
    let mut n = Net::<f64>::new(layout, rows, threads);
    let mut rng = Rng::new(seed);
    for t in layout.tensors() {
        for p in &mut n.params[t.range.clone()] {
            *p = rng.normal() * 0.5;
        }
        if t.role == crate::nn::layers::Role::Scale {
            n.params[t.range.clone()].iter_mut().for_each(|s| *s += 1.0);
        }
    }
    let mut running = vec![0.0f32; layout.running_len];
    initial_running(layout, &mut running);
    n.running.iter_mut().zip(&running).for_each(|(d, &s)| *d = s as f64);
    match arch.input() {
        // Token ids, some repeated so a table row sums several steps' gradients.
        Shape::Tokens { vocab, .. } => {
            n.input_mut(rows).iter_mut().for_each(|x| *x = rng.below(vocab as u64 - 1) as f64)
        }
        _ => n.input_mut(rows).iter_mut().for_each(|x| *x = rng.normal()),
    }
    n
}

struct Targets {
    labels: Vec<u32>,
    values: Vec<f32>,
}

impl Targets {
    fn new(rows: usize, outputs: usize, seed: u64) -> Targets {
        let mut rng = Rng::new(seed ^ 0xfeed);
        Targets {
            labels: (0..rows).map(|_| rng.below(outputs as u64) as u32).collect(),
            values: (0..rows * outputs).map(|_| rng.normal() as f32).collect(),
        }
    }
    fn get(&self, loss: Loss) -> BatchTargets<'_> {
        match loss {
            Loss::Xent => BatchTargets::Classes(&self.labels),
            Loss::Mse => BatchTargets::Values(&self.values),
        }
    }
}

/// Analytic gradient of the mean loss against central differences, for every parameter.
fn gradient_check(arch: &Architecture, rows: usize, threads: usize, seed: u64) -> Result<(), String> {
    gradient_check_masked(arch, rows, threads, seed, None)
}

/// The same, on sequences of the given lengths.
fn gradient_check_masked(
    arch: &Architecture,
    rows: usize,
    threads: usize,
    seed: u64,
    lengths: Option<&[u32]>,
) -> Result<(), String> {
    let mut n = net(arch, rows, threads, seed);
    n.set_lengths(lengths, rows);
    // A per-step output layer predicts at every step: one label (or `per_step` values) each.
    let out = arch.output();
    let t = Targets::new(rows * out.steps(), out.per_step(), seed);
    let targets = t.get(arch.loss());
    // Dropout masks are drawn once and reused by every pass below.
    n.resample(rows, &mut Rng::new(seed + 1));
    train_pass(&mut n, rows, targets, None);
    let analytic = n.grads.clone();
    let h = 1e-6;
    for (i, &a) in analytic.iter().enumerate() {
        let orig = n.params[i];
        n.params[i] = orig + h;
        let up = train_pass(&mut n, rows, targets, None);
        n.params[i] = orig - h;
        let down = train_pass(&mut n, rows, targets, None);
        n.params[i] = orig;
        let numeric = (up - down) / (2.0 * h);
        let err = (numeric - a).abs() / (1e-7 + numeric.abs().max(a.abs()));
        if !(err < 1e-5 || (numeric - a).abs() < 1e-8) {
            let layer = arch.layout().layers.iter().position(|l| l.params.contains(&i)).unwrap_or(0);
            return Err(format!(
                "{}: parameter {i} (layer {layer}: {}): analytic {a} numeric {numeric} (rel err {err})",
                arch.describe(),
                arch.layers()[layer].layer().describe()
            ));
        }
    }
    Ok(())
}

fn arch(input: Shape, mut layers: Vec<LayerSpec>, loss: Loss, outputs: usize) -> Architecture {
    let out = if loss == Loss::Xent { Activation::Softmax } else { Activation::Identity };
    layers.push(LayerSpec::dense(outputs, out));
    Architecture::new(input, layers, loss, Init::He).unwrap()
}

fn conv(
    filters: usize,
    k: (usize, usize),
    stride: (usize, usize),
    padding: Padding,
    act: Activation,
) -> LayerSpec {
    LayerSpec::Conv2d(Conv2d {
        filters,
        kernel: Pair(k.0, k.1),
        stride: Pair(stride.0, stride.1),
        padding,
        activation: act,
    })
}

#[test]
fn conv_relu_max_pool_dense_xent() {
    let a = arch(
        Shape::image(2, 6, 6),
        vec![conv(3, (3, 3), (1, 1), Padding::Same, Activation::Relu), LayerSpec::max_pool(2)],
        Loss::Xent,
        3,
    );
    gradient_check(&a, 3, 1, 1).unwrap();
}

#[test]
fn strided_valid_conv_then_padded_conv_avg_pool_and_global_pool() {
    let a = arch(
        Shape::image(1, 7, 7),
        vec![
            conv(2, (3, 3), (2, 2), Padding::Valid, Activation::Tanh),
            conv(3, (2, 2), (1, 1), Padding::Explicit(Pair(1, 1)), Activation::Sigmoid),
            LayerSpec::AvgPool2d(AvgPool2d {
                kernel: Pair(2, 2),
                stride: Some(Pair(1, 1)),
                padding: Padding::Same,
            }),
            LayerSpec::GlobalAvgPool(GlobalAvgPool {}),
        ],
        Loss::Xent,
        2,
    );
    gradient_check(&a, 2, 1, 2).unwrap();
}

#[test]
fn rectangular_kernels_strides_and_padding_with_batch_norm_flatten_and_dropout() {
    let a = arch(
        Shape::image(2, 5, 6),
        vec![
            conv(3, (3, 2), (2, 1), Padding::Explicit(Pair(1, 0)), Activation::Identity),
            LayerSpec::BatchNorm(BatchNorm { activation: Activation::Relu, ..BatchNorm::default() }),
            LayerSpec::MaxPool2d(MaxPool2d {
                kernel: Pair(2, 2),
                stride: Some(Pair(1, 2)),
                padding: Padding::Same,
            }),
            LayerSpec::Flatten(Flatten {}),
            LayerSpec::dense(5, Activation::LeakyRelu),
            LayerSpec::Dropout(Dropout { rate: 0.3 }),
        ],
        Loss::Xent,
        3,
    );
    gradient_check(&a, 4, 1, 3).unwrap();
}

#[test]
fn batch_norm_on_dense_features_with_mse() {
    let a = arch(
        Shape::Vector(5),
        vec![
            LayerSpec::dense(4, Activation::Identity),
            LayerSpec::BatchNorm(BatchNorm { activation: Activation::Tanh, ..BatchNorm::default() }),
            LayerSpec::Activation(ActivationLayer { activation: Activation::Sigmoid }),
        ],
        Loss::Mse,
        2,
    );
    gradient_check(&a, 5, 1, 4).unwrap();
}

#[test]
fn one_by_one_convolution_reads_its_input_directly() {
    let a = arch(
        Shape::image(3, 4, 4),
        vec![
            conv(4, (1, 1), (1, 1), Padding::Valid, Activation::LeakyRelu),
            conv(2, (1, 1), (1, 1), Padding::Valid, Activation::Tanh),
        ],
        Loss::Xent,
        2,
    );
    gradient_check(&a, 2, 1, 5).unwrap();
}

#[test]
fn every_hidden_activation_with_xent_and_every_output_with_mse() {
    for act in [
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Identity,
        Activation::Softmax,
    ] {
        let a =
            arch(Shape::Vector(5), vec![LayerSpec::dense(4, act), LayerSpec::dense(3, act)], Loss::Xent, 3);
        gradient_check(&a, 4, 1, 6).unwrap();
    }
    for out in [Activation::Identity, Activation::Sigmoid, Activation::Tanh, Activation::Softmax] {
        let layers = vec![LayerSpec::dense(4, Activation::Tanh), LayerSpec::dense(3, out)];
        let a = Architecture::new(Shape::Vector(5), layers, Loss::Mse, Init::He).unwrap();
        gradient_check(&a, 4, 1, 7).unwrap();
    }
}

#[test]
fn threads_split_the_batch_without_changing_the_gradient() {
    let a = arch(
        Shape::image(2, 6, 6),
        vec![
            conv(3, (3, 3), (1, 1), Padding::Same, Activation::Relu),
            conv(4, (3, 3), (2, 2), Padding::Same, Activation::Relu),
            LayerSpec::max_pool(2),
        ],
        Loss::Xent,
        3,
    );
    gradient_check(&a, 5, 3, 8).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let t = Targets::new(5, 3, 9);
    let one = {
        let mut n = net(&a, 5, 1, 9);
        train_pass(&mut n, 5, t.get(Loss::Xent), None);
        n.grads
    };
    let three = pool.install(|| {
        let mut n = net(&a, 5, 3, 9);
        train_pass(&mut n, 5, t.get(Loss::Xent), None);
        n.grads
    });
    for (x, y) in one.iter().zip(&three) {
        assert!((x - y).abs() <= 1e-12 * (1.0 + x.abs()), "{x} vs {y}");
    }
}

#[test]
fn batch_norm_evaluates_with_its_running_statistics() {
    let a = arch(
        Shape::Vector(3),
        vec![LayerSpec::BatchNorm(BatchNorm { decay: 0.0, ..BatchNorm::default() })],
        Loss::Mse,
        2,
    );
    let mut n = net(&a, 4, 1, 10);
    let input: Vec<f64> = n.input_mut(4).to_vec();
    let t = Targets::new(4, 2, 10);
    train_pass(&mut n, 4, t.get(Loss::Mse), None);
    // decay 0: the running statistics are the last batch's (variance unbiased).
    for f in 0..3 {
        let col: Vec<f64> = (0..4).map(|r| input[r * 3 + f]).collect();
        let mean = col.iter().sum::<f64>() / 4.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0;
        assert!((n.running[f] - mean).abs() < 1e-12, "mean {f}");
        assert!((n.running[3 + f] - var).abs() < 1e-12, "var {f}");
    }
    // Evaluation normalises with them: the layer's output is scale * (x - mean) / sqrt(var + eps) + shift.
    crate::backend::eval_pass(&mut n, 4, t.get(Loss::Mse));
    let bn = &n.acts[1];
    let (scale, shift) = (n.params[0], n.params[3]);
    let expect = scale * (input[0] - n.running[0]) / (n.running[3] + 1e-5f32 as f64).sqrt() + shift;
    assert!((bn[0] - expect).abs() < 1e-9, "{} vs {expect}", bn[0]);
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        Just(Padding::Same),
        Just(Padding::Valid),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Padding::Explicit(Pair(a, b)))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_conv_geometries_have_correct_gradients(
        c in 1usize..3, h in 3usize..8, w in 3usize..8, f in 1usize..4,
        kh in 1usize..4, kw in 1usize..4, sh in 1usize..3, sw in 1usize..3,
        pad in padding(), rows in 1usize..4, seed in 0u64..1000, pool in any::<bool>(),
    ) {
        let pad = match pad {
            Padding::Explicit(Pair(a, b)) => Padding::Explicit(Pair(a.min(kh - 1), b.min(kw - 1))),
            p => p,
        };
        let mut layers = vec![
            // A first convolution so the one under test also passes its input gradient back.
            conv(2, (1, 1), (1, 1), Padding::Valid, Activation::Tanh),
            conv(f, (kh, kw), (sh, sw), pad, Activation::Tanh),
        ];
        if pool {
            layers.push(LayerSpec::AvgPool2d(AvgPool2d { kernel: Pair(2, 2), stride: Some(Pair(1, 1)), padding: Padding::Same }));
        }
        let Ok(a) = Architecture::new(
            Shape::image(c, h, w),
            [layers, vec![LayerSpec::dense(2, Activation::Softmax)]].concat(),
            Loss::Xent,
            Init::He,
        ) else {
            return Ok(()); // a window larger than the padded input: refused, as it should be
        };
        prop_assert!(gradient_check(&a, rows, 1, seed).is_ok(), "{:?}", gradient_check(&a, rows, 1, seed));
    }
}

/// The f32 path the workers train with agrees with the f64 path of the checks.
#[test]
fn f32_and_f64_agree() {
    let a = arch(
        Shape::image(1, 6, 6),
        vec![conv(2, (3, 3), (1, 1), Padding::Same, Activation::Relu)],
        Loss::Xent,
        2,
    );
    let mut n64 = net(&a, 3, 1, 11);
    let mut n32 = Net::<f32>::new(a.layout(), 3, 1);
    n32.params.iter_mut().zip(&n64.params).for_each(|(d, &s)| *d = s as f32);
    let input: Vec<f32> = n64.input_mut(3).iter().map(|&x| x as f32).collect();
    n32.input_mut(3).copy_from_slice(&input);
    let t = Targets::new(3, 2, 11);
    let l64 = train_pass(&mut n64, 3, t.get(Loss::Xent), None);
    let l32 = train_pass(&mut n32, 3, t.get(Loss::Xent), None);
    assert!((l64 - l32).abs() < 1e-5, "{l64} {l32}");
    for (x, y) in n64.grads.iter().zip(&n32.grads) {
        assert!((x - y.f64()).abs() < 1e-4 * (1.0 + x.abs()));
    }
}

fn node(layer: LayerSpec, name: &str, inputs: &[&str]) -> crate::nn::GraphEntry {
    crate::nn::GraphEntry {
        layer,
        name: (!name.is_empty()).then(|| name.to_string()),
        inputs: (!inputs.is_empty()).then(|| inputs.iter().map(|s| s.to_string()).collect()),
    }
}

fn graph(input: Shape, mut entries: Vec<crate::nn::GraphEntry>, loss: Loss, outputs: usize) -> Architecture {
    let out = if loss == Loss::Xent { Activation::Softmax } else { Activation::Identity };
    entries.push(node(LayerSpec::dense(outputs, out), "", &[]));
    Architecture::graph(input, entries, loss, Init::He).unwrap()
}

#[test]
fn a_residual_add_and_a_concat_with_an_output_feeding_three_layers() {
    use crate::nn::layers::{Add, Concat};
    // `a` feeds `b`, the add and the concat: its gradient is the sum of three shares.
    let g = graph(
        Shape::Vector(5),
        vec![
            node(LayerSpec::dense(4, Activation::Tanh), "a", &[]),
            node(LayerSpec::dense(4, Activation::Tanh), "b", &["a"]),
            node(LayerSpec::Add(Add {}), "sum", &["a", "b"]),
            node(LayerSpec::dense(3, Activation::Sigmoid), "side", &["input"]),
            node(LayerSpec::Concat(Concat {}), "joined", &["sum", "side", "a"]),
        ],
        Loss::Xent,
        3,
    );
    assert!(g.is_graph());
    gradient_check(&g, 3, 1, 7).unwrap();
    gradient_check(&g, 2, 2, 8).unwrap();
}

#[test]
fn image_branches_add_and_concat_along_channels() {
    use crate::nn::layers::{Add, Concat};
    let g = graph(
        Shape::image(2, 5, 5),
        vec![
            node(conv(3, (3, 3), (1, 1), Padding::Same, Activation::Relu), "stem", &[]),
            node(conv(3, (3, 3), (1, 1), Padding::Same, Activation::Tanh), "branch", &[]),
            node(LayerSpec::BatchNorm(BatchNorm::default()), "bn", &[]),
            node(LayerSpec::Add(Add {}), "res", &["stem", "bn"]),
            node(conv(2, (1, 1), (1, 1), Padding::Same, Activation::Identity), "proj", &["input"]),
            node(LayerSpec::Concat(Concat {}), "cat", &["res", "proj"]),
            node(LayerSpec::GlobalAvgPool(GlobalAvgPool {}), "", &[]),
        ],
        Loss::Xent,
        3,
    );
    assert_eq!(g.layout().layers[5].output, Shape::image(5, 5, 5));
    gradient_check(&g, 2, 1, 3).unwrap();
}

#[test]
fn a_chain_keeps_two_gradient_buffers_and_a_graph_only_what_overlaps() {
    let (slots, n) = super::plan_slots(&[vec![0], vec![1], vec![2], vec![3]]);
    assert_eq!(n, 2, "{slots:?}");
    // a = L0(x); b = L1(a); s = add(a, b); out = L3(s): a's gradient lives from the add to L0.
    let (slots, n) = super::plan_slots(&[vec![0], vec![1], vec![1, 2], vec![3]]);
    assert_eq!(n, 3, "{slots:?}");
    assert_ne!(slots[1], slots[2]);
}

#[test]
fn embedding_then_dense_per_step_with_a_next_token_loss() {
    use crate::nn::layers::Embedding;
    let input = Shape::Tokens { steps: 4, vocab: 6 };
    let a = arch(
        input,
        vec![LayerSpec::Embedding(Embedding { dim: 3 }), LayerSpec::dense(5, Activation::Tanh)],
        Loss::Xent,
        6,
    );
    assert_eq!(a.output(), Shape::Sequence { steps: 4, features: 6 });
    gradient_check(&a, 3, 1, 4).unwrap();
    // The last id is never drawn: its row of the table gets no gradient at all.
    let mut n = net(&a, 3, 1, 4);
    let t = Targets::new(12, 6, 4);
    train_pass(&mut n, 3, t.get(Loss::Xent), None);
    let table = &a.layout().tensors().next().unwrap().range;
    let unseen = &n.grads[table.start + 5 * 3..table.end];
    assert!(unseen.iter().all(|&g| g == 0.0), "{unseen:?}");
    assert!(n.grads[table.clone()].iter().any(|&g| g != 0.0));
}

#[test]
fn a_residual_over_a_sequence_with_a_per_step_regression() {
    use crate::nn::layers::{Add, Embedding};
    let g = graph(
        Shape::Tokens { steps: 3, vocab: 4 },
        vec![
            node(LayerSpec::Embedding(Embedding { dim: 4 }), "emb", &[]),
            node(LayerSpec::dense(4, Activation::Tanh), "mlp", &[]),
            node(LayerSpec::Add(Add {}), "res", &["emb", "mlp"]),
        ],
        Loss::Mse,
        2,
    );
    assert_eq!(g.output(), Shape::Sequence { steps: 3, features: 2 });
    gradient_check(&g, 2, 2, 5).unwrap();
}

#[test]
fn lstm_over_embedded_tokens_returning_every_step_and_over_features_returning_the_last() {
    use crate::nn::layers::{Embedding, Lstm};
    let lstm = |units, return_sequences| LayerSpec::Lstm(Lstm { units, return_sequences });
    let a = arch(
        Shape::Tokens { steps: 4, vocab: 5 },
        vec![LayerSpec::Embedding(Embedding { dim: 3 }), lstm(3, true), lstm(2, true)],
        Loss::Xent,
        5,
    );
    assert_eq!(a.output(), Shape::Sequence { steps: 4, features: 5 });
    gradient_check(&a, 3, 1, 6).unwrap();
    let b = arch(Shape::Sequence { steps: 5, features: 2 }, vec![lstm(4, false)], Loss::Mse, 2);
    assert_eq!(b.output(), Shape::Vector(2));
    gradient_check(&b, 2, 2, 7).unwrap();
}

#[test]
fn lstm_forget_gate_bias_starts_at_one() {
    use crate::nn::layers::Lstm;
    let a = arch(
        Shape::Sequence { steps: 2, features: 3 },
        vec![LayerSpec::Lstm(Lstm { units: 2, return_sequences: false })],
        Loss::Mse,
        1,
    );
    let state = crate::nn::initial_state(&a, 1);
    let bias = a.layout().tensors().find(|t| t.name.ends_with("lstm.bias")).unwrap();
    assert_eq!(&state[bias.range.clone()], &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn gru_over_embedded_tokens_and_over_features_returning_the_last() {
    use crate::nn::layers::{Embedding, Gru};
    let gru = |units, return_sequences| LayerSpec::Gru(Gru { units, return_sequences });
    let a = arch(
        Shape::Tokens { steps: 4, vocab: 5 },
        vec![LayerSpec::Embedding(Embedding { dim: 3 }), gru(3, true), gru(2, true)],
        Loss::Xent,
        5,
    );
    gradient_check(&a, 3, 1, 8).unwrap();
    let b = arch(Shape::Sequence { steps: 5, features: 2 }, vec![gru(4, false)], Loss::Mse, 2);
    assert_eq!(b.output(), Shape::Vector(2));
    gradient_check(&b, 2, 2, 9).unwrap();
}

#[test]
fn layer_norm_and_positional_embedding_in_a_pre_norm_residual_block() {
    use crate::nn::layers::{Add, Embedding, LayerNorm, PositionalEmbedding};
    let g = graph(
        Shape::Tokens { steps: 3, vocab: 6 },
        vec![
            node(LayerSpec::Embedding(Embedding { dim: 4 }), "emb", &[]),
            node(LayerSpec::PositionalEmbedding(PositionalEmbedding {}), "pos", &[]),
            node(LayerSpec::LayerNorm(LayerNorm::default()), "ln", &[]),
            node(LayerSpec::dense(4, Activation::Tanh), "mlp", &[]),
            node(LayerSpec::Add(Add {}), "res", &["pos", "mlp"]),
            node(LayerSpec::LayerNorm(LayerNorm::default()), "", &[]),
        ],
        Loss::Xent,
        6,
    );
    gradient_check(&g, 3, 1, 10).unwrap();
    // On vectors too.
    let v = arch(
        Shape::Vector(5),
        vec![LayerSpec::dense(4, Activation::Tanh), LayerSpec::LayerNorm(LayerNorm::default())],
        Loss::Mse,
        2,
    );
    gradient_check(&v, 3, 2, 11).unwrap();
}

#[test]
fn self_attention_causal_and_not_in_a_transformer_block() {
    use crate::nn::layers::{Add, Embedding, LayerNorm, PositionalEmbedding, SelfAttention};
    for causal in [true, false] {
        let g = graph(
            Shape::Tokens { steps: 4, vocab: 5 },
            vec![
                node(LayerSpec::Embedding(Embedding { dim: 4 }), "emb", &[]),
                node(LayerSpec::PositionalEmbedding(PositionalEmbedding {}), "pos", &[]),
                node(LayerSpec::LayerNorm(LayerNorm::default()), "ln", &[]),
                node(
                    LayerSpec::SelfAttention(SelfAttention {
                        heads: 2,
                        causal,
                        dropout: if causal { 0.3 } else { 0.0 },
                    }),
                    "att",
                    &[],
                ),
                node(LayerSpec::Add(Add {}), "res", &["pos", "att"]),
            ],
            Loss::Xent,
            5,
        );
        gradient_check(&g, 2, 1, 12).unwrap();
    }
}

#[test]
fn causal_attention_reads_no_later_step() {
    use crate::backend::eval_pass;
    use crate::nn::layers::{Embedding, SelfAttention};
    let a = arch(
        Shape::Tokens { steps: 5, vocab: 7 },
        vec![
            LayerSpec::Embedding(Embedding { dim: 4 }),
            LayerSpec::SelfAttention(SelfAttention { heads: 2, causal: true, dropout: 0.0 }),
        ],
        Loss::Xent,
        7,
    );
    let mut n = net(&a, 1, 1, 13);
    let labels = [0u32; 5];
    let mut predict = |ids: [f64; 5]| {
        n.input_mut(1).copy_from_slice(&ids);
        eval_pass(&mut n, 1, BatchTargets::Classes(&labels));
        n.output(1).to_vec()
    };
    let (before, after) = (predict([1.0, 2.0, 3.0, 4.0, 5.0]), predict([1.0, 2.0, 3.0, 4.0, 6.0]));
    assert_eq!(before[..4 * 7], after[..4 * 7], "steps 0-3 do not see step 4");
    assert_ne!(before[4 * 7..], after[4 * 7..], "step 4 sees itself");
}

fn conv1d(filters: usize, kernel: usize, stride: usize, dilation: usize, padding: Padding) -> LayerSpec {
    LayerSpec::Conv1d(crate::nn::layers::Conv1d {
        filters,
        kernel,
        stride,
        dilation,
        padding,
        activation: Activation::Tanh,
    })
}

#[test]
fn conv1d_geometries_and_pooling_over_time_with_and_without_masks() {
    use crate::nn::layers::{GlobalMaxPool, LastStep};
    let seq = Shape::Sequence { steps: 7, features: 3 };
    let pools = [
        LayerSpec::GlobalAvgPool(GlobalAvgPool {}),
        LayerSpec::GlobalMaxPool(GlobalMaxPool {}),
        LayerSpec::LastStep(LastStep {}),
    ];
    let convs = [
        conv1d(4, 3, 1, 1, Padding::Same),
        conv1d(2, 2, 2, 1, Padding::Valid),
        conv1d(3, 3, 1, 2, Padding::Valid),
        conv1d(2, 4, 2, 1, Padding::Same),
        conv1d(2, 2, 1, 1, Padding::Explicit(Pair(1, 1))),
    ];
    for (i, c) in convs.iter().enumerate() {
        let pool = pools[i % 3].clone();
        let a = arch(seq, vec![c.clone(), conv1d(3, 3, 1, 1, Padding::Same), pool], Loss::Xent, 3);
        gradient_check(&a, 3, 1, 20 + i as u64).unwrap();
        gradient_check_masked(&a, 3, 1, 30 + i as u64, Some(&[7, 4, 2])).unwrap();
    }
}

/// A padded sequence of `len` steps (garbage past its end) computes what the sequence alone
/// does: outputs, loss and every parameter's gradient.
#[test]
fn masked_padding_is_exactly_the_shorter_sequence() {
    use crate::backend::eval_pass;
    use crate::nn::layers::{GlobalMaxPool, LastStep, Lstm, SelfAttention};
    let layers = |pool: LayerSpec| {
        vec![
            conv1d(4, 3, 1, 1, Padding::Same),
            LayerSpec::SelfAttention(SelfAttention { heads: 2, causal: false, dropout: 0.0 }),
            LayerSpec::Lstm(Lstm { units: 3, return_sequences: true }),
            conv1d(4, 2, 1, 2, Padding::Same),
            pool,
        ]
    };
    for pool in [
        LayerSpec::GlobalAvgPool(GlobalAvgPool {}),
        LayerSpec::GlobalMaxPool(GlobalMaxPool {}),
        LayerSpec::LastStep(LastStep {}),
        LayerSpec::Lstm(Lstm { units: 2, return_sequences: false }),
    ] {
        let long = arch(Shape::Sequence { steps: 7, features: 2 }, layers(pool.clone()), Loss::Xent, 3);
        let short = arch(Shape::Sequence { steps: 4, features: 2 }, layers(pool), Loss::Xent, 3);
        assert_eq!(long.layout().len, short.layout().len, "no parameter depends on the steps");
        let (mut a, mut b) = (net(&long, 1, 1, 40), net(&short, 1, 1, 41));
        b.params.copy_from_slice(&a.params);
        let head: Vec<f64> = a.input_mut(1)[..8].to_vec();
        b.input_mut(1).copy_from_slice(&head);
        a.set_lengths(Some(&[4]), 1);
        let labels = [2u32];
        let la = train_pass(&mut a, 1, BatchTargets::Classes(&labels), None);
        let lb = train_pass(&mut b, 1, BatchTargets::Classes(&labels), None);
        assert!((la - lb).abs() < 1e-12, "{la} vs {lb}");
        for (i, (ga, gb)) in a.grads.iter().zip(&b.grads).enumerate() {
            assert!((ga - gb).abs() < 1e-10, "parameter {i}: {ga} vs {gb}");
        }
        eval_pass(&mut a, 1, BatchTargets::Classes(&labels));
        eval_pass(&mut b, 1, BatchTargets::Classes(&labels));
        assert_eq!(a.output(1).len(), b.output(1).len());
        a.output(1).iter().zip(b.output(1)).for_each(|(x, y)| assert!((x - y).abs() < 1e-12));
        // And the padding is read by nothing: other garbage there changes nothing.
        a.input_mut(1)[8..].iter_mut().for_each(|v| *v = 100.0);
        eval_pass(&mut a, 1, BatchTargets::Classes(&labels));
        a.output(1).iter().zip(b.output(1)).for_each(|(x, y)| assert!((x - y).abs() < 1e-12));
    }
}

#[test]
fn steps_without_a_label_count_for_nothing() {
    use crate::data::NO_TARGET;
    use crate::nn::layers::Lstm;
    let a = arch(
        Shape::Sequence { steps: 4, features: 2 },
        vec![LayerSpec::Lstm(Lstm { units: 3, return_sequences: true })],
        Loss::Xent,
        3,
    );
    let mut n = net(&a, 2, 1, 50);
    let some = [0, NO_TARGET, 2, 1, NO_TARGET, NO_TARGET, 1, 0];
    let loss = train_pass(&mut n, 2, BatchTargets::Classes(&some), None);
    assert!(loss.is_finite() && loss > 0.0);
    let grads = n.grads.clone();
    // Another label at an unlabelled step would change the loss; NO_TARGET steps are skipped
    // and the mean is over the five labelled ones.
    let mut m = net(&a, 2, 1, 50);
    let per_step: f64 = [(0, 0u32), (2, 2), (3, 1), (6, 1), (7, 0)]
        .iter()
        .map(|&(at, y)| {
            let mut one = [NO_TARGET; 8];
            one[at] = y;
            train_pass(&mut m, 2, BatchTargets::Classes(&one), None)
        })
        .sum();
    assert!((per_step / 5.0 - loss).abs() < 1e-12, "{per_step} / 5 vs {loss}");
    assert!(grads.iter().any(|&g| g != 0.0));
}
