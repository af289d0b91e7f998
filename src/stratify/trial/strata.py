"""Modifier strata from cutpoints, and the unadjusted arm hazard ratio within each.

This module owns the stratum convention of the MIROCALS report. With cutpoints
``c1 < c2 < ... < ck`` (k >= 2), stratum 1 is ``m < c1``, stratum j (2 <= j <= k)
is ``c(j-1) < m <= cj`` except that stratum 2 also includes ``m = c1``, and the
last stratum is ``m > ck``: with 750/3700 the strata are "< 750", "750-3700"
(both ends included; the label uses an en dash) and "> 3700". With a single
cutpoint the strata are ``m < c1`` and ``m >= c1`` (labelled "≥ c1").

A stratum whose hazard ratio cannot be estimated (no patients, no events, one
arm only, fewer than two events in an arm, or a Cox fit that does not converge)
gets NaN estimates and a note saying why.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratify.exceptions import StratifyInputError
from stratify.trial.cox import CoxFitError, HazardRatio, fit_cox

#: Minimum events per arm for a stratum hazard ratio to be reported.
MIN_EVENTS_PER_ARM = 2


@dataclass(frozen=True)
class Stratum:
    """One modifier stratum: counts, the unadjusted arm HR, and why it is NaN if it is."""

    index: int
    label: str
    n: int
    events: int
    n_control: int
    n_treated: int
    events_control: int
    events_treated: int
    hr: HazardRatio
    note: str = ""


def check_cutpoints(cutpoints: Sequence[float]) -> tuple[float, ...]:
    """Validate cutpoints (finite, strictly increasing, at least one) and return them as floats."""
    try:
        values = tuple(float(c) for c in cutpoints)
    except (TypeError, ValueError) as exc:
        raise StratifyInputError(f"cutpoints must be numbers; got {cutpoints!r}") from exc
    if not values:
        raise StratifyInputError("cutpoints is empty; give at least one value, or None")
    if not all(np.isfinite(values)):
        raise StratifyInputError(f"cutpoints must be finite; got {list(values)}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise StratifyInputError(f"cutpoints must be strictly increasing; got {list(values)}")
    return values


def stratum_labels(cutpoints: Sequence[float]) -> list[str]:
    """Labels of the strata defined by ``cutpoints``.

    Examples
    --------
    >>> stratum_labels([750, 3700]) == ["< 750", "750\u20133700", "> 3700"]
    True
    >>> stratum_labels([20])
    ['< 20', '≥ 20']
    """
    c = [f"{x:g}" for x in check_cutpoints(cutpoints)]
    if len(c) == 1:
        return [f"< {c[0]}", f"≥ {c[0]}"]
    return [f"< {c[0]}"] + [f"{a}\u2013{b}" for a, b in itertools.pairwise(c)] + [f"> {c[-1]}"]


def assign_strata(values: np.ndarray, cutpoints: Sequence[float]) -> np.ndarray:
    """Stratum number (1-based) of each modifier value; see the module docstring.

    Examples
    --------
    >>> assign_strata([100, 750, 3700, 3701], [750, 3700]).tolist()
    [1, 2, 2, 3]
    >>> assign_strata([19, 20, 21], [20]).tolist()
    [1, 2, 2]
    """
    c = np.asarray(check_cutpoints(cutpoints))
    m = np.asarray(values, dtype=float)
    upper = 2 + np.searchsorted(c[1:], m, side="left")
    return np.where(m < c[0], 1, upper)


def analyse_strata(
    modifier: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    arm: np.ndarray,
    *,
    cutpoints: Sequence[float],
    alpha: float,
) -> tuple[Stratum, ...]:
    """Counts and unadjusted Cox HR of arm (Efron ties) within each stratum.

    Parameters
    ----------
    modifier, time, event, arm : array-like
        Per-patient modifier value, follow-up time, event (bool) and arm (0/1).
    cutpoints : sequence of float
        Strictly increasing cutpoints.
    alpha : float
        Confidence level is ``1 - alpha``.

    Returns
    -------
    tuple of Stratum
    """
    which = assign_strata(modifier, cutpoints)
    time, event, arm = np.asarray(time, float), np.asarray(event, bool), np.asarray(arm, int)
    out = []
    for i, label in enumerate(stratum_labels(cutpoints), start=1):
        keep = which == i
        t, e, a = time[keep], event[keep], arm[keep]
        hr, note = _stratum_hr(t, e, a, alpha)
        out.append(
            Stratum(
                index=i,
                label=label,
                n=int(keep.sum()),
                events=int(e.sum()),
                n_control=int((a == 0).sum()),
                n_treated=int((a == 1).sum()),
                events_control=int(e[a == 0].sum()),
                events_treated=int(e[a == 1].sum()),
                hr=hr,
                note=note,
            )
        )
    return tuple(out)


def _stratum_hr(
    t: np.ndarray, e: np.ndarray, a: np.ndarray, alpha: float
) -> tuple[HazardRatio, str]:
    reason = _not_estimable(e, a)
    if reason:
        return HazardRatio.missing(), reason
    try:
        fit = fit_cox(pd.DataFrame({"arm": a}), t, e, alpha=alpha)
    except CoxFitError as exc:
        return HazardRatio.missing(), str(exc)
    return fit.hr(0), ""


def _not_estimable(e: np.ndarray, a: np.ndarray) -> str:
    if a.size == 0:
        return "no patients in this stratum"
    if not e.any():
        return "no events in this stratum"
    if np.all(a == a[0]):
        return f"only {'treated' if a[0] == 1 else 'control'} patients in this stratum"
    e0, e1 = int(e[a == 0].sum()), int(e[a == 1].sum())
    if min(e0, e1) < MIN_EVENTS_PER_ARM:
        return (
            f"too few events for a hazard ratio (control {e0}, treated {e1}; "
            f"need at least {MIN_EVENTS_PER_ARM} per arm)"
        )
    return ""
