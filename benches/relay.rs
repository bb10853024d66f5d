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
/// A worker whose stream stays silent this long has had everything (a flood of 64 workers
/// keeps some streams waiting for seconds behind merged dense sums).
const QUIET: Duration = Duration::from_secs(10);

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

/// The coordinator's own runtime (two threads, as its process would have on this machine), so
/// its CPU time can be told apart from the simulated workers'.
fn coordinator_runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strom-coord")
            .enable_all()
            .build()
            .unwrap()
    })
}

/// CPU seconds (user + system) the coordinator's runtime threads have used.
fn coordinator_cpu() -> f64 {
    let ticks: u64 = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "strom-coord"))
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            // After the command's closing parenthesis: fields 3.. ; utime and stime are 14 and 15.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    ticks as f64 / 100.0
}

/// A coordinator running `job` (on its own runtime when paced, to measure its CPU; a flood
/// shares the bench's, as before): its handle, URL and run.
async fn coordinator(
    job: JobSpec,
    own_runtime: bool,
) -> (strom::cluster::CoordinatorHandle, String, std::sync::Arc<strom::cluster::coordinator::run::JobRun>) {
    let config = CoordinatorConfig {
        start: true,
        ..CoordinatorConfig::loopback(Some(strom::job::ResolvedJob::resolve(job).expect("a valid job")))
    };
    let start = async move { Coordinator::new(config).start().await.unwrap() };
    let handle = if own_runtime { coordinator_runtime().spawn(start).await.unwrap() } else { start.await };
    let url = handle.url().to_string();
    let run = handle.shared.run().unwrap();
    (handle, url, run)
}

/// Simulated worker `w` joins and opens its update stream: what it sends, what it receives.
async fn open(
    c: &mut sim::Client,
    w: usize,
) -> (pb::JoinReply, tokio::sync::mpsc::Sender<pb::Update>, tonic::Streaming<pb::Update>) {
    let joined = sim::join(c, w).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::Update>(1024);
    let req = sim::signed(
        tokio_stream::wrappers::ReceiverStream::new(rx),
        joined.worker_id,
        &joined.session_secret,
    );
    let inbound = c.clone().exchange(req).await.unwrap().into_inner();
    (joined, tx, inbound)
}

