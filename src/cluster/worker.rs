//! `strom worker`: joins a coordinator, loads the job's data, and trains with the same worker
//! loop as the embedded engine over a gRPC transport. If the coordinator goes away it retries
//! with capped, jittered backoff, re-joins under its old id and continues from the replica.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use strom_proto::tls::ClientTls;
use strom_proto::v1 as pb;
use strom_proto::v1::cluster_client::ClusterClient;
use tokio::runtime::Runtime;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::ClusterError;
use super::auth::{AttachToken, WorkerSession};
use super::convert::{
    device_to_pb, params_from_bytes, params_to_bytes, partition_to_pb, reduce_from_bytes, reduce_to_bytes,
    stats_to_pb,
};
use super::coordinator::MAX_MESSAGE;
use super::relay::{self, Follow, History, Parent, RelayNode};
use crate::backend::{self, DeviceInfo};
use crate::data;
use crate::data::transform::TransformProcess;
use crate::engine::StepStats;
use crate::engine::hub::{EpochNext, Work};
use crate::engine::inbox::{Inbox, SharedMessage};
use crate::engine::partition::Partition;
use crate::engine::worker::{Transport, TransportError, WorkerLoop, WorkerSummary};
use crate::job::{BackendKind, JobSpec, ResolvedJob};
use crate::nn::Architecture;
use crate::rng::Rng;
use crate::sharing::{Collective, Link, Reduce};
use crate::telemetry::{LogEvent, log_tap};

const INBOX: usize = 64;
/// How long a worker tries to reach its coordinator before it knows the job's setting.
pub const DEFAULT_RECONNECT_SECS: u64 = 300;
const REPORT_EVERY: Duration = Duration::from_millis(100);
/// Deadlines of the unary calls. Streams (updates, reports) have none: HTTP/2 keep-alive finds
/// a dead peer, and a job's streams live as long as the job.
const SHARD_DEADLINE: Duration = Duration::from_secs(30);
/// The barrier and averaging rounds are long polls of up to 20 s each.
const LONG_POLL_DEADLINE: Duration = Duration::from_secs(60);
const HEARTBEAT_DEADLINE: Duration = Duration::from_secs(10);
/// Step reports kept while the coordinator cannot take them; older ones are dropped (counted).
const MAX_UNSENT_STATS: usize = 4096;

pub struct WorkerConfig {
    pub url: String,
    pub token: Option<String>,
    pub tls: Option<ClientTls>,
    /// How long the worker keeps trying to reach its coordinator (first join or after losing
    /// it) before it gives up; `None`: the job's `cluster.reconnect_secs` once joined, 300 s
    /// before.
    pub reconnect: Option<Duration>,
    /// Also give up after this many consecutive failed attempts.
    pub retries: Option<u32>,
    pub connect_timeout: Duration,
    /// Overrides the job's backend (`--backend`).
    pub backend: Option<BackendKind>,
    /// A label for this worker in the cockpit (default: the host name).
    pub host: Option<String>,
    /// Restarts of this worker's process by its launcher, told to the coordinator.
    pub restarts: u32,
}

impl WorkerConfig {
    pub fn new(url: impl Into<String>) -> Self {
        WorkerConfig {
            url: url.into(),
            token: None,
            tls: None,
            reconnect: None,
            retries: None,
            connect_timeout: Duration::from_secs(5),
            backend: None,
            host: None,
            restarts: 0,
        }
    }
}

type Client = ClusterClient<InterceptedService<Channel, WorkerSession>>;

/// One connection's worth of streams and tasks.
struct Session {
    client: Client,
    updates: mpsc::Sender<pb::Update>,
    reports: mpsc::Sender<pb::WorkerReport>,
    broken: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Session {
    fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(s) = std::str::from_utf8(&buf[..end])
            && !s.is_empty()
        {
            return s.to_string();
        }
    }
    "localhost".into()
}

