//! Gradient sharing through `strom train --workers N` (in-process workers).

mod common;

use std::collections::BTreeSet;

use common::{json, run};

#[test]
fn four_workers_threshold_reach_the_demo_target_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let metrics = dir.path().join("m.jsonl");
    let (ok, _, stderr) = run(&[
        "train",
        "--workers",
        "4",
        "--sharing",
        "threshold",
        "--output",
        dir.path().join("m").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--metrics-out",
        metrics.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let s = json(&summary);
    let acc = s["test_accuracy"].as_f64().unwrap();
    let ratio = s["compression_ratio"].as_f64().unwrap();
    assert!(acc >= 0.80, "accuracy {acc}");
    assert!(ratio >= 100.0, "compression {ratio}");
    let (sent, dense) = (s["bytes_sent"].as_f64().unwrap(), s["dense_bytes"].as_f64().unwrap());
    assert!((dense / sent - ratio).abs() < 1e-6 * ratio);
    let sparsity = s["mean_sparsity"].as_f64().unwrap();
    assert!(sparsity > 0.0 && sparsity < 0.0625, "{sparsity}");
    assert!(s["final_tau"].as_f64().unwrap() > 0.0);
    assert!(s["replica_drift"].as_f64().unwrap() < 0.1, "replicas stay together");

    // Per-step metrics: every worker reports every required field.
    let text = std::fs::read_to_string(&metrics).unwrap();
    let mut workers = BTreeSet::new();
    let mut epochs = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["type"].as_str().unwrap() {
            "step" => {
                workers.insert(v["worker"].as_u64().unwrap());
                for key in [
                    "samples_per_sec",
                    "sparsity",
                    "tau",
                    "residual_norm",
                    "bytes_sent",
                    "bytes_received",
                    "pending",
                    "loss",
                ] {
                    assert!(v.get(key).is_some(), "{key} missing in {line}");
                }
                assert!(v["tau"].as_f64().unwrap() > 0.0);
            }
            "epoch" => {
                epochs += 1;
                assert!(v["replica_drift"].as_f64().is_some());
            }
            other => panic!("unknown line type {other}"),
        }
    }
    assert_eq!(workers, (0..4).collect());
    assert_eq!(epochs, 5);
}

#[test]
fn averaging_and_single_worker_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("a.json");
    let (ok, _, stderr) = run(&[
        "train",
        "--workers",
        "2",
        "--sharing",
        "averaging",
        "--averaging-frequency",
        "5",
        "--output",
        dir.path().join("a").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let s = json(&summary);
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.80);
    // Dense parameters every 5 steps: one fifth of dense per-step exchange, up to rounding
    // of the partial rounds at epoch ends.
    let ratio = s["compression_ratio"].as_f64().unwrap();
    assert!((4.5..=5.5).contains(&ratio), "averaging ratio {ratio}");
    assert!(s["replica_drift"].as_f64().unwrap() < 0.05);
}
