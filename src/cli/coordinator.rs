//! `strom coordinator`, and `strom train` with a launcher other than embedded (an in-process
//! coordinator whose workers are launched processes).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::progress::TrainProgress;
use super::train::{TrainArgs, log_plan};
use crate::cluster::auth::{ServerTls, TokenDir, generate_token, read_token_file};
use crate::cluster::coordinator::{JobRun, RunEnd, RunResult};
use crate::cluster::{Coordinator, CoordinatorConfig};
use crate::engine::{EpochSummary, ModelOutput, Observer, StepStats};
use crate::job::ResolvedJob;
use crate::storage::Location;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  strom coordinator --listen 0.0.0.0:7878 --token-file token --job job.toml --checkpoint-dir ckpt\n  strom coordinator --token-file token          (wait for a job from the cockpit: strom attach)"
)]
pub struct CoordinatorArgs {
    /// Address to listen on (host:port). Beyond loopback a token is required.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub listen: String,
    /// File holding the workers' bearer token (join and train).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// File holding the control token the cockpit (`strom attach`) presents to watch and steer
    /// jobs [default: the workers' token, with a warning: every worker host could steer].
    #[arg(long, value_name = "FILE")]
    pub control_token_file: Option<PathBuf>,
    /// Let submitted jobs name programs and ssh options of their own (cluster.spark.submit,
    /// spark.args, ssh.options, ssh.binary, host binaries); without it they must match the
    /// --job this coordinator started with.
    #[arg(long)]
    pub allow_job_commands: bool,
    /// Job file to run; without it the coordinator waits for one (`strom attach`).
    #[arg(long, value_name = "FILE")]
    pub job: Option<String>,
    /// Where checkpoints go (local or HDFS); a restarted coordinator resumes from the latest.
    #[arg(long, value_name = "LOC")]
    pub checkpoint_dir: Option<String>,
    /// Resume from the checkpoint of a run that failed (without it such a checkpoint stops the
    /// coordinator with the run's reason).
    #[arg(long, requires = "checkpoint_dir")]
    pub resume_failed: bool,
    /// TLS certificate (PEM) to serve with.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate launched workers should trust (with TLS).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Serve plaintext beyond loopback. Without it, and without --tls-cert, a coordinator that
    /// listens beyond loopback makes a self-signed certificate at start and prints its
    /// fingerprint (`tls pin: sha256:...`), which the workers it launches pin.
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_plaintext: bool,
    /// Where the final model goes [default: strom-runs/<job name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<String>,
    /// Write the job's JSON summary here when it ends.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Keep serving after the job ends (for the cockpit and further jobs).
    #[arg(long)]
    pub serve: bool,
}

/// Shares one progress display between the coordinator (which feeds it) and the command (which
/// closes it).
#[derive(Clone)]
struct SharedProgress(Arc<Mutex<TrainProgress>>);

impl Observer for SharedProgress {
    fn step(&mut self, s: &StepStats) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).step(s);
    }
    fn epoch(&mut self, e: &EpochSummary) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).epoch(e);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

/// Reports a run that ended (the coordinator saved its model as it ended); errors if it failed
/// or its model could not be saved.
fn finish(
    run: &JobRun,
    result: &RunResult,
    output: &Location,
    summary: Option<&std::path::Path>,
) -> Result<()> {
    if let RunEnd::Failed(reason) = &result.end {
        bail!("job {} failed: {reason}", run.job.name);
    }
    if run.saved_to().is_none() {
        bail!("job {}: the model could not be saved to {output} (the log above says why)", run.job.name);
    }
    super::train::report(&run.finished(&result.outcome), output, summary)?;
    if result.end == RunEnd::Stopped {
        println!("(the job was stopped before its last epoch)");
    }
    Ok(())
}

