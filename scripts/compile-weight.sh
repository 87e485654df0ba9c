#!/usr/bin/env bash
# compile-weight.sh: what including tsmc costs the compiler, as ratios to including <Eigen/Core>.
#
# Compiles four translation units with the same compiler and flags, one after the other, and
# prints each one's peak memory (maximum resident set size of the compiler, from /usr/bin/time)
# and CPU time (user + system), and their ratios to the first:
#   eigen      a file that includes only <Eigen/Core>
#   umbrella   a file that includes only <tsmc/tsmc.hpp>
#   quickstart examples/quickstart.cpp (a whole small program: a user's model, SMC, printing)
#   all        a file that includes only <tsmc/all.hpp> (every layer; printed, not checked)
# Peak memory is close to deterministic for a given compiler; CPU time moves with the machine's
# load, so read the time ratios of one run only.
#
# Usage: scripts/compile-weight.sh [--cxx COMPILER] [--eigen DIR] [--flags "FLAGS"]
#                                  [--max-umbrella R] [--max-program R]
#   --cxx           the compiler (default: $CXX, else c++)
#   --eigen         Eigen's include directory (default: pkg-config eigen3, else /usr/include/eigen3)
#   --flags         compile flags (default: "-std=c++20 -O2")
#   --max-umbrella  fail (exit 1) if the umbrella's peak-memory ratio exceeds R
#   --max-program   fail (exit 1) if the quickstart's peak-memory ratio exceeds R
# The limits are on peak memory only: CPU-time ratios are printed, not checked (too noisy on a
# shared machine for a pass/fail test).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cxx="${CXX:-c++}"
eigen=""
flags="-std=c++20 -O2"
max_umbrella=""
max_program=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cxx) cxx="$2"; shift 2 ;;
    --eigen) eigen="$2"; shift 2 ;;
    --flags) flags="$2"; shift 2 ;;
    --max-umbrella) max_umbrella="$2"; shift 2 ;;
    --max-program) max_program="$2"; shift 2 ;;
    *) echo "compile-weight.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
done
if [[ -z "$eigen" ]]; then
  eigen="$(pkg-config --variable=includedir eigen3 2>/dev/null || true)"
  [[ -n "$eigen" && -d "$eigen/eigen3" ]] && eigen="$eigen/eigen3"
  [[ -z "$eigen" || ! -f "$eigen/Eigen/Core" ]] && eigen=/usr/include/eigen3
fi
if [[ ! -f "$eigen/Eigen/Core" ]]; then
  echo "compile-weight.sh: error: --eigen: no Eigen/Core under '$eigen'" >&2; exit 2
fi
if [[ ! -x /usr/bin/time ]]; then
  echo "compile-weight.sh: error: needs /usr/bin/time (Debian package 'time')" >&2; exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '#include <Eigen/Core>\nint main() { return 0; }\n' > "$work/eigen.cpp"
printf '#include <tsmc/tsmc.hpp>\nint main() { return 0; }\n' > "$work/umbrella.cpp"
printf '#include <tsmc/all.hpp>\nint main() { return 0; }\n' > "$work/all.cpp"
cp "$root/examples/quickstart.cpp" "$work/quickstart.cpp"

# measure NAME: compiles $work/NAME.cpp to an object file; sets mem_NAME (KiB) and cpu_NAME (s).
measure() {
  local name="$1"
  # shellcheck disable=SC2086
  /usr/bin/time -f '%M %U %S' -o "$work/$name.time" \
    "$cxx" $flags -I"$root/include" -I"$eigen" -c "$work/$name.cpp" -o "$work/$name.o"
  read -r mem user sys < "$work/$name.time"
  printf -v "mem_$name" '%s' "$mem"
  printf -v "cpu_$name" '%s' "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
}

measure eigen
measure umbrella
measure quickstart
measure all

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "compile weight: $cxx $flags ($(uptime | sed 's/.*load average/load average/'))"
printf '%-40s %12s %8s %10s %8s\n' "translation unit" "peak KiB" "x Eigen" "CPU s" "x Eigen"
for name in eigen umbrella quickstart all; do
  mem_var="mem_$name"; cpu_var="cpu_$name"
  case "$name" in
    eigen) label="#include <Eigen/Core>" ;;
    umbrella) label="#include <tsmc/tsmc.hpp>" ;;
    quickstart) label="examples/quickstart.cpp" ;;
    all) label="#include <tsmc/all.hpp>" ;;
  esac
  printf '%-40s %12s %8s %10s %8s\n' "$label" "${!mem_var}" "$(ratio "${!mem_var}" "$mem_eigen")" \
    "${!cpu_var}" "$(ratio "${!cpu_var}" "$cpu_eigen")"
done

status=0
check() {  # check LABEL MEM LIMIT
  [[ -z "$3" ]] && return 0
  if awk -v m="$2" -v e="$mem_eigen" -v r="$3" 'BEGIN { exit !(m / e > r) }'; then
    echo "compile-weight.sh: FAIL: $1 peak memory is $(ratio "$2" "$mem_eigen")x <Eigen/Core>'s, over the limit $3x" >&2
    status=1
  fi
}
check "the umbrella header" "$mem_umbrella" "$max_umbrella"
check "the quickstart program" "$mem_quickstart" "$max_program"
exit "$status"
