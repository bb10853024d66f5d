//! Strom against a live HDFS: Hadoop's own MiniDFSCluster (tests/hdfs/minidfs, built with Maven
//! on first use) runs a real namenode and datanode in a JVM, and every test below talks to it over
//! the wire through Strom's client. Java 17 and Maven are required; without them these tests
//! fail saying what to install (`bash .ci/run` installs and warms everything).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::minidfs::MiniDfs;
use common::{Proc, json, path, run, same_listen, token_file};
use strom::storage::Location;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fashion-mnist-demo");
const WINE_CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/wine/wine_data.csv");
const WINE_TP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/transforms/wine.json");

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// Copies the demo's IDX files into `dir` on HDFS: gzip as shipped, or decompressed.
fn put_demo(dfs: &MiniDfs, dir: &str, gzip: bool) {
    for split in ["train", "test"] {
        for kind in ["images-idx3", "labels-idx1"] {
            let name = format!("{split}-{kind}-ubyte.gz");
            let bytes = std::fs::read(Path::new(DEMO).join(&name)).unwrap();
            if gzip {
                dfs.put(&format!("{dir}/{name}"), &bytes);
            } else {
                dfs.put(&format!("{dir}/{}", name.trim_end_matches(".gz")), &gunzip(&bytes));
            }
        }
    }
}

/// `strom train ARGS --summary-json S`; returns the summary.
fn train(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let out = common::strom()
        .arg("train")
        .args(args)
        .args(["--summary-json", path(&summary)])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "strom train {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json(&summary)
}

#[test]
fn idx_files_train_from_hdfs_gzip_and_plain_alike() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("idx");
    put_demo(dfs, &format!("{base}/gz"), true);
    put_demo(dfs, &format!("{base}/plain"), false);
    let names: Vec<String> = Location::parse(&format!("{base}/gz"))
        .unwrap()
        .list()
        .unwrap()
        .iter()
        .map(|e| e.location.file_name())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let mut accuracies = Vec::new();
    for kind in ["gz", "plain"] {
        let (tr, te) = (format!("{base}/{kind}/train"), format!("{base}/{kind}/test"));
        let s =
            train(&["--train", &tr, "--test", &te, "--epochs", "2", "--workers", "1", "--seed", "5"], &[]);
        let acc = s["test_accuracy"].as_f64().unwrap();
        assert!(acc >= 0.75, "{kind}: {s}");
        accuracies.push(acc);
    }
    // One worker, one seed, the same bytes once decompressed: the same run.
    assert_eq!(accuracies[0], accuracies[1], "gzip and plain IDX give the same training");
    let (tr, te) = (format!("{DEMO}/train"), format!("{DEMO}/test"));
    let local =
        train(&["--train", &tr, "--test", &te, "--epochs", "2", "--workers", "1", "--seed", "5"], &[]);
    assert_eq!(
        local["test_accuracy"].as_f64(),
        Some(accuracies[0]),
        "HDFS and the local disk give the same run"
    );
}

/// The wine CSV as three part files in one HDFS directory (each with sklearn's summary line,
/// which `skip_lines = 1` drops), the transform process beside them, and a job naming both.
fn wine_on_hdfs(dfs: &MiniDfs, local_dir: &Path) -> (String, std::path::PathBuf) {
    let base = dfs.scratch("wine");
    let text = std::fs::read_to_string(WINE_CSV).unwrap();
    let mut lines = text.lines();
    let first = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    for (i, chunk) in rows.chunks(rows.len().div_ceil(3)).enumerate() {
        let part = format!("{first}\n{}\n", chunk.join("\n"));
        dfs.put(&format!("{base}/data/part-{i:05}.csv"), part.as_bytes());
    }
    dfs.put(&format!("{base}/data/_SUCCESS"), b"");
    dfs.put(&format!("{base}/wine.json"), &std::fs::read(WINE_TP).unwrap());
    let job = local_dir.join("wine-hdfs.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"wine-hdfs\"\n[data]\ntrain = \"{base}/data\"\ntest = \"\"\nformat = \"csv\"\n\
             holdout = 0.2\ntransform = \"{base}/wine.json\"\nlabel = \"cultivar\"\n\
             task = \"classification\"\n[data.csv]\nheader = false\nskip_lines = 1\n\
             [model]\npreset = \"mlp\"\nhidden = [32]\n[train]\nepochs = 30\nbatch_size = 16\nseed = 7\n"
        ),
    )
    .unwrap();
    (base, job)
}

