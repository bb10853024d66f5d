#!/usr/bin/env python3
"""Strom's CUDA backend against PyTorch on the same GPU, side by side in one run.

The same MLP (784-256-128-10, relu, softmax cross-entropy), Adam at 1e-3, the same batch sizes
and epochs over the same data (the 10,000-image Fashion-MNIST subset in assets/, or --data), u8
images turned into floats on the device per batch by both. For each batch size it runs `strom
train --device cuda` (one worker, no sharing; samples/s from its summary), the same job on the
CPU for reference, and PyTorch on `cuda:0` (and on the CPU) in this process, then prints samples/s, the ratio
Strom/PyTorch, and test accuracy after the run. Run by benches/gpu.sh; on its own:

    python3 benches/gpu_vs_pytorch.py --strom target/release/strom [--epochs 5] [--batches 128,1024]
    python3 benches/gpu_vs_pytorch.py --quick   # one epoch (CI, where the CUDA rows say why they did not run)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches", "peers"))
import fmnist  # noqa: E402


def load(prefix):
    """Images (n x 784, u8) and labels (n, int64) as torch tensors on the CPU."""
    x, y = fmnist.load(prefix)
    return x.reshape(x.shape[0], -1), y


def strom(binary, device, data, batch, epochs):
    with tempfile.TemporaryDirectory() as d:
        summary = os.path.join(d, "summary.json")
        cmd = [binary, "train", "--device", device, "--model", "mlp", "--updater", "adam", "--lr", "1e-3",
               "--batch-size", str(batch), "--epochs", str(epochs), "--sharing", "none",
               "--train", f"{data}/train", "--test", fmnist.test_prefix(data),
               "--summary-json", summary]
        run = subprocess.run(cmd, cwd=d, capture_output=True, text=True)
        if run.returncode != 0:
            return {"error": run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit {run.returncode}"}
        s = json.load(open(summary))
        return {"samples_per_sec": s["samples_per_sec"], "accuracy": s["test_accuracy"]}


def pytorch(data, batch, epochs, device):
    import warnings

    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch
    import torch.nn as nn

    if device == "cuda" and not torch.cuda.is_available():
        return {"error": "no CUDA device for PyTorch (torch.cuda.is_available() is false)"}
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    dev = torch.device("cuda:0" if cuda else "cpu")
    torch.manual_seed(0)
    (x, y), (tx, ty) = load(f"{data}/train"), load(fmnist.test_prefix(data))
    x, y = x.to(dev), y.to(dev)
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    sync()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, device=dev)
        for i in range(0, n, batch):
            idx_ = order[i : i + batch]
            xb = x[idx_].float() / 255.0
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), y[idx_]).backward()
            opt.step()
    sync()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        pred = net(tx.to(dev).float() / 255.0).argmax(1).cpu()
    return {"samples_per_sec": n * epochs / seconds, "accuracy": float((pred == ty).float().mean()), "gpu": torch.cuda.get_device_name(0) if cuda else f"{torch.get_num_threads()} threads"}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strom", default=os.environ.get("STROM_BIN", os.path.join(ROOT, "target/release/strom")))
    p.add_argument("--data", default=os.path.join(ROOT, "assets/fashion-mnist-demo"), help="a folder with train-*/test-* (or t10k-*) IDX files")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batches", default="128,1024")
    p.add_argument("--quick", action="store_true", help="one epoch at batch 128 (CI: the script runs; without a GPU the CUDA rows say why)")
    a = p.parse_args()
    if a.quick:
        a.epochs, a.batches = 1, "128"
    a.strom, a.data = os.path.abspath(a.strom), os.path.abspath(a.data)
    print(f"{'case':<24} {'samples/s':>12} {'test acc':>9}  note")
    for batch in [int(b) for b in a.batches.split(",")]:
        rows = {
            "strom cuda": strom(a.strom, "cuda:0", a.data, batch, a.epochs),
            "strom cpu": strom(a.strom, "cpu", a.data, batch, a.epochs),
            "pytorch cuda": pytorch(a.data, batch, a.epochs, "cuda"),
            "pytorch cpu": pytorch(a.data, batch, a.epochs, "cpu"),
        }
        for name, r in rows.items():
            label = f"mlp b{batch} {name}"
            if "error" in r:
                print(f"{label:<24} {'-':>12} {'-':>9}  {r['error']}")
            else:
                print(f"{label:<24} {r['samples_per_sec']:>12,.0f} {r['accuracy']:>9.4f}  {r.get('gpu', '')}")
        s, t = rows["strom cuda"], rows["pytorch cuda"]
        if "error" not in s and "error" not in t:
            print(f"{'':<24} strom cuda / pytorch cuda = {s['samples_per_sec'] / t['samples_per_sec']:.2f}x")


if __name__ == "__main__":
    main()
