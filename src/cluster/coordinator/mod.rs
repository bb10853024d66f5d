//! The coordinator: serves `Cluster` (workers) and `Control` (cockpit) on one port, holds the
//! loaded job and its current run, starts workers through a launcher, and resumes from the
//! latest checkpoint when restarted.

mod cluster_service;
mod control_service;
pub mod form;
mod limit;
pub mod run;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use strom_proto::v1::cluster_server::ClusterServer;
use strom_proto::v1::control_server::ControlServer;
use strom_proto::v1::relay_server::RelayServer;
use tokio::net::TcpListener;
use tokio::sync::watch as tokio_watch;
use tonic::transport::Server;

pub use run::{CheckpointWrite, JobRun, RunEnd, RunResult, RunSetup};

use super::ClusterError;
use strom_proto::tls::Pin;

use super::auth::{self, CheckToken, ServerTls};
use super::checkpoint::Checkpoint;
use super::launch::{self, LaunchContext, Launcher};
use crate::data;
use crate::engine::{ModelOutput, Observer};
use crate::job::{JobSpec, ResolvedJob};
use crate::nn::Architecture;
use crate::storage::Location;

/// Ceiling of the workers' service's messages: a model state travels in one message (up to
/// 64M values). Each call is held to its job's model size below that ([`limit`]), and what
/// arrives is checked against the job's model before use.
pub const MAX_MESSAGE: usize = 512 << 20;
/// Largest message of the control service: job files and forms are small; snapshots with
/// their history are the largest.
pub const MAX_CONTROL_MESSAGE: usize = 16 << 20;
/// Cockpits (job and log watchers) served at once.
pub const MAX_WATCHERS: usize = 64;
/// How long an exiting coordinator waits for the workers of an ended job to hear of it.
const DRAIN: Duration = Duration::from_secs(5);
/// HTTP/2 streams one connection may have open at once.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// One watcher being served; the count goes down when it is dropped.
pub struct Watcher(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

pub struct CoordinatorConfig {
    pub listen: SocketAddr,
    /// The workers' token: join and train.
    pub token: Option<String>,
    /// The control token: the cockpit's calls (watch, submit, pause, stop, add and remove
    /// workers). `None`: the workers' token serves for both (one credential, with a warning).
    pub control_token: Option<String>,
    /// Submitted jobs may name programs and ssh options of their own (cluster.spark.submit,
    /// spark.args, ssh.options, ssh.binary, host binaries). Off: they must match the job the
    /// coordinator started with.
    pub allow_job_commands: bool,
    /// The token file, handed to launched workers.
    pub token_file: Option<PathBuf>,
    /// Certificate files to serve TLS with. Without them a coordinator beyond loopback makes a
    /// self-signed certificate at start, whose fingerprint launched workers pin.
    pub tls: Option<ServerTls>,
    /// Serve plaintext beyond loopback (no certificate files, no self-signed one).
    pub insecure_plaintext: bool,
    /// The CA launched workers should trust (with TLS).
    pub tls_ca: Option<PathBuf>,
    pub checkpoint_dir: Option<Location>,
    /// Resume from a checkpoint whose run failed (otherwise refused with its reason).
    pub resume_failed: bool,
    /// A job to load at start.
    pub job: Option<ResolvedJob>,
    /// Start the loaded job at once.
    pub start: bool,
    /// The `strom` binary launched workers run.
    pub binary: PathBuf,
    /// Where the model of a run that finishes or is stopped is saved; `None`: not saved.
    pub output: Option<ModelOutput>,
}

impl CoordinatorConfig {
    pub fn loopback(job: Option<ResolvedJob>) -> Self {
        CoordinatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            control_token: None,
            allow_job_commands: false,
            token_file: None,
            tls: None,
            insecure_plaintext: false,
            tls_ca: None,
            checkpoint_dir: None,
            resume_failed: false,
            job,
            start: false,
            binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("strom")),
            output: None,
        }
    }
}

