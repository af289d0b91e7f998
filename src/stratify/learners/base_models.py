"""scikit-survival base models by name, and the plumbing every learner shares.

This module owns the fixed registry of base survival models that learners are
built from (:data:`BASE_MODELS`), the one way a fitted base model's survival
curves are evaluated at arbitrary times (:func:`survival_at`), and the checks
of ``fit``/``predict`` inputs common to all learners. Configs name base models
from the registry, never by import path.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
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
        estimator (for ``"coxph"``, those of ``CoxPHSurvivalAnalysis``).
    random_state : int, optional
        Seed of the model's randomness (ignored by ``"coxph"``).

    Returns
    -------
    sklearn.base.BaseEstimator
        An unfitted scikit-survival estimator (or a pipeline ending in one).

    Raises
    ------
    StratifyInputError
        If ``name`` is not in :data:`BASE_MODELS` or a parameter is unknown.

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
    target.set_params(**params)
    return model


def final_estimator(model: BaseEstimator) -> BaseEstimator:
    """The survival estimator itself: the last step of a pipeline, else ``model``."""
    return model[-1] if isinstance(model, Pipeline) else model


def survival_at(model: BaseEstimator, X, times: np.ndarray, **predict_kwargs) -> np.ndarray:
    """Evaluate a fitted scikit-survival model's survival curves at ``times``.

    The curves are right-continuous step functions known at the model's
    ``unique_times_``; they equal 1 before the first of them and stay at their
    last value after the last. Vectorised: one call to
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
    surv = np.asarray(model.predict_survival_function(X, return_array=True, **predict_kwargs))
    known = np.asarray(final_estimator(model).unique_times_, dtype=float)
    idx = np.searchsorted(known, np.asarray(times, dtype=float), side="right") - 1
    out = np.ones((surv.shape[0], idx.size))
    after_start = idx >= 0
    out[:, after_start] = surv[:, idx[after_start]]
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
    """Refuse an unknown base model, unknown base parameters, or non-dict ``base_params``."""
    if base_params is not None and not isinstance(base_params, dict):
        raise StratifyInputError(f"base_params must be a mapping (got {base_params!r})")
    make_base_model(base, base_params)


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
