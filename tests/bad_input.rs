//! Bad input: a clear error naming the file or key, a non-zero exit, no panic, no model left.

mod common;

use common::{run, write_idx_pair};

fn assert_fails(args: &[&str], expect: &[&str]) -> String {
    let (ok, _, stderr) = run(args);
    assert!(!ok, "expected failure for {args:?}");
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "expected '{e}' for {args:?} in: {stderr}");
    }
    stderr
}

#[test]
fn missing_paths_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_fails(
        &["train", "--train", "/no/such/data/train", "--output", out.to_str().unwrap()],
        &["/no/such/data/train", "no IDX data"],
    );
    assert!(!out.exists(), "no output directory for a failed run");
    assert_fails(&["eval", "--model", "/no/such/model"], &["/no/such/model", "not a model directory"]);
    assert_fails(&["train", "--config", "/no/such/job.toml"], &["/no/such/job.toml", "not found"]);
    assert_fails(&["train", "--train", "s3://bucket/x"], &["unsupported scheme 's3'"]);
}

#[test]
fn corrupt_idx_files_are_named_with_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let o = out.to_str().unwrap();
    // Wrong magic.
    std::fs::write(d.join("a-images-idx3-ubyte"), b"\x12\x34\x08\x03garbage").unwrap();
    std::fs::write(d.join("a-labels-idx1-ubyte"), common::idx(&[1], &[0])).unwrap();
    let a = d.join("a");
    assert_fails(
        &["train", "--train", a.to_str().unwrap(), "--test", "", "--output", o],
        &["a-images-idx3-ubyte", "wrong magic number"],
    );
    // Short file.
    std::fs::write(d.join("b-images-idx3-ubyte"), common::idx(&[4, 2, 2], &[1, 2, 3])).unwrap();
    std::fs::write(d.join("b-labels-idx1-ubyte"), common::idx(&[4], &[0, 1, 0, 1])).unwrap();
    let b = d.join("b");
    assert_fails(
        &["train", "--train", b.to_str().unwrap(), "--test", "", "--output", o],
        &["b-images-idx3-ubyte", "truncated", "need 16 data bytes, found 3"],
    );
    // Count mismatch.
    write_idx_pair(d, "c", &[0; 12], 3, 2, &[0, 1]);
    let c = d.join("c");
    assert_fails(
        &["train", "--train", c.to_str().unwrap(), "--test", "", "--output", o],
        &["has 3 images but", "has 2 labels"],
    );
    // Bad gzip.
    std::fs::write(d.join("g-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3, 4]).unwrap();
    std::fs::write(d.join("g-labels-idx1-ubyte"), common::idx(&[1], &[0])).unwrap();
    let g = d.join("g");
    assert_fails(
        &["train", "--train", g.to_str().unwrap(), "--test", "", "--output", o],
        &["g-images-idx3-ubyte.gz", "bad gzip data"],
    );
    assert!(!out.exists());
}

#[test]
fn invalid_job_keys_and_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "[train]\nepocs = 3\n").unwrap();
    assert_fails(
        &["train", "--config", job.to_str().unwrap()],
        &["job.toml", "line 2", "`train.epocs`", "did you mean 'epochs'"],
    );
    std::fs::write(&job, "[train]\nbatch_size = -4\n").unwrap();
    assert_fails(&["train", "--config", job.to_str().unwrap()], &["`train.batch_size`"]);
    // A file's values are checked once, with the flags on top; a problem names the file.
    std::fs::write(&job, "[train]\nepochs = 0\n").unwrap();
    assert_fails(&["train", "--config", job.to_str().unwrap()], &["job.toml: invalid job", "`train.epochs`"]);
    let (ok, stdout, stderr) =
        run(&["train", "--config", job.to_str().unwrap(), "--epochs", "2", "--print-job"]);
    assert!(ok && stdout.contains("epochs = 2"), "{stderr}");
    assert_fails(&["train", "--epochs", "0"], &["`train.epochs`", "got 0"]);
    assert_fails(&["train", "--lr", "NaN"], &["`train.updater.lr`"]);
    assert_fails(&["train", "--updater", "adamw"], &["'adamw' is not one of"]);
    assert_fails(&["train", "--workers", "3", "--sharing", "none"], &["`sharing.mode`"]);
}

#[test]
fn nan_loss_stops_with_advice_and_writes_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_fails(
        &[
            "train",
            "--loss",
            "mse",
            "--activation",
            "tanh",
            "--updater",
            "sgd",
            "--lr",
            "10",
            "--epochs",
            "2",
            "--output",
            out.to_str().unwrap(),
        ],
        &["training diverged", "lower the learning rate"],
    );
    assert!(!out.join("model.json").exists(), "no model from a diverged run");
}

#[test]
fn a_cuda_backend_that_cannot_run_says_why_or_falls_back_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    // Built without the feature (the default), or with it on a machine without CUDA: either
    // way a clear reason, a non-zero exit and no model.
    let stderr = assert_fails(&["train", "--device", "cuda:0", "--epochs", "1", "--output", o], &["cuda"]);
    assert!(
        stderr.contains("backend 'cuda' is not in this build") || stderr.contains("no usable CUDA device"),
        "{stderr}"
    );
    assert!(!out.exists());
    assert_fails(&["train", "--device", "gpu7"], &["'gpu7' is not a device; expected cpu, cuda or cuda:N"]);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "[train]\nepochs = 1\n[cluster]\nbackend = \"cuda\"\ncpu_fallback = true\n")
        .unwrap();
    let (ok, _, stderr) = run(&["train", "--config", job.to_str().unwrap(), "--output", o]);
    if !cfg!(feature = "cuda") || !stderr.contains("cuda:") {
        assert!(ok, "{stderr}");
        assert!(stderr.contains("training on the CPU (compute.cpu_fallback = true)"), "{stderr}");
        // The file gives the keys where older versions took them: read, with a warning.
        assert!(stderr.contains("`cluster.cpu_fallback` is now `compute.cpu_fallback`"), "{stderr}");
    }
}
