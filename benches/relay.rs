//! The coordinator's relay: N simulated workers (real gRPC clients on loopback) each send K
//! encoded updates of realistic size (the codec at density 1e-3 on the 235k-parameter MLP);
//! the coordinator validates each, applies it to its replica and fans it out to the N-1 others.
//! Prints deliveries per second and MB/s for N = 4, 16, 64.
//!
//!     cargo bench --bench relay
//!     cargo test --bench relay        # quick: N = 4 and 16, a few messages each (CI)

use std::time::{Duration, Instant};

use strom::cluster::auth::{WORKER_ID, WORKER_SECRET};
use strom::cluster::{Coordinator, CoordinatorConfig};
use strom::job::{JobSpec, LauncherKind};
use strom::rng::Rng;
use strom::sharing::ThresholdEncoder;
use strom_proto::Bytes;
use strom_proto::v1 as pb;

const DENSITY: f64 = 1e-3;

async fn client(url: &str) -> pb::cluster_client::ClusterClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string()).unwrap().connect().await.unwrap();
    pb::cluster_client::ClusterClient::new(channel).max_decoding_message_size(512 << 20)
}

fn messages(n: usize, origin: u32, count: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = Rng::new(seed);
    let mut enc = ThresholdEncoder::new(n);
    let mut residual = vec![0.0f32; n];
    (0..count)
        .map(|step| {
            let u: Vec<f32> = (0..n).map(|_| if rng.next_f64() < DENSITY { 1.0 } else { 0.0 }).collect();
            enc.encode(&mut residual, &u, 0.5, origin, step as u64);
            Bytes::copy_from_slice(enc.message())
        })
        .collect()
}

async fn round(workers: usize, per_worker: usize) -> Round {
    let mut job = JobSpec::default();
    job.cluster.launcher = LauncherKind::None;
    job.cluster.workers = workers;
    job.cluster.heartbeat_timeout_secs = 600;
    job.train.epochs = 1;
    let handle = Coordinator::new(CoordinatorConfig {
        start: true,
        ..CoordinatorConfig::loopback(Some(strom::job::ResolvedJob::resolve(job).expect("a valid job")))
    })
    .start()
    .await
    .unwrap();
    let url = handle.url().to_string();
    let run = handle.shared.run().unwrap();
    let n = run.param_count;

    // Join everyone and open their streams first, then start sending together.
    let mut sessions = Vec::new();
    for w in 0..workers {
        let mut c = client(&url).await;
        let joined = c
            .join(pb::JoinRequest {
                protocol_version: strom_proto::PROTOCOL_VERSION,
                host: format!("sim{w}"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::Update>(1024);
        let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let md = req.metadata_mut();
        md.insert(WORKER_ID, joined.worker_id.to_string().parse().unwrap());
        md.insert(WORKER_SECRET, joined.session_secret.parse().expect("an ASCII session secret"));
        let inbound = c.exchange(req).await.unwrap().into_inner();
        let msgs = messages(n, joined.worker_id, per_worker, w as u64);
        sessions.push((tx, inbound, msgs));
    }
    let bytes_per_message = sessions[0].2[0].len();
    let expected = per_worker * (workers - 1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (tx, mut inbound, msgs) in sessions {
        tasks.push(tokio::spawn(async move {
            let sender = tokio::spawn(async move {
                for (i, m) in msgs.into_iter().enumerate() {
                    let _ = tx.send(pb::Update { origin: 0, seq: i as u64, payload: m }).await;
                }
                tx
            });
            // Count deliveries until the stream goes quiet; a dense message carries a merged
            // sum of several that did not fit the worker's queue (counted by the coordinator).
            let (mut direct, mut dense, mut last) = (0usize, 0usize, start.elapsed());
            while direct < expected {
                match tokio::time::timeout(Duration::from_secs(3), inbound.message()).await {
                    Ok(Ok(Some(u))) => {
                        if u.payload.get(3) == Some(&2) {
                            dense += 1
                        } else {
                            direct += 1
                        }
                        last = start.elapsed();
                    }
                    _ => break,
                }
            }
            let _tx = sender.await;
            (direct, dense, last)
        }));
    }
    let (mut direct, mut dense, mut last) = (0, 0, Duration::ZERO);
    for t in tasks {
        let (d, m, l) = t.await.unwrap();
        direct += d;
        dense += m;
        last = last.max(l);
    }
    let merged: u64 = run.links().iter().map(|l| l.merged_total()).sum();
    run.stop();
    handle.shutdown().await;
    Round { direct, dense, merged, bytes_per_message, seconds: last.as_secs_f64() }
}

struct Round {
    direct: usize,
    dense: usize,
    merged: u64,
    bytes_per_message: usize,
    seconds: f64,
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "relay fan-out on loopback: each simulated worker sends K updates (codec at density {DENSITY}, 235,146 parameters)"
    );
    println!(
        "{:>8} {:>6} {:>10} {:>12} {:>9} {:>14} {:>9} {:>10}",
        "workers", "K", "msg bytes", "delivered", "seconds", "deliveries/s", "MB/s", "merged"
    );
    // `cargo bench` passes --bench; `cargo test --bench relay` does not: a quick run that checks
    // the bench still works (CI), figures not meant to be read.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds: &[(usize, usize)] =
        if quick { &[(4, 50), (16, 10)] } else { &[(4, 2000), (16, 500), (64, 60)] };
    for &(workers, k) in rounds {
        let r = rt.block_on(round(workers, k));
        // Every message reached every other worker, directly or merged into a dense one.
        let delivered = r.direct as u64 + r.merged;
        assert_eq!(delivered, (workers * (workers - 1) * k) as u64, "every update delivered");
        println!(
            "{workers:>8} {k:>6} {:>10} {delivered:>12} {:>9.2} {:>14.0} {:>9.1} {:>10}",
            r.bytes_per_message,
            r.seconds,
            delivered as f64 / r.seconds,
            r.direct as f64 * r.bytes_per_message as f64 / r.seconds / 1e6,
            format!("{} in {}", r.merged, r.dense)
        );
    }
}
