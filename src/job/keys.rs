//! One definition per job key: its name, kind, choices, rule, default and help. Validation
//! (`JobSpec::validate`), the cockpit's Setup form, the `strom train` flags' help and README's
//! key table all come from [`KEYS`]; adding a key is one entry here plus its use. Checks that
//! relate several keys (a band's ends, CSV needing a label) stay in `JobSpec::validate`.

use std::fmt::Write as _;

use toml::Value;

use super::{JobSpec, ThresholdSpec};

/// How a key's value is written and edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A data location (path, hdfs://, builtin:, ...).
    Location,
    /// One of `choices`.
    Choice,
    Integer,
    Float,
    Bool,
    /// Whole numbers, comma-separated.
    List,
    /// A TOML expression (an array or table), edited as text.
    Toml,
}

/// What a numeric key accepts; the same rule checks a job and documents the key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Anything its type holds.
    Any,
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// An integer of at least this.
    AtLeast(i64),
    /// A finite number above zero.
    Positive,
    /// A finite number of at least zero.
    NonNegative,
    /// In (0, 1].
    Fraction,
    /// In [0, 1).
    Probability,
    /// In (0, max].
    UpTo(f64),
}

/// One job key.
pub struct Key {
    /// Dotted path in the job file.
    pub name: &'static str,
    pub kind: Kind,
    pub choices: &'static [&'static str],
    pub rule: Rule,
    /// The value a rule checks; `None` where the key does not apply (another variant's key).
    pub value: Option<fn(&JobSpec) -> Option<f64>>,
    /// The default as README states it, where the default job's value does not say it (it
    /// depends on other keys, or belongs to a variant the default job does not use).
    pub default: Option<&'static str>,
    /// Shown in the cockpit's form even when unset (its default depends on other keys).
    pub optional: bool,
    /// One of the keys most jobs set: the cockpit's form shows it with its section folded.
    pub common: bool,
    /// One line for the form, the flags and README.
    pub help: &'static str,
}

impl Key {
    const fn choices(mut self, choices: &'static [&'static str]) -> Key {
        self.choices = choices;
        self
    }
    const fn rule(mut self, rule: Rule, value: fn(&JobSpec) -> Option<f64>) -> Key {
        self.rule = rule;
        self.value = Some(value);
        self
    }
    const fn default(mut self, default: &'static str) -> Key {
        self.default = Some(default);
        self
    }
    const fn optional(mut self) -> Key {
        self.optional = true;
        self
    }
    const fn common(mut self) -> Key {
        self.common = true;
        self
    }

    /// What the key accepts, in words (README's "values" column).
    pub fn values(&self) -> String {
        if !self.choices.is_empty() {
            let shown: Vec<String> =
                self.choices.iter().filter(|c| !c.is_empty()).map(|c| format!("`{c}`")).collect();
            return shown.join(", ");
        }
        match (self.rule, self.kind) {
            (Rule::Int { min, max }, _) => format!("{min}..={max}"),
            (Rule::AtLeast(n), _) => format!("≥ {n}"),
            (Rule::Positive, _) => "> 0".into(),
            (Rule::NonNegative, _) => "≥ 0".into(),
            (Rule::Fraction, _) => "(0, 1]".into(),
            (Rule::Probability, _) => "[0, 1)".into(),
            (Rule::UpTo(max), _) => format!("(0, {max}]"),
            (Rule::Any, Kind::Integer) => "whole number".into(),
            (Rule::Any, Kind::Float) => "number".into(),
            (Rule::Any, Kind::Bool) => "true, false".into(),
            (Rule::Any, Kind::List) => "whole numbers".into(),
            (Rule::Any, Kind::Location) => "a [location](#data-and-storage)".into(),
            (Rule::Any, Kind::Toml) => "TOML".into(),
            (Rule::Any, Kind::Text | Kind::Choice) => "text".into(),
        }
    }

    /// Checks `job`'s value of this key against its rule; the problem in words.
    pub fn check(&self, job: &JobSpec) -> Option<String> {
        let x = (self.value?)(job)?;
        let got = shown(x, self.rule);
        let (ok, problem) = match self.rule {
            Rule::Any => return None,
            Rule::Int { min, max } => {
                (x >= min as f64 && x <= max as f64, format!("must be {min}..={max} (got {got})"))
            }
            Rule::AtLeast(n) => (x >= n as f64, format!("must be at least {n}")),
            Rule::Positive => (x.is_finite() && x > 0.0, format!("must be positive (got {got})")),
            Rule::NonNegative => (x.is_finite() && x >= 0.0, format!("must be ≥ 0 (got {got})")),
            Rule::Fraction => {
                (x.is_finite() && x > 0.0 && x <= 1.0, format!("must be in (0, 1] (got {got})"))
            }
            Rule::Probability => ((0.0..1.0).contains(&x), format!("must be in [0, 1) (got {got})")),
            Rule::UpTo(max) => {
                (x.is_finite() && x > 0.0 && x <= max, format!("must be in (0, {max}] (got {got})"))
            }
        };
        (!ok).then_some(problem)
    }
}

