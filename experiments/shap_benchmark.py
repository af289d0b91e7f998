"""How fast is exact TreeSHAP for survival forests? Against shap's PermutationExplainer.

Two measurements on GBSG2 (``sksurv.datasets.load_gbsg2``, categoricals one-hot
encoded with ``sksurv.column.encode_categorical``: 686 patients, 9 features):

1. **Risk score, per patient.** A 100-tree ``RandomSurvivalForest`` (sksurv's
   defaults, ``min_samples_leaf=3``; and, for comparison, stratify's
   ``min_samples_leaf=10``). shap's model-agnostic ``PermutationExplainer`` (its
   default ``max_evals=500``) explains ``rsf.predict`` (one thread) for a
   handful of patients over a background of 100 patients;
   :func:`stratify.explain.forest_shap` explains the same patients exactly,
   interventional with the same background (stratify's float64 closed form)
   and path-dependent (shap's C++ TreeSHAP). For reference, shap's own C++
   interventional kernel (float32 inside) runs on the same converted trees.
   Everything in part 1 runs in one thread (``threadpoolctl``). Exact times are
   given for the same handful in one call (tree conversion included: the
   conservative ratio) and per patient when all 686 patients are explained in
   one call (the setup amortised). Both explainers are warmed up first (shap
   compiles numba helpers on its first call), untimed. *additivity* is the
   largest ``|base value + sum of SHAP values - prediction|`` relative to the
   largest prediction.
2. **Survival curves.** ``output="survival"`` at 20 times (quantiles of the
   event times) for 1,000 patients drawn with replacement from GBSG2,
   path-dependent, from a 200-tree forest: in one process, and split over two
   joblib (loky) worker processes -- the first call starts the workers (cold),
   the second reuses them (warm). For context: the risk score alone from the
   same forest (1 output instead of 20), a forest with ``min_samples_leaf=10``
   (stratify's RSF setting: shallower trees), and interventional SHAP over a
   100-patient background. (The interventional algorithm groups patients that
   share a leaf pattern, so repeated patients cost it less; path-dependent
   TreeSHAP treats every row anew.)

Times are wall-clock (``time.perf_counter``) and, in one process, CPU
(``time.process_time``), which a busy machine inflates less. Memory is the
peak of ``tracemalloc`` during the call (Python and NumPy allocations,
including shap's output arrays; shap's small C++ work buffers are not traced),
and the process's peak resident set size (``resource.getrusage(RUSAGE_SELF).
ru_maxrss``, which includes the fitted forests).

Usage::

    python experiments/shap_benchmark.py --seed 0 --patients 5 --jobs 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shlex
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import shap
from joblib import parallel_config
from sksurv.column import encode_categorical
from sksurv.datasets import load_gbsg2
from sksurv.ensemble import RandomSurvivalForest
from threadpoolctl import threadpool_limits

from stratify.explain import forest_shap
from stratify.explain.trees import as_float32_matrix, tree_model


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="data sampling and forests")
    parser.add_argument("--patients", type=int, default=5, help="patients for the permutation run")
    parser.add_argument("--background", type=int, default=100, help="background rows")
    parser.add_argument("--trees", type=int, default=100, help="trees, part 1")
    parser.add_argument(
        "--leaf-sizes",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[3, 10],
        help="min_samples_leaf of the part-1 forests (3: sksurv's default; 10: stratify's)",
    )
    parser.add_argument("--curve-trees", type=int, default=200, help="trees, part 2")
    parser.add_argument("--curve-patients", type=int, default=1000, help="patients, part 2")
    parser.add_argument("--times", type=int, default=20, help="time points, part 2")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, part 2")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    return parser.parse_args(argv)


def machine() -> list[str]:
    """Lines describing the machine, its load and the date."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- command: `python {shlex.join(sys.argv)}`",
        f"- machine: {len(os.sched_getaffinity(0))} CPUs (nproc), {model}; {platform.platform()}",
        f"- load average (1, 5, 15 min): {load}",
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- versions: shap {shap.__version__}, numpy {np.__version__}, Python "
        f"{platform.python_version()}",
    ]


