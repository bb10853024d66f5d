//! Helpers shared by the end-to-end tests: run the real `strom` binary, make data files.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// A path as the `&str` an argument list takes (test paths are UTF-8).
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn strom() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strom"));
    c.env("RUST_LOG", "warn").env_remove("HADOOP_CONF_DIR").env("NO_COLOR", "1");
    c
}

/// Runs `strom ARGS`; returns (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    outcome(strom().args(args))
}

/// Runs a prepared `strom` command (another directory, other logs); returns (success, stdout,
/// stderr).
pub fn outcome(cmd: &mut Command) -> (bool, String, String) {
    let out: Output = cmd.output().expect("strom runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An IDX file of unsigned bytes.
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// Writes `prefix-images-idx3-ubyte` and `prefix-labels-idx1-ubyte`.
pub fn write_idx_pair(dir: &Path, prefix: &str, images: &[u8], rows: u32, side: u32, labels: &[u8]) {
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), idx(&[rows, side, side], images))
        .unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), idx(&[labels.len() as u32], labels))
        .unwrap();
}

/// Where the real Fashion-MNIST (Debian's dataset-fashion-mnist) is, if installed.
pub fn full_fashion_mnist() -> Option<&'static str> {
    let dir = "/usr/share/datasets/fashion-mnist";
    Path::new(dir).join("train-images-idx3-ubyte.gz").exists().then_some(dir)
}

