//! `strom-proto`: the wire protocol shared by the coordinator, the workers and the cockpit.
//! The cockpit links only this crate, never the engine.

pub use bytes::Bytes;

pub mod errors;
pub mod tls;

pub mod v1 {
    tonic::include_proto!("strom.v1");
}

/// Bumped when the Cluster protocol, or the job schema a worker receives in `Join`, changes
/// incompatibly (2: the `[compute]` section; 3: the relay tree); workers send theirs in `Join`.
pub const PROTOCOL_VERSION: u32 = 3;

/// Metadata key of the bearer token.
pub const AUTHORIZATION: &str = "authorization";
