//! The `Cluster` service: what workers call.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use strom_proto::v1 as pb;
use strom_proto::v1::cluster_server::Cluster;
use tonic::{Request, Response, Status, Streaming};

use super::Shared;
use super::run::{JobRun, LinkState, WorkerLink};
use crate::cluster::auth::{WORKER_ID, WORKER_SECRET, constant_time_eq};
use crate::cluster::convert::{
    params_from_bytes, params_to_bytes, partition_from_pb, partition_to_pb, reduce_from_bytes,
    reduce_to_bytes, stats_from_pb,
};
use crate::engine::hub::ReduceKey;
use crate::engine::hub::{EpochNext, Work};
use crate::engine::inbox::SharedMessage;
use crate::sharing::{Reduce, codec};
use crate::telemetry::{LogEvent, log_tap};

/// How long a long poll (barrier, averaging round) holds before answering "pending".
const LONG_POLL: Duration = Duration::from_secs(20);

pub struct ClusterService {
    pub shared: Arc<Shared>,
}

impl ClusterService {
    fn run(&self) -> Result<Arc<JobRun>, Status> {
        self.shared.run().ok_or_else(|| Status::failed_precondition("no job is running on this coordinator"))
    }
}

/// The worker a call comes from, proven by its session secret; `claimed` (the id the call's
/// body names) must be the same. Every call after the join goes through here, so no worker can
/// act for another (report it failed, keep it alive, take its partitions or its link).
fn authenticate<T>(
    run: &JobRun,
    request: &Request<T>,
    claimed: Option<u32>,
) -> Result<Arc<WorkerLink>, Status> {
    let md = request.metadata();
    let id: u32 = md
        .get(WORKER_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Status::invalid_argument(format!("missing or bad '{WORKER_ID}' metadata")))?;
    if let Some(c) = claimed
        && c != id
    {
        run.refuse(&format!("worker {id} spoke for worker {c}"));
        return Err(Status::permission_denied(format!(
            "the call names worker {c} but comes from worker {id}"
        )));
    }
    let link = run
        .link(id)
        .ok_or_else(|| Status::not_found(format!("worker {id} is not part of this job; join again")))?;
    let secret = md.get(WORKER_SECRET).map(|v| v.as_bytes()).unwrap_or_default();
    if !constant_time_eq(secret, link.secret.as_bytes()) {
        run.refuse(&format!("a call for worker {id} without its session secret"));
        return Err(Status::permission_denied(format!(
            "worker {id}'s session secret does not match: a worker may only speak for itself"
        )));
    }
    Ok(link)
}

