"""Calibrate the MIROCALS simulator and check it against the published trial.

(a) Derive the Weibull scale: the value for which the expected placebo
    mortality at 640 days, averaged over a large simulated cohort, is 49/110.
    ``stratify.data.simulate.WEIBULL_SCALE`` must equal the printed value.
(b) Simulate many trials of n = 220, analyse each with stratify.trial (as
    `stratify run` does; see stratify.validation.calibration), and print, for every published
    target of
    section 4 of the calibration sheet, the simulated median, the central 95 %
    interval, and the percentile of the published value, as a markdown table.

Usage::

    python experiments/calibrate_mirocals.py --n-trials 1000 --seed 0
    python experiments/calibrate_mirocals.py --n-trials 0      # scale only
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import brentq

from stratify.data.simulate import (
    FOLLOW_UP,
    WEIBULL_SCALE,
    WEIBULL_SHAPE,
    prognostic_index,
    simulate_covariates,
)
from stratify.validation.calibration import calibration_table, simulate_statistics

PLACEBO_DEATHS, N_PER_ARM = 49, 110


def derive_scale(n: int = 400_000, seed: int = 2025) -> float:
    """Weibull scale giving expected placebo 640-day mortality 49/110 (exact per patient)."""
    eta = prognostic_index(simulate_covariates(np.random.default_rng(seed), n))
    target = PLACEBO_DEATHS / N_PER_ARM

    def excess(scale: float) -> float:
        return float(np.mean(-np.expm1(-((FOLLOW_UP / scale) ** WEIBULL_SHAPE) * np.exp(eta))))

    return brentq(lambda s: excess(s) - target, 300.0, 3000.0, xtol=1e-6)


def markdown_table(stats) -> str:
    """The calibration table as Markdown."""
    lines = [
        "| Target | Published | Tag | Simulated median | 2.5-97.5 % | Percentile of published |",
        "|---|---|---|---|---|---|",
    ]
    for r in calibration_table(stats).itertuples():
        lines.append(
            f"| {r.target} | {r.published:.4g} | {r.tag} | {r.median:.4g} "
            f"| {r.low:.4g} - {r.high:.4g} | {r.percentile:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=1000, help="simulated trials (0: scale)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first trial")
    parser.add_argument("--calibration-n", type=int, default=400_000)
    parser.add_argument("--calibration-seed", type=int, default=2025)
    parser.add_argument("--out", help="optional CSV file for the per-trial statistics")
    args = parser.parse_args(argv)

    scale = derive_scale(args.calibration_n, args.calibration_seed)
    print(f"Weibull scale (days): {scale:.1f}  [hard-coded in simulate.py: {WEIBULL_SCALE}]")
    if round(scale, 1) != WEIBULL_SCALE:
        print("WARNING: the hard-coded WEIBULL_SCALE differs from the derived value")
    if args.n_trials <= 0:
        return
    start = time.perf_counter()
    stats = simulate_statistics(args.n_trials, args.seed)
    elapsed = time.perf_counter() - start
    print(f"\n{args.n_trials} trials of n = 220 (seeds {args.seed}..", end="")
    print(f"{args.seed + args.n_trials - 1}), {elapsed:.0f} s\n")
    print(markdown_table(stats))
    failed = stats.isna().any(axis=1).sum()
    print(f"\nTrials with a statistic that could not be estimated: {failed}")
    if args.out:
        stats.to_csv(args.out, index_label="trial")


if __name__ == "__main__":
    main()
