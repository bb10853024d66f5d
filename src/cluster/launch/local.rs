//! Workers as child processes of this one. They never outlive it: each is started with
//! PR_SET_PDEATHSIG (from one long-lived thread, because the signal follows the thread that
//! forked, not the process) and also watches its parent itself (`--exit-with-parent`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

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

/// Starts a worker's process again after it crashed: the restart's number in, the new child
/// and the tail of its output out.
pub type Respawn = Box<dyn Fn(u32) -> std::io::Result<(Child, Tail)> + Send>;

struct Slot {
    name: String,
    child: Child,
    tail: Tail,
    problems: Arc<Mutex<Vec<String>>>,
    reported: bool,
    respawn: Option<Respawn>,
    restarts: u32,
    max_restarts: u32,
    /// A restart is due at this time.
    due: Option<Instant>,
}

/// The wait before restart `n` (1-based): 1, 2, 4, ... seconds, at most 30.
fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

/// Child processes standing for workers: watched (an exit with an error is reported with the
/// child's last words, and restarted up to `cluster.max_restarts` times with backoff when the
/// launcher can) and stopped together.
#[derive(Default)]
pub struct ChildSlots {
    slots: Arc<Mutex<Vec<Slot>>>,
    monitor: OnceLock<()>,
    stopping: Arc<AtomicBool>,
}

impl ChildSlots {
    pub fn push(
        &self,
        child: Child,
        tail: Tail,
        name: String,
        problems: Arc<Mutex<Vec<String>>>,
        respawn: Option<Respawn>,
        max_restarts: u32,
    ) {
        lock(&self.slots).push(Slot {
            name,
            child,
            tail,
            problems,
            reported: false,
            respawn,
            restarts: 0,
            max_restarts,
            due: None,
        });
    }

    pub fn len(&self) -> usize {
        lock(&self.slots).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Restarts so far, per worker slot.
    pub fn restarts(&self) -> Vec<(String, u32)> {
        lock(&self.slots).iter().map(|s| (s.name.clone(), s.restarts)).collect()
    }

    /// Watches the children; reports those that exit with an error, with their last words, and
    /// restarts them while restarts are left.
    pub fn start_monitor(&self) {
        self.monitor.get_or_init(|| {
            let slots = Arc::downgrade(&self.slots);
            let stopping = self.stopping.clone();
            let _ = std::thread::Builder::new().name("strom-launcher-monitor".into()).spawn(move || {
                while let Some(slots) = slots.upgrade() {
                    for s in lock(&slots).iter_mut() {
                        if stopping.load(Ordering::Acquire) {
                            break;
                        }
                        watch(s);
                    }
                    drop(slots);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        });
    }

    /// SIGTERM, a grace period, then SIGKILL; nothing is restarted any more.
    pub fn stop_all(&self) {
        self.stopping.store(true, Ordering::Release);
        let mut slots = lock(&self.slots);
        for s in slots.iter_mut() {
            if let Ok(None) = s.child.try_wait() {
                // SAFETY: signalling our own child by pid.
                unsafe { libc::kill(s.child.id() as libc::pid_t, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for s in slots.iter_mut() {
            while matches!(s.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(None) = s.child.try_wait() {
                let _ = s.child.kill();
            }
            let _ = s.child.wait();
            s.reported = true;
            s.due = None;
        }
    }
}

/// One look at one child: its exit reported, its restart scheduled or started.
fn watch(s: &mut Slot) {
    if let Some(due) = s.due {
        if Instant::now() < due {
            return;
        }
        s.due = None;
        let n = s.restarts + 1;
        match s.respawn.as_ref().map(|r| r(n)) {
            Some(Ok((child, tail))) => {
                tracing::warn!(
                    "restarted worker {} as pid {} (restart {n} of {})",
                    s.name,
                    child.id(),
                    s.max_restarts
                );
                (s.child, s.tail, s.restarts, s.reported) = (child, tail, n, false);
            }
            Some(Err(e)) => {
                s.restarts = n;
                tracing::error!("cannot restart worker {}: {e}", s.name);
                lock(&s.problems).push(format!("worker {}: cannot restart: {e}", s.name));
            }
            None => {}
        }
        return;
    }
    if s.reported {
        return;
    }
    let Ok(Some(status)) = s.child.try_wait() else { return };
    s.reported = true;
    if status.success() {
        tracing::debug!("worker {} (pid {}) exited", s.name, s.child.id());
        return;
    }
    let tail = s.tail.lines();
    let last = tail.last().cloned().unwrap_or_else(|| "(it printed nothing)".into());
    let output = if tail.is_empty() {
        "(none: it printed nothing before it exited)".to_string()
    } else {
        tail.join("\n")
    };
    if s.respawn.is_some() && s.restarts < s.max_restarts {
        let wait = backoff(s.restarts + 1);
        tracing::error!(
            "worker {} (pid {}) exited with {status}; restarting it in {} s (restart {} of {}); its last output:\n{}",
            s.name,
            s.child.id(),
            wait.as_secs(),
            s.restarts + 1,
            s.max_restarts,
            output
        );
        s.due = Some(Instant::now() + wait);
        return;
    }
    tracing::error!(
        "worker {} (pid {}) exited with {status}{}; its last output:\n{}",
        s.name,
        s.child.id(),
        if s.restarts > 0 {
            format!(" after {} restart(s); not restarted again", s.restarts)
        } else {
            String::new()
        },
        output
    );
    lock(&s.problems).push(format!("worker {} exited with {status}: {last}", s.name));
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

/// Starts one local worker process; `restart` > 0 tells the coordinator it is a restart.
fn spawn_worker(ctx: &LaunchContext, restart: u32) -> std::io::Result<(Child, Tail)> {
    let mut cmd = Command::new(&ctx.binary);
    cmd.args(ctx.worker_args(false))
        .args(["--log-format", "json", "--exit-with-parent", &std::process::id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if restart > 0 {
        cmd.args(["--restarts", &restart.to_string()]);
    }
    let mut child = spawn_tied(cmd)?;
    let tail = Tail::default();
    if let Some(stderr) = child.stderr.take() {
        keep_tail(stderr, tail.clone());
    }
    Ok((child, tail))
}

impl Launcher for LocalLauncher {
    fn start(&self, count: usize, ctx: &LaunchContext) -> Result<(), ClusterError> {
        self.children.start_monitor();
        for _ in 0..count {
            let (child, tail) = spawn_worker(ctx, 0)
                .map_err(|e| ClusterError::Launch(format!("cannot start {}: {e}", ctx.binary.display())))?;
            let index = self.children.len();
            tracing::info!("started worker process {} (#{index})", child.id());
            let again = ctx.clone();
            self.children.push(
                child,
                tail,
                format!("process #{index}"),
                ctx.problems.clone(),
                Some(Box::new(move |n| spawn_worker(&again, n))),
                ctx.max_restarts,
            );
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
                // Not eprintln!: with the parent gone stderr is often a broken pipe, and a
                // panic here would end this watch instead of the process.
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr(), "strom worker: parent process {pid} is gone; exiting");
                std::process::exit(3);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
}