/// Waits until `ready` returns something, for at most [`LONG_POLL`].
async fn long_poll<T>(run: &JobRun, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let notified = run.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(v) = ready() {
            return Some(v);
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => return ready(),
            // A periodic re-check covers changes that did not notify.
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Log lines a worker may send per report, and characters per line (the rest is cut).
const MAX_LOG_LINES: usize = 200;
const MAX_LOG_LINE: usize = 4096;

fn bounded(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<pb::Update, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn join(&self, request: Request<pb::JoinRequest>) -> Result<Response<pb::JoinReply>, Status> {
        let req = request.into_inner();
        if req.protocol_version != strom_proto::PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "worker speaks protocol {}, this coordinator {}: use the same strom version",
                req.protocol_version,
                strom_proto::PROTOCOL_VERSION
            )));
        }
        let run = self.run()?;
        if run.is_over() {
            return Err(Status::failed_precondition("the job has ended"));
        }
        let previous = req.previous_worker_id.map(|p| (p, req.previous_secret.clone()));
        let admitted = run
            .join(req.host, req.pid, req.device, previous, req.restarts)
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(pb::JoinReply {
            worker_id: admitted.id,
            session_secret: admitted.secret,
            job_toml: run.job_toml.clone(),
            params: params_to_bytes(&admitted.params),
            epoch: admitted.epoch,
            relay_tree: admitted.relay_seq.is_some(),
            relay_seq: admitted.relay_seq.unwrap_or(0),
            tau: run.tau().unwrap_or(0.0),
            heartbeat_interval_ms: (run.heartbeat_timeout.as_millis() / 5).clamp(100, 2000) as u32,
            architecture_json: serde_json::to_string(&run.architecture).unwrap_or_default(),
            transform_json: run.transform_json.clone(),
            train_rows: run.shape.rows as u64,
        }))
    }

    type ExchangeStream = UpdateStream;

    async fn exchange(
        &self,
        request: Request<Streaming<pb::Update>>,
    ) -> Result<Response<Self::ExchangeStream>, Status> {
        let run = self.run()?;
        let link = authenticate(&run, &request, None)?;
        let id = link.id;
        let mut inbound = request.into_inner();

        // Inbound: validate and relay; when the stream ends, the worker is gone.
        let (run_in, link_in) = (run.clone(), link.clone());
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(update)) => {
                        if link_in.is_closed() {
                            break;
                        }
                        let _ = run_in.relay(id, update.payload);
                    }
                    Ok(None) => {
                        if !link_in.is_closed() {
                            run_in.lose_worker(id, "its connection closed");
                        }
                        break;
                    }
                    Err(e) => {
                        if !link_in.is_closed() {
                            run_in.lose_worker(id, &format!("its connection broke ({})", e.message()));
                        }
                        break;
                    }
                }
            }
        });

        // Outbound: the others' updates from this worker's inbox; merged sums as dense.
        struct Out {
            link: Arc<super::run::WorkerLink>,
            queue: VecDeque<SharedMessage>,
            merged: Vec<f32>,
        }
        let state = Out { link, queue: VecDeque::new(), merged: Vec::new() };
        let stream = futures_util::stream::unfold(state, |mut s| async move {
            loop {
                if let Some(m) = s.queue.pop_front() {
                    let origin = codec::peek_header(&m).map(|h| h.origin).unwrap_or(0);
                    let seq = s.link.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Some((Ok(pb::Update { origin, seq, payload: m }), s));
                }
                if s.link.take(&mut s.queue, &mut s.merged) {
                    let mut dense = Vec::new();
                    codec::encode_dense(&mut dense, &s.merged, u32::MAX, 0);
                    s.queue.push_back(SharedMessage::from(dense));
                    continue;
                }
                if !s.queue.is_empty() {
                    continue;
                }
                if s.link.is_closed() {
                    return None;
                }
                let notified = s.link.ready.notified();
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn report(
        &self,
        request: Request<Streaming<pb::WorkerReport>>,
    ) -> Result<Response<pb::ReportAck>, Status> {
        let run = self.run()?;
        let id = authenticate(&run, &request, None)?.id;
        let mut stream = request.into_inner();
        let batch = run.job.train.batch_size;
        while let Some(item) = stream.next().await {
            let report = match item {
                Ok(r) => r,
                Err(_) => break,
            };
            let stats = report.stats.iter().map(|s| stats_from_pb(s, batch)).collect();
            let device = report.device.map(|d| crate::backend::DeviceInfo {
                device: d.device,
                name: d.name,
                memory_used: d.memory_used,
                memory_total: d.memory_total,
                utilization: d.utilization,
            });
            run.report(id, stats, device);
            let tap = log_tap();
            for l in report.logs.into_iter().take(MAX_LOG_LINES) {
                let _ = tap.send(LogEvent {
                    time: l.time,
                    level: bounded(l.level, 16),
                    target: bounded(l.target, 128),
                    message: bounded(l.message, MAX_LOG_LINE),
                    worker: Some(id),
                });
            }
            match report.failed {
                Some(reason) if report.refused => run.refuse_worker(id, reason),
                Some(reason) => run.worker_failed(id, reason),
                None => {}
            }
        }
        Ok(Response::new(pb::ReportAck {}))
    }

    async fn next_shard(
        &self,
        request: Request<pb::ShardRequest>,
    ) -> Result<Response<pb::ShardReply>, Status> {
        let run = self.run()?;
        let claimed = request.get_ref().worker_id;
        match authenticate(&run, &request, Some(claimed)) {
            Err(e) if e.code() == tonic::Code::NotFound => {}
            other => {
                other?;
            }
        }
        let req = request.into_inner();
        match run.link(req.worker_id).map(|l| l.state()) {
            Some(LinkState::Removed) => {
                return Err(Status::failed_precondition(format!(
                    "worker {} was removed from this job: its part has ended",
                    req.worker_id
                )));
            }
            None | Some(LinkState::Lost) => {
                return Err(Status::not_found(format!(
                    "worker {} is not part of this job; join again",
                    req.worker_id
                )));
            }
            _ => {}
        }
        let done: Vec<_> = req.done.iter().map(partition_from_pb).collect();
        let work = run.next_work(req.worker_id, &done);
        let work = match work {
            Work::Partition(p) => pb::shard_reply::Work::Partition(partition_to_pb(&p)),
            Work::EpochEnd { epoch } => pb::shard_reply::Work::EpochEnd(epoch),
            Work::Idle { epoch } => pb::shard_reply::Work::Idle(epoch),
            Work::Wait => pb::shard_reply::Work::WaitMs(50),
            Work::Finished => {
                run.told_over(req.worker_id);
                pb::shard_reply::Work::Finished(true)
            }
        };
        Ok(Response::new(pb::ShardReply { work: Some(work) }))
    }

    async fn end_epoch(
        &self,
        request: Request<pb::EndEpochRequest>,
    ) -> Result<Response<pb::EndEpochReply>, Status> {
        let run = self.run()?;
        authenticate(&run, &request, Some(request.get_ref().worker_id))?;
        let req = request.into_inner();
        let params = params_from_bytes(&req.params, run.state_len).ok_or_else(|| {
            Status::invalid_argument(format!(
                "the epoch-end model state must be {} finite f32 values",
                run.state_len
            ))
        })?;
        if !req.stats.is_empty() {
            let batch = run.job.train.batch_size;
            run.report(req.worker_id, req.stats.iter().map(|s| stats_from_pb(s, batch)).collect(), None);
        }
        run.end_epoch(req.worker_id, req.epoch, params);
        let next = long_poll(&run, || run.epoch_result(req.worker_id, req.epoch)).await;
        let outcome = match next {
            None => pb::end_epoch_reply::Outcome::Pending(true),
            Some(EpochNext::Finished) => {
                run.told_over(req.worker_id);
                pb::end_epoch_reply::Outcome::Finished(true)
            }
            Some(EpochNext::Continue { epoch, load }) => pb::end_epoch_reply::Outcome::Next(pb::NextEpoch {
                epoch,
                load: load.map(|p| params_to_bytes(&p)).unwrap_or_default(),
            }),
        };
        Ok(Response::new(pb::EndEpochReply { outcome: Some(outcome) }))
    }

    async fn all_reduce(
        &self,
        request: Request<pb::AllReduceRequest>,
    ) -> Result<Response<pb::AllReduceReply>, Status> {
        let run = self.run()?;
        authenticate(&run, &request, Some(request.get_ref().worker_id))?;
        let req = request.into_inner();
        let op = match pb::ReduceOp::try_from(req.op) {
            Ok(pb::ReduceOp::Model) => Reduce::Model,
            Ok(pb::ReduceOp::Sum) => Reduce::Sum,
            Err(_) => {
                return Err(Status::invalid_argument(format!("unknown collective operation {}", req.op)));
            }
        };
        // A worker asking again for its round sends no values: the hub knows its key.
        let limit = run.state_len.max(run.param_count);
        let round = match req.round {
            Some(r) => r,
            None => {
                let (values, wire) = reduce_from_bytes(&req.values, limit)
                    .map_err(|e| Status::invalid_argument(format!("all-reduce values: {e}")))?;
                let key = ReduceKey { op, tag: req.tag, len: values.len(), wire };
                run.submit_reduce(req.worker_id, key, &values, req.idle)
                    .map_err(|e| Status::failed_precondition(e.to_string()))?
            }
        };
        let result = long_poll(&run, || run.reduce_result(round, req.worker_id)).await;
        if run.is_over() {
            run.told_over(req.worker_id);
        }
        let ready = result.is_some();
        let (values, contributors) = match result {
            Some(r) if r.contributors > 0 => (reduce_to_bytes(&r.values, r.wire), r.contributors),
            _ => (Vec::new(), 0),
        };
        Ok(Response::new(pb::AllReduceReply { round, values, finished: run.is_over(), contributors, ready }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        let Some(run) = self.shared.run() else {
            return Ok(Response::new(pb::HeartbeatReply { known: false, ..Default::default() }));
        };
        let known = match authenticate(&run, &request, Some(request.get_ref().worker_id)) {
            Ok(link) if !matches!(link.state(), LinkState::Lost | LinkState::Removed) => {
                link.touch();
                true
            }
            Ok(_) => false,
            Err(e) if e.code() == tonic::Code::NotFound => false,
            Err(e) => return Err(e),
        };
        let req = request.into_inner();
        let parent = if known {
            let addr = bounded(req.relay_addr, 64);
            run.relay_parent(req.worker_id, &addr, req.unreachable_parent).flatten()
        } else {
            None
        };
        Ok(Response::new(pb::HeartbeatReply {
            known,
            parent_id: parent.map(|p| p.0),
            parent_addr: parent.map(|p| p.1.to_string()).unwrap_or_default(),
        }))
    }
}

/// `Relay` as the coordinator serves it: its history, to the workers of the job's tree.
pub struct RelayService {
    pub shared: Arc<Shared>,
}

#[tonic::async_trait]
impl pb::relay_server::Relay for RelayService {
    type SubscribeStream = crate::cluster::relay::UpdateStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let run = self.shared.run().ok_or_else(|| Status::unavailable("no job is running"))?;
        authenticate(&run, &request, Some(request.get_ref().worker_id))?;
        let history = run.relay_history().ok_or_else(|| {
            Status::failed_precondition("this job relays through the coordinator (a star), not a tree")
        })?;
        Ok(Response::new(history.subscribe(request.get_ref().from_seq)))
    }
}
