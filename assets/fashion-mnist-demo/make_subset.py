#!/usr/bin/env python3
"""Cut the demo subset of Fashion-MNIST that ships with Strom.

Source: Debian's `dataset-fashion-mnist` package (Zalando Research, MIT licence), which installs
the four IDX files under /usr/share/datasets/fashion-mnist/. The subset is the first N images of
each split, unchanged, so labels stay roughly balanced and the files stay valid IDX.

    python3 assets/fashion-mnist-demo/make_subset.py [SOURCE_DIR]
"""
import gzip
import os
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
OUT = os.path.dirname(os.path.abspath(__file__))
SPLITS = {"train": ("train", 10000), "test": ("t10k", 2000)}


def cut(src_name, dst_name, count):
    with gzip.open(os.path.join(SRC, src_name), "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    dims = (magic & 0xFF)
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    item = 1
    for d in shape[1:]:
        item *= d
    header = struct.pack(">I", magic) + struct.pack(">I", count) + data[8 : 4 + 4 * dims]
    body = data[4 + 4 * dims : 4 + 4 * dims + count * item]
    # mtime=0 keeps the output byte-identical across runs.
    with gzip.GzipFile(os.path.join(OUT, dst_name), "wb", compresslevel=9, mtime=0) as out:
        out.write(header + body)


for out_name, (src_prefix, count) in SPLITS.items():
    cut(f"{src_prefix}-images-idx3-ubyte.gz", f"{out_name}-images-idx3-ubyte.gz", count)
    cut(f"{src_prefix}-labels-idx1-ubyte.gz", f"{out_name}-labels-idx1-ubyte.gz", count)
    print(f"{out_name}: {count} examples")
