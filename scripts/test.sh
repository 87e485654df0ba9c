#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything with warnings as
# errors, and runs the whole test suite (unit, statistical, examples, consumers, benchmark smoke).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export CTEST_PARALLEL_LEVEL="${CTEST_PARALLEL_LEVEL:-$(nproc)}"
cmake --workflow --preset test
