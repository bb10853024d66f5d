//! What the cockpit knows about the job: a snapshot with the deltas applied since, bounded
//! series for the charts, the connection, the logs. Kept apart from drawing (tokio-console's
//! split), so it can be tested without a terminal.

use std::collections::{BTreeMap, VecDeque};

use crate::model;

const SERIES: usize = 600;
const LOSS: usize = 2000;
const LOGS: usize = 5000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub time: VecDeque<f64>,
    pub sparsity: VecDeque<f64>,
    pub samples_per_sec: VecDeque<f64>,
    pub residual_norm: VecDeque<f64>,
    pub tau: VecDeque<f64>,
}

impl Series {
    fn extend(&mut self, s: &model::WorkerSeries) {
        for i in 0..s.time.len() {
            self.time.push_back(s.time[i]);
            self.sparsity.push_back(s.sparsity.get(i).copied().unwrap_or(f64::NAN));
            self.samples_per_sec.push_back(s.samples_per_sec.get(i).copied().unwrap_or(f64::NAN));
            self.residual_norm.push_back(s.residual_norm.get(i).copied().unwrap_or(f64::NAN));
            self.tau.push_back(s.tau.get(i).copied().unwrap_or(f64::NAN));
        }
        while self.time.len() > SERIES {
            self.time.pop_front();
            self.sparsity.pop_front();
            self.samples_per_sec.pop_front();
            self.residual_norm.pop_front();
            self.tau.pop_front();
        }
    }
}

/// The job as last seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobView {
    pub name: String,
    pub toml: String,
    pub state: model::JobState,
    pub detail: String,
    pub progress: model::JobProgress,
    pub workers: BTreeMap<u32, model::WorkerInfo>,
    pub series: BTreeMap<u32, Series>,
    pub epochs: Vec<model::EpochPoint>,
    pub loss: VecDeque<model::LossPoint>,
    pub totals: model::Totals,
    pub band: Option<(f64, f64)>,
    pub sharing_mode: String,
    pub parameters: u64,
    pub coordinator: String,
    /// What the launcher could not start, per host or worker.
    pub launch_problems: Vec<String>,
    /// The model, layer by layer (names the per-layer sharing figures).
    pub model: Vec<model::ModelLayer>,
    /// Where the run's model was saved, once it ended.
    pub model_dir: String,
}

impl JobView {
    pub fn from_snapshot(s: model::JobSnapshot) -> JobView {
        let mut v = JobView {
            name: s.job_name,
            toml: s.job_toml,
            state: s.state,
            detail: s.state_detail,
            progress: s.progress.unwrap_or_default(),
            workers: s.workers.into_iter().map(|w| (w.id, w)).collect(),
            series: BTreeMap::new(),
            epochs: s.epochs,
            loss: s.loss.into_iter().collect(),
            totals: s.totals.unwrap_or_default(),
            band: s.band_low.zip(s.band_high),
            sharing_mode: s.sharing_mode,
            parameters: s.parameters,
            coordinator: s.coordinator,
            launch_problems: s.launch_problems,
            model: s.model,
            model_dir: s.model_dir,
        };
        for ws in &s.series {
            v.series.entry(ws.worker).or_default().extend(ws);
        }
        v.trim();
        v
    }

    pub fn apply(&mut self, d: model::JobDelta) {
        if let Some(s) = d.state {
            self.state = s;
        }
        self.detail = d.state_detail;
        self.launch_problems = d.launch_problems;
        if !d.model_dir.is_empty() {
            self.model_dir = d.model_dir;
        }
        if let Some(p) = d.progress {
            self.progress = p;
        }
        for w in d.workers {
            self.workers.insert(w.id, w);
        }
        for id in d.removed_workers {
            self.workers.remove(&id);
            self.series.remove(&id);
        }
        self.epochs.extend(d.new_epochs);
        self.loss.extend(d.new_loss);
        if let Some(t) = d.totals {
            self.totals = t;
        }
        for ws in &d.new_samples {
            self.series.entry(ws.worker).or_default().extend(ws);
        }
        self.trim();
    }

