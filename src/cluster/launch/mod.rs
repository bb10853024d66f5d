//! Starting workers for a job: child processes on this machine (`local`), threads of this
//! process that connect like any worker (`embedded`), and — in their own modules — SSH hosts
//! and Spark executors.

pub mod local;
mod threads;

pub use local::LocalLauncher;
pub use threads::ThreadLauncher;

use std::path::PathBuf;

use super::ClusterError;
use crate::job::{JobSpec, LauncherKind};

/// What a launched worker needs to reach the coordinator.
#[derive(Clone, Debug)]
pub struct LaunchContext {
    pub url: String,
    pub token_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    /// The `strom` binary to run.
    pub binary: PathBuf,
}

impl LaunchContext {
    /// Arguments of `strom worker` for this coordinator.
    pub fn worker_args(&self) -> Vec<String> {
        let mut args = vec!["worker".to_string(), "--coordinator".into(), self.url.clone()];
        if let Some(t) = &self.token_file {
            args.push("--token-file".into());
            args.push(t.display().to_string());
        }
        if let Some(ca) = &self.tls_ca {
            args.push("--tls-ca".into());
            args.push(ca.display().to_string());
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
        LauncherKind::None => Ok(None),
        LauncherKind::Ssh | LauncherKind::Spark => Err(ClusterError::Launch(format!(
            "the {:?} launcher is not available in this build",
            job.cluster.launcher
        ))),
    }
}
