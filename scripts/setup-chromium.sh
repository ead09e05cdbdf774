#!/usr/bin/env bash
# Makes sure headless Chromium is installed: the test of `bae features` renders its HTML
# report in it (DOM and screenshot). Installs Debian's chromium package when missing
# and this user can (root, or passwordless sudo); otherwise says what to install.
# BAE_CHROMIUM names another browser binary for the tests.
#
#   scripts/setup-chromium.sh
set -euo pipefail
browser="${BAE_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$browser" ]]; then
  echo "chromium: $browser"
  exit 0
fi
if [[ "$(id -u)" == 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "setup-chromium: $browser is missing; install Debian's chromium package (apt-get install chromium) or set BAE_CHROMIUM" >&2
  exit 1
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "chromium: installed $("$browser" --version)"
