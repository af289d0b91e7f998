"""`analyse_trial`: the classical analysis of a randomised survival trial, in one call.

This module owns the order of the classical analysis and the checks on its
arguments: Kaplan-Meier and RMST by arm, the log-rank test, Cox models of arm
(unadjusted, adjusted on every covariate, and with an arm x modifier
interaction), and hazard ratios within modifier strata.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stratify.data.covariates import ARM_TERM
from stratify.data.trial_data import TrialData
from stratify.exceptions import StratifyInputError
from stratify.trial.cox import CoxFit, CoxFitError, check_design, fit_cox
from stratify.trial.km import arm_survival, logrank, rmst_difference
from stratify.trial.result import TrialAnalysis
from stratify.trial.strata import analyse_strata, check_cutpoints


def analyse_trial(
    data: TrialData,
    *,
    horizon: float,
    cutpoints: Sequence[float] | None = None,
    alpha: float = 0.05,
) -> TrialAnalysis:
    """Classical analysis of a two-arm survival trial, matching R's ``survival``.

    * Kaplan-Meier survival at ``horizon`` per arm with a log-log confidence
      interval (R ``survfit(..., conf.type = "log-log")``).
    * Log-rank test (R ``survdiff``).
    * Cox hazard ratio of arm (treated vs control), Efron ties, Wald CI and
      p-value (R ``summary(coxph(..., ties = "efron"))``): unadjusted, and
      adjusted on ``data.adjusted_for`` (the configured covariates).
    * With ``data.modifier``: Cox model with arm, the covariates, the modifier
      and arm x modifier; reports the arm HR at modifier = 0 and the interaction HR
      per unit of the modifier.
    * With ``cutpoints``: unadjusted arm HR within each modifier stratum (see
      :mod:`stratify.trial.strata` for the stratum convention); a stratum that
      cannot be estimated gets NaN and a note.
    * RMST up to ``horizon`` per arm (R ``print(survfit(...), rmean = horizon)``)
      and the difference treated - control with a normal CI (independent arms).

    Parameters
    ----------
    data : TrialData
        The trial.
    horizon : float
        Time point (days) for survival and RMST; within follow-up of both arms.
    cutpoints : sequence of float, optional
        Strictly increasing modifier cutpoints; needs ``data.modifier``.
    alpha : float
        Intervals are at level ``1 - alpha``.

    Returns
    -------
    TrialAnalysis

    Raises
    ------
    StratifyInputError
        If horizon, alpha or cutpoints are invalid, a covariate is constant or
        perfectly collinear, or an overall Cox model cannot be fitted.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from stratify.data import TrialData
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"time": rng.exponential(100, 200) + 1, "event": 1,
    ...                    "arm": np.tile([0, 1], 100), "age": rng.normal(60, 10, 200)})
    >>> result = analyse_trial(TrialData.from_frame(df), horizon=50)
    >>> sorted(result.metrics())[:3]
    ['hr_adjusted', 'hr_adjusted_ci_high', 'hr_adjusted_ci_low']
    """
    horizon = _check_horizon(data, horizon)
    alpha = _check_alpha(alpha)
    cuts = _check_cutpoints(data, cutpoints)
    time, event, arm = data.time, data.event.astype(bool), data.arm.astype(int)
    control_label, treated_label = data.arm_labels
    control = arm_survival(
        time[arm == 0], event[arm == 0], label=control_label, horizon=horizon, alpha=alpha
    )
    treated = arm_survival(
        time[arm == 1], event[arm == 1], label=treated_label, horizon=horizon, alpha=alpha
    )
    chisq, p = logrank(time, event, arm)
    interaction = None
    if data.modifier is not None:
        interaction = _overall_fit(_design(data, interaction=True), data, alpha, "interaction")
    strata = ()
    if cuts:
        modifier = data.X[data.modifier].to_numpy(dtype=float)
        strata = analyse_strata(modifier, time, event, arm, cutpoints=cuts, alpha=alpha)
        _refuse_empty_strata(strata, data.modifier, modifier)
    return TrialAnalysis(
        horizon=horizon,
        alpha=alpha,
        arm_labels=tuple(data.arm_labels),
        modifier=data.modifier,
        cutpoints=cuts,
        n_patients=data.n_patients,
        n_events=data.n_events,
        control=control,
        treated=treated,
        logrank_chisq=chisq,
        logrank_p=p,
        rmst_diff=rmst_difference(control, treated, alpha=alpha),
        cox_unadjusted=_overall_fit(_design(data, covariates=False), data, alpha, "unadjusted"),
        cox_adjusted=_overall_fit(_design(data), data, alpha, "adjusted"),
        cox_interaction=interaction,
        strata=strata,
    )


def _design(data: TrialData, *, covariates: bool = True, interaction: bool = False) -> pd.DataFrame:
    """Model columns: arm, the adjustment covariates, then the modifier and arm x modifier."""
    arm = pd.Series(data.arm.astype(float), index=data.X.index, name=ARM_TERM)
    columns = data.adjusted_for if covariates else []
    if interaction and data.modifier not in columns:
        columns = [*columns, data.modifier]
    parts = [arm, data.X[columns].astype(float)]
    if interaction:
        parts.append((arm * data.X[data.modifier]).rename(f"{ARM_TERM} \u00d7 {data.modifier}"))
    return pd.concat(parts, axis=1)


def _overall_fit(design: pd.DataFrame, data: TrialData, alpha: float, which: str) -> CoxFit:
    check_design(design)
    try:
        return fit_cox(design, data.time, data.event, alpha=alpha)
    except CoxFitError as exc:
        raise StratifyInputError(f"{which} Cox model of arm cannot be fitted: {exc}") from exc


def _check_horizon(data: TrialData, horizon: float) -> float:
    try:
        h = float(horizon)
    except (TypeError, ValueError) as exc:
        raise StratifyInputError(f"horizon must be a number of days; got {horizon!r}") from exc
    if not np.isfinite(h) or h <= 0:
        raise StratifyInputError(f"horizon must be a positive number of days; got {horizon!r}")
    for code, label in ((0, "control"), (1, "treated")):
        last = float(data.time[data.arm == code].max())
        if h > last:
            raise StratifyInputError(
                f"horizon {h:g} is beyond the last follow-up time of the {label} arm "
                f"({data.arm_labels[code]!r}: {last:g}); choose a horizon within follow-up"
            )
    return h


def _refuse_empty_strata(strata, name: str, values: np.ndarray) -> None:
    empty = [s.label for s in strata if s.n == 0]
    if empty:
        raise StratifyInputError(
            f"data.cutpoints: the {name} stratum '{empty[0]}' has no patients "
            f"({name} ranges from {values.min():g} to {values.max():g})"
        )


def _check_alpha(alpha: float) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError) as exc:
        raise StratifyInputError(f"alpha must be a number in (0, 1); got {alpha!r}") from exc
    if not 0 < a < 1:
        raise StratifyInputError(f"alpha must be in (0, 1); got {alpha!r}")
    return a


def _check_cutpoints(data: TrialData, cutpoints: Sequence[float] | None) -> tuple[float, ...]:
    if data.modifier is not None and data.modifier not in data.X.columns:
        raise StratifyInputError(
            f"modifier '{data.modifier}' is not a covariate column of the trial"
        )
    if cutpoints is None:
        return ()
    if data.modifier is None:
        raise StratifyInputError("cutpoints need a modifier; set the trial's modifier column")
    try:
        return check_cutpoints(cutpoints)
    except StratifyInputError as exc:
        raise StratifyInputError(f"data.{exc}") from None
