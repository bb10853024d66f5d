//! The `Control` service: what the cockpit calls.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use strom_proto::v1 as pb;
use strom_proto::v1::control_server::Control;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Shared, form, watch};
use crate::job::{JobSpec, ResolvedJob};
use crate::telemetry::log_tap;

/// Updates a watcher may have queued before it counts as too slow and is dropped.
const WATCH_QUEUE: usize = 16;

pub struct ControlService {
    pub shared: Arc<Shared>,
}

fn reply(ok: bool, message: impl Into<String>) -> Response<pb::ControlReply> {
    Response::new(pb::ControlReply { ok, message: message.into() })
}

fn level_rank(level: &str) -> u8 {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => 0,
        "DEBUG" => 1,
        "INFO" => 2,
        "WARN" => 3,
        "ERROR" => 4,
        _ => 2,
    }
}

/// The snapshot of a coordinator that has no run: idle, or a job loaded and ready.
fn idle_snapshot(shared: &Shared) -> pb::JobSnapshot {
    let job = shared.loaded_job();
    pb::JobSnapshot {
        job_name: job.as_ref().map(|j| j.name.clone()).unwrap_or_default(),
        job_toml: job.as_ref().map(|j| j.to_toml()).unwrap_or_default(),
        state: if job.is_some() { pb::JobState::Ready } else { pb::JobState::Idle } as i32,
        state_detail: if job.is_some() { "press s to start".into() } else { "no job loaded".into() },
        coordinator: shared.url.clone(),
        sharing_mode: job.map(|j| format!("{:?}", j.sharing_mode()).to_lowercase()).unwrap_or_default(),
        ..Default::default()
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::JobUpdate, Status>> + Send>>;
type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogBatch, Status>> + Send>>;

#[tonic::async_trait]
impl Control for ControlService {
    type WatchJobStream = WatchStream;

    async fn watch_job(&self, request: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let watcher = self.shared.watcher()?;
        let ms = request.into_inner().interval_ms;
        let interval = Duration::from_millis(if ms == 0 { 250 } else { ms.clamp(50, 10_000) as u64 });
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _watcher = watcher;
            let mut current: Option<(Arc<super::JobRun>, watch::Cursor)> = None;
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                let run = shared.run();
                let update = match (&run, &mut current) {
                    // Same run as last time: a delta.
                    (Some(r), Some((seen, cursor))) if Arc::ptr_eq(r, seen) => {
                        pb::job_update::Kind::Delta(watch::delta(r, cursor))
                    }
                    // A new run (or the first look): a full snapshot.
                    (Some(r), _) => {
                        let (snap, cursor) = watch::snapshot(r, &shared.url);
                        current = Some((r.clone(), cursor));
                        pb::job_update::Kind::Snapshot(snap)
                    }
                    (None, _) => pb::job_update::Kind::Snapshot(idle_snapshot(&shared)),
                };
                match tx.try_send(Ok(pb::JobUpdate { kind: Some(update) })) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!(
                            "dropped a watcher that could not keep up; it will reconnect to a fresh snapshot"
                        );
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type WatchLogsStream = LogStream;

    async fn watch_logs(&self, request: Request<pb::LogsRequest>) -> Result<Response<LogStream>, Status> {
        let watcher = self.shared.watcher()?;
        let req = request.into_inner();
        let min = level_rank(if req.min_level.is_empty() { "info" } else { &req.min_level });
        let workers = req.workers;
        let mut events = log_tap().subscribe();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let _watcher = watcher;
            loop {
                let mut batch = Vec::new();
                match events.recv().await {
                    Ok(e) => batch.push(e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        batch.push(crate::telemetry::LogEvent {
                            time: crate::telemetry::unix_now(),
                            level: "WARN".into(),
                            target: "strom::logs".into(),
                            message: format!("{n} log lines skipped: the log stream could not keep up"),
                            worker: None,
                        });
                    }
                    Err(_) => break,
                }
                while let Ok(e) = events.try_recv() {
                    batch.push(e);
                }
                let records: Vec<pb::LogRecord> = batch
                    .into_iter()
                    .filter(|e| level_rank(&e.level) >= min)
                    .filter(|e| workers.is_empty() || e.worker.is_some_and(|w| workers.contains(&w)))
                    .map(|e| pb::LogRecord {
                        time: e.time,
                        level: e.level,
                        target: e.target,
                        message: e.message,
                        worker: e.worker,
                    })
                    .collect();
                if records.is_empty() {
                    continue;
                }
                if tx.send(Ok(pb::LogBatch { records })).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn validate(&self, request: Request<pb::JobText>) -> Result<Response<pb::ValidateReply>, Status> {
        let req = request.into_inner();
        let result = tokio::task::spawn_blocking(move || {
            let job = match ResolvedJob::from_toml(&req.toml, "job") {
                Ok(job) => job,
                Err(e) => {
                    return pb::ValidateReply {
                        ok: false,
                        problems: form::problems(&e.key_errors()),
                        ..Default::default()
                    };
                }
            };
            let mut problems = Vec::new();
            let mut summary = String::new();
            let mut columns = Vec::new();
            let (mut model, mut model_summary, mut model_parameters) = (Vec::new(), String::new(), 0);
            if req.check_paths {
                problems = job.check_paths();
                if problems.is_empty() {
                    let seed = job.train.seed;
                    match crate::data::fitted_process(&job.data, seed)
                        .and_then(|p| crate::data::describe(&job.data, seed, p.as_ref()))
                    {
                        Ok(shape) => {
                            summary = shape.to_string();
                            match crate::nn::Architecture::from_job(&job.model, shape.input, shape.outputs) {
                                Ok(arch) => {
                                    model = crate::cluster::convert::model_to_pb(&arch);
                                    model_summary = arch.describe();
                                    model_parameters = arch.param_count() as u64;
                                    if let Err(e) = crate::backend::check_support(&job, &arch) {
                                        problems.push(crate::job::KeyError {
                                            key: "compute.backend".into(),
                                            line: None,
                                            message: e.to_string(),
                                        });
                                    }
                                    if let Err(crate::sharing::SchemeError::Knob { key, message }) =
                                        crate::sharing::create(&job, arch.layout())
                                    {
                                        problems.push(crate::job::KeyError {
                                            key: key.into(),
                                            line: None,
                                            message,
                                        });
                                    }
                                }
                                Err(e) => problems.push(crate::job::KeyError {
                                    key: if job.model.layers.is_some() {
                                        "model.layers"
                                    } else {
                                        "model.preset"
                                    }
                                    .into(),
                                    line: None,
                                    message: format!("does not fit the data ({}): {e}", shape.input),
                                }),
                            }
                            columns = shape
                                .columns
                                .iter()
                                .map(|(name, kind)| pb::DataColumn {
                                    label: *name == shape.label,
                                    name: name.clone(),
                                    r#type: kind.clone(),
                                })
                                .collect();
                        }
                        Err(e) => problems.push(crate::job::KeyError {
                            key: "data.train".into(),
                            line: None,
                            message: e.to_string(),
                        }),
                    }
                }
            }
            pb::ValidateReply {
                ok: problems.is_empty(),
                problems: form::problems(&problems),
                normalized_toml: job.to_toml(),
                data_summary: summary,
                data_columns: columns,
                model,
                model_summary,
                model_parameters,
            }
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(result))
    }

    async fn submit(&self, request: Request<pb::SubmitRequest>) -> Result<Response<pb::SubmitReply>, Status> {
        let req = request.into_inner();
        let job = match ResolvedJob::from_toml(&req.toml, "job") {
            Ok(job) => job,
            Err(e) => {
                return Ok(Response::new(pb::SubmitReply {
                    ok: false,
                    problems: form::problems(&e.key_errors()),
                    message: "the job is not valid".into(),
                }));
            }
        };
        if let Some(run) = self.shared.run()
            && !run.is_over()
        {
            return Ok(Response::new(pb::SubmitReply {
                ok: false,
                problems: vec![],
                message: format!("job {} is still running; stop it first", run.job.name),
            }));
        }
        let refused = self.shared.foreign_commands(&job);
        if !refused.is_empty() {
            return Ok(Response::new(pb::SubmitReply {
                ok: false,
                problems: form::problems(&refused),
                message: "the job names programs this coordinator was not started to run".into(),
            }));
        }
        let name = job.name.clone();
        self.shared.load_job(job);
        if !req.start {
            return Ok(Response::new(pb::SubmitReply {
                ok: true,
                problems: vec![],
                message: format!("job {name} loaded"),
            }));
        }
        match self.shared.start_job().await {
            Ok(_) => Ok(Response::new(pb::SubmitReply {
                ok: true,
                problems: vec![],
                message: format!("job {name} started"),
            })),
            Err(e) => {
                Ok(Response::new(pb::SubmitReply { ok: false, problems: vec![], message: e.to_string() }))
            }
        }
    }

    async fn pause(&self, _: Request<pb::Empty>) -> Result<Response<pb::ControlReply>, Status> {
        Ok(match self.shared.run() {
            Some(run) if run.pause() => reply(true, "paused: workers finish their current step and wait"),
            Some(_) => reply(false, "the job is not running"),
            None => reply(false, "no job is running"),
        })
    }

    async fn resume(&self, _: Request<pb::Empty>) -> Result<Response<pb::ControlReply>, Status> {
        Ok(match self.shared.run() {
            Some(run) if run.resume() => reply(true, "resumed"),
            Some(_) => reply(false, "the job is not paused"),
            None => reply(false, "no job is running"),
        })
    }

    async fn stop(&self, _: Request<pb::Empty>) -> Result<Response<pb::ControlReply>, Status> {
        Ok(match self.shared.run() {
            Some(run) if !run.is_over() => {
                // Stopping writes the checkpoint and saves the model: off the async runtime.
                let stopping = run.clone();
                tokio::task::spawn_blocking(move || stopping.stop())
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
                match run.saved_to() {
                    Some(dir) => reply(true, format!("stopped; the model so far is saved to {dir}")),
                    None => reply(true, "stopped"),
                }
            }
            Some(_) => reply(false, "the job has already ended"),
            None => reply(false, "no job is running"),
        })
    }

    async fn add_workers(
        &self,
        request: Request<pb::AddWorkersRequest>,
    ) -> Result<Response<pb::ControlReply>, Status> {
        let req = request.into_inner();
        let count = req.count.clamp(1, 64) as usize;
        match self.shared.run() {
            Some(run) if !run.is_over() => {}
            _ => return Ok(reply(false, "no job is running")),
        }
        let shared = self.shared.clone();
        // SSH probes block: off the async runtime.
        let added = tokio::task::spawn_blocking(move || shared.add_workers(count, &req.host))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(match added {
            Ok(m) => reply(true, m),
            Err(e) => reply(false, e.to_string()),
        })
    }

    async fn remove_worker(
        &self,
        request: Request<pb::RemoveWorkerRequest>,
    ) -> Result<Response<pb::ControlReply>, Status> {
        let id = request.into_inner().worker_id;
        Ok(match self.shared.run() {
            Some(run) if run.link(id).is_some() => {
                run.remove_worker(id);
                reply(true, format!("worker {id} removed; its partitions go back to the queue"))
            }
            Some(_) => reply(false, format!("no worker {id}")),
            None => reply(false, "no job is running"),
        })
    }

    async fn describe_job(&self, request: Request<pb::JobText>) -> Result<Response<pb::JobForm>, Status> {
        let req = request.into_inner();
        let text = if req.toml.trim().is_empty() {
            self.shared.loaded_job().map(|j| j.to_toml()).unwrap_or_else(|| JobSpec::default().to_toml())
        } else {
            req.toml
        };
        let base = (!req.base_dir.is_empty()).then(|| std::path::PathBuf::from(&req.base_dir));
        Ok(Response::new(form::describe_from(&text, base.as_deref())))
    }

    async fn edit_job(&self, request: Request<pb::EditRequest>) -> Result<Response<pb::JobForm>, Status> {
        let req = request.into_inner();
        Ok(Response::new(form::edit(&req.toml, &req.key, &req.value)))
    }
}