/// The worker's side of the wire, behind the engine's [`Transport`].
pub struct GrpcTransport {
    rt: Arc<Runtime>,
    cfg: WorkerConfig,
    attach: AttachToken,
    host: String,
    id: Option<u32>,
    /// The current session's secret (proves `id` when re-joining after a lost connection).
    secret: Option<String>,
    param_count: usize,
    /// Parameters plus running state: the model state that joins and barriers carry.
    state_len: usize,
    session: Option<Session>,
    inbox: Arc<Mutex<Inbox>>,
    done: Vec<pb::Partition>,
    reset: Option<Arc<Vec<f32>>>,
    stats: Vec<pb::StepStats>,
    /// The latest step, re-sent at the barrier (the driver ignores steps it has seen).
    last_stats: Option<pb::StepStats>,
    last_flush: Instant,
    logs: broadcast::Receiver<LogEvent>,
    dropped_reports: u64,
    seq: u64,
    device: DeviceInfo,
    finished: bool,
    /// The worker could not start on the job: its last report says so (removed, not failed).
    refused: bool,
    rng: Rng,
    /// Relay tree: this worker's relay server, started at the first join of a tree job (None
    /// inside: it cannot serve and stays a leaf). It outlives sessions: children keep reading.
    relay: tokio::sync::OnceCell<Option<Arc<RelayNode>>>,
}

/// What joining returned.
struct Joined {
    secret: String,
    job_toml: String,
    architecture_json: String,
    transform_json: String,
    params: Vec<u8>,
    epoch: u32,
    tau: f32,
    /// The rows the coordinator planned over (0: not said).
    train_rows: u64,
}

enum ConnectError {
    /// Not worth retrying: wrong token, wrong protocol.
    Fatal(String),
    /// The job has ended.
    Over(String),
    Retry(String),
}

/// What plaintext HTTP/2 gets from a TLS port is a protocol error, not a refusal: say so.
fn plaintext_hint(tls: bool, error: &str) -> &'static str {
    // What hyper reports when a TLS server answers HTTP/2 in plaintext, depending on when the
    // server hangs up: a protocol error, or the request canceled with the connection.
    let garbled = ["h2 protocol error", "http2 error", "transport error", "operation was canceled"]
        .iter()
        .any(|s| error.contains(s));
    if !tls && garbled && !error.contains("refused") {
        " (does it serve https? Beyond loopback a coordinator does: use the https:// URL and the --tls-pin it printed)"
    } else {
        ""
    }
}

fn classify(status: &Status) -> ConnectError {
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => {
            let said = status.message();
            let hint = if said.contains("--token-file") { "" } else { " (check --token-file)" };
            ConnectError::Fatal(format!("the coordinator refused this worker: {said}{hint}"))
        }
        Code::FailedPrecondition if status.message().contains("protocol") => {
            ConnectError::Fatal(status.message().to_string())
        }
        Code::FailedPrecondition if status.message().contains("has ended") => {
            ConnectError::Over(status.message().to_string())
        }
        _ => ConnectError::Retry(status.message().to_string()),
    }
}

impl GrpcTransport {
    fn new(rt: Arc<Runtime>, cfg: WorkerConfig) -> Result<Self, ClusterError> {
        let attach = AttachToken::new(cfg.token.as_deref())?;
        let host = cfg.host.clone().unwrap_or_else(host_name);
        Ok(GrpcTransport {
            rt,
            attach,
            host,
            id: None,
            secret: None,
            param_count: 0,
            state_len: 0,
            session: None,
            inbox: Arc::new(Mutex::new(Inbox::new(INBOX, 0))),
            done: Vec::new(),
            reset: None,
            stats: Vec::new(),
            last_stats: None,
            last_flush: Instant::now(),
            logs: log_tap().subscribe(),
            dropped_reports: 0,
            seq: 0,
            device: DeviceInfo::default(),
            finished: false,
            refused: false,
            rng: Rng::new(std::process::id() as u64),
            relay: tokio::sync::OnceCell::new(),
            cfg,
        })
    }

    fn id(&self) -> u32 {
        self.id.unwrap_or(u32::MAX)
    }

