"""scikit-survival base models by name, and the plumbing every learner shares.

This module owns the fixed registry of base survival models that learners are
built from (:data:`BASE_MODELS`), the one way a fitted base model's survival
curves are evaluated at arbitrary times (:func:`survival_at`), the coarser time
grid that makes forests affordable on large cohorts (:func:`coarsen_times`),
and the checks of ``fit``/``predict`` inputs common to all learners. Configs
name base models from the registry, never by import path.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import validate_data
from sksurv.ensemble import (
    ExtraSurvivalTrees,
    GradientBoostingSurvivalAnalysis,
    RandomSurvivalForest,
)
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import check_y_survival

from stratify.exceptions import StratifyInputError


def _rsf(random_state):
    # Small trials: shallow trees (at least 10 deaths or survivors per leaf), a third of
    # the features per split. Each tree costs ~2.5 ms of fixed overhead whatever n is, so
    # 100 trees is the compromise between Monte Carlo noise and the cross-fitting budget.
    # low_memory=False keeps the per-leaf survival curves (predict_survival_function).
    return RandomSurvivalForest(
        n_estimators=100,
        min_samples_leaf=10,
        max_features="sqrt",
        n_jobs=1,
        low_memory=False,
        random_state=random_state,
    )


def _gbsa(random_state):
    return GradientBoostingSurvivalAnalysis(
        loss="coxph",
        n_estimators=100,
        learning_rate=0.05,
        max_depth=2,
        min_samples_leaf=10,
        subsample=0.8,
        random_state=random_state,
    )


def _coxph(random_state):
    # Standardised so that the small ridge penalty means the same for every covariate
    # whatever its units; the ridge keeps Newton-Raphson finite under (quasi-)separation.
    # Efron ties, as the classical analysis (stratify.trial) uses.
    del random_state  # deterministic
    return make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis(alpha=1e-2, ties="efron"))


_FORESTS = (RandomSurvivalForest, ExtraSurvivalTrees)

#: Base survival models by name: a function of ``random_state`` returning an unfitted model.
BASE_MODELS: dict[str, Callable[[int | None], BaseEstimator]] = {
    "rsf": _rsf,
    "gbsa": _gbsa,
    "coxph": _coxph,
}


def make_base_model(
    name: str, params: dict | None = None, *, random_state: int | None = None
) -> BaseEstimator:
    """Build an unfitted base survival model from the registry.

    Parameters
    ----------
    name : {"rsf", "gbsa", "coxph"}
        ``"rsf"``: :class:`~sksurv.ensemble.RandomSurvivalForest` (100 trees,
        ``min_samples_leaf=10``, ``max_features="sqrt"``); ``"gbsa"``:
        :class:`~sksurv.ensemble.GradientBoostingSurvivalAnalysis` (Cox loss,
        100 depth-2 trees, learning rate 0.05, subsample 0.8); ``"coxph"``:
        :class:`~sksurv.linear_model.CoxPHSurvivalAnalysis` on standardised
        covariates (ridge ``alpha=0.01``, Efron ties).
    params : dict, optional
        Parameters overriding the defaults, named as in the scikit-survival
        estimator (for ``"coxph"``, those of ``CoxPHSurvivalAnalysis``). The
        controls that matter on large cohorts are checked here (see
        :data:`CONTROLS`): ``n_estimators``, ``min_samples_leaf``,
        ``max_samples`` (patients drawn for each tree: an integer, or a
        fraction of the training patients), ``max_features``, ``n_jobs``
        (threads growing and applying the trees) and ``low_memory``.
    random_state : int, optional
        Seed of the model's randomness (ignored by ``"coxph"``).

    Returns
    -------
    sklearn.base.BaseEstimator
        An unfitted scikit-survival estimator (or a pipeline ending in one).

    Raises
    ------
    StratifyInputError
        If ``name`` is not in :data:`BASE_MODELS`, a parameter is unknown, or
        a control of :data:`CONTROLS` has an invalid value.

    Examples
    --------
    >>> make_base_model("rsf", {"n_estimators": 50}, random_state=0).n_estimators
    50
    """
    if name not in BASE_MODELS:
        valid = ", ".join(repr(k) for k in BASE_MODELS)
        raise StratifyInputError(f"unknown base model {name!r}; valid base models: {valid}")
    model = BASE_MODELS[name](random_state)
    params = dict(params or {})
    target = final_estimator(model)
    valid_params = sorted(target.get_params(deep=False))
    for key in params:
        if key == "random_state":
            raise StratifyInputError(
                f"base model {name!r}: random_state comes from the learner's seed, not base_params"
            )
        if key not in valid_params:
            raise StratifyInputError(
                f"unknown parameter {key!r} for base model {name!r}; "
                f"valid parameters: {', '.join(valid_params)}"
            )
        if key in CONTROLS:
            try:
                CONTROLS[key](params[key], key)
            except StratifyInputError as err:
                raise StratifyInputError(f"base model {name!r}: {err}") from None
    target.set_params(**params)
    return model


def check_fraction_or_count(value, name: str, *, none: bool = False, strict: bool = True):
    """An integer of at least 1, or a fraction in (0, 1] (``strict``: (0, 1)); None if ``none``."""
    if value is None and none:
        return None
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    is_fraction = isinstance(value, Real) and not isinstance(value, bool | Integral)
    if is_fraction and (0 < value < 1 or (value == 1 and not strict)):
        return float(value)
    fraction = "(0, 1)" if strict else "(0, 1]"
    allowed = f"an integer >= 1 or a fraction in {fraction}"
    raise StratifyInputError(f"{name} must be {'None, ' if none else ''}{allowed} (got {value!r})")


def _check_max_features(value, name: str):
    if value in ("sqrt", "log2"):
        return value
    try:
        return check_fraction_or_count(value, name, none=True, strict=False)
    except StratifyInputError:
        raise StratifyInputError(
            f"{name} must be 'sqrt', 'log2', None, an integer >= 1 or a fraction in (0, 1] "
            f"(got {value!r})"
        ) from None


def _check_n_jobs(value, name: str):
    if value is None or (
        isinstance(value, Integral) and not isinstance(value, bool) and value != 0
    ):
        return value
    raise StratifyInputError(
        f"{name} must be None or a non-zero integer (-1: all cores; got {value!r})"
    )


def _check_bool(value, name: str):
    if isinstance(value, bool):
        return value
    raise StratifyInputError(f"{name} must be true or false (got {value!r})")


#: Base-model parameters that decide cost on large cohorts, with the check of their values.
CONTROLS: dict[str, Callable] = {
    "n_estimators": lambda v, name: check_integer(v, name, 1),
    "min_samples_leaf": check_fraction_or_count,
    "max_samples": lambda v, name: check_fraction_or_count(v, name, none=True, strict=False),
    "max_features": _check_max_features,
    "n_jobs": _check_n_jobs,
    "low_memory": _check_bool,
}


def fit_base_model(
    name: str,
    params: dict | None,
    random_state: int | None,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    max_bins: int | None = None,
) -> BaseEstimator:
    """Build a base model (:func:`make_base_model`) and fit it on ``(X, y)``.

    An integer ``max_samples`` above the number of patients the model is
    fitted on (a small fold, one arm) is capped at that number: every tree
    then draws a full-size bootstrap sample.

    Parameters
    ----------
    name, params, random_state
        As for :func:`make_base_model`.
    X : pandas.DataFrame
        Covariates (float).
    y : numpy.ndarray
        ``Surv`` outcome.
    max_bins : int, optional
        Forests only: split each covariate at no more than ``max_bins - 1``
        of its quantiles (:func:`quantile_edges`); the fitted forest still
        takes the covariates as they are.

    Returns
    -------
    sklearn.base.BaseEstimator
        The fitted model.
    """
    params = dict(params or {})
    samples = params.get("max_samples")
    if isinstance(samples, Integral) and samples > len(y):
        params["max_samples"] = len(y)
    model = make_base_model(name, params, random_state=random_state)
    if max_bins is None:
        model.fit(X, y)
    elif not isinstance(model, _FORESTS):
        raise StratifyInputError(f"max_bins applies to forests, not to base model {name!r}")
    else:
        edges = quantile_edges(X, max_bins)
        model.fit(bin_covariates(X, edges), y)
        restore_thresholds(model, edges)
    complete_single_time_curves(model)
    return model


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
    if not isinstance(forest, _FORESTS) or forest.low_memory or forest.unique_times_.size != 1:
        return
    for tree in forest.estimators_:
        value = tree.tree_.value  # a view of the tree's nodes: written in place
        value[:, :, 1] = 1.0 - value[:, :, 0]


def quantile_edges(X: pd.DataFrame, max_bins: int) -> dict[int, np.ndarray]:
    """Bin edges of the covariates with more than ``max_bins`` distinct values.

    A survival forest's log-rank split search costs, per covariate and node,
    a pass over the node's patients for *every* candidate threshold (in
    scikit-survival 0.28), so a continuous covariate costs the square of the
    node's size; with at most ``max_bins`` distinct values it costs
    ``max_bins`` passes. The edges of a covariate are its ``max_bins``
    quantiles (observed values, as float32 as the trees compare them); each
    value is then represented by the first edge at or above it
    (:func:`bin_covariates`), so that a split between two edges means "at or
    below the lower edge" for the original values too
    (:func:`restore_thresholds`).

    Parameters
    ----------
    X : pandas.DataFrame
        Covariates.
    max_bins : int
        Largest number of distinct values a covariate keeps (at least 2).

    Returns
    -------
    dict of int to numpy.ndarray
        Column position -> increasing edges (float64 values of float32
        numbers), for the columns that are binned.
    """
    max_bins = check_integer(max_bins, "max_bins", 2)
    values = np.asarray(X, dtype=np.float32).astype(np.float64)
    levels = np.arange(1, max_bins + 1) / max_bins
    edges = {}
    for j in range(values.shape[1]):
        column = values[:, j]
        if np.unique(column).size > max_bins:
            edges[j] = np.unique(np.quantile(column, levels, method="inverted_cdf"))
    return edges


def bin_covariates(X: pd.DataFrame, edges: dict[int, np.ndarray]) -> pd.DataFrame:
    """``X`` with each binned covariate replaced by the first edge at or above its value.

    Values are compared as float32 (as the trees compare them); values above
    the last edge take the last edge.
    """
    values = np.asarray(X, dtype=np.float32).astype(np.float64)
    for j, e in edges.items():
        position = np.searchsorted(e, values[:, j], side="left")
        values[:, j] = e[np.minimum(position, e.size - 1)]
    return pd.DataFrame(values, index=X.index, columns=X.columns)


def restore_thresholds(forest, edges: dict[int, np.ndarray]) -> None:
    """Make a forest grown on binned covariates (:func:`bin_covariates`) take the original values.

    A split of a binned covariate lies between two consecutive edges ``e_k``
    and ``e_k+1`` (the trees put it at their midpoint); its patients at or
    below ``e_k`` after binning are exactly those at or below ``e_k`` before
    it, so the threshold becomes ``e_k``. The trees then route every original
    covariate vector (compared in float32, as scikit-learn does) exactly as
    they route its binned version: predictions, curves and SHAP values of the
    forest on the original covariates are those of the binned fit.

    Parameters
    ----------
    forest : RandomSurvivalForest or ExtraSurvivalTrees
        Fitted on ``bin_covariates(X, edges)``; changed in place.
    edges : dict of int to numpy.ndarray
        From :func:`quantile_edges`.
    """
    for tree in forest.estimators_:
        split = tree.tree_.children_left >= 0
        feature = tree.tree_.feature
        threshold = tree.tree_.threshold  # a view of the tree's nodes: written in place
        for j, e in edges.items():
            nodes = split & (feature == j)
            lower = np.searchsorted(e, threshold[nodes], side="right") - 1
            threshold[nodes] = e[lower]


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
    if isinstance(model, _FORESTS) and not model.low_memory and not predict_kwargs:
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


def coarsen_times(y: np.ndarray, n_points: int, horizon: float | None = None):
    """Round every time up to a grid of at most ``n_points`` times: a forest's time grid.

    A survival forest stores, in every node, its curves at every distinct
    training time, and its log-rank splits cost one pass over those times per
    candidate split; on tens of thousands of patients (thousands of distinct
    days) both dominate. Fitting on times rounded up to a grid bounds both by
    the grid's size.

    The grid is ``n_points - 1`` quantiles of the event times (equal numbers
    of events between consecutive points, the last at the latest event; all
    ``n_points`` of them without a horizon), plus ``horizon``. Each time, event
    or censoring, becomes the first grid point at or after it; times after the
    last grid point become the last.

    Parameters
    ----------
    y : numpy.ndarray
        ``Surv`` outcome with at least one event.
    n_points : int
        Largest number of grid points (at least 2).
    horizon : float, optional
        A time the curves must be right at (the analysis horizon): added to the
        grid.

    Returns
    -------
    y_coarse : numpy.ndarray
        ``y`` with its times rounded up to the grid (same fields).
    grid : numpy.ndarray
        The grid, increasing.

    Notes
    -----
    What it approximates: at every grid point, the horizon included, the
    deaths counted up to that point are exactly those observed up to it; a
    patient censored between two grid points is counted at risk for the deaths
    of that interval (as if censored at its end), which understates the hazard
    by that interval's censored share of its risk set -- small when the grid is
    fine relative to censoring. Between grid points a curve keeps its value at
    the previous grid point, so it is never evaluated past the deaths it has
    counted, and restricted mean survival is overstated by at most the sum over
    intervals of (survival drop x interval width), below the widest interval
    before the horizon times the probability of death by the horizon. Effects
    (differences between arms) share the same grid, so most of this cancels.

    Examples
    --------
    >>> from sksurv.util import Surv
    >>> y = Surv.from_arrays([True, True, False, True, True], [3.0, 5.0, 6.0, 8.0, 13.0])
    >>> y_coarse, grid = coarsen_times(y, 3, horizon=10.0)
    >>> grid.tolist(), y_coarse["time"].tolist()
    ([5.0, 10.0, 13.0], [5.0, 5.0, 10.0, 10.0, 13.0])
    """
    event, time = check_y_survival(y)
    n_points = check_integer(n_points, "time_grid", 2)
    time = np.asarray(time, dtype=float)
    levels = n_points - (horizon is not None)
    quantiles = np.arange(1, levels + 1) / levels
    grid = np.quantile(time[event], quantiles, method="inverted_cdf")
    if horizon is not None:
        grid = np.append(grid, float(horizon))
    grid = np.unique(grid)
    position = np.minimum(np.searchsorted(grid, time, side="left"), grid.size - 1)
    y_coarse = y.copy()
    y_coarse[y.dtype.names[1]] = grid[position]
    return y_coarse, grid


def event_times(y: np.ndarray) -> np.ndarray:
    """Distinct event times of a ``Surv`` outcome, sorted."""
    event, time = check_y_survival(y)
    return np.unique(np.asarray(time, dtype=float)[event])


def check_fit_inputs(X, y, arm) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Validate ``fit(X, y, arm)`` inputs of a learner.

    Parameters
    ----------
    X : pandas.DataFrame or array-like
        Numeric, finite covariates (arrays get columns ``x0, x1, ...``).
    y : numpy.ndarray
        ``Surv`` structured array (event, time).
    arm : array-like
        0/1 per patient, both arms present.

    Returns
    -------
    tuple
        ``(X, y, arm)`` as a float DataFrame, the outcome, and an int array.

    Raises
    ------
    StratifyInputError
        With a one-line message saying what is wrong.
    """
    X = check_covariates(X)
    event, _ = check_y_survival(y)
    arm = np.asarray(arm)
    if arm.ndim != 1 or not (len(X) == len(event) == arm.size):
        raise StratifyInputError(
            f"X, y and arm must describe the same patients (got {len(X)}, {len(event)}, "
            f"{arm.size} rows)"
        )
    if not np.isin(arm, (0, 1)).all() or np.unique(arm).size < 2:
        raise StratifyInputError("arm must be 0 (control) or 1 (treated), with both arms present")
    return X, y, arm.astype(int)


