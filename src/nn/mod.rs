//! The network: layers (one file each: shapes, parameters, running state), the architecture
//! and its layout over ONE flat parameter buffer (plus one running-state buffer),
//! activations, losses, initialisation, updaters, model files and evaluation metrics. The
//! arithmetic lives in `backend/`.

mod activation;
pub mod architecture;
pub mod eval;
mod init;
pub mod layers;
mod loss;
mod real;
pub mod saved;
mod shape;
pub mod updater;

pub use activation::Activation;
pub use architecture::{
    Architecture, GraphEntry, INPUT_NAME, Layout, MAX_MERGE_INPUTS, PlannedLayer, ShapeError, TensorSlot,
    Wiring,
};
pub use eval::Evaluation;
pub use init::{Init, initial_running, initial_state, initialize};
pub use loss::Loss;
pub use real::Real;
pub use shape::Shape;
pub use updater::{Updater, UpdaterState};
