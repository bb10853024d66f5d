//! The embedded runner: N worker threads in this process, each with its own replica, shard of
//! the work queue, updater and residual, exchanging encoded updates through a hub
//! asynchronously (as in the paper). The calling thread drives: it feeds the observer,
//! evaluates at every epoch barrier and collects the workers' results.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::EngineError;
use super::driver::{Driver, Evaluation};
use super::hub::{EpochNext, EpochReady, Hub, HubConfig, ReduceKey, Work};
use super::inbox::{Inbox, SharedMessage};
use super::metrics::{EpochSummary, Observer, StepStats, Totals};
use super::partition::{Partition, Plan};
use super::worker::{Transport, TransportError, WorkerLoop, WorkerSummary};
use crate::backend;
use crate::data::Dataset;
use crate::job::ResolvedJob;
use crate::nn::{Architecture, UpdaterState};
use crate::sharing::{Collective, Link};

/// Where a run starts from.
pub struct EmbeddedOptions {
    /// The model state to start from: parameters, then running state.
    pub initial_state: Vec<f32>,
    /// Updater state to continue from (`--resume`).
    pub optimizer: Option<UpdaterState>,
    pub start_epoch: u32,
    pub tau: Option<f32>,
    /// Messages a worker may have waiting before further ones are merged.
    pub inbox_capacity: usize,
}

impl EmbeddedOptions {
    pub fn fresh(initial_state: Vec<f32>) -> Self {
        EmbeddedOptions { initial_state, optimizer: None, start_epoch: 0, tau: None, inbox_capacity: 64 }
    }
}

pub struct TrainOutcome {
    /// The job's model state (parameters, running state) at the end.
    pub state: Vec<f32>,
    /// Worker 0's updater state, for `--resume`.
    pub optimizer: Option<UpdaterState>,
    pub epochs: Vec<EpochSummary>,
    pub totals: Totals,
}

enum Event {
    Stats(StepStats),
    EpochReady(EpochReady),
    Exited(u32, Box<Result<WorkerSummary, EngineError>>),
}

struct Shared {
    hub: Mutex<Hub>,
    changed: Condvar,
    inboxes: Vec<Mutex<Inbox>>,
}

impl Shared {
    fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn wait<'a>(&self, guard: MutexGuard<'a, Hub>) -> MutexGuard<'a, Hub> {
        match self.changed.wait_timeout(guard, Duration::from_millis(200)) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }
}

struct EmbeddedTransport {
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
    id: u32,
}

impl EmbeddedTransport {
    fn emit(&self, e: Event) -> Result<(), TransportError> {
        self.events.send(e).map_err(|_| TransportError::Closed("the driver has stopped".into()))
    }
}

impl Link for EmbeddedTransport {
    fn send(&mut self, message: &[u8]) -> Result<(), TransportError> {
        if self.shared.hub().on_update(self.id, message).is_err() {
            return Ok(()); // rejected and counted by the hub
        }
        let shared = SharedMessage::copy_from_slice(message);
        for (j, inbox) in self.shared.inboxes.iter().enumerate() {
            if j as u32 != self.id {
                inbox.lock().unwrap_or_else(|p| p.into_inner()).push(shared.clone());
            }
        }
        Ok(())
    }

    fn all_reduce(&mut self, values: &mut [f32], c: Collective) -> Result<u32, TransportError> {
        let key = ReduceKey { op: c.op, tag: c.tag, len: values.len(), wire: c.wire };
        let mut hub = self.shared.hub();
        let round = hub
            .submit_reduce(self.id, key, values, c.idle)
            .map_err(|e| TransportError::Failed(e.to_string()))?;
        self.shared.changed.notify_all();
        loop {
            if let Some(r) = hub.reduce_result(round, self.id) {
                if r.contributors > 0 {
                    values.copy_from_slice(&r.values);
                }
                return Ok(r.contributors);
            }
            hub = self.shared.wait(hub);
        }
    }
}

impl Transport for EmbeddedTransport {
    fn next_work(&mut self) -> Result<Work, TransportError> {
        let mut hub = self.shared.hub();
        loop {
            match hub.next_work(self.id) {
                Work::Wait => hub = self.shared.wait(hub),
                w => return Ok(w),
            }
        }
    }

    fn partition_done(&mut self, partition: &Partition) -> Result<(), TransportError> {
        self.shared.hub().partition_done(self.id, partition);
        Ok(())
    }

    fn take_updates(
        &mut self,
        out: &mut VecDeque<SharedMessage>,
        merged: &mut Vec<f32>,
    ) -> Result<bool, TransportError> {
        Ok(self.shared.inboxes[self.id as usize].lock().unwrap_or_else(|p| p.into_inner()).take(out, merged))
    }
    fn end_epoch(&mut self, epoch: u32, state: &[f32]) -> Result<EpochNext, TransportError> {
        let mut hub = self.shared.hub();
        if let Some(ready) = hub.submit_epoch_end(self.id, epoch, state.to_vec()) {
            self.emit(Event::EpochReady(ready))?;
        }
        self.shared.changed.notify_all();
        loop {
            if let Some(next) = hub.epoch_result(self.id, epoch) {
                return Ok(next);
            }
            hub = self.shared.wait(hub);
        }
    }

    fn report(&mut self, stats: &StepStats) -> Result<(), TransportError> {
        self.emit(Event::Stats(stats.clone()))
    }