/// A checked value as the user wrote it: integers whole, job floats (f32) in their shortest
/// spelling.
fn shown(x: f64, rule: Rule) -> String {
    match rule {
        Rule::Int { .. } | Rule::AtLeast(_) => format!("{}", x as i64),
        _ => format!("{}", x as f32),
    }
}

use Kind as K;

/// A key with no choices, rule or default of its own; the builder methods add them.
const fn key(name: &'static str, kind: Kind, help: &'static str) -> Key {
    Key {
        name,
        kind,
        choices: &[],
        rule: Rule::Any,
        value: None,
        default: None,
        optional: false,
        common: false,
        help,
    }
}

fn algorithm_initial(j: &JobSpec) -> Option<f64> {
    match j.sharing.algorithm {
        ThresholdSpec::Adaptive { initial, .. } | ThresholdSpec::Target { initial, .. } => {
            Some(initial as f64)
        }
        ThresholdSpec::Fixed { .. } => None,
    }
}

/// Every job key, in the job file's order.
pub static KEYS: &[Key] = &[
    key("name", K::Text, "Job name, shown in logs, the cockpit and checkpoints")
        .common(),
    key("data.train", K::Location, "Training data: a local path, file://, hdfs://, viewfs:// or builtin: location")
        .common(),
    key("data.test", K::Location, "Test data, evaluated after every epoch; empty for none")
        .common(),
    key("data.format", K::Choice, "Data format: IDX images, CSV tables, UTF-8 text, sequence CSV (one file per sequence)").choices(&["idx", "csv", "text", "sequence_csv"])
        .common(),
    key("data.holdout", K::Float, "Fraction of the training rows held out (seeded) as test data when data.test is empty")
        .rule(Rule::Probability, |j| Some(j.data.holdout as f64)),
    key("data.csv.header", K::Choice, "CSV: the first record names the columns; auto: when none of its fields is a number")
        .choices(&["auto", "true", "false"]),
    key("data.csv.delimiter", K::Text, "CSV: field delimiter (one ASCII character)"),
    key("data.csv.quote", K::Text, "CSV: quote character (one ASCII character)"),
    key("data.csv.skip_lines", K::Integer, "CSV: records skipped at the start of every file"),
    key("data.transform", K::Location, "CSV and sequence CSV: transform process (JSON), run locally and on every worker (on every step row of a sequence)")
        .common(),
    key("data.label", K::Text, "CSV: the column to predict, after the transform (required for CSV); sequence CSV: a label column, when there is no labels/ folder")
        .common(),
    key("data.task", K::Choice, "CSV: what the label is").choices(&["classification", "regression"]),
    key("data.num_classes", K::Integer, "CSV: number of classes of integer labels; empty: found in the data")
        .rule(Rule::Int { min: 2, max: 100_000 }, |j| j.data.num_classes.map(|n| n as f64))
        .default("found in the data")
        .optional(),
    key("data.context", K::Integer, "Text: ids per example (a window; each step's target is the next id)")
        .rule(Rule::Int { min: 1, max: 65_536 }, |j| Some(j.data.context as f64)),
    key("data.unit", K::Choice, "Text: what an id stands for: a character of the training text (at most 255 distinct) or a byte")
        .choices(&["char", "byte"]),
    key("data.align", K::Choice, "Sequence CSV: where per-step labels shorter than their sequence sit (DataVec's alignment): equal lengths, the last steps, the first steps")
        .choices(&["equal", "end", "start"]),
    key("data.vocab", K::Integer, "Sequence CSV: the files hold one column of token ids below this, for an embedding; 0: the columns are features")
        .rule(Rule::Int { min: 0, max: 16_777_216 }, |j| Some(j.data.vocab as f64)),
    key("model.preset", K::Choice, "Model preset: mlp (dense layers of model.hidden), cnn (two 3x3 convolutions and max-pooling), lenet5, resnet20 (residual); on text: char_lstm (two LSTMs of 200), gpt (4 transformer blocks of 128)")
        .choices(&["mlp", "cnn", "lenet5", "resnet20", "char_lstm", "gpt"])
        .common(),
    key("model.hidden", K::List, "mlp: hidden layer widths, e.g. 256, 128 (at most 16 layers of 1..=65536)")
        .common(),
    key("model.activation", K::Choice, "Activation of the preset's hidden layers")
        .choices(&["relu", "leaky_relu", "tanh", "sigmoid", "identity"]),
    key("model.dropout", K::Float, "Dropout after the preset's hidden dense layers")
        .rule(Rule::Probability, |j| Some(j.model.dropout as f64)),
    key("model.layers", K::Toml, "Explicit layers, replacing the preset (at most 64): [{ type = \"conv2d\", filters = 32, kernel = 3, padding = \"same\" }, ...]")
        .default("unset"),
    key("model.loss", K::Choice, "Loss: softmax cross-entropy or mean squared error").choices(&["xent", "mse"]),
    key("model.init", K::Choice, "Weight initialisation: he (variance 2/fan_in), xavier (2/(fan_in+fan_out))")
        .choices(&["he", "xavier"]),
    key("train.epochs", K::Integer, "Passes over the training data")
        .rule(Rule::Int { min: 1, max: 100_000 }, |j| Some(j.train.epochs as f64))
        .common(),
    key("train.batch_size", K::Integer, "Minibatch size per worker")
        .rule(Rule::Int { min: 1, max: 65_536 }, |j| Some(j.train.batch_size as f64))
        .common(),
    key("train.updater.kind", K::Choice, "Updater; empty: nesterov with threshold sharing, adam otherwise")
        .choices(&["", "sgd", "nesterov", "adam", "rmsprop"])
        .default("nesterov with threshold sharing, adam otherwise")
        .optional()
        .common(),
    key("train.updater.lr", K::Float, "Learning rate; empty: the updater's default")
        .rule(Rule::UpTo(10.0), |j| Some(j.updater().learning_rate() as f64))
        .default("sgd 0.1, nesterov 0.01, adam and rmsprop 1e-3")
        .optional()
        .common(),
    key("train.updater.momentum", K::Float, "Nesterov momentum")
        .rule(Rule::Probability, |j| Some(j.train.updater.momentum as f64)),
    key(
        "train.updater.beta1",
        K::Float,
        "Adam's first-moment decay; empty: 0.9, or 0.9^(2W) when W workers share their own Adam updates by threshold (one worker's step is W of the job's, and its updates reach the others late)",
    )
    .rule(Rule::Probability, |j| Some(j.updater().beta1() as f64))
    .default("0.9; 0.9^(2W) under threshold sharing of Adam updates")
    .optional(),
    key("train.updater.beta2", K::Float, "Adam's second-moment decay")
        .rule(Rule::Probability, |j| Some(j.train.updater.beta2 as f64)),
    key("train.updater.rho", K::Float, "RMSProp's decay of the squared-gradient average")
        .rule(Rule::Probability, |j| Some(j.train.updater.rho as f64)),
    key("train.updater.epsilon", K::Float, "Updater epsilon (adam, rmsprop)")
        .rule(Rule::Positive, |j| Some(j.train.updater.epsilon as f64)),
    key("train.l2", K::Float, "L2 regularisation of the weights (not biases, not batch-norm scale and shift)")
        .rule(Rule::NonNegative, |j| Some(j.train.l2 as f64)),
    key("train.seed", K::Integer, "Random seed (initialisation, shuffling, dropout)"),
    key("train.batches_per_partition", K::Integer, "Minibatches per work-queue partition")
        .rule(Rule::AtLeast(1), |j| Some(j.train.batches_per_partition as f64)),
    key("train.lr_schedule", K::Choice, "Learning rate over the job: cosine decay to zero, or constant")
        .choices(&["cosine", "constant"]),
    key("train.lr_warmup_epochs", K::Float, "Epochs over which the learning rate rises linearly from zero, at least 1 % of it (0: none)")
        .rule(Rule::NonNegative, |j| Some(j.train.lr_warmup_epochs as f64)),
    key("sharing.mode", K::Choice, "How workers share updates; empty: threshold with several workers, none with one")
        .choices(&["", "threshold", "topk", "powersgd", "dense16", "averaging", "none"])
        .default("threshold with several workers, none with one")
        .optional()
        .common(),
    key("sharing.algorithm.kind", K::Choice, "How tau moves (see Gradient sharing)").choices(&["adaptive", "fixed", "target"]),
    key("sharing.algorithm.initial", K::Float, "adaptive, target: tau at the start")
        .rule(Rule::Positive, algorithm_initial),
    key("sharing.algorithm.min_sparsity", K::Float, "adaptive: lower end of the sparsity band (entries sent / parameters)")
        .rule(Rule::Fraction, |j| match j.sharing.algorithm {
            ThresholdSpec::Adaptive { min_sparsity, .. } => Some(min_sparsity as f64),
            _ => None,
        }),
    key("sharing.algorithm.max_sparsity", K::Float, "adaptive: upper end of the sparsity band")
        .rule(Rule::Fraction, |j| match j.sharing.algorithm {
            ThresholdSpec::Adaptive { max_sparsity, .. } => Some(max_sparsity as f64),
            _ => None,
        }),
    key("sharing.algorithm.tau", K::Float, "fixed: tau throughout")
        .rule(Rule::Positive, |j| match j.sharing.algorithm {
            ThresholdSpec::Fixed { tau } => Some(tau as f64),
            _ => None,
        }),
    key("sharing.algorithm.target", K::Float, "target: the sparsity tau steers to")
        .rule(Rule::Fraction, |j| match j.sharing.algorithm {
            ThresholdSpec::Target { target, .. } => Some(target as f64),
            _ => None,
        }),
    key("sharing.residual_clip.multiple", K::Float, "Clip the residual to ±multiple·tau")
        .rule(Rule::Positive, |j| Some(j.sharing.residual_clip.multiple as f64)),
    key("sharing.residual_clip.every", K::Integer, "Clip every this many steps; 0: never"),
    key("sharing.follow_lr", K::Bool, "Scale the residual and an adapting tau with the learning-rate schedule (false: about 2x fewer bytes, less stable ends)"),
    key("sharing.averaging_frequency", K::Integer, "Minibatches between parameter averages (averaging mode)")
        .rule(Rule::AtLeast(1), |j| Some(j.sharing.averaging_frequency as f64)),
    key("sharing.share", K::Choice, "threshold: encode each worker's updater output, or the gradient (one updater then runs on the workers' sum)")
        .choices(&["update", "gradient"]),
    key("sharing.place_tau", K::Bool, "threshold: an adapting tau starts at the quantile of the first step's values its band asks for, not at initial; empty: only when the gradient is shared")
        .default("true with share = gradient, false otherwise")
        .optional(),
    key("sharing.topk.density", K::Float, "topk: fraction of the entries sent each step after the warm-up")
        .rule(Rule::Fraction, |j| Some(j.sharing.topk.density as f64)),
    key("sharing.topk.warmup_epochs", K::Float, "topk: epochs over which the density falls from 25 % to its final value; 0: none")
        .rule(Rule::NonNegative, |j| Some(j.sharing.topk.warmup_epochs as f64)),
    key("sharing.topk.clip_norm", K::Float, "topk: local gradient clipping to this L2 norm / sqrt(workers); 0: off")
        .rule(Rule::NonNegative, |j| Some(j.sharing.topk.clip_norm as f64)),
    key("sharing.powersgd.rank", K::Integer, "powersgd: rank of the low-rank approximation")
        .rule(Rule::Int { min: 1, max: 64 }, |j| Some(j.sharing.powersgd.rank as f64)),
    key("sharing.powersgd.warmup_steps", K::Integer, "powersgd: steps of dense all-reduce before compressing"),
    key("sharing.powersgd.error_clip", K::Float, "powersgd: keep the error feedback's norm within this many times the gradient's; 0: unbounded")
        .rule(Rule::NonNegative, |j| Some(j.sharing.powersgd.error_clip as f64)),
    key("sharing.precision", K::Choice, "dense16: the 16-bit float the gradient travels in")
        .choices(&["f16", "bf16"]),
    key("compute.backend", K::Choice, "Compute backend").choices(&["cpu", "cuda"])
        .common(),
    key("compute.cuda_device", K::Integer, "backend cuda: the device ordinal"),
    key("compute.cpu_fallback", K::Bool, "backend cuda: train on the CPU (with a warning) where CUDA cannot be used"),
    key("compute.threads", K::Integer, "CPU threads per worker; 0: the machine's cores shared among its workers")
        .rule(Rule::Int { min: 0, max: 1024 }, |j| Some(j.compute.threads as f64)),
    key("cluster.launcher", K::Choice, "Where workers run (see Clusters)")
        .choices(&["embedded", "local", "ssh", "spark", "none"])
        .common(),
    key("cluster.workers", K::Integer, "Number of workers")
        .rule(Rule::Int { min: 1, max: 1024 }, |j| Some(j.cluster.workers as f64))
        .common(),
    key("cluster.heartbeat_timeout_secs", K::Integer, "A worker silent this long is lost, its partitions requeued")
        .rule(Rule::Int { min: 1, max: 3600 }, |j| Some(j.cluster.heartbeat_timeout_secs as f64)),
    key("cluster.step_timeout_secs", K::Integer, "A worker the job waits for (partition, barrier, averaging round) with no training call this long is lost")
        .rule(Rule::Int { min: 1, max: 86_400 }, |j| Some(j.cluster.step_timeout_secs as f64)),
    key("cluster.reconnect_secs", K::Integer, "Workers retry a lost coordinator this long; a job with no live worker this long fails")
        .rule(Rule::Int { min: 1, max: 86_400 }, |j| Some(j.cluster.reconnect_secs as f64)),
    key("cluster.max_restarts", K::Integer, "Local and SSH launchers restart a crashed worker this often (backoff 1, 2, 4, ... s)")
        .rule(Rule::Int { min: 0, max: 1000 }, |j| Some(j.cluster.max_restarts as f64)),
    key("cluster.checkpoint_every", K::Integer, "Steps between checkpoints (with a checkpoint directory); 0: epoch ends only"),
    key("cluster.hosts", K::Toml, "SSH hosts: [\"alice@node1\", { host = \"node2\", port = 2222, binary = \"/opt/strom\" }]")
        .default("empty")
        .optional()
        .common(),
    key("cluster.min_workers", K::Integer, "SSH, Spark: the job runs if at least this many start; none: training starts when this many have joined; empty: all")
        .default("all")
        .optional(),
    key("cluster.relay.star_max", K::Integer, "Up to this many workers the coordinator relays every update to each; above, a relay tree")
        .rule(Rule::Int { min: 0, max: 1024 }, |j| Some(j.cluster.relay.star_max as f64)),
    key("cluster.relay.fanout", K::Integer, "Relay tree: children per node (the coordinator's and each relaying worker's)")
        .rule(Rule::Int { min: 1, max: 64 }, |j| Some(j.cluster.relay.fanout as f64)),
    key("cluster.ssh.binary", K::Text, "The strom binary on the SSH hosts (path, or name on their PATH)"),
    key("cluster.ssh.copy_binary", K::Bool, "scp this binary to hosts that lack it"),
    key("cluster.ssh.options", K::Toml, "Extra ssh/scp arguments: [\"-i\", \"~/.ssh/key\", \"-o\", \"ProxyJump=gw\"]"),
    key("cluster.ssh.coordinator_url", K::Text, "The coordinator's URL as the hosts reach it; empty: this host"),
    key("cluster.ssh.connect_timeout_secs", K::Integer, "Seconds to wait for a host to answer")
        .rule(Rule::Int { min: 1, max: 300 }, |j| Some(j.cluster.ssh.connect_timeout_secs as f64)),
    key("cluster.spark.master", K::Text, "Spark master: local[N], spark://host:7077, yarn"),
    key("cluster.spark.submit", K::Text, "spark-submit to run; empty: $SPARK_HOME/bin, then PATH"),
    key("cluster.spark.args", K::Toml, "Extra spark-submit arguments, a TOML array"),
    key("cluster.spark.ship_binary", K::Bool, "Ship this binary to the executors (--files)"),
];

