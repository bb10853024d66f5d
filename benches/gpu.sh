#!/usr/bin/env bash
# The GPU check, in one command, for the day a machine with an NVIDIA GPU is at hand (meant to fit in ten
# minutes on 16 cores, not yet timed; nothing here needs the network if the crates are cached,
# NVRTC is installed and torch is in .venv-peers or the system python):
#   1. builds Strom with --features cuda (release);
#   2. cargo test --features cuda --test gpu --test cuda_kernels: the CUDA backend against the CPU
#      backend on every kernel (outputs, gradients, updates, the sharing primitives), failing
#      rather than skipping when no device is usable (STROM_REQUIRE_GPU), and every kernel
#      compiled by NVRTC for sm_80/sm_90 and assembled by ptxas where ptxas is on PATH;
#   3. benches/gpu_vs_pytorch.py: training on the GPU next to PyTorch on the same GPU.
# Everything goes to one results file. Usage: bash benches/gpu.sh [RESULTS]
# (default benches/results-gpu.txt)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benches/results-gpu.txt}
: > "$out"
say() { echo "$@" | tee -a "$out"; }
section() { say; say "== $* ($(date -u +%H:%M:%S))"; }
failed=0

section "machine"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo "nvidia-smi: not found"
  nproc; git rev-parse --short HEAD 2>/dev/null; } | tee -a "$out"

# NVRTC (libnvrtc.so.12): the system's, the CUDA toolkit's, or the PyPI wheel's in .venv-cuda.
nvrtc=""
ldconfig -p | grep -q 'libnvrtc.so.12' && nvrtc=system
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  if [ -z "$nvrtc" ] && [ -e "$d/libnvrtc.so.12" ]; then
    nvrtc=$d && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
done
if [ -z "$nvrtc" ]; then
  nvidia=$(bash tests/cuda/venv.sh)
  nvrtc=$nvidia/cuda_nvrtc/lib
  export LD_LIBRARY_PATH="$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PATH="$nvidia/cuda_nvcc/bin:$PATH"
fi
if ! command -v ptxas >/dev/null && [ -x /usr/local/cuda/bin/ptxas ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
say "NVRTC: $nvrtc; ptxas: $(command -v ptxas || echo 'not found (the ptxas check skips)')"

section "build (cargo build --release --features cuda)"
if ! timeout 420 cargo build --release --features cuda 2>&1 | tail -3 | tee -a "$out"; then failed=1; fi

section "CUDA against CPU on every kernel (cargo test --release --features cuda --test gpu --test cuda_kernels)"
STROM_REQUIRE_GPU=1 timeout 300 cargo test --release --features cuda --test gpu --test cuda_kernels -- --nocapture \
  2>&1 | grep -vE '^\s+(Compiling|Running)' | tee -a "$out"
[ "${PIPESTATUS[0]}" = 0 ] || failed=1

section "training on the GPU next to PyTorch on the same GPU (benches/gpu_vs_pytorch.py)"
py=python3
.venv-peers/bin/python -c 'import torch' 2>/dev/null && py=.venv-peers/bin/python
if ! $py -c 'import torch' 2>/dev/null; then
  say "installing torch into .venv-peers"
  python3 -m venv .venv-peers && .venv-peers/bin/pip install -q torch 2>&1 | tail -2 | tee -a "$out" && py=.venv-peers/bin/python
fi
timeout 240 $py benches/gpu_vs_pytorch.py --strom target/release/strom 2>&1 | tee -a "$out"
[ "${PIPESTATUS[0]}" = 0 ] || failed=1

section "done: $([ $failed = 0 ] && echo passed || echo FAILED) ($SECONDS s); results in $out"
exit $failed
