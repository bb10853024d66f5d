//! Training across processes and machines: the coordinator (hub, relay, work queue,
//! checkpoints, control API), the worker client, authentication and the launchers.

pub mod auth;
pub mod checkpoint;
pub mod convert;
pub mod coordinator;
pub mod launch;
pub mod relay;
pub mod worker;

pub use coordinator::{Coordinator, CoordinatorConfig, CoordinatorHandle};
pub use worker::{WorkerConfig, run_worker};

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {path}: {message}")]
    Token { path: String, message: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("checkpoint {location}: {message}")]
    Checkpoint { location: String, message: String },
    #[error("coordinator at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// A reason no retry changes (a refused token, a certificate that is not the pinned one, a
    /// scheme or protocol that does not match), said whole: it names which side refused.
    #[error("{0}")]
    Refused(String),
    #[error("launcher: {0}")]
    Launch(String),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("{0}")]
    Job(String),
}
