#!/usr/bin/env bash
# Regenerates docs/bounds_vs_k.png and docs/kl_vs_updates.png: builds the flagship and red_team
# examples, runs them at the settings of docs/results.md (their CSV goes to docs/figures/data/),
# then draws the figures with gnuplot (gnuplot-nox, installed by scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset dev > /dev/null
cmake --build build/dev --target flagship red_team
data=docs/figures/data
mkdir -p "$data"
./build/dev/examples/flagship --sweep-csv "$data/flagship_sweep.csv" --history-csv "$data/flagship_history.csv" \
  --csv "$data/flagship.csv"
./build/dev/examples/red_team --csv "$data/red_team.csv" --history-csv "$data/red_team_history.csv"
gnuplot -e "data='$data'; out='docs'" docs/figures/figures.gp
echo "wrote docs/bounds_vs_k.png and docs/kl_vs_updates.png"
