#!/usr/bin/env bash
# Strom's CPU training step against PyTorch's on the same networks, batch sizes and thread
# counts, measured side by side in one run (see pytorch_step.py); with --lm first, the language
# models (pytorch_lm.py). Installs torch (and numpy, which its PowerSGD comm hook imports) from PyPI
# into .venv-peers the first time (a few GB: the PyPI wheel brings its CUDA libraries along).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! .venv-peers/bin/python -c 'import torch, numpy' 2>/dev/null; then
  echo "installing torch into .venv-peers (once)"
  python3 -m venv .venv-peers
  .venv-peers/bin/pip install -q torch numpy
fi
if [ "${1:-}" = "--lm" ]; then
  # Language models (pytorch_lm.py): the gpt and char_lstm presets on the Shakespeare corpus.
  shift
  [[ " $* " == *" --quick "* && -n ${STROM_BIN:-} ]] || cargo build --release >/dev/null 2>&1
  exec .venv-peers/bin/python benches/peers/pytorch_lm.py "$@"
fi
exec .venv-peers/bin/python benches/peers/pytorch_step.py "$@"
