#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and the CUDA 13 runtime (driver,
# cuBLAS, NVRTC; PyTorch for the reference) but no Rust toolchain. Build the binary
# elsewhere and bring it along:
#
#   cargo build --release --features cuda        # on any machine, no CUDA needed
#   scripts/gpu-check.sh [path/to/bae]           # on the GPU machine; default target/release/bae
#
# (1) parity: every kernel against its CPU twin on sizes that are not powers of two,
#     and 50 training steps of every architecture on GPU and CPU (reconstruction error
#     within 1e-3 relative at every step, parameters within 1e-4 after the first);
# (2) timing: the fused binarize-and-popcount kernel's bandwidth against a measured
#     device-to-device copy, and training rows/s at d = 2048, d' = 8192, batch 512 for
#     bae on the GPU and the PyTorch reference on the same GPU, alternating.
# Results go to stdout and to gpu-check.json in the working directory (or $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
bae="${1:-target/release/bae}"
out="${OUT:-.}"
python="${PYTHON:-python3}"
[[ -x "$bae" ]] || { echo "gpu-check: no bae binary at $bae (build with --features cuda)" >&2; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== parity and entropy-kernel bandwidth"
"$bae" gpu-check --rows 512 --features 8192 --iters 50
"$bae" gpu-check --rows 512 --features 8192 --iters 50 --json > "$out/gpu-check.json"

echo "== training throughput, d = 2048, d' = 8192, batch 512 (alternating pairs)"
for pair in 1 2 3; do
  "$bae" bench train --device cuda --d 2048 --features 8192 --batch 512 --steps 50 | tee -a "$out/gpu-check-train.jsonl"
  "$python" scripts/bench_reference_bae.py --device cuda --d 2048 --features 8192 --batch 512 --steps 50 \
    | tee -a "$out/gpu-check-train.jsonl"
done
for arch in relu_l1 topk batch_topk jumprelu; do
  "$bae" bench train --device cuda --d 2048 --features 8192 --batch 512 --steps 50 --architecture "$arch" \
    | tee -a "$out/gpu-check-train.jsonl"
done