    /// Relay tree: this worker's relay server, started once.
    async fn relay_node(&self) -> Option<Arc<RelayNode>> {
        let start = || async {
            if self.cfg.tls.is_some() {
                tracing::info!(
                    "relay tree: this worker reaches the coordinator over TLS and relays to no one \
                     (relaying between workers is plaintext only): it is a leaf of the tree"
                );
                return None;
            }
            match RelayNode::start(&self.cfg.url, self.cfg.token.as_deref()).await {
                Ok(node) => {
                    tracing::info!("serves its children in the relay tree at {}", node.addr);
                    Some(Arc::new(node))
                }
                Err(e) => {
                    tracing::warn!("relay tree: cannot serve children ({e}); this worker is a leaf");
                    None
                }
            }
        };
        self.relay.get_or_init(start).await.clone()
    }

    async fn open(&self, previous: Option<u32>) -> Result<(Session, u32, Joined), ConnectError> {
        let tls = self.cfg.tls.as_ref();
        let ep = strom_proto::tls::endpoint(&self.cfg.url, tls)
            .map_err(|e| ConnectError::Fatal(format!("bad coordinator URL {}: {e}", self.cfg.url)))?
            .connect_timeout(self.cfg.connect_timeout)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(20));
        let channel = strom_proto::tls::connect(&ep, tls).await.map_err(|e| {
            let chain = source_chain(&e);
            // A certificate that is not the one expected will not change by retrying.
            if chain.contains("certificate") {
                ConnectError::Fatal(format!("this worker refused the coordinator's TLS certificate: {chain}"))
            } else if let Some(m) =
                strom_proto::tls::serves_plaintext(&self.cfg.url, &format!("{e}: {chain}"))
            {
                // A TLS client answered in plaintext: decided by the handshake itself. (The
                // plaintext case is decided by asking the port, in `connect`.)
                ConnectError::Fatal(m)
            } else {
                ConnectError::Retry(format!("{e}: {chain}"))
            }
        })?;
        let reply = ClusterClient::with_interceptor(channel.clone(), self.attach.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
            .join(pb::JoinRequest {
                protocol_version: strom_proto::PROTOCOL_VERSION,
                host: self.host.clone(),
                device: self.device.device.clone(),
                pid: std::process::id(),
                previous_worker_id: previous,
                restarts: self.cfg.restarts,
                previous_secret: self.secret.clone().unwrap_or_default(),
            })
            .await
            .map_err(|s| classify(&s))?
            .into_inner();
        let id = reply.worker_id;
        // Every later call proves this session: the id and the secret the join returned.
        let session = WorkerSession::new(&self.attach, id, &reply.session_secret)
            .map_err(|e| ConnectError::Fatal(e.to_string()))?;
        let relay_client = pb::relay_client::RelayClient::with_interceptor(channel.clone(), session.clone())
            .max_decoding_message_size(MAX_MESSAGE);
        let mut client = ClusterClient::with_interceptor(channel, session.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let broken = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();

        // Relay tree: updates come from the parent the heartbeat names, after the last one
        // the replica this join returned includes.
        let tree = reply.relay_tree;
        let (parent_tx, parent_rx) = tokio::sync::watch::channel(None);
        let beat_now = Arc::new(tokio::sync::Notify::new());
        let unreachable = Arc::new(Mutex::new(None));
        let mut relay_addr = String::new();
        if tree {
            let node = self.relay_node().await;
            let history = match &node {
                Some(n) => {
                    n.history.restart_at(reply.relay_seq);
                    relay_addr = n.addr.to_string();
                    n.history.clone()
                }
                None => History::new(reply.relay_seq),
            };
            tasks.push(tokio::spawn(relay::follow(Follow {
                id,
                history,
                inbox: self.inbox.clone(),
                parent: parent_rx,
                beat_now: beat_now.clone(),
                unreachable: unreachable.clone(),
                coordinator: relay_client,
                session,
                broken: broken.clone(),
            })));
        }

        let (updates, rx) = mpsc::channel::<pb::Update>(256);
        let req = Request::new(ReceiverStream::new(rx));
        let mut inbound = client.exchange(req).await.map_err(|s| classify(&s))?.into_inner();
        let (inbox, b) = (self.inbox.clone(), broken.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(u)) => lock(&inbox).push(u.payload),
                    _ => {
                        b.store(true, Ordering::Release);
                        break;
                    }
                }
            }
        }));

        let (reports, rx) = mpsc::channel::<pb::WorkerReport>(64);
        let req = Request::new(ReceiverStream::new(rx));
        let (mut c, b) = (client.clone(), broken.clone());
        tasks.push(tokio::spawn(async move {
            if c.report(req).await.is_err() {
                b.store(true, Ordering::Release);
            }
        }));

        let interval = Duration::from_millis(reply.heartbeat_interval_ms.max(100) as u64);
        let (mut c, b) = (client.clone(), broken.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = 0;
            // A tree job's worker asks for its parent at once.
            let mut now = tree;
            loop {
                if !std::mem::take(&mut now) {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {}
                        _ = beat_now.notified() => {}
                    }
                }
                let request = pb::HeartbeatRequest {
                    worker_id: id,
                    relay_addr: relay_addr.clone(),
                    unreachable_parent: lock(&unreachable).take(),
                };
                let beat = tokio::time::timeout(HEARTBEAT_DEADLINE, c.heartbeat(request));
                match beat.await.unwrap_or_else(|_| Err(Status::deadline_exceeded("no heartbeat answer"))) {
                    Ok(r) if r.get_ref().known => {
                        failures = 0;
                        if tree {
                            let r = r.into_inner();
                            let parent = match r.parent_id {
                                Some(p) => Parent::Worker(p, r.parent_addr),
                                None => Parent::Coordinator,
                            };
                            parent_tx.send_if_modified(|cur| {
                                let changed = cur.as_ref() != Some(&parent);
                                *cur = Some(parent);
                                changed
                            });
                        }
                    }
                    Ok(_) => {
                        b.store(true, Ordering::Release);
                        break;
                    }
                    Err(_) => {
                        failures += 1;
                        if failures >= 3 {
                            b.store(true, Ordering::Release);
                            break;
                        }
                    }
                }
            }
        }));
        let joined = Joined {
            secret: reply.session_secret,
            job_toml: reply.job_toml,
            architecture_json: reply.architecture_json,
            transform_json: reply.transform_json,
            params: reply.params,
            epoch: reply.epoch,
            tau: reply.tau,
            train_rows: reply.train_rows,
        };
        Ok((Session { client, updates, reports, broken, tasks }, id, joined))
    }

    /// One attempt, bounded: a peer that accepts TCP and never answers must not hang it.
    async fn open_bounded(&self, previous: Option<u32>) -> Result<(Session, u32, Joined), ConnectError> {
        let limit = self.cfg.connect_timeout * 3;
        match tokio::time::timeout(limit, self.open(previous)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::Retry(format!("no answer within {} s", limit.as_secs()))),
        }
    }

    /// Connects (or reconnects) with capped, jittered backoff.
    fn connect(&mut self) -> Result<Option<Joined>, ClusterError> {
        // The old session's streams stop here; what it delivered and this worker has not
        // applied yet is in the replica the join returns, so it must not be applied again.
        self.session = None;
        lock(&self.inbox).clear();
        let started = Instant::now();
        let mut delay = Duration::from_millis(200);
        let mut last;
        // Said if any attempt looked like plaintext meeting TLS (a later one may only time out).
        let mut hint = "";
        let window = self.cfg.reconnect.unwrap_or(Duration::from_secs(DEFAULT_RECONNECT_SECS));
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.rt.block_on(self.open_bounded(self.id)) {
                Ok((session, id, joined)) => {
                    if self.id.is_some() {
                        tracing::info!("reconnected to {} as worker {id}", self.cfg.url);
                    }
                    self.id = Some(id);
                    self.secret = Some(joined.secret.clone());
                    self.session = Some(session);
                    return Ok(Some(joined));
                }
                Err(ConnectError::Fatal(m)) => return Err(ClusterError::Refused(m)),
                Err(ConnectError::Over(why)) => {
                    tracing::info!("{why}");
                    self.finished = true;
                    return Ok(None);
                }
                Err(ConnectError::Retry(m)) => {
                    if hint.is_empty() {
                        hint = plaintext_hint(self.cfg.tls.is_some(), &m);
                        // A garbled plaintext answer: ask the port whether it speaks TLS, and
                        // if so say what to use at once rather than after minutes of retries.
                        if !hint.is_empty() && self.rt.block_on(strom_proto::tls::answers_tls(&self.cfg.url))
                        {
                            return Err(ClusterError::Refused(strom_proto::tls::serves_tls(&self.cfg.url)));
                        }
                    }
                    last = m;
                    let jitter = 0.5 + self.rng.next_f64();
                    let wait = delay.mul_f64(jitter);
                    let out_of_time = started.elapsed() + wait >= window;
                    if out_of_time || self.cfg.retries.is_some_and(|r| attempt >= r) {
                        break;
                    }
                    tracing::warn!(
                        "cannot reach the coordinator at {} (attempt {attempt}, {:.0} of {} s): {last}; retrying in {:.1} s",
                        self.cfg.url,
                        started.elapsed().as_secs_f64(),
                        window.as_secs(),
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        Err(ClusterError::Unreachable {
            url: self.cfg.url.clone(),
            message: format!(
                "no answer after {attempt} attempts over {:.0} s: {last}{}",
                started.elapsed().as_secs_f64(),
                hint
            ),
        })
    }

    /// Reconnects after a broken session; the replica becomes the model state to reset to.
    fn reconnect(&mut self) -> Result<(), TransportError> {
        tracing::warn!("lost the coordinator at {}; reconnecting", self.cfg.url);
        match self.connect() {
            Ok(Some(joined)) => {
                match params_from_bytes(&joined.params, self.state_len) {
                    Some(p) => self.reset = Some(Arc::new(p)),
                    None => {
                        return Err(TransportError::Failed(
                            "the coordinator sent a model state of the wrong size".into(),
                        ));
                    }
                }
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(TransportError::Closed(e.to_string())),
        }
    }

    fn session(&mut self) -> Result<&mut Session, TransportError> {
        if self.session.as_ref().is_none_or(|s| s.is_broken()) && !self.finished {
            self.reconnect()?;
        }
        self.session.as_mut().ok_or_else(|| TransportError::Closed("the job has ended".into()))
    }

    /// A unary call with a deadline: a coordinator that stops answering breaks the session (the
    /// next call reconnects) instead of hanging the worker.
    fn unary<T>(
        &self,
        limit: Duration,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<tonic::Response<T>, Status> {
        self.rt.block_on(async {
            tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!("no answer within {} s", limit.as_secs())))
            })
        })
    }

    /// The session's client; None once the job is over for this worker (also when a
    /// reconnect is what found that out: the job ended, or this worker was removed).
    fn client(&mut self) -> Result<Option<Client>, TransportError> {
        let client = self.session().map(|s| s.client.clone());
        match client {
            Ok(c) => Ok(Some(c)),
            Err(_) if self.finished => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An RPC failed: on a transport error the session is marked broken (the next call
    /// reconnects); a refusal is final.
    fn failed(&mut self, status: Status) -> Result<(), TransportError> {
        match classify(&status) {
            ConnectError::Fatal(m) => Err(TransportError::Failed(m)),
            ConnectError::Over(why) => {
                tracing::info!("{why}");
                self.finished = true;
                Ok(())
            }
            ConnectError::Retry(_) => {
                if let Some(s) = &self.session {
                    s.broken.store(true, Ordering::Release);
                }
                Ok(())
            }
        }
    }

    fn flush(&mut self, failed: Option<String>) {
        let Some(session) = &self.session else { return };
        let mut logs = Vec::new();
        while let Ok(e) = self.logs.try_recv() {
            if logs.len() < 200 && e.worker.is_none() {
                logs.push(pb::LogLine {
                    time: e.time,
                    level: e.level,
                    target: e.target,
                    message: e.message,
                    worker: None,
                });
            }
        }
        let stats = std::mem::take(&mut self.stats);
        let report = pb::WorkerReport {
            worker_id: self.id(),
            stats,
            logs,
            device: Some(device_to_pb(&self.device)),
            refused: self.refused && failed.is_some(),
            failed,
            dropped_reports: self.dropped_reports,
        };
        if let Err(mpsc::error::TrySendError::Full(report) | mpsc::error::TrySendError::Closed(report)) =
            session.reports.try_send(report)
        {
            // The coordinator is slow: keep the stats for the next flush, within a bound.
            self.stats = report.stats;
            if self.stats.len() > MAX_UNSENT_STATS {
                let excess = self.stats.len() - MAX_UNSENT_STATS;
                self.stats.drain(..excess);
                self.dropped_reports += excess as u64;
            }
        }
        self.last_flush = Instant::now();
    }

    /// Sends the last report and closes the streams, waiting briefly for them to drain.
    fn close(&mut self, failed: Option<String>) {
        self.flush(failed);
        if let Some(mut session) = self.session.take() {
            let tasks = std::mem::take(&mut session.tasks);
            drop(session);
            self.rt.block_on(async {
                for t in tasks.into_iter().take(2) {
                    let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
                }
            });
        }
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let said = strom_proto::errors::say_once(
        std::iter::successors(e.source(), |s| s.source()).map(|s| s.to_string()),
    );
    if said.is_empty() { "connection failed".into() } else { said }
}

impl Link for GrpcTransport {
    fn send(&mut self, message: &[u8]) -> Result<(), TransportError> {
        let id = self.id();
        self.seq += 1;
        let update =
            pb::Update { origin: id, seq: self.seq, payload: SharedMessage::copy_from_slice(message) };
        // The job ended (or this worker was removed) while it trained: the loop learns it from
        // its next call for work.
        if self.session().is_err() && self.finished {
            return Ok(());
        }
        let session = self.session()?;
        // Bounded: a coordinator that cannot keep up slows this worker down.
        if session.updates.blocking_send(update).is_err() {
            session.broken.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn all_reduce(&mut self, values: &mut [f32], c: Collective) -> Result<u32, TransportError> {
        let mut round = None;
        let pb_op = match c.op {
            Reduce::Model => pb::ReduceOp::Model,
            Reduce::Sum => pb::ReduceOp::Sum,
        };
        loop {
            if self.finished {
                return Ok(0);
            }
            let Some(mut client) = self.client()? else { return Ok(0) };
            let req = pb::AllReduceRequest {
                worker_id: self.id(),
                values: if round.is_none() { reduce_to_bytes(values, c.wire) } else { Vec::new() },
                round,
                op: pb_op as i32,
                tag: c.tag,
                idle: c.idle,
            };
            match self.unary(LONG_POLL_DEADLINE, client.all_reduce(req)) {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    if !reply.values.is_empty() {
                        return match reduce_from_bytes(&reply.values, values.len()) {
                            Ok((result, _)) if result.len() == values.len() => {
                                values.copy_from_slice(&result);
                                Ok(reply.contributors)
                            }
                            Ok((result, _)) => Err(TransportError::Failed(format!(
                                "the coordinator's all-reduce result has {} values, this worker sent {}",
                                result.len(),
                                values.len()
                            ))),
                            Err(e) => Err(TransportError::Failed(format!(
                                "the coordinator's all-reduce result is damaged: {e}"
                            ))),
                        };
                    }
                    if reply.finished {
                        self.finished = true;
                        return Ok(0);
                    }
                    if reply.ready {
                        return Ok(0); // only idle workers took part: nothing to apply
                    }
                    round = Some(reply.round);
                }
                Err(status) => {
                    self.failed(status)?;
                    // After a reconnect the replica replaces the parameters anyway.
                    return Ok(0);
                }
            }
        }
    }
}

impl Transport for GrpcTransport {
    fn next_work(&mut self) -> Result<Work, TransportError> {
        loop {
            if self.finished {
                return Ok(Work::Finished);
            }
            let Some(mut client) = self.client()? else { return Ok(Work::Finished) };
            let req = pb::ShardRequest { worker_id: self.id(), done: std::mem::take(&mut self.done) };
            match self.unary(SHARD_DEADLINE, client.next_shard(req)) {
                Ok(reply) => match reply.into_inner().work {
                    Some(pb::shard_reply::Work::Partition(p)) => {
                        return Ok(Work::Partition(Partition {
                            epoch: p.epoch,
                            index: p.index,
                            start: p.start,
                            end: p.end,
                        }));
                    }
                    Some(pb::shard_reply::Work::EpochEnd(epoch)) => return Ok(Work::EpochEnd { epoch }),
                    Some(pb::shard_reply::Work::Idle(epoch)) => return Ok(Work::Idle { epoch }),
                    Some(pb::shard_reply::Work::WaitMs(ms)) => {
                        std::thread::sleep(Duration::from_millis(ms.clamp(1, 1000) as u64))
                    }
                    Some(pb::shard_reply::Work::Finished(_)) | None => {
                        self.finished = true;
                        return Ok(Work::Finished);
                    }
                },
                Err(status) if status.code() == Code::NotFound => {
                    // The coordinator forgot this worker (it declared it lost): join again.
                    if let Some(s) = &self.session {
                        s.broken.store(true, Ordering::Release);
                    }
                }
                Err(status) => self.failed(status)?,
            }
        }
    }

    fn partition_done(&mut self, partition: &Partition) -> Result<(), TransportError> {
        self.done.push(partition_to_pb(partition));
        Ok(())
    }

    fn take_updates(
        &mut self,
        out: &mut VecDeque<SharedMessage>,
        merged: &mut Vec<f32>,
    ) -> Result<bool, TransportError> {
        Ok(lock(&self.inbox).take(out, merged))
    }

    fn end_epoch(&mut self, epoch: u32, state: &[f32]) -> Result<EpochNext, TransportError> {
        let params = state;
        loop {
            if self.finished {
                return Ok(EpochNext::Finished);
            }
            let Some(mut client) = self.client()? else { return Ok(EpochNext::Finished) };
            let mut stats = std::mem::take(&mut self.stats);
            if stats.is_empty()
                && let Some(last) = &self.last_stats
            {
                stats.push(last.clone());
            }
            let req =
                pb::EndEpochRequest { worker_id: self.id(), epoch, params: params_to_bytes(params), stats };
            match self.unary(LONG_POLL_DEADLINE, client.end_epoch(req)) {
                Ok(reply) => match reply.into_inner().outcome {
                    Some(pb::end_epoch_reply::Outcome::Pending(_)) => continue,
                    Some(pb::end_epoch_reply::Outcome::Next(n)) => {
                        let load = params_from_bytes(&n.load, params.len()).map(Arc::new);
                        return Ok(EpochNext::Continue { epoch: n.epoch, load });
                    }
                    Some(pb::end_epoch_reply::Outcome::Finished(_)) | None => {
                        self.finished = true;
                        return Ok(EpochNext::Finished);
                    }
                },
                Err(status) => {
                    self.failed(status)?;
                    // After a reconnect the work queue says where the job is.
                    return Ok(EpochNext::Continue { epoch, load: None });
                }
            }
        }
    }

    fn report(&mut self, stats: &StepStats) -> Result<(), TransportError> {
        let s = stats_to_pb(stats);
        self.last_stats = Some(s.clone());
        self.stats.push(s);
        if self.last_flush.elapsed() >= REPORT_EVERY || self.stats.len() >= 256 {
            if self.session.as_ref().is_some_and(|s| s.is_broken()) {
                let reconnected = self.session().map(|_| ());
                if !self.finished {
                    reconnected?;
                }
            }
            self.flush(None);
        }
        Ok(())
    }

    fn merged_total(&self) -> u64 {
        lock(&self.inbox).merged_total()
    }

    fn take_reset(&mut self) -> Option<Arc<Vec<f32>>> {
        self.reset.take()
    }

    fn finish(&mut self, failure: Option<&str>) {
        self.close(failure.map(str::to_string));
    }
}

/// What a worker run ends with.
pub struct WorkerOutcome {
    pub id: u32,
    pub summary: Option<WorkerSummary>,
}

/// Runs a worker until its job ends (blocking).
pub fn run_worker(cfg: WorkerConfig) -> Result<WorkerOutcome, ClusterError> {
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strom-worker-io")
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Config(format!("cannot start the I/O runtime: {e}")))?,
    );
    let backend_override = cfg.backend;
    let url = cfg.url.clone();
    let mut transport = GrpcTransport::new(rt, cfg)?;
    let Some(joined) = transport.connect()? else {
        tracing::info!("the job at {url} has already ended");
        return Ok(WorkerOutcome { id: transport.id(), summary: None });
    };
    let id = transport.id();
    // An error with `true`: this worker's own copy of the data is the problem (it is refused
    // and the job goes on); `false`: the job or this host cannot train at all.
    let setup = (|| -> Result<_, (ClusterError, bool)> {
        let job_err = |e: ClusterError| (e, false);
        // Parsed here, validated once by `resolve` (after the override).
        let mut spec = JobSpec::parse_toml(&joined.job_toml, "the coordinator's job")
            .map_err(|e| job_err(ClusterError::Job(e.to_string())))?;
        if let Some(b) = backend_override {
            spec.compute.backend = b;
        }
        let job = ResolvedJob::resolve(spec)
            .map_err(|e| job_err(ClusterError::Job(format!("the coordinator's job: {e}"))))?;
        let architecture: Architecture = serde_json::from_str(&joined.architecture_json)
            .map_err(|e| job_err(ClusterError::Job(format!("bad architecture from the coordinator: {e}"))))?;
        let n = architecture.state_len();
        let state = params_from_bytes(&joined.params, n).ok_or_else(|| {
            job_err(ClusterError::Job(format!(
                "the coordinator sent {} bytes of model state, expected {}",
                joined.params.len(),
                n * 4
            )))
        })?;
        tracing::info!("worker {id} joined {url}: job {}, epoch {}", job.name, joined.epoch + 1);
        let process = if joined.transform_json.is_empty() {
            None
        } else {
            Some(
                TransformProcess::from_json(&joined.transform_json, "the coordinator's transform process")
                    .map_err(|e| job_err(ClusterError::Job(e.to_string())))?,
            )
        };
        // Tables: this worker transforms the partitions it is handed, with the coordinator's
        // fitted statistics (the distributed executor).
        let dataset = data::load_train(
            &job.data,
            job.train.seed,
            process.as_ref(),
            true,
            architecture.output().per_step(),
        )
        .map_err(|e| (ClusterError::from(e), true))?;
        if !architecture.input().accepts(dataset.shape) {
            return Err((
                ClusterError::Job(format!(
                    "{} has examples of {} on {}; the coordinator's data (and the job's model) has {}",
                    job.data.train,
                    dataset.shape,
                    host_name(),
                    architecture.input()
                )),
                true,
            ));
        }
        // Partitions are row ranges of the coordinator's plan: another row count here would
        // read past the end of this copy, or train other rows than the plan says.
        if joined.train_rows > 0 && dataset.rows as u64 != joined.train_rows {
            return Err((
                ClusterError::Job(format!(
                    "{} has {} training rows on {}, the coordinator planned {} from its copy: \
                 every worker needs the same data (the same file, or an hdfs:// location)",
                    job.data.train,
                    dataset.rows,
                    host_name(),
                    joined.train_rows
                )),
                true,
            ));
        }
        let backend = backend::create(&job, &architecture, job.train.batch_size, &state)
            .map_err(|e| job_err(ClusterError::Engine(e.into())))?;
        Ok((job, architecture, dataset, backend))
    })();
    let (job, architecture, dataset, backend) = match setup {
        Ok(s) => s,
        Err((e, own_data)) => {
            // This worker's data: the coordinator removes it and the job goes on. Anything
            // else fails the job with the reason, as before.
            transport.refused = own_data;
            transport.close(Some(e.to_string()));
            return Err(e);
        }
    };
    transport.param_count = architecture.param_count();
    transport.state_len = architecture.state_len();
    if transport.cfg.reconnect.is_none() {
        transport.cfg.reconnect = Some(Duration::from_secs(job.cluster.reconnect_secs));
    }
    *lock(&transport.inbox) = Inbox::new(INBOX, transport.param_count);
    transport.device = backend.device();
    let mut worker = WorkerLoop::new(id, &job, &architecture, Arc::new(dataset), backend, transport, 0.0)
        .map_err(ClusterError::Engine)?;
    if joined.tau > 0.0 {
        worker.set_tau(joined.tau);
    }
    let summary = worker.run().map_err(ClusterError::Engine)?;
    tracing::info!("worker {id}: job over after {} steps", summary.steps);
    Ok(WorkerOutcome { id, summary: Some(summary) })
}
