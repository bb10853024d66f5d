#!/usr/bin/env python3
"""Converts UCR/UEA time-series datasets bundled in the sktime wheel (PyPI, BSD-3) into
sequence CSV, the layout `data.format = "sequence_csv"` reads (DataVec's
CSVSequenceRecordReader): for each split, `features/NNNN.csv` (one row per step, one column
per dimension) and `labels/NNNN.csv` (the class, 0-based, in the order of the file's
@classLabel list).

    pip download --no-deps sktime==1.2.0 -d /tmp/wheels
    python3 assets/ucr/build_ucr.py /tmp/wheels/sktime-1.2.0-py3-none-any.whl GunPoint ItalyPowerDemand

Nothing is downloaded at run time; the converted files are committed under assets/ucr/.
"""
import os
import shutil
import sys
import zipfile


def parse_ts(text):
    """(class labels, [(steps as [[dim values]], label)]) of a .ts file."""
    classes, rows, in_data = None, [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@classlabel"):
                parts = line.split()
                classes = parts[2:] if parts[1].lower() == "true" else None
            elif low.startswith("@data"):
                in_data = True
            continue
        fields = line.split(":")
        label, dims = fields[-1].strip(), fields[:-1]
        series = [[float(v) for v in d.split(",")] for d in dims]
        steps = list(zip(*series))
        rows.append((steps, label))
    if classes is None:
        raise SystemExit("not a classification dataset (no @classLabel true ...)")
    return classes, rows


def write_split(out, classes, rows):
    for sub in ("features", "labels"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for i, (steps, label) in enumerate(rows):
        name = f"{i:04d}.csv"
        with open(os.path.join(out, "features", name), "w") as f:
            for step in steps:
                f.write(",".join(repr(v) for v in step) + "\n")
        with open(os.path.join(out, "labels", name), "w") as f:
            f.write(f"{classes.index(label)}\n")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    wheel, names = sys.argv[1], sys.argv[2:]
    here = os.path.dirname(os.path.abspath(__file__))
    with zipfile.ZipFile(wheel) as z:
        for name in names:
            target = os.path.join(here, name)
            shutil.rmtree(target, ignore_errors=True)
            for split in ("TRAIN", "TEST"):
                text = z.read(f"sktime/datasets/data/{name}/{name}_{split}.ts").decode("utf-8")
                classes, rows = parse_ts(text)
                write_split(os.path.join(target, split.lower()), classes, rows)
                lengths = sorted({len(s) for s, _ in rows})
                print(f"{name} {split.lower()}: {len(rows)} sequences of {lengths[0]}..{lengths[-1]} steps, "
                      f"{len(rows[0][0][0])} dimension(s), classes {classes}")


if __name__ == "__main__":
    main()
