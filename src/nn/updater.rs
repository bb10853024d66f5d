//! Updaters: turn the gradient into the update that is subtracted from the parameters
//! (`params -= update`), learning rate and L2 applied. The update is what gradient sharing encodes.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::job::{UpdaterKind, UpdaterSpec};

/// An updater's state, saved with the model so `--resume` continues exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpdaterState {
    pub kind: UpdaterKind,
    pub step: u64,
    /// Momentum / first moment / squared-gradient average, by updater.
    pub first: Vec<f32>,
    /// Adam's second moment.
    pub second: Vec<f32>,
}

/// Per-replica updater with state buffers allocated once.
pub struct Updater {
    kind: UpdaterKind,
    lr: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    rho: f32,
    eps: f32,
    l2: f32,
    weight_ranges: Vec<Range<usize>>,
    step: u64,
    first: Vec<f32>,
    second: Vec<f32>,
}

impl Updater {
    pub fn new(spec: &UpdaterSpec, l2: f32, weight_ranges: Vec<Range<usize>>, len: usize) -> Self {
        let kind = spec.kind();
        let (first, second) = match kind {
            UpdaterKind::Sgd => (0, 0),
            UpdaterKind::Nesterov | UpdaterKind::Rmsprop => (len, 0),
            UpdaterKind::Adam => (len, len),
        };
        Updater {
            kind,
            lr: spec.learning_rate(),
            momentum: spec.momentum,
            beta1: spec.beta1(),
            beta2: spec.beta2,
            rho: spec.rho,
            eps: spec.epsilon,
            l2,
            weight_ranges,
            step: 0,
            first: vec![0.0; first],
            second: vec![0.0; second],
        }
    }

    pub fn learning_rate(&self) -> f32 {
        self.lr
    }

    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Turns `grad` into the update, in place, with the learning rate scaled by `lr_scale`
    /// (the schedule).
    pub fn apply(&mut self, params: &[f32], grad: &mut [f32], lr_scale: f32) {
        add_l2(grad, params, self.l2, &self.weight_ranges);
        self.step += 1;
        let lr = self.lr * lr_scale;
        match self.kind {
            UpdaterKind::Sgd => grad.iter_mut().for_each(|g| *g *= lr),
            UpdaterKind::Nesterov => {
                // v' = mu v - lr g;  update = mu v - (1 + mu) v'  (params -= update).
                let mu = self.momentum;
                for (g, v) in grad.iter_mut().zip(self.first.iter_mut()) {
                    let prev = *v;
                    *v = mu * prev - lr * *g;
                    *g = mu * prev - (1.0 + mu) * *v;
                }
            }
            UpdaterKind::Adam => {
                let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
                let t = self.step as i32;
                let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
                for ((g, m), v) in grad.iter_mut().zip(self.first.iter_mut()).zip(self.second.iter_mut()) {
                    *m = b1 * *m + (1.0 - b1) * *g;
                    *v = b2 * *v + (1.0 - b2) * *g * *g;
                    *g = alpha * *m / (v.sqrt() + eps);
                }
            }
            UpdaterKind::Rmsprop => {
                let (rho, eps) = (self.rho, self.eps);
                for (g, c) in grad.iter_mut().zip(self.first.iter_mut()) {
                    *c = rho * *c + (1.0 - rho) * *g * *g;
                    *g = lr * *g / (c.sqrt() + eps);
                }
            }
        }
    }

    pub fn state(&self) -> UpdaterState {
        UpdaterState {
            kind: self.kind,
            step: self.step,
            first: self.first.clone(),
            second: self.second.clone(),
        }
    }

    /// Restores saved state; refuses state of another updater or size.
    pub fn restore(&mut self, state: &UpdaterState) -> Result<(), String> {
        if state.kind != self.kind {
            return Err(format!("saved updater is {:?}, the job uses {:?}", state.kind, self.kind));
        }
        if state.first.len() != self.first.len() || state.second.len() != self.second.len() {
            return Err(format!(
                "saved updater state has {}+{} entries, expected {}+{}",
                state.first.len(),
                state.second.len(),
                self.first.len(),
                self.second.len()
            ));
        }
        self.step = state.step;
        self.first.copy_from_slice(&state.first);
        self.second.copy_from_slice(&state.second);
        Ok(())
    }
}

