"""How close are stratify's learners to grf's causal survival forest? Accuracy against the truth.

The reference trials in ``../shared/grf_reference`` (see its ``README.md``) carry each
patient's true effect and grf 2.6.1's out-of-bag estimate with its variance. For every file and
every learner this benchmark estimates each patient's effect out of sample and records, per
(file, learner, mode, label):

- ``rmse_rmst`` and ``spearman_rmst`` of ``cate_rmst`` against the true RMST difference
  ``tau_rmst`` (Spearman is NaN when the truth, or the estimate, is constant, as under the
  ``none`` effect); for the simulated MIROCALS-design files also ``rmse_surv`` and
  ``spearman_surv`` against ``tau_surv``; ``bias_rmst``, the mean error;
- ``coverage_rmst`` (and ``coverage_surv``): the share of patients whose
  ``estimate ± 1.96 se`` covers the truth, for learners that give standard errors (the causal
  survival forest); ``covered_rmst`` counts them, so coverage can be pooled over files;
- ``wall_s`` and ``cpu_s``: wall and CPU seconds of fit plus predict (summed over the folds in
  ``crossfit`` mode); every fit is single-threaded;
- ``grf_rmse``, ``grf_spearman``, ``grf_coverage``, ``grf_covered``: grf's stored estimates
  (``tau_hat ± 1.96 sqrt(tau_var)``) scored the same way, and ``grf_fit_s`` from
  ``grf_summary.csv`` (timed on a loaded 2-core machine, so only roughly comparable);
- ``code``: a hash of the learners' source when the row was made (they may change between
  runs; the summary lists the versions behind each row of its tables).

Modes: ``crossfit`` (every learner): 5 folds stratified on arm × event (``stratify run``'s
split), fit on 4 folds, predict the 5th; ``oob`` (``causal_survival_forest`` only): fit on the
whole file and take its out-of-bag estimates, as grf's reference estimates are. Settings per
file, as grf was called: simulated files (``sim_*``) have horizon 640 days and the known
propensity 0.5, with ``el_escorial`` one-hot encoded; grf's designs have horizon 1
(``grf_simple1``) or 2 (``grf_type2``) and an estimated propensity (the causal survival forest
estimates it per patient; the DR learner, which only takes a constant, uses the share treated).
``cox_interaction`` uses ``csf_pnfh`` as its modifier and is skipped on grf's designs, which have
no such biomarker. A learner that fails leaves a row with its one-line ``error``.

Every number is reproducible: each file's seed is its ``s<k>`` number; it seeds the folds and
the ``oob`` forest, and fold ``f``'s learners get
``stratify.validation.crossfit.task_seed(seed, 0, 0, f)``, the same for every learner.

Usage::

    .venv/bin/python experiments/grf_benchmark.py --n-jobs 2 \\
        --out experiments/results/grf_benchmark.csv
    .venv/bin/python experiments/grf_benchmark.py --designs sim_mirocals_n220 \\
        --learners causal_survival_forest --csf-params '{"min_node_size": 10}' \\
        --label mns10 --out experiments/results/grf_benchmark.csv
    .venv/bin/python experiments/grf_benchmark.py --summary \\
        --out experiments/results/grf_benchmark.csv

Rows are appended to ``--out`` as each (file, learner) finishes; rows whose (file, learner,
mode, label) is already there are skipped, so an interrupted benchmark resumes (a changed
``--csf-params`` therefore needs a new ``--label``); failed rows are retried when the
learners' source has changed since, and the summary then uses the last try. ``--summary``
prints, per design, the means over files of every measure with grf's own row, and the interval
coverage pooled over all patients of the n = 2,000 files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from sklearn.model_selection import RepeatedStratifiedKFold
from sksurv.util import Surv

import stratify
from stratify.exceptions import StratifyInputError
from stratify.learners import make_learner
from stratify.learners.causal_survival_forest import CausalSurvivalForest
from stratify.validation.crossfit import task_seed

#: The reference trials: ``shared/grf_reference`` beside the repository.
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "grf_reference"
CSF = "causal_survival_forest"
DEFAULT_LEARNERS = "causal_survival_forest,t_learner,dr_learner,s_learner,coxnet_interaction,"
DEFAULT_LEARNERS += "cox_interaction"
#: Design prefixes in the order they run (small files first, so whole designs finish early).
DESIGNS = (
    "sim_mirocals_n220",
    "sim_none_n220",
    "sim_common_n220",
    "grf_simple1_n1000",
    "grf_type2_n1000",
    "sim_mirocals_n2000",
    "sim_none_n2000",
    "sim_common_n2000",
)
FOLDS = 5
Z = 1.96
OUTCOME = ["time", "event", "arm"]
TRUTH = ["tau_rmst", "tau_surv"]
KEY = ["file", "learner", "mode", "label"]


def code_version() -> str:
    """Short hash of the learners' source (``learners/``, ``scores.py``, ``crossfit.py``).

    Taken when this module is imported, i.e. when a worker imports stratify, so rows made by
    different versions of the learners (edited while a benchmark runs) can be told apart.
    """
    root = Path(stratify.__file__).parent
    files = [*sorted((root / "learners").glob("*.py")), root / "scores.py", root / "crossfit.py"]
    digest = hashlib.sha1()
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


CODE = code_version()


def design_of(name: str) -> str:
    """The design of a file: its name without the ``_s<k>`` seed."""
    return re.sub(r"_s\d+$", "", name)


def file_seed(name: str) -> int:
    """The seed of a file: its ``s<k>`` number."""
    return int(re.search(r"_s(\d+)$", name).group(1))


def setting(name: str) -> dict:
    """Horizon, propensity (None: estimated) and modifier of a file, as grf was called."""
    if name.startswith("sim_"):
        return {"horizon": 640.0, "propensity": 0.5, "modifier": "csf_pnfh"}
    horizon = {"grf_simple1": 1.0, "grf_type2": 2.0}[name.split("_n")[0]]
    return {"horizon": horizon, "propensity": None, "modifier": None}


def load(name: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame]:
    """Covariates, ``Surv`` outcome, arm and true effects of a reference file.

    Parameters
    ----------
    name : str
        File name without ``.csv``.

    Returns
    -------
    X : pandas.DataFrame
        Every column but the outcome and the truth, ``el_escorial`` one-hot encoded.
    y : numpy.ndarray
        ``Surv`` outcome.
    arm : numpy.ndarray
        0/1 integers.
    truth : pandas.DataFrame
        ``tau_rmst`` and, for simulated files, ``tau_surv``.
    """
    frame = pd.read_csv(REFERENCE / "data" / f"{name}.csv")
    truth = frame[[c for c in TRUTH if c in frame]]
    X = frame.drop(columns=OUTCOME + list(truth.columns))
    if "el_escorial" in X:
        X = pd.get_dummies(X, columns=["el_escorial"], dtype=float)
    y = Surv.from_arrays(frame["event"].astype(bool), frame["time"])
    return X, y, frame["arm"].to_numpy(int), truth


def folds(arm: np.ndarray, event: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` of 5-fold splits stratified on arm × event (``stratify run``'s)."""
    strata = arm * 2 + event.astype(int)
    cv = RepeatedStratifiedKFold(n_splits=FOLDS, n_repeats=1, random_state=seed)
    return list(cv.split(np.zeros(len(strata)), strata))


