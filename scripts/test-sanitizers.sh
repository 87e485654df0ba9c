#!/usr/bin/env bash
# The sanitiser check (docs/reliability.md): builds the unit tests with clang under
# AddressSanitizer + UndefinedBehaviorSanitizer (preset `asan`, build/asan) and runs them; then,
# unless TSMC_FUZZ_SECONDS=0, builds the libFuzzer targets (preset `fuzz`, build/fuzz) and runs
# each for TSMC_FUZZ_SECONDS seconds (default 20) on a copy of its seed corpus.
# Installs clang and its runtimes when missing. Any sanitiser report fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
TSMC_EXTRA_PACKAGES="clang-14 libclang-rt-14-dev libomp-14-dev" bash scripts/install-deps.sh

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
jobs="${TSMC_JOBS:-$(nproc)}"

start=$(date +%s)
cmake --preset asan >/dev/null
cmake --build build/asan --target tsmc_tests -j "$jobs"
built=$(date +%s)
# TSMC_SANITIZER_TESTS selects Catch2 tests (default: all of them).
./build/asan/tests/tsmc_tests ${TSMC_SANITIZER_TESTS:-} --order lex
ran=$(date +%s)
echo "tsmc: sanitiser unit tests passed (build $((built - start)) s, run $((ran - built)) s)"

seconds="${TSMC_FUZZ_SECONDS:-20}"
[ "$seconds" = 0 ] && exit 0
cmake --preset fuzz >/dev/null
cmake --build build/fuzz -j "$jobs"
for target in fuzz_llama2c_checkpoint fuzz_llama2c_tokenizer fuzz_arpa fuzz_parameters fuzz_classifier fuzz_bpe_tokenizer fuzz_gguf; do
  corpus="build/fuzz/corpus/${target}"
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp fuzz/corpus/"${target#fuzz_}"/* "$corpus"/
  echo "tsmc: fuzzing ${target} for ${seconds} s"
  log="build/fuzz/${target}.log"
  if ! ./build/fuzz/fuzz/"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix=build/fuzz/ \
       "$corpus" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "tsmc: ${target} found a crash, a leak, a timeout or excess memory (input saved by libFuzzer above)"
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | sed "s/^/  /"
done
echo "tsmc: fuzz runs passed"
