# The PySpark driver `strom submit` writes and hands to spark-submit. Two modes:
#
#   train:     start `strom coordinator` here, then one barrier stage with a task per worker,
#              each running `strom worker` against it; exit with the coordinator's status.
#   transform: fit the transform process here, then one task per input partition, each
#              running `strom transform --partition i/n` into OUTPUT/part-NNNNN.csv.
#
# The strom binary is the one named in the config when it exists where a task runs, else the
# one shipped with --files (SparkFiles), else `strom` on the executors' PATH.
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

from pyspark import BarrierTaskContext, SparkFiles
from pyspark.sql import SparkSession


def find_binary(named):
    if named and os.path.isfile(named) and os.access(named, os.X_OK):
        return named
    try:
        shipped = SparkFiles.get(os.path.basename(named) or "strom")
        if os.path.isfile(shipped):
            os.chmod(shipped, 0o755)
            return shipped
    except Exception:
        pass
    found = shutil.which("strom")
    if found:
        return found
    raise RuntimeError(f"no strom binary on {socket.gethostname()}: not at {named}, not shipped, not on PATH")


def die_with_parent():
    """In a task's child: end it when the task's Python worker ends (Linux), so a stopped job
    leaves no worker retrying a coordinator that is gone."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def tail(text, lines=15):
    return "\n".join(text.strip().splitlines()[-lines:])


# Spark merges this driver's stderr into its stdout: `strom submit` hands over a pipe for the
# coordinator's log and the driver's own messages, read back to its stderr.
LOG = sys.stderr


def open_log(cfg):
    global LOG
    path = cfg.get("log_fifo")
    if path and os.path.exists(path):
        LOG = open(path, "w", buffering=1)


def say(message):
    print(f"strom: {message}", file=LOG, flush=True)


# What to undo when the driver is told to stop (SIGTERM from `strom submit`, or Spark's own).
CLEANUP = []


def on_term(signum, _frame):
    for undo in reversed(CLEANUP):
        try:
            undo()
        except Exception:
            pass
    os._exit(128 + signum)


def train(spark, cfg):
    sc = spark.sparkContext
    strom = find_binary(cfg["strom"])
    work = tempfile.mkdtemp(prefix="strom-submit-")
    CLEANUP.append(lambda: shutil.rmtree(work, ignore_errors=True))
    token = os.urandom(24).hex()
    token_file = os.path.join(work, "token")
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, token.encode())
    os.close(fd)
    cmd = [strom, "coordinator", "--job", cfg["job"], "--listen", cfg["listen"], "--token-file", token_file]
    for flag in ("output", "summary_json", "checkpoint_dir", "control_token_file"):
        if cfg.get(flag):
            cmd += ["--" + flag.replace("_", "-"), cfg[flag]]
    coordinator = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=LOG, text=True)
    CLEANUP.append(coordinator.terminate)
    first = coordinator.stdout.readline()
    if "listening on" not in first:
        sys.exit(coordinator.wait() or 1)
    local_url = first.strip().split()[-1]
    if local_url.startswith("https://") and not cfg.get("tls_pin"):
        # A certificate the coordinator made at start: the next line has its fingerprint.
        said = coordinator.stdout.readline().split()
        if said[:2] == ["tls", "pin:"]:
            cfg["tls_pin"] = said[2]
    scheme, rest = local_url.split("://")
    port = rest.rsplit(":", 1)[1]
    host = cfg.get("advertise") or sc.getConf().get("spark.driver.host", socket.gethostname())
    url = f"{scheme}://{host}:{port}"
    pin = f" --tls-pin {cfg['tls_pin']}" if cfg.get("tls_pin") else ""
    control = cfg.get("control_token_file") or token_file
    print(f"strom: coordinator at {url}; attach with: strom attach {url} --token-file {control}{pin}", flush=True)
    # Echo the coordinator's progress while the stage runs.
    threading.Thread(target=lambda: [print(line, end="", flush=True) for line in coordinator.stdout], daemon=True).start()

    code = run_workers(sc, cfg, url, token)
    if code != 0:
        coordinator.terminate()
    code = coordinator.wait() or code
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(code)


def run_workers(sc, cfg, url, token):
    """One barrier stage, a task per worker: all start together or none do."""
    workers = int(cfg["workers"])
    named = cfg["strom"]

    def run_worker(_):
        ctx = BarrierTaskContext.get()
        i = ctx.partitionId()
        binary = find_binary(named)
        name = f"spark-{i}@{socket.gethostname()}"
        pin = ["--tls-pin", cfg["tls_pin"]] if cfg.get("tls_pin") else []
        p = subprocess.run(
            [binary, "worker", "--coordinator", url, "--token-file", "-", "--name", name] + pin,
            input=token,
            capture_output=True,
            text=True,
            preexec_fn=die_with_parent,
        )
        yield (i, p.returncode, tail(p.stderr))

    try:
        results = sc.parallelize(range(workers), workers).barrier().mapPartitions(run_worker).collect()
    except Exception as e:  # a task that could not even start (no slots, no binary)
        text = str(e)
        if "SPARK-24819" in text or "more slots than the total number of slots" in text:
            say(f"Spark has fewer task slots than the {workers} worker tasks this job runs together "
                "(one barrier stage): give the cluster more executor cores, or run fewer workers")
        else:
            say(f"the worker stage failed: {tail(text, 5)}")
        return 1
    failed = 0
    for i, code, said in sorted(results):
        if code != 0:
            failed += 1
            say(f"worker task {i} exited with {code}:\n{said}")
    return 1 if failed == workers else 0


def workers(spark, cfg):
    """Worker tasks for a coordinator that runs elsewhere (the cockpit's Spark launcher)."""
    # The token sits in the config file, in a directory only this user can read.
    sys.exit(run_workers(spark.sparkContext, cfg, cfg["url"], cfg.get("token", "")))


def transform(spark, cfg):
    sc = spark.sparkContext
    strom = find_binary(cfg["strom"])
    csv_args = cfg.get("csv_args", [])
    work = tempfile.mkdtemp(prefix="strom-submit-")
    CLEANUP.append(lambda: shutil.rmtree(work, ignore_errors=True))
    fitted_path = os.path.join(work, "fitted.json")
    # Statistics are fitted once, over all the input, so every partition applies the same ones.
    fitted = subprocess.run(
        [strom, "transform", "--process", cfg["process"], "--input", cfg["input"], "--fit-only", "--fitted-out", fitted_path]
        + csv_args,
        capture_output=True,
        text=True,
    )
    if fitted.returncode != 0:
        print(fitted.stderr, file=LOG, end="", flush=True)
        sys.exit(fitted.returncode)
    with open(fitted_path) as f:
        process_json = f.read()
    shutil.rmtree(work, ignore_errors=True)
    parts = int(cfg["partitions"])
    output = cfg["output"].rstrip("/")
    if "://" not in output:
        os.makedirs(output, exist_ok=True)
    named, source = cfg["strom"], cfg["input"]

    def run_part(i):
        binary = find_binary(named)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(process_json)
        out = f"{output}/part-{i:05d}.csv"
        p = subprocess.run(
            [binary, "transform", "--process", f.name, "--input", source, "--partition", f"{i}/{parts}", "--output", out,
             "--summary-json", f.name + ".summary"] + csv_args,
            capture_output=True,
            text=True,
        )
        report = {}
        if p.returncode == 0:
            with open(f.name + ".summary") as s:
                report = json.load(s)["report"]
            os.unlink(f.name + ".summary")
        os.unlink(f.name)
        return (i, p.returncode, tail(p.stderr), report)

    results = sc.parallelize(range(parts), parts).map(run_part).collect()
    failed = [r for r in results if r[1] != 0]
    for i, code, said, _ in failed:
        say(f"transform task {i} exited with {code}:\n{said}")
    if failed:
        sys.exit(1)
    rows_in = sum(r[3].get("rows_in", 0) for r in results)
    rows_out = sum(r[3].get("rows_out", 0) for r in results)
    print(f"strom: {parts} partition(s), {rows_in} rows in, {rows_out} out, written to {output}/part-*.csv", flush=True)


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    open_log(cfg)
    signal.signal(signal.SIGTERM, on_term)
    spark = SparkSession.builder.appName(cfg.get("name", "strom")).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        {"train": train, "transform": transform, "workers": workers}[cfg["mode"]](spark, cfg)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
