//! Spark: spark-submit runs a small PySpark driver (spark_driver.py, staged in a private
//! temporary directory with its JSON config). `strom submit` puts the coordinator in the
//! driver; the Spark launcher here (cockpit, `strom train --launcher spark`) keeps the
//! coordinator in this process and submits only the barrier stage of worker tasks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::local::{ChildSlots, Tail, lock, spawn_tied};
use super::{LaunchContext, Launcher};
use crate::cluster::ClusterError;
use crate::job::SparkSpec;

const DRIVER: &str = include_str!("spark_driver.py");

/// The spark-submit to run: the given path, $SPARK_HOME/bin/spark-submit, or one on PATH.
pub fn find_spark_submit(given: Option<&Path>) -> Result<PathBuf, ClusterError> {
    if let Some(p) = given.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(p.to_path_buf());
    }
    if let Some(home) = std::env::var_os("SPARK_HOME") {
        let p = Path::new(&home).join("bin/spark-submit");
        if p.exists() {
            return Ok(p);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join("spark-submit")).find(|p| p.exists()).ok_or_else(|| {
        ClusterError::Launch(
            "spark-submit not found: install Spark (or `pip install pyspark`), set SPARK_HOME, or give its path (cluster.spark.submit / --spark-submit)"
                .into(),
        )
    })
}

/// Spark's slot check for a barrier stage on a cluster master: tries and the time between them.
const BARRIER_CHECK: [(&str, &str); 2] = [
    ("spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures", "4"),
    ("spark.scheduler.barrier.maxConcurrentTasksCheck.interval", "5s"),
];

/// The tasks a local master runs at a time: `local` 1, `local[N]` / `local[N,F]` N, `local[*]`
/// this machine's cores, `local-cluster[E,C,M]` E×C; `None` for a cluster master.
pub fn local_slots(master: &str) -> Option<usize> {
    let cores = || std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let master = master.trim();
    if master == "local" {
        return Some(1);
    }
    let inner = |prefix: &str| master.strip_prefix(prefix).and_then(|r| r.strip_suffix(']'));
    if let Some(args) = inner("local-cluster[") {
        let mut it = args.split(',').map(|a| a.trim().parse::<usize>().ok());
        return Some(it.next()??.saturating_mul(it.next()??));
    }
    let first = inner("local[")?.split(',').next()?.trim();
    if first == "*" { Some(cores()) } else { first.parse().ok() }
}

/// A spark-submit command running the driver with `config`, and the directory holding both
/// (removed when dropped, so keep it until the command ends).
pub fn driver_command(
    spec: &SparkSpec,
    config: &serde_json::Value,
) -> Result<(Command, tempfile::TempDir), ClusterError> {
    let io = |e: std::io::Error| ClusterError::Launch(format!("staging the Spark driver: {e}"));
    let submit = find_spark_submit(Some(Path::new(&spec.submit)))?;
    let barrier = matches!(config["mode"].as_str(), Some("train" | "workers"));
    let tasks = config["workers"].as_u64().unwrap_or(0) as usize;
    if barrier
        && let Some(slots) = local_slots(&spec.master)
        && tasks > slots
    {
        return Err(ClusterError::Launch(format!(
            "Spark master {} runs {slots} task(s) at a time and this job needs {tasks} worker tasks \
                 running together (one barrier stage): use --master 'local[{tasks}]' or at most {slots} workers",
            spec.master
        )));
    }
    let dir = tempfile::Builder::new().prefix("strom-submit-").tempdir().map_err(io)?;
    let driver = dir.path().join("strom_driver.py");
    std::fs::write(&driver, DRIVER).map_err(io)?;
    let cfg = dir.path().join("strom_submit.json");
    std::fs::write(&cfg, serde_json::to_string_pretty(config).unwrap_or_default()).map_err(io)?;
    let mut cmd = Command::new(&submit);
    cmd.args(["--master", &spec.master]);
    if spec.ship_binary {
        cmd.args(["--files", config["strom"].as_str().unwrap_or_default()]);
    }
    // On a cluster master Spark checks the slots itself, every 15 s for 40 tries (10 minutes)
    // before it gives up: a few tries, unless the job's own arguments say otherwise.
    if barrier {
        for (key, value) in BARRIER_CHECK {
            if !spec.args.iter().any(|a| a.contains(key)) {
                cmd.args(["--conf", &format!("{key}={value}")]);
            }
        }
    }
    cmd.args(&spec.args).arg(&driver).arg(&cfg);
    // A pip-installed pyspark runs its Python with `python3` unless told otherwise: use the
    // Python beside spark-submit (its virtual environment) when there is one.
    if std::env::var_os("PYSPARK_PYTHON").is_none()
        && let Some(py) = submit.parent().map(|d| d.join("python")).filter(|p| p.exists())
    {
        cmd.env("PYSPARK_PYTHON", &py).env("PYSPARK_DRIVER_PYTHON", &py);
    }
    Ok((cmd, dir))
}

