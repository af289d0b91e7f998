"""How should the causal survival forest's local linear correction be chosen? Fresh trials.

For ``--trials`` simulated MIROCALS-design trials per effect (``mirocals``, ``none``,
``common``; seeds ``--first-seed`` onward, none of them the reference files of
``grf_benchmark.py``), the forest is fitted once with the correction along ``csf_pnfh``
(``ll_lambda="auto"``), and every rule for the penalty is scored on the same out-of-bag
estimates against the truth (RMST benefit at 640 days):

- ``plain``: no correction (grf's forest);
- ``auto``: the shipped rule, the least out-of-bag doubly robust loss if it beats the plain
  forest by more than 1 standard error (``stratify.learners.local_linear.choose_lambda``);
  ``se1.5``, ``se2``, ``se2.5``: the same rule with 1.5, 2 and 2.5 standard errors; ``min``:
  the least loss, whatever the margin;
- ``l0.1`` ... ``l3``: a fixed penalty;
- each with ``_shr``: then pulled toward the average effect by the calibration slope
  (``shrinkage: calibrated``).

It prints the mean RMSE per rule and effect, the mean ratio to ``plain`` per trial, and how
often each rule keeps the plain forest; rows go to ``--out``.

Usage::

    .venv/bin/python experiments/csf_local_linear.py --trials 30 --first-seed 101 \\
        --n 220 --trees 500 --n-jobs 2 --out experiments/results/csf_local_linear.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sksurv.util import Surv

from stratify.data.simulate import simulate_mirocals
from stratify.learners import local_linear
from stratify.learners.causal_survival_forest import (
    CausalSurvivalForest,
    calibration_slope,
    canonical_order,
)

COVARIATES = ["age", "bulbar_onset", "delta_fs", "svc", "csf_pnfh"]
HORIZON = 640.0
FIXED = (0.1, 0.3, 1.0, 3.0)
MARGINS = (1.5, 2.0, 2.5)


def choose(tau, candidates, num, den, margin: float | None) -> float:
    """The penalty with least loss that beats the plain forest by ``margin`` SEs (None: any)."""
    base = (num - den * tau) ** 2 / den
    chosen, best = np.inf, np.inf
    for lam, est in candidates.items():
        own = (num - den * est) ** 2 / den
        diff = own - base
        beats = margin is None or diff.mean() + margin * diff.std(ddof=1) / np.sqrt(len(diff)) < 0
        if beats and own.mean() < best:
            chosen, best = lam, float(own.mean())
    return chosen


def one_trial(effect: str, seed: int, n: int, trees: int) -> dict:
    """Fit once; score every rule on the RMST forest's out-of-bag estimates."""
    seen = []
    original = local_linear.choose_lambda

    def record(tau, candidates, num, den):
        seen.append((tau, candidates, num, den))
        return original(tau, candidates, num, den)

    local_linear.choose_lambda = record
    try:
        frame = simulate_mirocals(n, seed, effect=effect)
        X = frame[COVARIATES].astype(float)
        y = Surv.from_arrays(frame["event"].astype(bool), frame["time"])
        forest = CausalSurvivalForest(
            horizon=HORIZON, n_estimators=trees, modifier="csf_pnfh", random_state=seed
        )
        forest.fit(X, y, frame["arm"].to_numpy())
    finally:
        local_linear.choose_lambda = original
    tau, candidates, num, den = seen[0]  # the RMST forest (canonical row order)
    order = canonical_order(X.to_numpy(), frame["time"].to_numpy(float), frame["event"].to_numpy())
    truth = frame["tau_rmst"].to_numpy()[order]
    ate = float(num.sum() / den.sum())

    def shrunk(est):
        slope = np.clip(calibration_slope(est, num, den, ate)[0], 0, 1)
        return ate + slope * (est - ate)

    def rmse(est):
        return float(np.sqrt(np.mean((est - truth) ** 2)))

    def pick(lam):
        return tau if np.isinf(lam) else candidates[lam]

    rules = {"plain": np.inf, "auto": original(tau, candidates, num, den)[0]}
    rules |= {f"se{m:g}": choose(tau, candidates, num, den, m) for m in MARGINS}
    rules["min"] = choose(tau, candidates, num, den, None)
    rules |= {f"l{lam:g}": lam for lam in FIXED}
    row = {"effect": effect, "seed": seed, "n": n, "trees": trees}
    for name, lam in rules.items():
        row[name] = rmse(pick(lam))
        row[f"{name}_shr"] = rmse(shrunk(pick(lam)))
        row[f"lambda_{name}"] = lam
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=101)
    parser.add_argument("--n", type=int, default=220)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--n-jobs", type=int, default=1)
    default_out = Path("experiments/results/csf_local_linear.csv")
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.trials)
    rows = Parallel(n_jobs=args.n_jobs)(
        delayed(one_trial)(effect, seed, args.n, args.trees)
        for effect in ("mirocals", "none", "common")
        for seed in seeds
    )
    frame = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    rules = [c for c in frame if c not in ("effect", "seed", "n", "trees")]
    scores = [c for c in rules if not c.startswith("lambda_")]
    ratio = frame[scores].div(frame["plain"], axis=0).assign(effect=frame["effect"])
    print("mean RMSE (days)")
    print(frame.groupby("effect")[scores].mean().round(1).T.to_string())
    print("\nmean ratio to the plain forest, per trial")
    print(ratio.groupby("effect").mean().round(3).T.to_string())
    kept = frame[[c for c in rules if c.startswith("lambda_")]].apply(np.isinf)
    print("\nshare of trials where the rule keeps the plain forest")
    print(kept.assign(effect=frame["effect"]).groupby("effect").mean().round(2).T.to_string())


if __name__ == "__main__":
    main()
