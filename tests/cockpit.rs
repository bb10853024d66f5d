//! The cockpit end to end: the real binary in a real terminal (tmux), driven by keys.

mod common;

use std::time::Duration;

use common::{Proc, Tmux, cluster_job, pids_with, token_file};

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
    tmux.wait("the shell prompt", Duration::from_secs(20), |s| s.contains("PROMPT$"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(pids_with(&job.display().to_string()).is_empty(), "the cockpit exited");
    assert!(
        pids_with(&format!("strom-cockpit-token-{}", cockpit[0])).is_empty(),
        "no worker outlives a quit"
    );
    let t = std::fs::read_to_string(&timing).unwrap();
    assert!(t.contains("first_frame_ms") && t.contains("first_data_frame_ms"), "{t}");
}

#[test]
fn attach_follows_a_coordinator_through_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), "0123456789abcdef0123456789abcdef");
    let job = cluster_job(dir.path(), 300, "checkpoint_every = 100");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let ckpt = dir.path().join("ckpt").display().to_string();
    let args = [
        "coordinator",
        "--listen",
        &listen,
        "--token-file",
        &token,
        "--job",
        &job,
        "--checkpoint-dir",
        &ckpt,
    ];
    let mut coordinator = Proc::spawn(&args);
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
    let _again = Proc::spawn(&args);
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
