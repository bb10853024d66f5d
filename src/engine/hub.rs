//! The hub: the job's side of training, whatever the transport. It keeps the replica of the
//! model state (parameters with every relayed update applied, then the running state averaged
//! at each epoch barrier), validates updates, runs the work queue of data
//! partitions, the epoch barrier and the collective rounds (all-reduce: parameter averaging,
//! and the schemes that sum a dense buffer every step). It never blocks: callers wait on
//! their own condition (a Condvar in-process, a watch channel in the coordinator) and ask again.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::metrics::StepStats;
use super::partition::{Partition, Plan};
use crate::sharing::{DecodeError, Format, Header, Reduce, SchemeInfo, codec};

pub type WorkerId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Train on this partition.
    Partition(Partition),
    /// No partition is left in this epoch: submit parameters at the barrier.
    EpochEnd { epoch: u32 },
    /// No partition is left but others still train: a lockstep scheme's worker takes part in
    /// their collective rounds with a zero gradient, so every replica applies the same steps.
    Idle { epoch: u32 },
    /// Nothing to do now (paused, or waiting for the others); ask again later.
    Wait,
    /// The job is over.
    Finished,
}

/// What a worker does after the epoch barrier.
#[derive(Clone, Debug, PartialEq)]
pub enum EpochNext {
    /// Go on; load these parameters first when given (averaging, single worker).
    Continue {
        epoch: u32,
        load: Option<Arc<Vec<f32>>>,
    },
    Finished,
}

/// The barrier is complete: the driver evaluates `model`, then calls [`Hub::finish_epoch`].
#[derive(Clone, Debug)]
pub struct EpochReady {
    pub epoch: u32,
    /// The job's model state after this epoch.
    pub model: Arc<Vec<f32>>,
    pub drift: f64,
}

#[derive(Clone, Debug)]
pub struct HubConfig {
    /// The sharing scheme: what the hub relays and applies, what the barrier averages.
    pub scheme: SchemeInfo,
    /// Parameters (what updates address) ...
    pub params: usize,
    /// ... and running-state values after them in the model state.
    pub running: usize,
    pub epochs: u32,
    /// First epoch to run (resume).
    pub start_epoch: u32,
    pub plan: Plan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubState {
    Running,
    Paused,
    /// Barrier complete, evaluation in progress.
    Evaluating,
    Finished,
    Failed(String),
}

#[derive(Clone, Debug, Default)]
pub struct WorkerRecord {
    pub last_stats: Option<StepStats>,
    pub partitions_done: u64,
    pub at_barrier: bool,
    pub lost: bool,
}

/// Counters over the job, for stats and the cockpit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HubCounters {
    pub updates_applied: u64,
    pub updates_rejected: u64,
    pub update_bytes_in: u64,
    /// Collective rounds completed (parameter averages, all-reduces).
    pub averaging_rounds: u64,
    pub partitions_requeued: u64,
    pub workers_lost: u64,
}

/// What a contribution to a collective asks for: the operation, the scheme's tag for the
/// buffer (PowerSGD: dense, P or Q), its length and wire format. Contributions of one round
/// are reduced per key, so workers a step apart in a scheme's phases (one still warming up
/// with a dense exchange, another past it) each get a correct result from the workers in the
/// same phase, never a sum of unlike buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReduceKey {
    pub op: Reduce,
    pub tag: u32,
    pub len: usize,
    pub wire: Format,
}

/// The collective round in progress: each contribution kept apart, so losing a contributor
/// removes exactly its share and the round can still complete with the others.
struct ReduceRound {
    round: u64,
    /// Each contribution: its key, whether the worker was idle, its values.
    parts: BTreeMap<WorkerId, (ReduceKey, bool, Vec<f32>)>,
    /// The last completed round.
    last: Option<RoundResults>,
}

/// A completed round: its number, each contributor's key, and per key the result and how many
/// counted.
struct RoundResults {
    round: u64,
    keys: BTreeMap<WorkerId, ReduceKey>,
    results: BTreeMap<ReduceKey, (Arc<Vec<f32>>, u32)>,
}

/// The result of a collective round for one worker: the reduction of the contributions that
/// shared its key.
#[derive(Clone, Debug, PartialEq)]
pub struct Reduced {
    pub values: Arc<Vec<f32>>,
    /// Workers that contributed; 0 when the job ended first (`values` are then meaningless).
    pub contributors: u32,
    /// The format the worker's values travelled in (its reply travels in it too).
    pub wire: Format,
}

/// A contribution the current round cannot take.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RoundError {
    #[error("worker {0} is not part of the job")]
    Unknown(WorkerId),
    #[error("a model average must be the model state ({expected} values), got {got}")]
    ModelLength { expected: usize, got: usize },
}

