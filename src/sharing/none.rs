//! `none`: one worker, or workers that never talk (the updater's output applied locally).

use super::{Figures, Scheme, SchemeInfo, StepCtx, TransportError};

/// Its [`SchemeInfo`], from [`super::describe`].
pub struct NoSharing(pub SchemeInfo);

impl Scheme for NoSharing {
    fn info(&self) -> SchemeInfo {
        self.0
    }

    fn step(&mut self, ctx: StepCtx<'_>) -> Result<Figures, TransportError> {
        ctx.backend.compute_update(ctx.lr_scale);
        ctx.backend.apply_update();
        Ok(Figures::default())
    }
}
