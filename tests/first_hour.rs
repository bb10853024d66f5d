//! A newcomer's first hour through the binary: job files that mean what they say, CSV headers
//! decided one way everywhere, a worker whose data differs from the plan, a plain worker at a
//! TLS coordinator, and one clear line per event.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Proc, path, run, token_file};

const TOKEN: &str = "first-hour-token-0123456789abcdef";

/// Runs the binary in `cwd`.
fn run_in(cwd: &Path, args: &[&str]) -> (bool, String, String) {
    common::outcome(common::strom().current_dir(cwd).args(args))
}

#[test]
fn a_job_files_relative_paths_are_taken_from_its_folder() {
    let elsewhere = tempfile::tempdir().unwrap();
    let wine = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/jobs/wine.toml");
    let out = elsewhere.path().join("m");
    let (ok, stdout, stderr) =
        run_in(elsewhere.path(), &["train", "--config", wine, "--epochs", "2", "--output", path(&out)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Test evaluation"), "the held-out rows are evaluated: {stdout}");
    assert!(out.join("model.json").exists());
    // A flag stays relative to the working directory.
    let (ok, _, stderr) = run_in(
        elsewhere.path(),
        &["train", "--config", wine, "--train", "assets/wine/wine_data.csv", "--epochs", "1"],
    );
    assert!(!ok);
    assert!(stderr.contains("assets/wine/wine_data.csv") && stderr.contains("not found"), "{stderr}");
}

#[test]
fn data_train_without_data_test_evaluates_on_no_demo_set() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("own.toml");
    // The demo's training images stand for "my data": the demo's test set must not be used.
    std::fs::write(
        &job,
        "name = \"own\"\n[data]\ntrain = \"builtin:fashion-mnist-demo/train\"\n[model]\nhidden = [16]\n[train]\nepochs = 1\n",
    )
    .unwrap();
    let summary = dir.path().join("s.json");
    let out = dir.path().join("m");
    let (ok, stdout, stderr) =
        run(&["train", "--config", path(&job), "--output", path(&out), "--summary-json", path(&summary)]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("Test evaluation"), "{stdout}");
    assert!(common::json(&summary)["test_accuracy"].is_null());
    let (ok, stdout, _) = run(&["train", "--config", path(&job), "--print-job"]);
    assert!(ok);
    assert!(stdout.contains("test = \"\""), "{stdout}");
}

#[test]
fn csv_headers_are_decided_from_the_first_row_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, "1.0,2.0,0\n3.0,4.5,1\n5.0,6.0,0\n").unwrap();
    let (ok, stdout, stderr) = run(&["analyze", path(&plain)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("3 rows"), "no row is eaten as a header: {stdout}");
    assert!(!stdout.contains("header"), "{stdout}");
    let named = dir.path().join("named.csv");
    std::fs::write(&named, "x,y,label\n1.0,2.0,0\n3.0,4.5,1\n").unwrap();
    let (ok, stdout, stderr) = run(&["analyze", path(&named)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("2 rows"), "{stdout}");
    assert!(stdout.contains("read as a header") && stdout.contains("x, y, label"), "{stdout}");
    // --header forces it; --no-header reads the first row as data.
    let (ok, stdout, _) = run(&["analyze", path(&plain), "--header"]);
    assert!(ok && stdout.contains("2 rows"), "{stdout}");
    // transform: every one of 178 headerless wine rows goes in.
    let wine = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/wine/wine_data.csv");
    let process = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/transforms/wine.json");
    let out = dir.path().join("wine-out.csv");
    let (ok, stdout, stderr) = run(&[
        "transform",
        "--process",
        process,
        "--input",
        wine,
        "--skip-lines",
        "1",
        "--output",
        path(&out),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("178 rows in"), "{stdout}");
}

/// A CSV job of `rows` rows (two features, a 0/1 label), workers joining by themselves.
fn csv_data(file: &Path, rows: usize) {
    let mut text = String::from("a,b,y\n");
    for i in 0..rows {
        let x = (i % 97) as f32 / 97.0;
        text.push_str(&format!("{x},{},{}\n", 1.0 - x, (x > 0.5) as u8));
    }
    std::fs::write(file, text).unwrap();
}

#[test]
fn a_worker_whose_data_differs_from_the_plan_is_refused_and_the_job_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rows.csv");
    csv_data(&data, 2000);
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "name = \"plan\"\n[data]\ntrain = \"rows.csv\"\nformat = \"csv\"\nlabel = \"y\"\n[model]\nhidden = [8]\n\
         [train]\nepochs = 1\n[cluster]\nlauncher = \"none\"\nworkers = 1\nreconnect_secs = 120\n",
    )
    .unwrap();
    let token = token_file(dir.path(), TOKEN);
    let out = dir.path().join("m");
    let mut coordinator = Proc::coordinator(path(&job), &token, &out, &[]);
    let url = coordinator.coordinator_url();
    // The file changes under the coordinator's plan: fewer rows, then more.
    for rows in [300, 2500] {
        csv_data(&data, rows);
        let t0 = Instant::now();
        let mut w = Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token]);
        let status = w.wait_exit(Duration::from_secs(60)).expect("the refused worker exits");
        assert!(!status.success(), "{}", w.output());
        assert!(t0.elapsed() < Duration::from_secs(45));
        let text = w.output();
        assert!(
            text.contains(&format!("has {rows} training rows")) && text.contains("planned 2000"),
            "both counts named: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }
    let log = coordinator.output();
    assert!(log.contains("refused"), "{log}");
    assert!(coordinator.wait_exit(Duration::from_millis(100)).is_none(), "the job goes on:\n{log}");
    // The right data: a worker joins and the job finishes.
    csv_data(&data, 2000);
    let mut w = Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token]);
    assert!(w.wait_exit(Duration::from_secs(120)).expect("the worker finishes").success(), "{}", w.output());
    let status = coordinator.wait_exit(Duration::from_secs(60)).expect("the coordinator ends with the job");
    assert!(status.success(), "{}", coordinator.output());
    assert!(out.join("model.json").exists());
}

