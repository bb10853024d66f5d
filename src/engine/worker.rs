//! One worker's training loop, independent of how it reaches the rest of the job: take a
//! partition, train its minibatches (forward, backward, then the sharing scheme's step:
//! updater, exchange, apply), hand what the others sent to the scheme, report stats, meet the
//! others at the end of each epoch.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::EngineError;
use super::hub::{EpochNext, Work};
use super::inbox::SharedMessage;
use super::metrics::StepStats;
use super::partition::{EpochOrder, Partition};
use crate::backend::Backend;
use crate::data::{BatchBuffer, Dataset};
use crate::job::{ResolvedJob, TrainSpec};
use crate::nn::{Architecture, UpdaterState};
use crate::rng::Rng;
pub use crate::sharing::TransportError;
use crate::sharing::{Link, MessageView, Scheme, StepCtx, codec};

/// How a worker reaches the hub: in-process channels, or gRPC. Sending messages and the
/// collective are its [`Link`], which the sharing scheme drives.
pub trait Transport: Link {
    fn next_work(&mut self) -> Result<Work, TransportError>;
    fn partition_done(&mut self, partition: &Partition) -> Result<(), TransportError>;
    /// Moves received updates into `out`, and the dense sum of merged ones into `merged`
    /// (returns whether there was one).
    fn take_updates(
        &mut self,
        out: &mut VecDeque<SharedMessage>,
        merged: &mut Vec<f32>,
    ) -> Result<bool, TransportError>;
    /// Meets the others at the end of `epoch` with this worker's model state.
    fn end_epoch(&mut self, epoch: u32, state: &[f32]) -> Result<EpochNext, TransportError>;
    fn report(&mut self, stats: &StepStats) -> Result<(), TransportError>;
    /// Incoming messages merged so far because this worker fell behind.
    fn merged_total(&self) -> u64 {
        0
    }
    /// The model state to continue from after the transport re-joined the job (the replica).
    fn take_reset(&mut self) -> Option<Arc<Vec<f32>>> {
        None
    }
    /// The loop is ending, with the reason when it failed.
    fn finish(&mut self, _failure: Option<&str>) {}
}

/// What a worker hands back when it ends.
pub struct WorkerSummary {
    pub id: u32,
    pub steps: u64,
    pub samples: u64,
    pub updater: UpdaterState,
    pub tau: f32,
    pub sparsity_sum: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub rejected: u64,
    pub merged: u64,
    /// The worker's model state (parameters, running state) when it ended.
    pub state: Vec<f32>,
}

pub struct WorkerLoop<T: Transport> {
    id: u32,
    lr: f32,
    train: TrainSpec,
    dataset: Arc<Dataset>,
    backend: Box<dyn Backend>,
    transport: T,
    scheme: Box<dyn Scheme>,
    rng: Rng,
    batch: BatchBuffer,
    order: EpochOrder,
    /// Scratch for the model state (barriers, averaging).
    state: Vec<f32>,
    param_count: usize,
    /// The current partition's usable rows.
    usable: Vec<u32>,
    incoming: VecDeque<SharedMessage>,
    merged: Vec<f32>,
    dense_scratch: Vec<u8>,
    started: Instant,
    time_offset: f64,
    stats: StepStats,
    sparsity_sum: f64,
    samples: u64,
    /// Steps of the sharing scheme, idle ones included (a lockstep scheme's phases count them).
    scheme_steps: u64,
    /// The last step's learning-rate scale and epochs done (idle steps repeat them).
    lr_scale: f32,
    epochs_done: f64,
    zeros: Vec<f32>,
}