def build(learner: str, csf_params: dict, seed: int, where: dict):
    """An unfitted learner for one file's setting (single-threaded)."""
    params = None
    if learner == CSF:
        params = {"propensity": where["propensity"], "n_jobs": 1} | csf_params
    elif learner == "dr_learner":
        params = {"propensity": where["propensity"], "n_jobs": 1}
    try:
        return make_learner(
            learner, params, random_state=seed, modifier=where["modifier"], horizon=where["horizon"]
        )
    except StratifyInputError as err:
        if learner == CSF and "unknown learner" in str(err):
            return CausalSurvivalForest(horizon=where["horizon"], random_state=seed, **params)
        raise


def score(est: pd.DataFrame, truth: pd.DataFrame, prefix: str = "") -> dict:
    """RMSE, bias, Spearman and (given ``<e>_se``) 95 % coverage of each estimand."""
    out = {}
    for estimand in ("rmst", "surv"):
        column, true_col = f"cate_{estimand}", f"tau_{estimand}"
        if true_col not in truth or column not in est:
            continue
        e, t = est[column].to_numpy(float), truth[true_col].to_numpy(float)
        out[f"{prefix}rmse_{estimand}"] = float(np.sqrt(np.mean((e - t) ** 2)))
        out[f"{prefix}bias_{estimand}"] = float(np.mean(e - t))
        constant = np.ptp(t) == 0 or not np.all(np.isfinite(e)) or np.ptp(e) == 0
        out[f"{prefix}spearman_{estimand}"] = (
            float("nan") if constant else float(stats.spearmanr(e, t).statistic)
        )
        if f"{column}_se" in est:
            se = est[f"{column}_se"].to_numpy(float)
            covered = np.abs(e - t) <= Z * se  # NaN se: not covered
            out[f"{prefix}coverage_{estimand}"] = float(covered.mean())
            out[f"{prefix}covered_{estimand}"] = int(covered.sum())
            out[f"{prefix}se_missing_{estimand}"] = int((~np.isfinite(se)).sum())
    return out


