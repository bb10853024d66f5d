#!/usr/bin/env python3
"""Which layers, and which blocks of layers, send most under threshold sharing.

Reads a run's --metrics-out file (one JSON line per worker step; with threshold sharing each
step line has "layers": [{"layer": L, "entries": N, "residual_norm": R}, ...]) and the model's
layer names and parameter counts from `strom train --config JOB --print-model`, sums the entries
every worker sent per layer over the whole run, and prints them per layer and per block (a
layer's name up to its first "_": s2b1_conv1 and s2b1_proj are block s2b1; unnamed layers are
their own block). Standard library only.

  python3 benches/sharing_by_layer.py --job assets/jobs/fashion-mnist-resnet20.toml \\
      --metrics run/metrics.jsonl [--strom target/release/strom] [--layers]
  python3 benches/sharing_by_layer.py --quick     # trains the demo and reads it: checks it runs (CI)
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import OrderedDict, defaultdict


def model_rows(strom, job):
    """(index, name, parameters) per layer, from --print-model."""
    out = subprocess.run([strom, "train", "--config", job, "--print-model"], check=True,
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(.*\S)\s+(\S+)\s+([\d,]+)\s+(\S+)\s*$", line)
        if not m:
            continue
        index, desc, params = int(m.group(1)), m.group(2), int(m.group(4).replace(",", ""))
        named = re.match(r"([^\s:]+):", desc)
        rows.append((index, named.group(1) if named else f"#{index} {desc.split()[0]}", params))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--job", help="the run's job file")
    ap.add_argument("--metrics", help="the run's --metrics-out file")
    ap.add_argument("--strom", default=os.environ.get("STROM_BIN", "target/release/strom"))
    ap.add_argument("--quick", action="store_true",
                    help="train the demo (2 workers, 1 epoch) and read that run: checks the script runs (CI)")
    ap.add_argument("--layers", action="store_true", help="print every layer, not only blocks")
    args = ap.parse_args()
    if args.quick:
        with tempfile.TemporaryDirectory() as d:
            args.job, args.metrics = os.path.join(d, "job.toml"), os.path.join(d, "metrics.jsonl")
            with open(args.job, "w") as f:
                f.write('[sharing]\nmode = "threshold"\n[cluster]\nworkers = 2\n[train]\nepochs = 1\n')
            subprocess.run([args.strom, "train", "--config", args.job, "--metrics-out", args.metrics,
                            "--output", os.path.join(d, "model")], check=True, capture_output=True)
            report(args)
        return
    if not args.job or not args.metrics:
        ap.error("--job and --metrics are required (or --quick)")
    report(args)


def report(args):
    rows = model_rows(args.strom, args.job)
    if not rows:
        sys.exit(f"{args.job}: no layers in --print-model's output")
    entries = defaultdict(int)
    steps = 0
    with open(args.metrics) as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{args.metrics}:{n}: not JSON ({e})")
            if rec.get("type") != "step" or "layers" not in rec:
                continue
            steps += 1
            for layer in rec["layers"]:
                entries[layer["layer"]] += layer["entries"]
    total = sum(entries.values())
    if total == 0:
        sys.exit(f"{args.metrics}: no per-layer entries (was the run threshold-shared?)")
    params = sum(p for _, _, p in rows)
    blocks = OrderedDict()
    for index, name, p in rows:
        block = name.split("_", 1)[0] if not name.startswith("#") else name
        b = blocks.setdefault(block, [0, 0])
        b[0] += p
        b[1] += entries.get(index, 0)
    print(f"{steps} worker steps, {total:,} entries sent, {params:,} parameters")
    if args.layers:
        print(f"\n{'layer':<22}{'parameters':>12}{'params %':>10}{'entries %':>11}{'per param':>11}")
        for index, name, p in rows:
            if p == 0:
                continue
            e = entries.get(index, 0)
            print(f"{name:<22}{p:>12,}{100 * p / params:>9.1f}%{100 * e / total:>10.1f}%"
                  f"{(e / total) / (p / params):>10.2f}x")
    print(f"\n{'block':<22}{'parameters':>12}{'params %':>10}{'entries %':>11}{'per param':>11}")
    for block, (p, e) in blocks.items():
        if p == 0:
            continue
        print(f"{block:<22}{p:>12,}{100 * p / params:>9.1f}%{100 * e / total:>10.1f}%"
              f"{(e / total) / (p / params):>10.2f}x")


if __name__ == "__main__":
    main()