#[test]
fn a_csv_directory_with_a_transform_trains_from_hdfs_in_one_and_three_worker_processes() {
    let dfs = MiniDfs::shared();
    let dir = tempfile::tempdir().unwrap();
    let (_, job) = wine_on_hdfs(dfs, dir.path());
    let one = train(&["--config", path(&job), "--workers", "1"], &[]);
    assert!(one["test_accuracy"].as_f64().unwrap() >= 0.9, "{one}");
    // 178 rows, 20% held out: 36 evaluated, whichever part file they came from.
    let held: u64 = one["evaluation"]["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(held, 36, "{one}");
    // Three worker processes, each reading and transforming its own shard from HDFS.
    let three = train(&["--config", path(&job), "--launcher", "local", "--workers", "3"], &[]);
    assert_eq!(three["workers"].as_u64(), Some(3), "{three}");
    assert!(three["bytes_sent"].as_u64().unwrap() > 0, "updates went over gRPC: {three}");
    assert!(three["test_accuracy"].as_f64().unwrap() >= 0.85, "{three}");
}

/// A CSV with a category, a number and a label; enough rows for several byte ranges.
fn city_csv(rows: u32) -> (String, &'static str) {
    let mut text = String::from("id,city,temp\n");
    for i in 0..rows {
        text.push_str(&format!(
            "{i},{},{}.{}\n",
            ["Paris", "Lyon", "Nice"][(i % 3) as usize],
            i % 37,
            i % 10
        ));
    }
    let tp = r#"{"schema":{"columns":[{"name":"id","type":"integer"},{"name":"city","type":"string"},{"name":"temp","type":"double"}]},
        "steps":[{"step":"filter","remove":{"kind":"compare","column":"temp","op":"lt","value":1}},
                 {"step":"string_to_categorical","column":"city"},{"step":"categorical_to_one_hot","column":"city"},
                 {"step":"normalize","column":"temp","kind":"standardize"}]}"#;
    (text, tp)
}

#[test]
fn transform_reads_and_writes_hdfs_partitions_byte_ranges_and_leaves_nothing_when_it_fails() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("etl");
    let dir = tempfile::tempdir().unwrap();
    let (text, tp) = city_csv(30_000);
    std::fs::write(dir.path().join("in.csv"), &text).unwrap();
    std::fs::write(dir.path().join("tp.json"), tp).unwrap();
    dfs.put(&format!("{base}/in.csv"), text.as_bytes());
    dfs.put(&format!("{base}/tp.json"), tp.as_bytes());

    // The local executor on local files: the reference.
    let (local_out, local_fit) = (dir.path().join("out.csv"), dir.path().join("fit.json"));
    let (ok, _, err) = run(&[
        "transform",
        "--process",
        path(&dir.path().join("tp.json")),
        "--input",
        path(&dir.path().join("in.csv")),
        "--output",
        path(&local_out),
        "--fitted-out",
        path(&local_fit),
    ]);
    assert!(ok, "{err}");
    let expected = std::fs::read_to_string(&local_out).unwrap();

    // Everything on HDFS: the same bytes out, written under a temporary name and renamed.
    let (out, fit) = (format!("{base}/out.csv"), format!("{base}/fit.json"));
    let (ok, stdout, err) = run(&[
        "transform",
        "--process",
        &format!("{base}/tp.json"),
        "--input",
        &format!("{base}/in.csv"),
        "--output",
        &out,
        "--fitted-out",
        &fit,
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("30000 rows in"), "{stdout}");
    let got = Location::parse(&out).unwrap().read().unwrap();
    assert!(got == expected.as_bytes(), "HDFS output differs from the local executor's");
    assert_eq!(Location::parse(&fit).unwrap().read().unwrap(), std::fs::read(&local_fit).unwrap());

    // Three byte ranges of the one HDFS file, with the fitted process: together, the whole.
    let mut joined = String::new();
    for i in 0..3 {
        let part = format!("{base}/part-{i}.csv");
        let (ok, _, err) = run(&[
            "transform",
            "--process",
            &fit,
            "--input",
            &format!("{base}/in.csv"),
            "--partition",
            &format!("{i}/3"),
            "--output",
            &part,
        ]);
        assert!(ok, "part {i}: {err}");
        let text = String::from_utf8(Location::parse(&part).unwrap().read().unwrap()).unwrap();
        let (header, body) = text.split_once('\n').unwrap();
        assert!(body.lines().count() > 5000, "part {i} holds a third: {}", body.lines().count());
        if i == 0 {
            joined.push_str(header);
            joined.push('\n');
        }
        joined.push_str(body);
    }
    assert!(joined == expected, "the partitions' rows, in order, are the whole file's");

    // A failed run (a value that is not a number, far into the file) leaves no output and no
    // temporary file behind.
    let mut bad = text.clone();
    bad.push_str("30001,Paris,warm\n");
    dfs.put(&format!("{base}/bad.csv"), bad.as_bytes());
    let (ok, _, err) = run(&[
        "transform",
        "--process",
        &format!("{base}/tp.json"),
        "--input",
        &format!("{base}/bad.csv"),
        "--output",
        &format!("{base}/bad-out.csv"),
    ]);
    assert!(!ok);
    assert!(err.contains("bad.csv") && err.contains("warm"), "names the file and the value: {err}");
    let left: Vec<String> =
        Location::parse(&base).unwrap().list().unwrap().iter().map(|e| e.location.file_name()).collect();
    assert!(!left.iter().any(|n| n.starts_with("bad-out")), "{left:?}");
}