/// State shared by both services.
pub struct Shared {
    pub config: CoordinatorConfig,
    pub addr: SocketAddr,
    pub url: String,
    /// The fingerprint of the self-signed certificate this coordinator made, if it made one.
    pub tls_pin: Option<Pin>,
    job: Mutex<Option<ResolvedJob>>,
    run: Mutex<Option<Arc<JobRun>>>,
    launcher: Mutex<Option<Box<dyn Launcher>>>,
    /// Launchers of workers added from the cockpit elsewhere than the job's launcher (local
    /// processes, another SSH host); stopped with the job's.
    added: Mutex<Vec<Box<dyn Launcher>>>,
    observer: Mutex<Option<Box<dyn Observer>>>,
    /// Data the caller prepared for the loaded job (used once, by the first start).
    prepared: Mutex<Option<data::Prepared>>,
    /// Watch streams being served.
    watchers: Arc<std::sync::atomic::AtomicUsize>,
    /// Counts runs, so a waiter can tell a new run from the last one.
    runs: tokio_watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn run(&self) -> Option<Arc<JobRun>> {
        lock(&self.run).clone()
    }

    pub fn loaded_job(&self) -> Option<ResolvedJob> {
        lock(&self.job).clone()
    }

    pub fn load_job(&self, job: ResolvedJob) {
        *lock(&self.job) = Some(job);
    }

    /// Starts the loaded job: checks its data, builds the model, launches its workers.
    pub async fn start_job(self: &Arc<Self>) -> Result<Arc<JobRun>, ClusterError> {
        if let Some(run) = self.run()
            && !run.is_over()
        {
            return Err(ClusterError::Job(format!("job {} is still running; stop it first", run.job.name)));
        }
        let job = self.loaded_job().ok_or_else(|| ClusterError::Job("no job is loaded".into()))?;
        let checkpoint_dir = self.config.checkpoint_dir.clone();
        let observer = lock(&self.observer).take();
        let prepared = lock(&self.prepared).take();
        let setup = tokio::task::spawn_blocking(move || fresh_setup(job, checkpoint_dir, prepared))
            .await
            .map_err(|e| ClusterError::Job(e.to_string()))??;
        self.begin(setup, observer)
    }

    fn begin(
        self: &Arc<Self>,
        mut setup: RunSetup,
        observer: Option<Box<dyn Observer>>,
    ) -> Result<Arc<JobRun>, ClusterError> {
        let job = setup.job.clone();
        setup.output = match &self.config.output {
            Some(o) => Some(
                o.for_job(&job.name).map_err(|e| ClusterError::Job(format!("the model's output: {e}")))?,
            ),
            None => None,
        };
        let timeout = Duration::from_secs(job.cluster.heartbeat_timeout_secs);
        tracing::info!(
            "starting job {}: {}, {}, {} epoch(s) from epoch {}",
            job.name,
            setup.architecture.describe(),
            setup.shape,
            job.train.epochs - setup.start_epoch,
            setup.start_epoch + 1
        );
        let run = JobRun::new(setup, observer, timeout);
        *lock(&self.run) = Some(run.clone());
        self.runs.send_modify(|n| *n += 1);
        let launcher = launch::for_job(&job)?;
        if let Some(l) = &launcher {
            let ctx = self.launch_context();
            if let Err(e) = l.start(job.cluster.workers, &ctx) {
                // The run ends here, failed, with the launcher's reasons on record.
                run.fail(e.to_string());
                return Err(e);
            }
        }
        *lock(&self.launcher) = launcher;
        // Workers added to an earlier run by hand have had their job end.
        for l in lock(&self.added).drain(..) {
            l.stop_all();
        }
        Ok(run)
    }

    /// The keys by which a submitted job would make this coordinator run a program (or pass
    /// ssh options, such as a ProxyCommand) its own configuration did not allow.
    pub fn foreign_commands(&self, job: &JobSpec) -> Vec<crate::job::KeyError> {
        if self.config.allow_job_commands {
            return Vec::new();
        }
        let own = match &self.config.job {
            Some(j) => j.launch_commands(),
            None => JobSpec::default().launch_commands(),
        };
        job.launch_commands()
            .into_iter()
            .zip(own)
            .filter(|((_, theirs), (_, ours))| theirs != ours)
            .map(|((key, _), _)| crate::job::KeyError {
                key: key.into(),
                line: None,
                message: "a submitted job may not choose the programs or ssh options this coordinator runs; \
                          start the coordinator with this job (--job) or with --allow-job-commands"
                    .into(),
            })
            .collect()
    }

    /// Admits one more watcher (cockpit), within [`MAX_WATCHERS`].
    pub fn watcher(&self) -> Result<Watcher, tonic::Status> {
        use std::sync::atomic::Ordering;
        let n = self.watchers.fetch_add(1, Ordering::AcqRel);
        let guard = Watcher(self.watchers.clone());
        if n >= MAX_WATCHERS {
            return Err(tonic::Status::resource_exhausted(format!(
                "{MAX_WATCHERS} cockpits are watching already; close one first"
            )));
        }
        Ok(guard)
    }

