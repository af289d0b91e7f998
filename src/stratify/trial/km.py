"""Kaplan-Meier by arm, the log-rank test and restricted mean survival time (RMST).

This module owns the non-parametric part of the classical analysis. Survival
curves and the log-rank test come from lifelines; the one hand-written piece is
the standard error of the KM-based RMST (:func:`rmst_se`), because lifelines'
``restricted_mean_survival_time(..., return_variance=True)`` returns the
variance of ``min(T, tau)`` in the population, not the variance of the
estimator that R's ``print(survfit(...), rmean = tau)`` reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import restricted_mean_survival_time
from scipy import stats


@dataclass(frozen=True)
class ArmSurvival:
    """Kaplan-Meier summaries of one arm at the horizon.

    ``surv_ci_low``/``surv_ci_high`` are the log-log ("exponential Greenwood")
    interval, R's ``survfit(..., conf.type = "log-log")``. ``rmst`` is the area
    under the KM curve up to the horizon and ``rmst_se`` its standard error, as
    R's ``*rmean`` and ``*se(rmean)``.
    """

    label: object
    n: int
    events: int
    surv: float
    surv_ci_low: float
    surv_ci_high: float
    rmst: float
    rmst_se: float


@dataclass(frozen=True)
class Difference:
    """A difference of two independent estimates with a normal CI and p-value."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p: float


def fit_km(time: np.ndarray, event: np.ndarray, *, alpha: float) -> KaplanMeierFitter:
    """Kaplan-Meier fit with a ``1 - alpha`` log-log pointwise confidence band.

    lifelines' fitter calls ``numpy.seterr(invalid="ignore", divide="ignore")``
    for the whole process (lifelines 0.30, ``KaplanMeierFitter._additive_f``);
    the fit runs inside ``numpy.errstate()`` so that numpy's error handling is
    as it was afterwards: Cox fits count a NaN or an overflow as a failure only
    if numpy still warns about it.
    """
    with np.errstate():
        return KaplanMeierFitter(alpha=alpha).fit(np.asarray(time, float), np.asarray(event, bool))


def arm_survival(
    time: np.ndarray, event: np.ndarray, *, label: object, horizon: float, alpha: float
) -> ArmSurvival:
    """Survival at ``horizon`` (with log-log CI) and RMST up to ``horizon`` for one arm.

    Parameters
    ----------
    time, event : numpy.ndarray
        Follow-up times and event indicators of the arm's patients.
    label : object
        The arm's original label, kept for tables and figures.
    horizon : float
        Time point for survival and upper limit for the RMST (same unit as ``time``).
    alpha : float
        Confidence level is ``1 - alpha``.

    Returns
    -------
    ArmSurvival
    """
    kmf = fit_km(time, event, alpha=alpha)
    surv = float(kmf.survival_function_at_times(horizon).iloc[0])
    band = kmf.confidence_interval_survival_function_.loc[:horizon].iloc[-1]
    return ArmSurvival(
        label=label,
        n=len(time),
        events=int(np.sum(event)),
        surv=surv,
        surv_ci_low=float(band.iloc[0]),
        surv_ci_high=float(band.iloc[1]),
        rmst=float(restricted_mean_survival_time(kmf, t=horizon)),
        rmst_se=rmst_se(kmf, horizon),
    )


def rmst_se(kmf: KaplanMeierFitter, horizon: float) -> float:
    r"""Standard error of the Kaplan-Meier RMST up to ``horizon``.

    The Greenwood-type variance of the area under the KM curve (Klein &
    Moeschberger, *Survival Analysis*, 2nd ed., 2003, eq. 4.5.1, without the
    small-sample factor; the formula of R ``survival:::survmean``, which
    ``print(survfit(...), rmean = tau)`` reports as ``se(rmean)``):

    .. math:: \widehat{\mathrm{Var}} = \sum_{t_i \le \tau} A_i^2 \frac{d_i}{n_i (n_i - d_i)},
              \qquad A_i = \int_{t_i}^{\tau} \hat S(u)\, du,

    over distinct times :math:`t_i` with :math:`d_i` events among :math:`n_i`
    at risk; terms with :math:`n_i = d_i` are zero, as in R.

    Parameters
    ----------
    kmf : lifelines.KaplanMeierFitter
        A fitted Kaplan-Meier estimator.
    horizon : float
        Upper limit of the RMST.

    Returns
    -------
    float

    Examples
    --------
    >>> kmf = fit_km([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], alpha=0.05)
    >>> round(rmst_se(kmf, 4.0), 6)  # uncensored: the sd of the sample mean, divisor n
    0.559017
    """
    table = kmf.event_table.loc[:horizon]
    times = table.index.to_numpy(dtype=float)
    surv = kmf.survival_function_.loc[:horizon].iloc[:, 0].to_numpy(dtype=float)
    widths = np.diff(np.append(times, horizon))
    area_after = np.cumsum((widths * surv)[::-1])[::-1]  # A_i: area from t_i to the horizon
    d = table["observed"].to_numpy(dtype=float)
    n = table["at_risk"].to_numpy(dtype=float)
    ok = n > d
    hazard_var = np.zeros_like(d)
    hazard_var[ok] = d[ok] / (n[ok] * (n[ok] - d[ok]))
    return float(np.sqrt(np.sum(area_after**2 * hazard_var)))


def logrank(time: np.ndarray, event: np.ndarray, arm: np.ndarray) -> tuple[float, float]:
    """Log-rank test of treated vs control, as R's ``survdiff``: (chi-square, p)."""
    control, treated = arm == 0, arm == 1
    result = logrank_test(time[control], time[treated], event[control], event[treated])
    return float(result.test_statistic), float(result.p_value)


def rmst_difference(control: ArmSurvival, treated: ArmSurvival, *, alpha: float) -> Difference:
    """RMST difference treated - control, independent arms, normal CI and two-sided p."""
    estimate = treated.rmst - control.rmst
    se = float(np.hypot(treated.rmst_se, control.rmst_se))
    z = stats.norm.ppf(1 - alpha / 2)
    p = float(2 * stats.norm.sf(abs(estimate) / se)) if se > 0 else np.nan
    return Difference(estimate, se, estimate - z * se, estimate + z * se, p)