/// Polls `dir/checkpoint.json` on HDFS until it satisfies `ok`; returns it.
fn wait_for_checkpoint(dir: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let file = Location::parse(&format!("{dir}/checkpoint.json")).unwrap();
    let t0 = Instant::now();
    loop {
        if let Ok(bytes) = file.read()
            && let Ok(meta) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && ok(&meta)
        {
            return meta;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint in {dir}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn checkpoints_and_the_model_on_hdfs_survive_a_coordinator_kill_and_stale_temporary_files() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("ckpt");
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), "an-hdfs-test-token-0123456789");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "name = \"hdfs-ckpt\"\n[train]\nepochs = 6\n[cluster]\ncheckpoint_every = 20\nreconnect_secs = 120\n",
    )
    .unwrap();
    let (ckpt, model) = (format!("{base}/ckpt"), format!("{base}/model"));
    // Leftovers of writes that died half-way, under the names they would have had.
    for stale in ["checkpoint.json.tmp", "checkpoint.json.1-0.tmp", "params-00000001.safetensors.1-1.tmp"] {
        dfs.put(&format!("{ckpt}/{stale}"), b"half a file");
    }
    let summary = dir.path().join("s.json");
    // The system picks the port; the restart listens on the same one.
    let spawn = |listen: &str| {
        Proc::spawn(&[
            "coordinator",
            "--listen",
            listen,
            "--token-file",
            &token,
            "--job",
            path(&job),
            "--checkpoint-dir",
            &ckpt,
            "--output",
            &model,
            "--summary-json",
            path(&summary),
        ])
    };
    let mut first = spawn("127.0.0.1:0");
    let url = first.coordinator_url();
    let mut workers: Vec<Proc> = (0..2)
        .map(|_| {
            Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &token, "--reconnect-secs", "120"])
        })
        .collect();
    first.wait_for("epoch 2 done", Duration::from_secs(300)).unwrap_or_else(|| panic!("{}", first.output()));
    // The epoch-end checkpoint is written after the epoch is announced: kill once it is there.
    let meta = wait_for_checkpoint(&ckpt, |m| m["epoch"].as_u64().unwrap_or(0) >= 2);
    first.kill9();
    assert!(meta["params_file"].as_str().is_some_and(|f| f.ends_with(".safetensors")), "{meta}");

    let mut second = spawn(&same_listen(&url));
    let second_pid = second.child.id();
    second.wait_for("resuming job", Duration::from_secs(60)).unwrap_or_else(|| panic!("{}", second.output()));
    let status = second.wait_exit(Duration::from_secs(400)).expect("the resumed job completes");
    assert!(status.success(), "{}", second.output());
    for w in &mut workers {
        assert!(w.wait_exit(Duration::from_secs(60)).expect("worker exits").success(), "{}", w.output());
    }
    let s = json(&summary);
    assert_eq!(s["epochs"], 6, "{s}");
    let epochs: Vec<u64> =
        s["per_epoch"].as_array().unwrap().iter().map(|e| e["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs.last(), Some(&6), "{s}");
    // The model on HDFS evaluates to the accuracy the job reported.
    let acc = s["test_accuracy"].as_f64().unwrap();
    let (ok, out, err) = run(&["eval", "--model", &model]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("accuracy {acc:.4}")), "{out}");
    // The stale files are still there (someone else's, perhaps; the killed coordinator may
    // have left one of its own) and blocked nothing; the finished coordinator left none.
    let left: Vec<String> =
        Location::parse(&ckpt).unwrap().list().unwrap().iter().map(|e| e.location.file_name()).collect();
    for stale in ["checkpoint.json.tmp", "checkpoint.json.1-0.tmp", "params-00000001.safetensors.1-1.tmp"] {
        assert!(left.iter().any(|n| n == stale), "{stale}: {left:?}");
    }
    let mine = format!(".{}-", second_pid);
    assert!(!left.iter().any(|n| n.ends_with(".tmp") && n.contains(&mine)), "{left:?}");
}

