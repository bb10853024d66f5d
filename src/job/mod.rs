//! `JobSpec`: the one description of a training job. It is read from TOML job files, overridden
//! by `strom train` flags, edited in the cockpit's Setup form and carried in the wire protocol.
//! Loading validates everything and names the key of every problem. One file per section
//! (`data`, `model`, `train`, `sharing`, `compute`, `cluster`); `keys` defines every key once.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::nn::layers::{HiddenLayer, LayerEntry, LayerSpec, Padding};
pub use crate::nn::{Activation, Init, Loss};
use crate::storage::{Location, StorageError};

mod cluster;
mod compute;
mod data;
pub mod keys;
mod model;
mod resolved;
mod sharing;
mod train;

pub use cluster::*;
pub use compute::*;
pub use data::*;
pub use model::*;
pub use resolved::{ResolvedData, ResolvedJob};
pub use sharing::*;
pub use train::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSpec {
    /// A name for logs, the cockpit and checkpoints.
    pub name: String,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainSpec,
    pub sharing: SharingSpec,
    pub compute: ComputeSpec,
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
            compute: ComputeSpec::default(),
            cluster: ClusterSpec::default(),
        }
    }
}

impl JobSpec {
    /// CPU threads per worker (see [`ComputeSpec::threads`]).
    pub fn threads_per_worker(&self) -> usize {
        let c = &self.cluster;
        if self.compute.threads > 0 {
            return self.compute.threads;
        }
        let sharing = match c.launcher {
            LauncherKind::Embedded | LauncherKind::Local | LauncherKind::None => c.workers,
            LauncherKind::Ssh => {
                let mut hosts: Vec<String> = c.hosts.iter().map(HostSpec::host).collect();
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

    /// Whether threshold sharing encodes the gradient (one updater runs on the sum each worker
    /// receives) rather than each worker's updater output.
    pub fn shares_gradient(&self) -> bool {
        self.sharing.share == ShareWhat::Gradient
    }

    /// The updater with its kind, learning rate and Adam's first-moment decay resolved from the
    /// defaults.
    ///
    /// Adam's `beta1`, unset, is 0.9 — except where `W > 1` workers each run their own Adam and
    /// share its updates by threshold: there it is `0.9^(2W)`. Each replica applies every
    /// worker's updates, so one worker's step is `W` of the job's; a worker's first moment at
    /// 0.9 averages its gradients over about 10 of its own steps, 10·W of the job's, and steers
    /// by where the model was that long ago. `0.9^W` would decay as much per worker step as 0.9
    /// does per job step; the updates also reach the others late (the residual holds them, the
    /// relay carries them), and half that memory again measured as well on threads and better
    /// over processes (MLP, Adam, four workers, seeds 1–3, against one worker's 0.8987:
    /// threads 0.8856 at 0.9, 0.8958 at 0.9^4, 0.8961 at 0.9^8; processes 0.8908 at 0.9^4,
    /// 0.8942 at 0.9^8, 0.8941 at 0.9^16; README, "Adam under sharing").
    pub fn updater(&self) -> UpdaterSpec {
        let mut u = self.train.updater.clone();
        let kind = u.kind.unwrap_or(match self.sharing_mode() {
            SharingMode::Averaging | SharingMode::None => UpdaterKind::Adam,
            SharingMode::Threshold | SharingMode::Topk | SharingMode::Powersgd | SharingMode::Dense16 => {
                UpdaterKind::Nesterov
            }
        });
        u.kind = Some(kind);
        u.lr = Some(u.lr.unwrap_or(kind.default_lr()));
        let own_adam_shared = kind == UpdaterKind::Adam
            && self.sharing_mode() == SharingMode::Threshold
            && !self.shares_gradient()
            && self.cluster.workers > 1;
        let steps = i32::try_from(self.cluster.workers.saturating_mul(2)).unwrap_or(i32::MAX);
        u.beta1 = Some(u.beta1.unwrap_or(if own_adam_shared { ADAM_BETA1.powi(steps) } else { ADAM_BETA1 }));
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
        let mut job: JobSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map(|s| line_of(text, s.start));
            let (key, message) = explain_serde_error(&key, inner.message());
            JobError::Invalid { file: Some(file.to_string()), errors: vec![KeyError { key, line, message }] }
        })?;
        // A key given in both places with two values, even where `[compute]`'s is the default.
        if let Ok(table) = text.parse::<toml::Table>() {
            let section = |name: &str| table.get(name).and_then(|v| v.as_table());
            // `data.train` given without `data.test`: no test set (never the demo's), as with
            // the `--train` flag.
            if let Some(data) = section("data")
                && data.contains_key("train")
                && !data.contains_key("test")
                && job.data.test == DEMO_TEST
            {
                job.data.test.clear();
            }
            if let (Some(cluster), Some(compute)) = (section("cluster"), section("compute")) {
                for key in compute::KEYS {
                    if let (Some(a), Some(b)) = (cluster.get(key), compute.get(key))
                        && a != b
                    {
                        return Err(compute::both_places(key, Some(file)));
                    }
                }
            }
        }
        job.move_legacy_keys(file)?;
        Ok(job)
    }

    /// Moves `[compute]` keys an older job (file, saved model, checkpoint) gives in `[cluster]`
    /// to `[compute]`, with a warning naming the new key.
    pub fn move_legacy_keys(&mut self, source: &str) -> Result<(), JobError> {
        let moved = compute::move_legacy(&mut self.cluster, &mut self.compute)
            .map_err(|key| compute::both_places(key, Some(source)))?;
        for key in moved {
            tracing::warn!("{source}: `cluster.{key}` is now `compute.{key}`; read as that");
        }
        Ok(())
    }

    /// Reads and parses a job file, without [`JobSpec::validate`]: for a job that changes
    /// before it is resolved (flags on top, paths made absolute).
    /// Relative local paths in the file (data.train, data.test, data.transform) are taken
    /// from the file's folder, as Cargo and Compose do; flags stay relative to the working
    /// directory.
    pub fn read(location: &Location) -> Result<JobSpec, JobError> {
        let mut job = JobSpec::parse_toml(&JobSpec::read_text(location)?, &location.to_string())?;
        if let Location::Local(file) = location {
            job.data.paths_from(file.parent().unwrap_or(std::path::Path::new("")));
        }
        Ok(job)
    }

    /// A job file's text.
    pub(super) fn read_text(location: &Location) -> Result<String, JobError> {
        let bytes =
            location.read().map_err(|source| JobError::Read { file: location.to_string(), source })?;
        String::from_utf8(bytes).map_err(|_| JobError::Syntax {
            file: location.to_string(),
            line: None,
            message: "not UTF-8 text".into(),
        })
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
            v.check("data.transform", matches!(d.format, DataFormat::Csv | DataFormat::SequenceCsv), || {
                "transform processes apply to CSV data (data.format = \"csv\" or \"sequence_csv\")".into()
            });
            if let Err(e) = Location::parse(&d.transform) {
                v.fail("data.transform", e.to_string());
            }
        }
        let m = &self.model;
        match &m.layers {
            Some(entries) => {
                v.check("model.layers", entries.len() <= 256, || {
                    format!("at most 256 layers (got {})", entries.len())
                });
                for (i, entry) in entries.iter().enumerate() {
                    match entry {
                        LayerEntry::Layer(l) | LayerEntry::Node { layer: l, .. } => {
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
            match h.destination() {
                Err(why) => v.check("cluster.hosts", false, || {
                    format!(
                        "entry {i}: '{}': {why}; write user@host, user@host:PORT, user@[v6addr]:PORT or \
                         {{ host = \"user@host\", port = PORT }}",
                        h.label()
                    )
                }),
                Ok(_) => v.check(
                    "cluster.hosts",
                    !host.starts_with('-') && !host.contains(char::is_whitespace),
                    || format!("entry {i}: '{host}' is not a host name (expected user@host or host)"),
                ),
            }
        }
        v.check("sharing.mode", !(s.mode == Some(SharingMode::None) && c.workers > 1), || {
            format!(
                "'none' trains a single worker but cluster.workers = {}; use threshold, topk, powersgd, dense16 or averaging",
                c.workers
            )
        });
        v.finish()
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
    #[error("job file {source}")]
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

impl JobError {
    /// Names `file` as the source of a validation error.
    pub fn in_file(self, file: &str) -> JobError {
        match self {
            JobError::Invalid { errors, .. } => JobError::Invalid { file: Some(file.to_string()), errors },
            e => e,
        }
    }
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
    // Rust's type names mean nothing to a person writing a job file.
    let mut message = message.to_string();
    for (rust, words) in [
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
    ] {
        if message.ends_with(rust) {
            message = message.replace(rust, words);
        }
    }
    (key, message)
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
    fn compute_keys_in_cluster_are_read_as_compute_keys() {
        let job = JobSpec::from_toml("[cluster]\nbackend = \"cuda\"\nthreads = 3\nworkers = 2\n", "old.toml")
            .unwrap();
        assert_eq!(job.compute.backend, BackendKind::Cuda);
        assert_eq!(job.compute.threads, 3);
        assert_eq!(job.cluster.workers, 2);
        assert_eq!(job.cluster.legacy_backend, None, "moved, not kept twice");
        let text = job.to_toml();
        assert!(text.contains("[compute]") && text.contains("backend = \"cuda\""), "{text}");
        let again = JobSpec::from_toml(&text, "new.toml").unwrap();
        assert_eq!(again, job, "written as [compute], read back the same");
        assert!(!text.split("[cluster]").nth(1).unwrap_or("").contains("backend"), "{text}");
        // The same value in both places is fine; two values are not.
        assert!(JobSpec::from_toml("[compute]\nthreads = 3\n[cluster]\nthreads = 3\n", "j").is_ok());
        let e = JobSpec::from_toml("[compute]\nthreads = 3\n[cluster]\nthreads = 4\n", "j")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`cluster.threads`") && e.contains("compute.threads"), "{e}");
        let e = JobSpec::from_toml("[compute]\nbackend = \"cpu\"\n[cluster]\nbackend = \"cuda\"\n", "j")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`cluster.backend`"), "two values even where one is the default: {e}");
        // An older saved model's job (JSON, not a job file) is moved when it is resolved.
        let old: JobSpec = serde_json::from_str(r#"{"cluster": {"backend": "cuda", "threads": 2}}"#).unwrap();
        let job = ResolvedJob::resolve(old).unwrap();
        assert_eq!((job.compute.backend, job.compute.threads), (BackendKind::Cuda, 2));
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
    fn adam_beta1_follows_the_workers_that_share_its_updates() {
        let beta1 = |toml: &str| JobSpec::from_toml(toml, "j").unwrap().updater().beta1();
        let adam = "[train]\nupdater = { kind = \"adam\" }\n";
        assert_eq!(beta1(adam), 0.9, "one worker");
        // `powi` rounds a little differently when its exponent is a constant.
        let near =
            |got: f32, want: f64| assert!((f64::from(got) - want).abs() < 1e-6, "{got} against {want}");
        near(beta1(&format!("{adam}[cluster]\nworkers = 4\n")), 0.9f64.powi(8));
        near(beta1(&format!("{adam}[cluster]\nworkers = 2\n")), 0.9f64.powi(4));
        // One Adam on the shared gradient, a synchronous scheme, or a beta1 of one's own: 0.9 or as set.
        assert_eq!(beta1(&format!("{adam}[cluster]\nworkers = 4\n[sharing]\nshare = \"gradient\"\n")), 0.9);
        assert_eq!(beta1(&format!("{adam}[cluster]\nworkers = 4\n[sharing]\nmode = \"dense16\"\n")), 0.9);
        let own = "[train]\nupdater = { kind = \"adam\", beta1 = 0.8 }\n[cluster]\nworkers = 4\n";
        assert_eq!(beta1(own), 0.8);
        // Written back unset, so a job file saved from it resolves the same way elsewhere.
        let job = JobSpec::from_toml(&format!("{adam}[cluster]\nworkers = 4\n"), "j").unwrap();
        assert!(!toml::to_string(&job).unwrap().contains("beta1"));
    }

    #[test]
    fn nearest_only_for_plausible_typos() {
        assert_eq!(nearest("epoch", &["epochs", "seed"]), Some("epochs"));
        assert_eq!(nearest("completely", &["epochs", "seed"]), None);
    }
}
