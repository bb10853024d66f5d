//! The coordinator's relay: N simulated workers (real gRPC clients on loopback) each send K
//! encoded updates of realistic size (the codec at density 1e-3 on the 235k-parameter MLP);
//! the coordinator validates each, applies it to its replica and fans it out to the N-1 others.
//! Prints deliveries per second and MB/s for N = 4, 16, 64; then, with every worker sending at a
//! model's step rate, how the star keeps up as workers grow (4 to 1,024): deliveries offered and
//! made per second, the time for an update to reach every other worker (p50, p99) and the
//! coordinator's bytes out.
//!
//!     cargo bench --bench relay
//!     cargo test --bench relay        # quick: N = 4 and 16, a few messages each (CI)

mod sim;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use strom::cluster::{Coordinator, CoordinatorConfig};
use strom::job::{JobSpec, LauncherKind};
use strom::rng::Rng;
use strom::sharing::ThresholdEncoder;
use strom_proto::Bytes;
use strom_proto::v1 as pb;

const DENSITY: f64 = 1e-3;

async fn client(url: &str) -> sim::Client {
    sim::Client::new(sim::channel(url).await).max_decoding_message_size(512 << 20)
}

/// A few encoded updates (the codec at DENSITY on `n` parameters) whose origin and step are
/// stamped per send: encoding every message of 1,024 workers would take longer than the run.
fn templates(n: usize, count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut enc = ThresholdEncoder::new(n);
    let mut residual = vec![0.0f32; n];
    (0..count)
        .map(|step| {
            let u: Vec<f32> = (0..n).map(|_| if rng.next_f64() < DENSITY { 1.0 } else { 0.0 }).collect();
            enc.encode(&mut residual, &u, 0.5, 0, step as u64);
            enc.message().to_vec()
        })
        .collect()
}

/// The template with the header's origin (bytes 16..20) and step (20..28) set.
fn stamp(template: &[u8], origin: u32, step: u64) -> Bytes {
    let mut m = template.to_vec();
    m[16..20].copy_from_slice(&origin.to_le_bytes());
    m[20..28].copy_from_slice(&step.to_le_bytes());
    Bytes::from(m)
}

/// How one round sends: as fast as the streams take (throughput), or one message per worker
/// every `interval` (a model's step rate: latency and what the star keeps up with).
#[derive(Clone, Copy)]
enum Pace {
    Flood,
    Every(Duration),
}

async fn round(workers: usize, per_worker: usize, pace: Pace, templates: &[Vec<u8>]) -> Round {
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

    // Join everyone and open their streams first, then start sending together. Workers share
    // connections, 16 to one (HTTP/2 streams), so a thousand fit in one process.
    let mut sessions = Vec::new();
    let mut c = client(&url).await;
    for w in 0..workers {
        if w % 16 == 0 {
            c = client(&url).await;
        }
        let joined = sim::join(&mut c, w).await;
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::Update>(1024);
        let req = sim::signed(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            joined.worker_id,
            &joined.session_secret,
        );
        let inbound = c.clone().exchange(req).await.unwrap().into_inner();
        sessions.push((joined.worker_id, tx, inbound));
    }
    let bytes_per_message = templates[0].len();
    let expected = per_worker * (workers - 1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, (id, tx, mut inbound)) in sessions.into_iter().enumerate() {
        let mine: Vec<Bytes> =
            (0..per_worker).map(|i| stamp(&templates[(w + i) % templates.len()], id, i as u64)).collect();
        tasks.push(tokio::spawn(async move {
            let sender = tokio::spawn(async move {
                for (i, m) in mine.into_iter().enumerate() {
                    if let Pace::Every(every) = pace {
                        tokio::time::sleep_until((start + every * i as u32).into()).await;
                    }
                    let _ = tx.send(pb::Update { origin: 0, seq: i as u64, payload: m }).await;
                }
                tx
            });
            // Count deliveries until the stream goes quiet; a dense message carries a merged
            // sum of several that did not fit the worker's queue (counted by the coordinator).
            let (mut direct, mut dense, mut last) = (0usize, 0usize, start.elapsed());
            let mut arrivals = Vec::with_capacity(expected);
            while direct < expected {
                match tokio::time::timeout(Duration::from_secs(3), inbound.message()).await {
                    Ok(Ok(Some(u))) => {
                        last = start.elapsed();
                        if u.payload.get(3) == Some(&2) {
                            dense += 1
                        } else {
                            direct += 1;
                            if let Ok(h) = strom::sharing::codec::peek_header(&u.payload) {
                                arrivals.push((h.origin, h.step, last));
                            }
                        }
                    }
                    _ => break,
                }
            }
            let _tx = sender.await;
            (direct, dense, last, arrivals)
        }));
    }
    let (mut direct, mut dense, mut last) = (0, 0, Duration::ZERO);
    // Per message: how many workers it reached and when the last of them got it.
    let mut reach: HashMap<(u32, u64), (usize, Duration)> = HashMap::new();
    for t in tasks {
        let (d, m, l, arrivals) = t.await.unwrap();
        direct += d;
        dense += m;
        last = last.max(l);
        for (origin, step, at) in arrivals {
            let e = reach.entry((origin, step)).or_insert((0, Duration::ZERO));
            e.0 += 1;
            e.1 = e.1.max(at);
        }
    }
    // Time for an update to reach every other worker, from when it was due to be sent.
    let mut latency: Vec<f64> = match pace {
        Pace::Flood => Vec::new(),
        Pace::Every(every) => reach
            .iter()
            .filter(|(_, (n, _))| *n == workers - 1)
            .map(|((_, step), (_, at))| at.saturating_sub(every * *step as u32).as_secs_f64() * 1e3)
            .collect(),
    };
    latency.sort_by(f64::total_cmp);
    let merged: u64 = run.links().iter().map(|l| l.merged_total()).sum();
    run.stop();
    handle.shutdown().await;
    Round { direct, dense, merged, bytes_per_message, seconds: last.as_secs_f64(), latency }
}

