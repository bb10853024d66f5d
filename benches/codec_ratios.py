#!/usr/bin/env python3
"""Prints codec throughput relative to a plain copy, from the last `cargo bench --bench codec`.

Both sides were measured in the same run, so the ratio is what the comparison means. GB/s
count the f32 buffer the codec reads (4 bytes per parameter)."""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"


def mean_ns(*parts):
    path = os.path.join(root, *parts, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]


def mean_or_none(*parts):
    try:
        return mean_ns(*parts)
    except FileNotFoundError:
        return None


print(f"{'buffer':>7} {'codec':>10} {'density':>8} {'encode GB/s':>12} {'vs copy':>8} {'decode+apply GB/s':>18} {'vs copy':>8}")
for size in ["1M", "10M"]:
    group = f"codec_{size}"
    if not os.path.isdir(os.path.join(root, group)):
        continue
    n = int(size[:-1]) * 1_000_000
    copy = mean_ns(group, "copy")
    gbs = lambda ns: 4 * n / ns
    rows = [("threshold", d, ("encode", d), ("decode_apply", d)) for d in ["0.0001", "0.001", "0.01"]]
    rows += [("topk", d, ("topk_encode", d), ("topk_decode_apply", d)) for d in ["0.0001", "0.001", "0.01"]]
    rows += [("dense16", "1", ("dense16_encode",), ("dense16_decode_apply",))]
    for name, density, enc_path, dec_path in rows:
        # A run filtered to some benches (`codec_10M/topk_encode`) prints what it measured.
        enc, dec = mean_or_none(group, *enc_path), mean_or_none(group, *dec_path)
        if enc is None and dec is None:
            continue
        cells = lambda ns, width: (f"{gbs(ns):>{width}.2f} {copy / ns:>7.2f}x" if ns else f"{'-':>{width}} {'-':>8}")
        print(f"{size:>7} {name:>10} {density:>8} {cells(enc, 12)} {cells(dec, 18)}")
    print(f"{size:>7} {'copy':>10} {'':>8} {gbs(copy):>12.2f}")