async fn round(workers: usize, per_worker: usize, pace: Pace, templates: &[Vec<u8>]) -> Round {
    let mut job = JobSpec::default();
    job.cluster.launcher = LauncherKind::None;
    job.cluster.workers = workers;
    job.cluster.heartbeat_timeout_secs = 600;
    // The star at every size (the default turns to a tree above 32 workers).
    job.cluster.relay.star_max = workers;
    job.train.epochs = 1;
    let (handle, url, run) = coordinator(job, matches!(pace, Pace::Every(_))).await;
    let cpu = coordinator_cpu();

    // Join everyone and open their streams first, then start sending together. Workers share
    // connections, 16 to one (HTTP/2 streams), so a thousand fit in one process.
    let mut sessions = Vec::new();
    let mut c = client(&url).await;
    for w in 0..workers {
        if w % 16 == 0 {
            c = client(&url).await;
        }
        let (joined, tx, inbound) = open(&mut c, w).await;
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
                // Sends the stream took, and the first it refused (its request stream closed).
                let (mut sent, mut refused) = (0usize, None);
                for (i, m) in mine.into_iter().enumerate() {
                    if let Pace::Every(every) = pace {
                        tokio::time::sleep_until((start + every * i as u32).into()).await;
                    }
                    match tx.send(pb::Update { origin: 0, seq: i as u64, payload: m }).await {
                        Ok(()) => sent += 1,
                        Err(_) if refused.is_none() => refused = Some(i),
                        Err(_) => {}
                    }
                }
                (tx, sent, refused)
            });
            // Count deliveries until the stream goes quiet; a dense message carries a merged
            // sum of several that did not fit the worker's queue (counted by the coordinator).
            let (mut direct, mut dense, mut last, mut bytes) = (0usize, 0usize, start.elapsed(), 0u64);
            let mut arrivals = Vec::with_capacity(expected);
            let mut ended = "all arrived".to_string();
            while direct < expected {
                match tokio::time::timeout(QUIET, inbound.message()).await {
                    Ok(Ok(Some(u))) => {
                        last = start.elapsed();
                        bytes += u.payload.len() as u64;
                        if u.payload.get(3) == Some(&2) {
                            dense += 1
                        } else {
                            direct += 1;
                            if let Ok(h) = strom::sharing::codec::peek_header(&u.payload) {
                                arrivals.push((h.origin, h.step, last));
                            }
                        }
                    }
                    Ok(Ok(None)) => {
                        ended = "its stream ended".into();
                        break;
                    }
                    Ok(Err(status)) => {
                        ended = format!("its stream failed: {status}");
                        break;
                    }
                    Err(_) => {
                        ended = format!("nothing for {} s", QUIET.as_secs());
                        break;
                    }
                }
            }
            let (_tx, sent, refused) = sender.await.expect("the sender task");
            let how = format!(
                "worker {id}: sent {sent} of {per_worker}{}; received {direct} direct and {dense} dense, then {ended}",
                refused.map(|i| format!(" (the stream refused send {i} first)")).unwrap_or_default()
            );
            (direct, dense, last, arrivals, bytes, how)
        }));
    }
    let (mut direct, mut dense, mut last, mut bytes_out) = (0, 0, Duration::ZERO, 0);
    // Per message: how many workers it reached and when the last of them got it.
    let mut reach: HashMap<(u32, u64), (usize, Duration)> = HashMap::new();
    let mut workers_said = Vec::new();
    for t in tasks {
        let (d, m, l, arrivals, b, how) = t.await.unwrap();
        workers_said.push(how);
        bytes_out += b;
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
    // What each side saw, for a round that falls short.
    let (applied, rejected) = {
        let hub = run.hub();
        (hub.counters.updates_applied, hub.counters.updates_rejected)
    };
    let mut report = format!(
        "the coordinator applied {applied} updates and rejected {rejected}; links: {}",
        run.links().iter().map(|l| format!("{} {:?}", l.id, l.state())).collect::<Vec<_>>().join(", ")
    );
    for said in workers_said {
        report.push_str("\n  ");
        report.push_str(&said);
    }
    let cpu = coordinator_cpu() - cpu;
    run.stop();
    handle.shutdown().await;
    Round {
        direct,
        dense,
        merged,
        bytes_per_message,
        seconds: last.as_secs_f64(),
        latency,
        bytes_out,
        cpu,
        report,
    }
}

