#!/usr/bin/env bash
# Harvest throughput and memory against the hooked forward pass, for BENCHMARKS.md.
#
#   scripts/bench_harvest.sh [MODEL] [N]
#
# Builds a corpus of long documents from the demo corpus (20 demo paragraphs per line,
# so windows are full and batches unpadded, as with web text), then runs, in this order:
# `bae bench forward` (its "capture only" variant is the same work without the store),
# a harvest of N rows, a harvest of 8N rows, `bae bench forward` again, and a harvest
# of N rows again. Every harvest stores all `hook_resid_post` points as f16 and prints
# tokens/s and peak memory. Defaults: SmolLM2, N = 8192. Outputs go to runs/bench-harvest/.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}"
n="${2:-8192}"
bae=./target/debug/bae
dir=runs/bench-harvest
rm -rf "$dir" && mkdir -p "$dir"
for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do cat configs/corpus/demo.txt; done | paste -d' ' - - - - - - - - - - - - - - - - - - - - > "$dir/corpus.txt"

harvest() {
  "$bae" harvest -m "$model" --corpus "$dir/corpus.txt" --hooks 'blocks.*.hook_resid_post' \
    --tokens "$1" --ctx 128 --batch 8 --dtype f16 -o "$dir/store-$2" 2>&1 | tail -2
  echo "bytes on disk: $(du -sb "$dir/store-$2" | cut -f1)"
}
forward() {
  "$bae" bench forward -m "$model" --batch 8 --seq 128 --iters 3
}
echo "== forward 1";  forward
echo "== harvest N=$n";  harvest "$n" n1
echo "== harvest 8N=$((8 * n))";  harvest "$((8 * n))" n8
echo "== forward 2";  forward
echo "== harvest N=$n again";  harvest "$n" n2
