//! The cockpit end to end: the real binary in a real terminal (tmux), driven by keys.

mod common;

use std::time::Duration;

use common::{Proc, Tmux, cluster_job, pids_with, same_listen, token_file};

const BIN: &str = env!("CARGO_BIN_EXE_strom");

/// The dashboard's line for worker `w`: (samples/s, sparsity, residual norm).
fn worker_line(screen: &str, w: u32) -> Option<(f64, f64, f64)> {
    let line = screen.lines().find(|l| l.starts_with(&format!("w{w} ")))?;
    let t: Vec<&str> = line.split_whitespace().collect();
    let num = |s: &str| s.replace(',', "").parse::<f64>().ok();
    Some((num(t.get(2)?)?, num(t.get(3)?)?, num(t.get(5)?)?))
}

#[test]
fn cockpit_trains_the_demo_shows_every_worker_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // The cockpit's demo job, long enough to still run when we quit.
    let job = dir.path().join("cockpit-e2e.toml");
    let text = include_str!("../assets/jobs/cockpit.toml").replace("epochs = 20", "epochs = 400");
    std::fs::write(&job, text).unwrap();
    let timing = dir.path().join("timing");
    let tmux = Tmux::new(80, 24);
    tmux.run(&format!("STROM_UI_TIMING={} {BIN} cockpit --job {}", timing.display(), job.display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("[Setup]"));
    tmux.keys(&["s"]);
    let screen = tmux.wait("every worker training", Duration::from_secs(90), |s| {
        s.contains("RUNNING")
            && (0..3).all(|w| {
                worker_line(s, w)
                    .is_some_and(|(sps, sparsity, residual)| sps > 0.0 && sparsity > 0.0 && residual > 0.0)
            })
    });
    assert!(screen.contains("samples/s") && screen.contains("Sparsity"), "{screen}");
    let cockpit = pids_with(&job.display().to_string());
    assert_eq!(cockpit.len(), 1, "one cockpit process");
    let workers = pids_with(&format!("strom-cockpit-token-{}", cockpit[0]));
    assert_eq!(workers.len(), 3, "three worker processes");
    // Quitting a running embedded job asks first.
    tmux.keys(&["q"]);
    tmux.wait("the quit question", Duration::from_secs(10), |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    // The job stops, its model is saved, its workers hear of it (at most DRAIN, 5 s), then
    // the cockpit exits.
    let t0 = std::time::Instant::now();
    while !pids_with(&job.display().to_string()).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(15), "the cockpit exited:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        pids_with(&format!("strom-cockpit-token-{}", cockpit[0])).is_empty(),
        "no worker outlives a quit"
    );
    let t = std::fs::read_to_string(&timing).unwrap();
    assert!(t.contains("first_frame_ms") && t.contains("first_data_frame_ms"), "{t}");
}

#[test]
fn cockpit_sets_up_csv_with_a_transform_shows_its_schema_and_trains_it() {
    let tmux = Tmux::new(160, 48);
    // The wine job's paths are relative to the repository.
    tmux.run(&format!("cd {} && {BIN} cockpit --job assets/jobs/wine.toml", env!("CARGO_MANIFEST_DIR")));
    tmux.wait("the job form", Duration::from_secs(30), |s| {
        s.contains("READY") && s.contains("data.transform")
    });
    tmux.keys(&["v"]);
    let screen = tmux.wait("the checked data", Duration::from_secs(30), |s| s.contains("schema after the"));
    let words = common::right_panel_words(&screen);
    assert!(words.contains("142 examples x 14 features, 3 classes"), "{screen}");
    assert!(words.contains("schema after the transform (15 columns): alcohol double"), "{screen}");
    assert!(words.contains("cultivar integer (label) · flavanoid_ratio double"), "{screen}");
    tmux.keys(&["s"]);
    tmux.wait("the finished job", Duration::from_secs(90), |s| s.contains("FINISHED"));
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
}

