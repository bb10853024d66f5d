//! `strom worker`: join a coordinator and train until its job ends.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::parse_name;
use crate::cluster::auth::{client_tls, read_token_file};
use crate::cluster::launch::local::exit_with_parent;
use crate::cluster::{WorkerConfig, run_worker};
use crate::job::BackendKind;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  strom worker --coordinator https://head-node:7878 --token-file token --tls-pin sha256:3f0c...\n      (a coordinator listening beyond loopback serves TLS and prints the pin: `tls pin: sha256:...`)\n  strom worker --coordinator http://127.0.0.1:7878 --token-file token   (one on loopback)"
)]
pub struct WorkerArgs {
    /// The coordinator's URL: https://host:port for a coordinator beyond loopback (TLS, with
    /// --tls-pin or --tls-ca), http://127.0.0.1:port on loopback. Without a scheme: https://
    /// when --tls-pin or --tls-ca is given, else http://.
    #[arg(long, env = "STROM_COORDINATOR", value_name = "URL")]
    pub coordinator: String,
    /// File holding the job's bearer token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for an https:// coordinator.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_pin")]
    pub tls_ca: Option<PathBuf>,
    /// Name the coordinator's certificate must carry [default: the URL's host].
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_domain: Option<String>,
    /// Trust exactly the certificate with this SHA-256 fingerprint (the one a coordinator
    /// without certificate files makes at start and prints: `tls pin: sha256:...`).
    #[arg(long, value_name = "sha256:HEX")]
    pub tls_pin: Option<String>,
    /// Seconds to keep trying to reach the coordinator (at the start, and after losing it)
    /// before giving up [default: the job's cluster.reconnect_secs once joined, 300 before].
    #[arg(long, value_name = "SECS")]
    pub reconnect_secs: Option<u64>,
    /// Also give up after this many consecutive failed connection attempts.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Seconds to wait for one connection attempt.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub connect_timeout: u64,
    /// Use this backend instead of the job's.
    #[arg(long, value_name = "cpu|cuda", value_parser = parse_name::<BackendKind>)]
    pub backend: Option<BackendKind>,
    /// How this worker appears in the cockpit [default: the host name].
    #[arg(long, value_name = "LABEL")]
    pub name: Option<String>,
    /// How often the launcher has restarted this worker (set by launchers; shown in the cockpit).
    #[arg(long, hide = true, default_value_t = 0, value_name = "N")]
    pub restarts: u32,
    /// Exit when this process is no longer the parent (set by launchers).
    #[arg(long, hide = true, value_name = "PID")]
    pub exit_with_parent: Option<u32>,
}

pub fn run(args: WorkerArgs) -> Result<()> {
    if let Some(pid) = args.exit_with_parent {
        exit_with_parent(pid);
    }
    let url = if args.coordinator.contains("://") {
        args.coordinator.clone()
    } else if args.tls_pin.is_some() || args.tls_ca.is_some() {
        format!("https://{}", args.coordinator)
    } else {
        format!("http://{}", args.coordinator)
    };
    let mut cfg = WorkerConfig::new(url.clone());
    cfg.token = args.token_file.as_deref().map(read_token_file).transpose()?;
    cfg.tls = client_tls(&url, args.tls_ca.as_deref(), args.tls_domain.as_deref(), args.tls_pin.as_deref())?;
    cfg.retries = args.retries.map(|r| r.max(1));
    cfg.reconnect = args.reconnect_secs.map(|s| Duration::from_secs(s.max(1)));
    cfg.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
    cfg.backend = args.backend;
    cfg.host = args.name;
    cfg.restarts = args.restarts;
    let outcome = run_worker(cfg).with_context(|| format!("worker for {url}"))?;
    if let Some(s) = outcome.summary {
        tracing::info!("worker {} done: {} steps, {} samples", outcome.id, s.steps, s.samples);
    }
    Ok(())
}
