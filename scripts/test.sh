#!/usr/bin/env bash
# The whole test suite: fetches the default models and sets up the Python reference
# environment if needed (tests on the real models and the transformers parity test need
# them), then checks formatting, lints, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh all
scripts/setup-python.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
