//! `strom train`: build the job from a file and flags, load the data, train, evaluate, save.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::parse_name;
use super::progress::TrainProgress;
use crate::data::transform::TransformProcess;
use crate::data::{self, Dataset};
use crate::engine::{self, EmbeddedOptions, FinishedRun};
use crate::job::keys;
use crate::job::{
    ADAM_BETA1, Activation, BackendKind, DataFormat, Init, JobSpec, LauncherKind, Loss, ModelPreset,
    ResolvedJob, SharingMode, ThresholdSpec, UpdaterKind,
};
use crate::nn::Architecture;
use crate::nn::saved::{Preprocessing, SavedModel};
use crate::storage::Location;

/// Flags of `strom train`. Every flag overrides the job file key of the same name.
#[derive(Debug, Args, Default)]
#[command(
    after_help = "Examples:\n  strom train\n  strom train --epochs 15 --train /usr/share/datasets/fashion-mnist/train \\\n      --test /usr/share/datasets/fashion-mnist/t10k --output runs/fmnist\n  strom train --workers 4 --sharing threshold --metrics-out metrics.jsonl\n  strom train --config assets/jobs/demo.toml --lr 5e-4"
)]
pub struct TrainArgs {
    /// Job file (TOML); flags override its keys.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<String>,
    #[arg(long, help = keys::flag_help("data.train"), value_name = "LOC")]
    pub train: Option<String>,
    #[arg(long, help = keys::flag_help("data.test"), value_name = "LOC")]
    pub test: Option<String>,
    #[arg(long, help = keys::flag_help("data.format"), value_name = "idx|csv|text|sequence_csv", value_parser = parse_name::<DataFormat>)]
    pub format: Option<DataFormat>,
    #[arg(long, help = keys::flag_help("data.transform"), value_name = "FILE")]
    pub transform: Option<String>,
    #[arg(long, help = keys::flag_help("data.label"), value_name = "COLUMN")]
    pub label: Option<String>,
    #[arg(long, help = keys::flag_help("data.holdout"), value_name = "FRACTION", value_parser = super::number::<f32>, allow_negative_numbers = true)]
    pub holdout: Option<f32>,
    /// Model preset [model.preset]: mlp (dense layers of --hidden), cnn (two 3x3 convolutions
    /// and max-pooling, about 420k parameters on 28x28 images) or lenet5. Clears model.layers.
    #[arg(long, value_name = "mlp|cnn|lenet5|resnet20|char_lstm|gpt", value_parser = parse_name::<ModelPreset>)]
    pub model: Option<ModelPreset>,
    #[arg(long, help = keys::flag_help("model.hidden"), value_name = "N,N,..", value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    #[arg(long, help = keys::flag_help("model.activation"), value_name = "relu|leaky_relu|tanh|sigmoid|identity", value_parser = parse_name::<Activation>)]
    pub activation: Option<Activation>,
    #[arg(long, help = keys::flag_help("model.dropout"), value_name = "P", value_parser = super::number::<f32>, allow_negative_numbers = true)]
    pub dropout: Option<f32>,
    #[arg(long, help = keys::flag_help("model.loss"), value_name = "xent|mse", value_parser = parse_name::<Loss>)]
    pub loss: Option<Loss>,
    #[arg(long, help = keys::flag_help("model.init"), value_name = "he|xavier", value_parser = parse_name::<Init>)]
    pub init: Option<Init>,
    #[arg(long, help = keys::flag_help("train.epochs"), value_name = "N", value_parser = super::whole::<u32>)]
    pub epochs: Option<u32>,
    #[arg(long, help = keys::flag_help("train.batch_size"), value_name = "N", value_parser = super::whole::<usize>)]
    pub batch_size: Option<usize>,
    #[arg(long, help = keys::flag_help("train.updater.kind"), value_name = "sgd|nesterov|adam|rmsprop", value_parser = parse_name::<UpdaterKind>)]
    pub updater: Option<UpdaterKind>,
    #[arg(long, help = keys::flag_help("train.updater.lr"), value_name = "F", value_parser = super::number::<f32>, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    #[arg(long, help = keys::flag_help("train.updater.momentum"), value_name = "F", value_parser = super::number::<f32>, allow_negative_numbers = true)]
    pub momentum: Option<f32>,
    #[arg(long, help = keys::flag_help("train.l2"), value_name = "F", value_parser = super::number::<f32>, allow_negative_numbers = true)]
    pub l2: Option<f32>,
    #[arg(long, help = keys::flag_help("train.seed"), value_name = "N", value_parser = super::whole::<u64>)]
    pub seed: Option<u64>,
    #[arg(long, help = keys::flag_help("cluster.workers"), short = 'w', value_name = "N", value_parser = super::whole::<usize>)]
    pub workers: Option<usize>,
    #[arg(long, help = keys::flag_help("compute.threads"), value_name = "N", value_parser = super::whole::<usize>)]
    pub threads: Option<usize>,
    #[arg(long, help = keys::flag_help("sharing.mode"), value_name = "threshold|topk|powersgd|dense16|averaging|none", value_parser = parse_name::<SharingMode>)]
    pub sharing: Option<SharingMode>,
    /// Use a fixed threshold tau instead of the adaptive one [sharing.algorithm].
    #[arg(long, value_name = "F", value_parser = super::number::<f32>, allow_negative_numbers = true)]
    pub tau: Option<f32>,
    #[arg(long, help = keys::flag_help("sharing.averaging_frequency"), value_name = "N", value_parser = super::whole::<u32>)]
    pub averaging_frequency: Option<u32>,
    #[arg(long, help = keys::flag_help("cluster.launcher"), value_name = "embedded|local|ssh|spark|none", value_parser = parse_name::<LauncherKind>)]
    pub launcher: Option<LauncherKind>,
    #[arg(long, help = keys::flag_help("compute.backend"), value_name = "cpu|cuda", value_parser = parse_name::<BackendKind>)]
    pub backend: Option<BackendKind>,
    /// The device: cpu, cuda or cuda:N [compute.backend, compute.cuda_device].
    #[arg(long, value_name = "cpu|cuda:N", value_parser = parse_device, conflicts_with = "backend")]
    pub device: Option<(BackendKind, usize)>,
    /// Output directory for the model, summary and metrics [default: strom-runs/<job name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<String>,
    /// Write a JSON summary (accuracy, throughput, bytes, ...) to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Write per-step, per-worker metrics as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    pub metrics_out: Option<PathBuf>,
    /// Continue training from a model directory (parameters, updater state, epochs done).
    #[arg(long, value_name = "DIR")]
    pub resume: Option<String>,
    /// Print the effective job as TOML and exit without training.
    #[arg(long)]
    pub print_job: bool,
    /// Print the model (each layer's output shape, parameters and running state) for the job's
    /// data and exit without training.
    #[arg(long)]
    pub print_model: bool,
    /// With a launcher other than embedded: where the in-process coordinator listens
    /// [default: 127.0.0.1 on a free port].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// With --listen beyond loopback: serve plaintext instead of TLS with a self-signed
    /// certificate that the launched workers pin.
    #[arg(long, requires = "listen")]
    pub insecure_plaintext: bool,
    /// With a launcher other than embedded: checkpoint directory (local or HDFS).
    #[arg(long, value_name = "LOC")]
    pub checkpoint_dir: Option<String>,
}