def check_covariates(X) -> pd.DataFrame:
    """``X`` as a float DataFrame, refusing non-numeric or non-finite values."""
    if not isinstance(X, pd.DataFrame):
        X = np.asarray(X)
        if X.ndim != 2:
            raise StratifyInputError(f"X must be 2-dimensional (got shape {X.shape})")
        X = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    try:
        X = X.astype(float)
    except (TypeError, ValueError) as err:
        raise StratifyInputError(f"X must be numeric ({err})") from None
    if not np.isfinite(X.to_numpy()).all():
        raise StratifyInputError("X must not contain missing or infinite values")
    return X


def check_times(times) -> np.ndarray:
    """``times`` as a 1-d float array, non-negative and non-decreasing."""
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.ndim != 1 or (times < 0).any() or (np.diff(times) < 0).any():
        raise StratifyInputError("times must be a 1-d, non-negative, non-decreasing array")
    return times


def check_integer(value, name: str, minimum: int) -> int:
    """A learner parameter that must be an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise StratifyInputError(f"{name} must be an integer >= {minimum} (got {value!r})")
    return int(value)


def check_number(value, name: str, low: float, high: float) -> float:
    """A learner parameter that must be a number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not low <= value <= high:
        raise StratifyInputError(f"{name} must be a number in [{low:g}, {high:g}] (got {value!r})")
    return float(value)