    pub fn launch_context(&self) -> LaunchContext {
        let run = self.run();
        let job = run.as_ref().map(|r| r.job.clone()).or_else(|| self.loaded_job());
        let mut url = self.url.clone();
        let max_restarts = job.as_ref().map(|j| j.cluster.max_restarts).unwrap_or(0);
        if let Some(job) = job.filter(|j| j.cluster.launcher == crate::job::LauncherKind::Ssh) {
            let remote = job.cluster.hosts.iter().any(|h| h.is_remote());
            url = self.url_for_hosts(&job.cluster.ssh.coordinator_url, remote);
        }
        LaunchContext {
            url,
            token_file: self.config.token_file.clone(),
            tls_ca: self.config.tls_ca.clone(),
            tls_pin: self.tls_pin,
            binary: self.config.binary.clone(),
            token: self.config.token.clone(),
            problems: run.map(|r| r.launch_problems.clone()).unwrap_or_default(),
            max_restarts,
        }
    }

    /// The URL other machines use: the configured one, or (when listening on every
    /// interface) this machine's host name in place of the loopback address.
    fn url_for_hosts(&self, configured: &str, remote: bool) -> String {
        if !configured.trim().is_empty() {
            return configured.trim().to_string();
        }
        if self.config.listen.ip().is_unspecified() {
            return self.url.replace("127.0.0.1", &crate::cluster::worker::host_name());
        }
        if remote && self.addr.ip().is_loopback() {
            tracing::warn!(
                "the coordinator listens on {} only; remote hosts cannot reach it (use --listen 0.0.0.0:PORT or set cluster.ssh.coordinator_url)",
                self.addr
            );
        }
        self.url.clone()
    }

    /// Starts `count` more workers: through the current job's launcher (`host` empty), as
    /// local processes (`local`, or empty when the job has no launcher), or on the SSH host
    /// `user@host[:port]` with the job's ssh options and binary.
    pub fn add_workers(&self, count: usize, host: &str) -> Result<String, ClusterError> {
        let host = host.trim();
        if host.is_empty() {
            let guard = lock(&self.launcher);
            if let Some(l) = guard.as_ref() {
                l.start(count, &self.launch_context())?;
                return Ok(format!("starting {count} more worker(s) ({})", l.describe()));
            }
        }
        let job = self
            .run()
            .map(|r| r.job.clone())
            .ok_or_else(|| ClusterError::Launch("no job is running".into()))?;
        let mut ctx = self.launch_context();
        let launcher: Box<dyn Launcher> = if host.is_empty() || host == "local" {
            Box::new(launch::LocalLauncher::default())
        } else {
            let spec = parse_host(host)?;
            let (name, remote) = (spec.machine().to_string(), spec.is_remote());
            if remote && self.addr.ip().is_loopback() && job.cluster.ssh.coordinator_url.trim().is_empty() {
                return Err(ClusterError::Launch(format!(
                    "this coordinator listens on {} only: a worker on {name} could not reach it; start it \
                     listening beyond loopback (strom cockpit --listen 0.0.0.0:PORT, strom coordinator \
                     --listen ...) or set cluster.ssh.coordinator_url",
                    self.addr
                )));
            }
            ctx.url = self.url_for_hosts(&job.cluster.ssh.coordinator_url, remote);
            let mut cluster = job.cluster.clone();
            cluster.hosts = vec![spec];
            cluster.min_workers = None;
            Box::new(launch::SshLauncher::new(&cluster))
        };
        launcher.start(count, &ctx)?;
        let what = format!("starting {count} more worker(s) ({})", launcher.describe());
        tracing::info!("{what}");
        lock(&self.added).push(launcher);
        Ok(what)
    }

    pub fn stop_workers(&self) {
        if let Some(l) = lock(&self.launcher).as_ref() {
            l.stop_all();
        }
        for l in lock(&self.added).drain(..) {
            l.stop_all();
        }
    }
}

