"""Simulation studies: one config over many simulated trials, resumable (``stratify study``).

A study repeats a config's analysis on ``study.replicates`` trials drawn from its
simulated design. Replicate ``i`` is the config run with seed
``study.first_seed + i``, for the trial and for everything random in its
analysis, so each replicate can be recomputed on its own, on any worker, in any
order. Replicates go out through joblib on the configured backend (local
processes or Dask, :mod:`stratify.pipeline.execution`).

The study is ONE MLflow run. Each replicate's metrics are logged to it at step
``i`` as soon as the replicate finishes, in one batch with the marker
``replicate_done``. That run is also the study's state: it is found again by
the tag ``stratify.study_key``, a hash of everything a replicate depends on
(not of how many there are). Running the same command again after a crash, a
kill or Ctrl-C continues with the replicates not yet logged, and raising
``study.replicates`` extends the study; no replicate is logged twice and no
second run is created. Once all replicates are in, the run gets the study's
summary: rejection rates at ``study.alpha`` with exact (Clopper-Pearson)
intervals for every p-value, coverage of the true RMST difference, and the
distribution of every estimate (``tables/study_summary.csv``), plus one row per
replicate (``tables/replicates.csv``: trial-level statistics of simulated
trials, no patient rows).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from joblib import Parallel, delayed
from scipy.stats import binomtest

from stratify import __version__
from stratify.config import ExperimentConfig
from stratify.config.schema import ExecutionConfig, StudyConfig
from stratify.exceptions import StratifyInputError
from stratify.pipeline import execution
from stratify.progress import track

DONE = "replicate_done"
"""Metric logged with every replicate, in the same batch: the replicate is in."""
FAILED = "replicate_failed"
"""1 when the replicate's trial could not be analysed (e.g. a Cox model that cannot be fitted)."""
SUMMARY_PREFIX = "study."
"""Metrics of the study as a whole (rejection rates, coverage, counts)."""
KEY_TAG = "stratify.study_key"

HEADLINE_TESTS = (
    "logrank_p",
    "hr_adjusted_p",
    "interaction_p",
    "stratum1_hr_p",
    "stratum2_hr_p",
    "stratum3_hr_p",
    "rmst_diff_p",
    "heterogeneity_p",
)
"""p-values shown first in the terminal summary, when the study has them."""


@dataclass(frozen=True)
class StudyResult:
    """What a study produced and where it is recorded."""

    run_id: str
    replicates: pd.DataFrame
    summary: pd.DataFrame
    new: int
    resumed: int