#[test]
fn the_data_check_says_found_not_found_forbidden_or_not_a_file_for_hdfs_paths() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("check");
    dfs.put(&format!("{base}/wine.csv"), &std::fs::read(WINE_CSV).unwrap());
    dfs.put(&format!("{base}/tp.json"), &std::fs::read(WINE_TP).unwrap());
    let check = |train: &str, transform: &str| {
        let job = format!(
            "[data]\ntrain = \"{train}\"\ntest = \"\"\nformat = \"csv\"\ntransform = \"{transform}\"\n\
             label = \"cultivar\"\n[data.csv]\nheader = false\nskip_lines = 1\n"
        );
        let spec = strom::job::ResolvedJob::from_toml(&job, "job").unwrap();
        spec.check_paths().iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(check(&format!("{base}/wine.csv"), &format!("{base}/tp.json")), "", "both exist");
    let missing = check(&format!("{base}/nope.csv"), &format!("{base}/tp.json"));
    assert!(
        missing.contains("data.train") && missing.contains("nope.csv") && missing.contains("not found"),
        "{missing}"
    );
    // /protected belongs to the cluster's superuser, mode 0700.
    let forbidden = check(&dfs.at("/protected/secret"), &format!("{base}/tp.json"));
    assert!(
        forbidden.contains("data.train")
            && forbidden.contains("/protected/secret")
            && forbidden.contains("permission denied"),
        "{forbidden}"
    );
    let not_a_file = check(&format!("{base}/wine.csv"), &base);
    assert!(not_a_file.contains("data.transform") && not_a_file.contains("not a file"), "{not_a_file}");
}