/// The definition of `name`.
pub fn get(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// A flag's help: the key's help and, in brackets, the key it sets. (A name that is not a key
/// fails every debug build's `--help`, so `train_cli`'s help test catches a typo.)
pub fn flag_help(name: &str) -> String {
    debug_assert!(get(name).is_some(), "flag help names '{name}', which is not a job key");
    match get(name) {
        Some(k) => format!("{} [{name}]", k.help),
        None => format!("[{name}]"),
    }
}

/// A TOML value as a person writes it: job floats (f32) in their shortest spelling, lists of
/// numbers comma-separated.
pub fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Float(x) if (*x as f32) as f64 == *x => format!("{}", *x as f32),
        Value::Array(a) if a.iter().all(|x| x.is_integer() || x.is_float()) => {
            a.iter().map(render).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

fn lookup<'a>(root: &'a Value, name: &str) -> Option<&'a Value> {
    name.split('.').try_fold(root, |v, part| v.get(part))
}

/// The default job as TOML values, then the same with each `sharing.algorithm.kind` at its
/// defaults (the keys of the kinds the default job does not use): where README finds defaults.
fn default_values() -> Vec<Value> {
    let kinds = get("sharing.algorithm.kind").map_or(&[][..], |k| k.choices);
    let variants = kinds.iter().filter_map(|kind| toml::from_str(&format!("kind = \"{kind}\"")).ok());
    let jobs = std::iter::once(JobSpec::default()).chain(variants.map(|algorithm| {
        let mut job = JobSpec::default();
        job.sharing.algorithm = algorithm;
        job
    }));
    jobs.filter_map(|job| Value::try_from(job).ok()).collect()
}

