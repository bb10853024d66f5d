//! What watchers see: a history of the run (loss points, per-worker series, epochs) kept in
//! bounded rings, and the snapshot-then-deltas that `WatchJob` streams. Each watcher keeps a
//! cursor, so a delta carries only what it has not seen.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use strom_proto::v1 as pb;

use super::run::{JobRun, LinkState};
use crate::cluster::convert::epoch_to_pb;
use crate::engine::hub::HubState;
use crate::engine::{EpochSummary, StepStats};

const LOSS_POINTS: usize = 3600;
const SERIES_SAMPLES: usize = 600;

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    time: f64,
    sparsity: f64,
    samples_per_sec: f64,
    residual_norm: f64,
    tau: f64,
}

#[derive(Default)]
struct Series {
    samples: VecDeque<(u64, Sample)>,
    next: u64,
}

/// The run's history, sampled at the coordinator's tick.
#[derive(Default)]
pub struct History {
    loss: VecDeque<(u64, pb::LossPoint)>,
    next_loss: u64,
    epochs: Vec<pb::EpochPoint>,
    series: BTreeMap<u32, Series>,
    window: (f64, u64),
    fresh: BTreeMap<u32, StepStats>,
}

impl History {
    pub fn record(&mut self, s: &StepStats) {
        if s.loss.is_finite() {
            self.window.0 += s.loss as f64;
            self.window.1 += 1;
        }
        self.fresh.insert(s.worker, s.clone());
    }

    pub fn push_epoch(&mut self, e: &EpochSummary) {
        self.epochs.push(epoch_to_pb(e));
    }

    /// Turns what arrived since the last tick into one loss point and one sample per worker.
    pub fn tick(&mut self, now: f64) {
        if self.window.1 > 0 {
            self.loss.push_back((
                self.next_loss,
                pb::LossPoint { time: now, loss: self.window.0 / self.window.1 as f64 },
            ));
            self.next_loss += 1;
            if self.loss.len() > LOSS_POINTS {
                self.loss.pop_front();
            }
            self.window = (0.0, 0);
        }
        for (w, s) in std::mem::take(&mut self.fresh) {
            let series = self.series.entry(w).or_default();
            series.samples.push_back((
                series.next,
                Sample {
                    time: now,
                    sparsity: s.sparsity,
                    samples_per_sec: s.samples_per_sec,
                    residual_norm: s.residual_norm,
                    tau: s.tau as f64,
                },
            ));
            series.next += 1;
            if series.samples.len() > SERIES_SAMPLES {
                series.samples.pop_front();
            }
        }
    }

    fn series_since(&self, worker: u32, from: u64) -> (pb::WorkerSeries, u64) {
        let mut out = pb::WorkerSeries { worker, ..Default::default() };
        let Some(series) = self.series.get(&worker) else { return (out, from) };
        for (_, s) in series.samples.iter().filter(|(i, _)| *i >= from) {
            out.time.push(s.time);
            out.sparsity.push(s.sparsity);
            out.samples_per_sec.push(s.samples_per_sec);
            out.residual_norm.push(s.residual_norm);
            out.tau.push(s.tau);
        }
        (out, series.next)
    }
}

/// What one watcher has already been sent.
#[derive(Default)]
pub struct Cursor {
    loss: u64,
    epochs: usize,
    samples: BTreeMap<u32, u64>,
    workers: BTreeSet<u32>,
}

pub fn state_of(run: &JobRun) -> (pb::JobState, String) {
    if let Some(result) = run.result().borrow().as_ref() {
        return match &result.end {
            super::run::RunEnd::Finished => (pb::JobState::Finished, String::new()),
            super::run::RunEnd::Stopped => (pb::JobState::Stopped, "stopped by request".into()),
            super::run::RunEnd::Failed(r) => (pb::JobState::Failed, r.clone()),
        };
    }
    // Copy the state out: the hub's lock must not be held while it is taken again below.
    let state = run.hub().state().clone();
    match state {
        HubState::Paused => (pb::JobState::Paused, String::new()),
        HubState::Failed(r) => (pb::JobState::Failed, r),
        HubState::Finished => (pb::JobState::Finished, String::new()),
        HubState::Running | HubState::Evaluating => {
            let (live, waiting) = {
                let hub = run.hub();
                (hub.live_workers(), hub.waiting_for_workers())
            };
            match waiting {
                Some((joined, needed)) => {
                    (pb::JobState::Running, format!("waiting for workers: {joined} of {needed} joined"))
                }
                None if live == 0 => (pb::JobState::Running, "waiting for workers to join".into()),
                None => (pb::JobState::Running, String::new()),
            }
        }
    }
}