#[test]
fn the_cockpit_checks_hdfs_paths() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("cockpit");
    dfs.put(&format!("{base}/wine.csv"), &std::fs::read(WINE_CSV).unwrap());
    dfs.put(&format!("{base}/tp.json"), &std::fs::read(WINE_TP).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    let write_job = |train: &str| {
        std::fs::write(
            &job,
            format!(
                "name = \"hdfs-cockpit\"\n[data]\ntrain = \"{train}\"\ntest = \"\"\nformat = \"csv\"\n\
                 holdout = 0.2\ntransform = \"{base}/tp.json\"\nlabel = \"cultivar\"\n\
                 [data.csv]\nheader = false\nskip_lines = 1\n[model]\nhidden = [32]\n"
            ),
        )
        .unwrap()
    };
    write_job(&dfs.at("/protected/secret"));
    let tmux = common::Tmux::new(160, 48);
    tmux.run(&format!("{} cockpit --job {}", env!("CARGO_BIN_EXE_strom"), job.display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("data.train"));
    tmux.keys(&["v"]);
    tmux.wait("the refused path", Duration::from_secs(60), |s| s.contains("permission denied"));
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
    write_job(&format!("{base}/wine.csv"));
    tmux.run(&format!("{} cockpit --job {}", env!("CARGO_BIN_EXE_strom"), job.display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("data.train"));
    tmux.keys(&["v"]);
    let screen = tmux.wait("the checked data", Duration::from_secs(60), |s| s.contains("schema after the"));
    assert!(common::right_panel_words(&screen).contains("142 examples x 14 features, 3 classes"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
}

#[test]
fn a_file_deleted_while_a_transform_reads_its_directory_is_named() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("deleted");
    let (text, tp) = city_csv(400_000);
    for i in 0..4 {
        dfs.put(&format!("{base}/in/part-{i}.csv"), text.as_bytes());
    }
    dfs.put(&format!("{base}/tp.json"), tp.as_bytes());
    let mut child = common::strom()
        .args(["transform", "--threads", "1", "--process", &format!("{base}/tp.json")])
        .args(["--input", &format!("{base}/in"), "--output", &format!("{base}/out.csv")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The listing is taken; the last file goes before the run reaches it.
    std::thread::sleep(Duration::from_millis(1500));
    Location::parse(&format!("{base}/in/part-3.csv")).unwrap().remove_file().unwrap();
    let t0 = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "the transform hangs");
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("part-3.csv") && err.contains("not found"), "{err}");
    let left: Vec<String> =
        Location::parse(&base).unwrap().list().unwrap().iter().map(|e| e.location.file_name()).collect();
    assert!(!left.iter().any(|n| n.starts_with("out.csv")), "no output: {left:?}");
}

#[test]
fn refused_namenode_fails_fast_naming_the_address() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("hdfs://127.0.0.1:{port}/datasets/train");
    let t0 = Instant::now();
    let (ok, _, stderr) = run(&["train", "--train", &url, "--test", ""]);
    assert!(!ok);
    assert!(t0.elapsed() < Duration::from_secs(8), "took {:?}", t0.elapsed());
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn silent_namenode_times_out_naming_the_address() {
    // Accepts connections and never answers: the client must not hang.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let url = format!("hdfs://127.0.0.1:{port}/x");
    let t0 = Instant::now();
    let out = common::strom()
        .args(["train", "--train", &url, "--test", ""])
        .env("STROM_HDFS_TIMEOUT_SECS", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("did not answer within 2 s"),
        "{stderr}"
    );
}

#[test]
fn a_port_that_speaks_something_else_is_a_clear_error_within_seconds() {
    // An HTTP server where the namenode's RPC port should be (a wrong port in a URL).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let _ =
                s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let t0 = Instant::now();
    let (ok, _, stderr) =
        run(&["train", "--train", &format!("hdfs://127.0.0.1:{port}/data/train"), "--test", ""]);
    assert!(!ok);
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn a_viewfs_mount_table_reads_and_writes_through_its_links() {
    let dfs = MiniDfs::start(&["--viewfs"]);
    let conf = dfs.conf_dir();
    let conf = conf.to_str().unwrap();
    let viewfs = dfs.fields["viewfs"].clone();
    // /data on the mount table is /data on the namenode.
    put_demo(&dfs, &dfs.at("/data/demo"), true);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let out = common::strom()
        .args([
            "train",
            "--train",
            &format!("{viewfs}/data/demo/train"),
            "--test",
            &format!("{viewfs}/data/demo/test"),
        ])
        .args(["--epochs", "1", "--output", &format!("{viewfs}/out/model"), "--summary-json", path(&summary)])
        .env("HADOOP_CONF_DIR", conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(json(&summary)["test_accuracy"].as_f64().unwrap() >= 0.7);
    // The model went through the /out link to the namenode's /out.
    assert!(Location::parse(&dfs.at("/out/model/model.safetensors")).unwrap().exists().unwrap());
}

#[test]
fn training_carries_on_through_a_namenode_failover() {
    let dfs = MiniDfs::start(&["--ha"]);
    let conf = dfs.conf_dir();
    let conf = conf.to_str().unwrap().to_string();
    assert_eq!(dfs.url(), "hdfs://ns1");
    // This process reaches the active namenode directly; the job goes through the nameservice.
    let active = dfs.fields["active"].clone();
    let direct = format!("hdfs://{}", dfs.fields[active.as_str()]);
    put_demo(&dfs, &format!("{direct}/ha/demo"), true);
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let job_file = dir.path().join("job.toml");
    std::fs::write(
        &job_file,
        "name = \"ha\"\n[data]\ntrain = \"hdfs://ns1/ha/demo/train\"\ntest = \"hdfs://ns1/ha/demo/test\"\n\
         [train]\nepochs = 24\n[cluster]\nworkers = 2\ncheckpoint_every = 40\n",
    )
    .unwrap();
    let mut job = Proc::spawn_env(
        &[
            "train",
            "--config",
            path(&job_file),
            "--launcher",
            "local",
            "--checkpoint-dir",
            "hdfs://ns1/ha/ckpt",
            "--output",
            "hdfs://ns1/ha/model",
            "--summary-json",
            path(&summary),
        ],
        &[("HADOOP_CONF_DIR", &conf)],
    );
    // Two worker processes read their data through the nameservice; checkpoints go there every
    // 40 steps; the active namenode dies in the middle.
    job.wait_for("epoch 3/24: train loss", Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{}", job.output()));
    wait_for_checkpoint(&format!("{direct}/ha/ckpt"), |_| true);
    let reply = dfs.command("kill-active");
    let now_active = reply.split_whitespace().find_map(|kv| kv.strip_prefix("active=")).unwrap().to_string();
    assert_ne!(now_active, active, "{reply}");
    let status = job.wait_exit(Duration::from_secs(300)).expect("the job finishes");
    assert!(status.success(), "{}", job.output());
    let s = json(&summary);
    assert_eq!(s["epochs"], 24, "{s}");
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.8, "{s}");
    // Checkpoints and the model were written after the failover, through the nameservice, to the
    // namenode that took over.
    let after = format!("hdfs://{}", dfs.fields[now_active.as_str()]);
    assert!(Location::parse(&format!("{after}/ha/model/model.safetensors")).unwrap().exists().unwrap());
    let meta: serde_json::Value = serde_json::from_slice(
        &Location::parse(&format!("{after}/ha/ckpt/checkpoint.json")).unwrap().read().unwrap(),
    )
    .unwrap();
    let epochs = meta["epochs"].as_array().map(Vec::len);
    assert_eq!(epochs, Some(24), "the final checkpoint, written after the failover: {meta}");
}

#[test]
fn spark_tasks_train_from_hdfs_data_and_write_the_model_there() {
    let Some(spark) = common::spark_submit() else { return };
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("spark");
    put_demo(dfs, &format!("{base}/demo"), true);
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"spark-hdfs\"\n[data]\ntrain = \"{base}/demo/train\"\ntest = \"{base}/demo/test\"\n\
             [train]\nepochs = 4\n"
        ),
    )
    .unwrap();
    let summary = dir.path().join("s.json");
    let model = format!("{base}/model");
    let out = common::strom()
        .args(["submit", "--spark-submit", path(&spark), "--master", "local[2]", "--workers", "2"])
        .args(["--output", &model, "--summary-json", path(&summary), path(&job)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s = json(&summary);
    assert_eq!(s["workers"].as_u64(), Some(2), "{s}");
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.78, "{s}");
    assert!(Location::parse(&format!("{model}/model.safetensors")).unwrap().exists().unwrap());
}

#[test]
fn a_kerberized_cluster_is_read_and_written_with_a_ticket_and_refused_without_one() {
    let dfs = MiniDfs::start(&["--kerberos"]);
    let conf = dfs.conf_dir();
    let krb5 = [
        ("HADOOP_CONF_DIR", conf.to_str().unwrap()),
        ("KRB5_CONFIG", dfs.fields["krb5conf"].as_str()),
        ("KRB5CCNAME", dfs.fields["ccache"].as_str()),
    ];
    // The test holds no ticket of its own: the cluster's superuser puts the data in.
    for split in ["train", "test"] {
        for kind in ["images-idx3", "labels-idx1"] {
            let name = format!("{split}-{kind}-ubyte.gz");
            dfs.command(&format!("put {DEMO}/{name} /krb/demo/{name}"));
        }
    }
    let (train_url, test_url, model) =
        (dfs.at("/krb/demo/train"), dfs.at("/krb/demo/test"), dfs.at("/out/krb-model"));
    let s = train(&["--train", &train_url, "--test", &test_url, "--epochs", "2", "--output", &model], &krb5);
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.75, "{s}");
    // Written as the ticket's principal, and read back by evaluation.
    let out = common::strom().args(["eval", "--model", &model]).envs(krb5).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The principal is an ordinary user: the superuser's directory stays closed to it.
    let out = common::strom()
        .args([
            "train",
            "--train",
            &dfs.at("/protected/secret"),
            "--format",
            "csv",
            "--label",
            "c0",
            "--test",
            "",
        ])
        .envs(krb5)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("permission denied") && err.contains("user=client"),
        "{err}"
    );
    // No ticket: refused, saying so, within seconds.
    let empty = tempfile::tempdir().unwrap();
    let no_ticket = empty.path().join("no-ccache");
    let t0 = Instant::now();
    let out = common::strom()
        .args(["train", "--train", &train_url, "--test", ""])
        .envs(krb5)
        .env("KRB5CCNAME", &no_ticket)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20), "took {:?}", t0.elapsed());
    assert!(err.contains(dfs.url().trim_start_matches("hdfs://")), "names the namenode: {err}");
}

