//! The cockpit's own types for what the coordinator sends. Wire (protobuf) types are converted
//! into these where they arrive (`conn`, tokio-console's rule), so the rest of the cockpit never
//! sees a raw enum number or a field it does not use. The conversions, in `wire`, are the only
//! code here that names the protobuf types.

/// Where the job is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JobState {
    #[default]
    Unspecified,
    /// Loaded, not started.
    Ready,
    Running,
    Paused,
    Finished,
    Failed,
    Stopped,
    /// No job loaded.
    Idle,
}

/// What a worker is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WorkerState {
    #[default]
    Unspecified,
    Starting,
    Training,
    Waiting,
    Lost,
    Done,
    Failed,
}

/// How a job key's value is edited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldKind {
    #[default]
    Unspecified,
    Text,
    Integer,
    Float,
    Choice,
    Bool,
    List,
    Location,
}

/// The whole job, sent first on the watch stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSnapshot {
    pub job_name: String,
    pub job_toml: String,
    pub state: JobState,
    pub state_detail: String,
    pub progress: Option<JobProgress>,
    pub workers: Vec<WorkerInfo>,
    pub epochs: Vec<EpochPoint>,
    pub loss: Vec<LossPoint>,
    pub totals: Option<Totals>,
    /// Target band of the sparsity ratio; absent for a fixed tau.
    pub band_low: Option<f64>,
    pub band_high: Option<f64>,
    pub sharing_mode: String,
    pub parameters: u64,
    pub coordinator: String,
    /// Per-worker recent samples, oldest first.
    pub series: Vec<WorkerSeries>,
    pub launch_problems: Vec<String>,
    /// The model, layer by layer.
    pub model: Vec<ModelLayer>,
    /// Where the run's model was saved (once it ended); empty until then.
    pub model_dir: String,
}

/// What changed since the last update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobDelta {
    /// None: a state this cockpit does not know (the last known one stays).
    pub state: Option<JobState>,
    pub state_detail: String,
    pub progress: Option<JobProgress>,
    /// Workers whose info changed (complete).
    pub workers: Vec<WorkerInfo>,
    pub removed_workers: Vec<u32>,
    pub new_epochs: Vec<EpochPoint>,
    pub new_loss: Vec<LossPoint>,
    pub totals: Option<Totals>,
    pub new_samples: Vec<WorkerSeries>,
    /// All launch problems so far.
    pub launch_problems: Vec<String>,
    /// Where the run's model was saved; empty until then.
    pub model_dir: String,
}

/// Where training is and how fast it goes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobProgress {
    pub epoch: u32,
    pub epochs: u32,
    pub partitions_done: u32,
    pub partitions_total: u32,
    pub elapsed_seconds: f64,
    /// Negative when unknown.
    pub eta_seconds: f64,
    pub samples_per_sec: f64,
}

/// One worker as last reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerInfo {
    pub id: u32,
    pub host: String,
    pub device: String,
    pub state: WorkerState,
    pub samples_per_sec: f64,
    pub sparsity: f64,
    pub tau: f32,
    pub residual_norm: f64,
    /// Steps behind the most advanced worker.
    pub lag: u64,
    /// Seconds since the last heartbeat or report.
    pub last_heartbeat: f64,
    pub step: u64,
    pub loss: f32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub merged: u64,
    pub memory_used: u64,
    pub memory_total: u64,
    pub detail: String,
    /// The last step's figures per layer (threshold sharing).
    pub layers: Vec<LayerShare>,
    /// Restarts of this worker's process after a crash.
    pub restarts: u32,
    /// Top-k: the last step's k; PowerSGD: the rank (0 while dense).
    pub k: u64,
    pub rank: u32,
    /// Bytes sent in its last step.
    pub step_bytes: u64,
    /// Its step time: the mean of its last steps, in seconds.
    pub step_seconds: f64,
    /// Slower than 1.25x the median of the other workers' step times.
    pub straggler: bool,
    /// Updates waiting to be applied after its last step (its relay queue).
    pub pending: u32,
}

/// One layer's share of a worker's last update message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerShare {
    /// The layer's index in the model.
    pub layer: u32,
    pub entries: u64,
    pub residual_norm: f64,
}

