//! Coordinator checkpoints: the replica, the job and how far it got, in a local or HDFS
//! directory. The model state goes to `params-<seq>.safetensors` (tensor `params`, and
//! `running` for the batch-norm statistics of models that have them), then `checkpoint.json` (which
//! names that file) replaces the previous one atomically: a crash at any moment leaves the
//! last complete checkpoint in place. The two newest checkpoints are kept whole (each with its
//! own `checkpoint-<seq>.json`): when the newest turns out damaged, startup takes the one
//! before it. A replica holding NaN or infinity is never written.

use safetensors::tensor::SafeTensors;
use serde::{Deserialize, Serialize};

use super::ClusterError;
use crate::engine::EpochSummary;
use crate::job::ResolvedJob;
use crate::nn::Architecture;
use crate::nn::saved::{f32_bytes, serialize, tensor_f32};
use crate::storage::{Location, write_atomic_all};

pub const CHECKPOINT_JSON: &str = "checkpoint.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Meta {
    format_version: u32,
    seq: u64,
    params_file: String,
    job_toml: String,
    architecture: Architecture,
    epoch: u32,
    partitions_done: Vec<u32>,
    steps: u64,
    tau: Option<f32>,
    epochs: Vec<EpochSummary>,
    written_unix: f64,
    /// Why the run failed, in the last checkpoint of a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub seq: u64,
    /// The job, as resolved when the checkpoint is read.
    pub job: ResolvedJob,
    pub architecture: Architecture,
    /// The epoch in progress ...
    pub epoch: u32,
    /// ... and its partitions already trained.
    pub partitions_done: Vec<u32>,
    pub steps: u64,
    pub tau: Option<f32>,
    pub epochs: Vec<EpochSummary>,
    /// The model state: parameters, then running state.
    pub state: Vec<f32>,
    /// Set in the last checkpoint of a run that failed, with the reason: a restarted
    /// coordinator does not resume it as if it had been interrupted.
    pub failed: Option<String>,
}

fn meta_name(seq: u64) -> String {
    format!("checkpoint-{seq:08}.json")
}

/// The sequence number of a checkpoint's own files (`params-N.safetensors`, `checkpoint-N.json`).
fn seq_of(name: &str) -> Option<u64> {
    name.strip_prefix("params-")
        .and_then(|s| s.strip_suffix(".safetensors"))
        .or_else(|| name.strip_prefix("checkpoint-").and_then(|s| s.strip_suffix(".json")))
        .and_then(|s| s.parse().ok())
}

fn err(dir: &Location, message: impl Into<String>) -> ClusterError {
    ClusterError::Checkpoint { location: dir.to_string(), message: message.into() }
}

impl Checkpoint {
    pub fn write(&self, dir: &Location) -> Result<(), ClusterError> {
        dir.create_dir_all()?;
        let params_file = format!("params-{:08}.safetensors", self.seq);
        let n = self.architecture.param_count();
        if self.state.len() != self.architecture.state_len() {
            return Err(err(
                dir,
                format!("{} values for a model state of {}", self.state.len(), self.architecture.state_len()),
            ));
        }
        if self.state.iter().any(|v| !v.is_finite()) {
            return Err(err(
                dir,
                "the replica holds NaN or infinity; not checkpointed (the previous checkpoint stands)",
            ));
        }
        let (params, running) = self.state.split_at(n);
        let mut tensors = vec![("params".to_string(), vec![n], f32_bytes(params))];
        if !running.is_empty() {
            tensors.push(("running".to_string(), vec![running.len()], f32_bytes(running)));
        }
        let st = serialize(&tensors, None).map_err(|e| err(dir, e))?;
        let meta = Meta {
            format_version: FORMAT_VERSION,
            seq: self.seq,
            params_file: params_file.clone(),
            job_toml: self.job.to_toml(),
            architecture: self.architecture.clone(),
            epoch: self.epoch,
            partitions_done: self.partitions_done.clone(),
            steps: self.steps,
            tau: self.tau,
            epochs: self.epochs.clone(),
            failed: self.failed.clone(),
            written_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| err(dir, e.to_string()))?;
        // The state, this checkpoint's own meta and the file that points at them, side by side
        // (on HDFS each file waits about 0.5 s for its block to be reported; together they
        // wait once). A crash half-way leaves a pointer whose state is missing or short:
        // `read_latest` then takes the checkpoint before, which is still whole.
        let (params_loc, meta_loc) = (dir.join(&params_file), dir.join(&meta_name(self.seq)));
        write_atomic_all(&[(&params_loc, &st), (&meta_loc, &json), (&dir.join(CHECKPOINT_JSON), &json)])?;
        // Keep this checkpoint and the previous one.
        for entry in dir.list()? {
            let name = entry.location.file_name();
            if let Some(seq) = seq_of(&name)
                && seq + 1 < self.seq
            {
                let _ = entry.location.remove_file();
            }
        }
        Ok(())
    }

