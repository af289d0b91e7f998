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

Every learner takes its ``horizon`` (days) as a parameter, which
:meth:`CATELearner.predict_cate` uses, and declares what each of its
parameters may be in one table, ``_param_constraints``
(:mod:`stratify.learners.params`), checked by ``fit`` and by
:func:`stratify.learners.registry.make_learner`.
"""

from __future__ import annotations

import copy
import math
from abc import ABCMeta, abstractmethod
from numbers import Real
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from stratify.exceptions import StratifyInputError
from stratify.learners.checks import by_arm, check_covariates, check_times
from stratify.learners.params import Interval, Rule, check_params

CATE_COLUMNS = ("cate_rmst", "cate_surv")

#: The horizon every learner takes: None (not set yet) or a positive number of days.
HORIZON = [None, Interval(Real, 0, None, closed="neither")]

#: The rule of learners fitted for one horizon (their estimates are specific to it).
HORIZON_REQUIRED = Rule(
    lambda p: p["horizon"] is not None,
    "horizon is None, but the learner needs the horizon it estimates effects at (the "
    "experiment sets it; pass horizon= when building the learner yourself)",
)


class CATELearner(BaseEstimator, metaclass=ABCMeta):
    """Base class of survival treatment-effect learners.

    Subclasses implement :meth:`fit` and ``_survival_under(X, arm, times)`` (the
    curves of all patients under one arm), declare their parameters in
    ``_param_constraints`` (and ``_param_rules``), and call
    :meth:`_check_params` first thing in :meth:`fit`; input checks, per-patient
    arms, the horizon, the effect estimates and risk scores are handled here,
    the same way for every learner.
    """

    #: Parameter name -> allowed kinds (see :mod:`stratify.learners.params`).
    _param_constraints: ClassVar[dict] = {"horizon": HORIZON}
    #: Conditions relating parameters, checked after the table.
    _param_rules: ClassVar[tuple] = ()

    def _check_params(self) -> None:
        """Check the parameters against the class's table and rules.

        Raises
        ------
        StratifyInputError
            One line naming the learner's class and the parameter.
        """
        try:
            check_learner_params(self)
        except StratifyInputError as err:
            raise StratifyInputError(f"{type(self).__name__}: {err}") from None

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

    def predict_cate(self, X: pd.DataFrame) -> pd.DataFrame:
        """Estimated benefit per patient at the learner's ``horizon``.

        Parameters
        ----------
        X : pandas.DataFrame
            Covariates, columns as in :meth:`fit`.

        Returns
        -------
        pandas.DataFrame
            Columns ``cate_rmst`` (days) and ``cate_surv``, indexed like ``X``.

        Raises
        ------
        StratifyInputError
            If the learner has no horizon (see :meth:`_prediction_horizon`).
        """
        check_is_fitted(self)
        grid = rmst_grid(self, self._prediction_horizon())
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

    def _prediction_horizon(self) -> float:
        """The horizon effects are estimated at: the ``horizon`` parameter, checked.

        Learners fitted for one horizon (``horizon_`` set by ``fit``) refuse
        a horizon changed since (``set_params``); others estimate at their
        parameter, whatever it was when they were fitted (their curves hold
        at every time).

        Raises
        ------
        StratifyInputError
            One line: no horizon, an invalid one, or not the fitted one.
        """
        name = type(self).__name__
        horizon = getattr(self, "horizon", None)
        if horizon is None:
            raise StratifyInputError(
                f"{name} has no horizon to estimate effects at: build it with horizon= "
                "(the experiment sets it)"
            )
        try:
            check_params({"horizon": HORIZON}, {"horizon": horizon})
        except StratifyInputError as err:
            raise StratifyInputError(f"{name}: {err}") from None
        fitted = getattr(self, "horizon_", None)
        if fitted is not None and not math.isclose(float(horizon), fitted, rel_tol=1e-9):
            raise StratifyInputError(
                f"{name} was fitted for horizon {fitted:g}; it cannot estimate effects at "
                f"{float(horizon):g} without refitting"
            )
        return float(horizon)


def check_learner_params(learner: CATELearner) -> None:
    """Check a learner's parameters against its class's table and rules (no message prefix).

    Parameters
    ----------
    learner : CATELearner
        A learner (fitted or not).

    Raises
    ------
    StratifyInputError
        One line naming the parameter.
    """
    cls = type(learner)
    check_params(cls._param_constraints, learner.get_params(deep=False), cls._param_rules)


def at_horizon(learner: CATELearner, horizon: float) -> CATELearner:
    """``learner``, or a shallow copy of it whose ``horizon`` is ``horizon``.

    For callers that are handed a horizon with a fitted learner (a served
    model's config, an explanation): a learner without one (saved before
    learners took their horizon) gets it; one fitted for another horizon then
    refuses in :meth:`CATELearner.predict_cate`, clearly. The learner itself
    is left as it is.

    Parameters
    ----------
    learner : CATELearner
        A fitted learner.
    horizon : float or None
        The horizon (days); None leaves the learner as it is.

    Returns
    -------
    CATELearner
    """
    if horizon is None:
        return learner
    current = getattr(learner, "horizon", None)
    if current is not None and math.isclose(float(current), float(horizon), rel_tol=1e-9):
        return learner
    twin = copy.copy(learner)
    twin.horizon = horizon
    return twin


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