#[test]
fn a_worker_without_the_hadoop_configuration_is_refused_naming_it_while_another_trains_on() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("noconf");
    put_demo(dfs, &format!("{base}/demo"), true);
    // `hdfs:///...`: the default file system of the Hadoop configuration each process has.
    let root = base.strip_prefix(dfs.url()).unwrap();
    let conf = dfs.conf_dir();
    let conf = path(&conf);
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), "an-hdfs-test-token-0123456789");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"noconf\"\n[data]\ntrain = \"hdfs://{root}/demo/train\"\ntest = \"hdfs://{root}/demo/test\"\n\
             [train]\nepochs = 6\n[cluster]\nlauncher = \"none\"\nworkers = 1\nreconnect_secs = 120\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("m");
    let mut coordinator = Proc::coordinator(path(&job), &token, &out, &[("HADOOP_CONF_DIR", conf)]);
    let url = coordinator.coordinator_url();
    let mut good = Proc::spawn_env(
        &["worker", "--coordinator", &url, "--token-file", &token],
        &[("HADOOP_CONF_DIR", conf)],
    );
    coordinator
        .wait_for("epoch 1 done", Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{}\n{}", coordinator.output(), good.output()));
    // The same worker command on a host without the configuration.
    let mut cmd = common::strom();
    cmd.args(["worker", "--coordinator", &url, "--token-file", &token])
        .env_remove("HADOOP_CONF_DIR")
        .env_remove("HADOOP_HOME");
    let mut bad = Proc::from_command(cmd);
    let status = bad.wait_exit(Duration::from_secs(60)).expect("the misconfigured worker exits");
    assert!(!status.success(), "{}", bad.output());
    let said = bad.output();
    let host = strom::cluster::worker::host_name();
    for needle in ["HADOOP_CONF_DIR", "fs.defaultFS", host.as_str()] {
        assert!(said.contains(needle), "the worker's error names {needle}: {said}");
    }
    assert!(!said.contains("panicked"), "{said}");
    // The coordinator logged the refusal (with the reason) and the job went on to its end.
    assert!(good.wait_exit(Duration::from_secs(180)).expect("the good worker finishes").success());
    let status = coordinator.wait_exit(Duration::from_secs(60)).expect("the coordinator ends with the job");
    let log = coordinator.output();
    assert!(status.success(), "{log}");
    assert!(log.contains("refused") && log.contains("fs.defaultFS"), "{log}");
    assert!(!log.contains("job noconf failed"), "{log}");
    assert!(out.join("model.json").exists());
}

/// `strom fs ARGS` with the MiniDFS configuration: (ok, stdout, stderr).
fn fs(args: &[&str], conf: &Path) -> (bool, String, String) {
    common::outcome(common::strom().arg("fs").args(args).env("HADOOP_CONF_DIR", conf))
}

