"""Survival forests on a large cohort (issue #6): fit time, peak memory, model size, SHAP time.

A synthetic randomised trial of ``--n`` patients (default 50,000) with ``--p``
covariates (default 30), Weibull proportional hazards with a known
per-patient truth (:func:`simulate_cohort`), fitted side by side in one run
with (all forests with ``--trees`` trees on ``--jobs`` threads):

* ``sksurv default``: scikit-survival's ``RandomSurvivalForest()`` with its
  default settings (``min_samples_leaf=3``, ``min_samples_split=6``,
  ``max_features="sqrt"``, every distinct time) on the covariates and the arm,
  i.e. stratify's S-learner with scikit-survival's defaults;
* ``stratify default``: the S-learner as shipped for small trials
  (``min_samples_leaf=10``, every distinct time);
* ``grid only``, ``samples only``, ``bins only``, ``grid + bins``: the
  S-learner with one or two controls (``time_grid=100``,
  ``max_samples=0.2``, ``max_bins=64``), to show what each buys;
* ``s_learner large``, ``t_learner large``: the recommended large-cohort
  settings (:data:`LARGE`), and variants of the T-learner's (leaf size 20,
  255 bins, ``max_samples=0.2``);
* ``dr_learner default`` and ``dr_learner + max_samples 0.2`` (final forests).

Every run happens in a fresh subprocess (``large_cohort.py --child ...``) so
that peak memory -- ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the
process's peak resident set, which includes the fitted model (tracemalloc
does not see the trees' C allocations) -- does not carry over between
settings; each is capped by ``resource.setrlimit(RLIMIT_AS, --mem-gb)`` and a
``--timeout``. The settings that cannot be fitted whole on the large cohort
(:data:`SLOW`) are fitted whole at ``--full-sizes`` (default 10,000) with the
recommended settings beside them, for accuracy at equal n, and *probed* at
``--probe-sizes`` with ``--probe-trees`` trees: their fit time, model size and
SHAP time per patient are extrapolated linearly to ``--trees`` (trees are
grown and stored independently; marked ``~``), their peak memory given as at
least the extrapolated model.

Measured per run: fit time (wall and process CPU), peak RSS, pickled model
size (streamed into a byte counter, never held in memory), mean nodes per tree
and stored times, time to predict the CATE of ``--n-test`` held-out patients,
accuracy on them against the simulator's truth (mean absolute error of
survival at the horizon under the arm received, RMSE of the survival and RMST
differences, Harrell's C of survival at the horizon), and exact TreeSHAP time
of the benefit (:func:`stratify.explain.benefit.benefit_shap`) for
``--shap-patients`` patients in one process (at most 200 for the slow
settings). ``--shap-check`` instead explains every patient of the recommended
T-learner once and measures how well random samples of ``--shap-sizes``
patients (:func:`stratify.explain.benefit.explained_rows`) reproduce the
cohort's SHAP importances.

Usage::

    python experiments/large_cohort.py --n 50000 --p 30 --seed 0
    python experiments/large_cohort.py --n 50000 --p 30 --seed 0 \
        --settings "grid + bins,bins only" --compare-settings "grid + bins"
    python experiments/large_cohort.py --shap-check --n 50000 --p 30 --seed 0
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import platform
import resource
import shlex
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from scipy.special import gamma, gammainc
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

#: Weibull shape and scale (days) of the simulated survival times.
SHAPE, SCALE = 1.4, 2000.0
#: Horizon (days) of the estimands: everybody is followed at least this long unless lost.
HORIZON = 730.0


def simulate_cohort(n: int, p: int = 30, seed: int = 0):
    """A synthetic 1:1 randomised trial with ``p`` covariates and a known per-patient truth.

    Design: ``p - 10`` continuous covariates, standard normal with pairwise
    correlation 0.25 (one shared factor), and 10 binary ones (probability
    0.3); exactly ``n // 2`` treated. Survival is Weibull proportional hazards
    (shape 1.4, scale 2,000 days) with log hazard
    ``0.5 x0 + 0.4 x1 - 0.3 x2 + 0.25 (x3^2 - 1) + 0.3 b0 - 0.2 b1 + arm (-0.4 + 0.3 x4)``:
    six prognostic covariates (one non-linear), and a treatment effect that
    shrinks and reverses as ``x4`` rises. Follow-up ends uniformly between 2
    and 5 years after randomisation (staggered entry), and 5 % a year are lost
    (exponential); times are whole days, as trials record them.

    Parameters
    ----------
    n : int
        Patients.
    p : int
        Covariates (at least 15).
    seed : int
        Seed of everything random.

    Returns
    -------
    X : pandas.DataFrame
        Covariates ``x0 ... x{p-11}``, ``b0 ... b9``.
    y : numpy.ndarray
        ``Surv`` outcome (days).
    arm : numpy.ndarray
        0/1.
    truth : dict
        ``surv0``, ``surv1`` (survival at :data:`HORIZON` under each arm),
        ``rmst0``, ``rmst1`` (restricted mean to the horizon, days), per patient.
    """
    if p < 15:
        raise ValueError("the design needs at least 15 covariates")
    rng = np.random.default_rng(seed)
    n_cont = p - 10
    shared = rng.normal(size=(n, 1))
    cont = 0.5 * shared + np.sqrt(0.75) * rng.normal(size=(n, n_cont))
    binary = (rng.random((n, 10)) < 0.3).astype(float)
    arm = rng.permutation(np.repeat([1, 0], [n // 2, n - n // 2]))
    lp0 = (
        0.5 * cont[:, 0]
        + 0.4 * cont[:, 1]
        - 0.3 * cont[:, 2]
        + 0.25 * (cont[:, 3] ** 2 - 1)
        + 0.3 * binary[:, 0]
        - 0.2 * binary[:, 1]
    )
    log_hr = -0.4 + 0.3 * cont[:, 4]
    rate0, rate1 = np.exp(lp0), np.exp(lp0 + log_hr)
    rate = np.where(arm == 1, rate1, rate0)
    death = SCALE * (-np.log(rng.random(n)) / rate) ** (1 / SHAPE)
    end = rng.uniform(2 * 365.25, 5 * 365.25, n)
    lost = rng.exponential(365.25 / 0.05, n)
    observed = np.minimum(death, np.minimum(end, lost))
    y = Surv.from_arrays(death <= np.minimum(end, lost), np.ceil(observed))
    columns = [f"x{j}" for j in range(n_cont)] + [f"b{j}" for j in range(10)]
    X = pd.DataFrame(np.hstack([cont, binary]), columns=columns)
    truth = {
        "surv0": _weibull_survival(rate0, HORIZON),
        "surv1": _weibull_survival(rate1, HORIZON),
        "rmst0": _weibull_rmst(rate0, HORIZON),
        "rmst1": _weibull_rmst(rate1, HORIZON),
    }
    return X, y, arm, truth


def _weibull_survival(rate: np.ndarray, t: float) -> np.ndarray:
    return np.exp(-rate * (t / SCALE) ** SHAPE)


def _weibull_rmst(rate: np.ndarray, horizon: float) -> np.ndarray:
    """∫_0^h exp(-rate (t / scale)^k) dt in closed form (lower incomplete gamma)."""
    lam = rate / SCALE**SHAPE
    a = 1.0 / SHAPE
    return lam ** (-a) / SHAPE * gamma(a) * gammainc(a, lam * horizon**SHAPE)


# --- settings --------------------------------------------------------------------------

#: The recommended large-cohort settings of stratify's forest learners (BENCHMARKS.md).
LARGE = {"time_grid": 100, "max_bins": 64, "base_params": {"min_samples_leaf": 50}}

#: Settings by name: (learner, learner parameters). ``n_estimators`` and ``n_jobs`` are added.
SETTINGS: dict[str, tuple[str, dict]] = {
    # RandomSurvivalForest() as scikit-survival ships it (min_samples_leaf=3, min_samples_split=6,
    # max_features="sqrt", every distinct time) on the covariates and the arm
    "sksurv default": ("s_learner", {"base_params": {"min_samples_leaf": 3}}),
    "stratify default": ("s_learner", {}),
    "grid only": ("s_learner", {"time_grid": 100}),
    "samples only": ("s_learner", {"base_params": {"max_samples": 0.2}}),
    "bins only": ("s_learner", {"max_bins": 64}),
    "grid + bins": ("s_learner", {"time_grid": 100, "max_bins": 64}),
    "s_learner large": ("s_learner", LARGE),
    "t_learner large": ("t_learner", LARGE),
    "t_learner large + min_samples_leaf 20": (
        "t_learner",
        {**LARGE, "base_params": {"min_samples_leaf": 20}},
    ),
    "t_learner large + max_bins 255": ("t_learner", {**LARGE, "max_bins": 255}),
    "t_learner large + max_samples 0.2": (
        "t_learner",
        {**LARGE, "base_params": {"min_samples_leaf": 50, "max_samples": 0.2}},
    ),
    "dr_learner default": ("dr_learner", {}),
    "dr_learner + max_samples 0.2": ("dr_learner", {"max_samples": 0.2}),
}
#: Settings that cannot be fitted whole on 50,000 patients (probed with a few trees there).
SLOW = ("sksurv default", "stratify default", "grid only", "samples only", "bins only")


def make_setting(name: str, trees: int, jobs: int, seed: int):
    """The unfitted learner of setting ``name`` with ``trees`` trees on ``jobs`` threads."""
    from stratify.learners import make_learner

    learner_name, params = SETTINGS[name]
    params = json.loads(json.dumps(params))  # a deep copy
    if learner_name == "dr_learner":
        params |= {"n_estimators": trees, "n_jobs": jobs}
    else:
        params["base_params"] = {**params.get("base_params", {}), "n_estimators": trees}
        params["base_params"]["n_jobs"] = jobs
    return make_learner(learner_name, params, random_state=seed, modifier="x4", horizon=HORIZON)


# --- one setting, in a child process ---------------------------------------------------


def rss_mb() -> float:
    """Peak resident set size of this process so far (MB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _ByteCounter:
    """A file-like sink that only counts what is written (pickled size without the bytes)."""

    def __init__(self):
        self.n = 0

    def write(self, data) -> int:
        self.n += memoryview(data).nbytes
        return self.n


def pickled_mb(obj) -> float:
    """Size of ``obj`` pickled (protocol 5), streamed into a counter, in MB."""
    sink = _ByteCounter()
    pickle.dump(obj, sink, protocol=5)
    return sink.n / 1e6


def forests_of(learner) -> list:
    """The survival forests a learner holds (none for a DR learner's Cox nuisance)."""
    if hasattr(learner, "models_"):
        return list(learner.models_)
    if hasattr(learner, "model_"):
        return [learner.model_]
    return []


def tree_shape(learner) -> dict:
    """Mean nodes, leaves and depth per tree, stored times, over the learner's forests."""
    trees = [t for f in forests_of(learner) for t in getattr(f, "estimators_", [])]
    if not trees:
        return {}
    return {
        "nodes": float(np.mean([t.tree_.node_count for t in trees])),
        "leaves": float(np.mean([t.tree_.n_leaves for t in trees])),
        "depth": float(np.mean([t.tree_.max_depth for t in trees])),
        "stored_times": int(forests_of(learner)[0].unique_times_.size),
    }


def accuracy(learner, X_test, y_test, arm_test, truth) -> dict:
    """Survival-at-horizon error, CATE error and Harrell's C on held-out patients."""
    surv = learner.predict_survival(X_test, arm_test, [HORIZON])[:, 0]
    true_surv = np.where(arm_test == 1, truth["surv1"], truth["surv0"])
    cate = learner.predict_cate(X_test)
    true_cate = truth["surv1"] - truth["surv0"]
    true_rmst = truth["rmst1"] - truth["rmst0"]
    return {
        "mae_surv": float(np.abs(surv - true_surv).mean()),
        "rmse_cate_surv": float(np.sqrt(np.mean((cate["cate_surv"] - true_cate) ** 2))),
        "rmse_cate_rmst": float(np.sqrt(np.mean((cate["cate_rmst"] - true_rmst) ** 2))),
        "c_index": float(concordance_index_censored(y_test["event"], y_test["time"], -surv)[0]),
    }


def run_setting(spec: dict) -> dict:
    """Fit, size, predict, score and explain one setting; everything measured in this process."""
    from stratify.explain.benefit import benefit_shap

    X, y, arm, _ = simulate_cohort(spec["n"], spec["p"], spec["seed"])
    X_test, y_test, arm_test, truth = simulate_cohort(spec["n_test"], spec["p"], spec["seed"] + 1)
    learner = make_setting(spec["setting"], spec["trees"], spec["jobs"], spec["seed"])
    out = {**spec, "rss_before_mb": rss_mb(), "distinct_times": int(np.unique(y["time"]).size)}
    wall, cpu = time.perf_counter(), time.process_time()
    learner.fit(X, y, arm)
    out |= {"fit_s": time.perf_counter() - wall, "fit_cpu_s": time.process_time() - cpu}
    out |= {"rss_fit_mb": rss_mb(), "model_mb": pickled_mb(learner)} | tree_shape(learner)
    wall = time.perf_counter()
    learner.predict_survival(X_test, arm_test, [HORIZON])
    out["predict_horizon_s"] = time.perf_counter() - wall
    wall = time.perf_counter()
    learner.predict_cate(X_test)
    out["predict_cate_s"] = time.perf_counter() - wall
    if spec["accuracy"]:
        out |= accuracy(learner, X_test, y_test, arm_test, truth)
    if spec["shap_patients"]:
        wall = time.perf_counter()
        benefit_shap(learner, X.iloc[: spec["shap_patients"]], HORIZON)
        out["shap_s"] = time.perf_counter() - wall
        out["shap_ms_per_patient"] = 1e3 * out["shap_s"] / spec["shap_patients"]
    out["rss_peak_mb"] = rss_mb()
    return out


def child_main(spec_json: str) -> None:
    """Entry point of a child process: cap memory, run one setting, print one JSON line."""
    spec = json.loads(spec_json)
    cap = int(spec["mem_gb"] * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    print(json.dumps(run_setting(spec)), flush=True)


# --- the parent: settings side by side -------------------------------------------------


def run_child(spec: dict, timeout: float) -> dict:
    """Run one setting in a fresh interpreter; a failure or timeout is recorded, not raised."""
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    load = os.getloadavg()[0]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"timeout after {timeout:.0f} s", "load_start": load}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {**spec, "error": f"exit {done.returncode}: {last[:200]}", "load_start": load}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load_start": load}


def plan(args) -> list[dict]:
    """The runs: every setting at ``--n``, the slow ones whole at ``--full-sizes`` and probed."""
    base = {
        "p": args.p,
        "seed": args.seed,
        "n_test": args.n_test,
        "jobs": args.jobs,
        "mem_gb": args.mem_gb,
    }
    runs = []
    for n in args.full_sizes:
        for name in args.settings:
            if name in args.compare_settings:
                shap = min(args.shap_patients, 200) if name in SLOW else args.shap_patients
                runs.append(_spec(base, name, n, args.trees, shap, accuracy=True))
    for name in args.settings:
        if name in SLOW:
            for n in args.probe_sizes:
                runs.append(_spec(base, name, n, args.probe_trees, 20, accuracy=False))
        else:
            runs.append(_spec(base, name, args.n, args.trees, args.shap_patients, accuracy=True))
    return runs


def _spec(base: dict, name: str, n: int, trees: int, shap: int, accuracy: bool) -> dict:
    return {**base, "setting": name, "n": n, "trees": trees} | {
        "shap_patients": shap,
        "accuracy": accuracy,
    }


def scaled(row: dict, trees: int) -> dict:
    """A probe (few trees) scaled to ``trees``: fit time, model size and SHAP are per tree."""
    if "error" in row or row["trees"] == trees:
        return row | {"extrapolated": False}
    factor = trees / row["trees"]
    out = {**row, "trees": trees, "probe_trees": row["trees"]}
    for key in ("fit_s", "fit_cpu_s", "model_mb", "shap_ms_per_patient"):
        out[key] = row[key] * factor
    out["rss_fit_mb"] = row["rss_before_mb"] + out["model_mb"]  # at least the model on top
    return out | {"extrapolated": True}


def table(rows: list[dict]) -> str:
    """The Markdown table of BENCHMARKS.md (``~``: extrapolated from a probe)."""
    head = (
        "| setting | n | trees | fit s (wall) | fit CPU s | peak RSS GB | model MB | "
        "nodes/tree | stored times | predict CATE s | SHAP ms/patient | SHAP, all n, min | "
        "MAE S(h) | RMSE CATE surv | RMSE CATE RMST d | C | load |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    return "\n".join([head] + [_table_row(r) for r in rows])


def _table_row(r: dict) -> str:
    if "error" in r:
        return f"| {r['setting']} | {r['n']:,} | {r['trees']} | {r['error']} |" + " |" * 13
    mark = "~" if r["extrapolated"] else ""

    def num(key, fmt, prefix=""):
        return f"{prefix}{r[key]:{fmt}}" if r.get(key) is not None else "n/a"

    if r["extrapolated"]:
        trees, peak = f"{r['trees']} (~ from {r['probe_trees']})", f"≥{r['rss_fit_mb'] / 1024:.1f}"
    else:
        trees, peak = f"{r['trees']}", f"{r['rss_peak_mb'] / 1024:.2f}"
    shap_all = "n/a"
    if "shap_ms_per_patient" in r:
        shap_all = f"{mark}{r['shap_ms_per_patient'] * r['n'] / 6e4:,.1f}"
    cells = [
        r["setting"],
        f"{r['n']:,}",
        trees,
        num("fit_s", ",.1f", mark),
        num("fit_cpu_s", ",.1f", mark),
        peak,
        num("model_mb", ",.0f", mark),
        num("nodes", ",.0f"),
        num("stored_times", ","),
        "n/a" if r["extrapolated"] else num("predict_cate_s", ".2f"),
        num("shap_ms_per_patient", ",.1f", mark),
        shap_all,
        num("mae_surv", ".4f"),
        num("rmse_cate_surv", ".4f"),
        num("rmse_cate_rmst", ".1f"),
        num("c_index", ".3f"),
        f"{r['load_start']:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def machine() -> str:
    """One line on where and when the benchmark ran."""
    import sklearn
    import sksurv

    cpus = len(os.sched_getaffinity(0))
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {cpus} CPUs, {mem:.0f} GiB; "
        f"{platform.platform()}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, scikit-survival {sksurv.__version__}"
    )


def uptime() -> str:
    """The ``uptime`` line (load averages over 1, 5 and 15 minutes)."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


# --- explaining a sample instead of everybody ------------------------------------------


def shap_subsample_check(args) -> str:
    """SHAP of the whole cohort once, then how well random samples reproduce its importances.

    Fits ``t_learner large`` on the ``--n`` patients, explains all of them
    (exact path-dependent TreeSHAP of the RMST benefit, rows split over
    ``--jobs`` worker processes), then for each sample size draws
    ``--shap-draws`` samples with :func:`stratify.explain.benefit.explained_rows`
    (seeds 0, 1, ...) and compares the sample's mean |SHAP| per covariate
    with the whole cohort's: path-dependent SHAP values of a patient do not
    depend on which other patients are explained, so a sample's values are
    rows of the whole cohort's.
    """
    from joblib import parallel_config

    from stratify.explain.benefit import benefit_shap, explained_rows

    X, y, arm, _ = simulate_cohort(args.n, args.p, args.seed)
    learner = make_setting("t_learner large", args.trees, args.jobs, args.seed).fit(X, y, arm)
    load = uptime()
    wall = time.perf_counter()
    with parallel_config(backend="loky", n_jobs=args.jobs):
        explanation = benefit_shap(learner, X, HORIZON).explanations["cate_rmst"]
    seconds = time.perf_counter() - wall
    values = np.abs(explanation.values)
    whole = values.mean(axis=0)
    top = np.argsort(-whole, kind="stable")[:6]
    names = np.asarray(explanation.feature_names)
    lines = [
        f"Whole cohort: {args.n:,} patients explained in {seconds / 60:.1f} min "
        f"({args.jobs} worker processes; {load}). Leading covariates by mean |SHAP| of "
        f"cate_rmst (days): " + ", ".join(f"{names[j]} {whole[j]:.2f}" for j in top),
        "",
        "| patients explained | est. time s | median max rel. error, top 6 | 95th pct | "
        "top-5 order unchanged | x4 ranked first |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for m in args.shap_sizes:
        errors, same, first = [], 0, 0
        for draw in range(args.shap_draws):
            rows = explained_rows(args.n, m, draw)
            sample = values[rows].mean(axis=0)
            errors.append(np.max(np.abs(sample[top] - whole[top]) / whole[top]))
            same += list(np.argsort(-sample, kind="stable")[:5]) == list(top[:5])
            first += names[np.argmax(sample)] == "x4"
        lines.append(
            f"| {m:,} | {seconds * m / args.n:.0f} | {np.median(errors):.1%} | "
            f"{np.quantile(errors, 0.95):.1%} | {same}/{args.shap_draws} | "
            f"{first}/{args.shap_draws} |"
        )
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="patients in the cohort")
    parser.add_argument("--p", type=int, default=30, help="covariates")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cohort and the forests")
    parser.add_argument("--trees", type=int, default=100, help="trees per forest")
    parser.add_argument("--jobs", type=int, default=2, help="threads per forest (n_jobs)")
    parser.add_argument("--n-test", type=int, default=10_000, help="held-out patients")
    parser.add_argument(
        "--settings",
        default="all",
        help=f"comma-separated settings, or 'all': {', '.join(SETTINGS)}",
    )
    parser.add_argument(
        "--full-sizes",
        default="10000",
        help="cohort sizes at which the --compare-settings are fitted whole (comma-separated)",
    )
    parser.add_argument(
        "--compare-settings",
        default="sksurv default,stratify default,s_learner large,t_learner large",
        help="settings fitted whole at --full-sizes, for accuracy at equal n",
    )
    parser.add_argument(
        "--probe-sizes", default="20000,50000", help="sizes at which slow settings are probed"
    )
    parser.add_argument("--probe-trees", type=int, default=2, help="trees of a probe")
    parser.add_argument("--shap-patients", type=int, default=1000, help="patients explained")
    parser.add_argument("--mem-gb", type=float, default=16.0, help="address-space cap per run")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--shap-check", action="store_true", help="whole-cohort SHAP check only")
    parser.add_argument("--shap-sizes", default="500,1000,2000,5000", help="sample sizes")
    parser.add_argument("--shap-draws", type=int, default=50, help="samples per size")
    parser.add_argument("--json", help="also write every measurement here (JSON lines)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.settings = list(SETTINGS) if args.settings == "all" else args.settings.split(",")
    unknown = set(args.settings) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings: {', '.join(sorted(unknown))}")
    args.compare_settings = args.compare_settings.split(",")
    args.full_sizes = [int(v) for v in args.full_sizes.split(",") if v]
    args.probe_sizes = [int(v) for v in args.probe_sizes.split(",") if v]
    args.shap_sizes = [int(v) for v in args.shap_sizes.split(",") if v]
    return args


def main(argv=None) -> None:
    """Run every setting in its own process and print the BENCHMARKS.md table."""
    args = parse_args(argv)
    if args.child:
        child_main(args.child)
        return
    print(f"- Command: `python experiments/large_cohort.py {shlex.join(sys.argv[1:])}`")
    print(f"- Machine: {machine()}")
    print(f"- Start: {uptime()}", flush=True)
    if args.shap_check:
        print(shap_subsample_check(args))
        print(f"- End: {uptime()}")
        return
    rows = []
    for spec in plan(args):
        row = run_child(spec, args.timeout)
        rows.append(scaled(row, args.trees))
        print(json.dumps(row), file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as out:
                out.write(json.dumps(row) + "\n")
    print(table(rows))
    print(f"- End: {uptime()}")


if __name__ == "__main__":
    main()
