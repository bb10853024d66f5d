//! `JobSpec`: the one description of a training job. It is read from TOML job files, overridden
//! by `strom train` flags, edited in the cockpit's Setup form and carried in the wire protocol.
//! Loading validates everything and names the key of every problem.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::nn::layers::{HiddenLayer, LayerEntry, LayerSpec, Padding};
pub use crate::nn::{Activation, Init, Loss};
use crate::storage::{Location, StorageError};

pub mod keys;

/// The demo job: the Fashion-MNIST subset compiled into the binary.
pub const DEMO_TRAIN: &str = "builtin:fashion-mnist-demo/train";
pub const DEMO_TEST: &str = "builtin:fashion-mnist-demo/test";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSpec {
    /// A name for logs, the cockpit and checkpoints.
    pub name: String,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainSpec,
    pub sharing: SharingSpec,
    pub cluster: ClusterSpec,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            name: "fashion-mnist-demo".into(),
            data: DataSpec::default(),
            model: ModelSpec::default(),
            train: TrainSpec::default(),
            sharing: SharingSpec::default(),
            cluster: ClusterSpec::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    Idx,
    Csv,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    #[default]
    Classification,
    Regression,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSpec {
    /// Training data: a local path, file://, hdfs://, viewfs:// or builtin: location.
    pub train: String,
    /// Test data, evaluated after every epoch. Empty: the held-out rows, or no evaluation.
    pub test: String,
    pub format: DataFormat,
    /// Fraction of the training rows held out as test data when `test` is empty.
    pub holdout: f32,
    /// CSV: how files are read.
    pub csv: crate::data::csv::CsvOptions,
    /// CSV: a transform process (JSON) applied to every row, locally and on every worker.
    pub transform: String,
    /// CSV: the column to predict (after the transform).
    pub label: String,
    /// CSV: classification or regression.
    pub task: Task,
    /// CSV: the number of classes, for integer labels (default: found in the data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            train: DEMO_TRAIN.into(),
            test: DEMO_TEST.into(),
            format: DataFormat::Idx,
            holdout: 0.0,
            csv: Default::default(),
            transform: String::new(),
            label: String::new(),
            task: Task::Classification,
            num_classes: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPreset {
    /// Dense layers of `model.hidden` widths.
    Mlp,
    /// conv 3x3 32 same, max-pool 2, conv 3x3 64 same, max-pool 2, dense 128 (about 420k
    /// parameters on 28x28 images).
    Cnn,
    /// LeNet-5: conv 5x5 6 same, max-pool 2, conv 5x5 16 valid, max-pool 2, dense 120, dense 84.
    Lenet5,
}

impl ModelPreset {
    pub fn name(self) -> &'static str {
        match self {
            ModelPreset::Mlp => "mlp",
            ModelPreset::Cnn => "cnn",
            ModelPreset::Lenet5 => "lenet5",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSpec {
    pub preset: ModelPreset,
    /// Hidden layer widths of the MLP preset.
    pub hidden: Vec<usize>,
    /// Activation of the preset's hidden layers.
    pub activation: Activation,
    /// Dropout probability after each of the preset's hidden dense layers.
    pub dropout: f32,
    /// Explicit hidden layers (`[[model.layers]]` with a `type` key each); when set, the preset,
    /// `hidden`, `activation` and `dropout` are ignored. The output layer is always added.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerEntry>>,
    pub loss: Loss,
    pub init: Init,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            preset: ModelPreset::Mlp,
            hidden: vec![256, 128],
            activation: Activation::Relu,
            dropout: 0.0,
            layers: None,
            loss: Loss::Xent,
            init: Init::He,
        }
    }
}

impl ModelSpec {
    /// The hidden layers, whichever way they were given (the output layer comes after them).
    pub fn layers(&self) -> Vec<LayerSpec> {
        let mut out = Vec::new();
        if let Some(entries) = &self.layers {
            entries.iter().for_each(|e| e.expand(&mut out));
            return out;
        }
        let act = self.activation;
        let dense = |units: usize, out: &mut Vec<LayerSpec>| {
            LayerEntry::Hidden(HiddenLayer { units, activation: act, dropout: self.dropout }).expand(out)
        };
        match self.preset {
            ModelPreset::Mlp => self.hidden.iter().for_each(|&u| dense(u, &mut out)),
            ModelPreset::Cnn => {
                out.extend([
                    LayerSpec::conv(32, 3, Padding::Same, act),
                    LayerSpec::max_pool(2),
                    LayerSpec::conv(64, 3, Padding::Same, act),
                    LayerSpec::max_pool(2),
                ]);
                dense(128, &mut out);
            }
            ModelPreset::Lenet5 => {
                out.extend([
                    LayerSpec::conv(6, 5, Padding::Same, act),
                    LayerSpec::max_pool(2),
                    LayerSpec::conv(16, 5, Padding::Valid, act),
                    LayerSpec::max_pool(2),
                ]);
                dense(120, &mut out);
                dense(84, &mut out);
            }
        }
        out
    }

    /// The output activation that goes with the loss.
    pub fn output_activation(&self) -> Activation {
        match self.loss {
            Loss::Xent => Activation::Softmax,
            Loss::Mse => Activation::Identity,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdaterKind {
    Sgd,
    Nesterov,
    Adam,
    Rmsprop,
}

impl UpdaterKind {
    pub fn default_lr(self) -> f32 {
        match self {
            UpdaterKind::Sgd => 0.1,
            UpdaterKind::Nesterov => 0.01,
            UpdaterKind::Adam | UpdaterKind::Rmsprop => 1e-3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdaterSpec {
    /// sgd | nesterov | adam | rmsprop. Unset: nesterov with threshold sharing (Adam's
    /// per-entry scaling defeats threshold sparsification), adam otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<UpdaterKind>,
    /// Learning rate; default 0.1 for sgd, 0.01 for nesterov, 1e-3 for adam and rmsprop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f32>,
    /// Nesterov momentum.
    pub momentum: f32,
    /// Adam's first and second moment decay.
    pub beta1: f32,
    pub beta2: f32,
    /// RMSProp's decay of the squared-gradient average.
    pub rho: f32,
    pub epsilon: f32,
}

impl Default for UpdaterSpec {
    fn default() -> Self {
        UpdaterSpec {
            kind: None,
            lr: None,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            rho: 0.95,
            epsilon: 1e-8,
        }
    }
}

impl UpdaterSpec {
    /// The updater kind; must be resolved (see [`JobSpec::updater`]).
    pub fn kind(&self) -> UpdaterKind {
        self.kind.unwrap_or(UpdaterKind::Adam)
    }

    pub fn learning_rate(&self) -> f32 {
        self.lr.unwrap_or_else(|| self.kind().default_lr())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSpec {
    pub epochs: u32,
    /// Minibatch size, per worker.
    pub batch_size: usize,
    pub updater: UpdaterSpec,
    /// L2 regularisation of the weights (not biases), added to the gradient.
    pub l2: f32,
    pub seed: u64,
    /// Minibatches per data partition of the work queue that feeds the workers.
    pub batches_per_partition: usize,
    /// How the learning rate moves over the job.
    pub lr_schedule: LrSchedule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The learning rate throughout.
    Constant,
    /// Half a cosine from the learning rate down to zero over all epochs.
    Cosine,
}

impl LrSchedule {
    /// The factor on the learning rate at `progress` (0 at the start of the job, 1 at the end).
    pub fn scale(self, progress: f64) -> f32 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                (0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos())) as f32
            }
        }
    }
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: 5,
            batch_size: 64,
            updater: UpdaterSpec::default(),
            l2: 0.0,
            seed: 42,
            batches_per_partition: 8,
            lr_schedule: LrSchedule::Cosine,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharingMode {
    /// Threshold-encoded, residual-accumulated updates (Strom 2015).
    Threshold,
    /// Parameter averaging every `averaging_frequency` minibatches.
    Averaging,
    /// A single worker, no exchange.
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ThresholdSpec {
    /// Keep tau constant.
    Fixed {
        #[serde(default = "default_tau")]
        tau: f32,
    },
    /// Move tau so the fraction of entries sent stays within [min_sparsity, max_sparsity].
    Adaptive {
        #[serde(default = "default_tau")]
        initial: f32,
        #[serde(default = "default_min_sparsity")]
        min_sparsity: f32,
        #[serde(default = "default_max_sparsity")]
        max_sparsity: f32,
    },
    /// Move tau toward one target fraction of entries sent.
    Target {
        #[serde(default = "default_tau")]
        initial: f32,
        #[serde(default = "default_target")]
        target: f32,
    },
}

fn default_tau() -> f32 {
    1e-3
}
fn default_min_sparsity() -> f32 {
    1e-4
}
fn default_max_sparsity() -> f32 {
    1e-2
}
fn default_target() -> f32 {
    1e-3
}

impl Default for ThresholdSpec {
    fn default() -> Self {
        ThresholdSpec::Adaptive {
            initial: default_tau(),
            min_sparsity: default_min_sparsity(),
            max_sparsity: default_max_sparsity(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResidualClipSpec {
    /// Clip the residual to ±multiple·tau ...
    pub multiple: f32,
    /// ... every this many steps; 0 turns clipping off.
    pub every: u32,
}

impl Default for ResidualClipSpec {
    fn default() -> Self {
        ResidualClipSpec { multiple: 5.0, every: 5 }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharingSpec {
    /// threshold | averaging | none. Unset: threshold with several workers, none with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SharingMode>,
    pub algorithm: ThresholdSpec,
    pub residual_clip: ResidualClipSpec,
    /// Scale the residual and an adapting tau with the learning-rate schedule.
    pub follow_lr: bool,
    /// Minibatches between parameter averages (averaging mode).
    pub averaging_frequency: u32,
}

impl Default for SharingSpec {
    fn default() -> Self {
        SharingSpec {
            mode: None,
            algorithm: ThresholdSpec::default(),
            residual_clip: ResidualClipSpec::default(),
            follow_lr: true,
            averaging_frequency: 5,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LauncherKind {
    /// Workers are threads of this process.
    Embedded,
    /// Workers are `strom worker` processes on this machine.
    Local,
    /// Workers are started on SSH hosts.
    Ssh,
    /// Workers are Spark barrier tasks.
    Spark,
    /// Nothing is started; workers join by themselves.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Cpu,
    Cuda,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    pub launcher: LauncherKind,
    pub workers: usize,
    pub backend: BackendKind,
    /// CPU threads each worker computes with. 0: the machine's cores shared among the workers
    /// that run on it (embedded and local: all of them; SSH: those of one host; Spark: one).
    pub threads: usize,
    /// A worker that sends nothing for this long is lost; its partitions go back to the queue.
    pub heartbeat_timeout_secs: u64,
    /// A worker the job waits for (a partition, the barrier, an averaging round) that makes no
    /// training call for this long is lost even if it still heartbeats (a hung training
    /// thread); its partitions go back to the queue.
    pub step_timeout_secs: u64,
    /// Workers keep trying to reach a lost coordinator this long (long enough for it to restart
    /// and prepare the data again); a job with no live worker for this long fails.
    pub reconnect_secs: u64,
    /// Local and SSH launchers start a crashed worker again this many times (with backoff:
    /// 1, 2, 4, ... s); Spark relies on its own task retries.
    pub max_restarts: u32,
    /// With a checkpoint directory: write a checkpoint every this many steps (all workers'
    /// steps together), besides every epoch end. 0: epoch ends only.
    pub checkpoint_every: u64,
    /// SSH launcher: the hosts workers start on, in turn ("user@host", or a table with host,
    /// port and the binary's path there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostSpec>,
    /// SSH and Spark launchers: the job runs if at least this many workers start (hosts that
    /// cannot be reached are reported and skipped). Default: all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_workers: Option<usize>,
    pub ssh: SshSpec,
    pub spark: SparkSpec,
    /// backend = "cuda": the device ordinal (`--device cuda:N`).
    pub cuda_device: usize,
    /// backend = "cuda": train on the CPU (with a warning) where no CUDA device can be used,
    /// instead of stopping.
    pub cpu_fallback: bool,
}

/// How the Spark launcher submits worker tasks (the cockpit's and `strom train`'s; `strom
/// submit` takes the same settings as flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparkSpec {
    /// Spark master: local[N], spark://host:7077, yarn, k8s://...
    pub master: String,
    /// spark-submit to run [default: $SPARK_HOME/bin/spark-submit, else on PATH].
    pub submit: String,
    /// Extra spark-submit arguments.
    pub args: Vec<String>,
    /// Ship this binary to the executors with --files.
    pub ship_binary: bool,
}

impl Default for SparkSpec {
    fn default() -> Self {
        SparkSpec { master: "local[2]".into(), submit: String::new(), args: vec![], ship_binary: false }
    }
}

/// An SSH host: "user@host" or `{ host = "user@host", port = 2222, binary = "/opt/strom" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostSpec {
    Name(String),
    Full(HostTable),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTable {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The `strom` binary on that host [default: cluster.ssh.binary].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

impl HostSpec {
    pub fn host(&self) -> &str {
        match self {
            HostSpec::Name(h) => h,
            HostSpec::Full(t) => &t.host,
        }
    }
    pub fn port(&self) -> Option<u16> {
        match self {
            HostSpec::Name(_) => None,
            HostSpec::Full(t) => t.port,
        }
    }
    pub fn binary<'a>(&'a self, default: &'a str) -> &'a str {
        match self {
            HostSpec::Full(HostTable { binary: Some(b), .. }) => b,
            _ => default,
        }
    }
}

/// How the SSH launcher reaches hosts and what it runs there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSpec {
    /// The `strom` binary on the hosts: a path, or a name found on their PATH.
    pub binary: String,
    /// Copy this machine's binary there with scp when a host lacks it (same OS and CPU family).
    pub copy_binary: bool,
    /// Extra arguments for ssh and scp (e.g. ["-i", "~/.ssh/cluster", "-o", "ProxyJump=gw"]).
    pub options: Vec<String>,
    /// The coordinator's URL as the hosts reach it [default: this machine's host name and the
    /// coordinator's port].
    pub coordinator_url: String,
    /// Seconds to wait for a host to answer.
    pub connect_timeout_secs: u64,
}

impl Default for SshSpec {
    fn default() -> Self {
        SshSpec {
            binary: "strom".into(),
            copy_binary: false,
            options: vec![],
            coordinator_url: String::new(),
            connect_timeout_secs: 10,
        }
    }
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            launcher: LauncherKind::Embedded,
            workers: 1,
            backend: BackendKind::Cpu,
            threads: 0,
            heartbeat_timeout_secs: 10,
            step_timeout_secs: 300,
            reconnect_secs: 300,
            max_restarts: 3,
            checkpoint_every: 200,
            hosts: vec![],
            min_workers: None,
            ssh: SshSpec::default(),
            spark: SparkSpec::default(),
            cuda_device: 0,
            cpu_fallback: false,
        }
    }
}

/// The cores this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl JobSpec {
    /// CPU threads per worker (see [`ClusterSpec::threads`]).
    pub fn threads_per_worker(&self) -> usize {
        let c = &self.cluster;
        if c.threads > 0 {
            return c.threads;
        }
        let sharing = match c.launcher {
            LauncherKind::Embedded | LauncherKind::Local | LauncherKind::None => c.workers,
            LauncherKind::Ssh => {
                let mut hosts: Vec<&str> = c.hosts.iter().map(HostSpec::host).collect();
                hosts.sort_unstable();
                hosts.dedup();
                c.workers.div_ceil(hosts.len().max(1))
            }
            LauncherKind::Spark => return 1,
        };
        (available_cores() / sharing.max(1)).max(1)
    }

    /// The keys that choose programs a coordinator runs for this job, with their values as
    /// text (a coordinator compares a submitted job's against its own: see
    /// `CoordinatorConfig::allow_job_commands`).
    pub fn launch_commands(&self) -> Vec<(&'static str, String)> {
        let c = &self.cluster;
        let hosts: Vec<&str> = c.hosts.iter().map(|h| h.binary(&c.ssh.binary)).collect();
        vec![
            ("cluster.spark.submit", c.spark.submit.clone()),
            ("cluster.spark.args", c.spark.args.join("\u{1f}")),
            ("cluster.ssh.options", c.ssh.options.join("\u{1f}")),
            ("cluster.ssh.binary", c.ssh.binary.clone()),
            ("cluster.hosts", hosts.join("\u{1f}")),
        ]
    }

    /// The sharing mode in effect (see [`SharingSpec::mode`]).
    pub fn sharing_mode(&self) -> SharingMode {
        self.sharing.mode.unwrap_or(if self.cluster.workers > 1 {
            SharingMode::Threshold
        } else {
            SharingMode::None
        })
    }

    /// The updater with its kind and learning rate resolved from the defaults.
    pub fn updater(&self) -> UpdaterSpec {
        let mut u = self.train.updater.clone();
        let kind = u.kind.unwrap_or(match self.sharing_mode() {
            SharingMode::Threshold => UpdaterKind::Nesterov,
            SharingMode::Averaging | SharingMode::None => UpdaterKind::Adam,
        });
        u.kind = Some(kind);
        u.lr = Some(u.lr.unwrap_or(kind.default_lr()));
        u
    }

    /// Parses and validates a job file's text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<JobSpec, JobError> {
        let job = JobSpec::parse_toml(text, file)?;
        job.validate().map_err(|errors| JobError::Invalid { file: Some(file.to_string()), errors })?;
        Ok(job)
    }

    /// Parses a job file's text without the range checks of [`JobSpec::validate`].
    pub fn parse_toml(text: &str, file: &str) -> Result<JobSpec, JobError> {
        let de = toml::Deserializer::parse(text).map_err(|e| JobError::Syntax {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        let job: JobSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map(|s| line_of(text, s.start));
            let (key, message) = explain_serde_error(&key, inner.message());
            JobError::Invalid { file: Some(file.to_string()), errors: vec![KeyError { key, line, message }] }
        })?;
        Ok(job)
    }

    /// Reads and validates a job file.
    pub fn load(location: &Location) -> Result<JobSpec, JobError> {
        let bytes =
            location.read().map_err(|source| JobError::Read { file: location.to_string(), source })?;
        let text = String::from_utf8(bytes).map_err(|_| JobError::Syntax {
            file: location.to_string(),
            line: None,
            message: "not UTF-8 text".into(),
        })?;
        JobSpec::from_toml(&text, &location.to_string())
    }

    /// The job as TOML text (what `--save-job` and the cockpit write).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render job: {e}\n"))
    }

    /// Range and consistency checks; every problem names its key.
    pub fn validate(&self) -> Result<(), Vec<KeyError>> {
        let mut v = Checks::default();
        // Each key's own rule (ranges, positivity) comes from its definition in `keys`.
        for key in keys::KEYS {
            if let Some(message) = key.check(self) {
                v.fail(key.name, message);
            }
        }
        // What relates keys to each other, or looks inside a value, is checked here.
        v.check("data.train", !self.data.train.trim().is_empty(), || "must name the training data".into());
        for (key, value) in [("data.train", &self.data.train), ("data.test", &self.data.test)] {
            if !value.trim().is_empty()
                && let Err(e) = Location::parse(value)
            {
                v.fail(key, e.to_string());
            }
        }
        let d = &self.data;
        if let Err(e) = d.csv.check() {
            v.fail("data.csv", e);
        }
        if d.format == DataFormat::Csv {
            v.check("data.label", !d.label.trim().is_empty(), || {
                "CSV data needs the column to predict".into()
            });
        }
        if !d.transform.trim().is_empty() {
            v.check("data.transform", d.format == DataFormat::Csv, || {
                "transform processes apply to CSV data (data.format = \"csv\")".into()
            });
            if let Err(e) = Location::parse(&d.transform) {
                v.fail("data.transform", e.to_string());
            }
        }
        let m = &self.model;
        match &m.layers {
            Some(entries) => {
                v.check("model.layers", entries.len() <= 64, || {
                    format!("at most 64 layers (got {})", entries.len())
                });
                for (i, entry) in entries.iter().enumerate() {
                    match entry {
                        LayerEntry::Layer(l) => {
                            for (field, message) in l.layer().check() {
                                v.fail(&format!("model.layers[{i}].{field}"), message);
                            }
                        }
                        LayerEntry::Hidden(h) => {
                            let key = format!("model.layers[{i}]");
                            v.check(&key, (1..=65_536).contains(&h.units), || {
                                format!("layer widths must be 1..=65536 (got {})", h.units)
                            });
                            v.check(&key, (0.0..1.0).contains(&h.dropout), || {
                                format!("dropout must be in [0, 1) (got {})", h.dropout)
                            });
                        }
                    }
                }
            }
            None => {
                v.check("model.hidden", m.hidden.len() <= 16, || {
                    format!("at most 16 hidden layers (got {})", m.hidden.len())
                });
                for &units in &m.hidden {
                    v.check("model.hidden", (1..=65_536).contains(&units), || {
                        format!("layer widths must be 1..=65536 (got {units})")
                    });
                }
                v.check("model.activation", m.activation != Activation::Softmax, || {
                    "softmax as a hidden activation must be given per layer in model.layers".into()
                });
            }
        }
        let s = &self.sharing;
        if let ThresholdSpec::Adaptive { min_sparsity, max_sparsity, .. } = s.algorithm {
            v.check("sharing.algorithm.max_sparsity", min_sparsity < max_sparsity, || {
                format!("must be above min_sparsity ({max_sparsity} ≤ {min_sparsity})")
            });
        }
        let c = &self.cluster;
        if let Some(m) = c.min_workers {
            v.check("cluster.min_workers", (1..=c.workers).contains(&m), || {
                format!("must be 1..=cluster.workers ({}) (got {m})", c.workers)
            });
        }
        v.check("cluster.hosts", c.launcher != LauncherKind::Ssh || !c.hosts.is_empty(), || {
            "the ssh launcher needs hosts, e.g. hosts = [\"alice@node1\", \"alice@node2\"]".into()
        });
        for (i, h) in c.hosts.iter().enumerate() {
            let host = h.host();
            v.check(
                "cluster.hosts",
                !host.trim().is_empty() && !host.starts_with('-') && !host.contains(char::is_whitespace),
                || format!("entry {i}: '{host}' is not a host name (expected user@host or host)"),
            );
        }
        v.check("sharing.mode", !(s.mode == Some(SharingMode::None) && c.workers > 1), || {
            format!(
                "'none' trains a single worker but cluster.workers = {}; use threshold or averaging",
                c.workers
            )
        });
        v.finish()
    }

    /// Checks that the data locations exist and are readable (the cockpit's and `Validate`'s
    /// "does this path exist"); slow for remote locations.
    pub fn check_paths(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        for (key, value) in [
            ("data.train", &self.data.train),
            ("data.test", &self.data.test),
            ("data.transform", &self.data.transform),
        ] {
            if value.trim().is_empty() {
                continue;
            }
            let problem = match Location::parse(value) {
                Err(e) => Some(e.to_string()),
                Ok(loc) if key == "data.transform" => {
                    crate::data::transform::TransformProcess::load(&loc).err().map(|e| e.to_string())
                }
                Ok(loc) => match crate::data::resolve_inputs(&loc, &self.data) {
                    Ok(_) => None,
                    Err(e) => Some(e.to_string()),
                },
            };
            if let Some(message) = problem {
                errors.push(KeyError { key: key.into(), line: None, message });
            }
        }
        errors
    }
}

#[derive(Default)]
struct Checks {
    errors: Vec<KeyError>,
}

impl Checks {
    fn check(&mut self, key: &str, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(key, message());
        }
    }
    fn fail(&mut self, key: &str, message: String) {
        self.errors.push(KeyError { key: key.into(), line: None, message });
    }
    fn finish(self) -> Result<(), Vec<KeyError>> {
        if self.errors.is_empty() { Ok(()) } else { Err(self.errors) }
    }
}

/// A problem with one key of a job.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyError {
    /// Dotted key path, e.g. `train.batch_size`.
    pub key: String,
    /// Line in the job file, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: `{}`: {}", self.key, self.message),
            None => write!(f, "`{}`: {}", self.key, self.message),
        }
    }
}

impl JobError {
    /// The problems as key errors (syntax and read errors under the key "(file)").
    pub fn key_errors(&self) -> Vec<KeyError> {
        match self {
            JobError::Invalid { errors, .. } => errors.clone(),
            JobError::Syntax { line, message, .. } => {
                vec![KeyError { key: "(file)".into(), line: *line, message: message.clone() }]
            }
            JobError::Read { source, .. } => {
                vec![KeyError { key: "(file)".into(), line: None, message: source.to_string() }]
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read job file {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: StorageError,
    },
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax { file: String, line: Option<usize>, message: String },
    #[error("{}invalid job:\n{}", file.as_ref().map(|f| format!("{f}: ")).unwrap_or_default(), list(errors))]
    Invalid { file: Option<String>, errors: Vec<KeyError> },
}

fn list(errors: &[KeyError]) -> String {
    errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n")
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into a key path and a message
/// that suggests the nearest valid name.
fn explain_serde_error(path: &str, message: &str) -> (String, String) {
    let path = if path == "." { String::new() } else { path.to_string() };
    let backticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    for (prefix, what) in [("unknown field", "key"), ("unknown variant", "value")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let got = backticked.first().copied().unwrap_or_default();
            let expected: Vec<&str> =
                if rest.contains("expected") { backticked[1..].to_vec() } else { vec![] };
            // serde_path_to_error's path already ends with the offending key.
            let key = if path.is_empty() { got.to_string() } else { path.clone() };
            let mut msg = format!("unknown {what} '{got}'");
            match nearest(got, &expected) {
                Some(best) => msg.push_str(&format!("; did you mean '{best}'?")),
                None if !expected.is_empty() => {
                    msg.push_str(&format!("; expected one of: {}", expected.join(", ")))
                }
                None => {}
            }
            return (key, msg);
        }
    }
    let key = if path.is_empty() { "(top level)".into() } else { path };
    (key, message.to_string())
}

/// The candidate closest to `got`, if it is close enough to be a plausible typo.
pub fn nearest<'a>(got: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(got, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        JobSpec::from_toml(text, "job.toml").unwrap_err().to_string()
    }

    #[test]
    fn empty_file_is_the_demo_job() {
        let job = JobSpec::from_toml("", "job.toml").unwrap();
        assert_eq!(job, JobSpec::default());
        assert_eq!(job.data.train, DEMO_TRAIN);
        assert_eq!(job.sharing_mode(), SharingMode::None);
    }

    #[test]
    fn full_job_round_trips_through_toml() {
        let text = r#"
name = "fmnist"
[data]
train = "hdfs://namenode:9000/datasets/fashion/train"
test = "assets/x/test"
format = "idx"
[model]
preset = "mlp"
hidden = [64, 32]
dropout = 0.1
init = "xavier"
[train]
epochs = 3
batch_size = 64
updater = { kind = "nesterov", lr = 0.05, momentum = 0.8 }
l2 = 1e-4
[sharing]
mode = "threshold"
algorithm = { kind = "target", initial = 2e-3, target = 1e-3 }
residual_clip = { multiple = 4.0, every = 10 }
[cluster]
workers = 4
"#;
        let job = JobSpec::from_toml(text, "job.toml").unwrap();
        assert_eq!(job.train.updater.kind, Some(UpdaterKind::Nesterov));
        assert_eq!(job.updater().learning_rate(), 0.05);
        assert_eq!(job.sharing.algorithm, ThresholdSpec::Target { initial: 2e-3, target: 1e-3 });
        let again = JobSpec::from_toml(&job.to_toml(), "again.toml").unwrap();
        assert_eq!(again, job);
    }

    #[test]
    fn unknown_keys_suggest_the_nearest_and_name_the_line() {
        let e = err("[train]\nepochs = 2\nbatchsize = 3\n");
        assert!(e.contains("`train.batchsize`"), "{e}");
        assert!(e.contains("did you mean 'batch_size'"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = err("[trian]\nepochs = 2\n");
        assert!(e.contains("did you mean 'train'"), "{e}");
        let e = err("[train]\nupdater = { kind = \"adma\" }\n");
        assert!(e.contains("`train.updater.kind`") && e.contains("did you mean 'adam'"), "{e}");
        let e = err("[sharing]\nalgorithm = { kind = \"adaptive\", intial = 1e-3 }\n");
        assert!(e.contains("did you mean 'initial'"), "{e}");
        let e = err("[model]\nzzzz = 1\n");
        assert!(e.contains("expected one of"), "{e}");
    }

    #[test]
    fn wrong_types_and_syntax_name_the_key_or_line() {
        let e = err("[train]\nepochs = \"ten\"\n");
        assert!(e.contains("`train.epochs`") && e.contains("line 2"), "{e}");
        let e = err("[train\nepochs = 1\n");
        assert!(e.starts_with("job.toml:1"), "{e}");
    }

    #[test]
    fn ranges_are_checked_and_every_error_is_listed() {
        let e = err("[train]\nepochs = 0\nbatch_size = 0\nupdater = { kind = \"adam\", lr = -1.0 }\n");
        assert!(e.contains("`train.epochs`: must be 1..=100000 (got 0)"), "{e}");
        assert!(e.contains("`train.batch_size`"), "{e}");
        assert!(e.contains("`train.updater.lr`"), "{e}");
        let e =
            err("[sharing]\nalgorithm = { kind = \"adaptive\", min_sparsity = 0.1, max_sparsity = 0.01 }\n");
        assert!(e.contains("`sharing.algorithm.max_sparsity`: must be above"), "{e}");
        let e = err("[sharing]\nmode = \"none\"\n[cluster]\nworkers = 3\n");
        assert!(e.contains("`sharing.mode`"), "{e}");
        let e = err("[data]\ntrain = \"s3://bucket/x\"\n");
        assert!(e.contains("`data.train`") && e.contains("unsupported scheme"), "{e}");
        let e = err("[model]\nhidden = [0]\ndropout = 1.0\n");
        assert!(e.contains("`model.hidden`") && e.contains("`model.dropout`"), "{e}");
    }

    #[test]
    fn mode_and_updater_defaults_follow_the_worker_count() {
        let job = JobSpec::from_toml("[cluster]\nworkers = 2\n", "j").unwrap();
        assert_eq!(job.sharing_mode(), SharingMode::Threshold);
        assert_eq!(job.updater().kind, Some(UpdaterKind::Nesterov));
        assert_eq!(job.updater().lr, Some(0.01));
        let single = JobSpec::default();
        assert_eq!(single.updater().kind, Some(UpdaterKind::Adam));
        assert_eq!(single.updater().lr, Some(1e-3));
        let explicit =
            JobSpec::from_toml("[train]\nupdater = { kind = \"sgd\" }\n[cluster]\nworkers = 2\n", "j")
                .unwrap();
        assert_eq!(explicit.updater().kind, Some(UpdaterKind::Sgd));
        assert_eq!(explicit.updater().lr, Some(0.1));
    }

    #[test]
    fn nearest_only_for_plausible_typos() {
        assert_eq!(nearest("epoch", &["epochs", "seed"]), Some("epochs"));
        assert_eq!(nearest("completely", &["epochs", "seed"]), None);
    }
}
