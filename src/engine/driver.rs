//! The job's side of an epoch, shared by the embedded runner and the coordinator: the
//! [`Driver`] folds the workers' step stats into epoch summaries and totals; the
//! [`Evaluation`] evaluates the job's model when the epoch barrier completes. They are apart so
//! a coordinator evaluates (seconds) without holding what every report takes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::evaluate;
use super::hub::EpochReady;
use super::metrics::{EpochSummary, StepStats, Totals, WorkerTotals};
use super::sample::Sampler;
use crate::backend::{Backend, CpuBackend};
use crate::data::Dataset;
use crate::job::ResolvedJob;
use crate::nn::Architecture;

/// The job's model on its test data: an evaluator, the test set and a language model's sampler.
pub struct Evaluation {
    evaluator: CpuBackend,
    test: Option<Arc<Dataset>>,
    /// A language model's sampler: a short sample is logged after each epoch's evaluation.
    sampler: Option<Sampler>,
}

/// What an epoch's evaluation found, and how long it took.
pub struct EpochEval {
    pub test: Option<super::EvalReport>,
    pub seconds: f64,
}

impl Evaluation {
    pub fn new(
        job: &ResolvedJob,
        architecture: &Architecture,
        test: Option<Arc<Dataset>>,
        state: &[f32],
    ) -> Self {
        Evaluation {
            evaluator: CpuBackend::new(
                architecture,
                &job.updater(),
                0.0,
                512,
                state,
                crate::job::available_cores(),
            ),
            test,
            sampler: (job.data.format == crate::job::DataFormat::Text)
                .then(|| crate::data::text::vocabulary(&job.data).ok())
                .flatten()
                .and_then(|v| Sampler::new(architecture, v).ok()),
        }
    }

    /// Evaluates the barrier's model (and logs a language model's sample).
    pub fn epoch(&mut self, ready: &EpochReady) -> EpochEval {
        let t0 = Instant::now();
        if self.test.is_some() || self.sampler.is_some() {
            self.evaluator.write_state(&ready.model);
        }
        let test = self.test.as_ref().map(|t| evaluate(&mut self.evaluator, t, 512));
        if let Some(sampler) = &self.sampler {
            let text = sampler.line(&mut self.evaluator, 100, ready.epoch as u64);
            tracing::info!("sample after epoch {}: {text}", ready.epoch + 1);
        }
        EpochEval { test, seconds: t0.elapsed().as_secs_f64() }
    }
}

/// Steps a worker's pace is taken over (the mean for display, the median for detection).
pub const PACE_STEPS: usize = 5;
/// Consecutive steps a verdict must hold before a worker is flagged or cleared: with the
/// median, one or two slow steps (a noisy, shared machine) flag nobody, and a worker that is
/// slow on every step is flagged within `PACE_STEPS + PACE_CONFIRM` of its steps.
const PACE_CONFIRM: u32 = 2;
/// A worker whose step time is above this times the median of the others' is a straggler ...
pub const STRAGGLER_FACTOR: f64 = 1.25;
/// ... until it falls below this times that median.
const RECOVERED_FACTOR: f64 = 1.1;

/// Each worker's recent step times, and who is slow.
#[derive(Default)]
pub struct Pace {
    recent: BTreeMap<u32, VecDeque<f64>>,
    slow: BTreeMap<u32, bool>,
    flagged: BTreeMap<u32, u32>,
    /// Consecutive steps whose verdict contradicts the worker's state.
    against: BTreeMap<u32, u32>,
}

/// A worker became a straggler, or stopped being one.
#[derive(Clone, Debug, PartialEq)]
pub enum PaceChange {
    Slow { worker: u32, step_seconds: f64, median: f64 },
    Recovered { worker: u32, step_seconds: f64, median: f64 },
}

