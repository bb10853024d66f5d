//! The training engine. One worker's step loop (`worker`) talks to the rest of the job only
//! through a [`Transport`]; the `hub` keeps the replica, relays and validates updates, hands out
//! data partitions and runs the epoch barrier and averaging rounds. `embedded` wires N worker
//! threads to a hub in one process; the gRPC cluster wires processes to the same hub.

pub mod driver;
pub mod embedded;
mod evaluate;
pub mod hub;
pub mod inbox;
pub mod metrics;
pub mod output;
pub mod partition;
pub mod sample;
pub mod worker;

pub use embedded::{EmbeddedOptions, TrainOutcome, run_embedded};
pub use evaluate::{EvalReport, RegressionMetrics, evaluate};
pub use hub::{EpochNext, EpochReady, Hub, HubConfig, Work, WorkerId};
pub use metrics::{EpochSummary, Observer, StepStats, Totals, WorkerTotals};
pub use output::{FinishedRun, ModelOutput};
pub use partition::Partition;
pub use worker::{Transport, TransportError, WorkerLoop, WorkerSummary};

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "training diverged: the loss became {value} at epoch {epoch}, step {step} on worker {worker}; \
         lower the learning rate (train.updater.lr, now {lr}) or check the data for NaN"
    )]
    Diverged { worker: u32, epoch: u32, step: u64, value: f32, lr: f32 },
    #[error("worker {worker}: {message}")]
    Worker { worker: u32, message: String },
    #[error("worker {worker}: {source}")]
    Data {
        worker: u32,
        #[source]
        source: crate::data::DataError,
    },
    #[error("the training data's examples are {data} but the model takes {model}")]
    Shape { data: crate::nn::Shape, model: crate::nn::Shape },
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stopped: {0}")]
    Stopped(String),
}
