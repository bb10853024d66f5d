//! Gradient sharing (Strom 2015): the threshold scheme over a backend's primitives, the compact
//! wire format, threshold adaptation and residual clipping. Parameter averaging, the baseline
//! mode, uses the same wire format's dense variant. A new compression scheme lives here only.

pub mod codec;
mod encoder;
pub mod quantum;
mod scheme;
mod threshold;

pub use codec::{DecodeError, Format, HEADER_LEN, Header, MessageView};
pub use encoder::{EncodeStats, ThresholdEncoder};
pub use scheme::{LayerShare, ThresholdSharing};
pub use threshold::{DECAY, ResidualClip, Threshold};
