"""Fashion-MNIST's IDX files as torch tensors, for the PyTorch peers (no numpy needed)."""
import gzip
import os
import sys


def idx(path):
    """An IDX file (gzip or not) as (dims, flat uint8 tensor)."""
    import torch

    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return dims, torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8)


def find(prefix, name):
    for p in (f"{prefix}-{name}.gz", f"{prefix}-{name}"):
        if os.path.exists(p):
            return p
    sys.exit(f"error: no {prefix}-{name}[.gz] (expected an IDX file)")


def load(prefix):
    """Images (n x 1 x 28 x 28, uint8) and labels (n, int64) under `prefix`-*-idx?-ubyte[.gz]."""
    dims, x = idx(find(prefix, "images-idx3-ubyte"))
    _, y = idx(find(prefix, "labels-idx1-ubyte"))
    return x.reshape(dims[0], 1, dims[1], dims[2]), y.long()


def test_prefix(data):
    """The test split's prefix in `data`: Debian's t10k-*, or the demo subset's test-*."""
    return os.path.join(data, "t10k") if os.path.exists(os.path.join(data, "t10k-images-idx3-ubyte.gz")) else os.path.join(data, "test")
