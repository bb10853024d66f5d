#!/usr/bin/env bash
# Makes sure .venv-cuda holds NVRTC and ptxas from PyPI (no GPU needed), installing them the first
# time, and prints the folder of the wheels (its cuda_nvrtc/lib has libnvrtc.so.12, its
# cuda_nvcc/bin ptxas). Used by .ci/test and benches/gpu.sh, from the repository root.
set -euo pipefail
if ! .venv-cuda/bin/python -c 'import nvidia.cuda_nvrtc, nvidia.cuda_nvcc' 2>/dev/null; then
  echo "installing NVRTC and ptxas (PyPI nvidia-cuda-nvrtc-cu12, nvidia-cuda-nvcc-cu12) into .venv-cuda" >&2
  python3 -m venv .venv-cuda
  .venv-cuda/bin/pip install -q nvidia-cuda-nvrtc-cu12==12.9.86 nvidia-cuda-nvcc-cu12==12.9.86 >&2
fi
echo "$PWD"/.venv-cuda/lib/python3*/site-packages/nvidia