/// A `strom` process whose output lines are collected; killed when dropped.
pub struct Proc {
    pub child: std::process::Child,
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Output streams not yet at their end (none: the process and its heirs are gone).
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Proc {
    pub fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_env(args, &[])
    }

    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = strom();
        cmd.args(args).env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc::from_command(cmd)
    }

    /// `strom coordinator` on a free loopback port with a job, a token file and an output folder
    /// (and `env`).
    pub fn coordinator(job: &str, token: &str, output: &Path, env: &[(&str, &str)]) -> Proc {
        let output = output.to_str().expect("a UTF-8 path");
        let args = [
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            token,
            "--job",
            job,
            "--output",
            output,
        ];
        Proc::spawn_env(&args, env)
    }

    /// Starts `cmd` (a `strom` command, or one that runs it, such as `ip netns exec`) and
    /// collects its output lines.
    pub fn from_command(mut cmd: Command) -> Proc {
        use std::io::BufRead;
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("strom starts");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for stream in [Box::new(out) as Box<dyn std::io::Read + Send>, Box::new(err)] {
            let (l, o) = (lines.clone(), open.clone());
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
                o.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            });
        }
        Proc { child, lines, open }
    }

    pub fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a line contains `pattern`; returns that line. Gives up early once the
    /// process has closed its output (it ended: the line will never come).
    pub fn wait_for(&self, pattern: &str, timeout: std::time::Duration) -> Option<String> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            let ended = self.open.load(std::sync::atomic::Ordering::Acquire) == 0;
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(pattern)) {
                return Some(l.clone());
            }
            if ended {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(s)) = self.child.try_wait() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(std::time::Duration::from_millis(100));
                return Some(s);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    pub fn kill9(&mut self) {
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// The URL a coordinator printed ("coordinator listening on URL").
    pub fn coordinator_url(&self) -> String {
        let line = self
            .wait_for("coordinator listening on", std::time::Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no coordinator URL in:\n{}", self.output()));
        line.rsplit(' ').next().unwrap().trim().to_string()
    }

    /// The fingerprint a coordinator beyond loopback prints for its own certificate
    /// (`tls pin: sha256:<hex> (...)`).
    pub fn tls_pin(&self) -> String {
        let line = self
            .wait_for("tls pin: sha256:", std::time::Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no fingerprint printed:\n{}", self.output()));
        line.split_whitespace().nth(2).unwrap().to_string()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token file in `dir`.
pub fn token_file(dir: &Path, token: &str) -> String {
    let p = dir.join(format!("token-{}", token.len()));
    std::fs::write(&p, token).unwrap();
    p.display().to_string()
}

/// A job file for cluster tests: the demo data, workers join by themselves.
pub fn cluster_job(dir: &Path, epochs: u32, extra: &str) -> String {
    let p = dir.join("job.toml");
    std::fs::write(
        &p,
        format!("name = \"cluster-test\"\n[train]\nepochs = {epochs}\n[sharing]\nmode = \"threshold\"\n[cluster]\nlauncher = \"none\"\nworkers = 2\n{extra}\n"),
    )
    .unwrap();
    p.display().to_string()
}

/// `strom worker` joining the coordinator at `url` with `token` (and `extra` flags).
pub fn worker(url: &str, token: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["worker", "--coordinator", url, "--token-file", token];
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

/// `strom coordinator` on `listen` running `job`, its model in `dir/m` and its summary in
/// `summary` (and `extra` flags).
pub fn coordinator(dir: &Path, listen: &str, token: &str, job: &str, summary: &Path, extra: &[&str]) -> Proc {
    let output = dir.join("m");
    let mut args = vec!["coordinator", "--listen", listen, "--token-file", token, "--job", job];
    args.extend_from_slice(&["--output", path(&output), "--summary-json", path(summary)]);
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

/// The `--listen` address of a loopback coordinator found at `url` (started on
/// `127.0.0.1:0`), for its restart to take the same port: a test that finds a free port and
/// releases it can lose it to another test before the coordinator binds it (CI did: `Address
/// already in use`).
pub fn same_listen(url: &str) -> String {
    let port = url.trim_end_matches('/').rsplit(':').next().unwrap_or_else(|| panic!("no port in {url}"));
    format!("127.0.0.1:{port}")
}

/// A tmux server of its own (one socket per test) running a shell in an `w` x `h` pane.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new(w: u16, h: u16) -> Tmux {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!("strom-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let t = Tmux { socket };
        t.tmux(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            "env PS1='PROMPT$ ' TERM=xterm-256color bash --norc --noprofile",
        ]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types a command line and presses Enter.
    pub fn run(&self, line: &str) {
        self.tmux(&["send-keys", "-t", "main", "-l", line]);
        self.tmux(&["send-keys", "-t", "main", "Enter"]);
    }

    /// Sends keys by tmux name ("s", "Tab", "Enter", "q").
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Presses Tab until the screen titled `title` (Setup, Dashboard, Workers, Logs) shows.
    pub fn show(&self, title: &str) {
        let tab = format!("[{title}]");
        let start = std::time::Instant::now();
        while !self.screen().contains(&tab) {
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "no {tab} tab:\n{}", self.screen());
            self.keys(&["Tab"]);
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "main"])
    }

    /// Waits until the screen satisfies `ok`; returns it, or panics with the last screen.
    pub fn wait(&self, what: &str, timeout: std::time::Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = std::time::Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; the screen:\n{s}");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// Pids of the worker processes a launcher in process `parent` started (they name it with
/// `--exit-with-parent`).
pub fn workers_of(parent: u32) -> Vec<u32> {
    pids_with(&format!("--exit-with-parent {parent}"))
}

/// Pids of live processes whose command line contains `marker`.
pub fn pids_with(marker: &str) -> Vec<u32> {
    let out = std::process::Command::new("pgrep").args(["-f", "--", marker]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The distinct workers that reported training steps in a `--metrics-out` file.
pub fn workers_that_trained(metrics: &Path) -> std::collections::BTreeSet<u64> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "step")
        .map(|v| v["worker"].as_u64().unwrap())
        .collect()
}

/// The words of the right-hand panel of a side-by-side screen (the Setup screen's info panel),
/// joined by single spaces: wrapped text reads as one line.
pub fn right_panel_words(screen: &str) -> String {
    let panel: String = screen.lines().filter_map(|l| l.split("││").nth(1)).collect::<Vec<_>>().join(" ");
    panel
        .split(|c: char| c == '│' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Real Spark's `spark-submit`: STROM_SPARK_SUBMIT, `.venv-spark` (which `.ci/test` fills with
/// pyspark), or PATH. Outside CI, None (the caller skips, saying so); in CI, a failure.
pub fn spark_submit() -> Option<std::path::PathBuf> {
    let candidates = [
        std::env::var_os("STROM_SPARK_SUBMIT").map(std::path::PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-spark/bin/spark-submit")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.exists()).or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|d| d.join("spark-submit")).find(|p| p.exists())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have pyspark (.ci/test installs it into .venv-spark)"
        );
        eprintln!(
            "skipped: no spark-submit (python3 -m venv .venv-spark && .venv-spark/bin/pip install pyspark)"
        );
    }
    found
}

pub mod minidfs;

/// `n` sequences of 4..=16 steps of two features in `dir/features` and `dir/labels` (sequence
/// CSV): the class is whether the *last* step's first feature is positive, so a model that
/// reads the padding past a sequence's end instead of its last step cannot tell.
#[allow(dead_code)]
pub fn ragged_sequences(dir: &Path, n: usize, seed: u64) {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for sub in ["features", "labels"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for i in 0..n {
        let steps = 4 + (next() * 13.0) as usize;
        let mut text = String::new();
        let mut last = 0.0;
        for _ in 0..steps {
            let (a, b) = (next() * 2.0 - 1.0, next() * 2.0 - 1.0);
            text.push_str(&format!("{a:.4},{b:.4}\n"));
            last = a;
        }
        std::fs::write(dir.join(format!("features/{i:04}.csv")), text).unwrap();
        std::fs::write(dir.join(format!("labels/{i:04}.csv")), format!("{}\n", (last > 0.0) as u8)).unwrap();
    }
}
