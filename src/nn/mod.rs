//! The network: dense layers, activations, losses, initialisation, updaters and evaluation.
//! All parameters live in ONE flat buffer and all gradients in another; layers are ranges of it.

mod activation;
pub mod eval;
mod init;
mod loss;
mod network;
mod real;
pub mod saved;
pub mod updater;

pub use activation::Activation;
pub use eval::Evaluation;
pub use init::{Init, initial_params, initialize};
pub use loss::Loss;
pub use network::{Architecture, DenseSpec, LayerSlot, Layout, Workspace};
pub use real::Real;
pub use updater::{Updater, UpdaterState};
