"""Checks of the data learners are fitted on and predict for.

Parameters are checked elsewhere (:mod:`stratify.learners.params`, against
each learner's table); here are the checks of ``X``, ``y``, ``arm`` and
``times``, the same for every learner, each refusal one line.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral

import numpy as np
import pandas as pd
from sksurv.util import check_y_survival

from stratify.exceptions import StratifyInputError


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