fn progress(run: &JobRun, workers: &[pb::WorkerInfo]) -> pb::JobProgress {
    let hub = run.hub();
    let (done, total) = hub.epoch_progress();
    let epochs = hub.config().epochs;
    let start = hub.config().start_epoch;
    let epoch = hub.epoch().min(epochs.saturating_sub(1));
    drop(hub);
    let elapsed = run.elapsed().as_secs_f64();
    let active = run.active_elapsed().as_secs_f64();
    let span = (epochs - start).max(1) as f64;
    let fraction = ((epoch - start.min(epoch)) as f64 + done as f64 / total.max(1) as f64) / span;
    let eta = if run.is_over() {
        0.0
    } else if fraction > 0.01 {
        // Scaled from training time: a pause does not make the rest look longer.
        active / fraction - active
    } else {
        -1.0
    };
    pb::JobProgress {
        epoch,
        epochs,
        partitions_done: done,
        partitions_total: total,
        elapsed_seconds: elapsed,
        eta_seconds: eta,
        samples_per_sec: workers
            .iter()
            .filter(|w| {
                w.state == pb::WorkerState::Training as i32 || w.state == pb::WorkerState::Waiting as i32
            })
            .map(|w| w.samples_per_sec)
            .sum(),
    }
}

fn workers(run: &JobRun) -> Vec<pb::WorkerInfo> {
    let links = run.links();
    let latest: Vec<Option<StepStats>> =
        links.iter().map(|l| l.latest.lock().unwrap_or_else(|p| p.into_inner()).clone()).collect();
    let max_step = latest.iter().flatten().map(|s| s.step).max().unwrap_or(0);
    let paces = run.paces();
    links
        .iter()
        .zip(latest)
        .map(|(l, s)| {
            let s = s.unwrap_or_default();
            let device = l.device.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let state = match l.state() {
                LinkState::Joined => pb::WorkerState::Starting,
                LinkState::Training => pb::WorkerState::Training,
                LinkState::Waiting => pb::WorkerState::Waiting,
                LinkState::Lost | LinkState::Removed => pb::WorkerState::Lost,
                LinkState::Done => pb::WorkerState::Done,
                LinkState::Failed => pb::WorkerState::Failed,
            };
            pb::WorkerInfo {
                id: l.id,
                host: l.host.clone(),
                device: device.device.clone(),
                state: state as i32,
                samples_per_sec: s.samples_per_sec,
                sparsity: s.sparsity,
                tau: s.tau,
                residual_norm: s.residual_norm,
                lag: max_step.saturating_sub(s.step),
                last_heartbeat: l.last_seen.lock().unwrap_or_else(|p| p.into_inner()).elapsed().as_secs_f64(),
                step: s.step,
                loss: s.loss,
                bytes_sent: s.bytes_sent,
                bytes_received: s.bytes_received,
                merged: s.merged + l.merged_total(),
                pending: s.pending,
                memory_used: device.memory_used,
                memory_total: device.memory_total,
                utilization: device.utilization,
                detail: l.detail.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                layers: s.layers.iter().map(crate::cluster::convert::share_to_pb).collect(),
                restarts: l.restarts,
                k: s.k,
                rank: s.rank,
                step_bytes: s.step_bytes,
                step_seconds: paces.get(&l.id).map(|p| p.0).unwrap_or(s.step_seconds),
                straggler: paces.get(&l.id).is_some_and(|p| p.1),
            }
        })
        .collect()
}

fn totals(run: &JobRun) -> pb::Totals {
    let t = run.totals();
    let c = run.hub().counters.clone();
    pb::Totals {
        steps: t.steps,
        samples: t.samples,
        bytes_sent: t.bytes_sent,
        dense_bytes: t.dense_bytes,
        compression_ratio: t.compression_ratio(),
        updates_rejected: c.updates_rejected,
        messages_merged: t.messages_merged,
        workers_lost: c.workers_lost,
        partitions_requeued: c.partitions_requeued,
    }
}