def check_base(base, base_params) -> None:
    """Refuse an unknown base model, unknown or invalid ``base_params``, or a non-dict.

    Learners need survival curves, so ``low_memory=True`` (trees that keep
    only the risk score) is refused too; a time grid is how to shrink the
    curves a forest stores.
    """
    if base_params is not None and not isinstance(base_params, dict):
        raise StratifyInputError(f"base_params must be a mapping (got {base_params!r})")
    make_base_model(base, base_params)
    if (base_params or {}).get("low_memory"):
        raise StratifyInputError(
            "base_params low_memory=True keeps only a risk score in the trees, but learners need "
            "survival curves; set time_grid to shrink the curves the forest stores instead"
        )


def check_coarsening(base, time_grid, max_bins, horizon) -> None:
    """Refuse invalid coarsening parameters of a learner.

    ``time_grid`` and ``max_bins`` must be None or integers >= 2, ``time_grid``
    needs the ``horizon`` (positive) so that the grid contains it, and
    ``max_bins`` needs a forest.
    """
    if time_grid is not None:
        check_integer(time_grid, "time_grid", 2)
        if horizon is None:
            raise StratifyInputError(
                "time_grid needs the horizon, which the grid must contain (the experiment sets "
                "it; pass horizon= when building the learner yourself)"
            )
    if max_bins is not None:
        check_integer(max_bins, "max_bins", 2)
        if not isinstance(make_base_model(base), _FORESTS):
            raise StratifyInputError(
                f"max_bins applies to forests (base 'rsf'), not to base model {base!r}"
            )
    if horizon is not None:
        check_number(horizon, "horizon", 1e-12, np.inf)


