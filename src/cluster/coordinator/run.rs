//! One running job on the coordinator: the hub, the links to its workers (each with a bounded
//! inbox of relayed updates), the driver that evaluates epochs, the history the cockpit
//! watches, checkpoints, and the end result.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::watch::History;
use crate::backend::DeviceInfo;
use crate::cluster::checkpoint::Checkpoint;
use crate::cluster::relay::{self, Tree};
use crate::data::{DataShape, Dataset};
use crate::engine::driver::{Driver, Evaluation};
use crate::engine::hub::{
    EpochNext, EpochReady, Hub, HubConfig, HubState, ReduceKey, Reduced, RoundError, Work, WorkerId,
};
use crate::engine::inbox::{Inbox, SharedMessage};
use crate::engine::partition::Plan;
use crate::engine::{EpochSummary, FinishedRun, Observer, StepStats, TrainOutcome};
use crate::job::{LauncherKind, ResolvedJob};
use crate::nn::Architecture;
use crate::nn::saved::Preprocessing;
use crate::sharing::codec;
use crate::storage::Location;

/// Links of lost, removed or failed workers are dropped after this long.
const FORGET_GONE_WORKERS: Duration = Duration::from_secs(600);

/// Messages a worker may have waiting on the coordinator before further ones are merged.
const RELAY_INBOX: usize = 256;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a run starts from: fresh, or a checkpoint.
pub struct RunSetup {
    pub job: ResolvedJob,
    pub architecture: Architecture,
    pub shape: DataShape,
    pub test: Option<Arc<Dataset>>,
    /// The fitted transform process (tables), sent to every worker.
    pub process: Option<crate::data::transform::TransformProcess>,
    /// The model state to start from: parameters, then running state.
    pub state: Vec<f32>,
    pub start_epoch: u32,
    pub partitions_done: Vec<u32>,
    pub tau: Option<f32>,
    pub steps: u64,
    pub history: Vec<EpochSummary>,
    pub checkpoint_dir: Option<Location>,
    pub checkpoint_every: u64,
    pub checkpoint_seq: u64,
    /// Where the model goes when the run finishes or is stopped (`None`: nowhere).
    pub output: Option<Location>,
}