#[test]
fn a_plain_worker_at_a_tls_coordinator_is_told_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), TOKEN);
    let job = common::cluster_job(dir.path(), 1, "");
    let coordinator =
        Proc::spawn(&["coordinator", "--listen", "0.0.0.0:0", "--token-file", &token, "--job", &job]);
    let url = coordinator.coordinator_url();
    let pin = coordinator.tls_pin();
    assert!(url.starts_with("https://"), "{url}");
    let plain = url.replacen("https://", "http://", 1);
    let t0 = Instant::now();
    let mut w = Proc::spawn(&["worker", "--coordinator", &plain, "--token-file", &token]);
    let status = w.wait_exit(Duration::from_secs(60)).expect("the worker gives up at once");
    assert!(!status.success());
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "told at once, not after the 300 s of retries: {:?}\n{}",
        t0.elapsed(),
        w.output()
    );
    let text = w.output();
    assert!(text.contains("serves TLS") && text.contains("https://") && text.contains("--tls-pin"), "{text}");
    // Printed once: the address and the pin.
    let log = coordinator.output();
    assert_eq!(log.matches("listening on").count(), 1, "{log}");
    assert!(log.matches(&pin).count() >= 1);
}

#[test]
fn errors_say_one_thing_once() {
    let (ok, _, stderr) = run(&["train", "--config", "nope.toml"]);
    assert!(!ok);
    assert_eq!(stderr.matches("nope.toml").count(), 1, "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
    // A negative learning rate reaches the range check.
    let (ok, _, stderr) = run(&["train", "--lr", "-0.1"]);
    assert!(!ok);
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
    assert!(stderr.contains("train.updater.lr") || stderr.contains("--lr"), "{stderr}");
    // A word where a number belongs.
    let (ok, _, stderr) = run(&["train", "--epochs", "ten"]);
    assert!(!ok);
    assert!(stderr.contains("a whole number"), "{stderr}");
}

#[test]
fn a_job_file_value_of_the_wrong_type_is_said_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("j.toml");
    std::fs::write(&job, "[train]\nepochs = \"ten\"\n").unwrap();
    let (ok, _, stderr) = run(&["train", "--config", path(&job)]);
    assert!(!ok);
    assert!(stderr.contains("train.epochs") && stderr.contains("a whole number"), "{stderr}");
    assert!(!stderr.contains("u32"), "{stderr}");
}