def grf_scores(name: str, truth: pd.DataFrame) -> dict:
    """grf's stored out-of-bag estimates scored like the learners, and its fit time."""
    grf = pd.read_csv(REFERENCE / "grf" / f"{name}.grf.csv")
    est = pd.DataFrame(
        {"cate_rmst": grf["tau_hat"], "cate_rmst_se": np.sqrt(grf["tau_var"].clip(lower=0))}
    )
    got = score(est, truth[["tau_rmst"]])
    summary = pd.read_csv(REFERENCE / "grf_summary.csv").set_index("file")
    return {
        "grf_rmse": got["rmse_rmst"],
        "grf_spearman": got["spearman_rmst"],
        "grf_coverage": got["coverage_rmst"],
        "grf_covered": got["covered_rmst"],
        "grf_fit_s": float(summary.loc[f"{name}.csv", "fit_s"]),
    }


def estimate(name: str, learner: str, mode: str, csf_params: dict):
    """One learner's out-of-sample estimates of every patient of a file, and their cost.

    Returns
    -------
    est : pandas.DataFrame
        ``cate_rmst``, ``cate_surv`` (and ``_se`` columns when the learner gives them), in row
        order.
    wall_s, cpu_s : float
        Seconds of fit plus predict.
    """
    X, y, arm, _ = load(name)
    where, seed = setting(name), file_seed(name)
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "oob":
        model = build(learner, csf_params, seed, where).fit(X, y, arm)
        est = model.oob_cate_.reset_index(drop=True)
    else:
        parts = []
        for f, (train, test) in enumerate(folds(arm, y["event"], seed)):
            model = build(learner, csf_params, task_seed(seed, 0, 0, f), where)
            model.fit(X.iloc[train], y[train], arm[train])
            if hasattr(model, "predict_cate_interval"):
                got = model.predict_cate_interval(X.iloc[test])
            else:
                got = model.predict_cate(X.iloc[test])
            parts.append(got.set_axis(test))
        est = pd.concat(parts).sort_index()
        est = est[[c for c in est if not c.endswith(("_low", "_high"))]]
    return est, time.perf_counter() - wall, time.process_time() - cpu


_WARM: set[str] = set()


def warm_up() -> None:
    """Load the forest's compiled (numba) routines once per process, outside the timings."""
    if CSF in _WARM:
        return
    X, y, arm, _ = load("sim_mirocals_n220_s1")
    model = CausalSurvivalForest(horizon=640.0, n_estimators=4, n_jobs=1, random_state=0)
    model.fit(X, y, arm).predict_cate_interval(X.head(5))
    _WARM.add(CSF)


def one_task(name: str, learner: str, mode: str, csf_params: dict, label: str, keep: Path | None):
    """The result row of one (file, learner, mode)."""
    if learner == CSF:
        warm_up()
    _, _, _, truth = load(name)
    row = {
        "design": design_of(name),
        "file": name,
        "learner": learner,
        "mode": mode,
        "label": label,
        "csf_params": json.dumps(csf_params, sort_keys=True) if learner == CSF else "",
        "n": len(truth),
        "seed": file_seed(name),
        "code": CODE,
    }
    try:
        est, wall_s, cpu_s = estimate(name, learner, mode, csf_params)
    except Exception as err:  # a failing learner is a result, not a crash
        message = " ".join(str(err).split())[:300]
        row |= {"error": f"{type(err).__name__}: {message}"}
    else:
        row |= score(est, truth) | {"wall_s": wall_s, "cpu_s": cpu_s, "error": ""}
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            est.join(truth).to_csv(keep / f"{name}__{learner}__{mode}__{label}.csv", index=False)
    return row | grf_scores(name, truth)