/// Which checkpoint [`JobRun::write_checkpoint`] writes.
pub enum CheckpointWrite {
    /// Every `checkpoint_every` steps, skipped while another write is in progress.
    Periodic,
    /// At an epoch's end, beside the training of the next.
    Epoch,
    /// The run's last, awaited; `failed` marks a run that failed.
    Last { failed: Option<String> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum RunEnd {
    Finished,
    Stopped,
    Failed(String),
}

pub struct RunResult {
    pub end: RunEnd,
    pub outcome: TrainOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Joined,
    Training,
    Waiting,
    Lost,
    /// Removed by request: told to finish, never re-admitted.
    Removed,
    Done,
    Failed,
}

/// The coordinator's side of one worker.
pub struct WorkerLink {
    pub id: WorkerId,
    pub host: String,
    pub pid: u32,
    pub device: Mutex<DeviceInfo>,
    inbox: Mutex<Inbox>,
    /// Wakes the worker's outbound update stream.
    pub ready: Notify,
    pub last_seen: Mutex<Instant>,
    /// The last sign of life of the worker's training thread: a step reported, work asked
    /// for, a barrier or an averaging contribution.
    pub last_progress: Mutex<Instant>,
    /// Since when the job has been waiting for this worker (the hub's `awaits`).
    awaited_since: Mutex<Option<Instant>>,
    /// Restarts of this worker's process by its launcher.
    pub restarts: u32,
    pub latest: Mutex<Option<StepStats>>,
    pub state: Mutex<LinkState>,
    pub detail: Mutex<String>,
    pub seq: AtomicU64,
    /// Set when the link is replaced or lost: its streams end.
    pub closed: AtomicBool,
    /// The worker has been answered that the job is over (so the coordinator may exit).
    pub told_over: AtomicBool,
    /// A removed worker came back and was refused: it knows its part has ended.
    pub rejoin_refused: AtomicBool,
    /// What every call of this worker's session proves itself with.
    pub secret: String,
}

impl WorkerLink {
    fn push(&self, message: SharedMessage) {
        lock(&self.inbox).push(message);
        self.ready.notify_one();
    }

    /// Moves waiting updates into `out` (and a dense sum of merged ones into `merged`).
    pub fn take(&self, out: &mut VecDeque<SharedMessage>, merged: &mut Vec<f32>) -> bool {
        lock(&self.inbox).take(out, merged)
    }

    pub fn merged_total(&self) -> u64 {
        lock(&self.inbox).merged_total()
    }

    pub fn touch(&self) {
        *lock(&self.last_seen) = Instant::now();
    }

    fn progressed(&self) {
        *lock(&self.last_progress) = Instant::now();
    }

    pub fn set_state(&self, s: LinkState) {
        *lock(&self.state) = s;
    }

    pub fn state(&self) -> LinkState {
        *lock(&self.state)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether the worker is still part of the job's exchange: its link open, neither lost nor
    /// removed (the star queues it updates; the tree places it).
    fn receives_updates(&self) -> bool {
        !self.is_closed() && !matches!(self.state(), LinkState::Lost | LinkState::Removed)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_one();
    }
}

struct CheckpointState {
    dir: Option<Location>,
    every: u64,
    seq: u64,
    steps_at_last: u64,
    writing: bool,
}

/// The run's bookkeeping, all behind the one lock `JobRun::state`. Code holding it calls no
/// method of the run that locks it again (std locks are not reentrant).
struct RunState {
    hub: Hub,
    links: BTreeMap<WorkerId, Arc<WorkerLink>>,
    /// What the cockpit watches.
    history: History,
    tau: Option<f32>,
    /// Since when no worker has been live (the start, or the last one lost).
    unmanned_since: Option<Instant>,
    /// Workers removed by request: never admitted again.
    removed: BTreeSet<WorkerId>,
    checkpoint: CheckpointState,
    /// The relay tree, for jobs of more than `cluster.relay.star_max` workers: accepted
    /// updates are numbered into its history instead of queued for each worker.
    relay: Option<Tree>,
}

/// What a joining worker gets besides the job.
pub struct Admitted {
    pub id: WorkerId,
    pub secret: String,
    pub params: Vec<f32>,
    pub epoch: u32,
    /// Relay tree: the last update the replica in `params` includes.
    pub relay_seq: Option<u64>,
}

/// What the caller's observer (progress display, metrics file) is told.
enum Observed {
    Step(StepStats),
    Epoch(EpochSummary),
}

/// The caller's observer on a thread of its own: it may write a terminal or a file, and
/// neither stalls a handler that reports. Closed (and joined) when the run ends, so everything
/// observed is written before the end is announced.
struct ObserverThread {
    tx: Mutex<Option<std::sync::mpsc::Sender<Observed>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl ObserverThread {
    fn start(observer: Option<Box<dyn Observer>>) -> Self {
        let Some(mut observer) = observer else {
            return ObserverThread { tx: Mutex::new(None), thread: Mutex::new(None) };
        };
        let (tx, rx) = std::sync::mpsc::channel::<Observed>();
        let thread = std::thread::Builder::new()
            .name("strom-observer".into())
            .spawn(move || {
                for event in rx {
                    match event {
                        Observed::Step(s) => observer.step(&s),
                        Observed::Epoch(e) => observer.epoch(&e),
                    }
                }
            })
            .map_err(|e| tracing::warn!("no progress display or metrics file: cannot start a thread: {e}"))
            .ok();
        ObserverThread { tx: Mutex::new(thread.is_some().then_some(tx)), thread: Mutex::new(thread) }
    }

    fn is_some(&self) -> bool {
        lock(&self.tx).is_some()
    }

    fn send(&self, event: Observed) {
        if let Some(tx) = lock(&self.tx).as_ref() {
            let _ = tx.send(event);
        }
    }

    /// Closes the channel and waits until everything sent was observed.
    fn finish(&self) {
        lock(&self.tx).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// A read view of one part of the run's state; holds the state lock while it lives.
struct StateRef<'a, T> {
    guard: MutexGuard<'a, RunState>,
    part: fn(&RunState) -> &T,
}

impl<T> Deref for StateRef<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        (self.part)(&self.guard)
    }
}

pub struct JobRun {
    pub job: ResolvedJob,
    pub job_toml: String,
    /// The fitted transform process as JSON (empty for IDX data).
    pub transform_json: String,
    pub architecture: Architecture,
    pub shape: DataShape,
    /// Parameters (what updates address) ...
    pub param_count: usize,
    /// ... and the whole model state (with the running state), what barriers and averaging carry.
    pub state_len: usize,
    /// The run's bookkeeping. Lock order: `driver` before `state`, never `driver` while
    /// `state` is held.
    state: Mutex<RunState>,
    /// The epochs' and steps' figures; held briefly (reports, the tick, the cockpit's totals
    /// take it on the async runtime), never across evaluation or I/O.
    driver: Mutex<Driver>,
    /// The test set's evaluation at each epoch end (seconds), on a blocking thread, under a
    /// lock of its own that nothing on the async runtime takes.
    evaluation: Mutex<Evaluation>,
    observer: ObserverThread,
    /// Wakes long polls (epoch barrier, averaging rounds) after any change of the hub.
    pub changed: Notify,
    /// Signalled (with `state`) when a checkpoint write ends.
    checkpoint_done: Condvar,
    pub started: Instant,
    end: watch::Sender<Option<Arc<RunResult>>>,
    steps_offset: u64,
    pub heartbeat_timeout: Duration,
    /// A worker the job waits for with no training call for this long is lost.
    pub step_timeout: Duration,
    /// A job with no live worker for this long fails.
    reconnect_window: Duration,
    stop_requested: AtomicBool,
    /// Set by the first `finalize` (a stop and the last epoch may end the run together).
    finalizing: AtomicBool,
    /// Update bytes rejected at the relay (forged origin, bad content).
    pub rejected_bytes: AtomicU64,
    /// Calls refused for not proving the worker identity they claimed.
    pub refused: AtomicU64,
    /// What the launcher could not start ("host n2: Connection refused"). Not in `state`: the
    /// launcher's threads hold this `Arc` and know no `JobRun`. A leaf lock, taken alone.
    pub launch_problems: Arc<Mutex<Vec<String>>>,
    /// Where the model goes when the run ends (finished or stopped).
    output: Option<Location>,
    /// Where it went: set once saved (the cockpit shows it).
    saved_to: Mutex<Option<String>>,
    /// Wall time at the end (the elapsed clock stops there).
    ended_after: Mutex<Option<Duration>>,
    /// Since when the job is paused, and the time spent paused before (the ETA counts
    /// training time only).
    paused: Mutex<(Option<Instant>, Duration)>,
}

impl JobRun {
    pub fn new(
        setup: RunSetup,
        observer: Option<Box<dyn Observer>>,
        heartbeat_timeout: Duration,
    ) -> Arc<JobRun> {
        let n = setup.architecture.param_count();
        let cfg = HubConfig {
            scheme: crate::sharing::describe(&setup.job),
            params: n,
            running: setup.architecture.running_len(),
            epochs: setup.job.train.epochs,
            start_epoch: setup.start_epoch,
            plan: Plan::new(
                setup.shape.rows,
                setup.job.train.batch_size,
                setup.job.train.batches_per_partition,
            ),
        };
        let mut hub = Hub::new(cfg, setup.state.clone());
        hub.restore_progress(&setup.partitions_done);
        // Workers that join by themselves: training starts when the job's number has joined
        // (`cluster.min_workers` lowers it), so the first partitions are not all one worker's.
        if setup.job.cluster.launcher == LauncherKind::None {
            let c = &setup.job.cluster;
            hub.wait_for_workers(c.min_workers.unwrap_or(c.workers).max(1));
        }
        let driver = Driver::new(&setup.job, &setup.architecture, setup.shape.rows)
            .with_history(setup.history.clone());
        let evaluation = Evaluation::new(&setup.job, &setup.architecture, setup.test.clone(), &setup.state);
        let mut history = History::default();
        for e in &setup.history {
            history.push_epoch(e);
        }
        Arc::new(JobRun {
            job_toml: setup.job.to_toml(),
            transform_json: setup.process.as_ref().map(|p| p.to_json()).unwrap_or_default(),
            param_count: n,
            state_len: setup.architecture.state_len(),
            state: Mutex::new(RunState {
                hub,
                links: BTreeMap::new(),
                history,
                tau: setup.tau,
                unmanned_since: Some(Instant::now()),
                removed: BTreeSet::new(),
                relay: setup.job.cluster.relay_tree().then(|| Tree::new(setup.job.cluster.relay.fanout, 0)),
                checkpoint: CheckpointState {
                    dir: setup.checkpoint_dir,
                    every: setup.checkpoint_every,
                    seq: setup.checkpoint_seq,
                    steps_at_last: setup.steps,
                    writing: false,
                },
            }),
            driver: Mutex::new(driver),
            evaluation: Mutex::new(evaluation),
            observer: ObserverThread::start(observer),
            changed: Notify::new(),
            checkpoint_done: Condvar::new(),
            started: Instant::now(),
            end: watch::channel(None).0,
            steps_offset: setup.steps,
            heartbeat_timeout,
            step_timeout: Duration::from_secs(setup.job.cluster.step_timeout_secs),
            reconnect_window: Duration::from_secs(setup.job.cluster.reconnect_secs),
            stop_requested: AtomicBool::new(false),
            finalizing: AtomicBool::new(false),
            rejected_bytes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            launch_problems: Arc::default(),
            output: setup.output,
            saved_to: Mutex::new(None),
            ended_after: Mutex::new(None),
            paused: Mutex::new((None, Duration::ZERO)),
            job: setup.job,
            architecture: setup.architecture,
            shape: setup.shape,
        })
    }

    fn state(&self) -> MutexGuard<'_, RunState> {
        lock(&self.state)
    }

    /// The hub, read under the state lock: call nothing else on the run while holding it.
    pub fn hub(&self) -> impl Deref<Target = Hub> + '_ {
        StateRef { guard: self.state(), part: |s| &s.hub }
    }

    /// The history the cockpit watches, under the state lock (as `hub`).
    pub fn history(&self) -> impl Deref<Target = History> + '_ {
        StateRef { guard: self.state(), part: |s| &s.history }
    }

