//! `strom submit` on real Spark (pyspark in local mode). `.ci/test` installs pyspark into
//! `.venv-spark`; elsewhere set STROM_SPARK_SUBMIT or put spark-submit on PATH. Without
//! Spark, outside CI, the tests say so and skip.

mod common;

use std::path::Path;
use std::process::Output;

use common::{json, spark_submit};

fn submit(spark: &Path, args: &[&str]) -> Output {
    // `strom submit transform --spark-submit ..`: the subcommand comes first.
    let (sub, rest) = match args.first() {
        Some(&"transform") => (&args[..1], &args[1..]),
        _ => (&args[..0], args),
    };
    common::strom().arg("submit").args(sub).arg("--spark-submit").arg(spark).args(rest).output().unwrap()
}

#[test]
fn the_demo_trains_in_spark_barrier_tasks_to_the_target_and_failures_exit_non_zero() {
    let Some(spark) = spark_submit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let demo_job = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/jobs/demo.toml");
    let out = submit(
        &spark,
        &[
            "--master",
            "local[2]",
            "--workers",
            "2",
            "--output",
            dir.path().join("model").to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
            demo_job,
        ],
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    // The driver's coordinator listens beyond loopback: TLS with a certificate it made, pinned
    // by the worker tasks; the cockpit is pointed at the address the workers use.
    let hint = stdout.lines().find(|l| l.contains("attach with:")).unwrap_or_else(|| panic!("{stdout}"));
    let at = hint.split_whitespace().skip_while(|w| *w != "at").nth(1).unwrap().trim_end_matches(';');
    assert!(hint.contains(&format!("strom attach {at} ")) && at.starts_with("https://"), "{hint}");
    assert!(hint.contains("--tls-pin sha256:"), "{hint}");
    // The coordinator's log goes to stderr (Spark would fold it into stdout), with a warning
    // that names a flag submit has.
    assert!(stderr.contains("pass --control-token-file"), "{stderr}");
    assert!(!stdout.contains("pass --control-token-file") && !stdout.contains(" WARN "), "{stdout}");
    let help = common::run(&["submit", "--help"]).1;
    assert!(help.contains("--control-token-file"), "{help}");
    let s = json(&summary);
    let acc = s["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.80, "accuracy {acc}");
    assert!(s["compression_ratio"].as_f64().unwrap() > 50.0, "threshold sharing between the two tasks");
    assert!(dir.path().join("model/model.safetensors").exists());

    // A job that cannot run: the driver's exit status says so.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[data]\ntrain = \"/no/such/train\"\ntest = \"\"\n[cluster]\nworkers = 2\n")
        .unwrap();
    let out = submit(&spark, &["--master", "local[2]", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    // Spark merges the Python driver's stderr into its stdout.
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("error: /no/such/train: no IDX data"), "{said}");
}

#[test]
fn submit_transform_in_spark_tasks_matches_the_local_executor() {
    let Some(spark) = spark_submit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    let mut text = String::from("id,city,temp\n");
    for i in 0..20_000u32 {
        text.push_str(&format!(
            "{i},{},{}.{}\n",
            ["Paris", "Lyon", "Nice"][(i % 3) as usize],
            i % 37,
            i % 10
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let tp = dir.path().join("tp.json");
    std::fs::write(
        &tp,
        r#"{"schema":{"columns":[{"name":"id","type":"integer"},{"name":"city","type":"string"},{"name":"temp","type":"double"}]},
            "steps":[{"step":"filter","remove":{"kind":"compare","column":"temp","op":"lt","value":1}},
                     {"step":"string_to_categorical","column":"city"},{"step":"categorical_to_one_hot","column":"city"},
                     {"step":"normalize","column":"temp","kind":"standardize"}]}"#,
    )
    .unwrap();
    let local = dir.path().join("local.csv");
    let (ok, _, stderr) = common::run(&[
        "transform",
        "--process",
        tp.to_str().unwrap(),
        "--input",
        csv.to_str().unwrap(),
        "--output",
        local.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let out_dir = dir.path().join("spark-out");
    let out = submit(
        &spark,
        &[
            "transform",
            "--master",
            "local[2]",
            "--partitions",
            "5",
            "--process",
            tp.to_str().unwrap(),
            "--input",
            csv.to_str().unwrap(),
            "--output",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 partition(s), 20000 rows in"));
    // The parts in order, each with its header, are the local executor's output.
    let mut joined = String::new();
    for i in 0..5 {
        let part = std::fs::read_to_string(out_dir.join(format!("part-{i:05}.csv"))).unwrap();
        let (header, body) = part.split_once('\n').unwrap();
        if i == 0 {
            joined.push_str(header);
            joined.push('\n');
        }
        joined.push_str(body);
    }
    let expected = std::fs::read_to_string(&local).unwrap();
    assert_eq!(joined.lines().count(), expected.lines().count());
    assert!(joined == expected, "Spark parts differ from the local executor's output");
}

#[test]
fn the_spark_launcher_submits_worker_tasks_for_a_coordinator_here() {
    let Some(spark) = spark_submit() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[train]\nepochs = 2\n[cluster]\nlauncher = \"spark\"\nworkers = 2\n[cluster.spark]\nmaster = \"local[2]\"\nsubmit = \"{}\"\n",
            spark.display()
        ),
    )
    .unwrap();
    let (summary, metrics) = (dir.path().join("s.json"), dir.path().join("m.jsonl"));
    let (ok, _, stderr) = common::run(&[
        "train",
        "--config",
        job.to_str().unwrap(),
        "--output",
        dir.path().join("m").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--metrics-out",
        metrics.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(json(&summary)["test_accuracy"].as_f64().unwrap() >= 0.7);
    let workers = common::workers_that_trained(&metrics);
    assert_eq!(workers.len(), 2, "two Spark tasks trained");
}

#[test]
fn more_workers_than_local_slots_are_refused_at_once_and_a_stopped_submit_leaves_nothing() {
    let Some(spark) = spark_submit() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let demo_job = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/jobs/demo.toml");
    let t0 = std::time::Instant::now();
    let out = common::strom()
        .args([
            "submit",
            "--spark-submit",
            spark.to_str().unwrap(),
            "--master",
            "local[2]",
            "--workers",
            "3",
            demo_job,
        ])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && t0.elapsed() < std::time::Duration::from_secs(10), "{said}");
    assert!(
        said.contains("local[2] runs 2 task(s) at a time") && said.contains("needs 3 worker tasks"),
        "{said}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing staged is left");

    // Stopped while it trains: spark-submit, its driver, the coordinator and the worker tasks
    // go, and so does everything they staged.
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("long-submit-job.toml");
    std::fs::write(&job, "name = \"long-submit\"\n[train]\nepochs = 500\n[cluster]\nworkers = 2\n").unwrap();
    let mut cmd = common::strom();
    cmd.args(["submit", "--spark-submit", spark.to_str().unwrap(), "--master", "local[2]"])
        .arg("--output")
        .arg(dir.path().join("m"))
        .arg(&job)
        .env("TMPDIR", tmp.path());
    let mut submit = common::Proc::from_command(cmd);
    submit
        .wait_for("attach with", std::time::Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{}", submit.output()));
    std::thread::sleep(std::time::Duration::from_secs(3));
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(submit.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = submit.wait_exit(std::time::Duration::from_secs(40)).expect("strom submit stops");
    assert!(!status.success(), "{}", submit.output());
    assert!(submit.output().contains("interrupted by signal 15"), "{}", submit.output());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !common::pids_with("long-submit-job").is_empty()
        || !common::pids_with(tmp.path().to_str().unwrap()).is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "processes left: {:?}", common::pids_with("strom"));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| !n.to_string_lossy().starts_with("strom")), "left behind: {left:?}");
}
