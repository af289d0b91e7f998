"""Do leaves that grow with n stop the T- and DR-learners inventing heterogeneity?

Under no treatment effect every patient's true RMST benefit is 0, so the spread
(SD across patients) of a learner's estimates is heterogeneity it invents. With a
fixed leaf size (T-learner: 10 patients per leaf of each arm's survival forest;
DR-learner: 20 scores per leaf of the final forest) that spread does not shrink
as the trial grows. This experiment compares today's fixed sizes with rules that
grow with the training size, all equal to today's values at n = 220 (so the
flagship MIROCALS run is unchanged):

- T-learner (per arm, ``m`` = patients in the arm): ``fixed`` = 10;
  ``sqrt`` = max(10, floor(sqrt(m))); ``linear`` = max(10, ceil(m / 20));
- DR-learner (``n`` = training patients): ``fixed`` = 20;
  ``sqrt`` = max(20, floor(sqrt(2 n))); ``linear`` = max(20, ceil(n / 20)).

For each design (``none``, ``mirocals``), trial size and seed it simulates a trial
(``simulate_mirocals(n, seed)``), fits every variant on it, and predicts the RMST
benefit at 640 days for an independent test sample of 2,000 patients of the same
design (seed + 1,000,000). It records the RMSE against the true benefit
(``tau_rmst``) and the SD of the estimates across the test patients, one row per
(design, n, seed, learner, variant), and prints the means over seeds. Everything
runs in one process (``n_jobs=1``).

Usage::

    python experiments/leaf_growth.py --seeds 1 2 3 4 5 6 7 8 9 10 --sizes 220 2000 \\
        --out experiments/results/leaf_growth.csv

(``experiments/results/leaf_growth.csv`` holds that run: about 5 minutes on one core.)

With ``--out``, rows are appended as each trial finishes and trials already in the
file are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stratify.data.simulate import simulate_mirocals
from stratify.data.trial_data import TrialData
from stratify.learners import make_learner
from stratify.learners.base_models import fit_base_model
from stratify.learners.checks import check_fit_inputs
from stratify.learners.coarsening import fit_outcome
from stratify.learners.meta import TLearner
from stratify.learners.survival import event_times

HORIZON = 640.0
N_TEST = 2000
TEST_OFFSET = 1_000_000
MODIFIER = "csf_pnfh"

#: Leaf size of each arm's survival forest, from the patients in the arm.
T_RULES = {
    "fixed": lambda m: 10,
    "sqrt": lambda m: max(10, math.isqrt(m)),
    "linear": lambda m: max(10, math.ceil(m / 20)),
}
#: Leaf size of the DR-learner's final forest, from the training patients.
DR_RULES = {
    "fixed": lambda n: 20,
    "sqrt": lambda n: max(20, math.isqrt(2 * n)),
    "linear": lambda n: max(20, math.ceil(n / 20)),
}


class RuleTLearner(TLearner):
    """A T-learner (random survival forests) whose leaf size is ``rule(patients in the arm)``."""

    def __init__(self, *, rule=None, horizon=None, random_state=None):
        super().__init__(base="rsf", horizon=horizon, random_state=random_state)
        self.rule = rule

    def fit(self, X, y, arm):
        X, y, arm = check_fit_inputs(X, y, arm)
        y, self.time_grid_ = fit_outcome(y, None, None)
        self.leaf_sizes_ = tuple(self.rule(int((arm == a).sum())) for a in (0, 1))
        self.models_ = tuple(
            fit_base_model(
                "rsf",
                {"min_samples_leaf": self.leaf_sizes_[a]},
                self.random_state,
                X[arm == a],
                y[arm == a],
            )
            for a in (0, 1)
        )
        self.event_times_ = event_times(y)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self


def _trial(n: int, seed: int, design: str) -> tuple[TrialData, np.ndarray]:
    df = simulate_mirocals(n, seed, effect=design)
    return TrialData.from_frame(df, modifier=MODIFIER), df["tau_rmst"].to_numpy()


def run_trial(design: str, n: int, seed: int) -> list[dict]:
    """Fit every variant on one trial; one row per variant."""
    train, _ = _trial(n, seed, design)
    test, truth = _trial(N_TEST, seed + TEST_OFFSET, design)
    learners = {
        ("t_learner", name): (RuleTLearner(rule=rule, horizon=HORIZON, random_state=seed), None)
        for name, rule in T_RULES.items()
    }
    for name, rule in DR_RULES.items():
        leaf = rule(len(train.X))
        learner = make_learner(
            "dr_learner",
            {"min_samples_leaf": leaf},
            random_state=seed,
            modifier=MODIFIER,
            horizon=HORIZON,
        )
        learners["dr_learner", name] = (learner, leaf)
    rows = []
    for (learner_name, variant), (learner, leaf) in learners.items():
        start = time.perf_counter()
        learner.fit(train.X, train.y, train.arm)
        estimate = learner.predict_cate(test.X)["cate_rmst"].to_numpy()
        if leaf is None:
            leaf = "/".join(str(k) for k in learner.leaf_sizes_)
        rows.append(
            {
                "design": design,
                "n": n,
                "seed": seed,
                "learner": learner_name,
                "variant": variant,
                "min_samples_leaf": str(leaf),
                "rmse": float(np.sqrt(np.mean((estimate - truth) ** 2))),
                "sd": float(np.std(estimate)),
                "mean": float(np.mean(estimate)),
                "true_sd": float(np.std(truth)),
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
    return rows


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds of RMSE, SD and mean estimate, per design, n, learner, variant."""
    keys = ["design", "n", "learner", "variant"]
    summary = results.groupby(keys, sort=False).agg(
        leaf=("min_samples_leaf", "first"),
        seeds=("seed", "nunique"),
        rmse=("rmse", "mean"),
        sd=("sd", "mean"),
        mean=("mean", "mean"),
        true_sd=("true_sd", "mean"),
        seconds=("seconds", "mean"),
    )
    fixed = summary.xs("fixed", level="variant").rename(columns=lambda c: f"{c}_fixed")
    joined = summary.join(fixed[["rmse_fixed", "sd_fixed"]], on=["design", "n", "learner"])
    summary["rmse_vs_fixed"] = joined["rmse"] / joined["rmse_fixed"] - 1
    summary["sd_vs_fixed"] = joined["sd"] / joined["sd_fixed"] - 1
    return summary.reset_index()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", nargs="+", default=["none", "mirocals"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[220, 2000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    done: set[tuple] = set()
    frames = []
    if args.out is not None and args.out.exists():
        previous = pd.read_csv(args.out)
        frames.append(previous)
        done = set(zip(previous["design"], previous["n"], previous["seed"], strict=True))
    # Seeds outermost, so a run cut short still covers every design and size.
    for seed in args.seeds:
        for n in args.sizes:
            for design in args.designs:
                if (design, n, seed) in done:
                    continue
                start = time.perf_counter()
                frame = pd.DataFrame(run_trial(design, n, seed))
                print(
                    f"{design} n={n} seed={seed}: {time.perf_counter() - start:.0f} s",
                    flush=True,
                )
                frames.append(frame)
                if args.out is not None:
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    frame.to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
    results = pd.concat(frames, ignore_index=True)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summarise(results).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