def files_of(designs: list[str]) -> list[str]:
    """Reference files of the designs, in the order of :data:`DESIGNS` then by seed."""
    names = [p.stem for p in (REFERENCE / "data").glob("*.csv")]
    order = {d: i for i, d in enumerate(DESIGNS)}
    chosen = [
        n
        for n in names
        if any(n == d or design_of(n) == d or design_of(n).startswith(f"{d}_") for d in designs)
    ]
    return sorted(chosen, key=lambda n: (order.get(design_of(n), 99), design_of(n), file_seed(n)))


def tasks_of(
    files: list[str], learners: list[str], csf_modes=("oob", "crossfit")
) -> list[tuple[str, str, str]]:
    """``(file, learner, mode)`` to run: cox_interaction only where there is a modifier."""
    out = []
    for name in files:
        for learner in learners:
            if learner == "cox_interaction" and setting(name)["modifier"] is None:
                continue
            modes = csf_modes if learner == CSF else ("crossfit",)
            out.extend((name, learner, mode) for mode in modes)
    return out


def read(out: Path) -> pd.DataFrame:
    """The results so far (labels and errors as strings)."""
    if not out.exists():
        return pd.DataFrame(columns=[*KEY, "error", "code"])
    return pd.read_csv(out, dtype={"label": str, "error": str, "csf_params": str}).fillna(
        {"label": "", "error": "", "csf_params": ""}
    )


def append(out: Path, row: dict) -> None:
    """Append one row, keeping the file's columns (new columns go to the end)."""
    new = pd.DataFrame([row])
    if out.exists():
        old = read(out)
        if not set(new.columns) <= set(old.columns):
            pd.concat([old, new], ignore_index=True).to_csv(out, index=False)
            return
        new = new.reindex(columns=old.columns)
    new.to_csv(out, mode="a", header=not out.exists(), index=False)


def fmt(value: float, spec: str) -> str:
    """A cell: ``–`` for NaN."""
    return "–" if pd.isna(value) else f"{value:{spec}}"