    pub fn links(&self) -> Vec<Arc<WorkerLink>> {
        self.state().links.values().cloned().collect()
    }

    pub fn link(&self, id: WorkerId) -> Option<Arc<WorkerLink>> {
        self.state().links.get(&id).cloned()
    }

    /// Notes that worker `id` was answered that the job is over.
    pub fn told_over(&self, id: WorkerId) {
        if let Some(link) = self.link(id) {
            link.told_over.store(true, Ordering::Release);
        }
    }

    /// Workers that were still in the job when it ended (or were removed from it) and have not
    /// yet been told so: a coordinator about to exit waits a moment for their next call, or
    /// they would take the closed port for a crash and keep retrying.
    pub fn untold_workers(&self) -> usize {
        self.links()
            .iter()
            .filter(|l| match l.state() {
                LinkState::Done => !l.told_over.load(Ordering::Acquire),
                // A removed worker whose session was cut learns it at its next join: wait for
                // that (a finish answered on another of its calls may race the cut).
                LinkState::Removed => !l.rejoin_refused.load(Ordering::Acquire),
                _ => false,
            })
            .count()
    }

    pub fn result(&self) -> watch::Receiver<Option<Arc<RunResult>>> {
        self.end.subscribe()
    }

    pub fn is_over(&self) -> bool {
        self.end.borrow().is_some()
    }