pub struct Hub {
    cfg: HubConfig,
    replica: Vec<f32>,
    epoch: u32,
    state: HubState,
    pending: VecDeque<u32>,
    in_flight: BTreeMap<u32, WorkerId>,
    workers: BTreeMap<WorkerId, WorkerRecord>,
    barrier: BTreeMap<WorkerId, Vec<f32>>,
    avg: ReduceRound,
    /// Result of the last finished epoch, for workers waiting at the barrier.
    last_epoch: Option<(u32, Option<Arc<Vec<f32>>>)>,
    next_id: WorkerId,
    pub counters: HubCounters,
    /// Workers that must have joined before the first partition is handed out (0: none);
    /// once reached, training goes on whoever leaves.
    quorum: usize,
    started: bool,
}

impl HubConfig {
    /// Parameters plus running state.
    pub fn state_len(&self) -> usize {
        self.params + self.running
    }
}

impl Hub {
    /// `state`: the model state to start from (parameters, then running state).
    pub fn new(cfg: HubConfig, state: Vec<f32>) -> Hub {
        assert_eq!(state.len(), cfg.state_len());
        let finished = cfg.start_epoch >= cfg.epochs;
        let mut hub = Hub {
            replica: state,
            epoch: cfg.start_epoch,
            state: if finished { HubState::Finished } else { HubState::Running },
            pending: VecDeque::new(),
            in_flight: BTreeMap::new(),
            workers: BTreeMap::new(),
            barrier: BTreeMap::new(),
            avg: ReduceRound { round: 0, parts: BTreeMap::new(), last: None },
            last_epoch: None,
            next_id: 0,
            counters: HubCounters::default(),
            quorum: 0,
            started: false,
            cfg,
        };
        hub.fill_queue();
        hub
    }

    fn fill_queue(&mut self) {
        self.pending = (0..self.cfg.plan.count()).collect();
        self.in_flight.clear();
    }

    /// Marks partitions of the current epoch as already trained (resume from a checkpoint).
    pub fn restore_progress(&mut self, done: &[u32]) {
        self.pending.retain(|p| !done.contains(p));
    }

    /// Partitions of the current epoch trained so far.
    pub fn partitions_done(&self) -> Vec<u32> {
        (0..self.cfg.plan.count())
            .filter(|p| !self.pending.contains(p) && !self.in_flight.contains_key(p))
            .collect()
    }

    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
    pub fn state(&self) -> &HubState {
        &self.state
    }
    pub fn replica(&self) -> &[f32] {
        &self.replica
    }
    pub fn workers(&self) -> &BTreeMap<WorkerId, WorkerRecord> {
        &self.workers
    }
    /// Partitions of the current epoch: (done, total).
    pub fn epoch_progress(&self) -> (u32, u32) {
        let total = self.cfg.plan.count();
        (total - self.pending.len() as u32 - self.in_flight.len() as u32, total)
    }
    /// Whether worker `w` holds a partition of the current epoch.
    pub fn holds_partition(&self, w: WorkerId) -> bool {
        self.in_flight.values().any(|&o| o == w)
    }

    /// Whether the job is held up by worker `w`: it holds a partition, or (while running) the
    /// epoch's work is all handed out and the barrier waits for it, or the averaging round in
    /// progress lacks its contribution.
    pub fn awaits(&self, w: WorkerId) -> bool {
        if self.holds_partition(w) {
            return true;
        }
        let Some(rec) = self.workers.get(&w) else { return false };
        if rec.lost || rec.at_barrier || self.state != HubState::Running {
            return false;
        }
        self.pending.is_empty() || (!self.avg.parts.is_empty() && !self.avg.parts.contains_key(&w))
    }

    /// Holds the first partition back until `n` workers have joined.
    pub fn wait_for_workers(&mut self, n: usize) {
        self.quorum = n;
    }

    /// Workers that must have joined before training starts (0: none).
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Whether a partition has been handed out since the quorum was reached.
    pub fn has_started(&self) -> bool {
        self.started
    }

    /// `Some((joined, needed))` while training waits for workers to join.
    pub fn waiting_for_workers(&self) -> Option<(usize, usize)> {
        let live = self.live_workers();
        (!self.started && live < self.quorum).then_some((live, self.quorum))
    }

    pub fn live_workers(&self) -> usize {
        self.workers.values().filter(|w| !w.lost).count()
    }
    pub fn is_over(&self) -> bool {
        matches!(self.state, HubState::Finished | HubState::Failed(_))
    }

    /// Registers a worker.
    pub fn join(&mut self) -> WorkerId {
        let id = self.next_id;
        self.next_id += 1;
        self.workers.insert(id, WorkerRecord::default());
        id
    }

