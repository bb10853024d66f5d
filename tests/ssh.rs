//! The SSH launcher against a real sshd: started on a loopback port with throwaway host and
//! user keys, reached with the system ssh client. `.ci/test` installs openssh-server; where
//! sshd is missing outside CI the tests say so and skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{json, run, workers_that_trained};

const BIN: &str = env!("CARGO_BIN_EXE_strom");

struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    user: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The remote workers of every test here carry the same names (`user@127.0.0.1:PORT#N`), and the
/// tests look for them by name: one test at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen");
}

impl Sshd {
    fn start() -> Option<Sshd> {
        if !Path::new("/usr/sbin/sshd").exists() {
            assert!(std::env::var_os("CI").is_none(), "CI must have sshd (.ci/test installs openssh-server)");
            eprintln!("skipped: no /usr/sbin/sshd (apt-get install openssh-server)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\nAuthorizedKeysFile {0}/authorized_keys\n\
             PidFile {0}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n",
            d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // sshd running as root wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let sshd = Sshd { child, port, dir, user };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "sshd did not start: {}", sshd.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(sshd)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `[cluster.ssh]` options that reach this sshd with the throwaway key.
    fn options(&self) -> String {
        let d = self.dir.path().display();
        format!(
            r#"options = ["-i", "{d}/user_key", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile={d}/known_hosts", "-o", "StrictHostKeyChecking=accept-new"]"#
        )
    }

    fn host(&self, binary: &str) -> String {
        format!(r#"{{ host = "{}@127.0.0.1", port = {}, binary = "{binary}" }}"#, self.user, self.port)
    }

    /// The host as people write it, port and all: `user@127.0.0.1:PORT`.
    fn written(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.port)
    }

    /// A key whose login runs `command` instead of what was asked (as a `nologin` shell does).
    fn forced_key(&self, command: &str) -> PathBuf {
        let d = self.dir.path();
        keygen(&d.join("forced_key"));
        let public = std::fs::read_to_string(d.join("forced_key.pub")).unwrap();
        let mut keys = std::fs::read_to_string(d.join("authorized_keys")).unwrap();
        keys.push_str(&format!("command=\"{command}\" {public}"));
        std::fs::write(d.join("authorized_keys"), keys).unwrap();
        d.join("forced_key")
    }
}

fn job(dir: &Path, hosts: &[String], extra: &str, ssh_options: &str) -> PathBuf {
    let p = dir.join("ssh-job.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"ssh-test\"\n[train]\nepochs = 3\n[cluster]\nlauncher = \"ssh\"\nworkers = 2\nhosts = [{}]\n{extra}\n[cluster.ssh]\n{ssh_options}\nconnect_timeout_secs = 5\ncopy_binary = true\n",
            hosts.join(", ")
        ),
    )
    .unwrap();
    p
}

#[test]
fn two_workers_over_ssh_train_the_demo_one_with_a_copied_binary() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sshd) = Sshd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The first host written as people write it (`user@host:port`); the second names a binary
    // in a folder that does not exist yet: copy_binary makes the folder and puts it there.
    let copied = dir.path().join("remote-bin/deeper/strom");
    let hosts = [format!("\"{}\"", sshd.written()), sshd.host(&copied.display().to_string())];
    let job = job(
        dir.path(),
        &hosts,
        "",
        &sshd.options().replace(
            r#"options = ["#,
            &format!(
                r#"binary = "{BIN}"
options = ["#
            ),
        ),
    );
    let summary = dir.path().join("s.json");
    let metrics = dir.path().join("m.jsonl");
    let out = common::strom()
        .env("RUST_LOG", "info")
        .args([
            "train",
            "--metrics-out",
            metrics.to_str().unwrap(),
            "--config",
            job.to_str().unwrap(),
            "--output",
            dir.path().join("m").to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}\nsshd: {}", sshd.log());
    assert!(copied.exists(), "the binary was copied with scp: {stderr}");
    let s = json(&summary);
    assert_eq!(workers_that_trained(&metrics).len(), 2, "both remote workers trained");
    let acc = s["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.78, "accuracy {acc}");
    assert!(s["bytes_sent"].as_u64().unwrap() > 0);
    for w in 0..2 {
        assert!(stderr.contains(&format!("started worker {}#{w} over ssh", sshd.written())), "{stderr}");
    }
    // The job is over: no remote worker is left behind.
    let marker = format!("--name {}#", sshd.written());
    let t = Instant::now();
    while !common::pids_with(&marker).is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(common::pids_with(&marker).is_empty(), "remote workers outlived the job");
}

#[test]
fn unreachable_hosts_are_named_and_the_job_runs_on_the_rest_or_fails() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sshd) = Sshd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let refused = format!(r#"{{ host = "{}@127.0.0.1", port = {closed} }}"#, sshd.user);
    let unknown = r#""nobody@no-such-host.invalid""#.to_string();

    // One good host of three, min_workers = 1: both workers go to the good host.
    let hosts = [refused.clone(), sshd.host(BIN), unknown.clone()];
    let job1 = job(dir.path(), &hosts, "min_workers = 1", &sshd.options());
    let summary = dir.path().join("s.json");
    let started = Instant::now();
    let metrics = dir.path().join("m.jsonl");
    let (ok, _, stderr) = run(&[
        "train",
        "--metrics-out",
        metrics.to_str().unwrap(),
        "--config",
        job1.to_str().unwrap(),
        "--output",
        dir.path().join("m").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        // Named with its port: the good host differs from it only by port.
        stderr.contains(&format!(
            "host {}@127.0.0.1:{closed}: ssh: connect to host 127.0.0.1 port {closed}: Connection refused",
            sshd.user
        )),
        "{stderr}"
    );
    assert!(stderr.contains("host nobody@no-such-host.invalid: ssh: Could not resolve hostname"), "{stderr}");
    assert!(stderr.contains("running on 1 of 3 SSH hosts"), "{stderr}");
    assert!(json(&summary)["test_accuracy"].as_f64().unwrap() > 0.7);
    assert_eq!(workers_that_trained(&metrics).len(), 2, "both workers ran on the good host");

    // No good host: a clear failure, fast, naming every host.
    let job2 = job(dir.path(), &[refused, unknown], "", &sshd.options());
    let t = Instant::now();
    let (ok, _, stderr) = run(&[
        "train",
        "--config",
        job2.to_str().unwrap(),
        "--output",
        dir.path().join("m2").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("no SSH host can run a worker"), "{stderr}");
    assert!(stderr.contains("Connection refused") && stderr.contains("no-such-host.invalid"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(30), "failed in {:?}", t.elapsed());
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn a_killed_remote_worker_is_restarted_and_workers_pin_the_coordinators_certificate() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sshd) = Sshd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let hosts = [sshd.host(BIN), sshd.host(BIN)];
    let job = job(dir.path(), &hosts, "max_restarts = 1\nheartbeat_timeout_secs = 2\n", &sshd.options());
    let summary = dir.path().join("s.json");
    // Beyond loopback: the coordinator serves TLS with a certificate it made, and the SSH
    // launcher hands its fingerprint to the remote workers with the token.
    let mut train = common::Proc::spawn(&[
        "train",
        "--config",
        job.to_str().unwrap(),
        "--epochs",
        "40",
        "--listen",
        "0.0.0.0:0",
        "--output",
        dir.path().join("m").to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    train
        .wait_for("epoch 2/40: train loss", Duration::from_secs(120))
        .unwrap_or_else(|| panic!("{}\nsshd: {}", train.output(), sshd.log()));
    // The remote worker itself (not the ssh client whose command line names it too).
    let pattern = format!("^{BIN} worker .*--name {}#0 ", sshd.written());
    let victims = common::pids_with(&pattern);
    assert_eq!(victims.len(), 1, "one remote worker #0: {victims:?}");
    let cmdline =
        std::fs::read_to_string(format!("/proc/{}/cmdline", victims[0])).unwrap().replace('\0', " ");
    assert!(cmdline.contains("https://") && cmdline.contains("--tls-pin sha256:"), "{cmdline}");
    unsafe { libc::kill(victims[0] as libc::pid_t, libc::SIGKILL) };
    train
        .wait_for("restarted worker", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no restart over ssh:\n{}", train.output()));
    // What it said before it died, or that it said nothing: never an empty line.
    let said = train.output();
    let after = said.split("its last output:").nth(1).unwrap_or_else(|| panic!("{said}"));
    let first = after.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    assert!(!first.is_empty() && !first.contains("restarted worker"), "{said}");
    let status = train.wait_exit(Duration::from_secs(300)).expect("the job finishes");
    assert!(status.success(), "{}", train.output());
    let s = json(&summary);
    assert_eq!(s["epochs"], 40, "{s}");
    assert!(s["test_accuracy"].as_f64().unwrap() >= 0.78, "{s}");
    assert!(train.output().contains("workers pin sha256:"), "{}", train.output());
}

#[test]
fn the_cockpit_adds_a_worker_on_an_ssh_host_to_a_running_local_job() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sshd) = Sshd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("local.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"grow\"\n[model]\nhidden = [32]\n[train]\nepochs = 100000\n[cluster]\nlauncher = \"local\"\nworkers = 1\n\
             [cluster.ssh]\n{}\nbinary = \"{BIN}\"\nconnect_timeout_secs = 5\n",
            sshd.options()
        ),
    )
    .unwrap();
    let tmux = common::Tmux::new(120, 36);
    tmux.run(&format!("{BIN} cockpit --job {} -o {}", job.display(), dir.path().join("m").display()));
    tmux.wait("the job form", Duration::from_secs(30), |s| s.contains("READY") && s.contains("grow"));
    tmux.keys(&["s"]);
    tmux.wait("the local worker", Duration::from_secs(60), |s| s.contains("RUNNING") && s.contains("w0 "));
    tmux.show("Workers");
    tmux.keys(&["a"]);
    tmux.wait("the add prompt", Duration::from_secs(10), |s| s.contains("How many, and where"));
    tmux.keys(&["C-u"]);
    tmux.keys(&["-l", &format!("1 {}@127.0.0.1:{}", sshd.user, sshd.port)]);
    tmux.keys(&["Enter"]);
    // The SSH worker is named by its host, port and number.
    let screen = tmux.wait("the SSH worker training", Duration::from_secs(90), |s| {
        s.contains("Workers (2)")
            && s.contains(&format!(" {}@", sshd.user))
            && s.matches(" traini").count() + s.matches(" waitin").count() >= 2
    });
    assert!(screen.contains("RUNNING"), "{screen}");
    // A host that is no host is refused with the reason.
    tmux.keys(&["a"]);
    tmux.keys(&["C-u"]);
    tmux.keys(&["-l", "1 me@host:notaport"]);
    tmux.keys(&["Enter"]);
    tmux.wait("the refusal", Duration::from_secs(10), |s| s.contains("'notaport' is not a number"));
    tmux.keys(&["x"]);
    tmux.keys(&["y"]);
    tmux.wait("the stopped job", Duration::from_secs(60), |s| s.contains("STOPPED"));
    tmux.keys(&["q"]);
    tmux.wait("the shell prompt", Duration::from_secs(30), |s| s.contains("PROMPT$"));
    assert!(dir.path().join("m/model.json").exists());
    let t0 = Instant::now();
    while !common::pids_with(&format!("{}#0", sshd.written())).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "the SSH worker outlived the job");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_refusing_login_shell_an_unknown_host_key_and_a_bad_port_are_said_plainly() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sshd) = Sshd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = sshd.dir.path().display().to_string();
    let host = [format!("\"{}\"", sshd.written())];
    let train =
        |job: &Path| run(&["train", "--config", job.to_str().unwrap(), "--output", &format!("{d}/m")]);
    // A login shell that refuses (what `nologin` prints, and its exit status).
    let key = sshd.forced_key("echo This account is currently not available.; exit 1");
    let nologin = format!(
        r#"options = ["-i", "{}", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile={d}/known_hosts", "-o", "StrictHostKeyChecking=accept-new"]"#,
        key.display()
    );
    let (ok, _, stderr) = train(&job(dir.path(), &host, "", &nologin));
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "host {}: the login shell there refused the check (exit 1): This account is currently not available.",
            sshd.written()
        )),
        "{stderr}"
    );
    // A host key this machine has never seen, with ssh told to ask (which batch mode cannot).
    let strict = format!(
        r#"options = ["-i", "{d}/user_key", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile={d}/never_seen", "-o", "StrictHostKeyChecking=yes"]"#
    );
    let (ok, _, stderr) = train(&job(dir.path(), &host, "", &strict));
    assert!(!ok);
    assert!(
        stderr.contains("not in this machine's known_hosts")
            && stderr.contains("StrictHostKeyChecking=accept-new"),
        "{stderr}"
    );
    // A port that is no port: refused when the job is read, naming the forms that work.
    let bad = [format!("\"{}@127.0.0.1:ssh\"", sshd.user)];
    let (ok, _, stderr) = train(&job(dir.path(), &bad, "", &sshd.options()));
    assert!(!ok);
    assert!(stderr.contains("'ssh' is not a number") && stderr.contains("port = PORT"), "{stderr}");
    assert_eq!(stderr.matches("is not a number").count(), 1, "{stderr}");
}
