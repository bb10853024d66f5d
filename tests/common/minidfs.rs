//! A real HDFS for the tests: Hadoop's own MiniDFSCluster (a namenode and datanodes in one JVM,
//! `tests/hdfs/minidfs`), started on free ports, talked to over the wire by Strom's HDFS client.
//!
//! The JVM reads commands on its stdin and shuts down when stdin closes, so it never outlives
//! the test process: a dropped [`MiniDfs`] closes it, and so does the process's exit (also after
//! a failed test, whose panic never runs the destructors of statics).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use strom::storage::Location;

/// The harness's Maven project, relative to the repository.
const HARNESS: &str = "tests/hdfs/minidfs";
/// Starting a JVM with a namenode and a datanode takes seconds; a secure or HA cluster more.
const READY_WITHIN: Duration = Duration::from_secs(240);

pub struct MiniDfs {
    child: Child,
    stdin: Mutex<Option<ChildStdin>>,
    replies: Mutex<Receiver<String>>,
    /// The ready line's `key=value` fields (`url`, `conf`, and per option `nn0`, `viewfs`, ...).
    pub fields: HashMap<String, String>,
    dir: tempfile::TempDir,
}

/// Builds the harness once per test binary (Maven, offline after the first time) and returns
/// the java command line's class path.
fn classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(root.join(HARNESS).join("build.sh"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {HARNESS}/build.sh: {e}"));
        if !out.status.success() {
            panic!(
                "the HDFS tests need a real namenode, which needs Java 17 and Maven (Debian: apt \
                 install openjdk-17-jdk-headless maven; `bash .ci/run` installs them); building \
                 {HARNESS} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let target = root.join(HARNESS).join("target");
        let deps = std::fs::read_to_string(target.join("classpath.txt"))
            .unwrap_or_else(|e| panic!("{HARNESS}/target/classpath.txt: {e}"));
        format!("{}:{}", target.join("classes").display(), deps.trim())
    })
}

impl MiniDfs {
    /// Starts a cluster with the harness's options (`--ha`, `--viewfs`, `--kerberos`,
    /// `--datanodes N`) and waits for its ready line.
    pub fn start(options: &[&str]) -> MiniDfs {
        let dir = tempfile::Builder::new().prefix("strom-minidfs-").tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("minidfs.log")).unwrap();
        let mut child = Command::new("java")
            .arg("-Xmx1g")
            .arg("-cp")
            .arg(classpath())
            .arg("strom.minidfs.MiniDfs")
            .arg("--dir")
            .arg(dir.path())
            .args(options)
            // The JVM's user is the superuser; the client (this user) must not be one, so
            // permission checks apply to it.
            .env("HADOOP_USER_NAME", "hdfs")
            .env_remove("HADOOP_CONF_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start java (is a JDK installed?): {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut dfs =
            MiniDfs { child, stdin: Mutex::new(stdin), replies: Mutex::new(rx), fields: HashMap::new(), dir };
        let line = dfs.next_line(READY_WITHIN).unwrap_or_else(|| {
            panic!("MiniDFS {options:?} did not start within {READY_WITHIN:?}:\n{}", dfs.log_tail())
        });
        let Some(rest) = line.strip_prefix("MINIDFS READY") else {
            panic!("MiniDFS {options:?}: {line}\n{}", dfs.log_tail());
        };
        dfs.fields = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        dfs
    }

    /// One plain cluster (a namenode, a datanode) shared by the tests of one binary.
    pub fn shared() -> &'static MiniDfs {
        static SHARED: OnceLock<MiniDfs> = OnceLock::new();
        SHARED.get_or_init(|| MiniDfs::start(&[]))
    }

    fn next_line(&self, within: Duration) -> Option<String> {
        self.replies.lock().unwrap().recv_timeout(within).ok()
    }

    /// Sends a harness command (`failover`, `kill-active`, `ping`); returns its `OK ...` reply.
    pub fn command(&self, command: &str) -> String {
        {
            let mut stdin = self.stdin.lock().unwrap();
            let s = stdin.as_mut().expect("the harness is running");
            writeln!(s, "{command}").and_then(|_| s.flush()).expect("the harness reads commands");
        }
        let reply = self
            .next_line(Duration::from_secs(120))
            .unwrap_or_else(|| panic!("no answer to `{command}`:\n{}", self.log_tail()));
        assert!(reply.starts_with("OK"), "`{command}`: {reply}\n{}", self.log_tail());
        reply
    }

    /// `hdfs://127.0.0.1:PORT` (or `hdfs://ns1` for an HA pair).
    pub fn url(&self) -> &str {
        &self.fields["url"]
    }

    /// `url` + `path` (`path` starts with `/`).
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// The directory with the cluster's `core-site.xml` and `hdfs-site.xml`.
    pub fn conf_dir(&self) -> PathBuf {
        PathBuf::from(&self.fields["conf"])
    }

    /// A new directory of the cluster's for one test, world-writable like `/tmp`.
    pub fn scratch(&self, name: &str) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = self.at(&format!("/tmp/{name}-{}-{n}", std::process::id()));
        Location::parse(&url).unwrap().create_dir_all().unwrap_or_else(|e| panic!("{url}: {e}"));
        url
    }

    /// Copies local bytes to `url` (through Strom's own client).
    pub fn put(&self, url: &str, bytes: &[u8]) {
        Location::parse(url).unwrap().write_atomic(bytes).unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("minidfs.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- minidfs.log (last lines) ---\n{}", lines[lines.len().saturating_sub(40)..].join("\n"))
    }
}

impl Drop for MiniDfs {
    fn drop(&mut self) {
        // EOF on its stdin shuts the cluster down; give it a moment, then make sure.
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