/// Recent samples of one worker, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerSeries {
    pub worker: u32,
    pub time: Vec<f64>,
    pub sparsity: Vec<f64>,
    pub samples_per_sec: Vec<f64>,
    pub residual_norm: Vec<f64>,
    pub tau: Vec<f64>,
}

/// The end of an epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochPoint {
    pub epoch: u32,
    pub test_accuracy: Option<f64>,
    /// A language model's held-out loss in nats per token (`None` for other models).
    pub language_loss: Option<f64>,
    /// Why the run looked diverged at this epoch, when it did.
    pub divergence: Option<String>,
}

/// The training loss at a time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LossPoint {
    pub time: f64,
    pub loss: f64,
}

/// Job-wide totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub bytes_sent: u64,
    pub compression_ratio: f64,
}

/// One layer of a model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelLayer {
    pub index: u32,
    /// "conv2d 3x3 32 same relu".
    pub description: String,
    /// "32x28x28".
    pub output: String,
    pub parameters: u64,
}

/// Log lines, as the log stream sends them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogBatch {
    pub records: Vec<LogRecord>,
}

/// One log line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogRecord {
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub level: String,
    pub message: String,
    /// None for the coordinator's own lines.
    pub worker: Option<u32>,
}

/// The job form: every key, its problems, and the job as TOML.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobForm {
    pub fields: Vec<FormField>,
    pub problems: Vec<KeyProblem>,
    pub toml: String,
}

/// One key of the job form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FormField {
    /// Dotted key, e.g. "train.batch_size".
    pub key: String,
    /// As written in TOML (strings unquoted).
    pub value: String,
    pub kind: FieldKind,
    pub choices: Vec<String>,
    pub help: String,
    /// job, data, model, train, sharing, cluster or compute.
    pub section: String,
    /// Shown while its section is folded.
    pub common: bool,
}

/// What is wrong with a key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyProblem {
    pub key: String,
    pub message: String,
}

/// What checking a job (with its data locations) found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidateReply {
    pub problems: Vec<KeyProblem>,
    /// "60000 examples x 784 features, 10 classes".
    pub data_summary: String,
    /// Tables: the schema after the transform process.
    pub data_columns: Vec<DataColumn>,
    pub model: Vec<ModelLayer>,
    pub model_summary: String,
}

/// One column of a table's schema.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataColumn {
    pub name: String,
    pub r#type: String,
    pub label: bool,
}

/// The conversions from the wire: the one place (with `conn`'s calls) that names `pb` types.
mod wire {
    use strom_proto::v1 as pb;

    use super::*;

    fn all<T, U: From<T>>(v: Vec<T>) -> Vec<U> {
        v.into_iter().map(U::from).collect()
    }

    fn job_state(v: i32) -> Option<JobState> {
        pb::JobState::try_from(v).ok().map(|s| match s {
            pb::JobState::Unspecified => JobState::Unspecified,
            pb::JobState::Ready => JobState::Ready,
            pb::JobState::Running => JobState::Running,
            pb::JobState::Paused => JobState::Paused,
            pb::JobState::Finished => JobState::Finished,
            pb::JobState::Failed => JobState::Failed,
            pb::JobState::Stopped => JobState::Stopped,
            pb::JobState::Idle => JobState::Idle,
        })
    }

    fn worker_state(v: i32) -> WorkerState {
        match pb::WorkerState::try_from(v).unwrap_or_default() {
            pb::WorkerState::Unspecified => WorkerState::Unspecified,
            pb::WorkerState::Starting => WorkerState::Starting,
            pb::WorkerState::Training => WorkerState::Training,
            pb::WorkerState::Waiting => WorkerState::Waiting,
            pb::WorkerState::Lost => WorkerState::Lost,
            pb::WorkerState::Done => WorkerState::Done,
            pb::WorkerState::Failed => WorkerState::Failed,
        }
    }

    fn field_kind(v: i32) -> FieldKind {
        match pb::FieldKind::try_from(v).unwrap_or_default() {
            pb::FieldKind::Unspecified => FieldKind::Unspecified,
            pb::FieldKind::Text => FieldKind::Text,
            pb::FieldKind::Integer => FieldKind::Integer,
            pb::FieldKind::Float => FieldKind::Float,
            pb::FieldKind::Choice => FieldKind::Choice,
            pb::FieldKind::Bool => FieldKind::Bool,
            pb::FieldKind::List => FieldKind::List,
            pb::FieldKind::Location => FieldKind::Location,
        }
    }