struct Round {
    direct: usize,
    dense: usize,
    merged: u64,
    bytes_per_message: usize,
    seconds: f64,
    /// Milliseconds for each update that reached every other worker directly, sorted.
    latency: Vec<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // `cargo bench` passes --bench; `cargo test --bench relay` does not: a quick run that checks
    // the bench still works (CI), figures not meant to be read.
    let quick = !std::env::args().any(|a| a == "--bench");
    let templates = templates(235_146, 8, 1);
    println!(
        "relay fan-out on loopback (star): each simulated worker sends K updates (codec at density {DENSITY}, \
         235,146 parameters), as fast as the streams take them"
    );
    println!(
        "{:>8} {:>6} {:>10} {:>12} {:>9} {:>14} {:>9} {:>10}",
        "workers", "K", "msg bytes", "delivered", "seconds", "deliveries/s", "MB/s", "merged"
    );
    let rounds: &[(usize, usize)] =
        if quick { &[(4, 50), (16, 10)] } else { &[(4, 2000), (16, 500), (64, 60)] };
    for &(workers, k) in rounds {
        let r = rt.block_on(round(workers, k, Pace::Flood, &templates));
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
    // Paced: every worker sends one update per STEP (a worker's step time for this model),
    // so the coordinator is offered workers x (workers - 1) / STEP deliveries per second.
    const STEP: Duration = Duration::from_millis(50);
    let paced: &[(usize, usize)] =
        if quick { &[(4, 10), (16, 4)] } else { &[(4, 40), (16, 40), (64, 20), (256, 8), (1024, 3)] };
    println!();
    println!(
        "paced: one update per worker every {} ms; time for an update to reach every other worker \
         (those that reached all directly), and the coordinator's bytes out per second",
        STEP.as_millis()
    );
    println!(
        "{:>8} {:>4} {:>14} {:>14} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "workers", "K", "offered/s", "delivered/s", "complete", "p50 ms", "p99 ms", "coord MB/s", "merged"
    );
    for &(workers, k) in paced {
        let r = rt.block_on(round(workers, k, Pace::Every(STEP), &templates));
        let delivered = r.direct as u64 + r.merged;
        let offered = (workers * (workers - 1)) as f64 / STEP.as_secs_f64();
        println!(
            "{workers:>8} {k:>4} {offered:>14.0} {:>14.0} {:>9.0}% {:>10.1} {:>10.1} {:>12.1} {:>10}",
            delivered as f64 / r.seconds,
            100.0 * r.latency.len() as f64 / (workers * k) as f64,
            percentile(&r.latency, 0.5),
            percentile(&r.latency, 0.99),
            (r.direct * r.bytes_per_message) as f64 / r.seconds / 1e6,
            format!("{} in {}", r.merged, r.dense)
        );
    }
}