def study_key(config: ExperimentConfig) -> str:
    """Hash (12 hex digits) of everything one replicate depends on.

    Left out: where the study runs and is tracked (``execution``, ``tracking``),
    how many replicates it has and the level of its summary (``study.replicates``,
    ``study.alpha``), and the seeds the replicates replace (``seed``,
    ``data.simulate.seed``). A study with more replicates, or rerun elsewhere,
    has the same key and continues the same run.
    """
    tree = config.to_dict()
    for key in ("tracking", "execution", "seed"):
        tree.pop(key, None)
    study = tree.pop("study", None) or StudyConfig().model_dump(mode="json")
    tree["study"] = {k: v for k, v in study.items() if k not in ("replicates", "alpha")}
    simulate = tree["data"].get("simulate") or {}
    simulate.pop("seed", None)
    blob = json.dumps(tree, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def replicate_config(config: ExperimentConfig, index: int) -> ExperimentConfig:
    """The config of replicate ``index``: seed ``study.first_seed + index``, one process."""
    study = config.study or StudyConfig()
    simulate = config.data.simulate.model_copy(update={"seed": None})
    return config.model_copy(
        update={
            "seed": study.first_seed + index,
            "data": config.data.model_copy(update={"simulate": simulate}),
            "execution": ExecutionConfig(),
        }
    )


def run_replicate(config: ExperimentConfig, index: int) -> tuple[int, dict[str, float], str]:
    """Simulate and analyse replicate ``index``: ``(index, metrics, reason it failed or "")``.

    The metrics are the trial analysis (as logged by ``stratify run``), the
    trial's true average RMST difference and whether the analysis' CI covers it,
    and with ``study.learners`` each learner's heterogeneity p-values and the
    combined verdict. A trial that cannot be analysed is recorded as failed (the
    study goes on and counts it); anything else is a bug and stops the study.
    """
    from stratify.pipeline.experiment import learn, load_trial
    from stratify.trial import analyse_trial

    cfg = replicate_config(config, index)
    try:
        data = load_trial(cfg)
        analysis = analyse_trial(data, horizon=cfg.horizon, cutpoints=cfg.data.cutpoints)
        metrics = analysis.metrics()
        if data.truth is not None:
            truth = float(data.truth["tau_rmst"].mean())
            metrics["true_rmst_diff"] = truth
            covered = analysis.rmst_diff.ci_low <= truth <= analysis.rmst_diff.ci_high
            metrics["rmst_diff_covers_truth"] = float(covered)
        if (cfg.study or StudyConfig()).learners and cfg.learners:
            metrics |= _learner_metrics(learn(cfg, data))
    except StratifyInputError as exc:
        return index, {DONE: 1.0, FAILED: 1.0}, str(exc)
    return index, metrics | {DONE: 1.0, FAILED: 0.0}, ""


def _learner_metrics(evaluation) -> dict[str, float]:
    out = {"heterogeneity_p": evaluation.heterogeneity_p}
    for label, report in evaluation.learners.items():
        for key in ("heterogeneity_p_blp", "heterogeneity_p_rate", "cate_rmse", "cate_spearman"):
            if key in report.metrics:
                out[f"learner.{label}.{key}"] = report.metrics[key]
    return out


def run_study(config: ExperimentConfig) -> StudyResult:
    """Run (or continue) the study a config describes, recorded as one MLflow run.

    Parameters
    ----------
    config : ExperimentConfig
        A config with ``data.simulate``; ``study`` (default: :class:`StudyConfig`)
        sets the replicates.

    Returns
    -------
    StudyResult

    Raises
    ------
    StratifyInputError
        If the config has no simulated design, the store cannot be used, or the
        same study is being run by another process on this store.
    """
    from stratify.tracking.tracker import Store, Tracker

    if config.data.simulate is None:
        source = "data.path" if config.data.path is not None else "data.dataset"
        raise StratifyInputError(
            f"data.simulate: a study draws its trials from a simulated design; this config "
            f"reads one trial ({source})"
        )
    study = config.study or StudyConfig()
    key = study_key(config)
    tracker = Tracker(Store.from_uri(config.tracking_uri))
    with ExitStack() as stack:
        stack.enter_context(_exclusive(tracker.store, key))
        found = _find_study_run(tracker, config.experiment_name, key)
        if found is None:
            run_id = stack.enter_context(
                tracker.run(config.experiment_name, run_name=_run_name(config, key),
                            tags=_tags(config, key))
            )  # fmt: skip
            tracker.log_params(run_id, _params(config))
            tracker.log_text(run_id, config.to_yaml(), "config.yaml")
            done: set[int] = set()
        else:
            run_id = found
            stack.enter_context(tracker.reopen(run_id))
            done = _done_steps(tracker, run_id)
        todo = [i for i in range(study.replicates) if i not in done]
        _compute(tracker, run_id, config, todo)
        table = replicate_table(tracker, run_id, study.replicates)
        summary = summarise(table, study.alpha)
        _log_summary(tracker, run_id, config, table, summary)
    resumed = len(done & set(range(study.replicates)))
    return StudyResult(run_id, table, summary, new=len(todo), resumed=resumed)


def _compute(tracker, run_id: str, config: ExperimentConfig, todo: list[int]) -> None:
    """Run the replicates in ``todo`` on the backend, logging each as it finishes."""
    if not todo:
        return
    failures = []
    with execution.backend(config.execution):
        results = Parallel(n_jobs=config.execution.n_jobs, return_as="generator_unordered")(
            delayed(run_replicate)(config, i) for i in todo
        )
        for index, metrics, reason in track(results, "simulated trials", len(todo)):
            tracker.log_metrics(run_id, metrics, step=index)
            if reason:
                failures.append(f"replicate {index}: {reason}")
    if failures:
        tracker.set_tags(run_id, {"stratify.study_failures": "; ".join(failures)[:5000]})


@contextmanager
def _exclusive(store, key: str) -> Iterator[None]:
    """One process at a time per study on an embedded store (a file lock beside it)."""
    if store.artifact_root is None:
        yield
        return
    lock = FileLock(store.artifact_root.parent / f".study-{key}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise StratifyInputError(
            f"study: this study ({key}) is already running on {store.artifact_root.parent}; "
            "wait for it, or stop it and rerun to continue"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _find_study_run(tracker, experiment: str, key: str) -> str | None:
    """The study's run in this store (the oldest, should there be several), or None."""
    exp = tracker.client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = tracker.client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{KEY_TAG}` = '{key}'",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def _done_steps(tracker, run_id: str) -> set[int]:
    return {m.step for m in tracker.client.get_metric_history(run_id, DONE)}


def replicate_table(tracker, run_id: str, replicates: int) -> pd.DataFrame:
    """One row per logged replicate (index ``< replicates``), one column per metric."""
    keys = [k for k in tracker.get_run(run_id).data.metrics if not k.startswith(SUMMARY_PREFIX)]
    columns = {}
    for key in sorted(keys):
        history = tracker.client.get_metric_history(run_id, key)
        values = {m.step: m.value for m in sorted(history, key=lambda m: m.timestamp)}
        columns[key] = pd.Series(values, dtype=float)
    table = pd.DataFrame(columns).sort_index()
    table = table[table.index < replicates]
    table.index.name = "replicate"
    return table


def is_p_value(metric: str) -> bool:
    """Whether a replicate metric is a p-value (its rejection rate is reported).

    Examples
    --------
    >>> [is_p_value(k) for k in ("logrank_p", "hr_adjusted_p", "learner.s.heterogeneity_p_blp")]
    [True, True, True]
    >>> [is_p_value(k) for k in ("hr_adjusted", "n_events")]
    [False, False]
    """
    return metric.endswith("_p") or "heterogeneity_p" in metric


def summarise(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Per metric over the analysed replicates: mean, SD, quantiles and, for p-values, the
    rejection rate at ``alpha`` with its exact 95 % CI.

    Failed replicates are left out of every statistic (their count is in
    ``study.replicates_failed``); a metric's NaNs (e.g. a stratum without
    events) are left out of that metric's statistics and counted in ``n_missing``.
    """
    ok = table[table.get(FAILED, pd.Series(0.0, index=table.index)) == 0]
    rows = []
    for metric in ok.columns.drop([DONE, FAILED], errors="ignore"):
        values = ok[metric].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        row = {"metric": metric, "n": finite.size, "n_missing": values.size - finite.size}
        if finite.size:
            q = np.quantile(finite, [0.025, 0.5, 0.975])
            sd = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
            row |= {"mean": finite.mean(), "sd": sd, "q025": q[0], "median": q[1], "q975": q[2]}
        if is_p_value(metric) and finite.size:
            k = int((finite <= alpha).sum())
            ci = binomtest(k, finite.size).proportion_ci(method="exact")
            row |= {"rejections": k, "rate": k / finite.size, "ci_low": ci.low, "ci_high": ci.high}
        rows.append(row)
    return pd.DataFrame(rows)


def summary_metrics(table: pd.DataFrame, summary: pd.DataFrame) -> dict[str, float]:
    """What the run logs about the study as a whole (keys start with ``study.``)."""
    failed = table.get(FAILED, pd.Series(dtype=float))
    out = {
        "study.replicates_done": float(len(table)),
        "study.replicates_failed": float(failed.sum()),
    }
    for row in summary.itertuples():
        if not pd.isna(getattr(row, "rate", math.nan)):
            out[f"study.reject.{row.metric}"] = row.rate
            out[f"study.reject.{row.metric}_ci_low"] = row.ci_low
            out[f"study.reject.{row.metric}_ci_high"] = row.ci_high
    covers = summary[summary["metric"] == "rmst_diff_covers_truth"]
    if len(covers) and not pd.isna(covers["mean"].iloc[0]):
        out["study.coverage.rmst_diff"] = float(covers["mean"].iloc[0])
    return out


def _log_summary(tracker, run_id, config, table, summary) -> None:
    tracker.log_metrics(run_id, summary_metrics(table, summary))
    tracker.log_table(run_id, table.reset_index(), "tables/replicates.csv")
    tracker.log_table(run_id, summary, "tables/study_summary.csv")
    tracker.set_tags(run_id, {"mlflow.note.content": describe(config, table, summary)})


def _run_name(config: ExperimentConfig, key: str) -> str:
    return f"{config.name}-study-{key[:7]}"


def _tags(config: ExperimentConfig, key: str) -> dict[str, str]:
    return {
        KEY_TAG: key,
        "stratify.kind": "study",
        "stratify.version": __version__,
        "stratify.config_hash": config.config_hash,
    }


def _params(config: ExperimentConfig) -> dict[str, str]:
    study = config.study or StudyConfig()
    params = config.flat_params()
    params.pop("seed", None)
    params.pop("study.replicates", None)  # grows when a study is extended
    params.pop("study.alpha", None)
    for key, value in study.model_dump().items():
        if key not in ("replicates", "alpha"):
            params[f"study.{key}"] = str(value)
    return params


def describe(config: ExperimentConfig, table: pd.DataFrame, summary: pd.DataFrame) -> str:
    """The study in a few lines: what was simulated and the headline rejection rates."""
    study = config.study or StudyConfig()
    sim = config.data.simulate
    failed = int(table[FAILED].sum()) if FAILED in table else 0
    lines = [
        f"{len(table):,} simulated trials of the {sim.design} design (n = {sim.n}, effect "
        f"{sim.effect}), seeds {study.first_seed}–{study.first_seed + len(table) - 1}; "
        f"{failed} could not be analysed.",
        "",
        f"Rejection rate at alpha = {study.alpha:g} (exact 95 % CI):",
    ]
    lines += [f"- {line}" for line in rejection_lines(summary)]
    return "\n".join(lines)


def rejection_lines(summary: pd.DataFrame, *, headline_only: bool = True) -> list[str]:
    """``metric: rate (low–high), k/n`` for the p-values, the headline tests first."""
    rates = summary.dropna(subset=["rate"]) if "rate" in summary else summary.iloc[:0]
    order = {m: i for i, m in enumerate(HEADLINE_TESTS)}
    if headline_only:
        rates = rates[rates["metric"].isin(order)]
    rates = rates.assign(_o=rates["metric"].map(order).fillna(len(order))).sort_values("_o")
    return [
        f"{r.metric}: {r.rate:.3f} ({r.ci_low:.3f}–{r.ci_high:.3f}), {r.rejections:.0f}/{r.n:.0f}"
        for r in rates.itertuples()
    ]


__all__ = [
    "StudyResult",
    "replicate_config",
    "replicate_table",
    "run_replicate",
    "run_study",
    "study_key",
    "summarise",
]
