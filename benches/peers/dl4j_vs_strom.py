#!/usr/bin/env python3
"""Strom against Deeplearning4j 1.0.0-M2, the same training jobs side by side in one run.

For each case (mlp-single, mlp-parallel, cnn-single, cnn-parallel) this trains the same network
on the same data with the same batch size, updater, epochs, thread count and threshold in
`strom train` (embedded launcher: W workers as threads of one process, threshold-encoded update
sharing) and in the DL4J peer (benches/peers/dl4j, strom.peer.Bench: MultiLayerNetwork.fit, or
ParallelWrapper in shared-gradients mode, W workers as threads of one JVM). Every run is its own
process; this script spawns it and reaps it with os.wait4, so peak RSS is measured the same way
for both (ru_maxrss).

Usually run through benches/peers/dl4j.sh, which builds both first. Standard library only.

  python3 benches/peers/dl4j_vs_strom.py                         # all four cases, full data
  python3 benches/peers/dl4j_vs_strom.py --quick --cases mlp-single,mlp-parallel
  python3 benches/peers/dl4j_vs_strom.py --json results.json --epochs-mlp 5

What each row means (also in the JSON under "fields"):
  samples/s        training examples per second of fit time. Strom: summary samples_per_sec
                   (samples / (train_seconds - eval_seconds); the per-epoch test evaluation is
                   excluded). DL4J: samples_per_s (examples / time inside fit(); shuffling and
                   batching between epochs and the final evaluation excluded).
  samples/s, last epoch  (shown with 2+ epochs) the same over the last epoch only, once the
                   JVM has warmed up. Strom: from --metrics-out, the samples of the last epoch
                   (less one batch) over the time from the end of its first step to the end of
                   its last. DL4J: per_epoch[-1].samples_per_s.
  test accuracy    on the whole test set after the last epoch.
  bytes/worker     encoded update bytes one worker sent, on average (parallel cases only). Both
                   count each encoded message once, as its sender produced it, not once per
                   receiver. Strom: summary bytes_sent / workers, bytes_sent being the sum over
                   workers of their codec messages (28-byte header + varint indices or 2-bit
                   bitmap). DL4J: encoded_bytes / workers, encoded_bytes being the sum over all
                   workers of the INDArrays its EncodingHandler broadcasts (int32 threshold
                   encoding: 4-int header + 4 bytes per entry, or the bitmap encoding), counted
                   by the peer's CountingEncodingHandler. In-process neither crosses a network.
  compression      dense f32 bytes (steps x parameters x 4) / bytes sent.
  peak RSS         ru_maxrss of the process from os.wait4 (KiB on Linux), in MiB. For DL4J the
                   JVM's own VmHWM is reported too (the same number seen from inside).
  start->1st step  seconds from process start to the end of the first training step.
                   Strom: from just before the spawn (measured here) to the first step, i.e. the
                   timestamp of its "model ..." log line (logged right before the workers start)
                   plus the smallest `time` of the step lines in --metrics-out (seconds since the
                   workers started, taken after the step). DL4J: jvm_start_to_first_iter_s, from
                   the JVM's start time (RuntimeMXBean) to the first iterationDone; it misses the
                   few milliseconds between exec and the JVM recording its start time.
"""

import argparse
import gzip
import json
import os
import re
import shlex
import signal
import struct
import sys
import tempfile
import time
from datetime import datetime

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DL4J_DIR = os.path.join(ROOT, "benches", "peers", "dl4j")
FULL = ("/usr/share/datasets/fashion-mnist/train", "/usr/share/datasets/fashion-mnist/t10k")
DEMO = (os.path.join(ROOT, "assets", "fashion-mnist-demo", "train"),
        os.path.join(ROOT, "assets", "fashion-mnist-demo", "test"))
ALL_CASES = ("mlp-single", "mlp-parallel", "cnn-single", "cnn-parallel")
# Per model: updater, learning rate, Nesterov momentum (DL4J's Nesterovs(lr, 0.9) in Bench).
UPDATERS = {"mlp": ("adam", 1e-3, None), "cnn": ("nesterov", 0.01, 0.9)}


