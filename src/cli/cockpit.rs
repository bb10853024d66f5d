//! The cockpit commands: `strom` (an embedded coordinator on loopback with the demo job, and
//! the cockpit on it), `strom demo` (the same with a guided walkthrough) and `strom attach`
//! (the cockpit on a coordinator elsewhere, e.g. on a cluster's head node over SSH).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cluster::auth::{TokenDir, client_tls, generate_token, read_token_file};
use crate::cluster::{Coordinator, CoordinatorConfig};
use crate::engine::ModelOutput;
use crate::job::ResolvedJob;
use crate::storage::Location;

/// The job the cockpit opens unless told otherwise.
pub const COCKPIT_JOB: &str = include_str!("../../assets/jobs/cockpit.toml");

#[derive(Debug, Args, Default)]
#[command(after_help = "Keys: Tab/Shift-Tab screens, s start, p pause, x stop, f freeze, ? help, q quit.")]
pub struct CockpitArgs {
    /// Open this job file instead of the demo job.
    #[arg(long, value_name = "FILE")]
    pub job: Option<String>,
    /// How often the view refreshes, in milliseconds.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    pub refresh_ms: u64,
    /// Let the mouse switch screens and scroll (terminal text selection then needs Shift).
    #[arg(long)]
    pub mouse: bool,
    /// Checkpoint directory for the embedded coordinator.
    #[arg(long, value_name = "LOC")]
    pub checkpoint_dir: Option<String>,
    /// Where the model of a job that finishes or is stopped goes (local or HDFS), as with
    /// `strom train` [default: strom-runs/<job name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<String>,
    /// Where the embedded coordinator listens [default: 127.0.0.1 on a free port]. Beyond
    /// loopback (e.g. 0.0.0.0:7878) workers on other machines can join, over TLS with a
    /// certificate made at start (the workers the cockpit starts pin it).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example (on a cluster's head node, over SSH):\n  strom attach http://127.0.0.1:7878 --token-file token"
)]
pub struct AttachArgs {
    /// The coordinator's URL.
    #[arg(value_name = "URL")]
    pub url: String,
    /// File holding the coordinator's token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) for an https:// coordinator.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_pin")]
    pub tls_ca: Option<PathBuf>,
    /// Name on the coordinator's certificate [default: the URL's host].
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_domain: Option<String>,
    /// Trust exactly the certificate with this SHA-256 fingerprint (printed by a coordinator
    /// that made its own certificate: `tls pin: sha256:...`).
    #[arg(long, value_name = "sha256:HEX")]
    pub tls_pin: Option<String>,
    /// How often the view refreshes, in milliseconds.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    pub refresh_ms: u64,
    /// Let the mouse switch screens and scroll (terminal text selection then needs Shift).
    #[arg(long)]
    pub mouse: bool,
}

fn need_terminal() -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the cockpit needs a terminal; for a headless run use `strom train` (the same demo job: `strom train --config assets/jobs/cockpit.toml`)"
        );
    }
    Ok(())
}

fn timing_file() -> Option<PathBuf> {
    std::env::var_os("STROM_UI_TIMING").map(PathBuf::from)
}

/// `strom` and `strom demo`.
pub fn run(args: CockpitArgs, tour: bool, started: Instant) -> Result<()> {
    need_terminal()?;
    let job = match &args.job {
        Some(path) => ResolvedJob::load(&Location::parse(path)?).with_context(|| format!("--job {path}"))?,
        None => ResolvedJob::from_toml(COCKPIT_JOB, "the cockpit's demo job")?,
    };
    // Loopback only, but other users of this machine can reach loopback too: tokens, the
    // workers' in a private directory for the launched workers, the control token in this
    // process only (the cockpit's own).
    let token = generate_token()?;
    let control = generate_token()?;
    let tokens = TokenDir::new(&format!("strom-cockpit-token-{}.", std::process::id()))?;
    let token_file = tokens.write("worker-token", &token)?;
    let config = CoordinatorConfig {
        token: Some(token),
        control_token: Some(control.clone()),
        // The person at this terminal edits the job, commands included.
        allow_job_commands: true,
        token_file: Some(token_file.clone()),
        checkpoint_dir: args.checkpoint_dir.as_deref().map(Location::parse).transpose()?,
        output: Some(ModelOutput::from_flag(args.output.as_deref())?),
        ..CoordinatorConfig::loopback(Some(job))
    };
    let config = match &args.listen {
        Some(l) => CoordinatorConfig {
            listen: l.parse().with_context(|| format!("--listen {l}: expected host:port"))?,
            ..config
        },
        None => config,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async move {
        let handle = Coordinator::new(config).start().await?;
        // Beyond loopback it serves TLS with a certificate made at start: the cockpit pins it.
        let tls = match handle.tls_pin() {
            Some(pin) => client_tls(handle.url(), None, None, Some(&pin.to_string()))?,
            None => None,
        };
        let cfg = strom_ui::CockpitConfig {
            target: strom_ui::Target { url: handle.url().to_string(), token: Some(control), tls },
            embedded: true,
            tour,
            refresh: Duration::from_millis(args.refresh_ms.clamp(50, 5000)),
            mouse: args.mouse,
            started,
            timing_file: timing_file(),
        };
        let ui = strom_ui::run(cfg).await;
        // Quitting stops the job and every worker process it started.
        if let Some(run) = handle.shared.run()
            && !run.is_over()
        {
            run.stop();
        }
        handle.shutdown().await;
        ui
    });
    drop(tokens);
    result
}

/// `strom attach URL`.
pub fn attach(args: AttachArgs, started: Instant) -> Result<()> {
    need_terminal()?;
    let url = if args.url.contains("://") { args.url.clone() } else { format!("http://{}", args.url) };
    let token = args.token_file.as_deref().map(read_token_file).transpose()?;
    let tls = client_tls(&url, args.tls_ca.as_deref(), args.tls_domain.as_deref(), args.tls_pin.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(strom_ui::run(strom_ui::CockpitConfig {
        target: strom_ui::Target { url, token, tls },
        embedded: false,
        tour: false,
        refresh: Duration::from_millis(args.refresh_ms.clamp(50, 5000)),
        mouse: args.mouse,
        started,
        timing_file: timing_file(),
    }))
}