/// `user@host` or `user@host:port`, as typed in the cockpit. A control client names it: only
/// letters, digits, `.`, `_` and `-` in the user and host (no ssh option, no shell character
/// can ride along), and neither starts with `-`.
fn parse_host(text: &str) -> Result<crate::job::HostSpec, ClusterError> {
    let bad = |why: &str| {
        ClusterError::Launch(format!("'{text}': {why}; expected user@host, user@host:port or user@[v6]:port"))
    };
    let (dest, port) = crate::job::split_destination(text).map_err(|e| bad(&e))?;
    let (user, host) = match dest.split_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, dest.as_str()),
    };
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with('-')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let v6 = host.parse::<std::net::Ipv6Addr>().is_ok();
    if !(plain(host) || v6) || user.is_some_and(|u| !plain(u)) {
        return Err(bad("a user or host name may hold letters, digits, '.', '_' and '-' only"));
    }
    Ok(crate::job::HostSpec::Full(crate::job::HostTable { host: dest, port, binary: None }))
}

/// Checks the data (unless the caller did: `prepared`), builds the model and its initial
/// parameters.
fn fresh_setup(
    job: ResolvedJob,
    checkpoint_dir: Option<Location>,
    prepared: Option<data::Prepared>,
) -> Result<RunSetup, ClusterError> {
    let data::Prepared { shape, test, process } = match prepared {
        Some(p) => p,
        None => data::prepare(&job.data, job.train.seed)?,
    };
    let architecture = Architecture::from_job(&job.model, shape.input, shape.outputs)
        .map_err(|e| ClusterError::Job(format!("the job's model: {e}")))?;
    crate::backend::check_support(&job, &architecture).map_err(|e| ClusterError::Job(e.to_string()))?;
    crate::sharing::create(&job, architecture.layout()).map_err(|e| ClusterError::Job(e.to_string()))?;
    let state = crate::nn::initial_state(&architecture, job.train.seed);
    Ok(RunSetup {
        checkpoint_every: job.cluster.checkpoint_every,
        job,
        architecture,
        shape,
        test,
        process,
        state,
        start_epoch: 0,
        partitions_done: vec![],
        tau: None,
        steps: 0,
        history: vec![],
        checkpoint_dir,
        checkpoint_seq: 0,
        output: None,
    })
}

/// A run continuing from a checkpoint (the transform process refits to the same statistics:
/// fitting is deterministic).
fn resumed_setup(job: ResolvedJob, ckpt: Checkpoint, dir: Location) -> Result<RunSetup, ClusterError> {
    let data::Prepared { shape, test, process } = data::prepare(&job.data, job.train.seed)?;
    Ok(RunSetup {
        checkpoint_every: job.cluster.checkpoint_every,
        job,
        architecture: ckpt.architecture,
        shape,
        test,
        process,
        state: ckpt.state,
        start_epoch: ckpt.epoch,
        partitions_done: ckpt.partitions_done,
        tau: ckpt.tau,
        steps: ckpt.steps,
        history: ckpt.epochs,
        checkpoint_dir: Some(dir),
        checkpoint_seq: ckpt.seq,
        output: None,
    })
}

/// A coordinator being built.
pub struct Coordinator {
    config: CoordinatorConfig,
    observer: Option<Box<dyn Observer>>,
    prepared: Option<data::Prepared>,
}