impl Pace {
    /// Folds in one step of `worker`; says when it becomes (or stops being) a straggler.
    pub fn record(&mut self, worker: u32, seconds: f64) -> Option<PaceChange> {
        if !seconds.is_finite() || seconds <= 0.0 {
            return None;
        }
        let recent = self.recent.entry(worker).or_default();
        if recent.len() == PACE_STEPS {
            recent.pop_front();
        }
        recent.push_back(seconds);
        let mine = self.typical(worker)?;
        let mut others: Vec<f64> =
            self.recent.keys().filter(|&&w| w != worker).filter_map(|&w| self.typical(w)).collect();
        if others.is_empty() {
            return None;
        }
        let median = median(&mut others);
        let slow = self.slow.get(&worker).copied().unwrap_or(false);
        let contradicts =
            if slow { mine < RECOVERED_FACTOR * median } else { mine > STRAGGLER_FACTOR * median };
        let against = self.against.entry(worker).or_default();
        *against = if contradicts { *against + 1 } else { 0 };
        if *against < PACE_CONFIRM {
            return None;
        }
        *against = 0;
        self.slow.insert(worker, !slow);
        if slow {
            Some(PaceChange::Recovered { worker, step_seconds: mine, median })
        } else {
            *self.flagged.entry(worker).or_default() += 1;
            Some(PaceChange::Slow { worker, step_seconds: mine, median })
        }
    }

    /// The median of the worker's last [`PACE_STEPS`] step times (what detection compares: one
    /// slow step does not move it), once it has taken that many.
    fn typical(&self, worker: u32) -> Option<f64> {
        let r = self.recent.get(&worker).filter(|r| r.len() == PACE_STEPS)?;
        Some(median(&mut r.iter().copied().collect::<Vec<_>>()))
    }

    /// The mean of the worker's last [`PACE_STEPS`] step times, once it has taken that many.
    pub fn step_seconds(&self, worker: u32) -> Option<f64> {
        let r = self.recent.get(&worker).filter(|r| r.len() == PACE_STEPS)?;
        Some(r.iter().sum::<f64>() / r.len() as f64)
    }

    pub fn is_slow(&self, worker: u32) -> bool {
        self.slow.get(&worker).copied().unwrap_or(false)
    }

    /// A worker that is gone no longer counts in the others' median.
    pub fn forget(&mut self, worker: u32) {
        self.recent.remove(&worker);
        self.slow.remove(&worker);
        self.against.remove(&worker);
    }
}

/// The median of a non-empty list (reordered).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
}

/// A classifier starts near a uniform guess's loss, `ln` of its class count; a test loss, or an
/// epoch's mean training loss, above this times that is confidently wrong: the mark of a rate
/// the model does not survive.
const GUESS_FACTOR: f64 = 2.0;
/// An epoch whose mean training loss is above this times the lowest of an earlier epoch has
/// lost what training gained (noise and a warm-up move it by far less).
const ROSE_FACTOR: f64 = 2.0;
/// After a blow-up, a test accuracy within this of predicting the most frequent class is
/// still at chance.
const CHANCE_MARGIN: f64 = 0.02;

/// A run going wrong while its loss stays finite (a non-finite loss stops the job:
/// [`super::EngineError::Diverged`]). A synchronous scheme at a rate past what the model
/// survives ends at chance with no NaN: `resnet20` under `dense16` at 0.4 reached a test loss
/// of 92 after one epoch; the demo's MLP under `dense16` at SGD 2.0 a training loss of 2.6e14,
/// then a dead network at 0.107 accuracy.
#[derive(Clone, Debug, PartialEq)]
pub enum Divergence {
    /// The test loss of a classifier with `classes` classes is above [`GUESS_FACTOR`] times
    /// `ln(classes)`.
    WorseThanGuessing { loss: f64, classes: usize },
    /// The epoch's mean training loss is above [`GUESS_FACTOR`] times `ln(classes)`.
    LossExploded { loss: f64, classes: usize },
    /// Epoch `since` (counted from 0) blew up and the test accuracy is still no better than
    /// always predicting the most frequent class (`majority`, its share of the test set).
    NotRecovered { since: u32, accuracy: f64, majority: f64 },
    /// The epoch's mean training loss rose above [`ROSE_FACTOR`] times `lowest`, the mean of
    /// epoch `at`.
    LossRose { lowest: f64, at: u32, now: f64 },
}

