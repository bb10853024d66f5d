//! `strom submit`: run a job, or a transform process, on a Spark cluster through
//! spark-submit. This writes a small PySpark driver (src/cluster/launch/spark_driver.py) and
//! its configuration to a temporary directory and runs spark-submit on them; the driver starts
//! the coordinator and one barrier task per worker (or one task per input partition).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use super::etl::CsvArgs;
use crate::cluster::launch::spark::driver_command;
use crate::data::csv::Header;
use crate::job::{JobSpec, LauncherKind, SparkSpec};
use crate::storage::Location;

/// Where Spark runs and how spark-submit is called.
#[derive(Debug, Args, Clone)]
pub struct SparkArgs {
    /// Spark master: local[N], spark://host:7077, yarn, k8s://... [default: local[2]; for a
    /// job, its cluster.spark.master]
    #[arg(long, value_name = "URL")]
    pub master: Option<String>,
    /// An argument for spark-submit, repeated as needed (e.g. --spark-arg=--deploy-mode=client
    /// --spark-arg=--conf=spark.executor.memory=4g).
    #[arg(long = "spark-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub spark_args: Vec<String>,
    /// The spark-submit to run [default: $SPARK_HOME/bin/spark-submit, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub spark_submit: Option<PathBuf>,
    /// Ship this strom binary to the executors with --files (when they lack it); without it
    /// the executors use the same path as here, or `strom` on their PATH.
    #[arg(long)]
    pub ship_binary: bool,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  strom submit --master local[2] assets/jobs/demo.toml --workers 2\n  strom submit --master spark://head:7077 --ship-binary --advertise head job.toml\n  strom submit --master yarn --spark-arg=--deploy-mode=client --ship-binary job.toml\n  strom submit transform --master local[2] --process tp.json --input data.csv --output out/"
)]
pub struct SubmitArgs {
    #[command(subcommand)]
    pub command: Option<SubmitCommand>,
    /// The job file (TOML). Its workers run as Spark barrier tasks.
    #[arg(value_name = "JOB")]
    pub job: Option<String>,
    /// Number of workers (Spark tasks) [default: the job's cluster.workers].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Address the coordinator listens on (in the driver).
    #[arg(long, default_value = "0.0.0.0:0", value_name = "ADDR")]
    pub listen: String,
    /// Host name executors use to reach the driver [default: spark.driver.host, else the
    /// driver's host name].
    #[arg(long, value_name = "HOST")]
    pub advertise: Option<String>,
    /// Where the final model goes [default: strom-runs/<job name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<String>,
    /// Write the job's JSON summary here when it ends.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Checkpoints (local or HDFS).
    #[arg(long, value_name = "LOC")]
    pub checkpoint_dir: Option<String>,
    /// File holding the control token `strom attach` presents [default: the workers' token,
    /// made for this run: every worker task could steer the job].
    #[arg(long, value_name = "FILE")]
    pub control_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub spark: SparkArgs,
}

#[derive(Debug, Subcommand)]
pub enum SubmitCommand {
    /// Run a transform process over input partitions inside Spark tasks.
    Transform(SubmitTransformArgs),
}

#[derive(Debug, Args)]
pub struct SubmitTransformArgs {
    /// The transform process (JSON); fitted once over all the input in the driver.
    #[arg(long, value_name = "FILE")]
    pub process: String,
    /// Input: a CSV file (split into byte ranges) or a directory of them (split by files).
    #[arg(long, value_name = "LOC")]
    pub input: String,
    /// Output directory: one part-NNNNN.csv per partition, in input order.
    #[arg(long, value_name = "DIR")]
    pub output: String,
    /// Spark tasks (partitions) [default: 2 per core of this machine].
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,
    #[command(flatten)]
    pub csv: CsvArgs,
    #[command(flatten)]
    pub spark: SparkArgs,
}

fn absolute(p: &str) -> Result<String> {
    if p.contains("://") || p.starts_with("builtin:") {
        return Ok(p.to_string());
    }
    let path = Path::new(p);
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    Ok(abs.display().to_string())
}

/// Runs the driver with `config`; flags win over the job's `[cluster.spark]` (`base`), and
/// extra spark-submit arguments add up (the job's first). The coordinator's log and the
/// driver's messages come back through a pipe to this process's stderr (Spark merges a Python
/// driver's stderr into its stdout); SIGINT or SIGTERM stops spark-submit and everything it
/// started, and removes what was staged.
fn submit(spark: &SparkArgs, base: &SparkSpec, mut config: serde_json::Value) -> Result<()> {
    let master = spark.master.clone().unwrap_or_else(|| base.master.clone());
    let spec = SparkSpec {
        master: master.clone(),
        submit: spark
            .spark_submit
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| base.submit.clone()),
        args: base.args.iter().chain(&spark.spark_args).cloned().collect(),
        ship_binary: spark.ship_binary || base.ship_binary,
    };
    let logs =
        tempfile::Builder::new().prefix("strom-submit-log-").tempdir().context("staging the log pipe")?;
    let fifo = logs.path().join("log");
    make_fifo(&fifo)?;
    config["log_fifo"] = json!(fifo.display().to_string());
    let (mut cmd, staged) = driver_command(&spec, &config)?;
    let reader = fifo.clone();
    let (copied, log_done) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        // Blocks until the driver opens its end (a driver on another host never does).
        if let Ok(f) = std::fs::File::open(&reader) {
            let _ = std::io::copy(&mut std::io::BufReader::new(f), &mut std::io::stderr());
        }
        let _ = copied.send(());
    });
    tracing::info!("running spark-submit --master {master}");
    let signals = interrupt::catch();
    let mut child = {
        use std::os::unix::process::CommandExt;
        // A process group of its own: a signal here reaches spark-submit, its JVM, the driver
        // and the coordinator together.
        cmd.process_group(0).spawn().context("cannot run spark-submit")?
    };
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for spark-submit")? {
            break status;
        }
        if let Some(sig) = signals.received() {
            interrupt::stop_group(&mut child);
            drop(staged);
            drop(logs);
            bail!("interrupted by signal {sig}: spark-submit and the processes it started were stopped");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // The log's last lines: a reader still waiting for a writer is let go, one that reads is
    // given a moment to finish.
    let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo).map(drop);
    let _ = log_done.recv_timeout(std::time::Duration::from_secs(2));
    if !status.success() {
        bail!("spark-submit exited with {status}");
    }
    Ok(())
}

