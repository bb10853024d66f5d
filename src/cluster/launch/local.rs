//! Workers as child processes of this one. They never outlive it: each is started with
//! PR_SET_PDEATHSIG (from one long-lived thread, because the signal follows the thread that
//! forked, not the process) and also watches its parent itself (`--exit-with-parent`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::{LaunchContext, Launcher};
use crate::cluster::ClusterError;

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type SpawnReply = mpsc::Sender<std::io::Result<Child>>;

/// The thread every child is forked from; it lives as long as the process.
fn spawner() -> &'static Mutex<mpsc::Sender<(Command, SpawnReply)>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<(Command, SpawnReply)>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(Command, SpawnReply)>();
        let _ = std::thread::Builder::new().name("strom-spawner".into()).spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    })
}

/// Spawns `cmd` so that the child is killed when this process dies.
pub fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    lock(spawner()).send((cmd, tx)).map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    rx.recv().map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// The last lines a child printed: what it said before it could connect, or as it died (its
/// logs proper are forwarded over gRPC).
#[derive(Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    const LINES: usize = 20;

    pub fn push(&self, line: String) {
        let mut t = lock(&self.0);
        if t.len() >= Self::LINES {
            t.pop_front();
        }
        t.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        lock(&self.0).iter().cloned().collect()
    }
}

struct Slot {
    name: String,
    child: Child,
    tail: Tail,
    problems: Arc<Mutex<Vec<String>>>,
    reported: bool,
}

/// Child processes standing for workers: watched (an exit with an error is reported with the
/// child's last words) and stopped together.
#[derive(Default)]
pub struct ChildSlots {
    slots: Arc<Mutex<Vec<Slot>>>,
    monitor: OnceLock<()>,
}

impl ChildSlots {
    pub fn push(&self, child: Child, tail: Tail, name: String, problems: Arc<Mutex<Vec<String>>>) {
        lock(&self.slots).push(Slot { name, child, tail, problems, reported: false });
    }

    pub fn len(&self) -> usize {
        lock(&self.slots).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Watches the children; reports those that exit with an error, with their last words.
    pub fn start_monitor(&self) {
        self.monitor.get_or_init(|| {
            let slots = Arc::downgrade(&self.slots);
            let _ = std::thread::Builder::new().name("strom-launcher-monitor".into()).spawn(move || {
                while let Some(slots) = slots.upgrade() {
                    for s in lock(&slots).iter_mut() {
                        if s.reported {
                            continue;
                        }
                        if let Ok(Some(status)) = s.child.try_wait() {
                            s.reported = true;
                            if status.success() {
                                tracing::debug!("worker {} (pid {}) exited", s.name, s.child.id());
                            } else {
                                let tail = s.tail.lines();
                                tracing::error!(
                                    "worker {} (pid {}) exited with {status}; its last output:\n{}",
                                    s.name,
                                    s.child.id(),
                                    tail.join("\n")
                                );
                                let last = tail.last().cloned().unwrap_or_default();
                                lock(&s.problems)
                                    .push(format!("worker {} exited with {status}: {last}", s.name));
                            }
                        }
                    }
                    drop(slots);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        });
    }

    /// SIGTERM, a grace period, then SIGKILL.
    pub fn stop_all(&self) {
        let mut slots = lock(&self.slots);
        for s in slots.iter_mut() {
            if let Ok(None) = s.child.try_wait() {
                // SAFETY: signalling our own child by pid.
                unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM) };
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        for s in slots.iter_mut() {
            while matches!(s.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(None) = s.child.try_wait() {
                let _ = s.child.kill();
            }
            let _ = s.child.wait();
            s.reported = true;
        }
    }
}

#[derive(Default)]
pub struct LocalLauncher {
    children: ChildSlots,
}

/// Keeps the last lines of a child's stderr (its logs are forwarded over gRPC; this is for
/// what it says before it can connect, or when it dies).
fn keep_tail(stderr: impl std::io::Read + Send + 'static, tail: Tail) {
    let _ = std::thread::Builder::new().name("strom-child-stderr".into()).spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tail.push(line);
        }
    });
}

impl Launcher for LocalLauncher {
    fn start(&self, count: usize, ctx: &LaunchContext) -> Result<(), ClusterError> {
        self.children.start_monitor();
        for _ in 0..count {
            let mut cmd = Command::new(&ctx.binary);
            cmd.args(ctx.worker_args(false))
                .args(["--log-format", "json", "--exit-with-parent", &std::process::id().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = spawn_tied(cmd)
                .map_err(|e| ClusterError::Launch(format!("cannot start {}: {e}", ctx.binary.display())))?;
            let tail = Tail::default();
            if let Some(stderr) = child.stderr.take() {
                keep_tail(stderr, tail.clone());
            }
            let index = self.children.len();
            tracing::info!("started worker process {} (#{index})", child.id());
            self.children.push(child, tail, format!("process #{index}"), ctx.problems.clone());
        }
        Ok(())
    }

    fn stop_all(&self) {
        self.children.stop_all();
    }

    fn describe(&self) -> String {
        "local processes".into()
    }
}

impl Drop for LocalLauncher {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// `--exit-with-parent PID`: end this process when that one is gone.
pub fn exit_with_parent(pid: u32) {
    let _ = std::thread::Builder::new().name("strom-parent-watch".into()).spawn(move || {
        loop {
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } as u32 != pid {
                eprintln!("strom worker: parent process {pid} is gone; exiting");
                std::process::exit(3);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
}