/// A loss for a message: four decimals, or three digits and an exponent when it is huge.
fn loss_text(x: f64) -> String {
    if x.abs() >= 1e4 { format!("{x:.3e}") } else { format!("{x:.4}") }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let guess = |classes: &usize| (*classes as f64).ln();
        match self {
            Divergence::WorseThanGuessing { loss, classes } => write!(
                f,
                "its test loss {} is worse than guessing (a uniform guess over {classes} classes scores {:.3})",
                loss_text(*loss),
                guess(classes)
            ),
            Divergence::LossExploded { loss, classes } => write!(
                f,
                "its training loss {} is far above where a {classes}-class model starts ({:.3})",
                loss_text(*loss),
                guess(classes)
            ),
            Divergence::NotRecovered { since, accuracy, majority } => write!(
                f,
                "it blew up in epoch {} and has not recovered: test accuracy {accuracy:.4}, where \
                 always predicting the most frequent class scores {majority:.4}",
                since + 1
            ),
            Divergence::LossRose { lowest, at, now } => write!(
                f,
                "its training loss rose to {} from {} in epoch {}",
                loss_text(*now),
                loss_text(*lowest),
                at + 1
            ),
        }
    }
}

/// A classifier's test report: its class count and the share of its most frequent class.
fn classes(e: &EpochSummary) -> Option<(&crate::nn::Evaluation, usize, f64)> {
    let Some(super::EvalReport::Classification(eval)) = &e.test else { return None };
    let classes = eval.confusion.len();
    let total: u64 = eval.confusion.iter().flatten().sum();
    let largest = eval.confusion.iter().map(|row| row.iter().sum::<u64>()).max().unwrap_or(0);
    (classes >= 2 && total > 0).then(|| (eval, classes, largest as f64 / total as f64))
}

/// A classifier's epoch whose losses are past a uniform guess's (see [`GUESS_FACTOR`]).
fn blew_up(e: &EpochSummary) -> Option<Divergence> {
    let (eval, classes, _) = classes(e)?;
    let bound = GUESS_FACTOR * (classes as f64).ln();
    // A test loss of NaN (running statistics gone non-finite) is worse than any guess too.
    if eval.loss.is_nan() || eval.loss > bound {
        Some(Divergence::WorseThanGuessing { loss: eval.loss, classes })
    } else if e.train_loss > bound {
        Some(Divergence::LossExploded { loss: e.train_loss, classes })
    } else {
        None
    }
}

/// Whether epoch `last`, after `earlier`, shows a run going wrong (see [`Divergence`]).
pub fn divergence(earlier: &[EpochSummary], last: &EpochSummary) -> Option<Divergence> {
    if let Some(d) = blew_up(last) {
        return Some(d);
    }
    if let Some(since) = earlier.iter().find(|e| blew_up(e).is_some())
        && let Some((eval, _, majority)) = classes(last)
        && eval.accuracy <= majority + CHANCE_MARGIN
    {
        return Some(Divergence::NotRecovered { since: since.epoch, accuracy: eval.accuracy, majority });
    }
    let lowest = earlier
        .iter()
        .filter(|e| e.train_loss.is_finite() && e.train_loss > 0.0)
        .min_by(|a, b| a.train_loss.total_cmp(&b.train_loss))?;
    (last.train_loss > ROSE_FACTOR * lowest.train_loss).then_some(Divergence::LossRose {
        lowest: lowest.train_loss,
        at: lowest.epoch,
        now: last.train_loss,
    })
}

