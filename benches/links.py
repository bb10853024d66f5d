#!/usr/bin/env python3
"""Time to accuracy on constrained links: Strom's sharing schemes against PyTorch DDP.

Every node gets a network namespace of its own, joined to the others through a bridge (in a
namespace of its own too, so the host's network is not touched) by a veth pair shaped with
`tc netem`: each node's link carries RATE in each direction, with DELAY one way. Strom runs
its coordinator on node 0 and four workers (one process each, one thread each) on nodes 1-4
over real gRPC with TLS; PyTorch DDP runs four ranks (gloo, one thread each) on nodes 1-4,
rank 0 being the rendezvous. Same model (the `cnn` preset with dropout 0.25), batch 64 per
worker, Nesterov momentum with a cosine schedule over --epochs, full Fashion-MNIST; each run
stops after the first epoch whose test accuracy reaches --target.

Reported per link and system: the time to the target (Strom: from "training starts" to the
coordinator's report of that epoch, evaluation included; DDP: its training time, the
evaluation on rank 0 excluded), epochs to the target, the best accuracy seen, and bytes on the
wire (all nodes' egress, from the qdiscs' counters: gRPC, TLS and TCP included). Writes a table
to stdout, rows to --json and accuracy against time to --svg. Needs root (ip netns, tc), the
release binary, torch in .venv-peers (benches/peers/pytorch.sh installs it).

    sudo python3 benches/links.py                                   # 100 Mbit/s and 1 Gbit/s, every system
    sudo python3 benches/links.py --rates 100mbit --systems threshold,ddp
    sudo python3 benches/links.py --quick                           # the demo subset, one epoch (CI)
"""
import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches", "peers"))
import fmnist  # noqa: E402
SUBNET = "10.233.7"
PREFIX = f"sl{os.getpid() % 10000}"
STROM = {"threshold", "topk", "powersgd", "dense16", "averaging"}
PEERS = {"ddp": "none", "ddp-powersgd": "powersgd"}


def bits(rate):
    """A tc rate such as 100mbit or 1gbit in bits per second."""
    m = re.fullmatch(r"([0-9.]+)([kmg]?)bit", rate.lower())
    if not m:
        sys.exit(f"error: rate {rate!r}: expected a tc rate such as 100mbit or 1gbit")
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]


