"""Evaluating fitted scikit-survival models' survival curves at chosen times.

Every learner reads its base models' curves through :func:`survival_at`:
survival forests from the leaves the patients fall in
(:func:`forest_survival_at`), Cox models from their Breslow baseline
(:func:`ph_survival_at`), other models through scikit-survival's step
functions. The curves are right-continuous step functions: 1 before the first
training time, their last value after the last.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import validate_data
from sksurv.ensemble import ExtraSurvivalTrees, RandomSurvivalForest
from sksurv.util import check_y_survival

#: Survival forests, whose curves are read from their leaves.
FORESTS = (RandomSurvivalForest, ExtraSurvivalTrees)


def final_estimator(model: BaseEstimator) -> BaseEstimator:
    """The survival estimator itself: the last step of a pipeline, else ``model``."""
    return model[-1] if isinstance(model, Pipeline) else model


def survival_at(model: BaseEstimator, X, times: np.ndarray, **predict_kwargs) -> np.ndarray:
    """Evaluate a fitted scikit-survival model's survival curves at ``times``.

    The curves are right-continuous step functions known at the model's
    ``unique_times_``; they equal 1 before the first of them and stay at their
    last value after the last. Survival forests are evaluated at ``times``
    only (:func:`forest_survival_at`); other models through one call to
    ``predict_survival_function(..., return_array=True)`` and a search.

    Parameters
    ----------
    model : sklearn.base.BaseEstimator
        A fitted model with ``predict_survival_function`` (or a pipeline ending
        in one).
    X : array-like of shape (n_patients, n_features)
        Covariates as the model was fitted on.
    times : array-like of shape (n_times,)
        Non-negative times.
    **predict_kwargs
        Passed to ``predict_survival_function`` (e.g. Coxnet's ``alpha``).

    Returns
    -------
    numpy.ndarray of shape (n_patients, n_times)
        ``S(t | x)``.
    """
    if isinstance(model, FORESTS) and not model.low_memory and not predict_kwargs:
        return forest_survival_at(model, X, times)
    surv = np.asarray(model.predict_survival_function(X, return_array=True, **predict_kwargs))
    known = np.asarray(final_estimator(model).unique_times_, dtype=float)
    idx = np.searchsorted(known, np.asarray(times, dtype=float), side="right") - 1
    out = np.ones((surv.shape[0], idx.size))
    after_start = idx >= 0
    out[:, after_start] = surv[:, idx[after_start]]
    return out


def forest_survival_at(forest, X, times: np.ndarray) -> np.ndarray:
    """A survival forest's curves at ``times`` only, from the leaves the patients fall in.

    scikit-survival's ``predict_survival_function`` builds every patient's
    curve at all ``unique_times_`` (and each tree's at the same size on the
    way): on a large cohort fitted without a time grid, patients x distinct
    times floats. Here each tree contributes only the ``times`` columns of its
    leaf curves, summed over the trees in their order and divided by their
    number, as scikit-survival does, so the values are identical to its own.

    Parameters
    ----------
    forest : RandomSurvivalForest or ExtraSurvivalTrees
        Fitted with ``low_memory=False``.
    X : array-like of shape (n_patients, n_features)
        Covariates as the forest was fitted on.
    times : array-like of shape (n_times,)
        Non-negative times.

    Returns
    -------
    numpy.ndarray of shape (n_patients, n_times)
        ``S(t | x)``: 1 before the first of ``unique_times_``, the last value
        after the last. A forest fitted on a single distinct time, whose
        survival scikit-survival cannot predict, is read from its cumulative
        hazard (:func:`complete_single_time_curves`).
    """
    # checked once, then each tree's leaves straight from the tree: the forest's own apply
    # dispatches every tree through joblib, which costs more than the trees at trial size
    X = validate_data(forest, X, dtype=np.float32, reset=False, order="C")
    known = np.asarray(forest.unique_times_, dtype=float)
    idx = np.searchsorted(known, np.asarray(times, dtype=float), side="right") - 1
    after_start = idx >= 0
    total = np.zeros((X.shape[0], int(after_start.sum())))
    single_time = known.size == 1  # survival 1 - d/n (see complete_single_time_curves)
    for tree in forest.estimators_:
        if single_time:
            node_curves = 1.0 - tree.tree_.value[:, idx[after_start], 0]
        else:
            node_curves = tree.tree_.value[:, idx[after_start], 1]  # survival, every node
        total += node_curves[tree.apply(X, check_input=False)]
    total /= len(forest.estimators_)
    out = np.ones((X.shape[0], idx.size))
    out[:, after_start] = total
    return out


def complete_single_time_curves(forest) -> None:
    """Write the survival curves into a forest fitted on a single distinct time.

    scikit-survival (0.28) takes a tree with one output for a low-memory tree:
    when every training time is the same (every patient of an arm followed to
    the horizon, or all times rounded to one grid point), each node keeps its
    Nelson-Aalen cumulative hazard ``d / n`` at that time but its survival
    column stays 0, and the forest's ``predict_survival_function`` fails on
    the shapes. With one time, Kaplan-Meier survival is ``1 - d / n``: it is
    written into every node, in place, so that the node curves read by
    :func:`forest_survival_at` and by the tree explainers are right. Other
    models, low-memory forests and forests with several times are left alone.

    Parameters
    ----------
    forest : sklearn.base.BaseEstimator
        A fitted base model.
    """
    if not isinstance(forest, FORESTS) or forest.low_memory or forest.unique_times_.size != 1:
        return
    for tree in forest.estimators_:
        value = tree.tree_.value  # a view of the tree's nodes: written in place
        value[:, :, 1] = 1.0 - value[:, :, 0]


def ph_survival_at(baseline_survival, linear_predictor, times: np.ndarray) -> np.ndarray:
    """Proportional-hazards survival ``S0(t) ** exp(lp)`` at ``times``, for all patients at once.

    What scikit-survival's Cox models return from ``predict_survival_function``
    (Breslow baseline ``S0``; see ``BreslowEstimator.get_survival_function``),
    without building one step function per patient: explaining a Cox learner
    evaluates it on hundreds of thousands of masked patients.

    Parameters
    ----------
    baseline_survival : sksurv.functions.StepFunction
        Baseline survival (``x``: its times, ``y``: its values).
    linear_predictor : array-like of shape (n_patients,)
        ``X @ coef`` on the scale the baseline was fitted on.
    times : array-like of shape (n_times,)
        Non-negative times; before the first known time survival is 1.

    Returns
    -------
    numpy.ndarray of shape (n_patients, n_times)
    """
    known = np.asarray(baseline_survival.x, dtype=float)
    base = np.asarray(baseline_survival.y, dtype=float)
    risk = np.exp(np.asarray(linear_predictor, dtype=float))
    idx = np.searchsorted(known, np.asarray(times, dtype=float), side="right") - 1
    out = np.ones((risk.size, idx.size))
    after_start = idx >= 0
    out[:, after_start] = np.power(base[idx[after_start]][None, :], risk[:, None])
    return out


def event_times(y: np.ndarray) -> np.ndarray:
    """Distinct event times of a ``Surv`` outcome, sorted."""
    event, time = check_y_survival(y)
    return np.unique(np.asarray(time, dtype=float)[event])