#[test]
fn analyze_names_malformed_rows_and_fails_when_every_row_is() {
    let dir = tempfile::tempdir().unwrap();
    let some = dir.path().join("some.csv");
    std::fs::write(&some, "a,b,y\n1,2,0\n3,4\n5,6,1,9\n7,8,1\n").unwrap();
    let (ok, stdout, stderr) = run(&["analyze", path(&some)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("some.csv:3: 2 fields, expected 3"), "{stdout}");
    assert!(stdout.contains("some.csv:4: 4 fields, expected 3"), "{stdout}");
    // A 0/1 column is an integer (a label), not a boolean.
    let y = stdout.lines().find(|l| l.starts_with("y ")).unwrap_or_default();
    assert!(y.contains("integer"), "{stdout}");
    let all = dir.path().join("all.csv");
    std::fs::write(&all, "a,b\n1,2,3\n4\n").unwrap();
    let (ok, _, stderr) = run(&["analyze", path(&all)]);
    assert!(!ok, "every row malformed is an error");
    assert!(stderr.contains("every one of the 2 rows") && stderr.contains("all.csv:2"), "{stderr}");
}

#[test]
fn eval_names_the_classes_the_model_learnt() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    let (ok, _, stderr) = run(&["train", "--epochs", "1", "--hidden", "16", "--output", path(&model)]);
    assert!(ok, "{stderr}");
    // Test files of ids only (no names): the model's names are shown.
    let images: Vec<u8> = (0..20 * 28 * 28).map(|i| (i % 251) as u8).collect();
    let labels: Vec<u8> = (0..20).map(|i| (i % 10) as u8).collect();
    common::write_idx_pair(dir.path(), "t", &images, 20, 28, &labels);
    let prefix = dir.path().join("t");
    let (ok, stdout, stderr) = run(&["eval", "--model", path(&model), "--test", path(&prefix)]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("T-shirt/top") && stdout.contains("Ankle boot"), "{stdout}");
}

#[test]
fn help_describes_every_flag_and_keeps_examples_whole() {
    let (_, attach, _) = run(&["attach", "--help"]);
    assert!(attach.contains("How often the view refreshes") && attach.contains("Let the mouse"), "{attach}");
    let (_, train, _) = run(&["train", "--help"]);
    let global = train.find("Global options:").unwrap_or_else(|| panic!("{train}"));
    assert!(train.find("--log-format").unwrap() > global, "--log-format under Global options: {train}");
    let (_, analyze, _) = run(&["analyze", "--help"]);
    assert!(analyze.contains("--no-header \\\n      --schema"), "{analyze}");
    let (_, submit, _) = run(&["submit", "transform", "--help"]);
    assert!(!submit.contains("the job's cluster.spark.master, else"), "{submit}");
    let (_, worker, _) = run(&["worker", "--help"]);
    assert!(worker.contains("https://head-node:7878") && worker.contains("--tls-pin"), "{worker}");
}

/// Runs the binary with info logs; returns (success, stdout, stderr).
fn run_logged(args: &[&str]) -> (bool, String, String) {
    common::outcome(common::strom().env("RUST_LOG", "info").args(args))
}

#[test]
fn one_line_per_event_and_epochs_counted_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let (m, metrics) = (dir.path().join("m"), dir.path().join("metrics.jsonl"));
    let (ok, _, stderr) = run_logged(&[
        "train",
        "--launcher",
        "local",
        "--workers",
        "1",
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--output",
        path(&m),
        "--metrics-out",
        path(&metrics),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stderr.matches("epoch 1/2:").count(), 1, "the epoch once: {stderr}");
    assert!(!stderr.contains("epoch 1 done"), "{stderr}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let epochs: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "epoch")
        .filter_map(|v| v["epoch"].as_u64())
        .collect();
    assert_eq!(epochs, [1, 2], "as in the logs: {text}");
    // A resumed run says which epochs it trains.
    let (ok, _, stderr) = run_logged(&[
        "train",
        "--resume",
        path(&m),
        "--launcher",
        "embedded",
        "--epochs",
        "4",
        "--output",
        path(&m),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("epochs 3..4 of 4"), "{stderr}");
    // An unresolvable HDFS host: the reason in words, no Debug dump of hdfs-native's error.
    let (ok, _, stderr) = run_logged(&["analyze", "hdfs://no-such-host.invalid:9000/x.csv"]);
    assert!(!ok);
    assert!(!stderr.contains("IOError(") && !stderr.contains("Custom {"), "{stderr}");
    assert!(stderr.contains("no-such-host.invalid"), "{stderr}");
}

#[test]
fn a_refused_worker_says_who_refused_whom_once() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), TOKEN);
    let wrong = token_file(dir.path(), "a-wrong-token-of-another-length");
    let job = common::cluster_job(dir.path(), 1, "");
    let coordinator =
        Proc::spawn(&["coordinator", "--listen", "0.0.0.0:0", "--token-file", &token, "--job", &job]);
    let url = coordinator.coordinator_url();
    let pin = coordinator.tls_pin();
    let mut w = Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &wrong, "--tls-pin", &pin]);
    assert!(!w.wait_exit(Duration::from_secs(30)).expect("refused at once").success());
    let said = w.output();
    assert_eq!(said.matches("the coordinator refused this worker").count(), 1, "{said}");
    assert_eq!(said.matches("check --token-file").count(), 1, "{said}");
    let other = format!("sha256:{}", "ab".repeat(32));
    let mut w = Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token, "--tls-pin", &other]);
    assert!(!w.wait_exit(Duration::from_secs(30)).expect("refused at once").success());
    let said = w.output();
    assert_eq!(said.matches("this worker refused the coordinator's TLS certificate").count(), 1, "{said}");
    assert_eq!(said.matches("not the pinned").count(), 1, "{said}");
    assert!(!said.contains("the coordinator refused"), "the worker refused, not the coordinator: {said}");
}

