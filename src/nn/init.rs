//! Initial parameters and running state. Weights follow the job's scheme with the fans their
//! layer declares; biases and shifts start at zero, batch-norm scales at one.

use serde::{Deserialize, Serialize};

use super::layers::Role;
use super::{Architecture, Layout};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Normal with variance 2 / fan_in (He et al. 2015), for ReLU-family layers.
    He,
    /// Normal with variance 2 / (fan_in + fan_out) (Glorot and Bengio 2010).
    Xavier,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::He => "he",
            Init::Xavier => "xavier",
        }
    }
}

/// The state of a fresh model from the job's seed: parameters, then running state.
pub fn initial_state(architecture: &Architecture, seed: u64) -> Vec<f32> {
    let layout = architecture.layout();
    let mut state = vec![0.0; layout.state_len()];
    let (params, running) = state.split_at_mut(layout.len);
    initialize(layout, architecture.init(), &mut Rng::derive(seed, 0x494E_4954), params);
    initial_running(layout, running);
    state
}

/// Fills the parameters by role.
pub fn initialize(layout: &Layout, init: Init, rng: &mut Rng, params: &mut [f32]) {
    for t in layout.tensors() {
        let p = &mut params[t.range.clone()];
        match t.role {
            Role::Weight | Role::Table => {
                let var = match init {
                    Init::He => 2.0 / t.fan_in.max(1) as f64,
                    Init::Xavier => 2.0 / (t.fan_in + t.fan_out).max(1) as f64,
                };
                let std = var.sqrt();
                p.iter_mut().for_each(|w| *w = (rng.normal() * std) as f32);
            }
            Role::Bias | Role::Shift => p.fill(0.0),
            Role::Scale => p.fill(1.0),
            Role::GateBias => {
                let h = p.len() / 4;
                p.fill(0.0);
                p[h..2 * h].fill(1.0);
            }
        }
    }
}

/// Running statistics at their starting values (batch-norm: mean 0, variance 1).
pub fn initial_running(layout: &Layout, running: &mut [f32]) {
    for r in layout.running_tensors() {
        running[r.range.clone()].fill(r.init);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::LayerSpec;
    use crate::nn::{Activation, Loss, Shape};

    #[test]
    fn variances_follow_the_scheme() {
        for (init, expected) in [(Init::He, 2.0 / 400.0), (Init::Xavier, 2.0 / 600.0)] {
            let arch = Architecture::new(
                Shape::Vector(400),
                vec![LayerSpec::dense(200, Activation::Identity)],
                Loss::Mse,
                init,
            )
            .unwrap();
            let layout = arch.layout();
            let mut p = vec![1.0f32; layout.len];
            initialize(layout, init, &mut Rng::new(1), &mut p);
            let w = &p[layout.weight_ranges()[0].clone()];
            let var = w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64;
            assert!((var / expected - 1.0).abs() < 0.05, "{init:?}: {var} vs {expected}");
            assert!(p[w.len()..].iter().all(|&b| b == 0.0));
        }
    }

    #[test]
    fn conv_fans_and_batch_norm_start_values() {
        let arch = Architecture::new(
            Shape::image(8, 6, 6),
            vec![
                LayerSpec::conv(50, 3, Default::default(), Activation::Identity),
                LayerSpec::BatchNorm(Default::default()),
                LayerSpec::dense(2, Activation::Softmax),
            ],
            Loss::Xent,
            Init::He,
        )
        .unwrap();
        let state = initial_state(&arch, 3);
        let l = arch.layout();
        let conv_w = &state[l.layers[0].tensors[0].range.clone()];
        let var = conv_w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / conv_w.len() as f64;
        assert!((var / (2.0 / 72.0) - 1.0).abs() < 0.1, "fan_in is channels x kernel area: {var}");
        let scale = &state[l.layers[1].tensors[0].range.clone()];
        assert!(scale.iter().all(|&s| s == 1.0));
        let running = &state[l.len..];
        assert_eq!(running.len(), 100);
        assert!(running[..50].iter().all(|&m| m == 0.0) && running[50..].iter().all(|&v| v == 1.0));
    }
}