/// What to change when a run diverges: the rate as set, and as applied where a scheme runs one
/// updater on the mean gradient of several workers.
fn rate_advice(job: &ResolvedJob) -> String {
    let lr = job.updater().learning_rate();
    // Four significant decimals at most: 1.414, not 1.4142135.
    let short = |x: f32| format!("{x:.4}").trim_end_matches('0').trim_end_matches('.').to_string();
    let applied = match crate::sharing::mean_gradient_gain(job).filter(|g| *g != 1.0) {
        Some(gain) => format!(
            "; `{}` runs one updater on the mean gradient of {} workers at {}x it, {}",
            crate::sharing::describe(job).name,
            job.cluster.workers,
            short(gain),
            short(lr * gain)
        ),
        None => String::new(),
    };
    format!(
        "lower the learning rate (train.updater.lr, now {lr}{applied}) or warm it up (train.lr_warmup_epochs, now {})",
        job.train.lr_warmup_epochs
    )
}

pub struct Driver {
    /// Whether workers exchange anything (then a dense f32 exchange per step is the
    /// reference the compression is measured against).
    exchanges: bool,
    params: usize,
    rows: u64,
    started: Instant,
    epoch_started: Option<Instant>,
    epoch_loss: f64,
    epoch_steps: u64,
    bytes_at_epoch_start: u64,
    /// The latest stats of every worker (their counters are cumulative).
    latest: BTreeMap<u32, StepStats>,
    sparsity_sum: f64,
    steps_seen: u64,
    pub epochs: Vec<EpochSummary>,
    pub eval_seconds: f64,
    pub pace: Pace,
    /// What [`Divergence`]'s warning suggests.
    advice: String,
}

impl Driver {
    pub fn new(job: &ResolvedJob, architecture: &Architecture, rows: usize) -> Self {
        Driver {
            exchanges: crate::sharing::describe(job).exchanges,
            params: architecture.param_count(),
            rows: rows as u64,
            started: Instant::now(),
            epoch_started: None,
            epoch_loss: 0.0,
            epoch_steps: 0,
            bytes_at_epoch_start: 0,
            latest: BTreeMap::new(),
            sparsity_sum: 0.0,
            steps_seen: 0,
            epochs: Vec::new(),
            eval_seconds: 0.0,
            pace: Pace::default(),
            advice: rate_advice(job),
        }
    }

    /// Continue the epoch history of a resumed job.
    pub fn with_history(mut self, epochs: Vec<EpochSummary>) -> Self {
        self.epochs = epochs;
        self
    }

    /// Folds in one step of one worker. A worker id belongs to one process whose step counter
    /// only grows, so a step already seen (a late, reordered report) is ignored.
    pub fn on_stats(&mut self, s: &StepStats) {
        if self.latest.get(&s.worker).is_some_and(|prev| s.step <= prev.step) {
            return;
        }
        self.epoch_started.get_or_insert_with(Instant::now);
        self.epoch_loss += s.loss as f64;
        self.epoch_steps += 1;
        if self.exchanges {
            self.sparsity_sum += s.sparsity;
        }
        self.steps_seen += 1;
        match self.pace.record(s.worker, s.step_seconds) {
            Some(PaceChange::Slow { worker, step_seconds, median }) => tracing::warn!(
                worker,
                "worker {worker} is a straggler: its steps take {:.1} ms (the median of its last {PACE_STEPS}), \
                 {:.2}x the median of the others ({:.1} ms), at step {}",
                step_seconds * 1e3,
                step_seconds / median,
                median * 1e3,
                s.step
            ),
            Some(PaceChange::Recovered { worker, step_seconds, median }) => tracing::info!(
                worker,
                "worker {worker} keeps pace again: {:.1} ms per step against the others' {:.1} ms",
                step_seconds * 1e3,
                median * 1e3
            ),
            None => {}
        }
        self.latest.insert(s.worker, s.clone());
    }

    fn bytes_sent(&self) -> u64 {
        self.latest.values().map(|s| s.bytes_sent).sum()
    }