#[test]
fn cockpit_shows_the_model_and_each_layers_share_of_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("cnn.toml");
    std::fs::write(
        &job,
        "name = \"cnn-cockpit\"\n[model]\npreset = \"cnn\"\n[train]\nepochs = 2\n[cluster]\nworkers = 2\n",
    )
    .unwrap();
    let tmux = Tmux::new(160, 48);
    tmux.run(&format!("{BIN} cockpit --job {}", job.display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("model.preset"));
    tmux.keys(&["v"]);
    let screen = tmux.wait("the checked data and model", Duration::from_secs(30), |s| s.contains("layers:"));
    let words = common::right_panel_words(&screen);
    assert!(
        words.contains("model: 1x28x28 -> 10: 2 conv2d, 2 max_pool2d, 2 dense; 421642 parameters"),
        "{screen}"
    );
    assert!(words.contains("conv2d 3x3 32 same relu → 32x28x28"), "{screen}");
    tmux.keys(&["s"]);
    tmux.show("Workers");
    let screen =
        tmux.wait("the per-layer figures", Duration::from_secs(120), |s| s.contains("last step by layer"));
    let dense = screen.lines().find(|l| l.contains("dense 128 relu")).unwrap_or_else(|| panic!("{screen}"));
    assert!(dense.contains("401,536") && dense.contains('%'), "{dense}");
    tmux.keys(&["x"]);
    tmux.keys(&["y"]);
    tmux.keys(&["q"]);
    tmux.keys(&["y"]);
    tmux.wait("the shell prompt", Duration::from_secs(30), |s| s.contains("PROMPT$"));
}

#[test]
fn cockpit_setup_offers_the_launchers_and_shows_per_host_start_errors() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let job = dir.path().join("ssh.toml");
    std::fs::write(
        &job,
        format!(
            "[cluster]\nlauncher = \"ssh\"\nworkers = 2\nhosts = [{{ host = \"nobody@127.0.0.1\", port = {port} }}, \"nobody@no-such-host.invalid\"]\n[cluster.ssh]\nconnect_timeout_secs = 3\n"
        ),
    )
    .unwrap();
    let tmux = Tmux::new(160, 48);
    tmux.run(&format!("{BIN} cockpit --job {}", job.display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("data.train"));
    // The cluster keys are at the end of the form; z shows the folded ones.
    tmux.keys(&["z"]);
    for _ in 0..6 {
        tmux.keys(&["NPage"]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let screen =
        tmux.wait("the cluster keys", Duration::from_secs(10), |s| s.contains("cluster.spark.ship_binary"));
    assert!(screen.contains("‹ssh›"), "{screen}");
    for key in ["cluster.ssh.binary", "cluster.spark.master", "cluster.min_workers"] {
        assert!(screen.contains(key), "{key} in {screen}");
    }
    tmux.keys(&["s"]);
    tmux.wait("the failed start", Duration::from_secs(30), |s| s.contains("FAILED"));
    // Back to Setup, where the launch problems are listed.
    tmux.show("Setup");
    let screen =
        tmux.wait("the per-host errors", Duration::from_secs(10), |s| s.contains("no-such-host.invalid:"));
    let words = common::right_panel_words(&screen);
    assert!(
        words.contains(&format!(
            "✗ launch: host nobody@127.0.0.1:{port}: ssh: connect to host 127.0.0.1 port {port}: Connection refused"
        )),
        "{screen}"
    );
    assert!(
        words.contains("✗ launch: host nobody@no-such-host.invalid: ssh: Could not resolve hostname"),
        "{screen}"
    );
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
}

#[test]
fn attach_follows_a_coordinator_through_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), "0123456789abcdef0123456789abcdef");
    let job = cluster_job(dir.path(), 300, "checkpoint_every = 100");
    let ckpt = dir.path().join("ckpt").display().to_string();
    let args = |listen: &str| {
        Proc::spawn(&[
            "coordinator",
            "--listen",
            listen,
            "--token-file",
            &token,
            "--job",
            &job,
            "--checkpoint-dir",
            &ckpt,
        ])
    };
    // The system picks the port (a port found free and then released can be taken by another
    // test before the coordinator binds it); the restart listens on the same one.
    let mut coordinator = args("127.0.0.1:0");
    let url = coordinator.coordinator_url();
    let _workers: Vec<Proc> = (0..2)
        .map(|_| {
            Proc::spawn(&[
                "worker",
                "--coordinator",
                &url,
                "--token-file",
                &token,
                "--retries",
                "100",
                "--connect-timeout",
                "1",
            ])
        })
        .collect();
    let tmux = Tmux::new(100, 30);
    tmux.run(&format!("{BIN} attach {url} --token-file {token}"));
    tmux.keys(&["Tab"]);
    tmux.wait("the running job", Duration::from_secs(60), |s| {
        s.contains("cluster-test") && s.contains("RUNNING") && s.contains("w1 ")
    });
    coordinator.kill9();
    tmux.wait("reconnecting", Duration::from_secs(30), |s| s.contains("reconnecting"));
    let _again = args(&same_listen(&url));
    tmux.wait("the job again", Duration::from_secs(60), |s| {
        s.contains("● connected") && s.contains("RUNNING") && s.contains("cluster-test")
    });
    // Detaching leaves the remote job alone: no question.
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
}