    /// The newest readable checkpoint in `dir`, or `None` if there is none. When the newest is
    /// damaged (a file cut short, a bad tensor, NaN), the one before it is taken, with a
    /// warning naming what was wrong; when none is readable, the newest one's error.
    pub fn read_latest(dir: &Location) -> Result<Option<Checkpoint>, ClusterError> {
        let first = match Checkpoint::read_meta(dir, &dir.join(CHECKPOINT_JSON)) {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        let mut older: Vec<(u64, Location)> = dir
            .list()?
            .into_iter()
            .filter_map(|e| {
                let name = e.location.file_name();
                let seq = name.strip_prefix("checkpoint-")?.strip_suffix(".json")?.parse().ok()?;
                Some((seq, e.location))
            })
            .collect();
        older.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        for (seq, meta) in older {
            match Checkpoint::read_meta(dir, &meta) {
                Ok(Some(c)) => {
                    tracing::warn!(
                        "the latest checkpoint is damaged ({first}); resuming from checkpoint {seq}"
                    );
                    return Ok(Some(c));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("checkpoint {seq} is damaged too: {e}"),
            }
        }
        Err(first)
    }

    /// The checkpoint a meta file describes, or `None` if that file does not exist.
    fn read_meta(dir: &Location, file: &Location) -> Result<Option<Checkpoint>, ClusterError> {
        let file = file.clone();
        let bytes = match file.read() {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| err(&file, e.to_string()))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(err(&file, format!("format version {} is not supported", meta.format_version)));
        }
        let job = ResolvedJob::from_toml(&meta.job_toml, &file.to_string())
            .map_err(|e| err(&file, e.to_string()))?;
        let params_loc = dir.join(&meta.params_file);
        let st_bytes = params_loc.read()?;
        let st = SafeTensors::deserialize(&st_bytes).map_err(|e| err(&params_loc, e.to_string()))?;
        let n = meta.architecture.param_count();
        let mut state =
            tensor_f32(&st, "params", &[n], &params_loc).map_err(|e| err(&params_loc, e.to_string()))?;
        let r = meta.architecture.running_len();
        if r > 0 {
            state.extend(
                tensor_f32(&st, "running", &[r], &params_loc).map_err(|e| err(&params_loc, e.to_string()))?,
            );
        }
        if state.iter().any(|p| !p.is_finite()) {
            return Err(err(&params_loc, "parameters contain NaN or infinity"));
        }
        Ok(Some(Checkpoint {
            seq: meta.seq,
            job,
            architecture: meta.architecture,
            epoch: meta.epoch,
            partitions_done: meta.partitions_done,
            steps: meta.steps,
            tau: meta.tau,
            epochs: meta.epochs,
            state,
            failed: meta.failed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::ModelSpec;

    fn ckpt(seq: u64) -> Checkpoint {
        let architecture = Architecture::from_job(
            &ModelSpec { hidden: vec![3], ..ModelSpec::default() },
            crate::nn::Shape::Vector(4),
            2,
        )
        .unwrap();
        let n = architecture.state_len();
        Checkpoint {
            seq,
            job: ResolvedJob::resolve(crate::job::JobSpec::default()).unwrap(),
            architecture,
            epoch: 2,
            partitions_done: vec![0, 3],
            steps: 100 * seq,
            tau: Some(2e-3),
            epochs: vec![],
            state: (0..n).map(|i| i as f32 + seq as f32).collect(),
            failed: None,
        }
    }

    #[test]
    fn a_failed_run_is_marked_in_its_last_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        ckpt(1).write(&loc).unwrap();
        assert_eq!(Checkpoint::read_latest(&loc).unwrap().unwrap().failed, None);
        let failed = Checkpoint { failed: Some("worker 0: disk full".into()), ..ckpt(2) };
        failed.write(&loc).unwrap();
        assert_eq!(Checkpoint::read_latest(&loc).unwrap(), Some(failed));
    }

    #[test]
    fn running_state_travels_with_the_parameters() {
        use crate::nn::layers::{LayerEntry, LayerSpec};
        let model = ModelSpec {
            layers: Some(vec![
                LayerEntry::Layer(LayerSpec::dense(3, crate::nn::Activation::Identity)),
                LayerEntry::Layer(LayerSpec::BatchNorm(Default::default())),
            ]),
            ..ModelSpec::default()
        };
        let architecture = Architecture::from_job(&model, crate::nn::Shape::Vector(4), 2).unwrap();
        assert_eq!(architecture.running_len(), 6);
        let state: Vec<f32> = (0..architecture.state_len()).map(|i| i as f32 * 0.25).collect();
        let c = Checkpoint { architecture, state, ..ckpt(1) };
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        c.write(&loc).unwrap();
        assert_eq!(Checkpoint::read_latest(&loc).unwrap(), Some(c));
    }

    #[test]
    fn latest_wins_and_old_parameter_files_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        assert_eq!(Checkpoint::read_latest(&loc).unwrap(), None);
        for seq in 1..=4 {
            ckpt(seq).write(&loc).unwrap();
        }
        assert_eq!(Checkpoint::read_latest(&loc).unwrap(), Some(ckpt(4)));
        let mut names: Vec<String> = loc.list().unwrap().iter().map(|e| e.location.file_name()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "checkpoint-00000003.json",
                "checkpoint-00000004.json",
                "checkpoint.json",
                "params-00000003.safetensors",
                "params-00000004.safetensors"
            ]
        );
    }

    #[test]
    fn a_damaged_checkpoint_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        ckpt(1).write(&loc).unwrap();
        loc.join("params-00000001.safetensors").write_atomic(b"junk").unwrap();
        let e = Checkpoint::read_latest(&loc).unwrap_err().to_string();
        assert!(e.contains("params-00000001.safetensors"), "{e}");
    }

    #[test]
    fn a_damaged_latest_checkpoint_falls_back_to_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        ckpt(1).write(&loc).unwrap();
        ckpt(2).write(&loc).unwrap();
        loc.join("params-00000002.safetensors").write_atomic(b"cut short").unwrap();
        assert_eq!(Checkpoint::read_latest(&loc).unwrap(), Some(ckpt(1)));
        // Damaged pointer file, same.
        ckpt(3).write(&loc).unwrap();
        loc.join(CHECKPOINT_JSON).write_atomic(b"{").unwrap();
        assert_eq!(Checkpoint::read_latest(&loc).unwrap(), Some(ckpt(3)));
        // A crash half-way through a write (its files go side by side): the pointer and meta
        // are there, the state is not.
        ckpt(4).write(&loc).unwrap();
        loc.join("params-00000004.safetensors").remove_file().unwrap();
        assert_eq!(Checkpoint::read_latest(&loc).unwrap(), Some(ckpt(3)));
    }

    #[test]
    fn a_non_finite_replica_is_not_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let loc = Location::local(dir.path());
        ckpt(1).write(&loc).unwrap();
        let mut bad = ckpt(2);
        bad.state[3] = f32::INFINITY;
        let e = bad.write(&loc).unwrap_err().to_string();
        assert!(e.contains("NaN or infinity"), "{e}");
        assert_eq!(Checkpoint::read_latest(&loc).unwrap(), Some(ckpt(1)), "the previous checkpoint stands");
    }
}