/// The commands that join this coordinator from another host, ready to copy: its host name
/// (when it listens on every address) or address, the scheme, the pin and the token files.
fn join_hints(handle: &crate::cluster::CoordinatorHandle, args: &CoordinatorArgs) -> Vec<String> {
    let addr = handle.addr();
    let host = if addr.ip().is_unspecified() {
        crate::cluster::worker::host_name()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let scheme = if handle.url().starts_with("https://") { "https" } else { "http" };
    let url = format!("{scheme}://{host}:{}", addr.port());
    let pin = handle.tls_pin().map(|p| format!(" --tls-pin {p}")).unwrap_or_default();
    let ca = args.tls_ca.as_ref().map(|p| format!(" --tls-ca {}", absolute(p))).unwrap_or_default();
    let file = |f: &Option<PathBuf>| f.as_ref().map(|p| format!(" --token-file {}", absolute(p)));
    let worker_token = file(&args.token_file).unwrap_or_default();
    let control_token = file(&args.control_token_file).unwrap_or_else(|| worker_token.clone());
    let mut lines = vec![
        format!("workers join with: strom worker --coordinator {url}{worker_token}{pin}{ca}"),
        format!("the cockpit attaches with: strom attach {url}{control_token}{pin}{ca}"),
    ];
    if args.token_file.is_some() {
        lines.push("(copy the token file to each worker host, readable by its user only)".into());
    }
    lines
}

fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

pub fn run(args: CoordinatorArgs) -> Result<()> {
    let listen: SocketAddr =
        args.listen.parse().with_context(|| format!("--listen {}: expected host:port", args.listen))?;
    let token = args.token_file.as_deref().map(read_token_file).transpose()?;
    let control_token = args.control_token_file.as_deref().map(read_token_file).transpose()?;
    if control_token.is_some() && control_token == token {
        bail!("--control-token-file holds the workers' token: use a token of its own");
    }
    let job = match &args.job {
        Some(path) => {
            Some(ResolvedJob::load(&Location::parse(path)?).with_context(|| format!("--job {path}"))?)
        }
        None => None,
    };
    let checkpoint_dir = args.checkpoint_dir.as_deref().map(Location::parse).transpose()?;
    let output = ModelOutput::from_flag(args.output.as_deref())?;
    let config = CoordinatorConfig {
        output: Some(output.clone()),
        listen,
        token,
        control_token,
        allow_job_commands: args.allow_job_commands,
        token_file: args.token_file.clone(),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()).map(|(cert, key)| ServerTls { cert, key }),
        tls_ca: args.tls_ca.clone(),
        insecure_plaintext: args.insecure_plaintext,
        checkpoint_dir,
        resume_failed: args.resume_failed,
        start: job.is_some(),
        job,
        ..CoordinatorConfig::loopback(None)
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let handle = Coordinator::new(config).start().await?;
        println!("coordinator listening on {}", handle.url());
        if let Some(pin) = handle.tls_pin() {
            println!("tls pin: {pin} (a certificate made at start; clients pin it)");
        }
        for line in join_hints(&handle, &args) {
            println!("{line}");
        }
        if let Some(job) = handle.shared.loaded_job()
            && job.cluster.launcher == crate::job::LauncherKind::Embedded
        {
            tracing::warn!(
                "job {} runs its {} worker(s) as threads inside this coordinator (cluster.launcher = \
                 \"embedded\"); for workers on other hosts set launcher = \"none\" (or local, ssh, spark)",
                job.name,
                job.cluster.workers
            );
        }
        loop {
            let running = handle.shared.run().is_some();
            if !running && !args.serve {
                // No job yet: serve until interrupted.
                tokio::signal::ctrl_c().await.ok();
                handle.shutdown().await;
                return Ok(());
            }
            tokio::select! {
                result = handle.wait_run() => {
                    let Some(run) = handle.shared.run() else { continue };
                    let output = output.for_job(&run.job.name)?;
                    let outcome = finish(&run, &result, &output, args.summary_json.as_deref());
                    if !args.serve {
                        handle.shutdown().await;
                        return outcome;
                    }
                    if let Err(e) = outcome {
                        eprintln!("error: {e:#}");
                    }
                    // Serve on: wait for the next run.
                    while handle.shared.run().is_some_and(|r| Arc::ptr_eq(&r, &run)) {
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                            _ = tokio::signal::ctrl_c() => { handle.shutdown().await; return Ok(()); }
                        }
                    }
                }
                _ = tokio::signal::ctrl_c() => {
                    if let Some(run) = handle.shared.run() {
                        run.write_checkpoint(crate::cluster::coordinator::CheckpointWrite::Last { failed: None });
                    }
                    handle.shutdown().await;
                    bail!("interrupted");
                }
            }
        }
    })
}

/// `strom train --launcher local|none|...`: a coordinator in this process, workers launched
/// by the job's launcher, progress and results as with the embedded engine.
pub fn train_with_coordinator(args: &TrainArgs, job: ResolvedJob, output: &Location) -> Result<()> {
    // The workers' token, in a private directory for the launched workers; the control token
    // stays in this process (nothing here steers the job over the wire).
    let token = generate_token()?;
    let tokens = TokenDir::new(&format!("strom-token-{}.", std::process::id()))?;
    let token_file = tokens.write("worker-token", &token)?;
    // Prepared once here (for the plan and the progress display) and handed to the coordinator.
    let prepared = crate::data::prepare(&job.data, job.train.seed)
        .with_context(|| format!("reading {}", job.data.train))?;
    let shape = prepared.shape.clone();
    let architecture = crate::nn::Architecture::from_job(&job.model, shape.input, shape.outputs)
        .context("the job's model")?;
    crate::backend::check_support(&job, &architecture)?;
    crate::sharing::create(&job, architecture.layout())?;
    log_plan(&job, &architecture, 0);
    let progress = SharedProgress(Arc::new(Mutex::new(TrainProgress::new(
        &job,
        shape.rows,
        0,
        args.metrics_out.as_deref(),
    )?)));
    let listen: SocketAddr = match &args.listen {
        Some(l) => l.parse().with_context(|| format!("--listen {l}: expected host:port"))?,
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let config = CoordinatorConfig {
        listen,
        token: Some(token),
        control_token: Some(generate_token()?),
        // The job is this user's own, given on the command line.
        allow_job_commands: true,
        token_file: Some(token_file.clone()),
        insecure_plaintext: args.insecure_plaintext,
        checkpoint_dir: args.checkpoint_dir.as_deref().map(Location::parse).transpose()?,
        output: Some(ModelOutput::Dir(output.clone())),
        job: Some(job),
        start: true,
        ..CoordinatorConfig::loopback(None)
    };
    let rt = runtime()?;
    let display = progress.clone();
    let result = rt.block_on(async move {
        let handle = Coordinator::new(config)
            .with_observer(Box::new(progress))
            .with_prepared_data(prepared)
            .start()
            .await?;
        let run = handle.shared.run().context("the job did not start")?;
        tracing::info!("coordinator on {}; launching {} worker(s)", handle.url(), run.job.cluster.workers);
        if let Some(pin) = handle.tls_pin() {
            tracing::info!("serving TLS with a certificate made at start; workers pin {pin}");
        }
        let result = tokio::select! {
            r = handle.wait_run() => r,
            _ = tokio::signal::ctrl_c() => {
                run.stop();
                handle.shutdown().await;
                bail!("interrupted; workers stopped");
            }
        };
        handle.shutdown().await;
        Ok::<_, anyhow::Error>((run, result))
    });
    display.0.lock().unwrap_or_else(|p| p.into_inner()).finish();
    let (run, result) = result?;
    finish(&run, &result, output, args.summary_json.as_deref())
}