/// The full picture of a run, and a cursor positioned after it.
pub fn snapshot(run: &JobRun, coordinator: &str) -> (pb::JobSnapshot, Cursor) {
    let (state, detail) = state_of(run);
    let workers = workers(run);
    let mut cursor = Cursor::default();
    let history = run.history();
    let loss: Vec<pb::LossPoint> = history.loss.iter().map(|(_, p)| *p).collect();
    cursor.loss = history.next_loss;
    cursor.epochs = history.epochs.len();
    let mut series = Vec::new();
    for w in &workers {
        let (s, next) = history.series_since(w.id, 0);
        cursor.samples.insert(w.id, next);
        cursor.workers.insert(w.id);
        series.push(s);
    }
    let epochs = history.epochs.clone();
    drop(history);
    let band = crate::sharing::describe(&run.job)
        .has_tau
        .then(|| crate::sharing::Threshold::new(&run.job.sharing.algorithm).band())
        .flatten();
    let (band_low, band_high) = (band.map(|b| b.0), band.map(|b| b.1));
    let snapshot = pb::JobSnapshot {
        job_name: run.job.name.clone(),
        job_toml: run.job_toml.clone(),
        state: state as i32,
        state_detail: detail,
        progress: Some(progress(run, &workers)),
        workers,
        epochs,
        loss,
        totals: Some(totals(run)),
        band_low,
        band_high,
        sharing_mode: run.job.sharing_mode().name().to_string(),
        parameters: run.param_count as u64,
        coordinator: coordinator.to_string(),
        series,
        launch_problems: run.launch_problems.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        model: crate::cluster::convert::model_to_pb(&run.architecture),
        model_dir: run.saved_to().unwrap_or_default(),
    };
    (snapshot, cursor)
}

/// What changed since `cursor`, advancing it.
pub fn delta(run: &JobRun, cursor: &mut Cursor) -> pb::JobDelta {
    let (state, detail) = state_of(run);
    let workers = workers(run);
    let history = run.history();
    let new_loss: Vec<pb::LossPoint> =
        history.loss.iter().filter(|(i, _)| *i >= cursor.loss).map(|(_, p)| *p).collect();
    cursor.loss = history.next_loss;
    let new_epochs = history.epochs[cursor.epochs.min(history.epochs.len())..].to_vec();
    cursor.epochs = history.epochs.len();
    let mut new_samples = Vec::new();
    for w in &workers {
        let from = cursor.samples.get(&w.id).copied().unwrap_or(0);
        let (s, next) = history.series_since(w.id, from);
        cursor.samples.insert(w.id, next);
        if !s.time.is_empty() {
            new_samples.push(s);
        }
    }
    drop(history);
    let now: BTreeSet<u32> = workers.iter().map(|w| w.id).collect();
    let removed_workers = cursor.workers.difference(&now).copied().collect();
    cursor.workers = now;
    pb::JobDelta {
        state: state as i32,
        state_detail: detail,
        progress: Some(progress(run, &workers)),
        workers,
        removed_workers,
        new_epochs,
        new_loss,
        totals: Some(totals(run)),
        new_samples,
        launch_problems: run.launch_problems.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        model_dir: run.saved_to().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_samples_each_tick_and_series_resume_from_a_cursor() {
        let mut h = History::default();
        for (w, loss) in [(0, 1.0), (1, 3.0), (0, 2.0)] {
            h.record(&StepStats { worker: w, loss, sparsity: 0.01, ..Default::default() });
        }
        h.tick(1.0);
        assert_eq!(h.loss.len(), 1);
        assert_eq!(h.loss[0].1.loss, 2.0);
        h.tick(2.0);
        assert_eq!(h.loss.len(), 1, "no stats, no point");
        let (s, next) = h.series_since(0, 0);
        assert_eq!((s.time.len(), next), (1, 1));
        let (s, _) = h.series_since(0, next);
        assert!(s.time.is_empty());
        for i in 0..(SERIES_SAMPLES + 10) {
            h.record(&StepStats { worker: 0, ..Default::default() });
            h.tick(i as f64);
        }
        assert_eq!(h.series[&0].samples.len(), SERIES_SAMPLES, "bounded");
    }
}
