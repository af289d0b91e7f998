"""Is the heterogeneity test honest? Type-I error on null designs, power on MIROCALS.

Simulates trials of the MIROCALS design (n = 220 by default) under three effects:

- ``none``: no treatment effect; every patient's true benefit is 0 (the strict null);
- ``common``: one hazard ratio (0.75) for everyone: no effect modification on the
  hazard-ratio scale. On the RMST scale benefit still varies a little with baseline
  risk (true SD 9.8 days against a mean of 28), so rejections here are mostly, but
  not strictly, type-I errors;
- ``mirocals``: the calibrated pNFH-dependent effect (true SD 69 days): power.

Each trial runs the learners of ``configs/mirocals.yaml`` through the same code as
``stratify run`` (:func:`stratify.pipeline.experiment.learn`), with ``cv.repeats`` set by
``--repeats`` (default 1, to keep the study affordable: repeats average the
out-of-fold estimates and do not change what is tested). It records every learner's
p-value under both heterogeneity tests (``rate``: RATE AUTOC; ``blp``: calibration
slope), the run's combined verdict under each (Holm over learners), and the paper's
pre-specified Wald test of arm x pNFH, and prints rejection rates at ``--alpha``
with exact (Clopper-Pearson) 95 % intervals. With ``--out`` each trial's row is
appended as soon as it finishes, and trials already in the file are skipped, so an
interrupted study resumes where it stopped.

Usage::

    python experiments/heterogeneity_study.py --trials 200 --n-jobs 2 --out study.csv

``--backend dask`` sends the trials to a Dask ``LocalCluster`` of ``--n-jobs`` workers
(:mod:`stratify.pipeline.execution`). ``stratify study CONFIG study.learners=true`` runs the same
per-learner tests for one effect, tracked and resumable in MLflow.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import pandas as pd
import yaml
from joblib import Parallel, delayed
from scipy.stats import binomtest

from stratify.config.loader import apply_override, validate_config
from stratify.config.schema import ExecutionConfig
from stratify.pipeline import execution
from stratify.pipeline.experiment import learn, load_trial
from stratify.progress import track
from stratify.trial import analyse_trial
from stratify.validation.metrics import combine_heterogeneity

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "mirocals.yaml"


def configure(raw: dict, overrides: list[str]):
    """The config from a snapshot of its YAML (read once, so edits mid-study change nothing)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw, base_dir=CONFIG.parents[1], source="study config")


def one_trial(raw: dict, effect: str, seed: int, n: int, repeats: int) -> dict[str, float]:
    """p-values of every learner under both tests, the verdicts, and the paper's test."""
    overrides = [
        f"seed={seed}",
        f"data.simulate.n={n}",
        f"data.simulate.effect={effect}",
        f"cv.repeats={repeats}",
        "execution.n_jobs=1",
    ]
    config = configure(raw, overrides)
    data = load_trial(config)
    reports = learn(config, data).learners
    row: dict[str, float | str] = {"effect": effect, "seed": seed}
    for test in ("rate", "blp"):
        p = {label: r.metrics[f"heterogeneity_p_{test}"] for label, r in reports.items()}
        row[f"verdict_{test}"] = combine_heterogeneity(p)[0]
        row |= {f"{label}_{test}": v for label, v in p.items()}
    # The pre-specified parametric test (Wald, arm x pNFH in the adjusted Cox model): it
    # tests effect modification on the hazard-ratio scale, where "common" is a strict null.
    analysis = analyse_trial(data, horizon=config.horizon)
    row["cox_wald_interaction"] = analysis.interaction_hr.p
    return row


def rejection_table(results: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Rejection rate and exact 95 % CI per effect and test."""
    tests = [c for c in results.columns if c not in ("effect", "seed")]
    rows = []
    for effect, group in results.groupby("effect", sort=False):
        for test in tests:
            p = group[test].dropna()
            k = int((p <= alpha).sum())
            ci = binomtest(k, len(p)).proportion_ci(method="exact") if len(p) else None
            rows.append(
                {
                    "effect": effect,
                    "test": test,
                    "trials": len(p),
                    "rejections": k,
                    "rate": k / len(p) if len(p) else float("nan"),
                    "ci_low": ci.low if ci else float("nan"),
                    "ci_high": ci.high if ci else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The rejection table as Markdown."""
    lines = ["| effect | test | trials | rejection rate | 95 % CI |", "|---|---|---|---|---|"]
    for r in table.itertuples():
        ci = f"{r.ci_low:.3f}–{r.ci_high:.3f}"
        lines.append(f"| {r.effect} | {r.test} | {r.trials} | {r.rate:.3f} | {ci} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per effect")
    parser.add_argument("--n", type=int, default=220, help="patients per trial")
    parser.add_argument("--effects", default="none,common,mirocals")
    parser.add_argument("--repeats", type=int, default=1, help="cv.repeats per trial")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the first trial")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument(
        "--backend", choices=["local", "dask"], default="local", help="execution.backend"
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="config whose learners run")
    parser.add_argument("--out", type=Path, help="CSV of per-trial p-values")
    args = parser.parse_args(argv)

    effects = args.effects.split(",")
    raw = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    jobs = [(e, args.seed + i) for e in effects for i in range(args.trials)]
    done = pd.read_csv(args.out) if args.out and args.out.exists() else pd.DataFrame()
    if len(done):
        finished = set(zip(done["effect"], done["seed"], strict=True))
        jobs = [job for job in jobs if job not in finished]
    start = time.perf_counter()
    new = []
    with execution.backend(ExecutionConfig(backend=args.backend, n_jobs=args.n_jobs)):
        rows = Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(
            delayed(one_trial)(raw, e, s, args.n, args.repeats) for e, s in jobs
        )
        for row in track(rows, "simulated trials", len(jobs)):
            new.append(row)
            if args.out:
                pd.DataFrame([row]).to_csv(
                    args.out, mode="a", header=not args.out.exists(), index=False
                )
    elapsed = time.perf_counter() - start
    results = pd.concat([done, pd.DataFrame(new)], ignore_index=True)
    results = results[results["effect"].isin(effects)]
    print(f"{len(new)} new trials of n = {args.n}, cv 5 folds x {args.repeats}, {elapsed:.0f} s")
    print(f"{len(results)} trials in all\n")
    print(markdown(rejection_table(results, args.alpha)))


if __name__ == "__main__":
    main()
