#!/usr/bin/env python3
"""Summarises the study's rows (scripts/study.sh): per horizon, method and K, the mean and the
standard error over seeds (sd / sqrt(n)) of KL(q||sigma), KL(sigma||q) and the bounds' gap UB - LB.
Usage: study_summary.py study.csv summary.csv (also prints a markdown table)."""
import csv
import math
import sys
from collections import defaultdict


def mean_se(xs):
    xs = [x for x in xs if math.isfinite(x)]
    n = len(xs)
    if n == 0:
        return float("nan"), float("nan"), 0
    m = sum(xs) / n
    if n == 1:
        return m, float("nan"), 1
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return m, math.sqrt(var / n), n


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    groups = defaultdict(list)
    for r in rows:
        groups[(int(r["horizon"]), r["method"], int(r["particles"]))].append(r)
    order = {"CTL": 0, "DPG": 1, "SIXO": 2, "FUDGE": 3}
    keys = sorted(groups, key=lambda k: (k[2], order.get(k[1], 9), k[0]))
    with open(sys.argv[2], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["particles", "horizon", "method", "seeds", "kl_q_sigma", "kl_q_sigma_se", "kl_sigma_q",
                    "kl_sigma_q_se", "gap", "gap_se", "method_index"])
        print("| K | T | method | seeds | KL(q\\|\\|sigma) | KL(sigma\\|\\|q) | gap UB - LB |")
        print("|---|---|---|---|---|---|---|")
        for k in keys:
            g = groups[k]
            a, ae, n = mean_se([float(r["kl_q_sigma"]) for r in g])
            b, be, _ = mean_se([float(r["kl_sigma_q"]) for r in g])
            c, ce, _ = mean_se([float(r["gap"]) for r in g])
            w.writerow([k[2], k[0], k[1], n, a, ae, b, be, c, ce, order.get(k[1], 9)])
            print(f"| {k[2]} | {k[0]} | {k[1]} | {n} | {a:.3f} +- {ae:.3f} | {b:.3f} +- {be:.3f} | {c:.3f} +- {ce:.3f} |")


if __name__ == "__main__":
    main()