/// `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(s: &str) -> Result<(BackendKind, usize), String> {
    match s.split_once(':') {
        None if s == "cpu" => Ok((BackendKind::Cpu, 0)),
        None if s == "cuda" => Ok((BackendKind::Cuda, 0)),
        Some(("cuda", n)) => n
            .parse()
            .map(|n| (BackendKind::Cuda, n))
            .map_err(|_| format!("'{s}': expected cuda:N with N a device number")),
        _ => Err(format!("'{s}' is not a device; expected cpu, cuda or cuda:N")),
    }
}

impl TrainArgs {
    /// The job: the file (or the demo job), then the flags on top, validated and resolved.
    pub fn job(&self, base: Option<JobSpec>) -> Result<ResolvedJob> {
        let mut job = match (&self.config, base) {
            (Some(path), _) => JobSpec::read(&Location::parse(path)?)?,
            (None, Some(job)) => job,
            (None, None) => JobSpec::default(),
        };
        if let Some(v) = &self.train
            && job.name == JobSpec::default().name
        {
            // Name the run after its data, not the demo (it names the output directory).
            let stem = v.trim_end_matches('/').rsplit('/').next().unwrap_or(v);
            let stem = stem.split('.').next().filter(|s| !s.is_empty()).unwrap_or("job");
            job.name = stem.to_string();
        }
        let d = &mut job.data;
        if let Some(v) = &self.train {
            // Other training data never goes with the demo's test set.
            if d.test == crate::job::DEMO_TEST && self.test.is_none() {
                d.test.clear();
            }
            d.train = v.clone();
        }
        if let Some(v) = &self.test {
            d.test = v.clone();
        }
        if let Some(v) = self.format {
            d.format = v;
        }
        if let Some(v) = &self.transform {
            d.transform = v.clone();
        }
        if let Some(v) = &self.label {
            d.label = v.clone();
        }
        if let Some(v) = self.holdout {
            d.holdout = v;
        }
        let m = &mut job.model;
        if let Some(v) = self.model {
            m.preset = v;
            m.layers = None;
        }
        if let Some(v) = &self.hidden {
            m.hidden = v.clone();
            m.layers = None;
        }
        if let Some(v) = self.activation {
            m.activation = v;
        }
        if let Some(v) = self.dropout {
            m.dropout = v;
        }
        if let Some(v) = self.loss {
            m.loss = v;
        }
        if let Some(v) = self.init {
            m.init = v;
        }
        let t = &mut job.train;
        if let Some(v) = self.epochs {
            t.epochs = v;
        }
        if let Some(v) = self.batch_size {
            t.batch_size = v;
        }
        if let Some(v) = self.updater {
            if Some(v) != t.updater.kind && self.lr.is_none() {
                t.updater.lr = None; // the new updater's own default
            }
            t.updater.kind = Some(v);
        }
        if let Some(v) = self.lr {
            t.updater.lr = Some(v);
        }
        if let Some(v) = self.momentum {
            t.updater.momentum = v;
        }
        if let Some(v) = self.l2 {
            t.l2 = v;
        }
        if let Some(v) = self.seed {
            t.seed = v;
        }
        let s = &mut job.sharing;
        if let Some(v) = self.sharing {
            s.mode = Some(v);
        }
        if let Some(v) = self.tau {
            s.algorithm = ThresholdSpec::Fixed { tau: v };
        }
        if let Some(v) = self.averaging_frequency {
            s.averaging_frequency = v;
        }
        let c = &mut job.cluster;
        if let Some(v) = self.workers {
            c.workers = v;
        }
        if let Some(v) = self.launcher {
            c.launcher = v;
        }
        let c = &mut job.compute;
        if let Some(v) = self.threads {
            c.threads = v;
        }
        if let Some(v) = self.backend {
            c.backend = v;
        }
        if let Some((kind, ordinal)) = self.device {
            c.backend = kind;
            c.cuda_device = ordinal;
        }
        // Checked once, with the flags applied; a problem names the file it started from.
        let resolved = ResolvedJob::resolve(job);
        Ok(resolved.map_err(|e| match &self.config {
            Some(path) => e.in_file(path),
            None => e,
        })?)
    }
}