    fn trim(&mut self) {
        while self.loss.len() > LOSS {
            self.loss.pop_front();
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, model::JobState::Running | model::JobState::Paused)
    }

    pub fn live_workers(&self) -> usize {
        self.workers
            .values()
            .filter(|w| {
                matches!(
                    w.state,
                    model::WorkerState::Training | model::WorkerState::Waiting | model::WorkerState::Starting
                )
            })
            .count()
    }
}

/// The link to the coordinator.
#[derive(Clone, Debug, PartialEq)]
pub enum Connection {
    Connecting,
    Connected,
    /// Lost; trying again (attempt number, seconds until the next try, why).
    Reconnecting {
        attempt: u32,
        retry_in: f64,
        error: String,
    },
    /// Refused for a reason no retry changes (the certificate is not the pinned one, the token
    /// or its role is wrong, TLS against plaintext): the cockpit stops trying and says why.
    Refused(String),
}

impl Connection {
    pub fn label(&self) -> String {
        match self {
            Connection::Connecting => "connecting".into(),
            Connection::Connected => "connected".into(),
            Connection::Reconnecting { attempt, retry_in, error } => {
                format!("reconnecting (attempt {attempt}, next in {retry_in:.1} s): {error}")
            }
            Connection::Refused(why) => format!("not connected: {why}"),
        }
    }
}

/// The log pane: records, filters, scroll position.
#[derive(Clone, Debug, Default)]
pub struct Logs {
    pub records: VecDeque<model::LogRecord>,
    /// Minimum level shown: 0 trace .. 4 error.
    pub min_level: u8,
    /// None: everyone; Some(None): the coordinator; Some(Some(w)): worker w.
    pub source: Option<Option<u32>>,
    /// Lines scrolled up from the bottom; 0 follows new lines.
    pub scroll: usize,
}

pub fn level_rank(level: &str) -> u8 {
    match level.to_ascii_uppercase().as_str() {
        "TRACE" => 0,
        "DEBUG" => 1,
        "INFO" => 2,
        "WARN" => 3,
        "ERROR" => 4,
        _ => 2,
    }
}

pub const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

impl Logs {
    pub fn push(&mut self, batch: model::LogBatch) {
        self.records.extend(batch.records);
        while self.records.len() > LOGS {
            self.records.pop_front();
        }
    }

    pub fn visible(&self) -> impl Iterator<Item = &model::LogRecord> {
        self.records.iter().filter(move |r| {
            level_rank(&r.level) >= self.min_level
                && match self.source {
                    None => true,
                    Some(who) => r.worker == who,
                }
        })
    }
}

/// A warning the dashboard shows, derived from the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub worker: Option<u32>,
    pub text: String,
}

/// Samples a condition must hold for before it warns (about 5 s at the default refresh).
const SUSTAINED: usize = 20;

