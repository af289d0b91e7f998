"""Cross-fitting: every learner is fitted on K − 1 folds and predicts the held-out fold.

This module owns the splits (repeated K-fold stratified on arm × event), the fan-out of
(learner, repeat, fold) tasks through joblib, and the out-of-fold estimates. Every task
draws its seed from ``(seed, learner, repeat, fold)`` alone, and the results are
assembled in task order, so the numbers are the same with 1 worker or many. Each
patient's out-of-fold benefit is the mean of its estimates over repeats; all
preprocessing lives inside the learners, so it is fitted inside the folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import RepeatedStratifiedKFold

from stratify.data import TrialData
from stratify.exceptions import StratifyInputError
from stratify.learners.base import CATE_COLUMNS
from stratify.learners.registry import make_learner
from stratify.progress import track
from stratify.validation.metrics.risk import risk_metrics

#: Half-width of a 95 % normal interval, in standard errors.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class NamedLearner:
    """What a worker needs to build a learner: registry name, params, label."""

    label: str
    name: str
    params: dict


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold results of one learner.

    Attributes
    ----------
    label : str
        The learner's label (names its nested run).
    estimates : numpy.ndarray
        Shape ``(repeats, n_patients, 2)``: ``cate_rmst`` and ``cate_surv`` of each
        patient from the repeat's fold that held the patient out.
    fold_metrics : pandas.DataFrame
        One row per (repeat, fold): risk metrics on the held-out fold.
    index : pandas.Index
        Patient identifiers, in the order of ``estimates``.
    standard_errors : numpy.ndarray, optional
        Shape of ``estimates``: the standard error of each estimate, for learners
        that give one (``predict_cate_interval``); None otherwise.
    """

    label: str
    estimates: np.ndarray
    fold_metrics: pd.DataFrame
    index: pd.Index
    standard_errors: np.ndarray | None = None

    @property
    def oof(self) -> pd.DataFrame:
        """Each patient's out-of-fold benefit, averaged over repeats.

        With standard errors, also ``<estimand>_low``/``<estimand>_high``: a 95 %
        interval around the average whose standard error is the root mean
        square of the repeats' (the average of correlated estimates is no more
        variable than one of them, so the interval errs wide).
        """
        frame = pd.DataFrame(self.estimates.mean(axis=0), index=self.index, columns=CATE_COLUMNS)
        if self.standard_errors is None:
            return frame
        se = np.sqrt(np.mean(self.standard_errors**2, axis=0))
        for k, name in enumerate(CATE_COLUMNS):
            frame[f"{name}_low"] = frame[name] - Z95 * se[:, k]
            frame[f"{name}_high"] = frame[name] + Z95 * se[:, k]
        return frame


