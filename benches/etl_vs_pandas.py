#!/usr/bin/env python3
"""The local executor (`strom transform`) side by side with pandas doing the same work, in one run.

The work, a typical transform process: parse a CSV (id, city, temp, n, when), drop the rows with
n == 0, one-hot the city, standardise temp and min-max n with statistics fitted on the data, and
write the result as CSV. Both read the same file and write the same columns; the script checks
that the outputs agree before it prints the ratio.

    python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install pandas
    cargo build --release
    /tmp/benchvenv/bin/python benches/etl_vs_pandas.py [--rows 2000000]
    /tmp/benchvenv/bin/python benches/etl_vs_pandas.py --quick     # 20,000 rows: checks it runs (CI)

`--generate FILE --rows N` only writes the input CSV (benches/etl_memory.sh uses it).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CITIES = ["Paris", "Lyon", "Nice", "Lille", "Nantes", "Brest", "Dijon", "Metz"]

PROCESS = {
    "schema": {
        "columns": [
            {"name": "id", "type": "long"},
            {"name": "city", "type": "string"},
            {"name": "temp", "type": "double"},
            {"name": "n", "type": "integer"},
            {"name": "when", "type": "string"},
        ]
    },
    "steps": [
        {"step": "filter", "remove": {"kind": "compare", "column": "n", "op": "eq", "value": 0}},
        {"step": "string_to_categorical", "column": "city"},
        {"step": "categorical_to_one_hot", "column": "city"},
        {"step": "normalize", "column": "temp", "kind": "standardize"},
        {"step": "normalize", "column": "n", "kind": "min_max"},
    ],
}


def generate(path, rows):
    """Deterministic rows, written in blocks (about 60 bytes a row)."""
    x = 0x2545F4914F6CDD1D
    block = 100_000
    with open(path, "w") as f:
        f.write("id,city,temp,n,when\n")
        for start in range(0, rows, block):
            lines = []
            for i in range(start, min(rows, start + block)):
                x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
                lines.append(
                    f"{i},{CITIES[(x >> 33) % 8]},{((x >> 20) % 6000) / 100 - 10:.2f},{(x >> 45) % 20},"
                    f"2024-{1 + (x >> 10) % 12:02d}-{1 + (x >> 5) % 28:02d}\n"
                )
            f.write("".join(lines))


def run_strom(binary, csv, out, workdir):
    process = os.path.join(workdir, "tp.json")
    summary = os.path.join(workdir, "strom.json")
    with open(process, "w") as f:
        json.dump(PROCESS, f)
    t = time.perf_counter()
    subprocess.run(
        [binary, "transform", "--process", process, "--input", csv, "--output", out, "--summary-json", summary],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t
    with open(summary) as f:
        s = json.load(f)
    return seconds, s["report"]["rows_out"], s["peak_rss_mb"]


def run_pandas(csv, out):
    import pandas as pd

    t = time.perf_counter()
    df = pd.read_csv(csv, dtype={"id": "int64", "city": "string", "temp": "float64", "n": "int64", "when": "string"})
    df = df[df["n"] != 0]
    states = sorted(df["city"].unique())
    dummies = pd.get_dummies(pd.Categorical(df["city"], categories=states), prefix="city", prefix_sep="[", dtype="int64")
    dummies.columns = [c + "]" for c in dummies.columns]
    dummies.index = df.index
    temp = df["temp"]
    n = df["n"]
    result = pd.concat(
        [
            df[["id"]],
            dummies,
            ((temp - temp.mean()) / temp.std(ddof=0)).rename("temp"),
            ((n - n.min()) / (n.max() - n.min())).rename("n"),
            df[["when"]],
        ],
        axis=1,
    )
    result.to_csv(out, index=False)
    seconds = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, len(result), peak_mb


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--strom", default=os.environ.get("STROM_BIN", "target/release/strom"))
    ap.add_argument("--quick", action="store_true", help="20,000 rows: checks the script runs (CI)")
    ap.add_argument("--generate", metavar="FILE", help="only write the input CSV")
    args = ap.parse_args()
    if args.quick:
        args.rows = 20_000
    if args.generate:
        generate(args.generate, args.rows)
        return
    with tempfile.TemporaryDirectory() as d:
        csv = os.path.join(d, "in.csv")
        generate(csv, args.rows)
        mb = os.path.getsize(csv) / 1e6
        s_sec, s_rows, s_peak = run_strom(args.strom, csv, os.path.join(d, "strom.csv"), d)
        p_sec, p_rows, p_peak = run_pandas(csv, os.path.join(d, "pandas.csv"))
        if s_rows != p_rows:
            sys.exit(f"outputs differ: strom kept {s_rows} rows, pandas {p_rows}")
        # Same header and the same numbers (to float precision) on sampled rows.
        with open(os.path.join(d, "strom.csv")) as a, open(os.path.join(d, "pandas.csv")) as b:
            ha, hb = a.readline().strip().split(","), b.readline().strip().split(",")
            if ha != hb:
                sys.exit(f"headers differ:\n  strom  {ha}\n  pandas {hb}")
            for k, (la, lb) in enumerate(zip(a, b)):
                if k % 9973:
                    continue
                for x, y, col in zip(la.strip().split(","), lb.strip().split(","), ha):
                    if x != y and abs(float(x) - float(y)) > 1e-9 * max(1.0, abs(float(y))):
                        sys.exit(f"row {k} column {col}: strom {x}, pandas {y}")
        cores = os.cpu_count()
        print(f"{args.rows} rows, {mb:.0f} MB CSV; parse, filter, one-hot, standardise, min-max, write; {cores} cores")
        print(f"strom transform  {s_sec:7.2f} s  {args.rows / s_sec:>10,.0f} rows/s  peak {s_peak:5.0f} MB")
        print(f"pandas           {p_sec:7.2f} s  {args.rows / p_sec:>10,.0f} rows/s  peak {p_peak:5.0f} MB")
        print(f"ratio: strom is {p_sec / s_sec:.2f}x faster than pandas (outputs checked equal)")


if __name__ == "__main__":
    main()