impl<T: Transport> WorkerLoop<T> {
    /// `time_offset` aligns this worker's clock with the job's start.
    pub fn new(
        id: u32,
        job: &ResolvedJob,
        architecture: &Architecture,
        dataset: Arc<Dataset>,
        backend: Box<dyn Backend>,
        transport: T,
        time_offset: f64,
    ) -> Result<Self, EngineError> {
        let scheme = crate::sharing::create(job, architecture.layout())
            .map_err(|e| EngineError::Worker { worker: id, message: e.to_string() })?;
        Ok(WorkerLoop {
            id,
            lr: job.updater().learning_rate(),
            train: job.train.clone(),
            batch: BatchBuffer::with_capacity(&dataset, job.train.batch_size),
            dataset,
            backend,
            transport,
            stats: StepStats { worker: id, tau: scheme.tau(), ..StepStats::default() },
            scheme,
            rng: Rng::derive(job.train.seed, 0x574B_0000 + id as u64),
            order: EpochOrder::default(),
            state: vec![0.0; architecture.state_len()],
            param_count: architecture.param_count(),
            usable: Vec::new(),
            incoming: VecDeque::new(),
            merged: Vec::new(),
            dense_scratch: Vec::new(),
            started: Instant::now(),
            time_offset,
            sparsity_sum: 0.0,
            samples: 0,
            scheme_steps: 0,
            lr_scale: 1.0,
            epochs_done: 0.0,
            zeros: Vec::new(),
        })
    }

    /// Continue from a checkpoint's tau.
    pub fn set_tau(&mut self, tau: f32) {
        self.scheme.set_tau(tau);
        self.stats.tau = self.scheme.tau();
    }

    /// Runs until the job finishes.
    pub fn run(mut self) -> Result<WorkerSummary, EngineError> {
        let result = self.run_loop();
        let failure = result.as_ref().err().map(|e| e.to_string());
        self.transport.finish(failure.as_deref());
        result?;
        self.backend.read_state(&mut self.state);
        Ok(WorkerSummary {
            id: self.id,
            steps: self.stats.step,
            samples: self.samples,
            updater: self.backend.updater_state(),
            tau: self.stats.tau,
            sparsity_sum: self.sparsity_sum,
            bytes_sent: self.stats.bytes_sent,
            bytes_received: self.stats.bytes_received,
            rejected: self.stats.rejected,
            merged: self.transport.merged_total(),
            state: self.state,
        })
    }

    fn reset_if_rejoined(&mut self) {
        if let Some(s) = self.transport.take_reset() {
            self.backend.write_state(&s);
        }
    }

    fn run_loop(&mut self) -> Result<(), EngineError> {
        let fail = |e: TransportError, id| EngineError::Worker { worker: id, message: e.to_string() };
        loop {
            let work = self.transport.next_work().map_err(|e| fail(e, self.id))?;
            self.reset_if_rejoined();
            match work {
                Work::Partition(p) => {
                    self.train_partition(&p)?;
                    self.transport.partition_done(&p).map_err(|e| fail(e, self.id))?;
                }
                Work::EpochEnd { epoch } => {
                    self.apply_incoming().map_err(|e| fail(e, self.id))?;
                    self.backend.read_state(&mut self.state);
                    match self.transport.end_epoch(epoch, &self.state).map_err(|e| fail(e, self.id))? {
                        EpochNext::Continue { load, .. } => {
                            if let Some(s) = load {
                                // A scheme whose replicas follow the messages keeps each
                                // replica's parameters (updates may still be in flight) and
                                // takes the averaged running state.
                                if self.scheme.info().replica_follows {
                                    self.backend.write_running(&s[self.param_count..]);
                                } else {
                                    self.backend.write_state(&s);
                                }
                            }
                        }
                        EpochNext::Finished => break,
                    }
                }
                Work::Idle { .. } => {
                    self.idle_step().map_err(|e| fail(e, self.id))?;
                }
                Work::Wait => std::thread::sleep(std::time::Duration::from_millis(5)),
                Work::Finished => break,
            }
        }
        Ok(())
    }

    /// A lockstep scheme's step without data: a zero gradient into the others' collective, and
    /// the same update applied, so this replica and its updater stay the others'.
    fn idle_step(&mut self) -> Result<(), TransportError> {
        self.zeros.resize(self.param_count, 0.0);
        self.backend.write_gradient(&self.zeros);
        self.scheme_steps += 1;
        self.scheme.step(StepCtx {
            backend: self.backend.as_mut(),
            link: &mut self.transport,
            origin: self.id,
            step: self.scheme_steps,
            lr_scale: self.lr_scale,
            epochs_done: self.epochs_done,
            idle: true,
        })?;
        Ok(())
    }

