//! The job as a form for the cockpit's Setup screen: every key with its value, kind, choices
//! and help, and single-key edits. The cockpit knows nothing of the job's schema; it shows
//! these fields and sends edits back here.

use strom_proto::v1 as pb;
use toml::Value;

use crate::job::{JobSpec, KeyError};

use pb::FieldKind as K;

/// Every key the form shows: (key, kind, choices, help).
const FIELDS: &[(&str, K, &[&str], &str)] = &[
    ("name", K::Text, &[], "Job name, shown in logs and checkpoints"),
    ("data.train", K::Location, &[], "Training data: a local path, hdfs://, viewfs:// or builtin: location"),
    ("data.test", K::Location, &[], "Test data, evaluated after each epoch; empty for none"),
    ("data.format", K::Choice, &["idx", "csv"], "Data format"),
    ("data.holdout", K::Float, &[], "Fraction of training rows held out as test data when test is empty"),
    ("data.csv.header", K::Bool, &[], "CSV: the first record names the columns"),
    ("data.csv.delimiter", K::Text, &[], "CSV: field delimiter (one character)"),
    ("data.csv.quote", K::Text, &[], "CSV: quote character"),
    ("data.csv.skip_lines", K::Integer, &[], "CSV: records skipped at the start of every file"),
    ("data.transform", K::Location, &[], "CSV: transform process (JSON), run locally and on every worker"),
    ("data.label", K::Text, &[], "CSV: the column to predict, after the transform"),
    ("data.task", K::Choice, &["classification", "regression"], "CSV: what the label is"),
    ("data.num_classes", K::Integer, &[], "CSV: number of classes; empty: found in the data"),
    (
        "model.preset",
        K::Choice,
        &["mlp", "cnn", "lenet5"],
        "Model preset: mlp (dense layers of hidden), cnn (two 3x3 conv + max-pool), lenet5",
    ),
    ("model.hidden", K::List, &[], "mlp: hidden layer widths, e.g. 256, 128"),
    (
        "model.activation",
        K::Choice,
        &["relu", "leaky_relu", "tanh", "sigmoid", "identity"],
        "Activation of the preset's hidden layers",
    ),
    ("model.dropout", K::Float, &[], "Dropout after the preset's hidden dense layers, [0, 1)"),
    ("model.loss", K::Choice, &["xent", "mse"], "Loss: softmax cross-entropy or mean squared error"),
    ("model.init", K::Choice, &["he", "xavier"], "Weight initialisation"),
    (
        "model.layers",
        K::Text,
        &[],
        "Explicit layers, a TOML array: [{ type = \"conv2d\", filters = 32, kernel = 3, padding = \"same\" }, ...]; overrides the preset",
    ),
    ("train.epochs", K::Integer, &[], "Passes over the training data"),
    ("train.batch_size", K::Integer, &[], "Minibatch size per worker"),
    (
        "train.updater.kind",
        K::Choice,
        &["", "sgd", "nesterov", "adam", "rmsprop"],
        "Updater; empty: nesterov with threshold sharing, adam otherwise",
    ),
    ("train.updater.lr", K::Float, &[], "Learning rate; empty: the updater's default"),
    ("train.updater.momentum", K::Float, &[], "Nesterov momentum"),
    ("train.updater.beta1", K::Float, &[], "Adam first-moment decay"),
    ("train.updater.beta2", K::Float, &[], "Adam second-moment decay"),
    ("train.updater.rho", K::Float, &[], "RMSProp decay"),
    ("train.updater.epsilon", K::Float, &[], "Updater epsilon"),
    ("train.l2", K::Float, &[], "L2 regularisation of the weights"),
    ("train.seed", K::Integer, &[], "Random seed"),
    ("train.batches_per_partition", K::Integer, &[], "Minibatches per work-queue partition"),
    (
        "train.lr_schedule",
        K::Choice,
        &["cosine", "constant"],
        "Learning rate over the job: cosine decay to zero, or constant",
    ),
    (
        "sharing.mode",
        K::Choice,
        &["", "threshold", "averaging", "none"],
        "How workers share updates; empty: threshold with several workers",
    ),
    ("sharing.algorithm.kind", K::Choice, &["adaptive", "fixed", "target"], "How tau moves"),
    ("sharing.algorithm.initial", K::Float, &[], "Initial tau"),
    ("sharing.algorithm.min_sparsity", K::Float, &[], "Lower end of the sparsity band"),
    ("sharing.algorithm.max_sparsity", K::Float, &[], "Upper end of the sparsity band"),
    ("sharing.algorithm.tau", K::Float, &[], "Fixed tau"),
    ("sharing.algorithm.target", K::Float, &[], "Target sparsity"),
    ("sharing.residual_clip.multiple", K::Float, &[], "Clip the residual to ±multiple·tau"),
    ("sharing.residual_clip.every", K::Integer, &[], "Clip every this many steps; 0: never"),
    ("sharing.averaging_frequency", K::Integer, &[], "Minibatches between averages (averaging mode)"),
    ("cluster.launcher", K::Choice, &["embedded", "local", "ssh", "spark", "none"], "Where workers run"),
    ("cluster.workers", K::Integer, &[], "Number of workers"),
    ("cluster.backend", K::Choice, &["cpu", "cuda"], "Compute backend"),
    ("cluster.threads", K::Integer, &[], "CPU threads per worker; 0: the cores shared among the workers"),
    ("cluster.cuda_device", K::Integer, &[], "backend cuda: the device ordinal"),
    ("cluster.cpu_fallback", K::Bool, &[], "backend cuda: train on the CPU where no CUDA device can be used"),
    ("cluster.heartbeat_timeout_secs", K::Integer, &[], "A worker silent this long is lost"),
    (
        "cluster.step_timeout_secs",
        K::Integer,
        &[],
        "A worker the job waits for with no training step for this long is lost",
    ),
    (
        "cluster.reconnect_secs",
        K::Integer,
        &[],
        "Workers retry a lost coordinator this long; a job with no live worker this long fails",
    ),
    ("cluster.max_restarts", K::Integer, &[], "Local and SSH launchers restart a crashed worker this often"),
    ("cluster.checkpoint_every", K::Integer, &[], "Checkpoint every this many steps (with a checkpoint dir)"),
    (
        "cluster.hosts",
        K::Text,
        &[],
        "SSH hosts, a TOML array: [\"alice@node1\", { host = \"node2\", port = 2222, binary = \"/opt/strom\" }]",
    ),
    ("cluster.min_workers", K::Integer, &[], "The job runs if at least this many workers start; empty: all"),
    ("cluster.ssh.binary", K::Text, &[], "The strom binary on the SSH hosts (path, or name on PATH)"),
    ("cluster.ssh.copy_binary", K::Bool, &[], "Copy this binary to hosts that lack it (scp)"),
    ("cluster.ssh.options", K::Text, &[], "Extra ssh/scp arguments, a TOML array: [\"-i\", \"~/.ssh/key\"]"),
    (
        "cluster.ssh.coordinator_url",
        K::Text,
        &[],
        "The coordinator's URL as hosts reach it; empty: this host",
    ),
    ("cluster.ssh.connect_timeout_secs", K::Integer, &[], "Seconds to wait for a host to answer"),
    ("cluster.spark.master", K::Text, &[], "Spark master: local[N], spark://host:7077, yarn"),
    ("cluster.spark.submit", K::Text, &[], "spark-submit to run; empty: $SPARK_HOME/bin or PATH"),
    ("cluster.spark.args", K::Text, &[], "Extra spark-submit arguments, a TOML array"),
    ("cluster.spark.ship_binary", K::Bool, &[], "Ship this binary to the executors (--files)"),
];

