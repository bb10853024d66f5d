//! Starting workers for a job: child processes on this machine (`local`), threads of this
//! process that connect like any worker (`embedded`), and — in their own modules — SSH hosts
//! and Spark executors.

pub mod local;
pub mod spark;
pub mod ssh;
mod threads;

pub use local::LocalLauncher;
pub use spark::SparkLauncher;
pub use ssh::SshLauncher;
pub use threads::ThreadLauncher;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use strom_proto::tls::Pin;

use super::ClusterError;
use crate::job::{JobSpec, LauncherKind};

/// What a launched worker needs to reach the coordinator.
#[derive(Clone, Debug)]
pub struct LaunchContext {
    pub url: String,
    pub token_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    /// The fingerprint of the coordinator's self-signed certificate, which workers pin.
    pub tls_pin: Option<Pin>,
    /// The `strom` binary to run.
    pub binary: PathBuf,
    /// The token itself, for workers that get it on stdin (remote hosts lack the file).
    pub token: Option<String>,
    /// Where launchers report what failed to start, per host or worker (shown by the cockpit).
    pub problems: Arc<Mutex<Vec<String>>>,
    /// Restarts of a crashed worker (local and SSH launchers; `cluster.max_restarts`).
    pub max_restarts: u32,
}

impl LaunchContext {
    /// Arguments of `strom worker` for this coordinator. The token comes from the token file,
    /// or with `token_on_stdin` from standard input (`--token-file -`: remote hosts lack the
    /// file).
    pub fn worker_args(&self, token_on_stdin: bool) -> Vec<String> {
        let mut args = vec!["worker".to_string(), "--coordinator".into(), self.url.clone()];
        let token_file = match (&self.token_file, token_on_stdin) {
            (_, true) => self.token.as_ref().map(|_| "-".to_string()),
            (Some(t), false) => Some(t.display().to_string()),
            (None, false) => None,
        };
        if let Some(t) = token_file {
            args.extend(["--token-file".into(), t]);
        }
        if let Some(ca) = &self.tls_ca {
            args.extend(["--tls-ca".into(), ca.display().to_string()]);
        }
        if let Some(pin) = &self.tls_pin {
            args.extend(["--tls-pin".into(), pin.to_string()]);
        }
        args
    }
}

pub trait Launcher: Send + Sync {
    /// Starts `count` workers.
    fn start(&self, count: usize, ctx: &LaunchContext) -> Result<(), ClusterError>;
    /// Stops every worker it started (the job ended, or the coordinator is going away).
    fn stop_all(&self);
    fn describe(&self) -> String;
}

/// The launcher a job asks for; `None` when workers join by themselves.
pub fn for_job(job: &JobSpec) -> Result<Option<Box<dyn Launcher>>, ClusterError> {
    match job.cluster.launcher {
        LauncherKind::Local => Ok(Some(Box::new(LocalLauncher::default()))),
        LauncherKind::Embedded => Ok(Some(Box::new(ThreadLauncher))),
        LauncherKind::Ssh => Ok(Some(Box::new(SshLauncher::new(&job.cluster)))),
        LauncherKind::Spark => Ok(Some(Box::new(SparkLauncher::new(&job.cluster.spark)))),
        LauncherKind::None => Ok(None),
    }
}