#[test]
fn a_failed_runs_checkpoint_is_not_resumed_silently() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "name = \"fails\"\n[train]\nepochs = 200\n[cluster]\nlauncher = \"none\"\nworkers = 1\n\
         heartbeat_timeout_secs = 2\nreconnect_secs = 3\ncheckpoint_every = 20\n",
    )
    .unwrap();
    let token = token_file(dir.path(), TOKEN);
    let ckpt = dir.path().join("ckpt");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "coordinator".to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--token-file".into(),
            token.clone(),
            "--job".into(),
            path(&job).into(),
            "--checkpoint-dir".into(),
            path(&ckpt).into(),
            "--output".into(),
            path(&dir.path().join("m")).into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let spawn = |extra: &[&'static str]| {
        let a = args(extra);
        Proc::spawn(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // A run fails: its only worker is killed and none comes back within reconnect_secs.
    let mut coordinator = spawn(&[]);
    let url = coordinator.coordinator_url();
    let mut worker = Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ckpt.join("checkpoint.json").exists() {
        assert!(Instant::now() < deadline, "{}", coordinator.output());
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.kill9();
    let status = coordinator.wait_exit(Duration::from_secs(60)).expect("the job fails");
    assert!(!status.success(), "{}", coordinator.output());
    // The next coordinator on that folder says so and stops, instead of resuming.
    let a = args(&[]);
    let t0 = Instant::now();
    let (ok, _, stderr) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok && t0.elapsed() < Duration::from_secs(30), "{stderr}");
    assert!(
        stderr.contains("failed") && stderr.contains("no live worker") && stderr.contains("--resume-failed"),
        "{stderr}"
    );
    // Asked to, it resumes.
    let mut again = spawn(&["--resume-failed"]);
    again
        .wait_for("resuming a run that failed", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{}", again.output()));
    again.kill9();
}

#[test]
fn the_printed_worker_command_works_as_is_and_training_waits_for_the_stated_workers() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), TOKEN);
    let job = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/jobs/cluster.toml");
    let out = dir.path().join("m");
    let mut coordinator = Proc::spawn(&[
        "coordinator",
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        &token,
        "--job",
        job,
        "--output",
        path(&out),
    ]);
    let line = coordinator
        .wait_for("workers join with: ", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{}", coordinator.output()));
    let command = line.split("workers join with: ").nth(1).unwrap().trim().to_string();
    // Another host's view: the host's name (not loopback), the pin and the token file.
    let host = strom::cluster::worker::host_name();
    assert!(command.contains(&format!("https://{host}:")), "{command}");
    assert!(
        command.contains("--tls-pin sha256:") && command.contains(&format!("--token-file {token}")),
        "{command}"
    );
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..2], ["strom", "worker"], "{command}");
    let worker = || Proc::spawn(&words[1..]);
    // One worker of the two the job states: it joins and waits, and the log says why.
    let mut first = worker();
    coordinator
        .wait_for("1 of 2 workers have joined", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("{}", coordinator.output()));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!coordinator.output().contains("epoch 1 done"), "{}", coordinator.output());
    // The second: training starts and the job finishes.
    let mut second = worker();
    coordinator
        .wait_for("2 workers have joined: training starts", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("{}", coordinator.output()));
    for w in [&mut first, &mut second] {
        assert!(
            w.wait_exit(Duration::from_secs(180)).expect("the worker finishes").success(),
            "{}",
            w.output()
        );
    }
    let status = coordinator.wait_exit(Duration::from_secs(60)).expect("the job ends");
    assert!(status.success(), "{}", coordinator.output());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["workers"], 2, "{summary}");
}