fn make_fifo(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).context("a log pipe path with a NUL")?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("creating {}", path.display()));
    }
    Ok(())
}

/// SIGINT and SIGTERM, noted instead of ending the process, so that what it started can be
/// stopped and its files removed.
mod interrupt {
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::time::{Duration, Instant};

    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    extern "C" fn note(sig: libc::c_int) {
        RECEIVED.store(sig, Ordering::SeqCst);
    }

    pub struct Signals;

    pub fn catch() -> Signals {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            unsafe { libc::signal(sig, note as *const () as libc::sighandler_t) };
        }
        Signals
    }

    impl Signals {
        pub fn received(&self) -> Option<i32> {
            Some(RECEIVED.load(Ordering::SeqCst)).filter(|&s| s != 0)
        }
    }

    /// SIGTERM to the child's process group, 15 s to finish, then SIGKILL.
    pub fn stop_group(child: &mut std::process::Child) {
        let group = child.id() as libc::pid_t;
        // SAFETY: signalling the process group this process created for its child.
        unsafe { libc::killpg(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; whatever of the group is still there is killed.
        unsafe { libc::killpg(group, libc::SIGKILL) };
        let _ = child.wait();
    }
}

pub fn run(args: SubmitArgs) -> Result<()> {
    let strom = std::env::current_exe().context("finding this strom binary")?.display().to_string();
    if let Some(SubmitCommand::Transform(t)) = args.command {
        return submit_transform(t, strom);
    }
    let Some(job_path) = &args.job else { bail!("name a job file: strom submit [--master URL] JOB.toml") };
    let mut job = JobSpec::read(&Location::parse(job_path)?)?;
    // The driver's coordinator must not launch workers itself: the barrier stage brings them.
    job.cluster.launcher = LauncherKind::None;
    if let Some(n) = args.workers {
        job.cluster.workers = n;
    }
    // The coordinator runs in the driver's working directory: make the job's paths absolute.
    for p in [&mut job.data.train, &mut job.data.test, &mut job.data.transform] {
        if !p.trim().is_empty() {
            *p = absolute(p)?;
        }
    }
    job.validate()
        .map_err(|errors| crate::job::JobError::Invalid { file: Some(job_path.clone()), errors })?;
    let staged = tempfile::Builder::new().prefix("strom-job-").suffix(".toml").tempfile()?;
    std::fs::write(staged.path(), job.to_toml())?;
    let output =
        absolute(args.output.as_deref().unwrap_or(&crate::engine::output::default_output(&job.name)))?;
    let summary = args.summary_json.as_deref().map(|p| absolute(&p.display().to_string())).transpose()?;
    let config = json!({
        "mode": "train",
        "name": job.name,
        "strom": strom,
        "job": staged.path().display().to_string(),
        "workers": job.cluster.workers,
        "listen": args.listen,
        "advertise": args.advertise,
        "output": output,
        "summary_json": summary,
        "checkpoint_dir": args.checkpoint_dir.as_deref().map(absolute).transpose()?,
        "control_token_file": args
            .control_token_file
            .as_ref()
            .map(|p| absolute(&p.display().to_string()))
            .transpose()?,
    });
    let master = args.spark.master.clone().unwrap_or_else(|| job.cluster.spark.master.clone());
    println!("submitting job {} with {} worker task(s) to {master}", job.name, job.cluster.workers);
    submit(&args.spark, &job.cluster.spark, config)
}

fn submit_transform(args: SubmitTransformArgs, strom: String) -> Result<()> {
    let o = args.csv.options();
    let mut csv_args = vec![
        "--delimiter".to_string(),
        o.delimiter.to_string(),
        "--quote".into(),
        o.quote.to_string(),
        "--skip-lines".into(),
        o.skip_lines.to_string(),
    ];
    match o.header {
        Header::No => csv_args.push("--no-header".into()),
        Header::Yes => csv_args.push("--header".into()),
        Header::Auto => {}
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let config = json!({
        "mode": "transform",
        "name": "strom-transform",
        "strom": strom,
        "process": absolute(&args.process)?,
        "input": absolute(&args.input)?,
        "output": absolute(&args.output)?,
        "partitions": args.partitions.unwrap_or(2 * cores).max(1),
        "csv_args": csv_args,
    });
    submit(&args.spark, &SparkSpec::default(), config)
}