/// The relay tree (issue 27): the same paced load, but every simulated worker also serves its
/// children (the real `RelayNode`: its history and `Relay` server) and follows the parent the
/// coordinator's heartbeat names; each update travels up to the coordinator, which numbers it
/// and sends it to its `fanout` children, and down the tree. Returns the round and the bytes
/// each node sent to its children (the coordinator first).
async fn tree_round(
    workers: usize,
    per_worker: usize,
    every: Duration,
    fanout: usize,
    templates: &[Vec<u8>],
) -> (Round, Vec<u64>) {
    use strom::cluster::relay::{Entry, Pushed, RelayNode};
    let mut job = JobSpec::default();
    job.cluster.launcher = LauncherKind::None;
    job.cluster.workers = workers;
    job.cluster.heartbeat_timeout_secs = 600;
    job.cluster.relay.star_max = 0;
    job.cluster.relay.fanout = fanout;
    job.train.epochs = 1;
    let (handle, url, run) = coordinator(job, true).await;

    // Join, open the update stream and start each worker's relay server; then tell the
    // coordinator every address before anyone asks for a parent, so the tree is complete.
    let mut members = Vec::new();
    let mut ch = sim::channel(&url).await;
    for w in 0..workers {
        if w % 16 == 0 {
            ch = sim::channel(&url).await;
        }
        let mut c = sim::Client::new(ch.clone()).max_decoding_message_size(512 << 20);
        let (joined, tx, _quiet) = open(&mut c, w).await;
        let node = RelayNode::start(&url, None).await.expect("a relay server");
        node.history.restart_at(joined.relay_seq);
        members.push((joined, tx, node, (c, ch.clone()), _quiet));
    }
    let beat = |c: &mut sim::Client, j: &pb::JoinReply, addr: String| {
        let req = pb::HeartbeatRequest { worker_id: j.worker_id, relay_addr: addr, unreachable_parent: None };
        let mut c = c.clone();
        let req = sim::signed(req, j.worker_id, &j.session_secret);
        async move { c.heartbeat(req).await.unwrap().into_inner() }
    };
    for (j, _, node, (c, _), _) in &mut members {
        beat(c, j, node.addr.to_string()).await;
    }
    let mut streams = Vec::new();
    let mut parent_of = Vec::new();
    for (j, _, node, (c, ch), _) in &mut members {
        let reply = beat(c, j, node.addr.to_string()).await;
        let from = pb::SubscribeRequest { worker_id: j.worker_id, from_seq: 1 };
        let stream = match reply.parent_id {
            None => {
                let mut r =
                    pb::relay_client::RelayClient::new(ch.clone()).max_decoding_message_size(512 << 20);
                r.subscribe(sim::signed(from, j.worker_id, &j.session_secret)).await.unwrap().into_inner()
            }
            Some(_) => {
                let mut r = pb::relay_client::RelayClient::new(
                    sim::channel(&format!("http://{}", reply.parent_addr)).await,
                )
                .max_decoding_message_size(512 << 20);
                r.subscribe(from).await.unwrap().into_inner()
            }
        };
        parent_of.push(reply.parent_id);
        streams.push(stream);
    }
    let bytes_per_message = templates[0].len();
    let expected = per_worker * workers;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, ((joined, tx, node, _, quiet), mut inbound)) in members.into_iter().zip(streams).enumerate() {
        let id = joined.worker_id;
        let mine: Vec<Bytes> =
            (0..per_worker).map(|i| stamp(&templates[(w + i) % templates.len()], id, i as u64)).collect();
        tasks.push(tokio::spawn(async move {
            let sender = tokio::spawn(async move {
                for (i, m) in mine.into_iter().enumerate() {
                    tokio::time::sleep_until((start + every * i as u32).into()).await;
                    let _ = tx.send(pb::Update { origin: 0, seq: i as u64, payload: m }).await;
                }
                tx
            });
            // Every update arrives once, its own included (it goes on to this node's children).
            let (mut seen, mut bytes, mut last) = (0usize, 0u64, start.elapsed());
            let mut arrivals = Vec::with_capacity(expected);
            while seen < expected {
                match tokio::time::timeout(QUIET, inbound.message()).await {
                    Ok(Ok(Some(u))) => {
                        last = start.elapsed();
                        seen += 1;
                        bytes += u.payload.len() as u64;
                        let origin = u.origin;
                        let pushed =
                            node.history.push(Entry { seq: u.seq, origin, payload: u.payload.clone() });
                        assert_eq!(pushed, Pushed::Added, "each update once, in order");
                        if origin != id
                            && let Ok(h) = strom::sharing::codec::peek_header(&u.payload)
                        {
                            arrivals.push((h.origin, h.step, last));
                        }
                    }
                    _ => break,
                }
            }
            let _tx = sender.await;
            drop((quiet, node));
            (arrivals.len(), bytes, last, arrivals)
        }));
    }
    let cpu = coordinator_cpu();
    let mut r = Round {
        direct: 0,
        dense: 0,
        merged: 0,
        bytes_per_message,
        seconds: 0.0,
        latency: Vec::new(),
        bytes_out: 0,
        cpu: 0.0,
        report: String::new(),
    };
    let mut reach: HashMap<(u32, u64), (usize, Duration)> = HashMap::new();
    // Bytes each node sent: what its children received from it (index 0: the coordinator).
    let mut sent = vec![0u64; workers + 1];
    for (t, parent) in tasks.into_iter().zip(&parent_of) {
        let (d, bytes, l, arrivals) = t.await.unwrap();
        r.direct += d;
        r.seconds = r.seconds.max(l.as_secs_f64());
        sent[parent.map_or(0, |p| p as usize + 1)] += bytes;
        for (origin, step, at) in arrivals {
            let e = reach.entry((origin, step)).or_insert((0, Duration::ZERO));
            e.0 += 1;
            e.1 = e.1.max(at);
        }
    }
    r.latency = reach
        .iter()
        .filter(|(_, (n, _))| *n == workers - 1)
        .map(|((_, step), (_, at))| at.saturating_sub(every * *step as u32).as_secs_f64() * 1e3)
        .collect();
    r.latency.sort_by(f64::total_cmp);
    r.bytes_out = sent[0];
    r.cpu = coordinator_cpu() - cpu;
    run.stop();
    handle.shutdown().await;
    (r, sent)
}