pub struct SparkLauncher {
    spec: SparkSpec,
    children: ChildSlots,
    staged: Mutex<Vec<tempfile::TempDir>>,
}

impl SparkLauncher {
    pub fn new(spec: &SparkSpec) -> SparkLauncher {
        SparkLauncher { spec: spec.clone(), children: ChildSlots::default(), staged: Mutex::new(vec![]) }
    }
}

impl Launcher for SparkLauncher {
    fn start(&self, count: usize, ctx: &LaunchContext) -> Result<(), ClusterError> {
        let config = serde_json::json!({
            "mode": "workers",
            "name": "strom-workers",
            "strom": ctx.binary.display().to_string(),
            "url": ctx.url,
            "token": ctx.token.clone().unwrap_or_default(),
            "tls_pin": ctx.tls_pin.map(|p| p.to_string()),
            "workers": count,
        });
        let (mut cmd, dir) = driver_command(&self.spec, &config)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            spawn_tied(cmd).map_err(|e| ClusterError::Launch(format!("cannot run spark-submit: {e}")))?;
        let tail = Tail::default();
        for out in [
            child.stdout.take().map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|e| Box::new(e) as _),
        ]
        .into_iter()
        .flatten()
        {
            let tail = tail.clone();
            let _ = std::thread::Builder::new().name("strom-spark-output".into()).spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    // Spark's own INFO chatter stays out of the job's log.
                    if line.starts_with("strom:") || line.contains(" ERROR ") || line.starts_with("error") {
                        tracing::warn!("[spark] {line}");
                    }
                    tail.push(line);
                }
            });
        }
        tracing::info!("submitted {count} worker task(s) to Spark at {}", self.spec.master);
        // Spark retries failed tasks itself (spark.task.maxFailures); the driver is not restarted.
        self.children.push(
            child,
            tail,
            format!("spark-submit ({})", self.spec.master),
            ctx.problems.clone(),
            None,
            0,
        );
        self.children.start_monitor();
        lock(&self.staged).push(dir);
        Ok(())
    }

    fn stop_all(&self) {
        self.children.stop_all();
    }

    fn describe(&self) -> String {
        format!("Spark tasks at {}", self.spec.master)
    }
}

impl Drop for SparkLauncher {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_masters_have_the_slots_they_name() {
        assert_eq!(local_slots("local"), Some(1));
        assert_eq!(local_slots("local[2]"), Some(2));
        assert_eq!(local_slots("local[3, 4]"), Some(3));
        assert_eq!(local_slots("local-cluster[2,3,1024]"), Some(6));
        assert!(local_slots("local[*]").unwrap() >= 1);
        assert_eq!(local_slots("spark://head:7077"), None);
        assert_eq!(local_slots("yarn"), None);
    }

    fn spec(master: &str, args: &[&str]) -> SparkSpec {
        SparkSpec {
            master: master.into(),
            submit: "/opt/spark/bin/spark-submit".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ship_binary: false,
        }
    }

    fn argv(cmd: &Command) -> Vec<String> {
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn barrier_stages_are_checked_before_submitting_and_spark_retries_less() {
        let train = |workers: u64| serde_json::json!({ "mode": "train", "workers": workers });
        let e = driver_command(&spec("local[2]", &[]), &train(3)).err().unwrap().to_string();
        assert!(e.contains("local[2] runs 2 task(s) at a time") && e.contains("needs 3 worker tasks"), "{e}");
        assert!(driver_command(&spec("local[2]", &[]), &train(2)).is_ok());
        // A cluster master: Spark's own check, with its retries turned down, unless the job's
        // arguments set them.
        let (cmd, _dir) = driver_command(&spec("spark://head:7077", &[]), &train(64)).unwrap();
        let args = argv(&cmd).join(" ");
        assert!(
            args.contains("--conf spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures=4"),
            "{args}"
        );
        let own = ["--conf", "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures=10"];
        let (cmd, _dir) = driver_command(&spec("yarn", &own), &train(8)).unwrap();
        let args = argv(&cmd).join(" ");
        assert_eq!(args.matches("maxConcurrentTasksCheck.maxFailures").count(), 1, "{args}");
        // A transform is no barrier stage: any number of partitions.
        let transform = serde_json::json!({ "mode": "transform", "partitions": 16 });
        assert!(driver_command(&spec("local[2]", &[]), &transform).is_ok());
    }
}
