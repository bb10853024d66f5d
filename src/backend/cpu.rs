//! The CPU backend: ndarray (matrixmultiply) for the products, plain loops for the rest.

use super::{Backend, DeviceInfo};
use crate::data::Batch;
use crate::job::UpdaterSpec;
use crate::nn::{Architecture, Layout, Updater, UpdaterState, Workspace};
use crate::rng::Rng;
use crate::sharing::{EncodeStats, MessageView, ThresholdEncoder};

pub struct CpuBackend {
    layout: Layout,
    params: Vec<f32>,
    /// The gradient, then (after `compute_update`) the update, in place.
    grads: Vec<f32>,
    /// Allocated on first use: only gradient sharing needs it.
    residual: Vec<f32>,
    updater: Updater,
    workspace: Workspace<f32>,
}

impl CpuBackend {
    /// `updater` must be resolved ([`crate::job::JobSpec::updater`]).
    pub fn new(
        architecture: &Architecture,
        updater: &UpdaterSpec,
        l2: f32,
        batch_capacity: usize,
        params: &[f32],
    ) -> Self {
        let layout = architecture.layout();
        assert_eq!(params.len(), layout.len, "parameter buffer does not match the architecture");
        let updater = Updater::new(updater, l2, layout.weight_ranges(), layout.len);
        CpuBackend {
            workspace: Workspace::new(&layout, batch_capacity),
            params: params.to_vec(),
            grads: vec![0.0; layout.len],
            residual: Vec::new(),
            updater,
            layout,
        }
    }

    /// The residual (tests, diagnostics).
    pub fn residual(&self) -> &[f32] {
        &self.residual
    }
}

impl Backend for CpuBackend {
    fn device(&self) -> DeviceInfo {
        let bytes = (self.params.len() + self.grads.len() + self.residual.len()) as u64 * 4;
        DeviceInfo {
            device: "cpu".into(),
            name: format!(
                "CPU ({} threads available)",
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
            ),
            memory_used: bytes,
            memory_total: 0,
            utilization: None,
        }
    }

    fn param_count(&self) -> usize {
        self.layout.len
    }

    fn read_params(&mut self, out: &mut [f32]) {
        out.copy_from_slice(&self.params);
    }

    fn write_params(&mut self, params: &[f32]) {
        self.params.copy_from_slice(params);
    }

    fn forward_backward(&mut self, batch: &Batch<'_>, rng: &mut Rng) -> f32 {
        let rows = batch.rows;
        self.workspace.set_input(batch.input, rows);
        self.workspace.sample_dropout(&self.layout, rows, rng);
        self.workspace.forward(&self.layout, &self.params, rows, true);
        self.workspace.backward(&self.layout, &self.params, &mut self.grads, rows, batch.targets, true)
    }

    fn compute_update(&mut self, lr_scale: f32) {
        self.updater.apply(&self.params, &mut self.grads, lr_scale);
    }

    fn apply_update(&mut self) {
        for (p, u) in self.params.iter_mut().zip(&self.grads) {
            *p -= u;
        }
    }

    fn encode_and_apply(
        &mut self,
        encoder: &mut ThresholdEncoder,
        tau: f32,
        origin: u32,
        step: u64,
    ) -> EncodeStats {
        if self.residual.len() != self.params.len() {
            self.residual = vec![0.0; self.params.len()];
        }
        let stats = encoder.encode(&mut self.residual, &self.grads, tau, origin, step);
        for &s in encoder.selected_mut().iter() {
            let i = (s & 0x7fff_ffff) as usize;
            self.params[i] -= if s >> 31 == 1 { -tau } else { tau };
        }
        stats
    }

    fn apply_message(&mut self, message: &MessageView<'_>) {
        message.subtract_from(&mut self.params, 1.0);
    }

    fn clip_residual(&mut self, limit: f32) {
        for r in &mut self.residual {
            *r = r.clamp(-limit, limit);
        }
    }

    fn evaluate(&mut self, batch: &Batch<'_>, outputs: &mut Vec<f32>) -> f32 {
        let rows = batch.rows;
        self.workspace.set_input(batch.input, rows);
        self.workspace.forward(&self.layout, &self.params, rows, false);
        outputs.clear();
        outputs.extend(self.workspace.output(rows).iter().copied());
        self.workspace.output_loss(&self.layout, rows, batch.targets)
    }

    fn updater_state(&self) -> UpdaterState {
        self.updater.state()
    }

    fn restore_updater(&mut self, state: &UpdaterState) -> Result<(), String> {
        self.updater.restore(state)
    }
}