    /// Records the epoch whose barrier's model `eval` evaluated.
    pub fn on_epoch_ready(&mut self, ready: &EpochReady, eval: EpochEval) -> EpochSummary {
        let EpochEval { test, seconds } = eval;
        self.eval_seconds += seconds;
        let bytes_now = self.bytes_sent();
        let mut summary = EpochSummary {
            epoch: ready.epoch,
            seconds: self.epoch_started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0),
            train_loss: if self.epoch_steps > 0 {
                self.epoch_loss / self.epoch_steps as f64
            } else {
                f64::NAN
            },
            samples: self.rows,
            steps: self.epoch_steps,
            replica_drift: ready.drift,
            test,
            bytes_sent: bytes_now.saturating_sub(self.bytes_at_epoch_start),
            dense_bytes: if self.exchanges { self.epoch_steps * self.params as u64 * 4 } else { 0 },
            divergence: None,
        };
        if let Some(d) = divergence(&self.epochs, &summary) {
            tracing::warn!("epoch {}: the run looks diverged: {d}; {}", summary.epoch + 1, self.advice);
            summary.divergence = Some(d.to_string());
        }
        self.epochs.push(summary.clone());
        self.epoch_started = None;
        self.epoch_loss = 0.0;
        self.epoch_steps = 0;
        self.bytes_at_epoch_start = bytes_now;
        summary
    }

    /// Steps taken by all workers so far.
    pub fn steps(&self) -> u64 {
        self.latest.values().map(|s| s.step).sum()
    }

    pub fn totals(&self) -> Totals {
        let steps = self.steps();
        Totals {
            steps,
            samples: self.latest.values().map(|s| s.samples).sum(),
            train_seconds: self.started.elapsed().as_secs_f64(),
            eval_seconds: self.eval_seconds,
            bytes_sent: self.bytes_sent(),
            bytes_received: self.latest.values().map(|s| s.bytes_received).sum(),
            dense_bytes: if self.exchanges { steps * self.params as u64 * 4 } else { 0 },
            // The newest report's: a worker lost early keeps its last (stale) report here.
            final_tau: self
                .latest
                .values()
                .max_by(|a, b| a.time.total_cmp(&b.time))
                .map(|s| s.tau)
                .unwrap_or(0.0),
            mean_sparsity: if self.steps_seen > 0 { self.sparsity_sum / self.steps_seen as f64 } else { 0.0 },
            messages_merged: self.latest.values().map(|s| s.merged).sum(),
            messages_rejected: self.latest.values().map(|s| s.rejected).sum(),
            workers_lost: 0,
            partitions_requeued: 0,
            calls_refused: 0,
            per_worker: self
                .latest
                .values()
                .map(|s| WorkerTotals {
                    worker: s.worker,
                    steps: s.step,
                    step_seconds: self.pace.step_seconds(s.worker).unwrap_or(s.step_seconds),
                    bytes_sent: s.bytes_sent,
                    bytes_received: s.bytes_received,
                    pending: s.pending,
                    straggler: self.pace.is_slow(s.worker),
                    flagged: self.pace.flagged.get(&s.worker).copied().unwrap_or(0),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An epoch of a ten-class classifier with a balanced test set: its mean training loss,
    /// and its test loss and accuracy.
    fn epoch(epoch: u32, train_loss: f64, test: Option<(f64, f64)>) -> EpochSummary {
        EpochSummary {
            epoch,
            seconds: 1.0,
            train_loss,
            samples: 100,
            steps: 10,
            replica_drift: 0.0,
            test: test.map(|(loss, accuracy)| {
                super::super::EvalReport::Classification(crate::nn::Evaluation {
                    samples: 100,
                    accuracy,
                    macro_f1: accuracy,
                    loss,
                    per_class: Vec::new(),
                    confusion: vec![vec![1; 10]; 10],
                })
            }),
            bytes_sent: 0,
            dense_bytes: 0,
            divergence: None,
        }
    }

    /// [`divergence`] of the last epoch of `epochs`.
    fn check(epochs: &[EpochSummary]) -> Option<Divergence> {
        let (last, earlier) = epochs.split_last()?;
        divergence(earlier, last)
    }

    /// A healthy run, and one that overfits (test loss up, training loss down), are not
    /// flagged. A test or training loss past twice a uniform guess's is; so is a model still at
    /// chance after such an epoch (until it learns again), and a training loss that doubles,
    /// whichever epoch held the lowest. The figures of the blow-up are the demo MLP's under
    /// `dense16` at SGD 2.0.
    #[test]
    fn divergence_is_flagged_past_a_guess_at_chance_or_a_doubled_loss_and_not_for_overfitting() {
        let healthy = [
            epoch(0, 0.9, Some((0.6, 0.78))),
            epoch(1, 0.5, Some((0.45, 0.84))),
            epoch(2, 0.4, Some((0.4, 0.86))),
        ];
        for n in 1..=healthy.len() {
            assert_eq!(check(&healthy[..n]), None, "{n} epochs");
        }
        let overfit = [
            epoch(0, 0.5, Some((0.3, 0.9))),
            epoch(1, 0.1, Some((0.5, 0.9))),
            epoch(2, 0.02, Some((1.2, 0.89))),
        ];
        assert_eq!(check(&overfit), None);
        assert_eq!(check(&[]), None);
        // ln(10) = 2.303: a uniform guess; twice that is the bound.
        assert_eq!(check(&[epoch(0, 2.0, Some((4.5, 0.2)))]), None);
        let guess = check(&[epoch(0, 2.0, Some((92.0, 0.1)))]).expect("worse than guessing");
        assert_eq!(guess, Divergence::WorseThanGuessing { loss: 92.0, classes: 10 });
        assert!(guess.to_string().contains("over 10 classes scores 2.303"), "{guess}");
        assert!(matches!(
            check(&[epoch(0, 2.0, Some((f64::NAN, 0.1)))]),
            Some(Divergence::WorseThanGuessing { classes: 10, .. })
        ));

        let blown = [
            epoch(0, 2.6e14, Some((2.302, 0.095))),
            epoch(1, 2.3052, Some((2.302, 0.107))),
            epoch(2, 1.9, Some((1.5, 0.45))),
        ];
        let exploded = check(&blown[..1]).expect("exploded");
        assert_eq!(exploded, Divergence::LossExploded { loss: 2.6e14, classes: 10 });
        assert!(exploded.to_string().contains("training loss 2.600e14"), "{exploded}");
        let stuck = check(&blown[..2]).expect("still at chance");
        assert_eq!(stuck, Divergence::NotRecovered { since: 0, accuracy: 0.107, majority: 0.1 });
        assert!(stuck.to_string().contains("blew up in epoch 1"), "{stuck}");
        assert_eq!(check(&blown), None, "learning again");

        let rose = [epoch(0, 0.8, None), epoch(1, 0.4, None), epoch(2, 0.7, None), epoch(3, 0.81, None)];
        assert_eq!(check(&rose[..3]), None, "0.7 is under twice 0.4");
        assert_eq!(check(&rose), Some(Divergence::LossRose { lowest: 0.4, at: 1, now: 0.81 }));
        assert!(check(&rose).unwrap().to_string().contains("from 0.4000 in epoch 2"));
        let nan_first = [epoch(0, f64::NAN, None), epoch(1, 0.5, None), epoch(2, 1.2, None)];
        assert_eq!(check(&nan_first), Some(Divergence::LossRose { lowest: 0.5, at: 1, now: 1.2 }));
    }

    /// The advice names the rate as set and, where one updater runs on the mean gradient of
    /// several workers, the rate it runs at.
    #[test]
    fn the_advice_names_the_rate_a_synchronous_scheme_applies() {
        let resolve =
            |toml: &str| ResolvedJob::resolve(crate::job::JobSpec::from_toml(toml, "j").unwrap()).unwrap();
        let dense = resolve(
            "[cluster]\nworkers = 4\n[sharing]\nmode = \"dense16\"\n[train.updater]\nkind = \"nesterov\"\nlr = 0.1\n",
        );
        let advice = rate_advice(&dense);
        assert!(
            advice.contains(
                "now 0.1; `dense16` runs one updater on the mean gradient of 4 workers at 4x it, 0.4"
            ),
            "{advice}"
        );
        let threshold = resolve("[cluster]\nworkers = 4\n[train.updater]\nkind = \"nesterov\"\nlr = 0.1\n");
        let advice = rate_advice(&threshold);
        assert!(advice.contains("now 0.1)") && advice.contains("train.lr_warmup_epochs, now 0"), "{advice}");
    }

    /// Three workers at 20 ms a step; worker 2 slows to 40 ms at step 10 and recovers at 30.
    #[test]
    fn a_slow_worker_is_flagged_within_its_pace_window_and_cleared_when_it_keeps_pace() {
        let mut pace = Pace::default();
        let mut changes = Vec::new();
        for step in 0..40u64 {
            for w in 0..3u32 {
                let slow = w == 2 && (10..30).contains(&step);
                if let Some(c) = pace.record(w, if slow { 0.040 } else { 0.020 }) {
                    changes.push((step, c));
                }
            }
        }
        assert_eq!(changes.len(), 2, "{changes:?}");
        let (flagged_at, PaceChange::Slow { worker, step_seconds, median }) = &changes[0] else {
            panic!("first a straggler: {changes:?}")
        };
        assert_eq!(*worker, 2);
        assert!(*flagged_at < 10 + 10, "flagged within 10 steps, at step {flagged_at}");
        assert!((median - 0.020).abs() < 1e-9 && *step_seconds > STRAGGLER_FACTOR * median);
        assert!(matches!(changes[1], (s, PaceChange::Recovered { worker: 2, .. }) if (30..40).contains(&s)));
        assert_eq!(pace.flagged.get(&2), Some(&1));
        assert!(!pace.is_slow(0) && !pace.is_slow(1) && !pace.is_slow(2));
    }

    /// Jitter inside the band is no straggler, a lone worker has nobody to lag behind, and a
    /// worker that is gone leaves the others' median.
    #[test]
    fn jitter_a_lone_worker_and_a_lost_one_flag_nobody() {
        let mut pace = Pace::default();
        for step in 0..50 {
            assert_eq!(pace.record(0, 0.020 + 0.004 * ((step % 3) as f64)), None);
        }
        for step in 0..50 {
            assert_eq!(pace.record(1, if step % 2 == 0 { 0.021 } else { 0.027 }), None, "step {step}");
            assert_eq!(pace.record(0, 0.020), None);
        }
        for _ in 0..PACE_STEPS + PACE_CONFIRM as usize - 1 {
            pace.record(2, 0.100);
        }
        assert!(pace.is_slow(2));
        pace.forget(2);
        assert!(!pace.is_slow(2) && pace.step_seconds(2).is_none());
        assert_eq!(pace.record(0, f64::NAN), None);
    }

    /// On a busy machine single steps spike: a worker whose steps take 3x now and then (one or
    /// two in five), and another whose pace wobbles around the threshold for one step at a
    /// time, are never flagged (with the mean of the last 5 steps, each spike flagged a worker
    /// and the next steps cleared it).
    #[test]
    fn spikes_and_wobbles_on_a_busy_machine_flag_nobody() {
        let mut pace = Pace::default();
        for step in 0..200u64 {
            assert_eq!(pace.record(0, 0.020), None);
            let spike = if step % 5 == 0 || step % 10 == 3 { 0.060 } else { 0.020 };
            assert_eq!(pace.record(1, spike), None, "worker 1, step {step}");
            let wobble = if step % 4 == 0 { 0.026 } else { 0.024 };
            assert_eq!(pace.record(2, wobble), None, "worker 2, step {step}");
        }
        assert!(pace.flagged.is_empty());
    }
}