/// README's table of job keys, generated from [`KEYS`] (a test keeps README's copy equal).
pub fn readme_table() -> String {
    let defaults = default_values();
    let mut out = String::from("| key | default | values | what it does |\n|---|---|---|---|\n");
    for k in KEYS {
        let default = match (k.default, defaults.iter().find_map(|d| lookup(d, k.name))) {
            (Some(d), _) => d.to_string(),
            (None, Some(Value::String(s))) if s.is_empty() => "empty".into(),
            (None, Some(Value::Array(a))) if a.is_empty() => "`[]`".into(),
            (None, Some(v @ Value::String(_))) => format!("`{}`", render(v)),
            (None, Some(v)) => render(v),
            (None, None) => "unset".into(),
        };
        let _ =
            writeln!(out, "| `{}` | {} | {} | {} |", k.name, default, k.values(), k.help.replace('|', "\\|"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_defined_once_and_names_a_table_path() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(KEYS[..i].iter().all(|o| o.name != k.name), "{} defined twice", k.name);
            assert_eq!(k.kind == Kind::Choice, !k.choices.is_empty(), "{}: choices go with Choice", k.name);
            assert_eq!(
                k.rule == Rule::Any,
                k.value.is_none(),
                "{}: a rule needs the value it checks",
                k.name
            );
        }
    }

    #[test]
    fn the_default_job_passes_every_rule_and_each_rule_can_fail() {
        let job = JobSpec::default();
        for k in KEYS {
            assert_eq!(k.check(&job), None, "{}", k.name);
        }
        let mut bad = JobSpec::default();
        bad.train.epochs = 0;
        bad.train.l2 = f32::NAN;
        bad.model.dropout = 1.0;
        let problems: Vec<(&str, String)> =
            KEYS.iter().filter_map(|k| Some((k.name, k.check(&bad)?))).collect();
        assert_eq!(
            problems,
            vec![
                ("model.dropout", "must be in [0, 1) (got 1)".to_string()),
                ("train.epochs", "must be 1..=100000 (got 0)".to_string()),
                ("train.l2", "must be ≥ 0 (got NaN)".to_string()),
            ]
        );
    }

    #[test]
    fn readme_shows_the_generated_key_table() {
        let readme = include_str!("../../README.md");
        let table = readme_table();
        assert!(
            readme.contains(&table),
            "README's job-key table differs from the generated one; replace it with:\n\n{table}"
        );
    }
}