    impl From<pb::JobSnapshot> for JobSnapshot {
        fn from(s: pb::JobSnapshot) -> Self {
            JobSnapshot {
                job_name: s.job_name,
                job_toml: s.job_toml,
                state: job_state(s.state).unwrap_or_default(),
                state_detail: s.state_detail,
                progress: s.progress.map(Into::into),
                workers: all(s.workers),
                epochs: all(s.epochs),
                loss: all(s.loss),
                totals: s.totals.map(Into::into),
                band_low: s.band_low,
                band_high: s.band_high,
                sharing_mode: s.sharing_mode,
                parameters: s.parameters,
                coordinator: s.coordinator,
                series: all(s.series),
                launch_problems: s.launch_problems,
                model: all(s.model),
                model_dir: s.model_dir,
            }
        }
    }

    impl From<pb::JobDelta> for JobDelta {
        fn from(d: pb::JobDelta) -> Self {
            JobDelta {
                state: job_state(d.state),
                state_detail: d.state_detail,
                progress: d.progress.map(Into::into),
                workers: all(d.workers),
                removed_workers: d.removed_workers,
                new_epochs: all(d.new_epochs),
                new_loss: all(d.new_loss),
                totals: d.totals.map(Into::into),
                new_samples: all(d.new_samples),
                launch_problems: d.launch_problems,
                model_dir: d.model_dir,
            }
        }
    }

    impl From<pb::JobProgress> for JobProgress {
        fn from(p: pb::JobProgress) -> Self {
            JobProgress {
                epoch: p.epoch,
                epochs: p.epochs,
                partitions_done: p.partitions_done,
                partitions_total: p.partitions_total,
                elapsed_seconds: p.elapsed_seconds,
                eta_seconds: p.eta_seconds,
                samples_per_sec: p.samples_per_sec,
            }
        }
    }

    impl From<pb::WorkerInfo> for WorkerInfo {
        fn from(w: pb::WorkerInfo) -> Self {
            WorkerInfo {
                id: w.id,
                host: w.host,
                device: w.device,
                state: worker_state(w.state),
                samples_per_sec: w.samples_per_sec,
                sparsity: w.sparsity,
                tau: w.tau,
                residual_norm: w.residual_norm,
                lag: w.lag,
                last_heartbeat: w.last_heartbeat,
                step: w.step,
                loss: w.loss,
                bytes_sent: w.bytes_sent,
                bytes_received: w.bytes_received,
                merged: w.merged,
                memory_used: w.memory_used,
                memory_total: w.memory_total,
                detail: w.detail,
                layers: all(w.layers),
                restarts: w.restarts,
                k: w.k,
                rank: w.rank,
                step_bytes: w.step_bytes,
                step_seconds: w.step_seconds,
                straggler: w.straggler,
                pending: w.pending,
            }
        }
    }

    impl From<pb::LayerShare> for LayerShare {
        fn from(l: pb::LayerShare) -> Self {
            LayerShare { layer: l.layer, entries: l.entries, residual_norm: l.residual_norm }
        }
    }

    impl From<pb::WorkerSeries> for WorkerSeries {
        fn from(s: pb::WorkerSeries) -> Self {
            WorkerSeries {
                worker: s.worker,
                time: s.time,
                sparsity: s.sparsity,
                samples_per_sec: s.samples_per_sec,
                residual_norm: s.residual_norm,
                tau: s.tau,
            }
        }
    }

    impl From<pb::EpochPoint> for EpochPoint {
        fn from(e: pb::EpochPoint) -> Self {
            EpochPoint {
                epoch: e.epoch,
                test_accuracy: e.test_accuracy,
                language_loss: (e.language && e.test_loss.is_finite()).then_some(e.test_loss),
                divergence: (!e.divergence.is_empty()).then_some(e.divergence),
            }
        }
    }

    impl From<pb::LossPoint> for LossPoint {
        fn from(l: pb::LossPoint) -> Self {
            LossPoint { time: l.time, loss: l.loss }
        }
    }

