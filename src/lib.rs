//! Strom: distributed neural-network training by gradient sharing (Strom, Interspeech 2015).
//!
//! The engine library behind the `strom` binary: job descriptions ([`job`]), storage
//! ([`storage`]), data ([`data`]), the network ([`nn`]) and the backends that run it
//! ([`backend`]), gradient sharing ([`sharing`]) and the training engine ([`engine`]).

pub mod backend;
pub mod cli;
pub mod cluster;
pub mod data;
pub mod engine;
pub mod import;
pub mod job;
pub mod nn;
pub mod rng;
pub mod sharing;
pub mod storage;
pub mod telemetry;
