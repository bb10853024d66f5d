//! Weight initialisation.

use serde::{Deserialize, Serialize};

use super::Layout;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Normal with variance 2 / fan_in (He et al. 2015), for ReLU-family layers.
    He,
    /// Normal with variance 2 / (fan_in + fan_out) (Glorot and Bengio 2010).
    Xavier,
}

/// The initial parameters of a fresh model, from the job's seed.
pub fn initial_params(architecture: &super::Architecture, seed: u64) -> Vec<f32> {
    let layout = architecture.layout();
    let mut params = vec![0.0; layout.len];
    initialize(&layout, architecture.init, &mut Rng::derive(seed, 0x494E_4954), &mut params);
    params
}

/// Fills weights from the chosen distribution and zeroes biases.
pub fn initialize(layout: &Layout, init: Init, rng: &mut Rng, params: &mut [f32]) {
    for slot in &layout.layers {
        let var = match init {
            Init::He => 2.0 / slot.inputs as f64,
            Init::Xavier => 2.0 / (slot.inputs + slot.outputs) as f64,
        };
        let std = var.sqrt();
        for w in &mut params[slot.weights.clone()] {
            *w = (rng.normal() * std) as f32;
        }
        params[slot.bias.clone()].fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Architecture, DenseSpec, Loss};

    #[test]
    fn variances_follow_the_scheme() {
        let arch = Architecture {
            inputs: 400,
            layers: vec![DenseSpec { units: 200, activation: Activation::Relu, input_dropout: 0.0 }],
            loss: Loss::Mse,
            init: Init::He,
        };
        let layout = arch.layout();
        for (init, expected) in [(Init::He, 2.0 / 400.0), (Init::Xavier, 2.0 / 600.0)] {
            let mut p = vec![1.0f32; layout.len];
            initialize(&layout, init, &mut Rng::new(1), &mut p);
            let w = &p[layout.layers[0].weights.clone()];
            let var = w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64;
            assert!((var / expected - 1.0).abs() < 0.05, "{init:?}: {var} vs {expected}");
            assert!(p[layout.layers[0].bias.clone()].iter().all(|&b| b == 0.0));
        }
    }
}
