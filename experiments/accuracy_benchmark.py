"""How accurate is each learner's benefit estimate? RMSE and Spearman against the truth.

For each design (``mirocals``: benefit falls with CSF-pNFH; ``none``: no effect;
``common``: HR 0.75 for everyone), each training size (220 = MIROCALS, 2,000) and
each seed, the benchmark simulates a training trial with the MIROCALS simulator,
fits every learner of ``configs/mirocals.yaml`` (with their shipped parameters)
once on the whole trial, and predicts ``cate_rmst`` and ``cate_surv`` at the
config's horizon (640 days) for an independent test sample of 2,000 patients
from the same design (seed + 1,000,000), whose true effects are known in closed
form. It records, per fit:

- ``rmse_rmst`` (days) and ``spearman_rmst`` against the true RMST difference;
- ``rmse_surv`` and ``spearman_surv`` against the true survival difference;
- ``fit_s``: wall time of ``fit``, and ``fit_cpu_s``, its CPU time, which a busy
  shared machine does not inflate (every fit runs on one thread; the DR learner's
  time includes its cross-fitted nuisance models); ``predict_s`` for the test sample.

Spearman is undefined (NaN) under ``none``, where the truth is 0 for everyone;
there the RMSE is the spread of the estimates around 0. Every number is
reproducible: the seed fixes the data and the learners' random states.

Usage::

    python experiments/accuracy_benchmark.py --seeds 20 --sizes 220,2000 --n-jobs 2 \\
        --out experiments/results/accuracy.csv

Rows are appended as fits finish; rerunning with the same ``--out`` skips what is
already there, so an interrupted benchmark resumes.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from joblib import Parallel, delayed
from scipy import stats

from stratify.config.loader import apply_override, validate_config
from stratify.learners import make_learner
from stratify.pipeline.experiment import load_trial

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "mirocals.yaml"


def configure(raw: dict, overrides: list[str]):
    """The config from a snapshot of its YAML (read once, so edits mid-study change nothing)."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        apply_override(raw, item)
    return validate_config(raw, base_dir=CONFIG.parents[1], source="study config")


TEST_SIZE = 2000
TEST_OFFSET = 1_000_000


def one_seed(raw: dict, design: str, n: int, seed: int) -> list[dict]:
    """Fit every learner on one simulated trial; score on an independent test sample."""
    base = [f"data.simulate.effect={design}", "execution.n_jobs=1"]
    config = configure(raw, [*base, f"seed={seed}", f"data.simulate.n={n}"])
    train = load_trial(config)
    test_config = configure(
        raw, [*base, f"seed={seed + TEST_OFFSET}", f"data.simulate.n={TEST_SIZE}"]
    )
    test = load_trial(test_config)
    rows = []
    for spec in config.learners:
        learner = make_learner(
            spec.name,
            dict(spec.params),
            random_state=seed,
            modifier=train.modifier,
            horizon=config.horizon,
        )
        start, cpu = time.perf_counter(), time.process_time()
        learner.fit(train.X, train.y, train.arm)
        fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - cpu
        start = time.perf_counter()
        cate = learner.predict_cate(test.X)
        predict_s = time.perf_counter() - start
        row = {"design": design, "n": n, "seed": seed, "learner": spec.run_label}
        for estimand, truth in (("rmst", "tau_rmst"), ("surv", "tau_surv")):
            est = cate[f"cate_{estimand}"].to_numpy()
            true = test.truth[truth].to_numpy()
            row[f"rmse_{estimand}"] = float(np.sqrt(np.mean((est - true) ** 2)))
            row[f"bias_{estimand}"] = float(np.mean(est - true))
            row[f"spearman_{estimand}"] = (
                float(stats.spearmanr(est, true).statistic)
                if np.ptp(true) > 0 and np.ptp(est) > 0
                else float("nan")
            )
        rows.append(row | {"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "predict_s": predict_s})
    return rows


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean (and SD over seeds) of every measure per design, size and learner."""
    measures = ["rmse_rmst", "spearman_rmst", "rmse_surv", "spearman_surv", "fit_cpu_s"]
    grouped = results.groupby(["design", "n", "learner"], sort=False)[measures]
    table = grouped.mean().join(grouped.std(), rsuffix="_sd")
    table["seeds"] = grouped.size()
    return table.reset_index()


def markdown(table: pd.DataFrame) -> str:
    """The summary as Markdown: mean ± SD over seeds."""
    lines = [
        "| design | n | learner | seeds | RMSE RMST (d) | Spearman RMST | RMSE surv "
        "| Spearman surv | fit, CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(row, key, fmt):
        mean, sd = row[key], row[f"{key}_sd"]
        return "–" if np.isnan(mean) else f"{mean:{fmt}} ± {sd:{fmt}}"

    for _, r in table.iterrows():
        lines.append(
            f"| {r.design} | {r.n} | {r.learner} | {r.seeds} "
            f"| {cell(r, 'rmse_rmst', '.1f')} | {cell(r, 'spearman_rmst', '.2f')} "
            f"| {cell(r, 'rmse_surv', '.3f')} | {cell(r, 'spearman_surv', '.2f')} "
            f"| {cell(r, 'fit_cpu_s', '.2f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="trials per design and size")
    parser.add_argument("--sizes", default="220,2000", help="training sizes")
    parser.add_argument("--designs", default="mirocals,none,common")
    parser.add_argument("--seed", type=int, default=20_000, help="seed of the first trial")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--config", type=Path, default=CONFIG, help="config whose learners run")
    parser.add_argument("--out", type=Path, help="CSV of per-fit results (appended, resumable)")
    args = parser.parse_args(argv)

    raw = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    jobs = [
        (design, int(n), args.seed + i)
        for n in args.sizes.split(",")
        for design in args.designs.split(",")
        for i in range(args.seeds)
    ]
    done = pd.read_csv(args.out) if args.out and args.out.exists() else pd.DataFrame()
    if len(done):
        finished = set(zip(done["design"], done["n"], done["seed"], strict=True))
        jobs = [job for job in jobs if job not in finished]
    start = time.perf_counter()
    batches = Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(
        delayed(one_seed)(raw, *job) for job in jobs
    )
    new = []
    for rows in batches:
        new.extend(rows)
        if args.out:
            pd.DataFrame(rows).to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
    elapsed = time.perf_counter() - start
    results = pd.concat([done, pd.DataFrame(new)], ignore_index=True)
    print(f"{len(jobs)} new trials, {elapsed:.0f} s; test sample {TEST_SIZE} patients\n")
    print(markdown(summary(results)))


if __name__ == "__main__":
    main()