    /// Registers a worker under a known id (a restarted worker keeping its identity).
    pub fn rejoin(&mut self, id: WorkerId) {
        self.next_id = self.next_id.max(id + 1);
        self.workers.insert(id, WorkerRecord::default());
    }

    pub fn next_work(&mut self, w: WorkerId) -> Work {
        match self.workers.get(&w) {
            None => return Work::Finished,
            Some(rec) if rec.lost => return Work::Finished,
            _ => {}
        }
        match &self.state {
            HubState::Finished | HubState::Failed(_) => return Work::Finished,
            HubState::Paused | HubState::Evaluating => return Work::Wait,
            HubState::Running => {}
        }
        if self.workers.get(&w).is_some_and(|rec| rec.at_barrier) {
            return Work::Wait;
        }
        if !self.started {
            if self.live_workers() < self.quorum {
                return Work::Wait;
            }
            self.started = true;
        }
        match self.pending.pop_front() {
            Some(index) => {
                self.in_flight.insert(index, w);
                Work::Partition(self.cfg.plan.partition(self.epoch, index))
            }
            None if self.cfg.scheme.lockstep && !self.in_flight.is_empty() => {
                Work::Idle { epoch: self.epoch }
            }
            None => Work::EpochEnd { epoch: self.epoch },
        }
    }

    pub fn partition_done(&mut self, w: WorkerId, p: &Partition) {
        if p.epoch == self.epoch && self.in_flight.get(&p.index) == Some(&w) {
            self.in_flight.remove(&p.index);
            if let Some(rec) = self.workers.get_mut(&w) {
                rec.partitions_done += 1;
            }
        }
    }

    /// Validates an update from worker `origin` and applies it to the replica. The caller
    /// relays it to the other workers only when this returns `Ok`.
    pub fn on_update(&mut self, origin: WorkerId, bytes: &[u8]) -> Result<Header, DecodeError> {
        let scheme = self.cfg.scheme;
        let result = scheme.check(bytes, self.cfg.params).map(|view| {
            if scheme.replica_follows {
                view.subtract_from(&mut self.replica[..self.cfg.params], 1.0);
            }
            view.header
        });
        match &result {
            Ok(_) => {
                self.counters.updates_applied += 1;
                self.counters.update_bytes_in += bytes.len() as u64;
            }
            Err(e) => {
                self.counters.updates_rejected += 1;
                tracing::warn!(worker = origin, error = %e, "rejected an update");
            }
        }
        result
    }

    pub fn record_stats(&mut self, stats: StepStats) {
        if let Some(rec) = self.workers.get_mut(&stats.worker) {
            rec.last_stats = Some(stats);
        }
    }

    /// Worker `w` reached the barrier of `epoch` with its model `state`. While partitions of
    /// the epoch are waiting in the queue (requeued from a lost worker) it is not taken: the
    /// worker is told by [`Hub::epoch_result`] to go back to work.
    pub fn submit_epoch_end(&mut self, w: WorkerId, epoch: u32, state: Vec<f32>) -> Option<EpochReady> {
        if epoch != self.epoch
            || state.len() != self.cfg.state_len()
            || self.is_over()
            || !self.pending.is_empty()
        {
            return None;
        }
        let rec = self.workers.get_mut(&w)?;
        rec.at_barrier = true;
        self.barrier.insert(w, state);
        self.check_average_complete();
        self.check_barrier()
    }

    fn check_barrier(&mut self) -> Option<EpochReady> {
        if self.state != HubState::Running || !self.pending.is_empty() || !self.in_flight.is_empty() {
            return None;
        }
        let live: Vec<WorkerId> = self.workers.iter().filter(|(_, r)| !r.lost).map(|(&id, _)| id).collect();
        if live.is_empty() || !live.iter().all(|id| self.barrier.contains_key(id)) {
            return None;
        }
        let (n, p) = (self.cfg.state_len(), self.cfg.params);
        let mut mean = vec![0.0f64; n];
        for id in &live {
            for (m, &p) in mean.iter_mut().zip(&self.barrier[id]) {
                *m += p as f64;
            }
        }
        let inv = 1.0 / live.len() as f64;
        mean.iter_mut().for_each(|m| *m *= inv);
        // Drift is measured on the parameters; running statistics are averaged in every mode.
        let mean_norm = mean[..p].iter().map(|m| m * m).sum::<f64>().sqrt().max(1e-30);
        let drift = live
            .iter()
            .map(|id| {
                let d: f64 =
                    self.barrier[id][..p].iter().zip(&mean[..p]).map(|(&x, m)| (x as f64 - m).powi(2)).sum();
                d.sqrt() / mean_norm
            })
            .fold(0.0, f64::max);
        let from = if self.cfg.scheme.replica_follows { p } else { 0 };
        for (r, m) in self.replica[from..].iter_mut().zip(&mean[from..]) {
            *r = *m as f32;
        }
        self.state = HubState::Evaluating;
        Some(EpochReady { epoch: self.epoch, model: Arc::new(self.replica.clone()), drift })
    }

