//! The job as a form for the cockpit's Setup screen: every key with its value, kind, choices
//! and help, and single-key edits. The cockpit knows nothing of the job's schema; it shows
//! these fields and sends edits back here.

use strom_proto::v1 as pb;
use toml::Value;

use crate::job::keys::{self, Key, Kind, render};
use crate::job::{JobSpec, KeyError};

/// The wire's kind of a key.
fn wire_kind(kind: Kind) -> pb::FieldKind {
    match kind {
        Kind::Text | Kind::Toml => pb::FieldKind::Text,
        Kind::Location => pb::FieldKind::Location,
        Kind::Choice => pb::FieldKind::Choice,
        Kind::Integer => pb::FieldKind::Integer,
        Kind::Float => pb::FieldKind::Float,
        Kind::Bool => pb::FieldKind::Bool,
        Kind::List => pb::FieldKind::List,
    }
}

fn is_toml(key: &str) -> bool {
    keys::get(key).is_some_and(|k| k.kind == Kind::Toml)
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Table(t) if !is_toml(prefix) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
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
    for key in keys::KEYS.iter().filter(|k| k.optional) {
        if !flat.iter().any(|(k, _)| k == key.name) {
            flat.push((key.name.to_string(), Value::String(String::new())));
        }
    }
    let mut out: Vec<pb::FormField> = flat
        .into_iter()
        .map(|(key, v)| {
            let (kind, choices, help, common) = match keys::get(&key) {
                Some(k) => (
                    wire_kind(k.kind),
                    k.choices.iter().map(|c| c.to_string()).collect(),
                    k.help.to_string(),
                    k.common,
                ),
                None => (pb::FieldKind::Text, vec![], String::new(), false),
            };
            pb::FormField {
                value: render(&v),
                kind: kind as i32,
                choices,
                help,
                section: section(&key),
                common,
                key,
            }
        })
        .collect();
    let order = |k: &str| keys::KEYS.iter().position(|f| f.name == k).unwrap_or(usize::MAX);
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
    describe_from(toml_text, None)
}

/// The form of a job read from a file in `base_dir`, whose relative data paths are taken from
/// that folder (`JobSpec::read`'s rule).
pub fn describe_from(toml_text: &str, base_dir: Option<&std::path::Path>) -> pb::JobForm {
    match JobSpec::parse_toml(toml_text, "job") {
        Ok(mut job) => {
            if let Some(dir) = base_dir {
                job.data.paths_from(dir);
            }
            let problems = job.validate().err().unwrap_or_default();
            pb::JobForm { fields: fields(&job), problems: self::problems(&problems), toml: job.to_toml() }
        }
        Err(e) => {
            pb::JobForm { fields: vec![], problems: problems(&e.key_errors()), toml: toml_text.to_string() }
        }
    }
}

/// Parses a field's text into the TOML value its kind needs.
fn parse_value(kind: Kind, text: &str) -> Result<Value, String> {
    let t = text.trim();
    match kind {
        Kind::Integer => {
            t.parse::<i64>().map(Value::Integer).map_err(|_| format!("'{t}' is not a whole number"))
        }
        Kind::Float => t.parse::<f64>().map(Value::Float).map_err(|_| format!("'{t}' is not a number")),
        Kind::Bool => match t {
            "true" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("'{t}' is not true or false")),
        },
        Kind::List => {
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
        Kind::Toml => toml::from_str::<toml::Table>(&format!("v = {t}"))
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
    let Some(&Key { kind, choices, .. }) = keys::get(key) else {
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
    if path == ["compute"]
        && let Some(Value::Table(cluster)) = table.get_mut("cluster")
    {
        // An older file's spelling of the same key would override the edit (`compute.rs`).
        cluster.remove(*last);
    }
    let mut node = &mut table;
    for p in path {
        let entry = node.entry(p.to_string()).or_insert_with(|| Value::Table(Default::default()));
        let Value::Table(t) = entry else { return fail(format!("'{p}' is not a table")) };
        node = t;
    }
    if value.trim().is_empty() && !matches!(kind, Kind::Text | Kind::Location) {
        node.remove(*last);
    } else {
        let v = match parse_value(kind, value) {
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

    #[test]
    fn a_job_opened_from_a_file_takes_its_relative_paths_from_the_files_folder() {
        let text = "[data]\ntrain = \"../wine/wine_data.csv\"\nformat = \"csv\"\nlabel = \"c\"\n";
        let form = describe_from(text, Some(std::path::Path::new("/srv/assets/jobs")));
        assert_eq!(value(&form, "data.train"), "/srv/assets/wine/wine_data.csv");
        assert!(form.toml.contains("/srv/assets/wine/wine_data.csv"), "{}", form.toml);
        assert_eq!(value(&describe(text), "data.train"), "../wine/wine_data.csv", "no folder: as written");
    }

    #[test]
    fn editing_a_compute_key_replaces_its_old_cluster_spelling() {
        let old = "[cluster]\nbackend = \"cuda\"\nworkers = 2\n";
        assert_eq!(value(&describe(old), "compute.backend"), "cuda", "read where it moved");
        let form = edit(old, "compute.backend", "cpu");
        assert_eq!(value(&form, "compute.backend"), "cpu", "the edit holds: {:?}", form.problems);
        assert_eq!(value(&form, "cluster.workers"), "2");
        assert!(!form.toml.contains("[cluster]\nbackend"), "{}", form.toml);
    }

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
            assert!(keys::get(&f.key).is_some(), "form key {} has no definition in job::keys", f.key);
        }
        for algo in [ThresholdSpec::Fixed { tau: 1.0 }, ThresholdSpec::Target { initial: 1.0, target: 0.1 }] {
            job.sharing.algorithm = algo;
            assert!(fields(&job).iter().all(|f| keys::get(&f.key).is_some()));
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