/// Keys whose values are TOML expressions (arrays, tables), edited as text.
const TOML_VALUED: &[&str] = &["model.layers", "cluster.hosts", "cluster.ssh.options", "cluster.spark.args"];

/// Keys that stay in the form when unset (their default depends on other keys).
const OPTIONAL: &[&str] = &[
    "cluster.hosts",
    "cluster.min_workers",
    "data.num_classes",
    "sharing.mode",
    "train.updater.kind",
    "train.updater.lr",
];

fn spec(key: &str) -> Option<&'static (&'static str, K, &'static [&'static str], &'static str)> {
    FIELDS.iter().find(|f| f.0 == key)
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Table(t) if !TOML_VALUED.contains(&prefix) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // Job floats are f32: show the shortest spelling that reads back as the same f32.
        Value::Float(x) if (*x as f32) as f64 == *x => format!("{}", *x as f32),
        Value::Array(a) if a.iter().all(|x| x.is_integer() || x.is_float()) => {
            a.iter().map(render).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

fn section(key: &str) -> String {
    key.split('.').next().filter(|_| key.contains('.')).unwrap_or("job").to_string()
}

/// The form of a job: its keys in schema order, with values.
pub fn fields(job: &JobSpec) -> Vec<pb::FormField> {
    let value = Value::try_from(job).unwrap_or(Value::Table(Default::default()));
    let mut flat = Vec::new();
    flatten("", &value, &mut flat);
    for key in OPTIONAL {
        if !flat.iter().any(|(k, _)| k == key) {
            flat.push((key.to_string(), Value::String(String::new())));
        }
    }
    let mut out: Vec<pb::FormField> = flat
        .into_iter()
        .map(|(key, v)| {
            let (kind, choices, help) = match spec(&key) {
                Some((_, kind, choices, help)) => {
                    (*kind, choices.iter().map(|c| c.to_string()).collect(), help.to_string())
                }
                None => (K::Text, vec![], String::new()),
            };
            pb::FormField { value: render(&v), kind: kind as i32, choices, help, section: section(&key), key }
        })
        .collect();
    let order = |k: &str| FIELDS.iter().position(|f| f.0 == k).unwrap_or(usize::MAX);
    out.sort_by_key(|f| order(&f.key));
    out
}

pub fn problems(errors: &[KeyError]) -> Vec<pb::KeyProblem> {
    errors
        .iter()
        .map(|e| pb::KeyProblem {
            key: e.key.clone(),
            line: e.line.unwrap_or(0) as u32,
            message: e.message.clone(),
        })
        .collect()
}

/// The form of a job given as TOML, with its validation problems.
pub fn describe(toml_text: &str) -> pb::JobForm {
    match JobSpec::parse_toml(toml_text, "job") {
        Ok(job) => {
            let problems = job.validate().err().unwrap_or_default();
            pb::JobForm { fields: fields(&job), problems: self::problems(&problems), toml: job.to_toml() }
        }
        Err(e) => {
            pb::JobForm { fields: vec![], problems: problems(&e.key_errors()), toml: toml_text.to_string() }
        }
    }
}

/// Parses a field's text into the TOML value its kind needs.
fn parse_value(key: &str, kind: K, text: &str) -> Result<Value, String> {
    let t = text.trim();
    match kind {
        K::Integer => {
            t.parse::<i64>().map(Value::Integer).map_err(|_| format!("'{t}' is not a whole number"))
        }
        K::Float => t.parse::<f64>().map(Value::Float).map_err(|_| format!("'{t}' is not a number")),
        K::Bool => match t {
            "true" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("'{t}' is not true or false")),
        },
        K::List => {
            let items: Result<Vec<Value>, String> = t
                .trim_matches(|c| c == '[' || c == ']')
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<i64>().map(Value::Integer).map_err(|_| format!("'{s}' is not a whole number"))
                })
                .collect();
            items.map(Value::Array)
        }
        K::Text if TOML_VALUED.contains(&key) => toml::from_str::<toml::Table>(&format!("v = {t}"))
            .map_err(|e| e.message().to_string())
            .and_then(|mut tbl| tbl.remove("v").ok_or_else(|| "empty".to_string())),
        _ => Ok(Value::String(t.to_string())),
    }
}

