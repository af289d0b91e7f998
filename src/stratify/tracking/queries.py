"""Reading tracked runs back: which runs and metrics to compare, as one frame.

:func:`compare` reads an experiment's learner runs (the nested runs ``stratify
run`` makes, one per learner), or the runs given, from a store and returns a
:class:`Comparison`: one row per run, the chosen metrics exactly as MLflow
stores them with their ``_sd``/``_se`` companions, sorted best first. The
store is only read: a folder without an MLflow store is an error, never a new,
empty store. :mod:`stratify.report.comparison` shows a comparison; ``stratify
compare`` (:mod:`stratify.cli.compare`) is the command.

MLflow is imported only when a comparison runs, so that ``stratify --help``
stays fast.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pandas as pd

from stratify.config import is_local_folder
from stratify.exceptions import StratifyInputError

if TYPE_CHECKING:
    from stratify.tracking.tracker import Store, Tracker

ID_COLUMNS = ("run_id", "run_name", "learner", "label", "status", "parent_run_id")
"""Identity columns of a comparison, before the metrics."""


DEFAULT_METRICS = (
    "cate_rmst_mean",
    "c_index_harrell",
    "ibs",
    "rate_autoc",
    "c_for_benefit",
    "heterogeneity_p",
)
"""Shown by default: logged by every learner run (mean benefit, risk, benefit ranking, test)."""


TRUTH_METRICS = ("cate_rmse", "cate_spearman")
"""Added to the defaults when every learner run has them (simulated trials)."""


PARENT_METRICS = ("hr_adjusted", "rmst_diff", "interaction_p")
"""Added to the defaults when parent runs are listed: the trial analysis of each run."""


DEFAULT_SORT = "rate_autoc"
"""Default order: RATE AUTOC, best first; else the first metric shown."""


SPREADS = {"_sd": "SD", "_se": "SE"}
"""Companion suffixes of a metric and what the ``±`` means."""


LEARNER_TAG = "stratify.learner"


PARENT_TAG = "mlflow.parentRunId"


FINISHED = "FINISHED"


_LOWER_IS_BETTER = re.compile(r"(^ibs|_rmse|_sd|_se|_rank|_rank_surv|(^|_)p(_[a-z]+)?)$")


_RUN_ID = re.compile(r"^[0-9a-f]{6,32}$")


@dataclass(frozen=True)
class Comparison:
    """Runs × metrics, and how they were chosen and ordered.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per run: :data:`ID_COLUMNS`, then each metric followed by its
        ``_sd``/``_se`` companion when logged; NaN where a run lacks a metric.
    metrics : tuple of str
        The metrics asked for (companions not included).
    sort_by : str
        The column the rows are sorted on (ties: run name, then run id).
    ascending : bool
        Direction of the sort (missing values always last).
    source : str
        What was compared: ``experiment 'NAME'`` or ``runs ID, ...`` (ids as given).
    """

    frame: pd.DataFrame
    metrics: tuple[str, ...]
    sort_by: str
    ascending: bool
    source: str

    @property
    def caption(self) -> str:
        """What the ``±`` means and how the rows are ordered."""
        return self.caption_for(self.metrics)

    def caption_for(self, metrics: Sequence[str]) -> str:
        """The caption of a table showing only ``metrics``."""
        kinds = {
            kind
            for m in metrics
            for suffix, kind in SPREADS.items()
            if f"{m}{suffix}" in self.frame.columns
        }
        notes = []
        if "SD" in kinds:
            notes.append("± SD: standard deviation over cross-validation folds × repeats")
        if "SE" in kinds:
            notes.append("± SE: bootstrap standard error")
        order = "ascending" if self.ascending else "descending"
        notes.append(f"sorted by {self.sort_by}, {order}")
        return "; ".join(notes)


def compare(
    store: str | Path | Store,
    *,
    experiment: str | None = None,
    run_ids: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    sort: str | None = None,
    include_parents: bool = False,
) -> Comparison:
    """Compare tracked runs: choose them, their metrics and their order.

    Parameters
    ----------
    store : str, Path or Store
        A store folder (``mlruns``), an MLflow tracking URI, or a :class:`Store`.
        It must exist: it is never created.
    experiment : str, optional
        Compare the experiment's finished learner runs (children of finished
        parent runs). Exactly one of ``experiment`` and ``run_ids``.
    run_ids : sequence of str, optional
        Runs to compare, whatever their status; a parent run stands for its
        learner runs; a unique prefix (6 or more hex digits) of an id will do.
    metrics : sequence of str, optional
        Metric names or glob patterns (``cate_*``); default :data:`DEFAULT_METRICS`
        (plus :data:`TRUTH_METRICS` when every learner run has them).
    sort : str, optional
        ``NAME``, ``NAME:asc`` or ``NAME:desc``: a metric (added to ``metrics``
        if missing) or an identity column. Without a direction, the best come
        first: ascending for p-values, ``ibs``, ``*_rmse``, ``*_sd``/``*_se`` and
        ranks, descending for other metrics. Default: :data:`DEFAULT_SORT`.
    include_parents : bool
        Also list the parent runs (their ``learner`` and ``label`` are None); the
        default metrics then include :data:`PARENT_METRICS`.

    Returns
    -------
    Comparison

    Raises
    ------
    StratifyInputError
        No such store, experiment, run or metric; nothing to compare; a bad sort.
    """
    tracker = open_store(store)
    if experiment is not None and run_ids:
        raise StratifyInputError("give --experiment NAME or run ids, not both")
    if experiment is None and not run_ids:
        raise StratifyInputError(
            "give --experiment NAME or run ids (experiments in "
            f"{tracker.store.tracking_uri}: {_experiment_names(tracker.client)})"
        )
    if experiment is not None:
        runs, parents = _experiment_runs(tracker.client, experiment, include_parents)
        source = f"experiment '{experiment}'"
    else:
        runs, parents = _named_runs(tracker.client, run_ids, include_parents)
        source = _describe_ids(run_ids)
    available = sorted(set().union(*(r.data.metrics for r in runs)))
    chosen = _choose_metrics(metrics, runs, available)
    sort_by, ascending = _sort_key(sort, chosen, available)
    if sort_by not in ID_COLUMNS and sort_by not in chosen:
        chosen.append(sort_by)
    frame = _frame(runs, parents, chosen, available)
    frame = frame.sort_values(
        [sort_by, "run_name", "run_id"], ascending=[ascending, True, True], na_position="last"
    ).reset_index(drop=True)
    return Comparison(frame, tuple(chosen), sort_by, ascending, source)


def compare_runs(
    store: str | Path | Store,
    *,
    experiment: str | None = None,
    run_ids: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    sort: str | None = None,
    include_parents: bool = False,
) -> pd.DataFrame:
    """Runs × metrics as a DataFrame: :func:`compare` without the bookkeeping.

    Parameters are those of :func:`compare`.

    Returns
    -------
    pandas.DataFrame
        One row per run, sorted: :data:`ID_COLUMNS`, then each metric and its
        ``_sd``/``_se`` companion (values as MLflow returns them; NaN if missing).
    """
    return compare(
        store,
        experiment=experiment,
        run_ids=run_ids,
        metrics=metrics,
        sort=sort,
        include_parents=include_parents,
    ).frame


def open_store(store: str | Path | Store) -> Tracker:
    """A tracker on an existing store (a folder must already hold its database).

    Raises
    ------
    StratifyInputError
        The folder or SQLite file does not exist, or the store cannot be opened.
    """
    from stratify.tracking.tracker import STORE_DB, Store, Tracker

    if isinstance(store, Store):
        uri = str(store.artifact_root.parent) if store.artifact_root else store.tracking_uri
    else:
        uri = str(store)
    if is_local_folder(uri):
        folder = Path(urlparse(uri).path if uri.startswith("file:") else uri).expanduser()
        if not (folder / STORE_DB).is_file():
            raise StratifyInputError(
                f"--store: no MLflow store at {folder} (no {STORE_DB}); "
                "`stratify run CONFIG` makes one, or pass --store"
            )
    elif uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///")).expanduser()
        if not path.is_file():
            raise StratifyInputError(f"--store: no MLflow store at {uri} (no such file)")
    try:
        return Tracker(Store.from_uri(uri))
    except StratifyInputError as exc:  # the store's problem, told as this command's option
        raise StratifyInputError(str(exc).replace("tracking.uri:", "--store:", 1)) from None


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """Metric columns of a comparison frame, without identity columns and companions."""
    columns = set(frame.columns)
    return [
        c
        for c in frame.columns
        if c not in ID_COLUMNS
        and not any(c.endswith(s) and c.removesuffix(s) in columns for s in SPREADS)
    ]


def _experiment_runs(client, name: str, include_parents: bool) -> tuple[list, dict[str, Any]]:
    """Finished runs of an experiment: learner runs of finished parents (and the parents)."""
    found = client.get_experiment_by_name(name)
    if found is None or found.lifecycle_stage == "deleted":
        names = _experiment_names(client)
        close = difflib.get_close_matches(name, names.split(", "), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise StratifyInputError(
            f"--experiment: no experiment '{name}' in this store; {hint}experiments: {names}"
        )
    runs = _search(client, [found.experiment_id])
    finished = {r.info.run_id: r for r in runs if r.info.status == FINISHED}
    kept = [r for r in finished.values() if _parent_id(r) in (None, *finished)]
    learners = [r for r in kept if _is_learner(r)]
    chosen = kept if include_parents else learners
    if not chosen:
        raise StratifyInputError(f"--experiment: experiment '{name}' {_why_empty(runs, kept)}")
    return chosen, finished


def _why_empty(runs: list, kept: list) -> str:
    """Why an experiment has nothing to compare (the runs it has, by status and kind)."""
    if not runs:
        return "has no runs"
    unfinished = [r for r in runs if r.info.status != FINISHED]
    if len(unfinished) == len(runs):
        return f"has no finished runs ({len(runs)} {_status_counts(unfinished)})"
    if kept:
        plural = "s" * (len(kept) > 1)
        return (
            f"has no learner runs ({len(kept)} finished run{plural} without learners); "
            "--all lists them"
        )
    return (
        "has no learner runs of a finished run (their parent runs failed, were stopped or "
        "deleted); name their run ids to see them"
    )


def _status_counts(runs: list) -> str:
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.info.status] = counts.get(r.info.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _named_runs(client, run_ids: Sequence[str], include_parents: bool) -> tuple[list, dict]:
    """The runs named, a parent standing for its learner runs; no run twice."""
    chosen: dict[str, Any] = {}
    for ref in run_ids:
        run = _get_run(client, ref)
        children = [] if _is_learner(run) else _children(client, run)
        if include_parents or not children:
            chosen.setdefault(run.info.run_id, run)
        for child in children:
            chosen.setdefault(child.info.run_id, child)
    runs = list(chosen.values())
    parent_ids = {_parent_id(r) for r in runs} - {None} - set(chosen)
    parents = {pid: run for pid in parent_ids if (run := _run_or_none(client, pid)) is not None}
    return runs, parents | chosen


def _run_or_none(client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def _describe_ids(run_ids: Sequence[str]) -> str:
    shown = ", ".join(ref[:8] for ref in run_ids[:3])
    more = f" and {len(run_ids) - 3} more" if len(run_ids) > 3 else ""
    return f"run{'s' * (len(run_ids) > 1)} {shown}{more}"


def _get_run(client, ref: str):
    """A run by id or unique id prefix; deleted runs count as missing."""
    from mlflow.exceptions import MlflowException

    ref = ref.strip().lower()
    try:
        run = client.get_run(ref)
        if run.info.lifecycle_stage != "deleted":
            return run
    except MlflowException:
        pass
    matches = _by_prefix(client, ref) if _RUN_ID.match(ref) else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        ids = ", ".join(sorted(r.info.run_id for r in matches))
        raise StratifyInputError(f"run '{ref}': ambiguous prefix, matches runs {ids}")
    raise StratifyInputError(f"run '{ref}': no such run in this store")


def _by_prefix(client, prefix: str) -> list:
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    if not experiment_ids:
        return []
    return _search(client, experiment_ids, f"attributes.run_id LIKE '{prefix}%'")


def _children(client, run) -> list:
    query = f"tags.`{PARENT_TAG}` = '{run.info.run_id}'"
    return _search(client, [run.info.experiment_id], query)


def _search(client, experiment_ids: list[str], query: str = "") -> list:
    """Every active run matching ``query`` (all pages), oldest first."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiment_ids,
            query,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _experiment_names(client) -> str:
    names = sorted(e.name for e in client.search_experiments())
    return ", ".join(names) or "none"