/// Warnings: sparsity outside the band, a residual that keeps growing, a lagging or lost
/// worker, a NaN loss, a run that looks diverged at its last epoch.
pub fn warnings(job: &JobView) -> Vec<Warning> {
    let mut out: Vec<Warning> =
        job.launch_problems.iter().map(|p| Warning { worker: None, text: format!("launch: {p}") }).collect();
    if job.loss.back().is_some_and(|l| !l.loss.is_finite())
        || job.workers.values().any(|w| !w.loss.is_finite())
    {
        out.push(Warning { worker: None, text: "loss is NaN or infinite: lower the learning rate".into() });
    }
    if let Some(e) = job.epochs.last()
        && let Some(why) = &e.divergence
    {
        out.push(Warning {
            worker: None,
            text: format!(
                "epoch {} looks diverged (lower the learning rate; Logs has more): {why}",
                e.epoch + 1
            ),
        });
    }
    let max_step = job.workers.values().map(|w| w.step).max().unwrap_or(0);
    for (id, w) in &job.workers {
        let state = w.state;
        if state == model::WorkerState::Lost {
            let why = if w.detail.is_empty() { String::new() } else { format!(": {}", w.detail) };
            out.push(Warning { worker: Some(*id), text: format!("worker {id} lost{why}") });
            continue;
        }
        if state == model::WorkerState::Failed {
            out.push(Warning { worker: Some(*id), text: format!("worker {id} failed: {}", w.detail) });
            continue;
        }
        if !job.is_running() || !matches!(state, model::WorkerState::Training | model::WorkerState::Waiting) {
            continue;
        }
        if w.last_heartbeat > 5.0 {
            out.push(Warning {
                worker: Some(*id),
                text: format!("worker {id} silent for {:.0} s", w.last_heartbeat),
            });
        } else if max_step > 50 && w.lag > (max_step / 4).max(50) {
            out.push(Warning { worker: Some(*id), text: format!("worker {id} lags {} steps behind", w.lag) });
        }
        let Some(series) = job.series.get(id) else { continue };
        if let Some((low, high)) = job.band {
            let recent: Vec<f64> = series.sparsity.iter().rev().take(SUSTAINED).copied().collect();
            if recent.len() == SUSTAINED {
                if recent.iter().all(|&s| s < low) {
                    out.push(Warning {
                        worker: Some(*id),
                        text: format!("worker {id} sparsity below the band for {SUSTAINED} samples"),
                    });
                } else if recent.iter().all(|&s| s > high) {
                    out.push(Warning {
                        worker: Some(*id),
                        text: format!("worker {id} sparsity above the band for {SUSTAINED} samples"),
                    });
                }
            }
        }
        let r: Vec<f64> = series.residual_norm.iter().rev().take(SUSTAINED).copied().collect();
        if r.len() == SUSTAINED
            && r.windows(2).all(|p| p[0] >= p[1])
            && r[0] > 1.5 * r[SUSTAINED - 1]
            && r[0] > 0.0
        {
            out.push(Warning {
                worker: Some(*id),
                text: format!("worker {id} residual norm keeps growing ({:.3})", r[0]),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn worker(id: u32, state: model::WorkerState, step: u64) -> model::WorkerInfo {
        model::WorkerInfo { id, host: format!("host{id}"), state, step, loss: 0.5, ..Default::default() }
    }

    #[test]
    fn deltas_extend_the_snapshot() {
        let snap = model::JobSnapshot {
            job_name: "j".into(),
            state: model::JobState::Running,
            workers: vec![worker(0, model::WorkerState::Training, 10)],
            series: vec![model::WorkerSeries {
                worker: 0,
                time: vec![1.0],
                sparsity: vec![1e-3],
                samples_per_sec: vec![100.0],
                residual_norm: vec![0.1],
                tau: vec![1e-3],
            }],
            loss: vec![model::LossPoint { time: 1.0, loss: 2.0 }],
            ..Default::default()
        };
        let mut v = JobView::from_snapshot(snap);
        v.apply(model::JobDelta {
            state: Some(model::JobState::Running),
            workers: vec![
                worker(0, model::WorkerState::Training, 20),
                worker(1, model::WorkerState::Starting, 0),
            ],
            new_loss: vec![model::LossPoint { time: 2.0, loss: 1.5 }],
            new_samples: vec![model::WorkerSeries {
                worker: 0,
                time: vec![2.0],
                sparsity: vec![2e-3],
                samples_per_sec: vec![110.0],
                residual_norm: vec![0.2],
                tau: vec![1e-3],
            }],
            new_epochs: vec![model::EpochPoint { epoch: 0, test_accuracy: Some(0.8), ..Default::default() }],
            ..Default::default()
        });
        assert_eq!(v.workers.len(), 2);
        assert_eq!(v.workers[&0].step, 20);
        assert_eq!(v.loss.len(), 2);
        assert_eq!(v.series[&0].sparsity, [1e-3, 2e-3]);
        assert_eq!(v.epochs.len(), 1);
        v.apply(model::JobDelta {
            state: Some(model::JobState::Finished),
            removed_workers: vec![1],
            ..Default::default()
        });
        assert_eq!(v.workers.len(), 1);
        assert_eq!(v.state, model::JobState::Finished);
    }

    #[test]
    fn series_stay_bounded() {
        let mut s = Series::default();
        let chunk = model::WorkerSeries {
            worker: 0,
            time: vec![0.0; 500],
            sparsity: vec![0.0; 500],
            samples_per_sec: vec![0.0; 500],
            residual_norm: vec![0.0; 500],
            tau: vec![0.0; 500],
        };
        s.extend(&chunk);
        s.extend(&chunk);
        assert_eq!(s.time.len(), SERIES);
        assert_eq!(s.tau.len(), SERIES);
    }

    /// The coordinator's verdict on the last epoch is a warning; once a later epoch is fine,
    /// it goes.
    #[test]
    fn a_diverged_epoch_warns_until_a_later_one_is_fine() {
        let why = "its test loss 92.0000 is worse than guessing";
        let mut job = JobView { state: model::JobState::Running, ..Default::default() };
        job.epochs.push(model::EpochPoint { epoch: 0, divergence: Some(why.into()), ..Default::default() });
        let w = warnings(&job);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].text.starts_with("epoch 1 looks diverged (lower the learning rate")
                && w[0].text.ends_with(why)
        );
        job.epochs.push(model::EpochPoint { epoch: 1, test_accuracy: Some(0.7), ..Default::default() });
        assert!(warnings(&job).is_empty());
    }

    #[test]
    fn launch_problems_are_warnings() {
        let job =
            JobView { launch_problems: vec!["host n2: Connection refused".into()], ..Default::default() };
        assert_eq!(warnings(&job)[0].text, "launch: host n2: Connection refused");
    }

    #[test]
    fn warnings_for_band_growth_lag_loss_and_nan() {
        let mut job =
            JobView { state: model::JobState::Running, band: Some((1e-4, 1e-2)), ..Default::default() };
        job.workers.insert(0, worker(0, model::WorkerState::Training, 1000));
        let mut lagging = worker(1, model::WorkerState::Training, 100);
        lagging.lag = 900;
        job.workers.insert(1, lagging);
        job.workers.insert(
            2,
            model::WorkerInfo {
                detail: "no heartbeat for 11 s".into(),
                ..worker(2, model::WorkerState::Lost, 0)
            },
        );
        let mut s = Series::default();
        for i in 0..SUSTAINED {
            s.time.push_back(i as f64);
            s.sparsity.push_back(0.05);
            s.residual_norm.push_back(1.0 + i as f64);
        }
        job.series.insert(0, s);
        let w: Vec<String> = warnings(&job).into_iter().map(|w| w.text).collect();
        assert!(w.iter().any(|t| t.contains("worker 0 sparsity above the band")), "{w:?}");
        assert!(w.iter().any(|t| t.contains("worker 0 residual norm keeps growing")), "{w:?}");
        assert!(w.iter().any(|t| t.contains("worker 1 lags 900 steps")), "{w:?}");
        assert!(w.iter().any(|t| t == "worker 2 lost: no heartbeat for 11 s"), "{w:?}");
        job.loss.push_back(model::LossPoint { time: 1.0, loss: f64::NAN });
        assert!(warnings(&job)[0].text.contains("NaN"));
        job.state = model::JobState::Finished;
        job.loss.clear();
        assert_eq!(warnings(&job).len(), 1, "only the lost worker once the job is over");
    }

    #[test]
    fn log_filters() {
        let mut logs = Logs { min_level: 2, ..Default::default() };
        let rec = |level: &str, worker: Option<u32>| model::LogRecord {
            level: level.into(),
            worker,
            message: "m".into(),
            ..Default::default()
        };
        logs.push(model::LogBatch {
            records: vec![rec("DEBUG", None), rec("INFO", None), rec("WARN", Some(1)), rec("ERROR", Some(2))],
        });
        assert_eq!(logs.visible().count(), 3);
        logs.source = Some(Some(1));
        assert_eq!(logs.visible().count(), 1);
        logs.source = Some(None);
        assert_eq!(logs.visible().count(), 1);
        logs.min_level = 4;
        logs.source = None;
        assert_eq!(logs.visible().count(), 1);
    }
}