/// Sets `key` to `value` in a job's TOML and returns the new form. An empty value removes the
/// key (its default applies). Changing a `kind` resets its table to that kind's defaults.
pub fn edit(toml_text: &str, key: &str, value: &str) -> pb::JobForm {
    let fail = |message: String| {
        let mut form = describe(toml_text);
        form.problems.insert(0, pb::KeyProblem { key: key.to_string(), line: 0, message });
        form
    };
    let Some((_, kind, choices, _)) = spec(key) else {
        return fail(format!("'{key}' is not a job key"));
    };
    if !choices.is_empty() && !choices.contains(&value.trim()) {
        return fail(format!("'{}' is not one of: {}", value.trim(), choices.join(", ")));
    }
    let mut table: toml::Table = match toml::from_str(toml_text) {
        Ok(t) => t,
        Err(e) => return fail(format!("the job does not parse: {}", e.message())),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts.split_last().expect("keys are not empty");
    let mut node = &mut table;
    for p in path {
        let entry = node.entry(p.to_string()).or_insert_with(|| Value::Table(Default::default()));
        let Value::Table(t) = entry else { return fail(format!("'{p}' is not a table")) };
        node = t;
    }
    if value.trim().is_empty() && ((*kind != K::Text && *kind != K::Location) || TOML_VALUED.contains(&key)) {
        node.remove(*last);
    } else {
        let v = match parse_value(key, *kind, value) {
            Ok(v) => v,
            Err(message) => return fail(message),
        };
        if *last == "kind" && path.len() > 1 {
            // A tagged table changes variant: keep only the new kind, its defaults fill the rest.
            node.clear();
        }
        node.insert(last.to_string(), v);
    }
    let text = toml::to_string(&table).unwrap_or_default();
    describe(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ThresholdSpec, UpdaterKind};

    fn value<'a>(form: &'a pb::JobForm, key: &str) -> &'a str {
        &form.fields.iter().find(|f| f.key == key).unwrap_or_else(|| panic!("no {key}")).value
    }

    #[test]
    fn every_key_of_a_full_job_has_a_field_spec() {
        let mut job = JobSpec::default();
        job.sharing.mode = Some(crate::job::SharingMode::Threshold);
        job.train.updater.kind = Some(UpdaterKind::Sgd);
        job.train.updater.lr = Some(0.1);
        let form = fields(&job);
        for f in &form {
            assert!(spec(&f.key).is_some(), "form key {} has no spec in FIELDS", f.key);
        }
        for algo in [ThresholdSpec::Fixed { tau: 1.0 }, ThresholdSpec::Target { initial: 1.0, target: 0.1 }] {
            job.sharing.algorithm = algo;
            assert!(fields(&job).iter().all(|f| spec(&f.key).is_some()));
        }
    }

    #[test]
    fn edits_validate_and_reset_tagged_tables() {
        let base = JobSpec::default().to_toml();
        let form = edit(&base, "train.epochs", "12");
        assert!(form.problems.is_empty(), "{:?}", form.problems);
        assert_eq!(value(&form, "train.epochs"), "12");
        let bad = edit(&form.toml, "train.epochs", "twelve");
        assert_eq!(bad.problems[0].key, "train.epochs");
        assert_eq!(value(&bad, "train.epochs"), "12", "the job is unchanged");
        let zero = edit(&form.toml, "train.epochs", "0");
        assert!(zero.problems.iter().any(|p| p.key == "train.epochs" && p.message.contains("got 0")));
        let fixed = edit(&base, "sharing.algorithm.kind", "fixed");
        assert!(fixed.problems.is_empty(), "{:?}", fixed.problems);
        assert_eq!(value(&fixed, "sharing.algorithm.kind"), "fixed");
        assert_eq!(value(&fixed, "sharing.algorithm.tau"), "0.001", "the new kind's defaults fill in");
        assert!(
            !fixed.fields.iter().any(|f| f.key == "sharing.algorithm.min_sparsity"),
            "the old kind's keys go"
        );
        let hidden = edit(&base, "model.hidden", "64, 32");
        assert_eq!(value(&hidden, "model.hidden"), "64, 32");
        let mode = edit(&base, "sharing.mode", "averaging");
        assert_eq!(value(&mode, "sharing.mode"), "averaging");
        let back = edit(&mode.toml, "sharing.mode", "");
        assert_eq!(value(&back, "sharing.mode"), "");
        let wrong = edit(&base, "cluster.launcher", "yarn");
        assert!(wrong.problems[0].message.contains("not one of"));
    }
}
