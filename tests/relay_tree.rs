//! The relay tree with three worker processes: a job forcing it (`cluster.relay.star_max = 2`)
//! with a fan-out of one makes a chain, coordinator -> worker -> worker -> worker, so two of
//! the three relay for others over real gRPC. It trains as the star does, and when an interior
//! relay is killed mid-run its child re-attaches within 2 s, nothing is lost or applied twice
//! (no worker has to re-synchronise) and the replicas agree at the barriers.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Proc, coordinator, json, token_file, worker};

const TOKEN: &str = "relay-tree-token-0123456789abcdef";

fn chain_job(dir: &Path, epochs: u32) -> String {
    let p = dir.join("job.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"relay-tree\"\n[train]\nepochs = {epochs}\nseed = 3\n[sharing]\nmode = \"threshold\"\n\
             [cluster]\nlauncher = \"none\"\nworkers = 3\nheartbeat_timeout_secs = 2\n\
             [cluster.relay]\nstar_max = 2\nfanout = 1\n"
        ),
    )
    .unwrap();
    p.display().to_string()
}

/// Starts the coordinator and three workers, one after the other (the chain follows join order).
fn start(dir: &Path, epochs: u32) -> (Proc, Vec<Proc>, std::path::PathBuf) {
    let token = token_file(dir, TOKEN);
    let job = chain_job(dir, epochs);
    let summary = dir.join("s.json");
    let coordinator = coordinator(dir, "127.0.0.1:0", &token, &job, &summary, &[]);
    let url = coordinator.coordinator_url();
    let mut workers = Vec::new();
    for n in 1..=3 {
        workers.push(worker(&url, &token, &[]));
        let joined =
            if n < 3 { format!("{n} of 3 workers have joined") } else { "3 workers have joined".into() };
        coordinator
            .wait_for(&joined, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("worker {n} did not join:\n{}", coordinator.output()));
    }
    (coordinator, workers, summary)
}

/// The address a worker serves its children at.
fn serves_at(w: &Proc) -> String {
    let line = w
        .wait_for("serves its children in the relay tree at", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("a worker that does not relay:\n{}", w.output()));
    line.rsplit(' ').next().unwrap().to_string()
}

/// Each worker's parent: "coordinator", or the index (in `workers`) of the one it follows.
fn parents(workers: &[Proc]) -> Vec<Option<usize>> {
    let addrs: Vec<String> = workers.iter().map(serves_at).collect();
    workers
        .iter()
        .map(|w| {
            let line = w
                .wait_for("receives updates through", Duration::from_secs(30))
                .unwrap_or_else(|| panic!("no parent:\n{}", w.output()));
            addrs.iter().position(|a| line.contains(&format!("({a})")))
        })
        .collect()
}

fn assert_no_resync(workers: &[Proc]) {
    for w in workers {
        let out = w.output();
        assert!(!out.contains("re-synchronising"), "an update was missing or held no more:\n{out}");
    }
}

#[test]
fn three_workers_in_a_chain_train_the_demo_as_the_star_does() {
    let dir = tempfile::tempdir().unwrap();
    let (mut coordinator, workers, summary) = start(dir.path(), 8);
    let status = coordinator.wait_exit(Duration::from_secs(240)).expect("the job completes");
    assert!(status.success(), "{}", coordinator.output());
    // A chain: one worker under the coordinator, each other under a different worker.
    let p = parents(&workers);
    assert_eq!(p.iter().filter(|x| x.is_none()).count(), 1, "{p:?}");
    let mut under: Vec<usize> = p.iter().flatten().copied().collect();
    under.sort();
    under.dedup();
    assert_eq!(under.len(), 2, "two workers relay, each to one child: {p:?}");
    assert_no_resync(&workers);
    let s = json(&summary);
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.80, "{s}");
    assert!(s["compression_ratio"].as_f64().unwrap() >= 100.0, "{s}");
    assert!(s["replica_drift"].as_f64().unwrap() < 0.05, "replicas stay together: {s}");
}

#[test]
fn a_killed_interior_relay_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let (mut coordinator, mut workers, summary) = start(dir.path(), 10);
    let p = parents(&workers);
    // The middle of the chain: it has a parent worker and a child.
    let middle = (0..3).find(|&i| p[i].is_some() && p.contains(&Some(i))).expect("a chain");
    let child = p.iter().position(|&x| x == Some(middle)).unwrap();
    coordinator
        .wait_for("epoch 2 done", Duration::from_secs(120))
        .unwrap_or_else(|| panic!("no progress:\n{}", coordinator.output()));
    workers[middle].kill9();
    let line = workers[child].wait_for("re-attached to", Duration::from_secs(30)).unwrap_or_else(|| {
        panic!("the child did not re-attach:\n{}\n---\n{}", workers[child].output(), coordinator.output())
    });
    let secs: f64 = line
        .split(" s after losing")
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no time in {line:?}"));
    assert!(secs < 2.0, "re-attached after {secs} s: {line}");
    eprintln!("{line}");
    let status = coordinator.wait_exit(Duration::from_secs(240)).expect("the job completes");
    assert!(status.success(), "{}", coordinator.output());
    let survivors: Vec<Proc> =
        workers.into_iter().enumerate().filter(|(i, _)| *i != middle).map(|(_, w)| w).collect();
    assert_no_resync(&survivors);
    let s = json(&summary);
    assert_eq!(s["epochs"], 10, "{s}");
    assert_eq!(s["workers_lost"], 1, "{s}");
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.80, "{s}");
    // Every epoch after the kill ended with the two survivors' parameters together.
    for e in s["per_epoch"].as_array().unwrap() {
        assert!(e["replica_drift"].as_f64().unwrap() < 0.05, "epoch {}: {s}", e["epoch"]);
    }
}