    pub fn tau(&self) -> Option<f32> {
        self.state().tau
    }

    /// Registers a worker (a new one, or one re-joining under its old id); returns its id,
    /// its session secret and what it starts from. An old id is taken back only with the
    /// secret of that id's session (or when this coordinator has never seen it: a restart);
    /// a removed worker is not admitted again.
    pub fn join(
        &self,
        host: String,
        pid: u32,
        device: String,
        previous: Option<(WorkerId, String)>,
        restarts: u32,
    ) -> Result<Admitted, String> {
        let secret = crate::cluster::auth::generate_token().map_err(|e| e.to_string())?;
        let mut st = self.state();
        if let Some((p, _)) = &previous
            && st.removed.contains(p)
        {
            // Refused is how a removed worker learns its part has ended.
            if let Some(link) = st.links.get(p) {
                link.rejoin_refused.store(true, Ordering::Release);
            }
            return Err(format!(
                "worker {p} was removed from this job: its part has ended; it is not admitted again"
            ));
        }
        let old = previous.as_ref().and_then(|(p, _)| st.links.get(p).cloned());
        let id = match (&previous, old) {
            (Some((p, s)), Some(link))
                if crate::cluster::auth::constant_time_eq(s.as_bytes(), link.secret.as_bytes()) =>
            {
                st.hub.rejoin(*p);
                *p
            }
            (Some((p, _)), Some(_)) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "a worker asked for id {p} without that session's secret; it joins as a new worker"
                );
                st.hub.join()
            }
            (Some((p, _)), None) => {
                st.hub.rejoin(*p);
                *p
            }
            (None, _) => st.hub.join(),
        };
        let link = Arc::new(WorkerLink {
            id,
            host,
            pid,
            device: Mutex::new(DeviceInfo { device, ..DeviceInfo::default() }),
            inbox: Mutex::new(Inbox::new(RELAY_INBOX, self.param_count)),
            ready: Notify::new(),
            last_seen: Mutex::new(Instant::now()),
            last_progress: Mutex::new(Instant::now()),
            awaited_since: Mutex::new(None),
            restarts,
            latest: Mutex::new(None),
            state: Mutex::new(LinkState::Joined),
            detail: Mutex::new(String::new()),
            seq: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            told_over: AtomicBool::new(false),
            rejoin_refused: AtomicBool::new(false),
            secret: secret.clone(),
        });
        if let Some(old) = st.links.insert(id, link) {
            old.close();
        }
        if let Some(tree) = &mut st.relay {
            tree.rejoined(id);
        }
        // The replica and the number of the last update it includes, under one hold.
        let relay_seq = st.relay.as_ref().map(|t| t.history.last());
        let params = st.hub.replica().to_vec();
        let epoch = st.hub.epoch();
        let waiting = st.hub.waiting_for_workers();
        let starts = waiting.is_none()
            && st.hub.quorum() > 1
            && st.hub.live_workers() == st.hub.quorum()
            && !st.hub.has_started();
        drop(st);
        let again = if previous.as_ref().is_some_and(|(p, _)| *p == id) { " again" } else { "" };
        let restarted = if restarts > 0 { format!(" (restart {restarts})") } else { String::new() };
        tracing::info!(worker = id, "worker {id} joined{again}{restarted}");
        if let Some((joined, needed)) = waiting {
            tracing::info!(
                "{joined} of {needed} workers have joined; training starts when {needed} have \
                 (cluster.workers, or cluster.min_workers)"
            );
        } else if starts {
            tracing::info!("{} workers have joined: training starts", self.state().hub.quorum());
        }
        self.changed.notify_waiters();
        Ok(Admitted { id, secret, params, epoch, relay_seq })
    }

    /// Relay tree: the history the coordinator serves to its children (None: a star).
    pub fn relay_history(&self) -> Option<Arc<relay::History>> {
        self.state().relay.as_ref().map(|t| t.history.clone())
    }

    /// Relay tree: records what worker `id`'s heartbeat says (where it serves, a parent it
    /// could not reach) and returns its parent (`Some(None)`: the coordinator); None: a star.
    pub fn relay_parent(
        &self,
        id: WorkerId,
        addr: &str,
        unreachable: Option<WorkerId>,
    ) -> Option<Option<(WorkerId, std::net::SocketAddr)>> {
        let mut st = self.state();
        let live: Vec<WorkerId> = st.links.values().filter(|l| l.receives_updates()).map(|l| l.id).collect();
        let tree = st.relay.as_mut()?;
        tree.heard(id, addr, unreachable);
        Some(tree.parent(id, &live))
    }

    /// Counts a call refused for not proving its worker identity.
    pub fn refuse(&self, why: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("refused a call: {why}");
    }

    /// Validates an update from `origin` and relays it to every other live worker.
    pub fn relay(&self, origin: WorkerId, payload: SharedMessage) -> Result<(), String> {
        let claimed = codec::peek_header(&payload).map(|h| h.origin);
        if let Ok(claimed) = claimed
            && claimed != origin
        {
            self.state().hub.counters.updates_rejected += 1;
            self.rejected_bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
            tracing::warn!(worker = origin, "rejected an update claiming to come from worker {claimed}");
            return Err(format!("update claims origin {claimed}, sent by worker {origin}"));
        }
        // Applied to the replica and queued for the others under one hold of the state: a
        // worker joining meanwhile gets either the replica with it, or it in its inbox, never both.
        let mut st = self.state();
        if let Err(e) = st.hub.on_update(origin, &payload) {
            drop(st);
            self.rejected_bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
            if let codec::DecodeError::NotFinite(i) = e {
                // Refused, never relayed; say where the first bad value came from.
                let step = codec::peek_header(&payload).map(|h| h.step).unwrap_or_default();
                let place = self.architecture.describe_param(i).unwrap_or_else(|| format!("parameter {i}"));
                let what = format!(
                    "worker {origin}'s update of its step {step} holds a non-finite value first at {place}: refused, not relayed"
                );
                tracing::error!(worker = origin, "{what}");
                return Err(what);
            }
            return Err(e.to_string());
        }
        if let Some(tree) = &st.relay {
            tree.history.append(origin, payload);
            return Ok(());
        }
        for link in st.links.values() {
            if link.id != origin && link.receives_updates() {
                link.push(payload.clone());
            }
        }
        Ok(())
    }

    pub fn report(&self, id: WorkerId, stats: Vec<StepStats>, device: Option<DeviceInfo>) {
        let link = self.link(id);
        if let Some(link) = &link {
            link.touch();
            if let Some(d) = device {
                *lock(&link.device) = d;
            }
            if link.state() == LinkState::Joined || link.state() == LinkState::Waiting {
                link.set_state(LinkState::Training);
            }
        }
        if stats.is_empty() {
            return;
        }
        if let Some(link) = &link {
            link.progressed();
        }
        let mut stats = stats;
        let time = self.started.elapsed().as_secs_f64();
        for s in &mut stats {
            s.worker = id;
            s.time = time;
        }
        if let (Some(link), Some(last)) = (&link, stats.last()) {
            *lock(&link.latest) = Some(last.clone());
        }
        // The driver first, without the state; then the state, briefly.
        {
            let mut driver = lock(&self.driver);
            for s in &stats {
                driver.on_stats(s);
            }
        }
        if self.observer.is_some() {
            for s in &stats {
                self.observer.send(Observed::Step(s.clone()));
            }
        }
        let has_tau = crate::sharing::describe(&self.job).has_tau;
        let mut st = self.state();
        for s in stats {
            if has_tau {
                st.tau = Some(s.tau);
            }
            st.history.record(&s);
            st.hub.record_stats(s);
        }
    }

    pub fn next_work(&self, id: WorkerId, done: &[crate::engine::Partition]) -> Work {
        let (w, link) = {
            let mut st = self.state();
            for p in done {
                st.hub.partition_done(id, p);
            }
            (st.hub.next_work(id), st.links.get(&id).cloned())
        };
        if let Some(link) = link {
            link.touch();
            link.progressed();
            match w {
                Work::Partition(_) | Work::Idle { .. } => link.set_state(LinkState::Training),
                Work::EpochEnd { .. } | Work::Wait => link.set_state(LinkState::Waiting),
                Work::Finished => {}
            }
        }
        w
    }

    /// A worker reached the barrier. When it completes the barrier, the epoch is evaluated on
    /// a blocking thread and the next one starts.
    pub fn end_epoch(self: &Arc<Self>, id: WorkerId, epoch: u32, params: Vec<f32>) {
        if let Some(link) = self.link(id) {
            link.touch();
            link.progressed();
            link.set_state(LinkState::Waiting);
        }
        let ready = self.state().hub.submit_epoch_end(id, epoch, params);
        self.changed.notify_waiters();
        if let Some(ready) = ready {
            self.spawn_finish_epoch(ready);
        }
    }

    pub fn epoch_result(&self, id: WorkerId, epoch: u32) -> Option<EpochNext> {
        self.state().hub.epoch_result(id, epoch)
    }

    fn spawn_finish_epoch(self: &Arc<Self>, ready: EpochReady) {
        let run = self.clone();
        tokio::task::spawn_blocking(move || run.finish_epoch(ready));
    }

    fn finish_epoch(self: &Arc<Self>, ready: EpochReady) {
        // The evaluation with only its own lock held; then the driver, briefly.
        let eval = lock(&self.evaluation).epoch(&ready);
        let summary = lock(&self.driver).on_epoch_ready(&ready, eval);
        let observed = self.observer.is_some();
        self.observer.send(Observed::Epoch(summary.clone()));
        self.state().history.push_epoch(&summary);
        let line = match summary.test_accuracy() {
            Some(a) => format!(
                "epoch {} done: train loss {:.4}, test accuracy {a:.4}",
                summary.epoch + 1,
                summary.train_loss
            ),
            None => format!("epoch {} done: train loss {:.4}", summary.epoch + 1, summary.train_loss),
        };
        if observed {
            // The observer (`strom train`'s progress) prints the epoch already: once is enough.
            tracing::debug!("{line}");
        } else {
            tracing::info!("{line}");
        }
        let next = self.state().hub.finish_epoch();
        // The workers go on at once; the epoch's checkpoint is written beside them (the last
        // one is awaited by `finalize`).
        self.changed.notify_waiters();
        if next != EpochNext::Finished {
            let run = self.clone();
            tokio::task::spawn_blocking(move || run.write_checkpoint(CheckpointWrite::Epoch));
        }
        if next == EpochNext::Finished {
            let end =
                if self.stop_requested.load(Ordering::Acquire) { RunEnd::Stopped } else { RunEnd::Finished };
            self.finalize(end);
        }
    }

    /// Contributes to a collective round; returns the round to wait for.
    pub fn submit_reduce(
        &self,
        id: WorkerId,
        key: ReduceKey,
        values: &[f32],
        idle: bool,
    ) -> Result<u64, RoundError> {
        if let Some(link) = self.link(id) {
            link.progressed();
        }
        let round = self.state().hub.submit_reduce(id, key, values, idle);
        self.changed.notify_waiters();
        round
    }

    pub fn reduce_result(&self, round: u64, id: WorkerId) -> Option<Reduced> {
        self.state().hub.reduce_result(round, id)
    }

    /// A worker is gone: its partitions return to the queue.
    pub fn lose_worker(self: &Arc<Self>, id: WorkerId, why: &str) {
        self.drop_worker(id, why, LinkState::Lost);
    }

    /// Removes a worker for good: its partitions return to the queue, it is told to finish
    /// and never admitted again.
    pub fn remove_worker(self: &Arc<Self>, id: WorkerId) {
        self.state().removed.insert(id);
        self.drop_worker(id, "removed by request", LinkState::Removed);
    }

    fn drop_worker(self: &Arc<Self>, id: WorkerId, why: &str, state: LinkState) {
        // Not while the state is held: the driver comes first.
        lock(&self.driver).pace.forget(id);
        let mut st = self.state();
        let Some(link) = st.links.get(&id).cloned() else { return };
        if matches!(link.state(), LinkState::Lost | LinkState::Removed | LinkState::Done | LinkState::Failed)
        {
            if state == LinkState::Removed {
                link.set_state(state);
            }
            return;
        }
        if st.hub.is_over() {
            link.set_state(LinkState::Done);
            return;
        }
        link.set_state(state);
        *lock(&link.detail) = why.to_string();
        link.close();
        let requeued_before = st.hub.counters.partitions_requeued;
        let ready = st.hub.remove_worker(id);
        let requeued = st.hub.counters.partitions_requeued - requeued_before;
        drop(st);
        tracing::warn!(
            worker = id,
            "worker {id} ({}) lost: {why}; {requeued} partition(s) go back to the queue",
            link.host
        );
        self.changed.notify_waiters();
        if let Some(ready) = ready {
            self.spawn_finish_epoch(ready);
        }
    }

    /// A worker could not start on this job (its data differs from the plan, or it cannot read
    /// it): it is removed with the reason shown, and the job goes on with the others.
    pub fn refuse_worker(self: &Arc<Self>, id: WorkerId, reason: String) {
        let host = self.link(id).map(|l| l.host.clone()).unwrap_or_default();
        tracing::error!(worker = id, "worker {id} ({host}) refused: {reason}");
        self.drop_worker(id, &format!("refused: {reason}"), LinkState::Failed);
    }

    /// A worker stopped on an error the job cannot survive.
    pub fn worker_failed(self: &Arc<Self>, id: WorkerId, reason: String) {
        if let Some(link) = self.link(id) {
            link.set_state(LinkState::Failed);
            *lock(&link.detail) = reason.clone();
        }
        tracing::error!(worker = id, "worker {id} failed: {reason}");
        self.fail(format!("worker {id}: {reason}"));
    }

    pub fn fail(self: &Arc<Self>, reason: String) {
        self.state().hub.fail(reason.clone());
        self.changed.notify_waiters();
        self.finalize(RunEnd::Failed(reason));
    }

    pub fn pause(&self) -> bool {
        let mut st = self.state();
        let ok = *st.hub.state() == HubState::Running;
        st.hub.pause();
        if ok {
            // Under the state lock, so a resume cannot come between (`paused` is a leaf lock).
            lock(&self.paused).0.get_or_insert_with(Instant::now);
        }
        ok
    }

    /// Adds an open pause to the time paused (at a resume, or the end).
    fn end_pause(&self) {
        let mut paused = lock(&self.paused);
        if let Some(since) = paused.0.take() {
            paused.1 += since.elapsed();
        }
    }

    /// Wall time since the run started, stopped at its end.
    pub fn elapsed(&self) -> Duration {
        lock(&self.ended_after).unwrap_or_else(|| self.started.elapsed())
    }

    /// Time spent training: the wall time less the time paused (what the ETA scales).
    pub fn active_elapsed(&self) -> Duration {
        let (since, before) = *lock(&self.paused);
        let now_paused = since.map(|t| t.elapsed()).unwrap_or_default();
        self.elapsed().saturating_sub(before + now_paused)
    }

    pub fn resume(self: &Arc<Self>) -> bool {
        let mut st = self.state();
        let ok = *st.hub.state() == HubState::Paused;
        let ready = st.hub.resume();
        self.end_pause();
        drop(st);
        self.changed.notify_waiters();
        if let Some(r) = ready {
            self.spawn_finish_epoch(r);
        }
        ok
    }

    /// Ends the job after the workers' current steps; the model so far is kept.
    pub fn stop(self: &Arc<Self>) {
        self.stop_requested.store(true, Ordering::Release);
        self.state().hub.stop();
        self.changed.notify_waiters();
        self.finalize(RunEnd::Stopped);
    }

    fn finalize(&self, end: RunEnd) {
        // One end per run: the model is saved once and the end is not overwritten.
        if self.finalizing.swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&self.ended_after).get_or_insert_with(|| self.started.elapsed());
        self.end_pause();
        let failed = match &end {
            RunEnd::Failed(reason) => Some(reason.clone()),
            _ => None,
        };
        self.write_checkpoint(CheckpointWrite::Last { failed });
        let (mut totals, epochs) = {
            let driver = lock(&self.driver);
            (driver.totals(), driver.epochs.clone())
        };
        // Everything observed is written before the end is announced.
        self.observer.finish();
        let (state, counters, links) = {
            let st = self.state();
            if let Some(tree) = &st.relay {
                tree.history.close();
            }
            (
                st.hub.replica().to_vec(),
                st.hub.counters.clone(),
                st.links.values().cloned().collect::<Vec<_>>(),
            )
        };
        totals.messages_rejected += counters.updates_rejected;
        totals.calls_refused = self.refused.load(Ordering::Relaxed);
        totals.workers_lost = counters.workers_lost;
        totals.partitions_requeued = counters.partitions_requeued;
        let outcome = TrainOutcome { state, optimizer: None, epochs, totals };
        for link in links {
            if matches!(link.state(), LinkState::Training | LinkState::Waiting | LinkState::Joined) {
                link.set_state(LinkState::Done);
            }
        }
        match &end {
            RunEnd::Finished => tracing::info!("job {} finished", self.job.name),
            RunEnd::Stopped => tracing::info!("job {} stopped", self.job.name),
            RunEnd::Failed(r) => tracing::error!("job {} failed: {r}", self.job.name),
        }
        if !matches!(end, RunEnd::Failed(_)) {
            self.save_model(&outcome);
        }
        self.end.send_replace(Some(Arc::new(RunResult { end, outcome })));
        self.changed.notify_waiters();
    }

    /// How the model's inputs are prepared (saved with it, so `strom eval` does the same).
    pub fn preprocessing(&self) -> Preprocessing {
        if !self.transform_json.is_empty()
            && let Ok(p) = crate::data::transform::TransformProcess::from_json(&self.transform_json, "run")
        {
            return Preprocessing::Transform { process: Box::new(p) };
        }
        crate::data::source(self.job.data.format).preprocessing(&self.job.data)
    }

    /// The run as it ended, for saving and reporting.
    pub fn finished<'a>(&'a self, outcome: &'a TrainOutcome) -> FinishedRun<'a> {
        FinishedRun {
            job: &self.job,
            architecture: &self.architecture,
            preprocessing: self.preprocessing(),
            class_names: self.shape.class_names.clone(),
            epochs_before: 0,
            outcome,
        }
    }

    /// Where the model of this run was saved, once it was.
    pub fn saved_to(&self) -> Option<String> {
        lock(&self.saved_to).clone()
    }

    /// Saves the model (the replica as it stands) into the run's output, if it has one.
    fn save_model(&self, outcome: &TrainOutcome) {
        let Some(dir) = &self.output else { return };
        match self.finished(outcome).save(dir) {
            Ok(()) => {
                tracing::info!("model saved to {dir} (strom eval --model {dir})");
                *lock(&self.saved_to) = Some(dir.to_string());
            }
            Err(e) => tracing::error!("saving the model to {dir} failed: {e}"),
        }
    }

    /// Periodic work: history samples, heartbeat timeouts, step-driven checkpoints.
    pub fn tick(self: &Arc<Self>) {
        let now = self.started.elapsed().as_secs_f64();
        self.state().history.tick(now);
        if self.is_over() {
            return;
        }
        for link in self.links() {
            let silent = lock(&link.last_seen).elapsed();
            if silent > self.heartbeat_timeout
                && matches!(link.state(), LinkState::Joined | LinkState::Training | LinkState::Waiting)
            {
                self.lose_worker(link.id, &format!("no heartbeat for {:.0} s", silent.as_secs_f64()));
                continue;
            }
            // A worker is only late while the job waits for it (a partition it holds, the
            // barrier or an averaging round), and counts from when that began.
            let awaited = self.state().hub.awaits(link.id);
            let waited = {
                let mut since = lock(&link.awaited_since);
                if awaited {
                    since.get_or_insert_with(Instant::now).elapsed()
                } else {
                    *since = None;
                    Duration::ZERO
                }
            };
            let idle = lock(&link.last_progress).elapsed().min(waited);
            if idle > self.step_timeout {
                self.lose_worker(
                    link.id,
                    &format!("no training step for {:.0} s while the job waits for it", idle.as_secs_f64()),
                );
            }
        }
        self.check_manned();
        // Links of workers gone for a while are forgotten (removed ones stay refused by id).
        self.state().links.retain(|_, l| {
            !(matches!(l.state(), LinkState::Lost | LinkState::Removed | LinkState::Failed)
                && lock(&l.last_seen).elapsed() > FORGET_GONE_WORKERS)
        });
        let steps = self.total_steps();
        let due = {
            let st = self.state();
            let c = &st.checkpoint;
            c.dir.is_some() && c.every > 0 && !c.writing && steps >= c.steps_at_last + c.every
        };
        if due {
            let run = self.clone();
            tokio::task::spawn_blocking(move || run.write_checkpoint(CheckpointWrite::Periodic));
        }
    }

    /// Fails the job once no worker has been live for the reconnect window: nobody is left to
    /// train it (a restarted worker joins well within the window).
    fn check_manned(&self) {
        let expired = {
            let mut st = self.state();
            if st.hub.live_workers() > 0 {
                st.unmanned_since = None;
                return;
            }
            let start = *st.unmanned_since.get_or_insert_with(Instant::now);
            start.elapsed() >= self.reconnect_window
        };
        if expired {
            let reason = format!(
                "no live worker for {} s (cluster.reconnect_secs) and none restarting: nobody is left to train the job",
                self.reconnect_window.as_secs()
            );
            tracing::error!("{reason}");
            self.state().hub.fail(reason.clone());
            self.changed.notify_waiters();
            self.finalize(RunEnd::Failed(reason));
        }
    }

    /// Takes the driver: never call it with the state held.
    fn total_steps(&self) -> u64 {
        self.steps_of(&lock(&self.driver))
    }

    /// The job's steps so far, those before a resume included.
    fn steps_of(&self, driver: &Driver) -> u64 {
        self.steps_offset + driver.steps()
    }

    /// Writes a checkpoint now (no-op without a checkpoint directory). A periodic write is
    /// skipped while another is in progress; an epoch's write waits for it (off the training
    /// path) and is dropped once the run ends; the last write waits for any in progress, so
    /// the last checkpoint is never lost to a slower earlier one and is complete before the
    /// run reports its end.
    pub fn write_checkpoint(&self, when: CheckpointWrite) {
        let (dir, seq) = {
            let mut st = self.state();
            let Some(dir) = st.checkpoint.dir.clone() else { return };
            loop {
                let last = matches!(when, CheckpointWrite::Last { .. });
                if !last && self.finalizing.load(Ordering::Acquire) {
                    return;
                }
                if !st.checkpoint.writing {
                    break;
                }
                if matches!(when, CheckpointWrite::Periodic) {
                    return;
                }
                st = self.checkpoint_done.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            st.checkpoint.writing = true;
            st.checkpoint.seq += 1;
            (dir, st.checkpoint.seq)
        };
        // A consistent cut, the driver before the state: only epochs the hub has moved past
        // (an epoch whose barrier is being evaluated right now is evaluated again on resume).
        let (steps, epoch, done, tau, epochs, state) = {
            let driver = lock(&self.driver);
            let st = self.state();
            let epoch = st.hub.epoch();
            (
                self.steps_of(&driver),
                epoch,
                st.hub.partitions_done(),
                st.tau,
                driver.epochs.iter().filter(|e| e.epoch < epoch).cloned().collect(),
                st.hub.replica().to_vec(),
            )
        };
        let ckpt = Checkpoint {
            seq,
            job: self.job.clone(),
            architecture: self.architecture.clone(),
            epoch,
            partitions_done: done,
            steps,
            tau,
            epochs,
            state,
            failed: match when {
                CheckpointWrite::Last { failed } => failed,
                _ => None,
            },
        };
        let finite = ckpt.state.iter().all(|v| v.is_finite());
        // The write itself, with no lock held.
        let result = ckpt.write(&dir);
        let mut st = self.state();
        st.checkpoint.writing = false;
        self.checkpoint_done.notify_all();
        match result {
            Ok(()) => {
                st.checkpoint.steps_at_last = steps;
                tracing::debug!("checkpoint {seq} written to {dir} (epoch {}, step {steps})", epoch + 1);
            }
            Err(e) => tracing::error!("cannot write checkpoint to {dir}: {e}"),
        }
        if !finite {
            st.hub.fail(
                "the replica holds NaN or infinity (an update overflowed it); the last checkpoint stands",
            );
        }
        drop(st);
        if !finite {
            self.changed.notify_waiters();
        }
    }

    /// Each worker's step time (the mean of its last steps) and whether it is a straggler.
    pub fn paces(&self) -> BTreeMap<WorkerId, (f64, bool)> {
        let driver = lock(&self.driver);
        self.links()
            .iter()
            .filter_map(|l| Some((l.id, (driver.pace.step_seconds(l.id)?, driver.pace.is_slow(l.id)))))
            .collect()
    }

    pub fn totals(&self) -> crate::engine::Totals {
        let mut t = lock(&self.driver).totals();
        t.messages_rejected += self.state().hub.counters.updates_rejected;
        t
    }
}
