//! What the simulated-worker benches (relay, heartbeat) share: a connection to the coordinator,
//! joining a job as a worker over real gRPC, and signing a call with the identity the join gave.

use strom::cluster::auth::{WORKER_ID, WORKER_SECRET};
use strom_proto::v1 as pb;
use tonic::transport::Channel;

pub type Client = pb::cluster_client::ClusterClient<Channel>;

/// A connection to the coordinator at `url`.
pub async fn channel(url: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("a URL")
        .connect()
        .await
        .expect("connects")
}

/// Joins the job as simulated worker number `w`.
pub async fn join(c: &mut Client, w: usize) -> pb::JoinReply {
    c.join(pb::JoinRequest {
        protocol_version: strom_proto::PROTOCOL_VERSION,
        host: format!("sim{w}"),
        ..Default::default()
    })
    .await
    .expect("join")
    .into_inner()
}

/// A request carrying the worker's identity, as a real worker's calls do.
pub fn signed<T>(body: T, id: u32, secret: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(body);
    let md = req.metadata_mut();
    md.insert(WORKER_ID, id.to_string().parse().expect("ASCII"));
    md.insert(WORKER_SECRET, secret.parse().expect("an ASCII session secret"));
    req
}
