//! `averaging`: each worker applies its own updates and every `averaging_frequency` steps the
//! workers' model states are averaged by the transport's collective (DL4J's parameter
//! averaging, the baseline).

use super::{Collective, Figures, Format, Reduce, Scheme, SchemeInfo, StepCtx, TransportError};
use crate::job::JobSpec;

pub struct Averaging {
    info: SchemeInfo,
    every: u32,
    since: u32,
    state: Vec<f32>,
}

impl Averaging {
    pub fn new(job: &JobSpec) -> Self {
        Averaging {
            info: super::describe(job),
            every: job.sharing.averaging_frequency.max(1),
            since: 0,
            state: Vec::new(),
        }
    }
}

impl Scheme for Averaging {
    fn info(&self) -> SchemeInfo {
        self.info
    }

    fn step(&mut self, ctx: StepCtx<'_>) -> Result<Figures, TransportError> {
        ctx.backend.compute_update(ctx.lr_scale);
        ctx.backend.apply_update();
        self.since += 1;
        if self.since < self.every {
            return Ok(Figures::default());
        }
        self.since = 0;
        self.state.resize(ctx.backend.state_len(), 0.0);
        ctx.backend.read_state(&mut self.state);
        if ctx.link.all_reduce(
            &mut self.state,
            Collective { op: Reduce::Model, tag: 0, wire: Format::Dense, idle: false },
        )? > 0
        {
            ctx.backend.write_state(&self.state);
        }
        Ok(Figures::dense(self.state.len(), 4))
    }
}
