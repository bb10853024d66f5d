#!/usr/bin/env python3
"""One rank of PyTorch DDP training Strom's `cnn` preset, for benches/links.py.

The same network as Strom's preset (conv 3x3 32 same, relu, max-pool 2, conv 3x3 64 same, relu,
max-pool 2, dense 128 relu, dropout 0.25, dense 10; 421,642 parameters), batch 64 per rank, SGD
with Nesterov momentum 0.9 and a cosine schedule over the epochs as Strom's default job, gloo
on CPU, one thread per rank. DDP averages gradients, so the learning rate is Strom's 0.01 times
the number of ranks (the linear scaling rule, Goyal et al. 2017). `--hook powersgd` registers
PyTorch's PowerSGD comm hook at rank 2 with 100 dense warm-up steps (Strom's `powersgd`
defaults), with one gradient bucket (gloo fails with two in flight).

Rank 0 evaluates the test set after each epoch (the clock stops meanwhile) and prints
`epoch N accuracy A seconds T` (T: training time so far); every rank stops after the epoch that
reaches --target. Launched by benches/links.py, one process per network namespace; by hand:

    MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 python3 ddp_cnn.py --rank R --world 4 --data DIR
"""
import argparse
import math
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn as nn  # noqa: E402
from fmnist import load, test_prefix  # noqa: E402


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--world", type=int, default=4)
    p.add_argument("--data", required=True, help="folder with train-* and t10k-* (or test-*) IDX files")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--target", type=float, default=0.90)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01, help="one worker's rate; scaled by --world")
    p.add_argument("--hook", choices=["none", "powersgd"], default="none")
    p.add_argument("--timeout", type=float, default=600, help="seconds for the process group to form")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1)
    import datetime

    dist.init_process_group("gloo", rank=a.rank, world_size=a.world, timeout=datetime.timedelta(seconds=a.timeout))
    x, y = load(os.path.join(a.data, "train"))
    test = test_prefix(a.data)
    # With the PowerSGD hook, gloo fails when two buckets' all-reduces are in flight at once
    # ("Received data size doesn't match expected size", torch 2.15): one bucket then.
    model = nn.parallel.DistributedDataParallel(cnn(), bucket_cap_mb=64 if a.hook == "powersgd" else None)
    if a.hook == "powersgd":
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powersgd

        state = powersgd.PowerSGDState(process_group=None, matrix_approximation_rank=2, start_powerSGD_iter=100)
        model.register_comm_hook(state, powersgd.powerSGD_hook)
    lr = a.lr * a.world
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    mine = torch.arange(a.rank, x.shape[0], a.world)
    steps_per_epoch = len(mine) // a.batch
    total = steps_per_epoch * a.epochs
    training = 0.0
    step = 0
    for epoch in range(a.epochs):
        start = time.perf_counter()
        model.train()
        g = torch.Generator().manual_seed(epoch)
        order = mine[torch.randperm(len(mine), generator=g)]
        for i in range(steps_per_epoch):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            b = order[i * a.batch : (i + 1) * a.batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[b].float() / 255.0), y[b]).backward()
            opt.step()
            step += 1
        dist.barrier()
        training += time.perf_counter() - start
        done = torch.zeros(1)
        if a.rank == 0:
            tx, ty = load(test)
            model.eval()
            with torch.no_grad():
                correct = sum(int((model.module(tx[i : i + 1000].float() / 255.0).argmax(1) == ty[i : i + 1000]).sum())
                              for i in range(0, tx.shape[0], 1000))
            acc = correct / tx.shape[0]
            print(f"epoch {epoch + 1} accuracy {acc:.4f} seconds {training:.2f}", flush=True)
            done[0] = 1.0 if acc >= a.target else 0.0
        dist.broadcast(done, 0)
        if done[0] > 0:
            break
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
