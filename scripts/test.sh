#!/usr/bin/env bash
# The whole test suite: fetches the default models and the real-text corpus (and tests
# its extractors against known excerpts) and sets up the Python reference
# environment if needed (tests on the real models and the transformers parity test need
# them) and Chromium (the feature report is rendered in it), then checks formatting, lints, and runs every test with every feature — the
# GPU path included: its kernels are compiled to PTX by NVRTC (from .nvrtc), and its
# tests that need a device say why they skip when there is none.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh all
scripts/fetch-data.sh
python3 scripts/test_corpus_extract.py
scripts/setup-python.sh
scripts/setup-chromium.sh
cargo fmt --all -- --check
export LD_LIBRARY_PATH="$PWD/.nvrtc/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cargo clippy --workspace --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features
cargo test --workspace --all-features
