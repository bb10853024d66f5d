#!/usr/bin/env python3
"""Prints codec throughput relative to a plain copy, from the last `cargo bench --bench codec`.

Both sides were measured in the same run, so the ratio is what the comparison means."""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"


def mean_ns(*parts):
    path = os.path.join(root, *parts, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]


print(f"{'buffer':>7} {'density':>8} {'encode GB/s':>12} {'vs copy':>8} {'decode+apply GB/s':>18} {'vs copy':>8}")
for size in ["1M", "10M"]:
    group = f"codec_{size}"
    if not os.path.isdir(os.path.join(root, group)):
        continue
    n = int(size[:-1]) * 1_000_000
    copy = mean_ns(group, "copy")
    for density in ["0.0001", "0.001", "0.01"]:
        enc = mean_ns(group, "encode", density)
        dec = mean_ns(group, "decode_apply", density)
        gbs = lambda ns: 4 * n / ns
        print(f"{size:>7} {density:>8} {gbs(enc):>12.2f} {copy / enc:>7.2f}x {gbs(dec):>18.2f} {copy / dec:>7.2f}x")
    print(f"{size:>7} {'copy':>8} {gbs(copy):>12.2f}")
