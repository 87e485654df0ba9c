#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages tsmc needs to build, test and benchmark; does nothing when
# they are all present. Run as root or with sudo available.
set -euo pipefail
packages=(g++ cmake ninja-build libeigen3-dev catch2 libbenchmark-dev libcli11-dev gnuplot-nox irstlm)
# Extra packages a caller needs (scripts/test-sanitizers.sh: clang and its sanitiser runtimes).
# shellcheck disable=SC2206
packages+=(${TSMC_EXTRA_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "tsmc: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