    /// After evaluation: start the next epoch or finish. Returns what waiting workers get.
    pub fn finish_epoch(&mut self) -> EpochNext {
        // Workers that keep their parameters take the averaged running state, if any.
        let load = if self.cfg.scheme.replica_follows && self.cfg.running == 0 {
            None
        } else {
            Some(Arc::new(self.replica.clone()))
        };
        self.last_epoch = Some((self.epoch, load.clone()));
        self.barrier.clear();
        for rec in self.workers.values_mut() {
            rec.at_barrier = false;
        }
        self.epoch += 1;
        if self.epoch >= self.cfg.epochs {
            self.state = HubState::Finished;
            return EpochNext::Finished;
        }
        if self.state == HubState::Evaluating {
            self.state = HubState::Running;
        }
        self.fill_queue();
        EpochNext::Continue { epoch: self.epoch, load }
    }

    /// For worker `w` waiting at the barrier of `epoch`: the outcome, once there is one. A
    /// worker the barrier let go (the epoch has work again) is told to go on with the same epoch.
    pub fn epoch_result(&self, w: WorkerId, epoch: u32) -> Option<EpochNext> {
        if let HubState::Failed(_) = self.state {
            return Some(EpochNext::Finished);
        }
        let released = self.workers.get(&w).is_some_and(|r| !r.lost && !r.at_barrier);
        if self.epoch == epoch && released && matches!(self.state, HubState::Running | HubState::Paused) {
            return Some(EpochNext::Continue { epoch, load: None });
        }
        if self.epoch <= epoch && !self.is_over() {
            return None;
        }
        match &self.last_epoch {
            Some((e, load)) if *e == epoch => {
                if self.is_over() {
                    Some(EpochNext::Finished)
                } else {
                    Some(EpochNext::Continue { epoch: self.epoch, load: load.clone() })
                }
            }
            _ => Some(if self.is_over() {
                EpochNext::Finished
            } else {
                EpochNext::Continue { epoch: self.epoch, load: None }
            }),
        }
    }

    /// Contributes to the current collective round; returns the round number to wait for.
    /// The result is rounded to the key's wire format.
    /// An idle worker's values are summed but it does not count as a contributor.
    pub fn submit_reduce(
        &mut self,
        w: WorkerId,
        key: ReduceKey,
        values: &[f32],
        idle: bool,
    ) -> Result<u64, RoundError> {
        if self.workers.get(&w).is_none_or(|r| r.lost) {
            return Err(RoundError::Unknown(w));
        }
        if key.op == Reduce::Model && values.len() != self.cfg.state_len() {
            return Err(RoundError::ModelLength { expected: self.cfg.state_len(), got: values.len() });
        }
        let key = ReduceKey { len: values.len(), ..key };
        self.avg.parts.entry(w).or_insert_with(|| (key, idle, values.to_vec()));
        let round = self.avg.round;
        self.check_average_complete();
        Ok(round)
    }

    /// The result of `round` for worker `w` (the reduction of the contributions that shared its
    /// key), once every participating worker contributed.
    pub fn reduce_result(&self, round: u64, w: WorkerId) -> Option<Reduced> {
        let none = |wire| Reduced { values: Arc::new(Vec::new()), contributors: 0, wire };
        match &self.avg.last {
            Some(last) if last.round == round => Some(match last.keys.get(&w) {
                Some(key) => {
                    let (values, n) = &last.results[key];
                    Reduced { values: values.clone(), contributors: *n, wire: key.wire }
                }
                None => none(Format::Dense),
            }),
            _ if self.is_over() => Some(none(Format::Dense)),
            _ => None,
        }
    }

    fn check_average_complete(&mut self) {
        if self.avg.parts.is_empty() {
            return;
        }
        let mut participants =
            self.workers.iter().filter(|(_, r)| !r.lost && !r.at_barrier).map(|(id, _)| id);
        if participants.any(|id| !self.avg.parts.contains_key(id)) {
            return;
        }
        let mut sums: BTreeMap<ReduceKey, (Vec<f64>, u32)> = BTreeMap::new();
        for (key, idle, part) in self.avg.parts.values() {
            let (sum, n) = sums.entry(*key).or_insert_with(|| (vec![0.0; key.len], 0));
            sum.iter_mut().zip(part).for_each(|(s, &p)| *s += p as f64);
            *n += !idle as u32;
        }
        let keys = self.avg.parts.iter().map(|(&w, (key, _, _))| (w, *key)).collect();
        let mut results = BTreeMap::new();
        for (key, (sum, n)) in sums {
            let result: Vec<f32> = match key.op {
                Reduce::Model => {
                    let inv = 1.0 / n.max(1) as f64;
                    let avg: Vec<f32> = sum.iter().map(|s| (s * inv) as f32).collect();
                    self.replica.copy_from_slice(&avg);
                    avg
                }
                Reduce::Sum if key.wire != Format::Dense => {
                    let mut v: Vec<f32> = sum.iter().map(|&s| s as f32).collect();
                    codec::round_half_slice(key.wire, &mut v);
                    v
                }
                Reduce::Sum => sum.iter().map(|&s| s as f32).collect(),
            };
            results.insert(key, (Arc::new(result), n));
        }
        self.avg.last = Some(RoundResults { round: self.avg.round, keys, results });
        self.avg.round += 1;
        self.avg.parts.clear();
        self.counters.averaging_rounds += 1;
    }

