//! Dense networks over one flat parameter buffer: the architecture, where each layer's weights
//! and biases sit in the buffer, and the forward and backward passes (generic over f32/f64 so the
//! gradient check runs this exact code in f64).

use std::ops::Range;

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Zip, linalg::general_mat_mul, s};
use serde::{Deserialize, Serialize};

use super::{Activation, Init, Loss, Real};
use crate::data::{BatchInput, BatchTargets};
use crate::job::ModelSpec;
use crate::rng::Rng;

/// One dense layer of an architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseSpec {
    pub units: usize,
    pub activation: Activation,
    /// Dropout probability applied to this layer's input while training.
    #[serde(default)]
    pub input_dropout: f32,
}

/// What a model file stores about the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    pub inputs: usize,
    pub layers: Vec<DenseSpec>,
    pub loss: Loss,
    pub init: Init,
}

impl Architecture {
    /// The network a job describes, for `inputs` features and `outputs` classes or targets.
    pub fn from_job(model: &ModelSpec, inputs: usize, outputs: usize) -> Architecture {
        let mut layers = Vec::new();
        let mut next_dropout = 0.0;
        for h in model.hidden_layers() {
            layers.push(DenseSpec { units: h.units, activation: h.activation, input_dropout: next_dropout });
            next_dropout = h.dropout;
        }
        layers.push(DenseSpec {
            units: outputs,
            activation: model.output_activation(),
            input_dropout: next_dropout,
        });
        Architecture { inputs, layers, loss: model.loss, init: model.init }
    }

    pub fn layout(&self) -> Layout {
        let mut offset = 0;
        let mut inputs = self.inputs;
        let mut slots = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let weights = offset..offset + inputs * l.units;
            let bias = weights.end..weights.end + l.units;
            offset = bias.end;
            slots.push(LayerSlot {
                inputs,
                outputs: l.units,
                weights,
                bias,
                activation: l.activation,
                input_dropout: l.input_dropout,
            });
            inputs = l.units;
        }
        Layout { inputs: self.inputs, layers: slots, len: offset, loss: self.loss }
    }

    pub fn param_count(&self) -> usize {
        self.layout().len
    }

    pub fn outputs(&self) -> usize {
        self.layers.last().map(|l| l.units).unwrap_or(self.inputs)
    }

    /// "784-256-128-10 relu/softmax, 235146 parameters".
    pub fn describe(&self) -> String {
        let mut widths = vec![self.inputs.to_string()];
        widths.extend(self.layers.iter().map(|l| l.units.to_string()));
        let acts: Vec<&str> = self.layers.iter().map(|l| l.activation.name()).collect();
        let mut unique = acts.clone();
        unique.dedup();
        format!("{} {}, {} parameters", widths.join("-"), unique.join("/"), self.param_count())
    }
}

/// Where one layer lives in the flat buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSlot {
    pub inputs: usize,
    pub outputs: usize,
    /// Weights, `inputs x outputs`, row-major.
    pub weights: Range<usize>,
    pub bias: Range<usize>,
    pub activation: Activation,
    pub input_dropout: f32,
}

/// The flat buffer's map.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub inputs: usize,
    pub layers: Vec<LayerSlot>,
    /// Total parameter count.
    pub len: usize,
    pub loss: Loss,
}

impl Layout {
    pub fn outputs(&self) -> usize {
        self.layers.last().map(|l| l.outputs).unwrap_or(self.inputs)
    }

    /// The weight ranges (L2 applies to these, not to biases).
    pub fn weight_ranges(&self) -> Vec<Range<usize>> {
        self.layers.iter().map(|l| l.weights.clone()).collect()
    }
}

fn weights<'a, F>(slot: &LayerSlot, params: &'a [F]) -> ArrayView2<'a, F> {
    ArrayView2::from_shape((slot.inputs, slot.outputs), &params[slot.weights.clone()])
        .expect("layout ranges match layer shapes")
}