#[test]
fn the_cockpit_without_a_terminal_says_what_to_run_instead() {
    let (ok, _, stderr) = common::run(&[]);
    assert!(!ok);
    assert!(stderr.contains("needs a terminal") && stderr.contains("strom train"), "{stderr}");
}

/// A short demo job for the cockpit: the built-in subset, one MLP, `epochs` epochs.
fn short_job(dir: &std::path::Path, name: &str, epochs: u32) -> std::path::PathBuf {
    let job = dir.join(format!("{name}.toml"));
    std::fs::write(
        &job,
        format!(
            "name = \"{name}\"\n[model]\nhidden = [32]\n[train]\nepochs = {epochs}\n[cluster]\nworkers = 2\n"
        ),
    )
    .unwrap();
    job
}

/// `strom eval --model DIR` works on `dir` and reports an accuracy.
fn evaluates(dir: &std::path::Path) {
    assert!(dir.join("model.json").exists(), "no model in {}", dir.display());
    let (ok, out, err) = common::run(&["eval", "--model", dir.to_str().unwrap()]);
    assert!(ok, "strom eval --model {}: {err}", dir.display());
    assert!(out.contains("accuracy"), "{out}");
}

#[test]
fn the_cockpit_keeps_the_model_of_a_finished_job_and_of_a_stopped_one() {
    let dir = tempfile::tempdir().unwrap();
    // Finished, with the default output (strom-runs/<job name> under the working directory).
    let job = short_job(dir.path(), "keep-finished", 2);
    let tmux = Tmux::new(100, 30);
    tmux.run(&format!("cd {} && {BIN} cockpit --job {}", dir.path().display(), job.display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("[Setup]"));
    tmux.keys(&["s"]);
    let screen = tmux.wait("the saved model", Duration::from_secs(120), |s| {
        s.contains("FINISHED") && s.contains("model saved to")
    });
    assert!(screen.contains("strom-runs/keep-finished"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
    evaluates(&dir.path().join("strom-runs/keep-finished"));

    // Stopped with x, into -o: the model so far.
    let job = short_job(dir.path(), "keep-stopped", 100_000);
    let out = dir.path().join("stopped-model");
    tmux.run(&format!("clear; {BIN} cockpit --job {} -o {}", job.display(), out.display()));
    tmux.wait("the second form", Duration::from_secs(30), |s| {
        s.contains("READY") && s.contains("keep-stopped")
    });
    tmux.keys(&["s"]);
    tmux.wait("an epoch done", Duration::from_secs(60), |s| {
        s.contains("RUNNING") && s.contains("/100000 [") && !s.contains("epoch 1/100000")
    });
    tmux.keys(&["x"]);
    tmux.wait("the stop question", Duration::from_secs(10), |s| s.contains("model so far is saved"));
    tmux.keys(&["y"]);
    let screen = tmux.wait("the stopped job's model", Duration::from_secs(60), |s| {
        s.contains("STOPPED") && s.contains("model saved to")
    });
    assert!(screen.contains("stopped-model"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
    evaluates(&out);
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"job\": \"keep-stopped\""), "{summary}");
}

#[test]
fn setup_fields_and_the_save_prompt_edit_like_a_terminal_line() {
    let dir = tempfile::tempdir().unwrap();
    let job = short_job(dir.path(), "keep-b", 1);
    let tmux = Tmux::new(100, 30);
    tmux.run(&format!("{BIN} cockpit --job {}", job.display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("keep-b"));
    // The first field is the job's name: Home, type, End, ←, Backspace at the cursor.
    tmux.keys(&["Enter"]);
    tmux.keys(&["Home"]);
    tmux.keys(&["x"]);
    tmux.keys(&["End"]);
    tmux.keys(&["Left"]);
    tmux.keys(&["BSpace"]);
    // A control key types nothing.
    tmux.keys(&["C-t"]);
    tmux.keys(&["Enter"]);
    tmux.wait("the edited name", Duration::from_secs(10), |s| s.contains("xkeepb"));
    // Save: Ctrl-U clears the suggested name, Ctrl-W drops the last path component.
    tmux.keys(&["w"]);
    tmux.wait("the save prompt", Duration::from_secs(10), |s| s.contains("Write job file"));
    tmux.keys(&["C-u"]);
    tmux.keys(&["-l", &format!("{}/first.toml", dir.path().display())]);
    tmux.keys(&["C-w"]);
    tmux.keys(&["-l", "edited.toml"]);
    tmux.keys(&["Enter"]);
    let saved = dir.path().join("edited.toml");
    let t0 = std::time::Instant::now();
    while !saved.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&saved)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", saved.display(), tmux.screen()));
    assert!(text.contains("name = \"xkeepb\""), "{text}");
    assert!(!dir.path().join("first.toml").exists() && !dir.path().join("edited.tomlu").exists());
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
}

#[test]
fn a_cockpit_listening_beyond_loopback_pins_its_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let job = short_job(dir.path(), "listen-wide", 100_000);
    let tmux = Tmux::new(100, 30);
    tmux.run(&format!(
        "{BIN} cockpit --job {} --listen 0.0.0.0:0 -o {}",
        job.display(),
        dir.path().join("m").display()
    ));
    tmux.wait("the form over TLS", Duration::from_secs(30), |s| {
        s.contains("connected https://") && s.contains("READY")
    });
    tmux.keys(&["s"]);
    tmux.wait("workers training over TLS", Duration::from_secs(60), |s| {
        s.contains("RUNNING") && s.contains("workers 2 live")
    });
    // A host that is no host is refused before ssh runs.
    tmux.show("Workers");
    tmux.keys(&["a"]);
    tmux.keys(&["C-u"]);
    tmux.keys(&["-l", "1 me@-oProxyCommand=x"]);
    tmux.keys(&["Enter"]);
    tmux.wait("the refusal", Duration::from_secs(10), |s| s.contains("letters, digits"));
    tmux.keys(&["q"]);
    tmux.wait("the quit question", Duration::from_secs(10), |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    let t0 = std::time::Instant::now();
    while !dir.path().join("m/model.json").exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "the quit job's model is saved:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn attach_says_why_it_cannot_connect_and_when_the_coordinator_has_gone() {
    let dir = tempfile::tempdir().unwrap();
    let workers = token_file(dir.path(), "workers-token-0123456789abcdef");
    let control = token_file(dir.path(), "the-control-token-0123456789abcdefgh");
    let job = cluster_job(dir.path(), 1, "");
    let coordinator = Proc::spawn(&[
        "coordinator",
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        &workers,
        "--control-token-file",
        &control,
        "--job",
        &job,
        "--output",
        dir.path().join("m").to_str().unwrap(),
    ]);
    let url = coordinator.coordinator_url();
    let pin = coordinator.tls_pin();
    let tmux = Tmux::new(100, 24);
    // The workers' token where the control token belongs: the reason, at once, and no retrying.
    tmux.run(&format!("{BIN} attach {url} --token-file {workers} --tls-pin {pin}"));
    tmux.wait("the wrong role", Duration::from_secs(15), |s| {
        s.contains("wrong role") && s.contains("not connected")
    });
    tmux.keys(&["q"]);
    // A pin that is not the coordinator's.
    let other = format!("sha256:{}", "ab".repeat(32));
    tmux.run(&format!("clear; {BIN} attach {url} --token-file {control} --tls-pin {other}"));
    tmux.wait("the pin", Duration::from_secs(15), |s| s.contains("not the pinned"));
    tmux.keys(&["q"]);
    // Plaintext at a TLS coordinator.
    tmux.run(&format!("clear; {BIN} attach {} --token-file {control}", url.replacen("https", "http", 1)));
    tmux.wait("the scheme", Duration::from_secs(15), |s| s.contains("serves TLS"));
    tmux.keys(&["q"]);
    assert!(
        coordinator
            .wait_for("refused a call to the control service from 127.0.0.1", Duration::from_secs(5))
            .is_some(),
        "the coordinator logs the refusal:\n{}",
        coordinator.output()
    );
    // The right token and pin: the job runs with two workers, ends, and its coordinator exits.
    tmux.run(&format!("clear; {BIN} attach {url} --token-file {control} --tls-pin {pin}"));
    tmux.wait("connected", Duration::from_secs(15), |s| s.contains("● connected"));
    let _w: Vec<Proc> = (0..2)
        .map(|_| Proc::spawn(&["worker", "--coordinator", &url, "--token-file", &workers, "--tls-pin", &pin]))
        .collect();
    tmux.wait("the coordinator gone after the end", Duration::from_secs(120), |s| {
        s.contains("FINISHED") && s.contains("the coordinator has gone")
    });
    tmux.keys(&["q"]);
}

/// A language model in the cockpit: the Dashboard charts the held-out loss in nats per
/// character and its perplexity, and Logs holds a sample of generated text after each epoch.
#[test]
fn the_cockpit_shows_a_language_models_loss_perplexity_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("lines.txt");
    std::fs::write(&text, "to be or not to be, that is the question\n".repeat(400)).unwrap();
    let job = dir.path().join("lm.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"lm\"\n[data]\ntrain = \"{}\"\nformat = \"text\"\ncontext = 16\nholdout = 0.1\n\
             [train]\nepochs = 3\nbatch_size = 16\nupdater = {{ kind = \"adam\", lr = 0.01 }}\n\
             [cluster]\nworkers = 1\n\
             [[model.layers]]\ntype = \"embedding\"\ndim = 16\n[[model.layers]]\ntype = \"lstm\"\nunits = 32\n",
            text.display()
        ),
    )
    .unwrap();
    let tmux = Tmux::new(120, 36);
    tmux.run(&format!("cd {} && {BIN} cockpit --job {}", dir.path().display(), job.display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("[Setup]"));
    tmux.keys(&["s"]);
    tmux.wait("the finished job", Duration::from_secs(120), |s| s.contains("FINISHED"));
    tmux.show("Dashboard");
    let screen = tmux.wait("the language model's chart", Duration::from_secs(10), |s| {
        s.contains("nats/token, perplexity")
    });
    assert!(!screen.contains("Test accuracy"), "{screen}");
    tmux.show("Logs");
    let logs = tmux.wait("the samples", Duration::from_secs(10), |s| s.contains("sample after epoch"));
    assert!(logs.contains("sample after epoch 3"), "{logs}");
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
}

/// The figure of each worker in the Workers table's scheme column (`header`), by row.
fn scheme_column(screen: &str, header: &str) -> Vec<String> {
    let Some(head) = screen.lines().find(|l| l.contains("samples/s") && l.contains(header)) else {
        return Vec::new();
    };
    let cells = |l: &str| -> Vec<String> {
        let row = l.trim().trim_start_matches('│').trim_start().trim_start_matches('›').trim();
        row.split_whitespace().map(str::to_string).collect()
    };
    let at = cells(head).iter().position(|w| w == header.trim()).unwrap_or(usize::MAX);
    screen
        .lines()
        .filter_map(|l| {
            let t = cells(l);
            t.first()?.parse::<u32>().ok()?;
            // Header and row line up word for word (id host device state samples/s ...).
            t.get(at).cloned()
        })
        .collect()
}

/// Top-k and PowerSGD in a real terminal: started from the job form, each shows its own figure
/// (this step's k; PowerSGD's rank once its dense warm-up is over) for every worker while it trains.
#[test]
fn the_cockpit_shows_each_schemes_figure_while_it_trains() {
    type Check = fn(&str) -> bool;
    let schemes: [(&str, &str, Check); 2] = [
        ("topk", " k ", |v| v.replace(',', "").parse::<u64>().is_ok_and(|k| k > 0)),
        // Past its warm-up of dense steps, PowerSGD shows its rank.
        ("powersgd", "rank", |v| v.parse::<u32>().is_ok_and(|r| r > 0)),
    ];
    for (mode, header, figure) in schemes {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join(format!("{mode}.toml"));
        std::fs::write(
            &job,
            format!(
                "name = \"{mode}-cockpit\"\n[model]\nhidden = [32]\n[train]\nepochs = 400\n\
                 [sharing]\nmode = \"{mode}\"\n[cluster]\nworkers = 2\n"
            ),
        )
        .unwrap();
        let tmux = Tmux::new(100, 30);
        tmux.run(&format!("{BIN} cockpit --job {}", job.display()));
        tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("[Setup]"));
        tmux.keys(&["s"]);
        tmux.show("Workers");
        let screen = tmux.wait(&format!("{mode}'s figure for both workers"), Duration::from_secs(90), |s| {
            let values = scheme_column(s, header);
            s.contains("RUNNING") && values.len() == 2 && values.iter().all(|v| figure(v))
        });
        assert!(!screen.contains(" tau "), "{mode}: no tau column:\n{screen}");
        tmux.keys(&["x"]);
        tmux.keys(&["y"]);
        tmux.keys(&["q"]);
        tmux.keys(&["y"]);
        tmux.wait("the shell prompt", Duration::from_secs(30), |s| s.contains("PROMPT$"));
    }
}
