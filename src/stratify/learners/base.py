"""The contract every treatment-effect learner keeps, and what follows from it.

A learner estimates each patient's survival curve under either arm,
``S_a(t | x)``. From the two curves follow the patient's estimated benefit at a
horizon, ``cate_surv = S_1(h | x) - S_0(h | x)`` and
``cate_rmst = ∫_0^h S_1(t | x) - S_0(t | x) dt`` (days; positive means the
treatment extends life), and a risk score for the arm actually received.

Learners follow scikit-learn's estimator contract (``__init__`` stores
parameters only; ``fit`` validates and sets ``name_`` attributes; ``get_params``
and ``clone`` work) with one addition: ``fit(X, y, arm)`` also takes the 0/1 arm.
``y`` is a scikit-survival structured array (``sksurv.util.Surv``).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from stratify.learners.base_models import by_arm, check_covariates, check_times

CATE_COLUMNS = ("cate_rmst", "cate_surv")


class CATELearner(BaseEstimator, metaclass=ABCMeta):
    """Base class of survival treatment-effect learners.

    Subclasses implement :meth:`fit` and ``_survival_under(X, arm, times)`` (the
    curves of all patients under one arm); input checks, per-patient arms, the
    effect estimates and risk scores are handled here, the same way for every learner.
    """

    @abstractmethod
    def fit(self, X: pd.DataFrame, y: np.ndarray, arm: np.ndarray) -> CATELearner:
        """Fit on covariates ``X``, outcome ``y`` (``Surv``) and arm (0/1); return ``self``."""

    def predict_survival(self, X: pd.DataFrame, arm: int | np.ndarray, times: np.ndarray):
        """Survival probabilities ``S_arm(t | x)``, shape ``(n_patients, len(times))``.

        Parameters
        ----------
        X : pandas.DataFrame
            Covariates, columns as in :meth:`fit`.
        arm : int or array-like
            0, 1, or each patient's arm.
        times : array-like
            Non-negative, non-decreasing times (days).

        Returns
        -------
        numpy.ndarray
        """
        check_is_fitted(self)
        X, times = check_covariates(X), check_times(times)
        return by_arm(lambda a: self._survival_under(X, a, times), arm, len(X))

    @abstractmethod
    def _survival_under(self, X: pd.DataFrame, arm: int, times: np.ndarray) -> np.ndarray:
        """Curves of every patient under one arm (0 or 1); inputs already checked."""

    def predict_cate(self, X: pd.DataFrame, horizon: float) -> pd.DataFrame:
        """Estimated benefit per patient at ``horizon``.

        Returns
        -------
        pandas.DataFrame
            Columns ``cate_rmst`` (days) and ``cate_surv``, indexed like ``X``.
        """
        check_is_fitted(self)
        grid = rmst_grid(self, horizon)
        s0 = self.predict_survival(X, 0, grid)
        s1 = self.predict_survival(X, 1, grid)
        return pd.DataFrame(
            {
                "cate_rmst": restricted_mean(s1, grid) - restricted_mean(s0, grid),
                "cate_surv": s1[:, -1] - s0[:, -1],
            },
            index=getattr(X, "index", None),
        )

    def predict_risk(self, X: pd.DataFrame, arm: int | np.ndarray, horizon: float) -> np.ndarray:
        """Risk score under ``arm`` for concordance: 1 − RMST up to ``horizon`` / horizon.

        Higher means earlier death; comparable across learners.
        """
        check_is_fitted(self)
        grid = rmst_grid(self, horizon)
        return 1.0 - restricted_mean(self.predict_survival(X, arm, grid), grid) / horizon


def rmst_grid(learner: CATELearner, horizon: float) -> np.ndarray:
    """Time points for integrating survival to ``horizon``.

    The distinct event times seen in fitting (``event_times_``, where survival
    curves step) below ``horizon``, with 0 and ``horizon`` added: integrating
    the step function on this grid is exact.
    """
    times = np.asarray(getattr(learner, "event_times_", ()), dtype=float)
    times = times[(times > 0) & (times < horizon)]
    return np.concatenate([[0.0], times, [float(horizon)]])


def restricted_mean(surv: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """∫ S(t) dt over ``grid`` for right-continuous step curves evaluated on ``grid``.

    ``surv[:, k]`` is the value on ``[grid[k], grid[k + 1])``.
    """
    widths = np.diff(grid)
    return surv[:, :-1] @ widths
