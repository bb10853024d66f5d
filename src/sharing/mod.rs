//! Gradient sharing (Strom 2015): residual accumulation, threshold encoding into a compact wire
//! format, threshold adaptation and residual clipping. Parameter averaging, the baseline mode,
//! uses the same wire format's dense variant.

pub mod codec;
mod encoder;
mod threshold;

pub use codec::{DecodeError, Format, HEADER_LEN, Header, MessageView};
pub use encoder::{EncodeStats, ThresholdEncoder};
pub use threshold::{DECAY, ResidualClip, Threshold};
