#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages tsmc needs to build, test and benchmark; does nothing when
# they are all present. Run as root or with sudo available.
set -euo pipefail
packages=(g++ cmake ninja-build libeigen3-dev catch2 libbenchmark-dev libcli11-dev gnuplot-nox libopenmpi-dev openmpi-bin time python3 irstlm)
# Extra packages a caller needs (scripts/test-sanitizers.sh: clang and its sanitiser runtimes).
# shellcheck disable=SC2206
packages+=(${TSMC_EXTRA_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the npm peers (tests/peers); a machine with another build of node (e.g.
# NodeSource's, which bundles npm and conflicts with Debian's npm) keeps it.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "tsmc: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The npm peers the tests compare against, into the git-ignored tests/peers/node_modules, exactly
# as tests/peers/package-lock.json pins them (npm ci); skipped when they are already there.
peers="$(cd "$(dirname "$0")/.." && pwd)/tests/peers"
if [ ! -f "$peers/node_modules/.package-lock.json" ] || [ "$peers/package-lock.json" -nt "$peers/node_modules/.package-lock.json" ]; then
  echo "tsmc: installing the npm peers into $peers/node_modules"
  npm ci --prefix "$peers" --no-audit --no-fund --loglevel=error
fi