#[test]
fn strom_fs_lists_copies_prints_and_removes_on_hdfs() {
    let dfs = MiniDfs::shared();
    let conf = dfs.conf_dir();
    let base = dfs.scratch("fs");
    let local = tempfile::tempdir().unwrap();
    // put: a folder (recursively) and two files into a folder `mkdir` made.
    let data = format!("{base}/data");
    assert!(fs(&["mkdir", &data], &conf).0);
    let (ok, _, err) = fs(&["put", DEMO, &format!("{data}/demo")], &conf);
    assert!(ok && err.contains("copied 6 file(s)"), "{err}");
    let (ok, _, err) = fs(&["put", WINE_CSV, WINE_TP, &data], &conf);
    assert!(ok, "{err}");
    // ls: mode, size and location, folders marked.
    let (ok, listing, err) = fs(&["ls", &data], &conf);
    assert!(ok, "{err}");
    let size = std::fs::metadata(WINE_CSV).unwrap().len();
    assert!(listing.contains(&format!("-rw-r--r-- {size:>12}  {data}/wine_data.csv")), "{listing}");
    assert!(listing.contains(&format!("drwxr-xr-x            -  {data}/demo/")), "{listing}");
    // hdfs:/// through HADOOP_CONF_DIR names the same files.
    let root = base.strip_prefix(dfs.url()).unwrap();
    let (ok, same, _) = fs(&["ls", &format!("hdfs://{root}/data/demo")], &conf);
    assert!(ok && same.lines().count() == 6, "{same}");
    // get: back to the local disk, byte for byte; cat: the same bytes on stdout.
    let back = local.path().join("back");
    assert!(fs(&["get", &format!("{data}/demo"), path(&back)], &conf).0);
    for entry in std::fs::read_dir(DEMO).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(
            std::fs::read(entry.path()).unwrap(),
            std::fs::read(back.join(entry.file_name())).unwrap()
        );
    }
    let (ok, text, _) = fs(&["cat", &format!("{data}/wine_data.csv")], &conf);
    assert!(ok && text == std::fs::read_to_string(WINE_CSV).unwrap());
    // Nothing is replaced or removed by surprise.
    let (ok, _, err) = fs(&["put", WINE_CSV, &format!("{data}/wine_data.csv")], &conf);
    assert!(!ok && err.contains("exists: pass -f"), "{err}");
    assert!(fs(&["put", "-f", WINE_CSV, &format!("{data}/wine_data.csv")], &conf).0);
    let (ok, _, err) = fs(&["rm", &format!("{data}/demo")], &conf);
    assert!(!ok && err.contains("is a folder: remove it with -r"), "{err}");
    assert!(fs(&["rm", "-r", &format!("{data}/demo")], &conf).0);
    let (ok, _, err) = fs(&["ls", &format!("{data}/demo")], &conf);
    assert!(!ok && err.contains(&format!("{data}/demo: not found")), "{err}");
    let (ok, _, err) = fs(&["rm", &format!("{data}/demo")], &conf);
    assert!(!ok && err.contains("not found"), "{err}");
    assert!(fs(&["rm", "-f", &format!("{data}/demo")], &conf).0);
    // The storage layer's errors, named once.
    let (ok, _, err) = fs(&["cat", &format!("{data}/nothing.csv")], &conf);
    assert!(!ok && err.matches(&format!("{data}/nothing.csv")).count() == 1, "{err}");
}

const SIX_EPOCHS_TWO_WORKERS: [&str; 6] = ["--epochs", "6", "--workers", "2", "--launcher", "local"];

/// Every entry under `loc`, with its mode, recursively.
fn modes_under(loc: &Location, out: &mut Vec<(String, u32, bool)>) {
    for e in loc.list().unwrap() {
        out.push((e.location.to_string(), e.mode.unwrap(), e.is_dir));
        if e.is_dir {
            modes_under(&e.location, out);
        }
    }
}

