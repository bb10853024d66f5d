//! Heartbeat round trips while the coordinator evaluates the test set: an in-process
//! coordinator (real gRPC on loopback) runs the `cnn` preset with two simulated workers that
//! do no arithmetic: they take their partitions, report a step for each, and meet at the epoch
//! barrier with the model, so each epoch's time is mostly the coordinator's evaluation of the
//! test set (the full Fashion-MNIST t10k, 10,000 images, where installed; the demo's otherwise).
//! A cockpit-like watcher follows the job, as a user's cockpit would. A probe sends a heartbeat
//! every 10 ms for one of the workers and times each round trip; the table gives the p50, p99
//! and maximum of those sent while an evaluation ran, and of the others.
//!
//!     cargo bench --bench heartbeat           # 4 epochs
//!     cargo test --bench heartbeat            # quick: 1 epoch (CI)

mod sim;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use strom::cluster::{Coordinator, CoordinatorConfig};
use strom::job::{JobSpec, LauncherKind, ModelPreset};
use strom_proto::v1 as pb;

use sim::{Client, channel, join, signed};

const FULL_TEST: &str = "/usr/share/datasets/fashion-mnist/t10k";

/// One simulated worker: partitions are "trained" at once (a report of one step each), then the
/// barrier with the model it was given. Returns when the job finishes.
async fn worker(mut c: Client, id: u32, secret: String, state: Vec<u8>, evaluating: Arc<AtomicBool>) {
    let mut step = 0u64;
    let mut done = Vec::new();
    loop {
        let reply = c
            .next_shard(signed(
                pb::ShardRequest { worker_id: id, done: std::mem::take(&mut done) },
                id,
                &secret,
            ))
            .await
            .expect("next shard")
            .into_inner();
        match reply.work {
            Some(pb::shard_reply::Work::Partition(p)) => {
                step += 1;
                let stats = pb::StepStats {
                    worker: id,
                    epoch: p.epoch,
                    step,
                    loss: 1.0,
                    samples: step * 64,
                    ..Default::default()
                };
                let report = pb::WorkerReport { worker_id: id, stats: vec![stats], ..Default::default() };
                let stream = tokio_stream::iter(vec![report]);
                c.report(signed(stream, id, &secret)).await.expect("report");
                done.push(p);
            }
            Some(pb::shard_reply::Work::EpochEnd(epoch)) => {
                evaluating.store(true, Ordering::Release);
                loop {
                    let req =
                        pb::EndEpochRequest { worker_id: id, epoch, params: state.clone(), stats: vec![] };
                    let reply = c.end_epoch(signed(req, id, &secret)).await.expect("end epoch").into_inner();
                    match reply.outcome {
                        Some(pb::end_epoch_reply::Outcome::Pending(_)) => continue,
                        Some(pb::end_epoch_reply::Outcome::Finished(_)) => {
                            evaluating.store(false, Ordering::Release);
                            return;
                        }
                        _ => break,
                    }
                }
                evaluating.store(false, Ordering::Release);
            }
            Some(pb::shard_reply::Work::WaitMs(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms as u64)).await
            }
            Some(pb::shard_reply::Work::Finished(_)) | None => return,
            Some(pb::shard_reply::Work::Idle(_)) => {}
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    // The coordinator on a runtime of its own, as in its own process (one worker thread per
    // core); the simulated workers, the watcher and the probe on another, so a stalled
    // coordinator cannot stall the clock that times it.
    let server = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let clients = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let mut job = JobSpec::default();
    job.cluster.launcher = LauncherKind::None;
    job.cluster.workers = 2;
    job.cluster.heartbeat_timeout_secs = 600;
    job.train.epochs = if quick { 1 } else { 4 };
    job.model.preset = ModelPreset::Cnn;
    let full = std::path::Path::new(&format!("{FULL_TEST}-images-idx3-ubyte.gz")).exists();
    if full {
        job.data.test = FULL_TEST.into();
    }
    let job = strom::job::ResolvedJob::resolve(job).expect("a valid job");
    let handle = server
        .block_on(
            Coordinator::new(CoordinatorConfig { start: true, ..CoordinatorConfig::loopback(Some(job)) })
                .start(),
        )
        .expect("the coordinator starts");
    let url = handle.url().to_string();
    let run = handle.shared.run().expect("a run");
    let (during, outside) = clients.block_on(async move {
        let ch = channel(&url).await;
        let evaluating = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        let mut probe_id = (0, String::new());
        for w in 0..2 {
            let mut c = Client::new(ch.clone()).max_decoding_message_size(512 << 20);
            let joined = join(&mut c, w).await;
            probe_id = (joined.worker_id, joined.session_secret.clone());
            workers.push(tokio::spawn(worker(
                c,
                joined.worker_id,
                joined.session_secret,
                joined.params,
                evaluating.clone(),
            )));
        }
        // The cockpit's view: the watch stream at its default interval.
        let mut control = pb::control_client::ControlClient::new(channel(&url).await);
        let mut watch =
            control.watch_job(pb::WatchRequest { interval_ms: 0 }).await.expect("watch").into_inner();
        let watcher = tokio::spawn(async move { while let Ok(Some(_)) = watch.message().await {} });
        // The probe, on a connection of its own.
        let mut probe = Client::new(channel(&url).await);
        let (mut during, mut outside) = (Vec::new(), Vec::new());
        let (id, secret) = probe_id;
        while workers.iter().any(|w| !w.is_finished()) {
            let busy = evaluating.load(Ordering::Acquire);
            let t0 = Instant::now();
            probe
                .heartbeat(signed(pb::HeartbeatRequest { worker_id: id, ..Default::default() }, id, &secret))
                .await
                .expect("heartbeat");
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if busy || evaluating.load(Ordering::Acquire) {
                during.push(ms)
            } else {
                outside.push(ms)
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        watcher.abort();
        (during, outside)
    });
    let eval_seconds = run.totals().eval_seconds;
    run.stop();
    server.block_on(handle.shutdown());
    println!(
        "heartbeat round trips (ms) while the coordinator evaluates the {} test set (cnn preset; {:.1} s of \
         evaluation in all), a watcher attached, a heartbeat every 10 ms, {} cores",
        if full { "full Fashion-MNIST t10k (10,000 images)" } else { "demo's" },
        eval_seconds,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("{:<22} {:>8} {:>8} {:>8} {:>8}", "when", "count", "p50", "p99", "max");
    for (name, mut v) in [("during evaluation", during), ("otherwise", outside)] {
        v.sort_by(f64::total_cmp);
        println!(
            "{name:<22} {:>8} {:>8.2} {:>8.2} {:>8.2}",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
}
