#!/usr/bin/env bash
# Creates .venv at the repository root with the Python packages the transformers parity
# test and the comparison benchmark need (scripts/requirements-reference.txt).
# Idempotent: an existing .venv with those packages is kept. The tests find it at
# .venv/bin/python; BAE_PYTHON overrides that.
#
#   scripts/setup-python.sh
#
# torch from PyPI pulls its CUDA libraries (about 5 GB installed, 2-3 minutes); they are
# loaded at import even on a CPU-only machine, so they cannot be left out. pip keeps no
# cache of the wheels (--no-cache-dir): that would hold another 3 GB on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
requirements="scripts/requirements-reference.txt"
stamp=".venv/.requirements"

# NVRTC 13.0 for the GPU path's kernel-compilation test (no GPU needed): its own
# directory, so torch's CUDA libraries in .venv are left alone. The tests find it through
# LD_LIBRARY_PATH=.nvrtc/nvidia/cu13/lib (scripts/test.sh sets it).
install_nvrtc() {
  if [[ ! -f .nvrtc/nvidia/cu13/lib/libnvrtc.so.13 ]]; then
    "$1" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps --target .nvrtc "nvidia-cuda-nvrtc==13.0.*"
  fi
}

if [[ -x .venv/bin/python && -f "$stamp" ]] && cmp -s "$requirements" "$stamp"; then
  install_nvrtc .venv/bin/python
  echo "python: .venv is up to date"
  exit 0
fi
"$python" -m venv .venv
# The install needs about 9 GB at its peak (wheels unpacked beside the installed files):
# warn up front, so that a failure half-way with ENOSPC is not a mystery.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if (( free_kb < 9 * 1024 * 1024 )); then
  echo "setup-python: warning: only $((free_kb / 1024)) MiB free under $PWD; the reference environment needs about 9 GB at its peak" >&2
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-cache-dir -r "$requirements"
.venv/bin/python -c "import torch, transformers, tokenizers, safetensors, gguf"
install_nvrtc .venv/bin/python
cp "$requirements" "$stamp"
echo "python: .venv ready ($(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
