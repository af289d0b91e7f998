"""How numbers read in every text stratify writes: terminal, run descriptions, report.

One place, so that the terminal, the MLflow description and the HTML report show
the same hazard ratio or crossover with the same digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DASH = "\u2013"
"""Between the ends of an interval."""

MISSING = "\u2014"
"""What a missing number shows as."""


def number(v: float) -> str:
    """4 significant digits; thousands separators and no decimals from 1,000 up.

    Examples
    --------
    >>> number(3736.2), number(891.74), number(0.012345)
    ('3,736', '891.7', '0.01235')
    """
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def bound(v: float) -> str:
    """An interval end that may lie beyond the data (``inf``) or be missing (NaN)."""
    if v == math.inf:
        return "beyond the data"
    if v == -math.inf:
        return "below the data"
    return number(v) if math.isfinite(v) else MISSING


def hazard_ratio(hr) -> str:
    """A hazard ratio and its CI, with enough decimals to tell it from 1 (1.0003 per pg/mL).

    Parameters
    ----------
    hr : object
        With ``estimate``, ``ci_low`` and ``ci_high`` (e.g. a
        :class:`stratify.trial.HazardRatio`).

    Returns
    -------
    str
        E.g. ``"0.82 (0.54–1.24)"``; ``"not estimable"`` when the estimate is NaN.

    Examples
    --------
    >>> from types import SimpleNamespace as HR
    >>> hazard_ratio(HR(estimate=0.82, ci_low=0.54, ci_high=1.24))
    '0.82 (0.54–1.24)'
    >>> hazard_ratio(HR(estimate=1.00034, ci_low=1.00016, ci_high=1.00052))
    '1.00034 (1.00016–1.00052)'
    """
    if not math.isfinite(hr.estimate):
        return "not estimable"
    gap = max(abs(v - 1.0) for v in (hr.estimate, hr.ci_low, hr.ci_high))
    d = 2 if gap >= 0.1 else 3 if gap >= 0.01 else 5
    return f"{hr.estimate:.{d}f} ({hr.ci_low:.{d}f}{DASH}{hr.ci_high:.{d}f})"


def names(terms: Sequence[str], most: int = 6) -> str:
    """A list of names, cut after ``most`` ("a, b and 3 more terms"); "(nothing)" if empty."""
    if not terms:
        return "(nothing)"
    if len(terms) <= most:
        return ", ".join(terms)
    return f"{', '.join(terms[:most])} and {len(terms) - most} more terms"


__all__ = ["DASH", "MISSING", "bound", "hazard_ratio", "names", "number"]
