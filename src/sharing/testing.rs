//! A one-worker [`Link`] and a small model for the schemes' tests.

use super::{Collective, Link, StepCtx, TransportError};
use crate::backend::{Backend, CpuBackend};
use crate::job::JobSpec;
use crate::nn::{Architecture, Shape, initial_state};

/// Keeps what is sent; an all-reduce over one worker leaves the values as they are.
#[derive(Default)]
pub struct Loopback {
    pub sent: Vec<Vec<u8>>,
    pub reduced: Vec<(Collective, usize)>,
}

impl Link for Loopback {
    fn send(&mut self, message: &[u8]) -> Result<(), TransportError> {
        self.sent.push(message.to_vec());
        Ok(())
    }

    fn all_reduce(&mut self, values: &mut [f32], c: Collective) -> Result<u32, TransportError> {
        self.reduced.push((c, values.len()));
        Ok(1)
    }
}

/// A 6-16-8-3 MLP on the CPU backend, for `job`.
pub fn model(job: &mut JobSpec) -> (Architecture, CpuBackend) {
    job.model.hidden = vec![16, 8];
    let arch = Architecture::from_job(&job.model, Shape::Vector(6), 3).unwrap();
    let backend = CpuBackend::new(&arch, &job.updater(), 0.0, 4, &initial_state(&arch, 1), 1);
    (arch, backend)
}

/// The backend's parameters.
pub fn params(backend: &mut CpuBackend) -> Vec<f32> {
    let mut state = vec![0.0; backend.state_len()];
    backend.read_state(&mut state);
    state.truncate(backend.param_count());
    state
}

/// A test step's context: worker 0, the schedule at its start, no epoch done, not idle.
pub fn ctx<'a>(backend: &'a mut CpuBackend, link: &'a mut Loopback, step: u64) -> StepCtx<'a> {
    StepCtx { backend, link, origin: 0, step, lr_scale: 1.0, epochs_done: 0.0, idle: false }
}
