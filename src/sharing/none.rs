//! `none`: one worker, or workers that never talk (the updater's output applied locally).

use super::{Figures, Scheme, SchemeInfo, StepCtx, TransportError};
use crate::job::SharingMode;

pub struct NoSharing;

impl Scheme for NoSharing {
    fn info(&self) -> SchemeInfo {
        SchemeInfo {
            mode: SharingMode::None,
            name: "none",
            exchanges: false,
            formats: &[],
            replica_follows: false,
            keeps_parameters: false,
            has_tau: false,
            lockstep: false,
        }
    }

    fn step(&mut self, ctx: StepCtx<'_>) -> Result<Figures, TransportError> {
        ctx.backend.compute_update(ctx.lr_scale);
        ctx.backend.apply_update();
        Ok(Figures::default())
    }
}