/// Activations and gradients for batches of up to `capacity` rows, allocated once.
pub struct Workspace<F> {
    capacity: usize,
    /// `acts[0]` is the input; `acts[l + 1]` the output of layer `l`.
    acts: Vec<Array2<F>>,
    /// Pre-activations of each layer.
    pre: Vec<Array2<F>>,
    /// Dropout masks (0 or 1/(1-p)) and masked inputs, for layers with input dropout.
    masks: Vec<Option<Array2<F>>>,
    dropped: Vec<Option<Array2<F>>>,
    grad_z: Vec<Array2<F>>,
    /// Gradient with respect to each layer's input (unused for layer 0).
    grad_in: Vec<Array2<F>>,
    /// Scratch of the output layer's shape, for losses that go through dL/da.
    scratch: Array2<F>,
}

impl<F: Real> Workspace<F> {
    pub fn new(layout: &Layout, capacity: usize) -> Self {
        let cap = capacity.max(1);
        let mut acts = vec![Array2::zeros((cap, layout.inputs))];
        let mut pre = Vec::new();
        let mut masks = Vec::new();
        let mut dropped = Vec::new();
        let mut grad_z = Vec::new();
        let mut grad_in = Vec::new();
        for l in &layout.layers {
            acts.push(Array2::zeros((cap, l.outputs)));
            pre.push(Array2::zeros((cap, l.outputs)));
            grad_z.push(Array2::zeros((cap, l.outputs)));
            grad_in.push(Array2::zeros((cap, l.inputs)));
            let has_dropout = l.input_dropout > 0.0;
            masks.push(has_dropout.then(|| Array2::zeros((cap, l.inputs))));
            dropped.push(has_dropout.then(|| Array2::zeros((cap, l.inputs))));
        }
        Workspace {
            capacity: cap,
            acts,
            pre,
            masks,
            dropped,
            grad_z,
            grad_in,
            scratch: Array2::zeros((cap, layout.outputs())),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Fills the input rows from a batch (u8 scaled here, as the batch enters the model).
    pub fn set_input(&mut self, input: BatchInput<'_>, rows: usize) {
        assert!(rows <= self.capacity, "batch of {rows} rows exceeds workspace capacity {}", self.capacity);
        let width = self.acts[0].ncols();
        let mut x = self.acts[0].slice_mut(s![..rows, ..]);
        for (r, mut row) in x.axis_iter_mut(Axis(0)).enumerate() {
            match input {
                BatchInput::U8 { data, scale } => {
                    let src = &data[r * width..(r + 1) * width];
                    Zip::from(&mut row).and(src).for_each(|o, &b| *o = F::of32(b as f32 * scale));
                }
                BatchInput::F32(v) => {
                    let src = &v[r * width..(r + 1) * width];
                    Zip::from(&mut row).and(src).for_each(|o, &b| *o = F::of32(b));
                }
            }
        }
    }

    /// Mutable access to the input rows (tests and gradient checks set inputs directly).
    pub fn input_mut(&mut self, rows: usize) -> ArrayViewMut2<'_, F> {
        self.acts[0].slice_mut(s![..rows, ..])
    }

    /// Draws new dropout masks for the next training pass.
    pub fn sample_dropout(&mut self, layout: &Layout, rows: usize, rng: &mut Rng) {
        for (l, slot) in layout.layers.iter().enumerate() {
            if let Some(mask) = self.masks[l].as_mut() {
                let p = slot.input_dropout as f64;
                let keep = F::of(1.0 / (1.0 - p));
                mask.slice_mut(s![..rows, ..])
                    .mapv_inplace(|_| if rng.next_f64() < p { F::zero() } else { keep });
            }
        }
    }

    /// The network's output for the last forward pass.
    pub fn output(&self, rows: usize) -> ArrayView2<'_, F> {
        self.acts[self.acts.len() - 1].slice(s![..rows, ..])
    }

    /// Forward pass over `rows` input rows. With `train`, dropout masks (drawn by
    /// [`Workspace::sample_dropout`]) are applied.
    pub fn forward(&mut self, layout: &Layout, params: &[F], rows: usize, train: bool) {
        for (l, slot) in layout.layers.iter().enumerate() {
            let w = weights(slot, params);
            let b = ArrayView1::from(&params[slot.bias.clone()]);
            let (before, after) = self.acts.split_at_mut(l + 1);
            let mut x = before[l].slice(s![..rows, ..]);
            if train && let (Some(mask), Some(dropped)) = (&self.masks[l], &mut self.dropped[l]) {
                let mut d = dropped.slice_mut(s![..rows, ..]);
                Zip::from(&mut d).and(&x).and(&mask.slice(s![..rows, ..])).for_each(|d, &x, &m| *d = x * m);
                x = dropped.slice(s![..rows, ..]);
            }
            let mut z = self.pre[l].slice_mut(s![..rows, ..]);
            for mut row in z.axis_iter_mut(Axis(0)) {
                row.assign(&b);
            }
            general_mat_mul(F::one(), &x, &w, F::one(), &mut z);
            slot.activation.forward(z.view(), after[0].slice_mut(s![..rows, ..]));
        }
    }