def fit_outcome(y: np.ndarray, time_grid, horizon) -> tuple[np.ndarray, np.ndarray | None]:
    """The outcome a learner's base models are fitted on, and its time grid (None: exact times).

    Parameters
    ----------
    y : numpy.ndarray
        ``Surv`` outcome.
    time_grid : int or None
        None: the exact times; otherwise see :func:`coarsen_times`.
    horizon : float or None
        Added to the grid.

    Returns
    -------
    tuple
        ``(y, None)`` or ``coarsen_times(y, time_grid, horizon)``.
    """
    if time_grid is None:
        return y, None
    return coarsen_times(y, time_grid, horizon)


def by_arm(survival: Callable[[int], np.ndarray], arm, n_patients: int) -> np.ndarray:
    """Survival under ``arm``: one arm for everybody, or each patient's own.

    Parameters
    ----------
    survival : callable
        ``survival(a)`` gives the curves of all patients under arm ``a``.
    arm : int or array-like
        0, 1, or one 0/1 value per patient.
    n_patients : int
        Number of patients.

    Returns
    -------
    numpy.ndarray of shape (n_patients, n_times)
    """
    if np.ndim(arm) == 0:
        if isinstance(arm, bool) or not isinstance(arm, Integral) or arm not in (0, 1):
            raise StratifyInputError(f"arm must be 0 or 1 (got {arm!r})")
        return survival(int(arm))
    arm = np.asarray(arm)
    if arm.shape != (n_patients,) or not np.isin(arm, (0, 1)).all():
        raise StratifyInputError("arm must be 0, 1, or one 0/1 value per patient")
    return np.where(arm[:, None] == 1, survival(1), survival(0))
