#!/usr/bin/env python3
"""Strom's language models against PyTorch's on this machine's CPU, side by side in one run.

The same data (assets/text/shakespeare.txt read as characters: the vocabulary in code-point
order with id 0 kept for unknown characters, windows of 64 back to back, each step's target
the next character, the last 10% of the windows held out as a contiguous tail), the same
networks, batch 12, Adam (beta2 0.99) with the rate decaying to zero by cosine, the same thread
counts:

  gpt        Strom's `gpt` preset: token and learned position embeddings of 128, 4 pre-norm
             blocks (layer norm, causal self-attention of 4 heads from one 128x384 projection
             with biases, a 128x128 output projection; layer norm, dense 512 relu, dense 128),
             a final layer norm, a dense softmax over the 65 ids: 818,241 parameters in both.
  char_lstm  Strom's `char_lstm` preset: embedding 64, two LSTMs of 200, dense softmax
             (PyTorch's LSTM keeps two bias vectors: 800 more parameters per layer).

Two measurements:

  steps      training samples (windows) per second over the first part of the text, for each
             model and thread count: Strom's summary `samples_per_sec` (evaluation excluded)
             and PyTorch's over the same number of steps after 5 warm-up steps.
  converge   `gpt` trained for --epochs epochs on the whole corpus with --threads threads:
             the held-out loss in nats per character after each epoch, the training time to
             get there (evaluation excluded for both) and the first time at or below --target.

Each framework keeps its own weight initialisation (Strom: Xavier for weights and tables, zero
biases, as in assets/jobs/shakespeare-gpt.toml; PyTorch: its layers' defaults, positions N(0, 0.02)).

    bash benches/peers/pytorch.sh --lm                   # both measurements
    .venv-peers/bin/python benches/peers/pytorch_lm.py --only steps --quick
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXT = os.path.join(ROOT, "assets", "text", "shakespeare.txt")
CONTEXT, BATCH, HOLDOUT = 64, 12, 0.1


def windows(text):
    """(ids of the train windows, of the held-out windows, vocabulary size), as Strom reads them."""
    chars = sorted(set(text))
    index = {c: i + 1 for i, c in enumerate(chars)}
    ids = [index[c] for c in text]
    n = (len(ids) - 1) // CONTEXT
    held = round(n * HOLDOUT)
    cut = (n - held) * CONTEXT
    x = ids[: n * CONTEXT + 1]
    return x, n - held, held, len(chars) + 1, cut


def torch_models(nn, F, torch, vocab):
    class Block(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            shape = (b, t, self.heads, d // self.heads)
            q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.relu(self.fc1(self.ln2(x))))

    class Gpt(nn.Module):
        def __init__(self, d=128, blocks=4, heads=4):
            super().__init__()
            self.tokens, self.positions = nn.Embedding(vocab, d), nn.Parameter(torch.zeros(CONTEXT, d))
            nn.init.normal_(self.positions, std=0.02)
            self.blocks = nn.Sequential(*[Block(d, heads) for _ in range(blocks)])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

        def forward(self, ids):
            return self.head(self.ln(self.blocks(self.tokens(ids) + self.positions)))

    class CharLstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, 64)
            self.lstm = nn.LSTM(64, 200, num_layers=2, batch_first=True)
            self.head = nn.Linear(200, vocab)

        def forward(self, ids):
            return self.head(self.lstm(self.embedding(ids))[0])

    return {"gpt": Gpt, "char_lstm": CharLstm}


def strom_job(path, model, epochs, train_file):
    with open(path, "w") as f:
        f.write(
            f'name = "lm-{model}"\n[data]\ntrain = "{train_file}"\nformat = "text"\ncontext = {CONTEXT}\n'
            f'holdout = {HOLDOUT}\n[model]\npreset = "{model}"\ninit = "xavier"\n[train]\nepochs = {epochs}\n'
            f'batch_size = {BATCH}\nupdater = {{ kind = "adam", lr = 1e-3, beta2 = 0.99 }}\n'
            f'lr_schedule = "cosine"\nseed = 1\n'
        )


def run_strom(binary, job, threads, workdir):
    summary, metrics = os.path.join(workdir, "s.json"), os.path.join(workdir, "m.jsonl")
    cmd = [binary, "train", "--config", job, "--threads", str(threads), "--summary-json", summary,
           "--metrics-out", metrics, "--output", os.path.join(workdir, "model")]
    start = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.time() - start
    with open(summary) as f:
        s = json.load(f)
    return s, wall


def torch_train(torch, model, ids, train_windows, held, epochs, steps_limit=None, log=None):
    """Trains; returns (samples/s, [(epoch, held-out nats, training seconds so far)])."""
    F = torch.nn.functional
    x = torch.tensor(ids, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
    steps_per_epoch = math.ceil(train_windows / BATCH)
    total = steps_per_epoch * epochs if steps_limit is None else steps_limit
    g = torch.Generator().manual_seed(1)
    step, trained, samples, out = 0, 0.0, 0, []
    timed_from = 5 if steps_limit is not None else 0
    for epoch in range(epochs):
        order = torch.randperm(train_windows, generator=g)
        for b in range(steps_per_epoch):
            if step == timed_from:
                t0, samples = time.perf_counter(), 0
            rows = order[b * BATCH:(b + 1) * BATCH]
            starts = rows * CONTEXT
            idx = starts[:, None] + torch.arange(CONTEXT)[None, :]
            inp, tgt = x[idx], x[idx + 1]
            for group in opt.param_groups:
                group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(inp).reshape(-1, model.head.out_features), tgt.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            samples += len(rows)
            if steps_limit is not None and step >= steps_limit:
                return samples / (time.perf_counter() - t0), out
        trained += time.perf_counter() - t0
        nats = torch_eval(torch, model, x, train_windows, held)
        out.append((epoch + 1, nats, trained))
        if log:
            log(f"  pytorch epoch {epoch + 1}: held-out {nats:.4f} nats/char, {trained:.0f} s trained")
        t0 = time.perf_counter()
    return samples / max(trained, 1e-9), out


def torch_eval(torch, model, x, train_windows, held):
    F = torch.nn.functional
    total, count = 0.0, 0
    with torch.no_grad():
        for b in range(0, held, 64):
            rows = torch.arange(train_windows + b, train_windows + min(b + 64, held))
            idx = rows[:, None] * CONTEXT + torch.arange(CONTEXT)[None, :]
            logits = model(x[idx])
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[idx + 1].reshape(-1),
                                     reduction="sum").item()
            count += idx.numel()
    return total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strom", default=os.environ.get("STROM_BIN", os.path.join(ROOT, "target", "release", "strom")))
    ap.add_argument("--only", choices=["steps", "converge"])
    ap.add_argument("--models", default="gpt,char_lstm")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--epochs", type=int, default=2, help="converge: epochs of gpt")
    ap.add_argument("--target", type=float, default=1.88, help="converge: held-out nats per character")
    ap.add_argument("--quick", action="store_true", help="a few steps only (checks the script runs)")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    import torch
    import torch.nn as nn

    text = open(TEXT, encoding="utf-8").read()
    results = {"steps": [], "converge": {}}
    say = lambda m: print(m, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if a.only != "converge":
            # The first 300 KB (about 390 steps of 12 windows), or 40 KB with --quick.
            part = text[: 40_000 if a.quick else 300_000]
            part_file = os.path.join(tmp, "part.txt")
            open(part_file, "w", encoding="utf-8").write(part)
            ids, train_w, held, vocab, _ = windows(part)
            say(f"step speed: {train_w} training windows of {CONTEXT}, batch {BATCH}")
            say(f"{'model':10} {'threads':>7} {'strom/s':>9} {'pytorch/s':>10} {'ratio':>6}")
            for model in a.models.split(","):
                for threads in [int(t) for t in a.threads.split(",")]:
                    job = os.path.join(tmp, f"{model}.toml")
                    strom_job(job, model, 1, part_file)
                    s, _ = run_strom(a.strom, job, threads, tmp)
                    torch.set_num_threads(threads)
                    torch.manual_seed(1)
                    m = torch_models(nn, nn.functional, torch, vocab)[model]()
                    steps = math.ceil(train_w / BATCH)
                    pt, _ = torch_train(torch, m, ids, train_w, held, 1, steps_limit=steps)
                    ratio = s["samples_per_sec"] / pt
                    say(f"{model:10} {threads:>7} {s['samples_per_sec']:>9.1f} {pt:>10.1f} {ratio:>6.2f}x")
                    results["steps"].append({"model": model, "threads": threads, "strom": s["samples_per_sec"],
                                             "pytorch": pt, "ratio": ratio})
        if a.only != "steps":
            threads = max(int(t) for t in a.threads.split(","))
            epochs = 1 if a.quick else a.epochs
            source = text[:100_000] if a.quick else text
            src_file = os.path.join(tmp, "corpus.txt")
            open(src_file, "w", encoding="utf-8").write(source)
            ids, train_w, held, vocab, _ = windows(source)
            say(f"converge: gpt, {epochs} epoch(s) of {train_w} windows, {threads} threads, target {a.target}")
            job = os.path.join(tmp, "gpt.toml")
            strom_job(job, "gpt", epochs, src_file)
            s, wall = run_strom(a.strom, job, threads, tmp)
            strom_epochs, trained = [], 0.0
            for e in s["per_epoch"]:
                trained += e["seconds"]
                strom_epochs.append((e["epoch"], e["test_loss"], trained))
            for e, l, t in strom_epochs:
                say(f"  strom   epoch {e}: held-out {l:.4f} nats/char, {t:.0f} s trained")
            torch.set_num_threads(threads)
            torch.manual_seed(1)
            m = torch_models(nn, nn.functional, torch, vocab)["gpt"]()
            _, torch_epochs = torch_train(torch, m, ids, train_w, held, epochs, log=say)
            first = lambda rows: next((t for _, l, t in rows if l is not None and l <= a.target), None)
            results["converge"] = {"strom": strom_epochs, "pytorch": torch_epochs, "target": a.target,
                                   "strom_time_to_target": first(strom_epochs),
                                   "pytorch_time_to_target": first(torch_epochs), "threads": threads}
            say(f"time to {a.target}: strom {first(strom_epochs)}, pytorch {first(torch_epochs)} (s of training)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
