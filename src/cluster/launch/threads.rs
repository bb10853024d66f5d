//! Workers as threads of the coordinator's process, connecting over loopback gRPC exactly like
//! a remote `strom worker` (the cockpit's default: one process, the same code path).

use strom_proto::tls::ClientTls;

use super::{LaunchContext, Launcher};
use crate::cluster::ClusterError;
use crate::cluster::auth::{client_tls, read_token_file};
use crate::cluster::worker::{WorkerConfig, run_worker};

#[derive(Default)]
pub struct ThreadLauncher;

impl Launcher for ThreadLauncher {
    fn start(&self, count: usize, ctx: &LaunchContext) -> Result<(), ClusterError> {
        let token = ctx.token_file.as_deref().map(read_token_file).transpose()?;
        let tls = match (&ctx.tls_pin, &ctx.tls_ca) {
            (Some(pin), _) => Some(ClientTls::Pin(*pin)),
            (None, Some(ca)) => client_tls(&ctx.url, Some(ca), Some("localhost"), None)?,
            (None, None) => None,
        };
        for i in 0..count {
            let mut cfg = WorkerConfig::new(ctx.url.clone());
            cfg.token = token.clone();
            cfg.tls = tls.clone();
            std::thread::Builder::new()
                .name(format!("strom-worker-thread-{i}"))
                .spawn(move || {
                    if let Err(e) = run_worker(cfg) {
                        tracing::error!("worker thread {i}: {e}");
                    }
                })
                .map_err(|e| ClusterError::Launch(format!("cannot start a worker thread: {e}")))?;
        }
        Ok(())
    }

    fn stop_all(&self) {}

    fn describe(&self) -> String {
        "threads of the coordinator".into()
    }
}