    /// A worker is gone (crashed, timed out, removed): its partitions go back to the queue
    /// and it no longer holds up averaging or the barrier.
    pub fn remove_worker(&mut self, w: WorkerId) -> Option<EpochReady> {
        let rec = self.workers.get_mut(&w)?;
        if rec.lost {
            return None;
        }
        rec.lost = true;
        self.counters.workers_lost += 1;
        let lost: Vec<u32> = self.in_flight.iter().filter(|&(_, &o)| o == w).map(|(&p, _)| p).collect();
        for p in lost.iter().rev() {
            self.in_flight.remove(p);
            self.pending.push_front(*p);
        }
        self.counters.partitions_requeued += lost.len() as u64;
        self.barrier.remove(&w);
        if !lost.is_empty() {
            // The epoch has work again: whoever waits at the barrier goes back to training
            // (their next barrier call or long poll says so); otherwise nobody would ask for
            // the requeued partitions.
            for (id, rec) in self.workers.iter_mut() {
                if rec.at_barrier {
                    rec.at_barrier = false;
                    self.barrier.remove(id);
                }
            }
        }
        // Its contribution to a collective round goes; the others' stand.
        self.avg.parts.remove(&w);
        self.check_average_complete();
        self.check_barrier()
    }

    pub fn pause(&mut self) {
        if self.state == HubState::Running {
            self.state = HubState::Paused;
        }
    }

    pub fn resume(&mut self) -> Option<EpochReady> {
        if self.state == HubState::Paused {
            self.state = HubState::Running;
            return self.check_barrier();
        }
        None
    }

    pub fn fail(&mut self, reason: impl Into<String>) {
        if !self.is_over() {
            self.state = HubState::Failed(reason.into());
        }
    }

