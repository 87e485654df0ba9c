#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds the main demo and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --workflow --preset demo
./build/dev/examples/quickstart "$@"
