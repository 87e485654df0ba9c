#!/usr/bin/env bash
# Regenerates the bad-input matrix in docs/reliability.md from the test that checks it
# (tests/reliability/bad_input_matrix*_test.cpp): the table between the lines
# "<!-- matrix:begin ..." and "<!-- matrix:end -->" is replaced by what
#   TSMC_PRINT_MATRIX=1 build/dev/tests/tsmc_tests "bad-input matrix*"
# prints. Build tsmc_tests first (cmake --build build/dev --target tsmc_tests).
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${TSMC_TESTS:-build/dev/tests/tsmc_tests}"
doc=docs/reliability.md
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
TSMC_PRINT_MATRIX=1 "$binary" "bad-input matrix*" |
  awk '/^<!-- matrix:begin/ {on = 1} on {print} /^<!-- matrix:end -->/ {on = 0}' > "$table"
grep -q '^<!-- matrix:end -->' "$table" || { echo "no matrix printed by $binary" >&2; exit 1; }
grep -q '^<!-- matrix:begin' "$doc" || { echo "$doc has no '<!-- matrix:begin' line" >&2; exit 1; }
awk -v table="$table" '
  /^<!-- matrix:begin/ { while ((getline line < table) > 0) print line; skip = 1; next }
  /^<!-- matrix:end -->/ { skip = 0; next }
  !skip { print }' "$doc" > "$doc.tmp"
mv "$doc.tmp" "$doc"
echo "updated $doc: $(sed -n '2p' "$table")"