def _is_learner(run) -> bool:
    return LEARNER_TAG in run.data.tags


def _parent_id(run) -> str | None:
    return run.data.tags.get(PARENT_TAG)


def _choose_metrics(requested: Sequence[str] | None, runs: list, available: list[str]) -> list:
    if requested is None:
        return _default_metrics(runs, available)
    if not requested:
        raise StratifyInputError("--metrics: give at least one metric name")
    chosen: list[str] = []
    for name in requested:
        for metric in _expand(name, available):
            if metric not in chosen:
                chosen.append(metric)
    return chosen


def _default_metrics(runs: list, available: list[str]) -> list[str]:
    chosen = [m for m in DEFAULT_METRICS if m in available]
    learners = [r for r in runs if _is_learner(r)]
    if learners and all(all(m in r.data.metrics for m in TRUTH_METRICS) for r in learners):
        chosen += TRUTH_METRICS
    if len(learners) < len(runs):
        chosen += [m for m in PARENT_METRICS if m in available]
    if not chosen:
        raise StratifyInputError(
            f"--metrics: these runs have none of the default metrics; choose from: "
            f"{', '.join(available) or 'none (no metrics logged)'}"
        )
    return chosen


def _expand(name: str, available: list[str]) -> list[str]:
    """A metric name, or the metrics a glob pattern matches, checked against ``available``."""
    if any(ch in name for ch in "*?["):
        matched = fnmatch.filter(_primary(available), name)
        if not matched:
            raise StratifyInputError(
                f"--metrics: no metric matches '{name}'; metrics of these runs: "
                f"{', '.join(available)}"
            )
        return matched
    if name not in available:
        raise StratifyInputError(f"--metrics: {_unknown(name, _primary(available))}")
    return [name]