def timed(fn, trace: bool = False):
    """Run ``fn()``: its result, wall seconds, CPU seconds and tracemalloc peak (MB or NaN).

    ``trace`` turns tracemalloc on, which slows Python allocations: only for calls
    whose work is one C call (TreeSHAP), never for the permutation explainer.
    """
    if trace:
        tracemalloc.start()
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = np.nan
    if trace:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return result, wall, cpu, peak


def fit_forest(X, y, n_trees: int, seed: int, min_samples_leaf: int = 3, jobs: int = 2):
    """A RandomSurvivalForest with sksurv's defaults but the trees and leaf size given."""
    rsf = RandomSurvivalForest(
        n_estimators=n_trees, min_samples_leaf=min_samples_leaf, random_state=seed, n_jobs=jobs
    )
    return rsf.fit(X, y)


def shape_of(rsf) -> str:
    """Mean depth and leaves of the trees."""
    depth = np.mean([t.tree_.max_depth for t in rsf.estimators_])
    leaves = np.mean([t.tree_.n_leaves for t in rsf.estimators_])
    return f"{len(rsf.estimators_)} trees, depth {depth:.1f}, {leaves:.0f} leaves"


def part_risk(args, X, y) -> list[str]:
    """Per-patient SHAP of the risk score: PermutationExplainer against exact TreeSHAP."""
    rng = np.random.default_rng(args.seed)
    background = X.iloc[rng.choice(len(X), args.background, replace=False)]
    patients = X.iloc[rng.choice(len(X), args.patients, replace=False)]
    rows = [
        "| model | method | patients | wall s | CPU s | per patient s | x faster | max abs diff "
        "| additivity |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for leaf in args.leaf_sizes:
        rsf = fit_forest(X, y, args.trees, args.seed, min_samples_leaf=leaf, jobs=args.jobs)
        rsf.set_params(n_jobs=1)  # one thread for predict: like the single-threaded TreeSHAP
        with threadpool_limits(1):
            rows += _risk_rows(
                rsf, f"{shape_of(rsf)} (min_samples_leaf={leaf})", X, patients, background
            )
    return rows


def _risk_rows(rsf, label: str, X, patients, background) -> list[str]:
    """Table rows for one forest: the permutation baseline, then exact TreeSHAP.

    Everything runs in one thread (``threadpool_limits(1)``), so that the
    ratios compare algorithms, not thread counts.
    """
    masker = shap.maskers.Independent(background, max_samples=len(background))
    # warm-up, untimed: shap compiles its numba helpers on the first call (~10 s)
    first_column = shap.PermutationExplainer(lambda rows: np.asarray(rows)[:, 0], masker)
    first_column(patients.iloc[:1], silent=True)
    forest_shap(rsf, patients.iloc[:1], background=background)
    permutation = shap.PermutationExplainer(rsf.predict, masker, seed=0)
    perm, wall, cpu, _ = timed(lambda: permutation(patients, silent=True))
    base = wall / len(patients)
    exact = forest_shap(rsf, patients, background=background).values
    rows = [
        f"| {label} | PermutationExplainer (max_evals=500), background {len(background)} | "
        f"{len(patients)} | {wall:.2f} | {cpu:.2f} | {base:.3g} | 1 | "
        f"{_diff(perm.values, exact)} | |"
    ]
    runs = [
        ("exact, interventional (stratify, float64)", patients, background),
        ("exact, interventional (stratify, float64)", X, background),
        ("exact, path-dependent (shap C++)", patients, None),
        ("exact, path-dependent (shap C++)", X, None),
    ]
    for method, rows_x, bg in runs:
        result, wall, cpu, _ = timed(
            lambda rows_x=rows_x, bg=bg: forest_shap(rsf, rows_x, background=bg)
        )
        rows.append(_exact_row(method, result, wall, cpu, base, rsf.predict(rows_x)))
    # shap's own interventional kernel on the same converted trees (float32 inside)
    explainer = shap.TreeExplainer(
        tree_model(rsf).shap_model(),
        data=shap.maskers.Independent(as_float32_matrix(background, X.shape[1], "bg"), 10**6),
        feature_perturbation="interventional",
    )
    Xf = as_float32_matrix(X, X.shape[1], "X")
    values, wall, cpu, _ = timed(lambda: explainer.shap_values(Xf, check_additivity=False))
    result = shap.Explanation(values, base_values=np.full(len(X), explainer.expected_value))
    ours = forest_shap(rsf, X, background=background).values
    diff = f"{_diff(values, ours, '.1e')} vs float64"
    method = "exact, interventional (shap C++, float32)"
    return [*rows, _exact_row(method, result, wall, cpu, base, rsf.predict(X), diff)]


def _exact_row(method, result, wall, cpu, base, predicted, diff: str = "") -> str:
    """A table row for one exact run, with its additivity error."""
    per = wall / len(predicted)
    total = result.base_values + result.values.sum(axis=1)
    additivity = np.abs(total - predicted).max() / np.abs(predicted).max()
    cells = [
        method,
        len(predicted),
        f"{wall:.3f}",
        f"{cpu:.3f}",
        f"{per:.3g}",
        f"{base / per:,.0f}",
        diff,
        f"{additivity:.1e}",
    ]
    return "| | " + " | ".join(map(str, cells)) + " |"


def _diff(a, b, fmt: str = ".1%") -> str:
    """Largest absolute difference, relative to the largest exact value."""
    return f"{np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(b).max():{fmt}} of max"


def part_curves(args, X, y) -> list[str]:
    """Time-dependent SHAP (survival at a grid) for many patients, path-dependent."""
    rng = np.random.default_rng(args.seed + 1)
    patients = X.iloc[rng.choice(len(X), args.curve_patients, replace=True)]
    times = np.quantile(y["time"][y["cens"]], np.linspace(0.05, 0.95, args.times))
    deep = fit_forest(X, y, args.curve_trees, args.seed, jobs=args.jobs)
    shallow = fit_forest(X, y, args.curve_trees, args.seed, min_samples_leaf=10, jobs=args.jobs)
    rows = [
        "| output | model | processes | wall s | CPU s | tracemalloc peak MB |",
        "|---|---|---|---:|---:|---:|",
    ]

    background = X.iloc[rng.choice(len(X), args.background, replace=False)]

    def run(model, output: str, label: str, processes: str, bg=None) -> None:
        kwargs = {"output": output, "times": times if output == "survival" else None}
        kwargs["background"] = bg
        single = processes == "1"
        _, wall, cpu, peak = timed(lambda: forest_shap(model, patients, **kwargs), trace=single)
        cpu_text = f"{cpu:.2f}" if single else f"{cpu:.2f} (parent)"
        peak_text = f"{peak:.0f}" if single else "n/a (workers)"
        outputs = f"survival x {len(times)}" if output == "survival" else "risk"
        outputs += ", path-dependent" if bg is None else f", interventional (background {len(bg)})"
        cells = [outputs, label, processes, f"{wall:.2f}", cpu_text, peak_text]
        rows.append("| " + " | ".join(cells) + " |")

    run(deep, "survival", shape_of(deep), "1")
    with parallel_config(backend="loky", n_jobs=args.jobs):
        run(deep, "survival", shape_of(deep), f"{args.jobs} (loky, cold start)")
        run(deep, "survival", shape_of(deep), f"{args.jobs} (loky, warm)")
    run(deep, "risk", shape_of(deep), "1")
    run(shallow, "survival", f"{shape_of(shallow)} (min_samples_leaf=10)", "1")
    run(deep, "survival", shape_of(deep), "1", bg=background)
    with parallel_config(backend="loky", n_jobs=args.jobs):
        run(deep, "survival", shape_of(deep), f"{args.jobs} (loky, warm)", bg=background)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        f"{len(patients)} patients (drawn with replacement), {len(times)} times.",
        "",
        *rows,
        "",
        f"Peak resident set size of the benchmark process so far: {maxrss:.0f} MB.",
    ]


def main(argv=None) -> None:
    """Run both parts and print the report."""
    args = parse_args(argv)
    X, y = load_gbsg2()
    X = encode_categorical(X)
    report = [
        "# Exact TreeSHAP for survival forests: speed",
        "",
        *machine(),
        "",
        "## 1. Risk score: PermutationExplainer vs exact TreeSHAP",
        "",
        *part_risk(args, X, y),
        "",
        f"## 2. Survival curves: {args.curve_patients:,} patients x {args.times} times x "
        f"{args.curve_trees} trees",
        "",
        *part_curves(args, X, y),
        "",
        f"- load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    text = "\n".join(report)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