/// A running coordinator.
pub struct CoordinatorHandle {
    pub shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Coordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        Coordinator { config, observer: None, prepared: None }
    }

    /// Receives the run's step stats and epoch summaries (the CLI's progress display).
    pub fn with_observer(mut self, observer: Box<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Hands over data already prepared for the configured job (`data::prepare` of its data
    /// and seed), so starting it does not read and fit it again.
    pub fn with_prepared_data(mut self, prepared: data::Prepared) -> Self {
        self.prepared = Some(prepared);
        self
    }

    /// Binds, serves, resumes from a checkpoint or starts the given job as configured.
    pub async fn start(self) -> Result<CoordinatorHandle, ClusterError> {
        let config = self.config;
        if !config.listen.ip().is_loopback() && config.token.is_none() {
            return Err(ClusterError::Config(format!(
                "refusing to listen on {} without a token: pass --token-file (anyone who can reach \
                 this port could join the job or steer it)",
                config.listen
            )));
        }
        let (tls, tls_pin) = match &config.tls {
            Some(t) => (Some(t.config()?), None),
            None if config.listen.ip().is_loopback() => (None, None),
            None if config.insecure_plaintext => {
                tracing::warn!(
                    "serving plaintext on {} (--insecure-plaintext): tokens and updates cross the network unencrypted",
                    config.listen
                );
                (None, None)
            }
            None => {
                let mut names =
                    vec!["strom-coordinator".to_string(), "localhost".into(), super::worker::host_name()];
                if !config.listen.ip().is_unspecified() {
                    names.push(config.listen.ip().to_string());
                }
                let (tls, pin) = auth::self_signed(names)?;
                (Some(tls), Some(pin))
            }
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| ClusterError::Listen { addr: config.listen.to_string(), source: e })?;
        let addr = listener
            .local_addr()
            .map_err(|e| ClusterError::Listen { addr: config.listen.to_string(), source: e })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
        let url = format!("{scheme}://{host}:{}", addr.port());
        let shared = Arc::new(Shared {
            addr,
            url,
            tls_pin,
            job: Mutex::new(config.job.clone()),
            run: Mutex::new(None),
            launcher: Mutex::new(None),
            added: Mutex::new(Vec::new()),
            observer: Mutex::new(self.observer),
            prepared: Mutex::new(self.prepared),
            watchers: Arc::default(),
            runs: tokio_watch::channel(0).0,
            config,
        });

        let (token, control) = (shared.config.token.as_deref(), shared.config.control_token.as_deref());
        let check = CheckToken::for_service(token, "workers", control);
        let control_check = CheckToken::for_service(control.or(token), "control", token);
        if shared.config.token.is_some() && shared.config.control_token.is_none() {
            tracing::warn!(
                "one token for workers and the cockpit: every worker host can steer the job; pass --control-token-file"
            );
        }
        let cluster = ClusterServer::new(cluster_service::ClusterService { shared: shared.clone() })
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let relay = RelayServer::new(cluster_service::RelayService { shared: shared.clone() })
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let control = ControlServer::new(control_service::ControlService { shared: shared.clone() })
            .max_decoding_message_size(MAX_CONTROL_MESSAGE)
            .max_encoding_message_size(MAX_CONTROL_MESSAGE);
        let mut builder = Server::builder()
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)));
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).map_err(|e| ClusterError::Tls(e.to_string()))?;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let server = tokio::spawn(
            builder
                .add_service(limit::Limited {
                    inner: tonic::service::interceptor::InterceptedService::new(cluster, check.clone()),
                    shared: shared.clone(),
                })
                .add_service(limit::Limited {
                    inner: tonic::service::interceptor::InterceptedService::new(relay, check.clone()),
                    shared: shared.clone(),
                })
                .add_service(tonic::service::interceptor::InterceptedService::new(control, control_check))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                }),
        );
        // Debug only: the commands that start a coordinator print its address (and pin) once.
        tracing::debug!("coordinator listening on {}", shared.url);
        if let Some(pin) = &shared.tls_pin {
            tracing::debug!("serving TLS with a certificate made at start; workers pin {pin}");
        }

        // The tick: history samples, heartbeat timeouts, checkpoints.
        let ticker = shared.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            loop {
                interval.tick().await;
                if let Some(run) = ticker.run() {
                    run.tick();
                }
            }
        });

        // Resume from the latest checkpoint, or start the given job.
        let resumed = match shared.config.checkpoint_dir.clone() {
            Some(dir) => {
                let d = dir.clone();
                let ckpt = tokio::task::spawn_blocking(move || Checkpoint::read_latest(&d))
                    .await
                    .map_err(|e| ClusterError::Job(e.to_string()))??;
                match ckpt {
                    Some(Checkpoint { failed: Some(reason), job, epoch, .. })
                        if !shared.config.resume_failed =>
                    {
                        return Err(ClusterError::Job(format!(
                            "the checkpoint in {dir} is of job {} that failed in epoch {} ({reason}); \
                             fix the cause and resume it with --resume-failed, or start afresh with \
                             another --checkpoint-dir (or after deleting this one)",
                            job.name,
                            epoch + 1
                        )));
                    }
                    Some(ckpt) if ckpt.epoch < ckpt.job.train.epochs => {
                        if let Some(reason) = &ckpt.failed {
                            tracing::warn!("resuming a run that failed ({reason}), as --resume-failed asks");
                        }
                        tracing::info!(
                            "resuming job {} from checkpoint {} in {dir}: epoch {}, {} partition(s) done, step {}",
                            ckpt.job.name,
                            ckpt.seq,
                            ckpt.epoch + 1,
                            ckpt.partitions_done.len(),
                            ckpt.steps
                        );
                        let job = ckpt.job.clone();
                        shared.load_job(job.clone());
                        let setup = tokio::task::spawn_blocking(move || resumed_setup(job, ckpt, dir))
                            .await
                            .map_err(|e| ClusterError::Job(e.to_string()))??;
                        let observer = lock(&shared.observer).take();
                        shared.begin(setup, observer)?;
                        true
                    }
                    Some(ckpt) => {
                        tracing::info!(
                            "the checkpoint in {dir} is of a finished job ({}); not resuming",
                            ckpt.job.name
                        );
                        false
                    }
                    None => false,
                }
            }
            None => false,
        };
        if !resumed && shared.config.start {
            shared.start_job().await?;
        }
        Ok(CoordinatorHandle { shared, shutdown: Some(tx), server })
    }
}