def summary(results: pd.DataFrame) -> str:
    """Markdown tables per design: means over files, grf's row, and pooled n = 2,000 coverage.

    The two RMSE ratios to grf: ``ratio (per file)`` is the mean over files of
    ``rmse_rmst / grf_rmse`` of the same file; ``ratio (of means)`` is the mean ``rmse_rmst``
    over the design's files divided by grf's mean RMSE over the same files.
    """
    results = results.drop_duplicates(KEY, keep="last")  # a retried failure: its last try
    ok = results[results["error"] == ""].copy()
    failed = results[results["error"] != ""]
    lines = []
    for design in [d for d in DESIGNS if d in set(results["design"])] + sorted(
        set(results["design"]) - set(DESIGNS)
    ):
        part = ok[ok["design"] == design]
        days = design.startswith("sim_")
        spec = ".1f" if days else ".3f"
        unit = " (d)" if days else ""
        lines += [
            f"### {design} ({part['file'].nunique()} files)",
            "",
            f"| learner | mode | label | files | RMSE{unit} | ratio to grf (per file) "
            "| ratio to grf (of means) | Spearman | coverage 95 % | RMSE surv | wall s | CPU s "
            "| code |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for (learner, mode, label), g in part.groupby(["learner", "mode", "label"], sort=False):
            per_file = (g["rmse_rmst"] / g["grf_rmse"]).mean()
            of_means = g["rmse_rmst"].mean() / g["grf_rmse"].mean()
            coverage = g["coverage_rmst"].mean() if "coverage_rmst" in g else np.nan
            surv = g["rmse_surv"].mean() if "rmse_surv" in g else np.nan
            lines.append(
                f"| {learner} | {mode} | {label} | {len(g)} | {fmt(g['rmse_rmst'].mean(), spec)} "
                f"| {per_file:.2f} | {of_means:.2f} | {fmt(g['spearman_rmst'].mean(), '.2f')} "
                f"| {fmt(coverage, '.3f')} | {fmt(surv, '.3f')} "
                f"| {g['wall_s'].mean():.1f} | {g['cpu_s'].mean():.1f} "
                f"| {', '.join(sorted(set(g['code'].astype(str))))} |"
            )
        grf = part.drop_duplicates("file")
        if len(grf):
            lines.append(
                f"| **grf 2.6.1** | oob | | {len(grf)} | {fmt(grf['grf_rmse'].mean(), spec)} "
                f"| 1.00 | 1.00 | {fmt(grf['grf_spearman'].mean(), '.2f')} "
                f"| {grf['grf_coverage'].mean():.3f} | – | {grf['grf_fit_s'].mean():.1f} | – | |"
            )
        for (learner, mode, label), g in failed[failed["design"] == design].groupby(
            ["learner", "mode", "label"], sort=False
        ):
            first = g["error"].iloc[0]
            lines.append(f"\n{learner} {mode} {label}: {len(g)} file(s) failed: {first}")
        lines.append("")

    big = ok[ok["n"] == 2000]
    if len(big) and "covered_rmst" in big:
        lines += [
            "### 95 % interval coverage pooled over all patients of the n = 2,000 files",
            "",
            "| design | learner | mode | label | files | patients | coverage RMST "
            "| coverage surv | grf coverage RMST |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        with_se = big[big["covered_rmst"].notna()]
        for (design, learner, mode, label), g in with_se.groupby(
            ["design", "learner", "mode", "label"], sort=False
        ):
            patients = g["n"].sum()
            surv = g["covered_surv"].sum() / patients if "covered_surv" in g else np.nan
            lines.append(
                f"| {design} | {learner} | {mode} | {label} | {len(g)} | {patients} "
                f"| {g['covered_rmst'].sum() / patients:.3f} | {fmt(surv, '.3f')} "
                f"| {g['grf_covered'].sum() / patients:.3f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma list of prefixes")
    parser.add_argument("--learners", default=DEFAULT_LEARNERS, help="comma list")
    parser.add_argument("--csf-params", default="{}", help="JSON of CausalSurvivalForest params")
    parser.add_argument("--label", default="default", help="tag of this variant")
    parser.add_argument(
        "--csf-modes", default="oob,crossfit", help="modes of the causal survival forest"
    )
    parser.add_argument("--n-jobs", type=int, default=1, help="processes over tasks")
    parser.add_argument("--out", type=Path, default=Path("experiments/results/grf_benchmark.csv"))
    parser.add_argument("--estimates", type=Path, help="directory for per-patient estimates")
    parser.add_argument("--summary", action="store_true", help="only print the summary of --out")
    args = parser.parse_args(argv)

    if not args.summary:
        csf_params = json.loads(args.csf_params)
        files = files_of([d.strip() for d in args.designs.split(",") if d.strip()])
        if not files:
            parser.error(f"no reference file matches --designs {args.designs}")
        learners = [x.strip() for x in args.learners.split(",") if x.strip()]
        tasks = tasks_of(files, learners, tuple(args.csf_modes.split(",")))
        done = read(args.out)
        # a failure is final only for the code that failed (the learners may be mid-edit)
        done = done[(done["error"] == "") | (done.get("code", "") == CODE)]
        finished = set(zip(*(done[k].astype(str) for k in KEY), strict=True))
        tasks = [t for t in tasks if (*t, args.label) not in finished]
        print(f"{len(tasks)} tasks to run ({len(files)} files)", flush=True)
        start = time.perf_counter()
        rows = Parallel(n_jobs=args.n_jobs, return_as="generator_unordered")(
            delayed(one_task)(*task, csf_params, args.label, args.estimates) for task in tasks
        )
        for k, row in enumerate(rows, 1):
            append(args.out, row)
            status = row["error"] or f"rmse {row['rmse_rmst']:.4g}, {row['wall_s']:.1f} s"
            print(
                f"[{k}/{len(tasks)} {time.perf_counter() - start:.0f} s] {row['file']} "
                f"{row['learner']} {row['mode']}: {status}",
                flush=True,
            )
    print(summary(read(args.out)))


if __name__ == "__main__":
    main()