struct Round {
    direct: usize,
    dense: usize,
    /// Bytes the coordinator sent to workers.
    bytes_out: u64,
    /// CPU seconds of the coordinator's threads over the round.
    cpu: f64,
    merged: u64,
    bytes_per_message: usize,
    seconds: f64,
    /// Milliseconds for each update that reached every other worker directly, sorted.
    latency: Vec<f64>,
    /// What the coordinator counted and how each simulated worker's streams ended.
    report: String,
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
        assert_eq!(delivered, (workers * (workers - 1) * k) as u64, "every update delivered: {}", r.report);
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
    const FANOUT: usize = 8;
    let paced: &[(usize, usize)] =
        if quick { &[(4, 10), (16, 4)] } else { &[(4, 40), (16, 40), (64, 20), (256, 8), (1024, 3)] };
    println!();
    println!(
        "paced: one update per worker every {} ms; time for an update to reach every other worker \
         (those that reached all directly), and the coordinator's bytes out per second",
        STEP.as_millis()
    );
    println!(
        "(star: the coordinator sends to every worker; tree: fan-out {FANOUT}, the busiest node is the one \
         that sent the most bytes to its children; KB per update: bytes sent over updates made)"
    );
    println!(
        "{:>8} {:>5} {:>4} {:>14} {:>14} {:>9} {:>9} {:>9} {:>14} {:>16} {:>10} {:>10}",
        "workers",
        "relay",
        "K",
        "offered/s",
        "delivered/s",
        "complete",
        "p50 ms",
        "p99 ms",
        "coord KB/upd",
        "busiest KB/upd",
        "coord CPU%",
        "merged"
    );
    for &(workers, k) in paced {
        let offered = (workers * (workers - 1)) as f64 / STEP.as_secs_f64();
        let updates = (workers * k) as f64;
        let star = rt.block_on(round(workers, k, Pace::Every(STEP), &templates));
        let (tree, sent) = rt.block_on(tree_round(workers, k, STEP, FANOUT, &templates));
        let busiest = sent.iter().copied().max().unwrap_or(0);
        for (name, r, busiest) in [("star", &star, star.bytes_out), ("tree", &tree, busiest)] {
            let delivered = r.direct as u64 + r.merged;
            println!(
                "{workers:>8} {name:>5} {k:>4} {offered:>14.0} {:>14.0} {:>8.0}% {:>9.1} {:>9.1} {:>14.1} {:>16.1} {:>9.0}% {:>10}",
                delivered as f64 / r.seconds,
                100.0 * r.latency.len() as f64 / updates,
                percentile(&r.latency, 0.5),
                percentile(&r.latency, 0.99),
                r.bytes_out as f64 / updates / 1e3,
                busiest as f64 / updates / 1e3,
                100.0 * r.cpu / r.seconds,
                format!("{} in {}", r.merged, r.dense)
            );
        }
        if quick {
            // The tree delivers every update to every worker exactly once.
            assert_eq!(tree.direct, workers * (workers - 1) * k, "the tree delivers everything");
        }
    }
}
