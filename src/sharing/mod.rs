//! Gradient sharing: every compression scheme behind one [`Scheme`] trait, picked by
//! `sharing.mode` in one factory ([`create`]), with the wire formats they speak (`codec`).
//!
//! - `threshold`: residual-accumulated ±tau quanta (Strom 2015), tau adapted by `tau`;
//! - `topk`: Deep Gradient Compression (top-k with momentum correction);
//! - `powersgd`: rank-r power iteration, summed by the transport's all-reduce;
//! - `dense16`: the whole gradient in f16 / bf16, all-reduced every step;
//! - `averaging` and `none`: the baselines.
//!
//! A new scheme is one file here plus its arm in [`create`] and [`describe`].

mod averaging;
pub mod codec;
mod dense16;
mod encoder;
mod gradient;
mod none;
mod powersgd;
pub mod quantum;
mod scheme;
mod tau;
#[cfg(test)]
pub(crate) mod testing;
mod threshold;
mod topk;
mod wire16;

pub use codec::{DecodeError, Format, HEADER_LEN, Header, MessageView};
pub use encoder::{EncodeStats, ThresholdEncoder};
pub use powersgd::{low_rank_pays, orthonormalize};
pub use scheme::{
    Collective, Figures, Link, Reduce, Scheme, SchemeError, SchemeInfo, StepCtx, TransportError, create,
    describe, mean_gradient_gain,
};
pub use tau::{DECAY, ResidualClip, Threshold};
pub use threshold::{LayerShare, ThresholdSharing};
pub use topk::{Momentum, accumulate_and_select, estimate_threshold, warmup_density};

/// The L2 norm of `v`, summed in f64.
pub(crate) fn l2_norm(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}