/// The data a job trains and evaluates on, and the transform process fitted for it.
pub struct JobData {
    pub train: Arc<Dataset>,
    pub test: Option<Arc<Dataset>>,
    pub process: Option<TransformProcess>,
}

pub fn load_data(job: &ResolvedJob) -> Result<JobData> {
    let seed = job.train.seed;
    let t0 = std::time::Instant::now();
    let data::Prepared { process, shape, test } =
        data::prepare(&job.data, seed).with_context(|| format!("reading {}", job.data.train))?;
    // Tables were checked in full above; each worker transforms the partitions it trains.
    let train = data::load_train(&job.data, seed, process.as_ref(), true, shape.outputs)
        .with_context(|| format!("loading training data from {}", job.data.train))?;
    tracing::info!(
        "training data: {} examples of {} from {} ({:.1} MB in memory, {:.2} s)",
        train.rows,
        train.shape,
        job.data.train,
        train.memory_bytes() as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    if let Some(test) = &test {
        tracing::info!("test data: {} examples from {}", test.rows, test.source);
    }
    Ok(JobData { train: Arc::new(train), test, process })
}

pub fn preprocessing_of(data: &crate::job::DataSpec, process: Option<&TransformProcess>) -> Preprocessing {
    match process {
        Some(p) => Preprocessing::Transform { process: Box::new(p.clone()) },
        None => data::source(data.format).preprocessing(data),
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let resumed = match &args.resume {
        Some(dir) => {
            let loc = Location::parse(dir)?;
            Some(SavedModel::load(&loc).with_context(|| format!("--resume {dir}"))?)
        }
        None => None,
    };
    let job = args.job(resumed.as_ref().map(|m| m.meta.job.clone()))?;
    if args.print_job {
        print!("{}", job.to_toml());
        return Ok(());
    }
    if args.print_model {
        let architecture = match &resumed {
            Some(m) => m.meta.architecture.clone(),
            None => {
                let shape = data::prepare(&job.data, job.train.seed)
                    .with_context(|| format!("reading {}", job.data.train))?
                    .shape;
                Architecture::from_job(&job.model, shape.input, shape.outputs).context("the job's model")?
            }
        };
        print!("{}", architecture.summary());
        return Ok(());
    }
    let output = engine::ModelOutput::from_flag(args.output.as_deref())?.for_job(&job.name)?;
    if job.cluster.launcher != LauncherKind::Embedded {
        if resumed.is_some() {
            bail!("--resume works with the embedded launcher; cluster jobs resume from --checkpoint-dir");
        }
        return super::coordinator::train_with_coordinator(&args, job, &output);
    }
    let data = load_data(&job)?;
    let classes = data.train.output_width();
    let (architecture, options, done) = match &resumed {
        Some(m) => {
            let arch = m.meta.architecture.clone();
            if !arch.input().accepts(data.train.shape) || arch.output().per_step() != classes {
                bail!(
                    "--resume: the model takes {} and gives {} outputs, the data has {} and {}",
                    arch.input(),
                    arch.output().per_step(),
                    data.train.shape,
                    classes
                );
            }
            let done = m.meta.progress.epochs_completed;
            if done >= job.train.epochs {
                bail!(
                    "--resume: the model already has {done} epochs; raise --epochs above {done} to train more"
                );
            }
            let options = EmbeddedOptions {
                optimizer: m.optimizer.clone(),
                start_epoch: done,
                ..EmbeddedOptions::fresh(m.state.clone())
            };
            (arch, options, done)
        }
        None => {
            let arch =
                Architecture::from_job(&job.model, data.train.shape, classes).context("the job's model")?;
            let state = crate::nn::initial_state(&arch, job.train.seed);
            (arch, EmbeddedOptions::fresh(state), 0)
        }
    };
    crate::backend::check_support(&job, &architecture)?;
    crate::sharing::create(&job, architecture.layout())?;
    log_plan(&job, &architecture, done);
    let mut progress = TrainProgress::new(&job, data.train.rows, done, args.metrics_out.as_deref())?;
    let outcome = engine::run_embedded(
        &job,
        &architecture,
        data.train.clone(),
        data.test.clone(),
        options,
        &mut progress,
    );
    progress.finish();
    let outcome = outcome?;
    let finished = FinishedRun {
        job: &job,
        architecture: &architecture,
        preprocessing: preprocessing_of(&job.data, data.process.as_ref()),
        class_names: data.train.class_names.clone(),
        epochs_before: done,
        outcome: &outcome,
    };
    finished.save(&output).with_context(|| format!("saving the model to {output}"))?;
    report(&finished, &output, args.summary_json.as_deref())
}

pub(crate) fn log_plan(job: &JobSpec, architecture: &Architecture, done: u32) {
    let updater = job.updater();
    let epochs = if done > 0 {
        format!("epochs {}..{} of {}", done + 1, job.train.epochs, job.train.epochs)
    } else {
        format!("{} epochs", job.train.epochs)
    };
    // A first-moment decay the workers changed (see `JobSpec::updater`) is said, with its key.
    let beta1 = match job.train.updater.beta1 {
        None if updater.kind() == UpdaterKind::Adam && updater.beta1() != ADAM_BETA1 => format!(
            ", beta1 {:.3} ({ADAM_BETA1}^{}: {} workers share their own Adam updates; train.updater.beta1 sets it)",
            updater.beta1(),
            2 * job.cluster.workers,
            job.cluster.workers
        ),
        _ => String::new(),
    };
    tracing::info!(
        "model {}; {} worker(s) x {} thread(s), sharing {}, {epochs} of batch {}, {:?} lr {}{beta1}",
        architecture.describe(),
        job.cluster.workers,
        job.threads_per_worker(),
        job.sharing_mode().name(),
        job.train.batch_size,
        updater.kind(),
        updater.learning_rate()
    );
}

/// Prints what a run that ended left: its test evaluation, where the model went (saved there
/// already, by the caller or by the coordinator as the run ended), the traffic; writes
/// `--summary-json`.
pub(crate) fn report(
    finished: &FinishedRun,
    output: &Location,
    summary_path: Option<&std::path::Path>,
) -> Result<()> {
    let (job, outcome) = (finished.job, finished.outcome);
    if let Some(report) = finished.final_report() {
        println!("\nTest evaluation after {} epochs:\n{}", finished.epochs_completed(), report.table());
    }
    if let Some(path) = summary_path {
        Location::local(path)
            .write_atomic(finished.summary_text(output).as_bytes())
            .with_context(|| format!("--summary-json {}", path.display()))?;
    }
    let t = &outcome.totals;
    println!(
        "trained {} steps in {:.1} s ({:.0} samples/s); model saved to {output}",
        t.steps,
        t.train_seconds,
        t.samples_per_sec()
    );
    let scheme = crate::sharing::describe(job);
    if scheme.exchanges {
        let tau = if scheme.has_tau { format!("final tau {:.2e}, ", t.final_tau) } else { String::new() };
        println!(
            "{}: sent {} of updates, {:.0}x less than dense f32 ({}); {tau}mean sparsity {:.2e}",
            scheme.name,
            human_bytes(t.bytes_sent),
            t.compression_ratio(),
            human_bytes(t.dense_bytes),
            t.mean_sparsity
        );
    }
    Ok(())
}

pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}
