//! The updater on the device: L2, then SGD, Nesterov, Adam or RMSProp in one kernel that turns
//! the gradient into the update, and the update's subtraction from the parameters.

use super::CudaBackend;
use super::kernels::cfg;
use crate::backend::BackendError;
use crate::job::UpdaterKind;
use crate::nn::UpdaterState;

impl CudaBackend {
    pub(super) fn try_compute_update(&mut self, lr_scale: f32) -> Result<(), BackendError> {
        if self.l2 > 0.0 {
            for slot in &self.layout.layers {
                let n = slot.weights.len();
                self.k.add_l2(
                    cfg(n),
                    &mut self.grads.slice_mut(slot.weights.clone()),
                    &self.params.slice(slot.weights.clone()),
                    n as i32,
                    self.l2,
                )?;
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
                (2, lr * (1.0 - u.beta2.powi(t)).sqrt() / (1.0 - u.beta1().powi(t)), u.beta1())
            }
            // RMSProp keeps its average in `first`, with rho in the b1 slot.
            UpdaterKind::Rmsprop => (3, lr, u.rho),
        };
        let n = self.layout.len;
        self.k.updater(
            cfg(n),
            &mut self.grads.as_view_mut(),
            &mut self.first.as_view_mut(),
            &mut self.second.as_view_mut(),
            n as i32,
            kind,
            a,
            u.momentum,
            b1,
            u.beta2,
            u.epsilon,
        )
    }

    pub(super) fn try_apply_update(&mut self) -> Result<(), BackendError> {
        let n = self.layout.len;
        self.k.subtract(cfg(n), &mut self.params.as_view_mut(), &self.grads.as_view(), n as i32)
    }

    pub(super) fn read_updater_state(&self) -> UpdaterState {
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

    pub(super) fn write_updater_state(&mut self, state: &UpdaterState) -> Result<(), String> {
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
