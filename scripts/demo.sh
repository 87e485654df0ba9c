#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds the flagship demo (and quickstart) and runs the flagship.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --workflow --preset demo
./build/dev/examples/flagship "$@"