/// `grad += l2·params` over `weight_ranges` (weights only: not biases, not batch-norm scale
/// and shift); nothing where `l2` is 0.
pub fn add_l2(grad: &mut [f32], params: &[f32], l2: f32, weight_ranges: &[Range<usize>]) {
    if l2 > 0.0 {
        for r in weight_ranges {
            for (g, &p) in grad[r.clone()].iter_mut().zip(&params[r.clone()]) {
                *g += l2 * p;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn updater(kind: UpdaterKind, lr: f32, l2: f32) -> Updater {
        let spec = UpdaterSpec { kind: Some(kind), lr: Some(lr), ..UpdaterSpec::default() };
        Updater::new(&spec, l2, std::iter::once(0..1).collect(), 2)
    }

    fn close(a: f32, b: f32) {
        assert!((a - b).abs() <= 2e-5 * b.abs().max(1e-3), "{a} vs {b}");
    }

    #[test]
    fn sgd_with_l2_on_weights_only() {
        let mut u = updater(UpdaterKind::Sgd, 0.1, 0.5);
        let mut g = [1.0, 1.0];
        u.apply(&[2.0, 2.0], &mut g, 1.0);
        close(g[0], 0.1 * (1.0 + 0.5 * 2.0)); // weight: l2 applied
        close(g[1], 0.1); // bias: no l2
    }

    #[test]
    fn nesterov_two_steps_by_hand() {
        let mut u = updater(UpdaterKind::Nesterov, 0.1, 0.0);
        let mut g = [1.0, -2.0];
        u.apply(&[0.0; 2], &mut g, 1.0);
        // v1 = -0.1 g; update = 0.9*0 - 1.9*v1 = 0.19 g
        close(g[0], 0.19);
        close(g[1], -0.38);
        let mut g = [1.0, -2.0];
        u.apply(&[0.0; 2], &mut g, 1.0);
        // v2 = 0.9*(-0.1) - 0.1 = -0.19; update = 0.9*(-0.1) - 1.9*(-0.19) = 0.271
        close(g[0], 0.271);
        close(g[1], -0.542);
    }

    #[test]
    fn adam_two_steps_by_hand() {
        let mut u = updater(UpdaterKind::Adam, 0.01, 0.0);
        let mut g = [0.5, -1.0];
        u.apply(&[0.0; 2], &mut g, 1.0);
        // Step 1: m = 0.05, v = 0.00025; alpha = 0.01*sqrt(0.001)/0.1; update = alpha*m/(sqrt v+eps) = 0.01
        close(g[0], 0.01);
        close(g[1], -0.01);
        let mut g = [0.5, -1.0];
        u.apply(&[0.0; 2], &mut g, 1.0);
        // Same gradient again: m and v are bias-corrected to g and g^2, so the update is lr again.
        close(g[0], 0.01);
        close(g[1], -0.01);
        let mut g = [-0.5, -1.0];
        u.apply(&[0.0; 2], &mut g, 1.0);
        // Step 3 for entry 0: m = 0.9*0.095 - 0.05 = 0.0355, v = 0.999*0.00049975 + 0.00025
        let m: f64 = 0.9 * (0.9 * 0.05 + 0.05) - 0.05;
        let v: f64 = 0.999 * (0.999 * 0.00025 + 0.00025) + 0.00025;
        let alpha: f64 = 0.01 * (1.0 - 0.999f64.powi(3)).sqrt() / (1.0 - 0.9f64.powi(3));
        close(g[0], (alpha * m / (v.sqrt() + 1e-8)) as f32);
    }

    #[test]
    fn rmsprop_two_steps_by_hand() {
        let mut u = updater(UpdaterKind::Rmsprop, 0.01, 0.0);
        let mut g = [2.0, 0.0];
        u.apply(&[0.0; 2], &mut g, 1.0);
        // c = 0.05 * 4 = 0.2; update = 0.01 * 2 / sqrt(0.2)
        close(g[0], 0.01 * 2.0 / 0.2f32.sqrt());
        assert_eq!(g[1], 0.0);
        let mut g = [2.0, 0.0];
        u.apply(&[0.0; 2], &mut g, 1.0);
        // c = 0.95*0.2 + 0.2 = 0.39
        close(g[0], 0.01 * 2.0 / 0.39f32.sqrt());
    }

    #[test]
    fn state_round_trips_and_mismatches_are_refused() {
        let mut a = updater(UpdaterKind::Adam, 0.01, 0.0);
        let mut g = [0.3, 0.4];
        a.apply(&[0.0; 2], &mut g, 1.0);
        let s = a.state();
        let mut b = updater(UpdaterKind::Adam, 0.01, 0.0);
        b.restore(&s).unwrap();
        let (mut g1, mut g2) = ([0.1, 0.2], [0.1, 0.2]);
        a.apply(&[0.0; 2], &mut g1, 1.0);
        b.apply(&[0.0; 2], &mut g2, 1.0);
        assert_eq!(g1, g2);
        assert!(updater(UpdaterKind::Sgd, 0.1, 0.0).restore(&s).is_err());
    }
}
