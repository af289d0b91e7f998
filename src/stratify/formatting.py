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


SMALLEST_P = 0.001
"""Below this a table or a figure shows "< 0.001" rather than the p-value's digits."""


def p_value(
    p: float, digits: int = 2, *, alpha: float | None = None, smallest: float | None = None
) -> str:
    """A p-value: ``digits`` significant digits; the one formatter of every text stratify writes.

    Parameters
    ----------
    p : float
        The p-value.
    digits : int
        Significant digits.
    alpha : float, optional
        The test's level: one digit more when rounding would carry ``p`` across it
        (0.0496 reads "0.0496" at level 0.05, not "0.05").
    smallest : float, optional
        Below it, ``"< smallest"`` (e.g. ``"< 0.001"``, :data:`SMALLEST_P`); default: the
        digits of any p.

    Returns
    -------
    str
        The number only, e.g. ``"0.34"``; :data:`MISSING` when ``p`` is NaN or missing.

    Examples
    --------
    >>> p_value(0.3412), p_value(0.00023), p_value(0.00023, smallest=SMALLEST_P)
    ('0.34', '0.00023', '< 0.001')
    >>> p_value(0.0496, alpha=0.05), p_value(1.0), p_value(float("nan"))
    ('0.0496', '1', '—')
    """
    try:
        p = float(p)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(p):
        return MISSING
    if smallest is not None and p < smallest:
        return f"< {smallest:g}"
    text = f"{p:.{digits}g}"
    if alpha is not None and (float(text) < alpha) != (p < alpha):
        text = f"{p:.{digits + 1}g}"
    return text


def p_is(p: float, digits: int = 2, **options) -> str:
    """A p-value in a sentence: ``"p = 0.34"``, ``"p < 0.001"``; options of :func:`p_value`.

    Examples
    --------
    >>> p_is(0.3412), p_is(0.0002, smallest=SMALLEST_P), p_is(0.873, 3)
    ('p = 0.34', 'p < 0.001', 'p = 0.873')
    """
    text = p_value(p, digits, **options)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def hazard_ratio(hr, *, with_p: bool = False, **p_options) -> str:
    """A hazard ratio and its CI, with enough decimals to tell it from 1 (1.0003 per pg/mL).

    Parameters
    ----------
    hr : object
        With ``estimate``, ``ci_low`` and ``ci_high`` (e.g. a
        :class:`stratify.trial.HazardRatio`), and ``p`` for ``with_p``.
    with_p : bool
        Follow it with its p-value (:func:`p_is`, with ``p_options``): ``", p = 0.34"``.
    **p_options
        ``digits``, ``alpha``, ``smallest`` of :func:`p_value`.

    Returns
    -------
    str
        E.g. ``"0.82 (0.54–1.24)"``; ``"not estimable"`` (never with a p) when the
        estimate is NaN.

    Examples
    --------
    >>> from types import SimpleNamespace as HR
    >>> hazard_ratio(HR(estimate=0.82, ci_low=0.54, ci_high=1.24))
    '0.82 (0.54–1.24)'
    >>> hazard_ratio(HR(estimate=1.00034, ci_low=1.00016, ci_high=1.00052))
    '1.00034 (1.00016–1.00052)'
    >>> hazard_ratio(HR(estimate=0.56, ci_low=0.33, ci_high=0.97, p=0.0403), with_p=True)
    '0.56 (0.33–0.97), p = 0.04'
    """
    if not _finite(hr.estimate):
        return "not estimable"
    gap = max(abs(v - 1.0) for v in (hr.estimate, hr.ci_low, hr.ci_high))
    d = 2 if gap >= 0.1 else 3 if gap >= 0.01 else 5
    text = f"{hr.estimate:.{d}f} ({hr.ci_low:.{d}f}{DASH}{hr.ci_high:.{d}f})"
    return text + (f", {p_is(hr.p, **p_options)}" if with_p else "")


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def fixed(value, spec: str) -> str:
    """A number in format ``spec`` (e.g. ``".3f"``); :data:`MISSING` when it is missing.

    Examples
    --------
    >>> fixed(0.6149, ".3f"), fixed(7.04, "+.1f"), fixed(float("nan"), ".3f"), fixed(None, ".1f")
    ('0.615', '+7.0', '—', '—')
    """
    return format(float(value), spec) if _finite(value) else MISSING


def interval(estimate, low, high, spec: str = ".1f") -> str:
    """An estimate and its interval, ``"8.8 (-42.5 to 60.1)"``; the estimate alone without
    both ends, :data:`MISSING` without an estimate."""
    if not _finite(estimate):
        return MISSING
    if not (_finite(low) and _finite(high)):
        return format(float(estimate), spec)
    return f"{estimate:{spec}} ({low:{spec}} to {high:{spec}})"


def names(terms: Sequence[str], most: int = 6) -> str:
    """A list of names, cut after ``most`` ("a, b and 3 more terms"); "(nothing)" if empty."""
    if not terms:
        return "(nothing)"
    if len(terms) <= most:
        return ", ".join(terms)
    return f"{', '.join(terms[:most])} and {len(terms) - most} more terms"


__all__ = [
    "DASH",
    "MISSING",
    "SMALLEST_P",
    "bound",
    "fixed",
    "hazard_ratio",
    "interval",
    "names",
    "number",
    "p_is",
    "p_value",
]
