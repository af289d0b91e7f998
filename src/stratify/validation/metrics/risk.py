"""Risk metrics of survival predictions on a test fold: Harrell's and Uno's C, integrated Brier.

A thin wrapper over scikit-survival's :func:`~sksurv.metrics.concordance_index_censored`,
:func:`~sksurv.metrics.concordance_index_ipcw` and
:func:`~sksurv.metrics.integrated_brier_score`: it fixes the truncation time
and the time grid, and turns a metric that is undefined on a fold (no
comparable pairs, censoring survival zero, times outside follow-up) into NaN
with an :class:`sklearn.exceptions.UndefinedMetricWarning` that gives the
reason, scikit-learn's convention for undefined metrics. The fold's other
metrics are still computed.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    integrated_brier_score,
)
from sksurv.util import check_y_survival

RISK_KEYS = ("c_index_harrell", "c_index_uno", "ibs")


def risk_metrics(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    surv: np.ndarray | None,
    times: np.ndarray,
    *,
    tau: float | None = None,
) -> dict[str, float]:
    """Harrell's and Uno's concordance and the integrated Brier score on one test fold.

    Parameters
    ----------
    y_train : numpy.ndarray
        ``Surv`` outcomes of the training fold; their Kaplan-Meier censoring
        distribution gives the inverse-probability-of-censoring weights of
        Uno's C and of the Brier score (censoring assumed independent of x).
    y_test : numpy.ndarray
        ``Surv`` outcomes of the test fold.
    risk : numpy.ndarray
        Risk score per test patient (higher = earlier death), e.g.
        :meth:`stratify.learners.base.CATELearner.predict_risk` under the arm received.
    surv : numpy.ndarray or None
        ``S(t | x)`` under the arm received, shape ``(n_test, len(times))``;
        ``None`` (with empty ``times``) when no grid could be made: ``ibs`` is then NaN.
    times : numpy.ndarray
        Increasing grid inside the test fold's follow-up, ``[min time, max time)``
        (see :func:`evaluation_times`); at least two points for the IBS.
    tau : float, optional
        Truncation time of Uno's C; default ``times[-1]``, so that both
        time-dependent metrics cover the same window (no truncation if
        ``times`` is empty).

    Returns
    -------
    dict
        ``c_index_harrell`` (all comparable pairs, no truncation),
        ``c_index_uno`` (pairs with the earlier time below ``tau``, weights
        ``1 / G(t)^2``; Uno et al., *Stat Med* 2011) and ``ibs`` (Brier score
        integrated over ``times`` by the trapezoidal rule and divided by the
        range; Graf et al., *Stat Med* 1999). A metric that cannot be computed
        is NaN, with an ``UndefinedMetricWarning`` naming the reason.
    """
    times = np.asarray(times, dtype=float).ravel()
    if tau is None and times.size:
        tau = float(times[-1])
    risk = np.asarray(risk, dtype=float)
    return {
        "c_index_harrell": _guarded(
            "c_index_harrell",
            lambda: concordance_index_censored(*check_y_survival(y_test), risk)[0],
        ),
        "c_index_uno": _guarded(
            "c_index_uno", lambda: concordance_index_ipcw(y_train, y_test, risk, tau=tau)[0]
        ),
        "ibs": _guarded("ibs", lambda: _ibs(y_train, y_test, surv, times)),
    }


def _ibs(y_train, y_test, surv, times) -> float:
    if surv is None or times.size < 2:
        raise ValueError("fewer than two evaluation times inside the test fold's follow-up")
    return integrated_brier_score(y_train, y_test, surv, times)


def evaluation_times(y_test: np.ndarray, horizon: float, n_times: int = 50) -> np.ndarray:
    """An evenly spaced grid of ``n_times`` points from the first test time to below the horizon.

    The grid ends strictly below ``min(horizon, last test time)``, as
    :func:`sksurv.metrics.integrated_brier_score` requires.

    Examples
    --------
    >>> from sksurv.util import Surv
    >>> y = Surv.from_arrays([True, False, True], [10.0, 100.0, 50.0])
    >>> evaluation_times(y, horizon=60.0, n_times=5)
    array([10., 20., 30., 40., 50.])
    """
    time = check_y_survival(y_test)[1]
    low, high = float(np.min(time)), min(float(horizon), float(np.max(time)))
    return np.linspace(low, high, n_times + 1)[:-1]


def _guarded(name: str, compute) -> float:
    """Run a scikit-survival metric; NaN plus a warning with the reason if it is undefined."""
    try:
        return float(compute())
    except ValueError as err:  # sksurv signals undefined metrics with ValueError subclasses
        warnings.warn(f"{name} is undefined on this fold: {err}", UndefinedMetricWarning, 3)
        return float("nan")
