#!/usr/bin/env python3
"""Strom's CPU training step against PyTorch's, side by side in one run.

Same networks (the MLP 784-256-128-10, the `cnn` preset: conv 3x3 32 same, relu, max-pool 2,
conv 3x3 64 same, relu, max-pool 2, dense 128 relu, dense 10, and the `resnet20` preset: He et
al.'s CIFAR ResNet-20 on one channel, convolutions with biases as Strom's, 272,970 parameters,
with `--models resnet20 --batches 128`), same batch sizes (128, 1024),
same thread counts (1, 2), Adam, softmax cross-entropy, 1x28x28 inputs. For each case it runs
Strom's criterion bench (`benches/train_step.rs`, filtered to that case) and then PyTorch, each
in a process of its own, and prints samples/s of both, the ratio, and each process's peak RSS.

    bash benches/peers/pytorch.sh            # creates .venv-peers with torch, then runs this
    bash benches/peers/pytorch.sh --quick    # one small case for a fraction of a second (CI)
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resnet20(nn):
    """Strom's `resnet20` preset in PyTorch: the same layers, shapes and parameter count."""
    import torch

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout)
            self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout)
            self.proj = None
            if stride != 1 or cin != cout:
                self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
            return torch.relu(y + (x if self.proj is None else self.proj(x)))

    layers = [nn.Conv2d(1, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for w in (16, 32, 64):
        for b in range(3):
            layers.append(Block(cin, w, 2 if b == 0 and w != cin else 1))
            cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    net = nn.Sequential(*layers)
    assert sum(p.numel() for p in net.parameters()) == 272_970
    return net


def torch_case(model, batch, threads, seconds):
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if model == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10))
    elif model == "resnet20":
        net = resnet20(nn)
    else:
        net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    # Bytes scaled to [0, 1] as they enter the model, as Strom's batches are.
    x = torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x.float() / 255.0), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    print(n * batch / (time.perf_counter() - start))


def run_measured(cmd, env=None):
    """Runs `cmd`; returns (stdout, peak RSS in MB) of that process alone."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed with {p.returncode}")
    return out, usage.ru_maxrss / 1024


def bench_executable(profile):
    out = subprocess.run(["cargo", "bench", "--bench", "train_step", "--no-run", "--message-format", "json",
                          "--profile", profile],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "train_step" \
                and msg.get("executable"):
            return msg["executable"]
    sys.exit("cannot find the train_step bench executable")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--torch-case", nargs=4, metavar=("MODEL", "BATCH", "THREADS", "SECONDS"))
    p.add_argument("--seconds", type=float, default=5.0, help="measurement time per case and side")
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--batches", default="128,1024")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--quick", action="store_true",
                   help="the mlp at batch 128 on 1 thread for a fraction of a second, Strom's bench built with "
                        "the dev profile: checks the script runs (CI)")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.models, args.batches, args.threads = 0.3, "mlp", "128", "1"
    if args.torch_case:
        m, b, t, s = args.torch_case
        torch_case(m, int(b), int(t), float(s))
        return
    import torch
    exe = bench_executable("dev" if args.quick else "bench")
    print(f"PyTorch {torch.__version__} (CPU) vs Strom, one training step (forward, backward, Adam), "
          f"{os.cpu_count()} cores")
    print(f"{'model':<5} {'batch':>5} {'threads':>7} {'strom samples/s':>16} {'pytorch samples/s':>18} "
          f"{'ratio':>6} {'strom RSS':>10} {'pytorch RSS':>12}")
    for model in args.models.split(","):
        for batch in map(int, args.batches.split(",")):
            for threads in map(int, args.threads.split(",")):
                case = f"train_step_{model}/batch{batch}/threads{threads}"
                _, strom_rss = run_measured([exe, "--bench", "--noplot", "--warm-up-time", "0.1" if args.quick else "1",
                                             "--measurement-time", str(args.seconds),
                                             *(["--sample-size", "10"] if args.quick else []), f"^{case}$"])
                with open(os.path.join(ROOT, "target", "criterion", case, "new", "estimates.json")) as f:
                    ns = json.load(f)["mean"]["point_estimate"]
                strom = batch / (ns * 1e-9)
                out, torch_rss = run_measured([sys.executable, os.path.abspath(__file__), "--torch-case", model,
                                               str(batch), str(threads), str(args.seconds)])
                torch_sps = float(out.strip().splitlines()[-1])
                print(f"{model:<5} {batch:>5} {threads:>7} {strom:>16,.0f} {torch_sps:>18,.0f} "
                      f"{strom / torch_sps:>5.2f}x {strom_rss:>8.0f}MB {torch_rss:>10.0f}MB", flush=True)


if __name__ == "__main__":
    main()