    fn train_partition(&mut self, p: &Partition) -> Result<(), EngineError> {
        let fail = |e: TransportError, id| EngineError::Worker { worker: id, message: e.to_string() };
        let (start, end) = (p.start as usize, p.end as usize);
        // The partition's usable rows (a lazy table transforms them here, on this worker).
        let order = self.order.get(self.train.seed, p.epoch, self.dataset.rows);
        self.dataset
            .prepare(&order[start..end], &mut self.usable)
            .map_err(|e| EngineError::Data { worker: self.id, source: e })?;
        let usable = std::mem::take(&mut self.usable);
        let mut at = 0;
        while at < usable.len() {
            let stop = (at + self.train.batch_size).min(usable.len());
            let t0 = Instant::now();
            let batch = self.batch.gather(&self.dataset, &usable[at..stop]);
            let rows = batch.rows;
            let loss = self.backend.forward_backward(&batch, &mut self.rng);
            if !loss.is_finite() {
                return Err(EngineError::Diverged {
                    worker: self.id,
                    epoch: p.epoch,
                    step: self.stats.step,
                    value: loss,
                    lr: self.lr,
                });
            }
            // How far into the job this step is: the partition's place in the epoch's order.
            let within = start as f64 + (end - start) as f64 * at as f64 / usable.len() as f64;
            let epochs_done = p.epoch as f64 + within / self.dataset.rows.max(1) as f64;
            let lr_scale = self.train.lr_scale(epochs_done);
            self.lr_scale = lr_scale;
            self.epochs_done = epochs_done;
            self.stats.step += 1;
            self.scheme_steps += 1;
            let f = self
                .scheme
                .step(StepCtx {
                    backend: self.backend.as_mut(),
                    link: &mut self.transport,
                    origin: self.id,
                    step: self.scheme_steps,
                    lr_scale,
                    epochs_done,
                    idle: false,
                })
                .map_err(|e| fail(e, self.id))?;
            if self.scheme.info().exchanges {
                self.stats.bytes_sent += f.bytes_sent;
                self.stats.bytes_received += f.bytes_received;
                self.stats.sparsity = f.sparsity;
                self.stats.residual_norm = f.residual_norm;
                self.stats.tau = f.tau;
                self.stats.k = f.k;
                self.stats.rank = f.rank;
                self.stats.step_bytes = f.bytes_sent;
                self.stats.layers.clear();
                self.stats.layers.extend_from_slice(self.scheme.layers());
                self.sparsity_sum += f.sparsity;
            }
            self.apply_incoming().map_err(|e| fail(e, self.id))?;
            self.reset_if_rejoined();
            self.samples += rows as u64;
            self.stats.samples = self.samples;
            let dt = t0.elapsed().as_secs_f64().max(1e-9);
            self.stats.step_seconds = dt;
            let rate = rows as f64 / dt;
            self.stats.samples_per_sec =
                if self.stats.step <= 1 { rate } else { 0.9 * self.stats.samples_per_sec + 0.1 * rate };
            self.stats.loss = loss;
            self.stats.epoch = p.epoch;
            self.stats.time = self.time_offset + self.started.elapsed().as_secs_f64();
            self.stats.merged = self.transport.merged_total();
            self.transport.report(&self.stats).map_err(|e| fail(e, self.id))?;
            at = stop;
        }
        self.usable = usable;
        Ok(())
    }

    /// Applies every update that has arrived; invalid ones are counted, never applied. A
    /// rejoined transport's replica comes first: what arrived since is relative to it.
    fn apply_incoming(&mut self) -> Result<(), TransportError> {
        self.reset_if_rejoined();
        let had_merged = self.transport.take_updates(&mut self.incoming, &mut self.merged)?;
        let n = self.backend.param_count();
        self.stats.pending = self.incoming.len() as u32;
        let info = self.scheme.info();
        while let Some(m) = self.incoming.pop_front() {
            match info.check(&m, n) {
                Ok(view) => {
                    self.scheme.receive(self.backend.as_mut(), &view);
                    self.stats.bytes_received += m.len() as u64;
                }
                Err(_) => self.stats.rejected += 1,
            }
        }
        if had_merged {
            codec::encode_dense(&mut self.dense_scratch, &self.merged, u32::MAX, 0);
            if let Ok(view) = MessageView::parse(&self.dense_scratch, n) {
                self.scheme.receive(self.backend.as_mut(), &view);
            }
        }
        Ok(())
    }
}