#[test]
fn models_and_checkpoints_on_hdfs_take_the_clusters_umask_and_checkpoints_stay_off_the_training_path() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("modes");
    // A configuration like the cluster's, with the umask a site may set.
    let strict = tempfile::tempdir().unwrap();
    for f in ["core-site.xml", "hdfs-site.xml"] {
        let text = std::fs::read_to_string(dfs.conf_dir().join(f)).unwrap_or_default();
        let text = if f == "core-site.xml" {
            text.replace(
                "</configuration>",
                "<property><name>fs.permissions.umask-mode</name><value>077</value></property></configuration>",
            )
        } else {
            text
        };
        std::fs::write(strict.path().join(f), text).unwrap();
    }
    let plain_conf = dfs.conf_dir();
    for (name, conf, dir_mode, file_mode) in
        [("default", path(&plain_conf), 0o755, 0o644), ("strict", path(strict.path()), 0o700, 0o600)]
    {
        let out = format!("{base}/{name}/runs/model");
        let ckpt = format!("{base}/{name}/ckpt/job");
        let s = train(
            &[&SIX_EPOCHS_TWO_WORKERS[..], &["--output", &out, "--checkpoint-dir", &ckpt]].concat(),
            &[("HADOOP_CONF_DIR", conf)],
        );
        assert_eq!(s["epochs"], 6, "{s}");
        let mut modes = Vec::new();
        modes_under(&Location::parse(&format!("{base}/{name}")).unwrap(), &mut modes);
        assert!(modes.len() >= 10, "{modes:?}");
        for (loc, mode, is_dir) in &modes {
            let want = if *is_dir { dir_mode } else { file_mode };
            assert_eq!(*mode, want, "{loc}: {mode:o}, expected {want:o} ({name} umask)");
        }
        // The last checkpoint is complete when the job reports its end: all six epochs.
        let meta: serde_json::Value = serde_json::from_slice(
            &Location::parse(&format!("{ckpt}/checkpoint.json")).unwrap().read().unwrap(),
        )
        .unwrap();
        assert_eq!(meta["epochs"].as_array().map(Vec::len), Some(6), "{meta}");
    }
    // Epoch checkpoints on HDFS (each costs the namenode's close latency, about 0.5 s) do not
    // hold the training up: the same job trains about as fast as with none.
    let none = train(&SIX_EPOCHS_TWO_WORKERS, &[]);
    let ckpt2 = format!("{base}/ckpt2");
    let hdfs = train(&[&SIX_EPOCHS_TWO_WORKERS[..], &["--checkpoint-dir", &ckpt2]].concat(), &[]);
    let (t0, t1) = (none["train_seconds"].as_f64().unwrap(), hdfs["train_seconds"].as_f64().unwrap());
    assert!(t1 < 1.5 * t0 + 1.5, "training took {t1:.2} s with HDFS checkpoints, {t0:.2} s without");
}

#[test]
fn sequence_csv_folders_train_from_hdfs() {
    let dfs = MiniDfs::shared();
    let local = tempfile::tempdir().unwrap();
    let base = dfs.scratch("sequences");
    common::ragged_sequences(&local.path().join("train"), 240, 3);
    for sub in ["features", "labels"] {
        for entry in std::fs::read_dir(local.path().join("train").join(sub)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            dfs.put(&format!("{base}/train/{sub}/{name}"), &std::fs::read(entry.path()).unwrap());
        }
    }
    let job = local.path().join("seq-hdfs.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"seq-hdfs\"\n[data]\nformat = \"sequence_csv\"\ntrain = \"{base}/train\"\nholdout = 0.25\n\
             [train]\nepochs = 40\nbatch_size = 16\nupdater = {{ kind = \"adam\", lr = 3e-3 }}\n\
             [[model.layers]]\ntype = \"conv1d\"\nfilters = 16\nkernel = 3\npadding = \"same\"\n\
             [[model.layers]]\ntype = \"last_step\"\n"
        ),
    )
    .unwrap();
    let s = train(&["--config", path(&job), "--workers", "1"], &[]);
    // 180 sequences trained, 60 held out; chance is 0.5.
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.8, "{s}");
    let held: u64 = s["evaluation"]["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(held, 60, "{s}");
}

#[test]
fn a_text_folder_trains_from_hdfs_in_two_worker_processes() {
    let dfs = MiniDfs::shared();
    let base = dfs.scratch("text");
    let corpus =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/text/shakespeare.txt")).unwrap();
    // 200,000 characters in two files, read in name order.
    let cut = corpus.char_indices().nth(100_000).unwrap().0;
    let end = corpus.char_indices().nth(200_000).unwrap().0;
    dfs.put(&format!("{base}/plays/a.txt"), &corpus.as_bytes()[..cut]);
    dfs.put(&format!("{base}/plays/b.txt"), &corpus.as_bytes()[cut..end]);
    let local = tempfile::tempdir().unwrap();
    let job = local.path().join("text-hdfs.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"text-hdfs\"\n[data]\nformat = \"text\"\ntrain = \"{base}/plays\"\ncontext = 64\nholdout = 0.1\n\
             [train]\nepochs = 2\nbatch_size = 32\nupdater = {{ kind = \"adam\", lr = 1e-2 }}\n\
             [[model.layers]]\ntype = \"embedding\"\ndim = 32\n[[model.layers]]\ntype = \"dense\"\nunits = 64\n"
        ),
    )
    .unwrap();
    let s = train(&["--config", path(&job), "--launcher", "local", "--workers", "2"], &[]);
    assert_eq!(s["evaluation"]["kind"], "language", "{s}");
    // Without context 3.311 nats per character; a character's bigram statistics ~2.45.
    assert!(s["evaluation"]["loss"].as_f64().unwrap() < 2.9, "{s}");
    assert!(s["bytes_sent"].as_u64().unwrap() > 0, "updates went over gRPC: {s}");
    // Every training window trained once per epoch, split between the two workers: 3,124
    // windows, 312 held out, 2,812 in 11 partitions of 8 batches of 32 (the last one short):
    // 88 steps an epoch, whoever took which partition.
    assert_eq!(s["steps"].as_u64(), Some(2 * 88), "{s}");
    assert_eq!(s["samples"].as_u64(), Some(2 * 2812), "each window once an epoch: {s}");
}