    /// The mean loss of the last forward pass (also leaves the output layer's gradient ready
    /// for [`Workspace::backward`]).
    pub fn output_loss(&mut self, layout: &Layout, rows: usize, targets: BatchTargets<'_>) -> F {
        let last = layout.layers.len() - 1;
        layout.loss.output_gradient(
            layout.layers[last].activation,
            self.pre[last].slice(s![..rows, ..]),
            self.acts[last + 1].slice(s![..rows, ..]),
            targets,
            self.grad_z[last].slice_mut(s![..rows, ..]),
            self.scratch.slice_mut(s![..rows, ..]),
        )
    }

    /// Backward pass after a training forward pass: writes the gradient of the mean loss into
    /// `grads` (same layout as `params`) and returns the mean loss.
    pub fn backward(
        &mut self,
        layout: &Layout,
        params: &[F],
        grads: &mut [F],
        rows: usize,
        targets: BatchTargets<'_>,
        train: bool,
    ) -> F {
        let last = layout.layers.len() - 1;
        let loss = self.output_loss(layout, rows, targets);
        for l in (0..=last).rev() {
            let slot = &layout.layers[l];
            let use_dropout = train && self.masks[l].is_some();
            let x = match (&self.dropped[l], use_dropout) {
                (Some(d), true) => d.slice(s![..rows, ..]),
                _ => self.acts[l].slice(s![..rows, ..]),
            };
            let gz = self.grad_z[l].slice(s![..rows, ..]);
            {
                let (gw, gb) = grads[slot.weights.start..slot.bias.end].split_at_mut(slot.weights.len());
                let mut gw = ArrayViewMut2::from_shape((slot.inputs, slot.outputs), gw)
                    .expect("layout ranges match layer shapes");
                general_mat_mul(F::one(), &x.t(), &gz, F::zero(), &mut gw);
                for (j, g) in gb.iter_mut().enumerate() {
                    *g = gz.column(j).sum();
                }
            }
            if l == 0 {
                break;
            }
            let w = weights(slot, params);
            let mut gin = self.grad_in[l].slice_mut(s![..rows, ..]);
            general_mat_mul(F::one(), &gz, &w.t(), F::zero(), &mut gin);
            if use_dropout && let Some(mask) = &self.masks[l] {
                Zip::from(&mut gin).and(&mask.slice(s![..rows, ..])).for_each(|g, &m| *g = *g * m);
            }
            let (gz_before, _) = self.grad_z.split_at_mut(l);
            layout.layers[l - 1].activation.backward(
                self.pre[l - 1].slice(s![..rows, ..]),
                self.acts[l].slice(s![..rows, ..]),
                self.grad_in[l].slice(s![..rows, ..]),
                gz_before[l - 1].slice_mut(s![..rows, ..]),
            );
        }
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{LayerSpec, ModelSpec};

    /// Builds a small f64 network with the given hidden activation, output activation and loss.
    fn tiny(hidden: Activation, loss: Loss, output: Activation, dropout: f32) -> (Layout, Vec<f64>) {
        let arch = Architecture {
            inputs: 5,
            layers: vec![
                DenseSpec { units: 4, activation: hidden, input_dropout: 0.0 },
                DenseSpec { units: 3, activation: hidden, input_dropout: dropout },
                DenseSpec { units: 3, activation: output, input_dropout: 0.0 },
            ],
            loss,
            init: Init::Xavier,
        };
        let layout = arch.layout();
        let mut rng = Rng::new(11);
        let params: Vec<f64> = (0..layout.len).map(|_| rng.normal() * 0.7).collect();
        (layout, params)
    }

    fn loss_at(
        layout: &Layout,
        ws: &mut Workspace<f64>,
        params: &[f64],
        rows: usize,
        t: BatchTargets,
    ) -> f64 {
        let mut g = vec![0.0; params.len()];
        ws.forward(layout, params, rows, true);
        ws.backward(layout, params, &mut g, rows, t, true)
    }

    /// Central finite differences in f64 against the analytic gradient.
    fn gradient_check(hidden: Activation, loss: Loss, output: Activation, dropout: f32) {
        let (layout, mut params) = tiny(hidden, loss, output, dropout);
        let rows = 4;
        let mut ws = Workspace::<f64>::new(&layout, rows);
        let mut rng = Rng::new(5);
        ws.input_mut(rows).mapv_inplace(|_| rng.normal());
        ws.sample_dropout(&layout, rows, &mut rng);
        let labels = [0u32, 2, 1, 2];
        let values = [0.5f32, -1.0, 0.25, 1.0, 0.0, -0.5, 0.3, 0.7, -0.2, 0.1, 0.9, -0.4];
        let targets = match loss {
            Loss::Xent => BatchTargets::Classes(&labels),
            Loss::Mse => BatchTargets::Values(&values),
        };
        let mut analytic = vec![0.0; params.len()];
        ws.forward(&layout, &params, rows, true);
        ws.backward(&layout, &params, &mut analytic, rows, targets, true);
        let h = 1e-6;
        for i in 0..params.len() {
            let orig = params[i];
            params[i] = orig + h;
            let up = loss_at(&layout, &mut ws, &params, rows, targets);
            params[i] = orig - h;
            let down = loss_at(&layout, &mut ws, &params, rows, targets);
            params[i] = orig;
            let numeric = (up - down) / (2.0 * h);
            let err = (numeric - analytic[i]).abs() / (1e-7 + numeric.abs().max(analytic[i].abs()));
            assert!(
                err < 1e-5 || (numeric - analytic[i]).abs() < 1e-9,
                "{hidden:?}/{output:?}/{loss:?} param {i}: analytic {} numeric {numeric} (rel err {err})",
                analytic[i]
            );
        }
    }

    #[test]
    fn gradient_check_every_hidden_activation_with_xent() {
        // ReLU and leaky ReLU have kinks at 0; random weights keep inputs away from them.
        for act in [
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Identity,
            Activation::Softmax,
        ] {
            gradient_check(act, Loss::Xent, Activation::Softmax, 0.0);
        }
    }

    #[test]
    fn gradient_check_mse_with_every_output_activation() {
        for out in [Activation::Identity, Activation::Sigmoid, Activation::Tanh, Activation::Softmax] {
            gradient_check(Activation::Tanh, Loss::Mse, out, 0.0);
        }
    }

    #[test]
    fn gradient_check_with_dropout_masks() {
        gradient_check(Activation::Tanh, Loss::Xent, Activation::Softmax, 0.4);
    }

    #[test]
    fn layout_is_one_contiguous_buffer() {
        let model = ModelSpec { hidden: vec![256, 128], ..ModelSpec::default() };
        let arch = Architecture::from_job(&model, 784, 10);
        let layout = arch.layout();
        assert_eq!(layout.len, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
        let mut end = 0;
        for l in &layout.layers {
            assert_eq!(l.weights.start, end);
            assert_eq!(l.bias.start, l.weights.end);
            end = l.bias.end;
        }
        assert_eq!(end, layout.len);
        assert_eq!(arch.describe(), "784-256-128-10 relu/softmax, 235146 parameters");
    }

    #[test]
    fn dropout_goes_on_the_next_layers_input() {
        let model = ModelSpec {
            layers: Some(vec![LayerSpec { units: 8, activation: Activation::Tanh, dropout: 0.3 }]),
            ..ModelSpec::default()
        };
        let arch = Architecture::from_job(&model, 4, 2);
        assert_eq!(arch.layers[0].input_dropout, 0.0);
        assert_eq!(arch.layers[1].input_dropout, 0.3);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_survive_large_logits() {
        let z = ndarray::arr2(&[[1000.0f32, 0.0, -1000.0], [1.0, 2.0, 3.0]]);
        let mut a = Array2::zeros((2, 3));
        Activation::Softmax.forward(z.view(), a.view_mut());
        for r in a.rows() {
            assert!((r.sum() - 1.0).abs() < 1e-6);
            assert!(r.iter().all(|v| v.is_finite()));
        }
        assert!((a[[0, 0]] - 1.0).abs() < 1e-6);
    }
}
