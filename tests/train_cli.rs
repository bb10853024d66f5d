//! `strom train` and `strom eval` end to end on the built-in demo data.

mod common;

use common::{json, run};

#[test]
fn demo_trains_saves_evaluates_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let summary = dir.path().join("summary.json");
    let (ok, stdout, stderr) =
        run(&["train", "--output", out.to_str().unwrap(), "--summary-json", summary.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("looks diverged"), "a healthy run is not flagged: {stderr}");
    let s = json(&summary);
    let acc = s["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.80, "demo accuracy {acc}");
    assert!(s["per_epoch"].as_array().unwrap().iter().all(|e| e["divergence"].is_null()));
    assert_eq!(s["epochs"], 5);
    assert_eq!(s["parameters"], 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    for key in ["steps", "train_seconds", "samples_per_sec"] {
        assert!(s[key].as_f64().unwrap() > 0.0, "{key}");
    }
    // Per-class report and confusion matrix in the JSON and on stdout.
    assert_eq!(s["evaluation"]["per_class"].as_array().unwrap().len(), 10);
    assert_eq!(s["evaluation"]["confusion"].as_array().unwrap().len(), 10);
    assert!(stdout.contains("confusion matrix") && stdout.contains("Ankle boot"), "{stdout}");
    for f in ["model.json", "model.safetensors", "optimizer.safetensors", "summary.json"] {
        assert!(out.join(f).exists(), "{f} missing");
    }

    // Evaluating the saved model gives the accuracy training reported.
    let eval_json = dir.path().join("eval.json");
    let (ok, stdout, stderr) =
        run(&["eval", "--model", out.to_str().unwrap(), "--summary-json", eval_json.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("precision"), "{stdout}");
    assert_eq!(json(&eval_json)["test_accuracy"].as_f64().unwrap(), acc);

    // Resume: two more epochs on top of the five, starting from the saved state.
    let resumed = dir.path().join("resumed");
    let rs = dir.path().join("resumed.json");
    let (ok, _, stderr) = run(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--epochs",
        "7",
        "--output",
        resumed.to_str().unwrap(),
        "--summary-json",
        rs.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let r = json(&rs);
    assert_eq!(r["epochs"], 7);
    assert_eq!(r["per_epoch"].as_array().unwrap().len(), 2, "only the two new epochs ran");
    assert_eq!(r["per_epoch"][0]["epoch"], 6, "epochs count from 1");
    assert!(r["test_accuracy"].as_f64().unwrap() >= 0.80);
    let (ok, _, stderr) = run(&["train", "--resume", resumed.to_str().unwrap(), "--epochs", "7"]);
    assert!(!ok && stderr.contains("already has 7 epochs"), "{stderr}");
}

/// A synchronous scheme at a rate the model does not survive, without a NaN (Adam's steps are
/// bounded): the run finishes, and each epoch that looks diverged is named on stderr with the
/// rate as set and as applied, and in the summary.
#[test]
fn a_diverging_run_is_flagged_with_the_rate_it_applies() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let (ok, _, stderr) = run(&[
        "train",
        "--sharing",
        "dense16",
        "--workers",
        "2",
        "--updater",
        "adam",
        "--lr",
        "0.5",
        "--epochs",
        "2",
        "--output",
        dir.path().join("m").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert!(ok, "a warning, not a failure: {stderr}");
    assert!(stderr.contains("epoch 1: the run looks diverged: its"), "{stderr}");
    assert!(
        stderr.contains(
            "train.updater.lr, now 0.5; `dense16` runs one updater on the mean gradient of 2 workers at 1.4142x it, 0.7071"
        ),
        "{stderr}"
    );
    let first = &json(&summary)["per_epoch"][0];
    assert!(
        first["divergence"].as_str().is_some_and(|d| d.contains("above") || d.contains("worse")),
        "{first}"
    );
}

#[test]
fn same_seed_same_model_single_worker() {
    let dir = tempfile::tempdir().unwrap();
    let mut accs = Vec::new();
    for name in ["a", "b"] {
        let summary = dir.path().join(format!("{name}.json"));
        let (ok, _, stderr) = run(&[
            "train",
            "--epochs",
            "1",
            "--dropout",
            "0.2",
            "--seed",
            "7",
            "--output",
            dir.path().join(name).to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
        accs.push(json(&summary)["evaluation"].clone());
    }
    assert_eq!(accs[0], accs[1], "training is deterministic given a seed");
    let a = std::fs::read(dir.path().join("a/model.safetensors")).unwrap();
    let b = std::fs::read(dir.path().join("b/model.safetensors")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn job_file_flags_override_and_print_job() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "name = \"x\"\n[train]\nepochs = 3\nbatch_size = 32\n[model]\nhidden = [16]\n")
        .unwrap();
    let (ok, stdout, stderr) =
        run(&["train", "--config", job.to_str().unwrap(), "--epochs", "2", "--print-job"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("epochs = 2"), "flag overrides the file: {stdout}");
    assert!(stdout.contains("batch_size = 32"), "file keys stay: {stdout}");
    assert!(stdout.contains("hidden = [16]"), "{stdout}");
}

#[test]
fn help_explains_the_commands() {
    let (ok, stdout, _) = run(&["--help"]);
    assert!(ok);
    assert!(stdout.contains("train") && stdout.contains("eval"));
    let (ok, stdout, _) = run(&["train", "--help"]);
    assert!(ok);
    for flag in [
        "--train",
        "--test",
        "--hidden",
        "--updater",
        "--lr",
        "--l2",
        "--seed",
        "--config",
        "--summary-json",
        "--resume",
        "--workers",
        "--sharing",
        "--metrics-out",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from train --help");
    }
}