    /// Ends the job after the current step (the model so far stands).
    pub fn stop(&mut self) {
        if !self.is_over() {
            self.state = HubState::Finished;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobSpec, SharingMode};
    use crate::sharing::{ThresholdEncoder, describe};

    fn info(mode: SharingMode) -> SchemeInfo {
        let mut job = JobSpec::default();
        job.sharing.mode = Some(mode);
        job.cluster.workers = 2;
        describe(&job)
    }

    const MODEL: ReduceKey = ReduceKey { op: Reduce::Model, tag: 0, len: 4, wire: Format::Dense };

    fn submit_average(h: &mut Hub, w: WorkerId, state: &[f32]) -> u64 {
        h.submit_reduce(w, MODEL, state, false).unwrap()
    }

    /// The average of `round` as worker 0 receives it.
    fn average_result(h: &Hub, round: u64) -> Option<Arc<Vec<f32>>> {
        h.reduce_result(round, 0).map(|r| r.values)
    }

    fn hub(mode: SharingMode, workers: usize) -> (Hub, Vec<WorkerId>) {
        let cfg = HubConfig {
            scheme: info(mode),
            params: 4,
            running: 0,
            epochs: 2,
            start_epoch: 0,
            plan: Plan::new(10, 2, 1),
        };
        let mut h = Hub::new(cfg, vec![0.0; 4]);
        let ids = (0..workers).map(|_| h.join()).collect();
        (h, ids)
    }

    #[test]
    fn training_waits_for_the_quorum_then_goes_on_whoever_leaves() {
        let (mut h, ids) = hub(SharingMode::Threshold, 1);
        h.wait_for_workers(2);
        assert_eq!(h.waiting_for_workers(), Some((1, 2)));
        assert!(matches!(h.next_work(ids[0]), Work::Wait));
        let second = h.join();
        assert_eq!(h.waiting_for_workers(), None);
        assert!(matches!(h.next_work(second), Work::Partition(_)));
        h.remove_worker(second);
        assert!(matches!(h.next_work(ids[0]), Work::Partition(_)), "started: one worker goes on");
    }

    fn drain(h: &mut Hub, w: WorkerId) -> Vec<Partition> {
        let mut got = Vec::new();
        while let Work::Partition(p) = h.next_work(w) {
            h.partition_done(w, &p);
            got.push(p);
        }
        got
    }

    #[test]
    fn epoch_barrier_waits_for_everyone_then_moves_on() {
        let (mut h, ids) = hub(SharingMode::Threshold, 2);
        let p = match h.next_work(ids[1]) {
            Work::Partition(p) => p,
            other => panic!("{other:?}"),
        };
        let got = drain(&mut h, ids[0]);
        assert_eq!(got.len(), 4, "worker 0 took the other four of five partitions");
        assert_eq!(h.next_work(ids[0]), Work::EpochEnd { epoch: 0 });
        assert!(h.submit_epoch_end(ids[0], 0, vec![1.0; 4]).is_none(), "a partition is still in flight");
        assert_eq!(h.next_work(ids[0]), Work::Wait);
        h.partition_done(ids[1], &p);
        let ready = h.submit_epoch_end(ids[1], 0, vec![3.0; 4]).expect("barrier complete");
        assert!((ready.drift - 0.5).abs() < 1e-9, "{}", ready.drift);
        assert_eq!(h.epoch_result(ids[0], 0), None, "not before the driver finishes the epoch");
        assert_eq!(h.finish_epoch(), EpochNext::Continue { epoch: 1, load: None });
        assert_eq!(h.epoch_result(ids[0], 0), Some(EpochNext::Continue { epoch: 1, load: None }));
        assert!(matches!(h.next_work(ids[0]), Work::Partition(p) if p.epoch == 1));
    }

    #[test]
    fn the_job_awaits_whoever_holds_a_partition_or_is_missing_at_the_barrier() {
        let (mut h, ids) = hub(SharingMode::Threshold, 2);
        assert!(!h.awaits(ids[0]) && !h.awaits(ids[1]), "work is queued: nobody is late yet");
        let Work::Partition(p) = h.next_work(ids[1]) else { panic!() };
        assert!(h.awaits(ids[1]), "it holds a partition");
        // Worker 0 takes the rest; worker 1 finishes its partition but then stalls before the
        // barrier (its training thread hung between two calls).
        drain(&mut h, ids[0]);
        h.partition_done(ids[1], &p);
        assert!(h.submit_epoch_end(ids[0], 0, vec![1.0; 4]).is_none());
        assert!(!h.awaits(ids[0]), "it waits at the barrier");
        assert!(h.awaits(ids[1]), "the barrier waits for it although it holds nothing");
        h.pause();
        assert!(!h.awaits(ids[1]), "a paused job waits for nobody");
        assert!(h.resume().is_none());
        assert!(h.awaits(ids[1]));
        assert!(h.remove_worker(ids[1]).is_some(), "losing it completes the barrier");
        assert!(!h.awaits(ids[1]));
    }

    #[test]
    fn an_averaging_round_awaits_the_workers_that_have_not_contributed() {
        let (mut h, ids) = hub(SharingMode::Averaging, 2);
        let Work::Partition(p) = h.next_work(ids[1]) else { panic!() };
        h.partition_done(ids[1], &p);
        assert!(!h.awaits(ids[1]), "no round is open and work is queued");
        submit_average(&mut h, ids[0], &[1.0; 4]);
        assert!(h.awaits(ids[1]), "the round lacks its contribution");
        assert!(!h.awaits(ids[0]));
        submit_average(&mut h, ids[1], &[3.0; 4]);
        assert!(average_result(&h, 0).is_some());
    }

    #[test]
    fn progress_restores_from_a_checkpoint() {
        let (mut h, ids) = hub(SharingMode::Threshold, 1);
        h.restore_progress(&[0, 2]);
        assert_eq!(h.partitions_done(), vec![0, 2]);
        let got: Vec<u32> = drain(&mut h, ids[0]).iter().map(|p| p.index).collect();
        assert_eq!(got, vec![1, 3, 4]);
    }

    #[test]
    fn lost_worker_partitions_are_requeued() {
        let (mut h, ids) = hub(SharingMode::Threshold, 2);
        let Work::Partition(p) = h.next_work(ids[1]) else { panic!() };
        assert!(h.remove_worker(ids[1]).is_none());
        let got = drain(&mut h, ids[0]);
        assert!(got.contains(&p), "the lost partition was re-trained");
        assert_eq!(got.len(), 5);
        assert!(h.submit_epoch_end(ids[0], 0, vec![0.0; 4]).is_some());
        assert_eq!(h.counters.partitions_requeued, 1);
        assert_eq!(h.next_work(ids[1]), Work::Finished);
    }

    #[test]
    fn updates_are_validated_before_touching_the_replica() {
        let (mut h, ids) = hub(SharingMode::Threshold, 1);
        let mut enc = ThresholdEncoder::new(4);
        let mut r = vec![0.0; 4];
        enc.encode(&mut r, &[1.0, 0.0, -1.0, 0.0], 0.5, ids[0], 1);
        h.on_update(ids[0], enc.message()).unwrap();
        assert_eq!(h.replica(), &[-0.5, 0.0, 0.5, 0.0]);
        assert!(h.on_update(ids[0], b"garbage").is_err());
        let mut wrong = ThresholdEncoder::new(5);
        wrong.encode(&mut [0.0; 5], &[1.0; 5], 0.5, 0, 1);
        assert!(matches!(h.on_update(ids[0], wrong.message()), Err(DecodeError::ParamCount { .. })));
        assert_eq!(h.replica(), &[-0.5, 0.0, 0.5, 0.0]);
        assert_eq!(h.counters.updates_rejected, 2);
        // A well-formed message of a format this scheme does not send is refused too.
        let mut values = Vec::new();
        crate::sharing::codec::encode_values(&mut values, 4, 1.0, &[(1, 2.0)], ids[0], 2);
        assert!(matches!(h.on_update(ids[0], &values), Err(DecodeError::UnknownFormat(3))));
        let mut dense = Vec::new();
        crate::sharing::codec::encode_dense(&mut dense, &[1.0; 4], ids[0], 2);
        assert!(h.on_update(ids[0], &dense).is_err(), "dense travels only in collectives");
        assert_eq!(h.replica(), &[-0.5, 0.0, 0.5, 0.0]);
    }

    #[test]
    fn a_partition_requeued_while_the_others_wait_at_the_barrier_is_trained() {
        // Worker 1 dies holding the epoch's last partition while worker 0 waits at the barrier.
        let (mut h, ids) = hub(SharingMode::Threshold, 2);
        let Work::Partition(last) = h.next_work(ids[1]) else { panic!() };
        let mine = drain(&mut h, ids[0]);
        assert_eq!(mine.len(), 4);
        assert_eq!(h.next_work(ids[0]), Work::EpochEnd { epoch: 0 });
        assert!(h.submit_epoch_end(ids[0], 0, vec![1.0; 4]).is_none());
        assert_eq!(h.epoch_result(ids[0], 0), None, "waiting for worker 1");
        assert!(
            h.remove_worker(ids[1]).is_none(),
            "the barrier cannot complete: a partition is back in the queue"
        );
        // The waiting worker is let go, takes the partition, and the epoch completes.
        assert_eq!(h.epoch_result(ids[0], 0), Some(EpochNext::Continue { epoch: 0, load: None }));
        assert!(h.submit_epoch_end(ids[0], 0, vec![1.0; 4]).is_none(), "not while work is queued");
        assert_eq!(h.next_work(ids[0]), Work::Partition(last));
        h.partition_done(ids[0], &last);
        assert_eq!(h.next_work(ids[0]), Work::EpochEnd { epoch: 0 });
        assert!(h.submit_epoch_end(ids[0], 0, vec![1.0; 4]).is_some(), "the epoch ends");
    }

    #[test]
    fn an_averaging_round_completes_after_losing_a_worker_that_contributed() {
        let (mut h, ids) = hub(SharingMode::Averaging, 3);
        let r = submit_average(&mut h, ids[0], &[3.0; 4]);
        submit_average(&mut h, ids[1], &[100.0; 4]);
        assert!(average_result(&h, r).is_none(), "worker 2 has not contributed");
        h.remove_worker(ids[1]);
        assert!(average_result(&h, r).is_none(), "still waiting for worker 2; worker 0's share stands");
        submit_average(&mut h, ids[2], &[5.0; 4]);
        assert_eq!(*average_result(&h, r).expect("the survivors complete the round"), vec![4.0; 4]);
    }

    #[test]
    fn a_round_sums_per_key_and_survives_losing_a_contributor() {
        let (mut h, ids) = hub(SharingMode::Dense16, 3);
        let key = |tag, len| ReduceKey { op: Reduce::Sum, tag, len, wire: Format::Dense };
        let r = h.submit_reduce(ids[0], key(1, 2), &[1.0, 2.0], false).unwrap();
        h.submit_reduce(ids[1], key(1, 2), &[10.0, 20.0], false).unwrap();
        assert!(h.reduce_result(r, ids[0]).is_none(), "worker 2 has not contributed");
        // Worker 2 is a phase behind (a dense exchange of 3 values): never summed with the others.
        h.submit_reduce(ids[2], key(0, 3), &[5.0, 5.0, 5.0], false).unwrap();
        let done = h.reduce_result(r, ids[1]).unwrap();
        assert_eq!((done.values.as_slice(), done.contributors), (&[11.0, 22.0][..], 2));
        let alone = h.reduce_result(r, ids[2]).unwrap();
        assert_eq!((alone.values.as_slice(), alone.contributors), (&[5.0; 3][..], 1));
        // The next round: worker 1 dies after contributing; the others complete it without it.
        let r2 = h.submit_reduce(ids[1], key(1, 2), &[100.0, 100.0], false).unwrap();
        h.submit_reduce(ids[0], key(1, 2), &[1.0, 1.0], false).unwrap();
        h.remove_worker(ids[1]);
        assert!(h.reduce_result(r2, ids[0]).is_none(), "worker 2 still owes its share");
        h.submit_reduce(ids[2], key(1, 2), &[2.0, 2.0], false).unwrap();
        let done = h.reduce_result(r2, ids[0]).unwrap();
        assert_eq!(
            (done.values.as_slice(), done.contributors),
            (&[3.0, 3.0][..], 2),
            "the lost share is gone"
        );
        assert!(h.submit_reduce(ids[1], key(1, 2), &[1.0, 1.0], false).is_err(), "a lost worker is refused");
    }

    #[test]
    fn a_half_precision_sum_is_rounded_to_its_wire() {
        let (mut h, ids) = hub(SharingMode::Dense16, 2);
        let key = ReduceKey { op: Reduce::Sum, tag: 0, len: 1, wire: Format::Half };
        let r = h.submit_reduce(ids[0], key, &[1.0], false).unwrap();
        h.submit_reduce(ids[1], key, &[1e-4], false).unwrap();
        let v = h.reduce_result(r, ids[1]).unwrap().values[0];
        assert_eq!(v, half::f16::from_f32(1.0001).to_f32());
        assert_ne!(v, 1.0001f32, "f16 cannot hold 1.0001");
    }

    #[test]
    fn averaging_rounds_complete_without_workers_at_the_barrier() {
        let (mut h, ids) = hub(SharingMode::Averaging, 2);
        let r = submit_average(&mut h, ids[0], &[2.0; 4]);
        assert!(average_result(&h, r).is_none());
        submit_average(&mut h, ids[1], &[4.0; 4]);
        assert_eq!(*average_result(&h, r).unwrap(), vec![3.0; 4]);
        let r2 = submit_average(&mut h, ids[0], &[1.0; 4]);
        // Worker 1 runs out of partitions and goes to the barrier: round r2 completes without it.
        drain(&mut h, ids[1]);
        h.submit_epoch_end(ids[1], 0, vec![5.0; 4]);
        assert_eq!(*average_result(&h, r2).unwrap(), vec![1.0; 4]);
        let ready = h.submit_epoch_end(ids[0], 0, vec![1.0; 4]).unwrap();
        assert_eq!(*ready.model, vec![3.0; 4], "the epoch ends on the average of both");
        match h.finish_epoch() {
            EpochNext::Continue { load: Some(p), .. } => assert_eq!(*p, vec![3.0; 4]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_barrier_averages_running_state_and_threshold_workers_keep_their_parameters() {
        // Two parameters, then two running-state values (a batch-norm mean and variance).
        let cfg = HubConfig {
            scheme: info(SharingMode::Threshold),
            params: 2,
            running: 2,
            epochs: 2,
            start_epoch: 0,
            plan: Plan::new(4, 2, 1),
        };
        let mut h = Hub::new(cfg, vec![0.5, 0.5, 0.0, 1.0]);
        let ids = [h.join(), h.join()];
        for &w in &ids {
            drain(&mut h, w);
        }
        assert!(h.submit_epoch_end(ids[0], 0, vec![9.0, 9.0, 1.0, 2.0]).is_none());
        let ready = h.submit_epoch_end(ids[1], 0, vec![7.0, 7.0, 3.0, 4.0]).expect("barrier complete");
        assert_eq!(
            *ready.model,
            vec![0.5, 0.5, 2.0, 3.0],
            "the replica's parameters, the mean running state"
        );
        match h.finish_epoch() {
            EpochNext::Continue { load: Some(state), .. } => assert_eq!(&state[2..], &[2.0, 3.0]),
            other => panic!("workers must receive the averaged running state: {other:?}"),
        }
        assert_eq!(h.replica(), &[0.5, 0.5, 2.0, 3.0]);
    }

    #[test]
    fn finishes_after_the_last_epoch_and_pause_holds_work() {
        let (mut h, ids) = hub(SharingMode::None, 1);
        h.pause();
        assert_eq!(h.next_work(ids[0]), Work::Wait);
        h.resume();
        for e in 0..2 {
            drain(&mut h, ids[0]);
            assert!(h.submit_epoch_end(ids[0], e, vec![e as f32; 4]).is_some());
            h.finish_epoch();
        }
        assert_eq!(h.next_work(ids[0]), Work::Finished);
        assert_eq!(h.epoch_result(ids[0], 1), Some(EpochNext::Finished));
    }
}