def idx_file(prefix, kind):
    for name in (f"{prefix}-{kind}.gz", f"{prefix}-{kind}"):
        if os.path.isfile(name):
            return name
    return None


def open_idx(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def idx_count(prefix):
    with open_idx(idx_file(prefix, "images-idx3-ubyte")) as f:
        magic, n = struct.unpack(">II", f.read(8))
    return n


def truncate_idx(prefix, n, outdir):
    """Writes the first n examples of PREFIX into outdir/train-*.gz; returns the new prefix."""
    out = os.path.join(outdir, "train")
    with open_idx(idx_file(prefix, "images-idx3-ubyte")) as f:
        magic, total, rows, cols = struct.unpack(">IIII", f.read(16))
        n = min(n, total)
        body = f.read(n * rows * cols)
    with gzip.open(out + "-images-idx3-ubyte.gz", "wb", compresslevel=1) as g:
        g.write(struct.pack(">IIII", magic, n, rows, cols) + body)
    with open_idx(idx_file(prefix, "labels-idx1-ubyte")) as f:
        magic, _ = struct.unpack(">II", f.read(8))
        body = f.read(n)
    with gzip.open(out + "-labels-idx1-ubyte.gz", "wb", compresslevel=1) as g:
        g.write(struct.pack(">II", magic, n) + body)
    return out


def spawn(argv, log_prefix, env=None, timeout=None, dump_first=False):
    """Runs argv with stdout/stderr in log files; returns (rc, wall_s, maxrss_kib, t_spawn,
    timed_out). Past `timeout` seconds the process is killed; with dump_first (a JVM) it is sent
    SIGQUIT first, so that its thread dump lands in the stdout log, and killed 3 s later."""
    out = os.path.abspath(log_prefix + ".stdout")
    err = os.path.abspath(log_prefix + ".stderr")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [(os.POSIX_SPAWN_OPEN, 1, out, flags, 0o644),
               (os.POSIX_SPAWN_OPEN, 2, err, flags, 0o644)]
    t_spawn = time.time()
    t0 = time.monotonic()
    pid = os.posix_spawnp(argv[0], argv, env if env is not None else os.environ,
                          file_actions=actions)
    timed_out = False
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            break
        if timeout is not None and time.monotonic() - t0 > timeout:
            timed_out = True
            if dump_first:
                os.kill(pid, signal.SIGQUIT)
                time.sleep(3)
            os.kill(pid, signal.SIGKILL)
            wpid, status, ru = os.wait4(pid, 0)
            print(f"  timed out after {timeout:g} s: killed"
                  + (f" (thread dump in {out})" if dump_first else ""), file=sys.stderr)
            break
        time.sleep(0.05)
    wall = time.monotonic() - t0
    return os.waitstatus_to_exitcode(status), wall, ru.ru_maxrss, t_spawn, timed_out


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def parse_ts(s):
    # "2026-12-02T17:03:09.497094Z" (tracing's RFC 3339, UTC, up to nanoseconds)
    s = s.rstrip("Z")
    if "." in s:
        head, frac = s.split(".", 1)
        s = head + "." + frac[:6].ljust(6, "0")
    return datetime.fromisoformat(s + "+00:00").timestamp()


def strom_first_step(stderr_path, metrics_path, t_spawn):
    t_model = None
    with open(stderr_path, errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("fields", {}).get("message", "").startswith("model "):
                t_model = parse_ts(rec["timestamp"])
                break
    first = None
    with open(metrics_path) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("type") == "step" and rec.get("step") == 1:
                first = rec["time"] if first is None else min(first, rec["time"])
    if t_model is None or first is None:
        return None
    return t_model + first - t_spawn


def strom_last_epoch_rate(metrics_path, batch):
    """Samples/s over the last epoch from --metrics-out, between the end of its first step and
    the end of its last one (so the test evaluation between epochs is left out)."""
    steps = []
    with open(metrics_path) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("type") == "step":
                steps.append(rec)
    if not steps:
        return None
    last = max(r["epoch"] for r in steps)
    before, cur = {}, {}
    for r in steps:  # cumulative samples per worker at its last step of each epoch
        if r["epoch"] < last:
            before[r["worker"]] = max(before.get(r["worker"], 0), r["samples"])
        else:
            cur[r["worker"]] = max(cur.get(r["worker"], 0), r["samples"])
    times = [r["time"] for r in steps if r["epoch"] == last]
    samples = sum(v - before.get(w, 0) for w, v in cur.items()) - batch
    span = max(times) - min(times)
    return samples / span if span > 0 and samples > 0 else None


def run_strom(args, case, c, workdir):
    name = os.path.join(workdir, f"{case}.strom")
    model, workers, threads = c["model"], c["workers"], c["threads"]
    updater, lr, momentum = UPDATERS[model]
    # A job file for what has no flag: constant learning rate (DL4J's is constant; Strom's
    # default is a cosine schedule) and the adaptive threshold written out in full (Strom's
    # default, the same as DL4J's AdaptiveThresholdAlgorithm: band [1e-4, 1e-2], tau x or /
    # 0.5^(1/20) per step).
    cfg = name + ".toml"
    with open(cfg, "w") as f:
        f.write('[train]\nlr_schedule = "constant"\n\n[sharing.algorithm]\nkind = "adaptive"\n'
                f"initial = {args.threshold!r}\nmin_sparsity = 1e-4\nmax_sparsity = 1e-2\n\n"
                "[sharing.residual_clip]\nmultiple = 5.0\nevery = 5\n")
    summary, metrics = name + ".summary.json", name + ".metrics.jsonl"
    argv = [args.strom, "train", "-c", cfg, "--log-format", "json",
            "--train", c["train"], "--test", c["test"], "--model", model,
            "--epochs", str(c["epochs"]), "--batch-size", str(args.batch),
            "--updater", updater, "--lr", repr(lr), "--seed", str(args.seed),
            "--workers", str(workers), "--threads", str(threads),
            "--sharing", "threshold" if workers > 1 else "none",
            "--launcher", "embedded",
            "--summary-json", summary, "--metrics-out", metrics, "--output", name + ".model"]
    if momentum is not None:
        argv += ["--momentum", repr(momentum)]
    print("  strom: " + shlex.join(argv), flush=True)
    rc, wall, maxrss, t_spawn, timed_out = spawn(argv, name, timeout=args.timeout)
    r = {"peer": "strom", "argv": argv, "rc": rc, "wall_s": wall, "maxrss_kib": maxrss,
         "logs": name + ".stderr"}
    if timed_out:
        r["error"] = f"hang: no result after {args.timeout:g} s, killed"
        r["hang"] = True
        return r
    if rc != 0 or not os.path.isfile(summary):
        r["error"] = f"exit {rc}"
        print(f"  strom failed (exit {rc}):\n{tail(name + '.stderr')}", file=sys.stderr)
        return r
    with open(summary) as f:
        s = json.load(f)
    s.pop("evaluation", None)  # confusion matrix and per-class figures: not needed here
    r["summary"] = s
    r["samples_per_s"] = s.get("samples_per_sec")
    r["test_accuracy"] = s.get("test_accuracy")
    r["parameters"] = s.get("parameters")
    if workers > 1 and s.get("bytes_sent") is not None:
        r["bytes_per_worker"] = s["bytes_sent"] / workers
        r["compression"] = s.get("compression_ratio")
    r["peak_rss_mib"] = maxrss / 1024
    r["last_epoch_samples_per_s"] = strom_last_epoch_rate(metrics, args.batch)
    r["first_step_s"] = strom_first_step(name + ".stderr", metrics, t_spawn)
    r["first_step_from"] = "spawn (this script) to the end of the first step"
    return r


def run_dl4j(args, case, c, workdir):
    name = os.path.join(workdir, f"{case}.dl4j")
    model, workers, threads = c["model"], c["workers"], c["threads"]
    updater, lr, _ = UPDATERS[model]
    cp_file = os.path.join(DL4J_DIR, "target", "classpath.txt")
    if not os.path.isfile(cp_file):
        sys.exit(f"{cp_file} missing: build the peer first (benches/peers/dl4j/build.sh, "
                 "or run benches/peers/dl4j.sh)")
    with open(cp_file) as f:
        cp = os.path.join(DL4J_DIR, "target", "classes") + ":" + f.read().strip()
    out = name + ".json"
    # As benches/peers/dl4j/run.sh does, without the bash and build check in front, so that the
    # spawned process is the JVM itself.
    java_opts = shlex.split(os.environ.get("DL4J_JAVA_OPTS", "-Xmx6g"))
    bench_args = ["--case", model, "--mode", "parallel" if workers > 1 else "single",
                  "--train", c["train"], "--test", c["test"], "--epochs", str(c["epochs"]),
                  "--batch", str(args.batch), "--workers", str(workers), "--updater", updater,
                  "--lr", repr(lr), "--threshold", repr(args.threshold), "--seed", str(args.seed),
                  "--threads", str(threads), "--json", out]
    argv = (["java", "--add-opens=java.base/java.nio=ALL-UNNAMED"] + java_opts
            + ["-cp", cp, "strom.peer.Bench"] + bench_args)
    print("  dl4j:  benches/peers/dl4j/run.sh Bench " + shlex.join(bench_args), flush=True)
    env = dl4j_env(args)
    rc, wall, maxrss, _, timed_out = spawn(argv, name, env=env, timeout=args.timeout, dump_first=True)
    r = {"peer": "dl4j", "argv": argv, "rc": rc, "wall_s": wall, "maxrss_kib": maxrss,
         "logs": name + ".stderr", "openblas_core": openblas_core(name + ".stderr"),
         "openblas_env": {k: env[k] for k in OPENBLAS_TUNING if k in env}}
    if timed_out:
        # A deadlock is a result of its own: reported, with the JVM's thread dump kept.
        r["error"] = f"hang: no result after {args.timeout:g} s, killed; thread dump in {name}.stdout"
        r["hang"] = True
        print(f"  dl4j hung:\n{tail(name + '.stderr')}", file=sys.stderr)
        return r
    if rc != 0 or not os.path.isfile(out):
        r["error"] = f"exit {rc}"
        print(f"  dl4j failed (exit {rc}):\n{tail(name + '.stderr')}", file=sys.stderr)
        return r
    with open(out) as f:
        s = json.load(f)
    r["summary"] = s
    r["samples_per_s"] = s.get("samples_per_s")
    r["test_accuracy"] = s.get("test_accuracy")
    r["parameters"] = s.get("num_params")
    if s.get("per_epoch"):
        r["last_epoch_samples_per_s"] = s["per_epoch"][-1].get("samples_per_s")
    if workers > 1 and s.get("encoded_bytes") is not None:
        r["bytes_per_worker"] = s["encoded_bytes"] / workers
        its, p = s.get("iterations"), s.get("num_params")
        if its and p and s["encoded_bytes"]:
            r["compression"] = its * p * 4 / s["encoded_bytes"]
    r["peak_rss_mib"] = maxrss / 1024
    r["vmhwm_mib"] = s.get("peak_rss_mib")
    r["first_step_s"] = s.get("jvm_start_to_first_iter_s")
    r["first_step_from"] = "JVM start time (RuntimeMXBean) to the first iterationDone"
    return r


# Variables that pin OpenBLAS (DL4J's BLAS) to a core type and cache size. An environment that
# sets OPENBLAS_CORETYPE=Haswell pins AVX2 kernels on a CPU with AVX-512; the DL4J peer runs
# without them by default, so OpenBLAS picks its kernels for the CPU it finds, as PyTorch's MKL
# and oneDNN do (--keep-openblas-env keeps them). The OpenBLAS bundled with ND4J 1.0.0-M2 knows
# no AVX-512 AMD core: on an AMD EPYC with AVX-512 it picks "Zen" (AVX2 kernels);
# --openblas-coretype SkylakeX makes it run its AVX-512 kernels there.
OPENBLAS_TUNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def dl4j_env(args):
    env = dict(os.environ)
    if not args.keep_openblas_env:
        for k in OPENBLAS_TUNING:
            env.pop(k, None)
    if args.openblas_coretype:
        env["OPENBLAS_CORETYPE"] = args.openblas_coretype
    # OpenBLAS names the core it chose ("Core: SkylakeX") on stderr at load time.
    env["OPENBLAS_VERBOSE"] = "2"
    return env


def openblas_core(stderr_path):
    """The kernel set OpenBLAS chose, from its OPENBLAS_VERBOSE=2 line, or None."""
    try:
        with open(stderr_path, errors="replace") as f:
            for line in f:
                m = re.search(r"Core:\s*(\S+)", line)
                if m:
                    return m.group(1)
    except OSError:
        pass
    return None


def fmt_num(v, kind):
    if v is None:
        return "-"
    if kind == "rate":
        return f"{v:,.0f}"
    if kind == "acc":
        return f"{v:.4f}"
    if kind == "bytes":
        for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if v >= div:
                return f"{v / div:.2f} {unit}"
        return f"{v:.0f} B"
    if kind == "x":
        return f"{v:,.1f}x"
    if kind == "mib":
        return f"{v:,.1f}"
    if kind == "s":
        return f"{v:.3f}" if v < 1 else f"{v:.2f}"
    return str(v)


def print_table(case, c, s, d, args):
    upd, lr, mom = UPDATERS[c["model"]]
    upd_s = f"{upd} lr {lr:g}" + (f" momentum {mom:g}" if mom is not None else "")
    title = (f"{case}: {c['model']} ({s.get('parameters') or d.get('parameters') or '?'} params),"
             f" {c['workers']} worker(s) x {c['threads']} thread(s), batch {args.batch}, {upd_s},"
             f" {c['epochs']} epoch(s), {c['data']} data ({c['n_train']} train)")
    print("\n" + title)
    rows = [("samples/s", "samples_per_s", "rate", True),
            ("test accuracy", "test_accuracy", "acc", False)]
    if c["epochs"] > 1:
        rows.insert(1, ("samples/s, last epoch", "last_epoch_samples_per_s", "rate", True))
    if c["workers"] > 1:
        rows += [("bytes sent / worker", "bytes_per_worker", "bytes", True),
                 ("compression vs dense f32", "compression", "x", False)]
    rows += [("peak RSS MiB (wait4)", "peak_rss_mib", "mib", True),
             ("DL4J VmHWM MiB", "vmhwm_mib", "mib", False),
             ("start -> 1st step, s", "first_step_s", "s", True)]
    print(f"  {'':26}{'Strom':>14}{'DL4J':>14}{'Strom/DL4J':>12}")
    for label, key, kind, ratio in rows:
        a, b = s.get(key), d.get(key)
        rt = f"{a / b:.2f}x" if ratio and a is not None and b not in (None, 0) else ""
        print(f"  {label:26}{fmt_num(a, kind):>14}{fmt_num(b, kind):>14}{rt:>12}")
    if d.get("openblas_core") or "openblas_env" in d:
        pinned = ", ".join(f"{k}={v}" for k, v in d.get("openblas_env", {}).items())
        print(f"  DL4J's OpenBLAS kernels: {d.get('openblas_core') or 'not reported'}"
              + (f" (pinned by {pinned})" if pinned else " (chosen for this CPU)"))
    for r in (s, d):
        if r.get("hang"):
            print(f"  {r['peer']}: HANG ({r['error']}), log {r['logs']}")
        elif "error" in r:
            print(f"  {r['peer']}: FAILED ({r['error']}), log {r['logs']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(ALL_CASES),
                    help="comma-separated, from " + ",".join(ALL_CASES))
    ap.add_argument("--data", choices=("auto", "demo", "full"), default="auto",
                    help="full Fashion-MNIST (" + os.path.dirname(FULL[0]) + "), the demo subset "
                    "(assets/fashion-mnist-demo), or auto: full where installed [auto]")
    ap.add_argument("--epochs-mlp", type=int, default=2)
    ap.add_argument("--epochs-cnn", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4, help="workers of the parallel cases [4]")
    ap.add_argument("--batch", type=int, default=64, help="minibatch per worker [64]")
    ap.add_argument("--threshold", type=float, default=1e-3,
                    help="initial adaptive threshold, both peers [1e-3]")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--limit-train", type=int, default=None, metavar="N",
                    help="train on the first N training examples (both peers get the same "
                    "truncated copy, written to the work directory)")
    ap.add_argument("--strom", default=os.environ.get("STROM_BIN", os.path.join(ROOT, "target", "release", "strom")))
    ap.add_argument("--quick", action="store_true", help="demo data, 1 epoch per case")
    ap.add_argument("--json", metavar="OUT", help="write every raw result here")
    ap.add_argument("--workdir", help="logs, summaries and models (default: a new temp dir)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per run before it counts as a hang and is killed (a JVM gets "
                    "SIGQUIT first: its thread dump goes to the run's stdout log) [default: 600 "
                    "with --quick, else 1800]")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="run DL4J with this environment's OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE "
                    "(by default they are removed from the DL4J run alone)")
    ap.add_argument("--openblas-coretype", metavar="CORE",
                    help="set OPENBLAS_CORETYPE for the DL4J run alone, e.g. SkylakeX for "
                    "OpenBLAS's AVX-512 kernels on a CPU it does not recognise")
    args = ap.parse_args()

    cases = [x.strip() for x in args.cases.split(",") if x.strip()]
    for x in cases:
        if x not in ALL_CASES:
            ap.error(f"unknown case {x!r}; choose from {','.join(ALL_CASES)}")
    if args.quick:
        args.data = "demo" if args.data == "auto" else args.data
        args.epochs_mlp = args.epochs_cnn = 1
    if args.timeout is None:
        args.timeout = 600.0 if args.quick else 1800.0
    full_ok = all(idx_file(p, k) for p in FULL for k in ("images-idx3-ubyte", "labels-idx1-ubyte"))
    if args.data == "auto":
        args.data = "full" if full_ok else "demo"
    if args.data == "full" and not full_ok:
        sys.exit(f"--data full: no Fashion-MNIST under {os.path.dirname(FULL[0])}")
    train, test = FULL if args.data == "full" else DEMO
    if not os.access(args.strom, os.X_OK):
        sys.exit(f"{args.strom}: not an executable (cargo build --release)")

    workdir = args.workdir or tempfile.mkdtemp(prefix="dl4j_vs_strom.")
    os.makedirs(workdir, exist_ok=True)
    data_label = args.data
    if args.limit_train:
        train = truncate_idx(train, args.limit_train, workdir)
        data_label += f" (first {args.limit_train})"
    n_train, n_test = idx_count(train), idx_count(test)
    cores = len(os.sched_getaffinity(0))
    print(f"cores {cores}; data {data_label}: {n_train} train, {n_test} test; logs in {workdir}")

    results = []
    for case in cases:
        model, mode = case.split("-")
        workers = args.workers if mode == "parallel" else 1
        c = {"case": case, "model": model, "workers": workers,
             "threads": max(1, cores // workers),  # DL4J's advice: split the cores
             "epochs": args.epochs_mlp if model == "mlp" else args.epochs_cnn,
             "train": train, "test": test, "data": data_label, "n_train": n_train,
             "n_test": n_test}
        print(f"\n[{case}]", flush=True)
        s = run_strom(args, case, c, workdir)
        d = run_dl4j(args, case, c, workdir)
        results.append({"case": c, "strom": s, "dl4j": d})
        print_table(case, c, s, d, args)
        sys.stdout.flush()

    if args.json:
        doc = {
            "settings": {k: v for k, v in vars(args).items()},
            "machine": {"cores": cores, "cpu": cpu_model()},
            "fields": field_notes(),
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"\nraw results: {args.json}")
    hung = [f"{r['case']['case']}/{p}" for r in results for p in ("strom", "dl4j")
            if r[p].get("hang")]
    if hung:
        print("hung (killed after the timeout; reported above): " + ", ".join(hung))
    failed = [f"{r['case']['case']}/{p}" for r in results for p in ("strom", "dl4j")
              if "error" in r[p] and not r[p].get("hang")]
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        sys.exit(1)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def field_notes():
    doc = __doc__.split("What each row means (also in the JSON under \"fields\"):\n", 1)[1]
    return doc.strip()


if __name__ == "__main__":
    main()