def sh(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


class Net:
    """`nodes` namespaces on one bridge, each link shaped to `rate` with `delay` one way."""

    def __init__(self, nodes, rate, delay):
        self.nodes, self.hub = [f"{PREFIX}n{i}" for i in range(nodes)], f"{PREFIX}hub"
        self.rate, self.delay, self.netem = rate, delay, None
        self.created = []
        try:
            self._create()
        except Exception:
            self.close()
            raise

    def _create(self):
        self.created.append(self.hub)
        sh("ip", "netns", "add", self.hub)
        sh("ip", "link", "add", "br0", "type", "bridge", ns=self.hub)
        sh("ip", "link", "set", "br0", "up", ns=self.hub)
        for i, ns in enumerate(self.nodes):
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
            sh("ip", "link", "add", f"h{i}", "netns", self.hub, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", f"h{i}", "master", "br0", "up", ns=self.hub)
            sh("ip", "addr", "add", f"{self.addr(i)}/24", "dev", "eth0", ns=ns)
            sh("ip", "link", "set", "eth0", "up", ns=ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        self.reset()

    def addr(self, i):
        return f"{SUBNET}.{i + 1}"

    def reset(self):
        """Fresh qdiscs (and so zeroed counters) on every link: netem (rate, and the delay on
        each node's egress) where the kernel has it, else tbf (rate only, no delay)."""
        for i, ns in enumerate(self.nodes):
            for dev, where, delay in (("eth0", ns, True), (f"h{i}", self.hub, False)):
                sh("tc", "qdisc", "del", "dev", dev, "root", ns=where, check=False)
                if self.netem is not False:
                    extra = ["delay", self.delay] if delay else []
                    r = subprocess.run(["ip", "netns", "exec", where, "tc", "qdisc", "add", "dev", dev, "root", "netem",
                                        *extra, "rate", self.rate, "limit", "100000"], capture_output=True, text=True)
                    self.netem = r.returncode == 0
                    if self.netem:
                        continue
                    print(f"note: no netem qdisc in this kernel ({r.stderr.strip()}): links get tbf, rate only, no delay",
                          file=sys.stderr)
                # tbf: a bucket of 4 ms at the rate (at least 64 KB), 50 ms of queue.
                burst = max(64_000, int(bits(self.rate) / 8 * 0.004))
                sh("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", self.rate, "burst", str(burst),
                   "latency", "50ms", ns=where)

    def describe(self):
        return f"{self.rate} {self.delay}" if self.netem else f"{self.rate} (no delay: tbf)"

    def wire_bytes(self):
        total = 0
        for ns in self.nodes:
            m = re.search(r"Sent (\d+) bytes", sh("tc", "-s", "qdisc", "show", "dev", "eth0", ns=ns))
            total += int(m.group(1)) if m else 0
        return total

    def close(self):
        for ns in self.created:
            sh("ip", "netns", "del", ns, check=False)


class Lines:
    """A process's output lines as they arrive, each with its arrival time."""

    def __init__(self, proc, stream):
        self.lines, self.proc = [], proc
        self.cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            with self.cond:
                self.lines.append((time.time(), line.rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.lines.append((time.time(), None))
            self.cond.notify_all()

    def follow(self, deadline):
        """Yields lines until the stream ends or the deadline passes."""
        seen = 0
        while time.time() < deadline:
            with self.cond:
                while seen >= len(self.lines) and time.time() < deadline:
                    self.cond.wait(1.0)
                batch = self.lines[seen:]
                seen = len(self.lines)
            for _, line in batch:
                if line is None:
                    return
                yield line

    def text(self):
        return "\n".join(l for _, l in self.lines if l is not None)


def stop(procs):
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def spawn(ns, cmd, env=None):
    return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env={**os.environ, **(env or {})})


def log_time(line):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    return datetime.datetime.fromisoformat(m.group(1)[:26]).timestamp() if m else None


def strom(net, scheme, a, d):
    job = os.path.join(d, "job.toml")
    with open(job, "w") as f:
        f.write(f'name = "links-{scheme}"\n[data]\ntrain = "{a.data}/train"\ntest = "{a.test}"\n'
                f'[model]\npreset = "cnn"\ndropout = 0.25\n[train]\nepochs = {a.epochs}\nbatch_size = 64\n'
                f'[train.updater]\nkind = "nesterov"\n[sharing]\nmode = "{scheme}"\n'
                f'[compute]\nthreads = 1\n[cluster]\nlauncher = "none"\nworkers = {a.workers}\n')
    token = os.path.join(d, "token")
    with open(token, "w") as f:
        f.write("links-bench-token-0123456789abcdef\n")
    os.chmod(token, 0o600)
    env = {"RUST_LOG": "info", "NO_COLOR": "1"}
    listen = f"{net.addr(0)}:7878"
    coord = spawn(net.nodes[0], [a.strom, "coordinator", "--listen", listen, "--token-file", token, "--job", job,
                                 "--summary-json", os.path.join(d, "s.json")], env)
    out, procs = Lines(coord, coord.stdout), [coord]
    curve, start, pin = [], None, None
    deadline = time.time() + a.timeout
    try:
        for line in out.follow(deadline):
            if pin is None and (m := re.search(r"sha256:[0-9a-f]{64}", line)):
                pin = m.group(0)
                for w in range(1, a.workers + 1):
                    p = spawn(net.nodes[w], [a.strom, "worker", "--coordinator", f"https://{listen}", "--token-file", token,
                                             "--tls-pin", pin], env)
                    Lines(p, p.stdout)
                    procs.append(p)
            if "training starts" in line and "workers have joined" in line:
                start = log_time(line)
            if (m := re.search(r"epoch (\d+) done: .*test accuracy ([0-9.]+)", line)) and start is not None:
                curve.append((log_time(line) - start, int(m.group(1)), float(m.group(2))))
                if float(m.group(2)) >= a.target:
                    break
    finally:
        stop(procs)
    if not curve:
        raise RuntimeError(f"strom {scheme}: no epoch reported\n{out.text()[-3000:]}")
    return curve


def ddp(net, hook, a, d):
    env = {"MASTER_ADDR": net.addr(1), "MASTER_PORT": "29500", "GLOO_SOCKET_IFNAME": "eth0", "OMP_NUM_THREADS": "1"}
    procs = []
    for r in range(a.workers):
        procs.append(spawn(net.nodes[r + 1], [a.python, os.path.join(ROOT, "benches/peers/ddp_cnn.py"), "--rank", str(r),
                                              "--world", str(a.workers), "--data", a.data_dir, "--epochs", str(a.epochs),
                                              "--target", str(a.target), "--hook", hook], env))
    outs = [Lines(p, p.stdout) for p in procs]
    curve = []
    try:
        for line in outs[0].follow(time.time() + a.timeout):
            if m := re.match(r"epoch (\d+) accuracy ([0-9.]+) seconds ([0-9.]+)", line):
                curve.append((float(m.group(3)), int(m.group(1)), float(m.group(2))))
        for p in procs:
            p.wait(30)
    finally:
        stop(procs)
    if not curve:
        raise RuntimeError(f"ddp {hook}: no epoch reported\n" + "\n".join(o.text()[-2000:] for o in outs))
    return curve


def svg(rows, path, target):
    """Accuracy against time, one panel per link, one line per system."""
    links = sorted({r["link"] for r in rows}, key=lambda l: rows.index(next(r for r in rows if r["link"] == l)))
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    systems = list(dict.fromkeys(r["system"] for r in rows))
    w, h, pad = 460, 320, 50
    tmax = max(t for r in rows for t, _, _ in r["curve"]) * 1.05
    amin = min(min(a for _, _, a in r["curve"]) for r in rows)
    amin = min(amin, target) - 0.01
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * len(links)}" height="{h + 40}" font-family="sans-serif" font-size="12">']
    for k, link in enumerate(links):
        x0 = k * w
        X = lambda t: x0 + pad + (w - pad - 20) * t / tmax  # noqa: E731
        Y = lambda a: 20 + (h - pad - 20) * (1 - (a - amin) / (1.0 - amin))  # noqa: E731
        parts.append(f'<text x="{x0 + w / 2}" y="14" text-anchor="middle">{link}</text>')
        parts.append(f'<line x1="{X(0)}" y1="{Y(amin)}" x2="{X(tmax)}" y2="{Y(amin)}" stroke="black"/>')
        parts.append(f'<line x1="{X(0)}" y1="{Y(amin)}" x2="{X(0)}" y2="{Y(1.0)}" stroke="black"/>')
        parts.append(f'<line x1="{X(0)}" y1="{Y(target)}" x2="{X(tmax)}" y2="{Y(target)}" stroke="#999" stroke-dasharray="4"/>')
        for i in range(6):
            t = tmax * i / 5
            parts.append(f'<text x="{X(t)}" y="{Y(amin) + 16}" text-anchor="middle">{t:.0f}</text>')
        for i in range(5):
            acc = amin + (1.0 - amin) * i / 4
            parts.append(f'<text x="{X(0) - 4}" y="{Y(acc) + 4}" text-anchor="end">{acc:.2f}</text>')
        parts.append(f'<text x="{x0 + w / 2}" y="{h - 8}" text-anchor="middle">seconds</text>')
        for r in rows:
            if r["link"] != link:
                continue
            c = colours[systems.index(r["system"]) % len(colours)]
            pts = " ".join(f"{X(t):.1f},{Y(acc):.1f}" for t, _, acc in r["curve"])
            parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{pts}"/>')
    for i, s in enumerate(systems):
        c = colours[i % len(colours)]
        parts.append(f'<rect x="{pad + 110 * i}" y="{h + 16}" width="12" height="12" fill="{c}"/>'
                     f'<text x="{pad + 110 * i + 16}" y="{h + 27}">{s}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="100mbit,1gbit")
    p.add_argument("--delay", default="2ms")
    p.add_argument("--systems", default="threshold,topk,powersgd,dense16,ddp,ddp-powersgd")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--epochs", type=int, default=12, help="the schedule's length and the most epochs a run gets")
    p.add_argument("--target", type=float, default=0.90)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--strom", default=os.environ.get("STROM_BIN", os.path.join(ROOT, "target/release/strom")))
    p.add_argument("--python", default=os.path.join(ROOT, ".venv-peers/bin/python"))
    p.add_argument("--timeout", type=float, default=1800, help="seconds one run may take")
    p.add_argument("--json", default=None)
    p.add_argument("--svg", default=None)
    p.add_argument("--quick", action="store_true", help="the demo subset, one epoch, 100mbit, threshold and ddp (CI)")
    p.add_argument("--plot", default=None, metavar="JSON,JSON..", help="only draw --svg from the rows of earlier runs")
    a = p.parse_args()
    if a.plot:
        rows = [r for path in a.plot.split(",") for r in json.load(open(path))]
        svg(rows, a.svg or "links.svg", a.target)
        return
    if a.quick:
        a.data, a.epochs, a.target, a.rates, a.systems = os.path.join(ROOT, "assets/fashion-mnist-demo"), 1, 0.0, "100mbit", "threshold,ddp"
    if os.geteuid() != 0:
        sys.exit("error: needs root for network namespaces and tc (sudo python3 benches/links.py)")
    a.strom, a.data_dir = os.path.abspath(a.strom), os.path.abspath(a.data)
    a.data = a.data_dir
    a.test = fmnist.test_prefix(a.data)
    for need, what in ((f"{a.data}/train-images-idx3-ubyte.gz", "no Fashion-MNIST (apt-get install dataset-fashion-mnist, or --data)"),
                       (a.strom, "no strom binary (cargo build --release, or --strom)"),
                       (a.python, "no torch environment (bash benches/peers/pytorch.sh --quick creates .venv-peers)")):
        if not os.path.exists(need):
            sys.exit(f"error: {need}: {what}")
    systems = a.systems.split(",")
    unknown = [s for s in systems if s not in STROM and s not in PEERS]
    if unknown:
        sys.exit(f"error: unknown systems {unknown}; expected some of {sorted(STROM | set(PEERS))}")
    rows, failed = [], []
    print(f"cnn, {a.workers} workers, batch 64 each, target {a.target}, at most {a.epochs} epochs; "
          f"links: each node its own, {a.delay} one way where netem exists")
    print(f"{'link':<8} {'system':<14} {'to target s':>11} {'epochs':>6} {'best acc':>8} {'wire MB':>9}")
    for rate in a.rates.split(","):
        net = Net(a.workers + 1, rate, a.delay)
        try:
            for system in systems:
                net.reset()
                try:
                    with tempfile.TemporaryDirectory() as d:
                        curve = strom(net, system, a, d) if system in STROM else ddp(net, PEERS[system], a, d)
                except RuntimeError as e:
                    # One system failing (a peer's crash) leaves the others' rows standing.
                    print(f"{rate:<8} {system:<14} failed: {str(e)[:2000]}", flush=True)
                    failed.append(system)
                    continue
                hit = next(((t, e) for t, e, acc in curve if acc >= a.target), None)
                row = {"link": net.describe(), "system": system if system in PEERS else f"strom {system}",
                       "seconds_to_target": hit[0] if hit else None, "epochs_to_target": hit[1] if hit else None,
                       "best_accuracy": max(acc for _, _, acc in curve), "wire_bytes": net.wire_bytes(), "curve": curve}
                rows.append(row)
                to = f"{hit[0]:.0f}" if hit else f"> {curve[-1][0]:.0f}"
                print(f"{rate:<8} {row['system']:<14} {to:>11} {row['epochs_to_target'] or '-':>6} "
                      f"{row['best_accuracy']:>8.4f} {row['wire_bytes'] / 1e6:>9.1f}", flush=True)
                if a.json:
                    with open(a.json, "w") as f:
                        json.dump(rows, f, indent=1)
        finally:
            net.close()
    if a.svg and rows:
        svg(rows, a.svg, a.target)
    if failed:
        sys.exit(f"error: {', '.join(failed)} failed (above)")


if __name__ == "__main__":
    main()
