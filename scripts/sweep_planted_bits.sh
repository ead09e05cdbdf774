#!/usr/bin/env bash
# The sweep behind the [train] defaults (BENCHMARKS.md "Planted bits"): `bae bench
# synthetic-bits` over estimators, λ_H, λ_C and learning rates, at d = 64, d' = 256 on
# 8,192 rows whose mean norm is a real SmolLM2 hook's (200), with normalisation on, a
# fixed 200 epochs (E0 = 20, no λ warm-up, no early stopping) — except the last row,
# which is the shipped defaults unchanged. Prints one Markdown table row per recipe.
#
#   scripts/sweep_planted_bits.sh [BAE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bae="${1:-target/debug/bae}"
python="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
common=(--d 64 --features 256 --rows 8192 --bits 4,8,16,32 --json)
fixed=(--epochs 200 --entropy-start-epoch 20 --lambda-warmup-steps 0 --patience 0)

row() { # estimator λ_H λ_C lr [extra flags...]
  local estimator="$1" lh="$2" lc="$3" lr="$4"
  shift 4
  printf '[train]\nestimator = "%s"\n' "$estimator" > "$tmp/recipe.toml"
  "$bae" bench synthetic-bits "${common[@]}" --config "$tmp/recipe.toml" \
    --lambda-entropy "$lh" --lambda-covariance "$lc" --lr "$lr" "$@" |
    "$python" -c '
import json, sys
j = json.load(sys.stdin)
r = j["recipe"]
cells = " | ".join("%.1f (%.3f)" % (x["estimate"], x["val_fvu"]) for x in j["results"])
print("| %s | %g | %g | %g | %s | %s |" % (r["estimator"], r["lambda_entropy"], r["lambda_covariance"], r["lr"], cells,
      "pass" if j["passed"] else "fail"))'
}

echo "| estimator | λ_H | λ_C | lr | r = 4 | r = 8 | r = 16 | r = 32 | ±15% |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
row sign_s 1e-7 1e-7 5e-4 "${fixed[@]}"
row sign_s 1e-3 1e-4 1e-3 "${fixed[@]}"
row identity 3e-4 0 1e-3 "${fixed[@]}"
row sigmoid 1e-7 1e-7 5e-3 "${fixed[@]}"
row sigmoid 1e-4 0 1e-3 "${fixed[@]}"
row sigmoid 1e-3 1e-4 5e-3 "${fixed[@]}"
row sigmoid 1e-3 1e-3 5e-3 "${fixed[@]}"
row sigmoid 3e-3 1e-4 5e-3 "${fixed[@]}"
row sigmoid 3e-3 3e-4 5e-3 "${fixed[@]}"
row sigmoid 3e-3 1e-3 5e-3 "${fixed[@]}"
row sigmoid 1e-2 3e-4 5e-3 "${fixed[@]}"
# The shipped defaults, early stopping included.
"$bae" bench synthetic-bits "${common[@]}" | "$python" -c '
import json, sys
j = json.load(sys.stdin)
cells = " | ".join("%.1f (%.3f, %d ep)" % (x["estimate"], x["val_fvu"], x["epochs"]) for x in j["results"])
print("| defaults (sigmoid, 3e-3, 3e-4, 1e-3, warm-up 1000 steps, patience 10) | | | | %s | %s |" % (cells, "pass" if j["passed"] else "fail"))'
