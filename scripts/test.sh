#!/usr/bin/env bash
# The whole test suite: fetches the default model if needed (tests on the real model
# need it), then checks formatting, lints, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-models.sh smollm2
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
