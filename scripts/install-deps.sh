#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages tsmc needs to build, test and benchmark; does nothing when
# they are all present. Run as root or with sudo available.
set -euo pipefail
packages=(g++ cmake ninja-build libeigen3-dev catch2 libbenchmark-dev libcli11-dev gnuplot-nox nodejs)
# npm: Debian's package, unless an npm already comes with node (NodeSource's nodejs bundles it).
command -v npm >/dev/null 2>&1 || packages+=(npm)
# Extra packages a caller needs (scripts/test-sanitizers.sh: clang and its sanitiser runtimes).
# shellcheck disable=SC2206
packages+=(${TSMC_EXTRA_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tsmc: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The npm packages of the peer tests (tests/peers/package.json, e.g. @huggingface/gguf) into the
# git-ignored tests/peers/node_modules, when it is missing or older than package.json.
peers="$(cd "$(dirname "$0")/.." && pwd)/tests/peers"
if [ -f "$peers/package.json" ] && { [ ! -f "$peers/node_modules/.package-lock.json" ] ||
                                     [ "$peers/package.json" -nt "$peers/node_modules/.package-lock.json" ]; }; then
  echo "tsmc: installing the npm packages of tests/peers/package.json"
  (cd "$peers" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
fi
