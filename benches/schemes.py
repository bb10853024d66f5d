#!/usr/bin/env python3
"""Every compression scheme side by side on full Fashion-MNIST: test accuracy, bytes sent per
worker, compression against dense f32 and wall time, one run per scheme (and seed).

    cargo build --release
    python3 benches/schemes.py                                  # the MLP, 4 workers, 15 epochs
    python3 benches/schemes.py --model cnn --dropout 0.25       # the `cnn` preset
    python3 benches/schemes.py --updater adam --schemes threshold,threshold-gradient,powersgd,dense16
    python3 benches/schemes.py --quick                          # the demo subset, 1 epoch (CI)
    python3 benches/schemes.py --model cnn --dropout 0.25 --schemes threshold-placed --lr 0.015 --seeds 1,2,3
                                                                # a learning rate, or a warm-up
                                                                # (--warmup EPOCHS), for every run
    python3 benches/schemes.py --updater adam --schemes none,threshold --set train.updater.beta1=0.6
                                                                # any job key, for every run
    python3 benches/schemes.py --model resnet20 --epochs 12 --lr 0.1 --set train.batch_size=128 \
        --set 'train.lr_schedule="cosine"' --set train.l2=5e-4 \
        --set 'sharing.algorithm={kind="adaptive",initial=1e-3,min_sparsity=1e-4,max_sparsity=3.5e-3}'
                                                                # the `resnet20` rows: the settings of
                                                                # assets/jobs/fashion-mnist-resnet20.toml

A scheme name may carry a variant: `threshold-gradient` (sharing.share = "gradient"),
`topk-nowarmup` (sharing.topk.warmup_epochs = 0), `threshold-low` (the band at a tenth of its
default: min 1e-5, max 1e-3), `threshold-placed` (sharing.place_tau = true: tau starts in its
band), `none` (one worker).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("--model", default="mlp")
p.add_argument("--dropout", default=None)
p.add_argument("--updater", default="nesterov")
p.add_argument("--workers", type=int, default=4)
p.add_argument("--epochs", type=int, default=15)
p.add_argument("--seeds", default="1")
p.add_argument("--lr", default=None, help="the learning rate of every run (default: the updater's)")
p.add_argument("--warmup", type=float, default=0.0, help="train.lr_warmup_epochs for every run")
p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
               help="a job key for every run, as TOML (repeatable): --set train.updater.beta1=0.6")
p.add_argument("--schemes", default="none,threshold,topk,topk-nowarmup,powersgd,dense16,averaging")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--binary", default=os.environ.get("STROM_BIN", "target/release/strom"))
p.add_argument("--launcher", default="embedded", help="embedded (threads) or local (processes)")
p.add_argument("--quick", action="store_true", help="the built-in demo subset, one epoch: checks the script runs")
p.add_argument("--json", default=None, help="also write the rows here")
args = p.parse_args()

VARIANTS = {
    "threshold-gradient": ("threshold", '[sharing]\nshare = "gradient"\n'),
    "topk-nowarmup": ("topk", "[sharing.topk]\nwarmup_epochs = 0\n"),
    "threshold-low": ("threshold", '[sharing.algorithm]\nkind = "adaptive"\nmin_sparsity = 1e-5\nmax_sparsity = 1e-3\n'),
    "threshold-placed": ("threshold", "[sharing]\nplace_tau = true\n"),
}

if args.quick:
    data = []
    args.epochs = 1
else:
    if not os.path.exists(os.path.join(args.data, "train-images-idx3-ubyte.gz")):
        sys.exit(f"no Fashion-MNIST in {args.data}: apt-get install dataset-fashion-mnist")
    data = ["--train", f"{args.data}/train", "--test", f"{args.data}/t10k"]


def run(scheme, seed):
    mode, extra_toml = VARIANTS.get(scheme, (scheme, ""))
    with tempfile.TemporaryDirectory() as d:
        summary = os.path.join(d, "s.json")
        job = os.path.join(d, "job.toml")
        with open(job, "w") as f:
            # Dotted keys first, before any table the variant opens.
            if args.warmup > 0:
                f.write(f"train.lr_warmup_epochs = {args.warmup}\n")
            for kv in args.set:
                key, _, value = kv.partition("=")
                f.write(f"{key.strip()} = {value.strip()}\n")
            f.write(extra_toml)
        workers = "1" if mode == "none" else str(args.workers)
        cmd = [args.binary, "--log-format", "json", "train", "--config", job, *data,
               "--epochs", str(args.epochs), "--seed", str(seed), "--model", args.model,
               "--updater", args.updater, "--workers", workers, "--sharing", mode,
               "--launcher", "embedded" if mode == "none" else args.launcher,
               "--output", os.path.join(d, "m"), "--summary-json", summary]
        if args.dropout is not None:
            cmd += ["--dropout", args.dropout]
        if args.lr is not None:
            cmd += ["--lr", args.lr]
        t0 = time.time()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit(f"{scheme} (seed {seed}) failed with exit status {done.returncode}: "
                     f"{' '.join(cmd)}\n{done.stderr[-2000:]}")
        wall = time.time() - t0
        with open(summary) as f:
            s = json.load(f)
        s["wall"] = wall
        return s


batch = next((kv.partition("=")[2].strip() for kv in args.set
              if kv.partition("=")[0].strip() == "train.batch_size"), "64")
print(f"{'full Fashion-MNIST' if not args.quick else 'demo subset'}, {args.model}, {args.updater}, "
      f"{args.workers} workers ({args.launcher}), batch {batch} each, {args.epochs} epochs, seeds {args.seeds}"
      + (f", lr {args.lr}" if args.lr is not None else "")
      + (f", lr warm-up {args.warmup} epochs" if args.warmup > 0 else "")
      + "".join(f", {kv}" for kv in args.set))
print(f"{'scheme':<20} {'accuracy':>9} {'sent/worker':>12} {'compression':>12} {'wall s':>7}")
rows = []
for scheme in args.schemes.split(","):
    for seed in [int(s) for s in args.seeds.split(",")]:
        s = run(scheme, seed)
        workers = 1 if scheme == "none" else args.workers
        per_worker = s["bytes_sent"] / workers
        ratio = s["compression_ratio"]
        acc = s.get("test_accuracy") or 0.0
        rows.append({"scheme": scheme, "seed": seed, "accuracy": acc, "bytes_per_worker": per_worker,
                     "compression": ratio, "wall_seconds": s["wall"]})
        comp = f"{ratio:.0f}x" if ratio > 0 else "-"
        print(f"{scheme:<20} {acc:>9.4f} {per_worker / 1e6:>10.1f}MB {comp:>12} {s['wall']:>7.0f}", flush=True)
if args.json:
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=1)
