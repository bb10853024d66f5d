#!/usr/bin/env python3
"""Gradient sharing against its baselines on full Fashion-MNIST.

For each updater: 1 worker without sharing, 4 in-process workers with threshold sharing
(adaptive tau, the defaults), 4 with parameter averaging, and 4 worker processes over gRPC
(`--launcher local`), same epochs, several seeds.
Prints final test accuracy (mean and spread over seeds), bytes sent and compression ratio.

    cargo build --release
    python3 benches/sharing_accuracy.py [--epochs 15] [--seeds 1,2,3] [--data /usr/share/datasets/fashion-mnist]
    python3 benches/sharing_accuracy.py --model cnn --dropout 0.25 --updaters nesterov   # the CNN table
    python3 benches/sharing_accuracy.py --quick      # the demo subset, 1 epoch: checks it runs (CI)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=15)
p.add_argument("--seeds", default="1,2,3")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--binary", default=os.environ.get("STROM_BIN", "target/release/strom"))
p.add_argument("--quick", action="store_true", help="the built-in demo subset, 1 epoch, seed 1: checks the script runs")
p.add_argument("--updaters", default="nesterov,adam")
p.add_argument("--modes", default="", help="comma-separated mode numbers (0-3); default: all")
p.add_argument("--model", default="mlp", help="model preset: mlp (784-256-128-10), cnn, lenet5")
p.add_argument("--dropout", default=None, help="model.dropout for the preset")
args = p.parse_args()

if args.quick:
    data, args.epochs, args.seeds = [], 1, "1"
elif not os.path.exists(os.path.join(args.data, "train-images-idx3-ubyte.gz")):
    sys.exit(f"no Fashion-MNIST in {args.data}: apt-get install dataset-fashion-mnist")
else:
    data = ["--train", f"{args.data}/train", "--test", f"{args.data}/t10k"]

MODES = [("1 worker, none", ["--workers", "1"]),
         ("4 workers, threshold", ["--workers", "4", "--sharing", "threshold"]),
         ("4 workers, averaging", ["--workers", "4", "--sharing", "averaging"]),
         ("4 processes, threshold", ["--workers", "4", "--sharing", "threshold", "--launcher", "local"])]


def run(extra, seed):
    with tempfile.TemporaryDirectory() as d:
        summary = os.path.join(d, "s.json")
        cmd = [args.binary, "--log-format", "json", "train", *data,
               "--epochs", str(args.epochs), "--seed", str(seed),
               "--model", args.model, "--output", os.path.join(d, "m"), "--summary-json", summary] + extra
        if args.dropout is not None:
            cmd += ["--dropout", args.dropout]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(summary) as f:
            return json.load(f)


model = "MLP 784-256-128-10" if args.model == "mlp" else f"{args.model} preset"
if args.dropout is not None:
    model += f", dropout {args.dropout}"
print(f"{'demo subset' if args.quick else 'Fashion-MNIST 60k/10k'}, {model}, batch 64 per worker, {args.epochs} epochs, seeds {args.seeds}")
print(f"{'updater':<9} {'mode':<22} {'accuracy':>17} {'bytes sent':>12} {'compression':>12} {'mean sparsity':>14}")
for updater in args.updaters.split(","):
    chosen = [MODES[int(i)] for i in args.modes.split(",")] if args.modes else MODES
    for name, extra in chosen:
        runs = [run(extra + ["--updater", updater], int(s)) for s in args.seeds.split(",")]
        accs = [r["test_accuracy"] for r in runs]
        sent = statistics.mean(r["bytes_sent"] for r in runs)
        ratio = statistics.mean(r["compression_ratio"] for r in runs)
        spars = statistics.mean(r["mean_sparsity"] for r in runs)
        spread = f"{statistics.mean(accs):.4f} ±{(max(accs) - min(accs)) / 2:.4f}"
        cr = f"{ratio:.0f}x" if ratio else "-"
        sp = f"{spars:.2e}" if spars else "-"
        print(f"{updater:<9} {name:<22} {spread:>17} {sent / 1e6:>10.1f}MB {cr:>12} {sp:>14}", flush=True)