def _primary(available: list[str]) -> list[str]:
    """Metrics that are not the ``_sd``/``_se`` companion of another metric."""
    names = set(available)
    return [
        m
        for m in available
        if not any(m.endswith(s) and m.removesuffix(s) in names for s in SPREADS)
    ]


def _unknown(name: str, known: Iterable[str], what: str = "metric") -> str:
    """``no metric 'x' in these runs; did you mean ...`` (else the full list)."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.6)
    close += [k for k in known if name in k and k not in close][: max(0, 4 - len(close))]
    if close:
        return f"no {what} '{name}' in these runs; did you mean {', '.join(close)}?"
    return f"no {what} '{name}' in these runs; {what}s: {', '.join(known)}"


def _sort_key(sort: str | None, chosen: list[str], available: list[str]) -> tuple[str, bool]:
    """Column and direction: ``NAME[:asc|:desc]``; best first without a direction."""
    if sort is None:
        name = DEFAULT_SORT if DEFAULT_SORT in chosen else chosen[0]
        return name, lower_is_better(name)
    name, _, direction = sort.strip().partition(":")
    if direction not in ("", "asc", "desc"):
        raise StratifyInputError(f"--sort: '{sort}': use NAME, NAME:asc or NAME:desc")
    if name not in ID_COLUMNS and name not in available:
        known = [*ID_COLUMNS, *available]
        raise StratifyInputError(f"--sort: {_unknown(name, known, 'column')}")
    if direction:
        return name, direction == "asc"
    return name, name in ID_COLUMNS or lower_is_better(name)


def lower_is_better(metric: str) -> bool:
    """True for metrics where smaller is better: p-values, ``ibs``, errors, spreads, ranks.

    Examples
    --------
    >>> [lower_is_better(m) for m in ("ibs", "heterogeneity_p_blp", "cate_rmse", "rate_autoc")]
    [True, True, True, False]
    """
    return bool(_LOWER_IS_BETTER.search(metric))


def _frame(runs: list, parents: dict[str, Any], chosen: list[str], available: list[str]):
    columns = []
    for metric in chosen:
        for column in (metric, *(metric + s for s in SPREADS)):
            if column in available and column not in columns:
                columns.append(column)
    rows = [
        _identity(run, parents) | {c: run.data.metrics.get(c, math.nan) for c in columns}
        for run in runs
    ]
    frame = pd.DataFrame(rows, columns=[*ID_COLUMNS, *columns])
    return frame.astype({c: "float64" for c in columns})


def _identity(run, parents: dict[str, Any]) -> dict[str, Any]:
    parent_id = _parent_id(run)
    parent = parents.get(parent_id) if parent_id else None
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "learner": run.data.tags.get(LEARNER_TAG),
        "label": _label(run, parent.info.run_name if parent is not None else None),
        "status": run.info.status,
        "parent_run_id": parent_id,
    }


def _label(run, parent_name: str | None) -> str | None:
    """The learner's label in its config, read off its run name ``<config>-<label>-<hash7>``
    (the parent's is ``<config>-<hash7>``); the learner's name if that fails."""
    learner = run.data.tags.get(LEARNER_TAG)
    name = run.info.run_name or ""
    hash7 = run.data.tags.get("stratify.config_hash", "")[:7]
    if learner is None or not parent_name or not hash7 or not parent_name.endswith(f"-{hash7}"):
        return learner
    prefix, suffix = parent_name[: -len(hash7)], f"-{hash7}"
    if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix + suffix):
        return name[len(prefix) : -len(suffix)]
    return learner