impl CoordinatorHandle {
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The fingerprint clients pin, when this coordinator made its own certificate.
    pub fn tls_pin(&self) -> Option<Pin> {
        self.shared.tls_pin
    }

    /// Waits until the current (or next) run ends.
    pub async fn wait_run(&self) -> Arc<RunResult> {
        loop {
            if let Some(run) = self.shared.run() {
                let mut rx = run.result();
                loop {
                    if let Some(r) = rx.borrow_and_update().clone() {
                        return r;
                    }
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            }
            let mut runs = self.shared.runs.subscribe();
            if self.shared.run().is_none() {
                let _ = runs.changed().await;
            }
        }
    }

    /// Stops serving; launched workers are stopped too. Workers of a job that has ended get
    /// a moment (DRAIN) to hear so from their next call before the port closes.
    pub async fn shutdown(mut self) {
        if let Some(run) = self.shared.run().filter(|r| r.is_over()) {
            let t0 = tokio::time::Instant::now();
            while run.untold_workers() > 0 && t0.elapsed() < DRAIN {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.shared.stop_workers();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
    }
}

impl Drop for CoordinatorHandle {
    fn drop(&mut self) {
        self.shared.stop_workers();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_run(output: Option<Location>) -> Arc<JobRun> {
        let job = ResolvedJob::from_toml("[model]\nhidden = [8]\n[train]\nepochs = 3\n", "test").unwrap();
        let mut setup = fresh_setup(job, None, None).unwrap();
        setup.output = output;
        JobRun::new(setup, None, Duration::from_secs(60))
    }

    #[test]
    fn hosts_typed_in_the_cockpit_carry_no_options_or_shell() {
        let ok = |t: &str| parse_host(t).is_ok();
        assert!(ok("me@node-2.example.org") && ok("node2") && ok("me@10.0.0.7:2222") && ok("me@[::1]:2222"));
        match parse_host("me@n:2222").unwrap() {
            crate::job::HostSpec::Full(t) => assert_eq!((t.host.as_str(), t.port), ("me@n", Some(2222))),
            other => panic!("{other:?}"),
        }
        for bad in
            ["-oProxyCommand=x", "u@-oProxyCommand=x", "h$(id)", "a b", "u@h;rm", "`x`", "@h", "u@", "h:x"]
        {
            assert!(!ok(bad), "{bad} accepted");
        }
    }

    #[test]
    fn the_eta_clock_stops_while_paused_and_the_elapsed_clock_at_the_end() {
        let run = demo_run(None);
        assert!(run.pause());
        let paused = run.active_elapsed();
        std::thread::sleep(Duration::from_millis(150));
        let drift = run.active_elapsed().as_secs_f64() - paused.as_secs_f64();
        assert!(drift.abs() < 0.1, "training time stands still ({drift} s)");
        assert!(run.elapsed() >= paused + Duration::from_millis(150), "wall time goes on");
        assert!(run.resume());
        std::thread::sleep(Duration::from_millis(60));
        assert!(run.active_elapsed() > paused + Duration::from_millis(50), "and runs again");
        run.stop();
        let ended = run.elapsed();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(run.elapsed(), ended, "the clock stops when the job ends");
    }

    #[test]
    fn a_stopped_run_saves_its_model_where_it_was_told() {
        let dir = tempfile::tempdir().unwrap();
        let out = Location::local(dir.path().join("m"));
        let run = demo_run(Some(out.clone()));
        assert_eq!(run.saved_to(), None);
        run.stop();
        assert_eq!(run.saved_to(), Some(out.to_string()));
        let model = crate::nn::saved::SavedModel::load(&out).unwrap();
        assert_eq!(model.meta.job.name, run.job.name);
        assert_eq!(model.state.len(), run.state_len);
        // A failed run saves nothing.
        let failed_dir = Location::local(dir.path().join("failed"));
        let failed = demo_run(Some(failed_dir.clone()));
        failed.fail("a worker could not go on".into());
        assert_eq!(failed.saved_to(), None);
        assert!(!dir.path().join("failed").exists());
    }
}