    impl From<pb::Totals> for Totals {
        fn from(t: pb::Totals) -> Self {
            Totals { bytes_sent: t.bytes_sent, compression_ratio: t.compression_ratio }
        }
    }

    impl From<pb::ModelLayer> for ModelLayer {
        fn from(m: pb::ModelLayer) -> Self {
            ModelLayer {
                index: m.index,
                description: m.description,
                output: m.output,
                parameters: m.parameters,
            }
        }
    }

    impl From<pb::LogBatch> for LogBatch {
        fn from(b: pb::LogBatch) -> Self {
            LogBatch { records: all(b.records) }
        }
    }

    impl From<pb::LogRecord> for LogRecord {
        fn from(r: pb::LogRecord) -> Self {
            LogRecord { time: r.time, level: r.level, message: r.message, worker: r.worker }
        }
    }

    impl From<pb::JobForm> for JobForm {
        fn from(f: pb::JobForm) -> Self {
            JobForm { fields: all(f.fields), problems: all(f.problems), toml: f.toml }
        }
    }

    impl From<pb::FormField> for FormField {
        fn from(f: pb::FormField) -> Self {
            FormField {
                key: f.key,
                value: f.value,
                kind: field_kind(f.kind),
                choices: f.choices,
                help: f.help,
                section: f.section,
                common: f.common,
            }
        }
    }

    impl From<pb::KeyProblem> for KeyProblem {
        fn from(p: pb::KeyProblem) -> Self {
            KeyProblem { key: p.key, message: p.message }
        }
    }

    impl From<pb::ValidateReply> for ValidateReply {
        fn from(v: pb::ValidateReply) -> Self {
            ValidateReply {
                problems: all(v.problems),
                data_summary: v.data_summary,
                data_columns: all(v.data_columns),
                model: all(v.model),
                model_summary: v.model_summary,
            }
        }
    }

    impl From<pb::DataColumn> for DataColumn {
        fn from(c: pb::DataColumn) -> Self {
            DataColumn { name: c.name, r#type: c.r#type, label: c.label }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn enums_convert_and_unknown_values_fall_back() {
            let w = |state| WorkerInfo::from(pb::WorkerInfo { state, ..Default::default() }).state;
            assert_eq!(w(pb::WorkerState::Lost as i32), WorkerState::Lost);
            assert_eq!(w(99), WorkerState::Unspecified);
            let f = |kind| FormField::from(pb::FormField { kind, ..Default::default() }).kind;
            assert_eq!(f(pb::FieldKind::Location as i32), FieldKind::Location);
            assert_eq!(f(-1), FieldKind::Unspecified);
            let s = |state| JobSnapshot::from(pb::JobSnapshot { state, ..Default::default() }).state;
            assert_eq!(s(pb::JobState::Idle as i32), JobState::Idle);
            assert_eq!(s(99), JobState::Unspecified);
            let d = |state| JobDelta::from(pb::JobDelta { state, ..Default::default() }).state;
            assert_eq!(d(pb::JobState::Paused as i32), Some(JobState::Paused));
            assert_eq!(d(99), None, "an unknown state keeps the last one");
        }

        #[test]
        fn a_snapshot_converts_whole() {
            let s = JobSnapshot::from(pb::JobSnapshot {
                job_name: "j".into(),
                progress: Some(pb::JobProgress { epoch: 2, ..Default::default() }),
                workers: vec![pb::WorkerInfo {
                    id: 3,
                    layers: vec![pb::LayerShare { layer: 1, entries: 5, residual_norm: 0.5 }],
                    ..Default::default()
                }],
                band_low: Some(1e-4),
                model: vec![pb::ModelLayer { index: 1, description: "dense".into(), ..Default::default() }],
                ..Default::default()
            });
            assert_eq!(s.job_name, "j");
            assert_eq!(s.progress.map(|p| p.epoch), Some(2));
            assert_eq!(s.workers[0].id, 3);
            assert_eq!(s.workers[0].layers, [LayerShare { layer: 1, entries: 5, residual_norm: 0.5 }]);
            assert_eq!((s.band_low, s.band_high), (Some(1e-4), None));
            assert_eq!(s.model[0].description, "dense");
            assert!(s.totals.is_none());
        }
    }
}