def splits(data: TrialData, *, folds: int, repeats: int, seed: int) -> list[tuple]:
    """``(repeat, fold, train_idx, test_idx)`` of repeated K-fold stratified on arm × event.

    Raises
    ------
    StratifyInputError
        If a stratum (arm × event) has fewer patients than folds, or a training
        part would lack events in an arm.
    """
    strata = data.arm * 2 + data.event.astype(int)
    names = ("control, censored", "control, event", "treated, censored", "treated, event")
    counts = np.bincount(strata, minlength=4)
    for code, count in enumerate(counts):
        if 0 < count < folds:
            raise StratifyInputError(
                f"cv.folds: {folds} folds, but only {count} patient(s) are {names[code]}; "
                f"use cv.folds ≤ {count}"
            )
    for arm, label in ((0, "control"), (1, "treated")):
        if counts[2 * arm + 1] < 2:
            raise StratifyInputError(
                f"cv: the {label} arm has {counts[2 * arm + 1]} event(s); learners need events "
                "in both arms of every training part"
            )
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    out = []
    for k, (train, test) in enumerate(cv.split(np.zeros(len(strata)), strata)):
        out.append((k // folds, k % folds, train, test))
    return out


def task_seed(seed: int, learner: int, repeat: int, fold: int) -> int:
    """The seed of one task: a function of its coordinates only."""
    return int(np.random.SeedSequence([seed, learner, repeat, fold]).generate_state(1)[0])


def cross_fit(
    learners: Sequence[NamedLearner],
    data: TrialData,
    *,
    horizon: float,
    folds: int,
    repeats: int,
    seed: int,
    n_jobs: int = 1,
) -> dict[str, CrossFit]:
    """Fit every learner on every training part and predict its held-out fold.

    Parameters
    ----------
    learners : sequence of NamedLearner
        Learners by registry name, with parameters and labels.
    data : TrialData
        The trial.
    horizon : float
        Horizon of the estimands (days).
    folds, repeats, seed : int
        Repeated stratified K-fold settings.
    n_jobs : int
        joblib workers (results do not depend on it).

    Returns
    -------
    dict of str to CrossFit
        By learner label, in the order given.
    """
    parts = splits(data, folds=folds, repeats=repeats, seed=seed)
    tasks = [
        (i, spec, r, f, train, test)
        for i, spec in enumerate(learners)
        for (r, f, train, test) in parts
    ]
    order = dispatch_order(len(learners), len(parts))
    done = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_fit_predict)(
            spec, data, train, test, horizon=horizon, seed=task_seed(seed, i, r, f)
        )
        for i, spec, r, f, train, test in (tasks[k] for k in order)
    )
    results = [None] * len(tasks)
    for k, result in zip(order, track(done, "cross-fitting", len(tasks)), strict=True):
        results[k] = result
    out = {}
    for i, spec in enumerate(learners):
        estimates = np.full((repeats, data.n_patients, 2), np.nan)
        errors = np.full_like(estimates, np.nan)
        rows = []
        for (j, _, r, f, _, test), (cate, se, metrics) in zip(tasks, results, strict=True):
            if j == i:
                estimates[r, test] = cate
                if se is not None:
                    errors[r, test] = se
                rows.append({"repeat": r, "fold": f, **metrics})
        has_se = not np.isnan(errors).all()
        out[spec.label] = CrossFit(
            spec.label, estimates, pd.DataFrame(rows), data.X.index, errors if has_se else None
        )
    return out


def dispatch_order(n_learners: int, n_parts: int) -> list[int]:
    """The order in which the (learner, part) tasks go to the workers: the first part of
    every learner, then the rest learner by learner.

    A learner's first task in a process pays its one-time costs (imports, and on a fresh
    install the compilation of the causal survival forest's numba code, ~25 s, cached on
    disk after). Sent first, each such task runs while the other workers go on with other
    tasks, so that the cost is paid once, not by every worker at once when that learner's
    tasks come up together. Task ``k`` is learner ``k // n_parts``, part ``k % n_parts``;
    the results do not depend on the order.
    """
    firsts = [i * n_parts for i in range(n_learners)]
    rest = [i * n_parts + j for i in range(n_learners) for j in range(1, n_parts)]
    return firsts + rest


def _fit_predict(spec: NamedLearner, data: TrialData, train, test, *, horizon, seed):
    """One task: fit on ``train``; predict benefit (with standard errors, if the learner
    gives them) and score risk on ``test``."""
    learner = make_learner(
        spec.name, spec.params, random_state=seed, modifier=data.modifier, horizon=horizon
    )
    X, y, arm = data.X, data.y, data.arm
    learner.fit(X.iloc[train], y[train], arm[train])
    X_test = X.iloc[test]
    se = None
    if hasattr(learner, "predict_cate_interval"):
        frame = learner.predict_cate_interval(X_test)
        se = frame[[f"{name}_se" for name in CATE_COLUMNS]].to_numpy()
    else:
        frame = learner.predict_cate(X_test)
    cate = frame[list(CATE_COLUMNS)].to_numpy()
    times = _brier_times(y[test], horizon)
    risk = learner.predict_risk(X_test, arm[test], horizon)
    surv = learner.predict_survival(X_test, arm[test], times) if times.size else None
    metrics = risk_metrics(y[train], y[test], risk, surv, times)
    return cate, se, metrics


def _brier_times(y_test: np.ndarray, horizon: float, n: int = 20) -> np.ndarray:
    """Times for the integrated Brier score: inside the held-out fold's follow-up."""
    event_times = y_test["time"][y_test["event"]]
    last = min(float(horizon), float(y_test["time"].max()))
    event_times = event_times[event_times < last]
    if event_times.size < 2:
        return np.array([])
    lo, hi = np.quantile(event_times, [0.1, 0.9])
    return np.unique(np.linspace(lo, hi, n))
