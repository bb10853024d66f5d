//! Every compression scheme through the binary: the demo subset in two worker processes over
//! gRPC (threshold's bound), their figures in `--metrics-out`, a collective that loses a worker
//! mid-round, and the factory's refusals naming the key.

mod common;

use std::time::Duration;

use common::{Proc, cluster_job, coordinator, json, run, token_file, worker};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// Trains the demo (5 epochs) with `scheme` in two `strom worker` processes; returns the
/// summary and the metrics lines.
fn two_processes(scheme: &str, extra: &[&str]) -> (serde_json::Value, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let metrics = dir.path().join("m.jsonl");
    let model = dir.path().join("m");
    let mut args = vec![
        "train",
        "--launcher",
        "local",
        "--workers",
        "2",
        "--sharing",
        scheme,
        "--output",
        model.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--metrics-out",
        metrics.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut train = Proc::spawn(&args.iter().map(|s| &**s).collect::<Vec<_>>());
    let status = train
        .wait_exit(Duration::from_secs(240))
        .unwrap_or_else(|| panic!("{scheme}: train did not finish:\n{}", train.output()));
    assert!(status.success(), "{scheme}: {}", train.output());
    let lines = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "step")
        .collect();
    (json(&summary), lines)
}

#[test]
fn every_scheme_trains_the_demo_in_two_worker_processes() {
    // threshold: 0.80 at >= 100x (cluster.rs). Each scheme here reaches the same accuracy.
    let (s, steps) = two_processes("topk", &[]);
    let acc = s["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.80, "topk: {s}");
    // 5 demo epochs are mostly warm-up (25 % of the entries falling to 0.1 % over 4 epochs).
    assert!(s["compression_ratio"].as_f64().unwrap() >= 5.0, "topk: {s}");
    let last = steps.iter().rev().find(|v| v["worker"] == 0).unwrap();
    let k = last["k"].as_u64().unwrap();
    assert!(k > 0 && k <= 235_146 / 1000 + 1, "warmed up to 0.1 %: k {k}");
    assert!(steps.iter().any(|v| v["k"].as_u64().unwrap() > 50_000), "the warm-up starts at 25 %");

    let (s, steps) = two_processes("powersgd", &[]);
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.80, "powersgd: {s}");
    let ratio = s["compression_ratio"].as_f64().unwrap();
    // 100 dense warm-up steps of about 390, then rank 2: about 3.7x overall.
    assert!(ratio > 2.5, "powersgd: {s}");
    assert!(
        steps.iter().any(|v| v["rank"] == 0) && steps.iter().any(|v| v["rank"] == 2),
        "warm-up, then rank 2"
    );
    let compressed = steps.iter().rev().find(|v| v["rank"] == 2).unwrap()["step_bytes"].as_u64().unwrap();
    assert!(compressed < 235_146 * 4 / 50, "a compressed step sends {compressed} bytes");

    let (s, steps) = two_processes("dense16", &[]);
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.80, "dense16: {s}");
    let ratio = s["compression_ratio"].as_f64().unwrap();
    assert!((1.9..=2.0).contains(&ratio), "f16 is half of f32: {ratio}");
    assert!(s["replica_drift"].as_f64().unwrap() < 1e-3, "lockstep replicas stay together: {s}");
    assert!(steps.iter().all(|v| v["sparsity"] == 1.0));

    // Threshold on gradients, one Adam on the workers' sum, in two processes.
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("gradient.toml");
    std::fs::write(&job, "[sharing]\nshare = \"gradient\"\n").unwrap();
    let (s, steps) = two_processes("threshold", &["--config", job.to_str().unwrap(), "--updater", "adam"]);
    // Asynchronous: the accuracy moves with how the two processes' steps interleave. Seven runs
    // on 2026-12-07: 0.7865-0.8085 with 377-410 steps each, 0.7795 under CI load (465 and 320).
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.77, "threshold on gradients + adam: {s}");
    assert!(s["compression_ratio"].as_f64().unwrap() >= 300.0, "threshold on gradients + adam: {s}");
    let late = &steps[steps.len() - 1];
    let sparsity = late["sparsity"].as_f64().unwrap();
    assert!(sparsity <= 0.0625, "the last step is still inside the band's reach: {late}");
}

#[test]
fn a_dense16_job_goes_on_when_a_worker_dies_mid_collective() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), TOKEN);
    let job = cluster_job(dir.path(), 6, "");
    let text = std::fs::read_to_string(&job).unwrap().replace("mode = \"threshold\"", "mode = \"dense16\"");
    std::fs::write(&job, text.replace("workers = 2", "workers = 3")).unwrap();
    let summary = dir.path().join("s.json");
    let coordinator = coordinator(dir.path(), "127.0.0.1:0", &token, &job, &summary, &[]);
    let url = coordinator.coordinator_url();
    let mut workers: Vec<Proc> = (0..3).map(|_| worker(&url, &token, &[])).collect();
    coordinator
        .wait_for("epoch 2 done", Duration::from_secs(120))
        .unwrap_or_else(|| panic!("no progress:\n{}", coordinator.output()));
    // Every step is a collective: the worker dies with a round open or about to be.
    workers[0].kill9();
    let mut coordinator = coordinator;
    let status = coordinator.wait_exit(Duration::from_secs(180)).expect("the job completes");
    assert!(status.success(), "{}", coordinator.output());
    let s = json(&summary);
    assert_eq!(s["workers_lost"], 1, "{s}");
    assert_eq!(s["epochs"], 6);
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.80, "{s}");
    for w in &mut workers[1..] {
        assert!(w.wait_exit(Duration::from_secs(30)).expect("worker exits").success(), "{}", w.output());
    }
}

#[test]
fn unknown_schemes_and_bad_knobs_are_refused_naming_the_key() {
    let (ok, _, err) = run(&["train", "--workers", "2", "--sharing", "topkk"]);
    assert!(!ok);
    assert!(err.contains("topkk") && err.contains("topk"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    for (toml, key) in [
        ("[sharing]\nmode = \"powersgd\"\npowersgd = { rank = 0 }\n", "sharing.powersgd.rank"),
        ("[sharing]\nmode = \"topk\"\ntopk = { density = 1.5 }\n", "sharing.topk.density"),
        ("[sharing]\nmode = \"topk\"\ntopk = { density = 0.0 }\n", "sharing.topk.density"),
        ("[sharing]\nmode = \"dense16\"\nprecision = \"f8\"\n", "precision"),
        ("[sharing]\nmode = \"tree\"\n", "sharing.mode"),
        ("[sharing]\nmode = \"topk\"\ntopk = { clip_norm = -1.0 }\n", "sharing.topk.clip_norm"),
    ] {
        let job = dir.path().join("j.toml");
        std::fs::write(&job, format!("{toml}[cluster]\nworkers = 2\n")).unwrap();
        let (ok, _, err) = run(&["train", "--config", job.to_str().unwrap(), "--epochs", "1"]);
        assert!(!ok, "{toml} was accepted");
        assert!(err.contains(key), "{toml}: the error names {key}:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