    fn merged_total(&self) -> u64 {
        self.shared.inboxes[self.id as usize].lock().unwrap_or_else(|p| p.into_inner()).merged_total()
    }
}

/// Trains `job` with `job.cluster.workers` threads. `test`, when given, is evaluated at the
/// end of every epoch.
pub fn run_embedded(
    job: &ResolvedJob,
    architecture: &Architecture,
    train: Arc<Dataset>,
    test: Option<Arc<Dataset>>,
    options: EmbeddedOptions,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, EngineError> {
    if !architecture.input().accepts(train.shape) {
        return Err(EngineError::Shape { data: train.shape, model: architecture.input() });
    }
    let n = architecture.param_count();
    let workers = job.cluster.workers.max(1);
    let scheme = crate::sharing::describe(job);
    // The scheme's knobs are checked before any thread starts.
    crate::sharing::create(job, architecture.layout())
        .map_err(|e| EngineError::Worker { worker: 0, message: e.to_string() })?;
    let batch = job.train.batch_size;
    let cfg = HubConfig {
        scheme,
        params: n,
        running: architecture.running_len(),
        epochs: job.train.epochs,
        start_epoch: options.start_epoch,
        plan: Plan::new(train.rows, batch, job.train.batches_per_partition),
    };
    let mut hub = Hub::new(cfg, options.initial_state.clone());
    for _ in 0..workers {
        hub.join();
    }
    let shared = Arc::new(Shared {
        hub: Mutex::new(hub),
        changed: Condvar::new(),
        inboxes: (0..workers).map(|_| Mutex::new(Inbox::new(options.inbox_capacity, n))).collect(),
    });
    // Backends are created up front so a missing device fails before any thread starts.
    let mut backends = Vec::with_capacity(workers);
    for _ in 0..workers {
        let mut b = backend::create(job, architecture, batch, &options.initial_state)?;
        if let Some(state) = &options.optimizer
            && let Err(e) = b.restore_updater(state)
        {
            tracing::warn!("not restoring the updater state: {e}");
        }
        backends.push(b);
    }
    let mut driver = Driver::new(job, architecture, train.rows);
    let mut evaluation = Evaluation::new(job, architecture, test, &options.initial_state);
    let (tx, rx) = mpsc::channel::<Event>();
    let mut summaries: Vec<Option<WorkerSummary>> = (0..workers).map(|_| None).collect();
    let mut first_error: Option<EngineError> = None;

    std::thread::scope(|scope| {
        for (id, backend) in backends.into_iter().enumerate() {
            let transport = EmbeddedTransport { shared: shared.clone(), events: tx.clone(), id: id as u32 };
            let events = tx.clone();
            let dataset = train.clone();
            let tau = options.tau;
            std::thread::Builder::new()
                .name(format!("strom-worker-{id}"))
                .spawn_scoped(scope, move || {
                    let result =
                        WorkerLoop::new(id as u32, job, architecture, dataset, backend, transport, 0.0)
                            .and_then(|mut worker| {
                                if let Some(t) = tau {
                                    worker.set_tau(t);
                                }
                                worker.run()
                            });
                    let _ = events.send(Event::Exited(id as u32, Box::new(result)));
                })
                .map_err(|e| EngineError::Worker {
                    worker: id as u32,
                    message: format!("cannot start thread: {e}"),
                })?;
        }
        drop(tx);
        let mut exited = 0;
        while exited < workers {
            let Ok(event) = rx.recv() else { break };
            match event {
                Event::Stats(s) => {
                    driver.on_stats(&s);
                    observer.step(&s);
                    shared.hub().record_stats(s);
                }
                Event::EpochReady(ready) => {
                    let summary = driver.on_epoch_ready(&ready, evaluation.epoch(&ready));
                    observer.epoch(&summary);
                    shared.hub().finish_epoch();
                    shared.changed.notify_all();
                }
                Event::Exited(id, result) => {
                    exited += 1;
                    match *result {
                        Ok(s) => summaries[id as usize] = Some(s),
                        Err(e) => {
                            shared.hub().fail(e.to_string());
                            shared.changed.notify_all();
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
        Ok::<(), EngineError>(())
    })?;

    if let Some(e) = first_error {
        return Err(e);
    }
    let summaries: Vec<WorkerSummary> = summaries.into_iter().flatten().collect();
    let state = if scheme.replica_follows {
        shared.hub().replica().to_vec()
    } else {
        mean_state(&summaries, architecture.state_len()).unwrap_or_else(|| options.initial_state.clone())
    };
    let mut totals = driver.totals();
    totals.messages_rejected += shared.hub().counters.updates_rejected;
    let optimizer = summaries.into_iter().find(|s| s.id == 0).map(|s| s.updater);
    Ok(TrainOutcome { state, optimizer, epochs: driver.epochs, totals })
}

fn mean_state(summaries: &[WorkerSummary], n: usize) -> Option<Vec<f32>> {
    if summaries.is_empty() {
        return None;
    }
    let mut mean = vec![0.0f64; n];
    for s in summaries {
        for (m, &p) in mean.iter_mut().zip(&s.state) {
            *m += p as f64;
        }
    }
    let inv = 1.0 / summaries.len() as f64;
    Some(mean.into_iter().map(|m| (m * inv) as f32).collect())
}
