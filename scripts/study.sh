#!/usr/bin/env bash
# The multi-seed study of issue 27, item 8 (docs/results.md, "Longer horizons"): CTL, DPG, SIXO and
# FUDGE on the built-in world's negative-sentiment target at T = 5, 10 and 15 words, SEEDS seeds
# each, the same head and budget, bounds at K = 16 and 64. Appends to docs/figures/data/study.csv
# (one row per horizon, method, seed and K), then summarises (mean +- standard error over seeds)
# into docs/figures/data/study_summary.csv and draws docs/study.png.
#
#   scripts/study.sh                 # the full grid: 3 horizons x 5 seeds (hours on a busy machine)
#   HORIZONS="5" SEEDS="1 2 3 4 5" scripts/study.sh     # a part of it
#   SUMMARY_ONLY=1 scripts/study.sh  # summarise and draw what is there
# Single-threaded and niced (OMP_NUM_THREADS=1, nice -n 15): it shares the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
HORIZONS=${HORIZONS:-"5 10 15"}
SEEDS=${SEEDS:-"1 2 3 4 5"}
UPDATES=${UPDATES:-400}
data=docs/figures/data
mkdir -p "$data"
if [ -z "${SUMMARY_ONLY:-}" ]; then
  cmake --build build/dev --target study > /dev/null
  for T in $HORIZONS; do
    for seed in $SEEDS; do
      OMP_NUM_THREADS=1 nice -n 15 ./build/dev/examples/study --horizon "$T" --seed "$seed" --updates "$UPDATES" \
        --csv "$data/study.csv" | tee -a "$data/study.log"
    done
  done
fi
python3 scripts/study_summary.py "$data/study.csv" "$data/study_summary.csv"
gnuplot -e "summary='$data/study_summary.csv'; out='docs/study.png'" docs/figures/study.gp
echo "wrote $data/study_summary.csv and docs/study.png"
