"""The role of the effect modifier: how benefit depends on it, and where it ends.

For the configured ``data.modifier`` (CSF-pNFH in MIROCALS) this module
smooths per-patient benefit against the modifier (LOWESS, statsmodels), finds
the value where the smoothed benefit changes sign (the *crossover*), puts a
bootstrap confidence interval around it, and reports the unadjusted arm hazard
ratio on each side of it (the Cox machinery of :mod:`stratify.trial.strata`).

What is smoothed matters. The run passes the cross-fitted doubly robust scores
(:func:`stratify.learners.scores.dr_scores`): each is an unbiased, noisy measurement of
the patient's benefit with errors independent across patients, so the smooth
estimates E[benefit | modifier] whatever learner is used, and resampling
patients gives honest intervals. A learner's out-of-fold estimates are not
like that (their errors are shared through the fitted model), so resampling
them would give intervals that are too narrow; they are drawn for comparison
only.

A crossover is *supported* only when all of these hold:

1. benefit depends on the modifier at all: a test of effect modification
   rejects at ``alpha``. The run uses the config's pre-specified one, the Wald
   test of arm x modifier in the adjusted Cox model (as the MIROCALS paper did);
   without it, the heteroskedasticity-robust (HC3) test of a linear trend of
   the scores in the modifier (under no effect modification the scores' mean
   does not depend on the modifier, so either keeps the false-claim rate at
   ``alpha``);
2. the smoothed benefit changes sign inside the central 95 % of the observed
   modifier values;
3. both ends of its bootstrap interval lie inside that range too. A bootstrap
   replicate whose curve never changes sign in that direction counts as a
   crossover beyond the observed range (above it if its benefit stays
   positive, below it if it stays negative), so an interval that reaches beyond
   the data is reported as unbounded, never as a number the data cannot back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from statsmodels.nonparametric.smoothers_lowess import lowess
from statsmodels.regression.linear_model import OLS
from statsmodels.tools.tools import add_constant

from stratify.exceptions import StratifyInputError
from stratify.trial.strata import Stratum, analyse_strata

#: Grid points between the 2.5th and 97.5th percentiles of the modifier.
GRID_SIZE = 200


@dataclass(frozen=True)
class ModifierEffect:
    """How estimated benefit depends on the modifier, and where it changes sign.

    Attributes
    ----------
    modifier : str
        Name of the modifier.
    unit : str
        What the benefit is measured in (e.g. "days").
    grid : numpy.ndarray
        Modifier values (central 95 % of the data) where the curve is evaluated.
    curve : numpy.ndarray
        Smoothed estimated benefit on ``grid``.
    band_low, band_high : numpy.ndarray
        Pointwise bootstrap interval of the curve.
    crossover : float
        Modifier value where the smoothed benefit changes sign; NaN if it does not.
    direction : str
        ``"ends"`` (benefit above zero below the crossover, below zero above it),
        ``"starts"`` (the reverse), or ``""`` without a crossover.
    ci_low, ci_high : float
        Percentile bootstrap interval of the crossover; ``-inf``/``inf`` when it
        reaches beyond the observed range, NaN without a crossover.
    crossing_share : float
        Share of bootstrap replicates whose curve changes sign in the same
        direction inside the grid.
    trend_slope, trend_p : float
        Linear trend of benefit per unit of the modifier and its two-sided
        HC3 p-value.
    dependence_p : float
        p-value of the test of effect modification that gates the claim.
    dependence_test : str
        Which test that was.
    supported : bool
        Whether the data support a crossover (see the module docstring).
    sides : tuple of Stratum
        Unadjusted arm hazard ratios below and at/above the crossover rounded
        to 4 significant digits (empty without a crossover).
    alpha : float
        Level of the dependence test; the intervals are at level ``1 - alpha``.

    Numbers only: :func:`stratify.report.summary.modifier_statement` says in words
    what they show.
    """

    modifier: str
    unit: str
    grid: np.ndarray
    curve: np.ndarray
    band_low: np.ndarray
    band_high: np.ndarray
    crossover: float
    direction: str
    ci_low: float
    ci_high: float
    crossing_share: float
    trend_slope: float
    trend_p: float
    dependence_p: float
    dependence_test: str
    supported: bool
    sides: tuple[Stratum, ...] = field(default=())
    alpha: float = 0.05

    def metrics(self) -> dict[str, float]:
        """The run metrics: crossover and its interval (NaN when not supported)."""
        keep = self.supported
        return {
            "modifier_crossover": self.crossover if keep else float("nan"),
            "modifier_crossover_ci_low": self.ci_low if keep else float("nan"),
            "modifier_crossover_ci_high": self.ci_high if keep else float("nan"),
            "modifier_crossing_share": self.crossing_share,
            "modifier_trend_p": self.trend_p,
            "modifier_dependence_p": self.dependence_p,
        }

    def table(self) -> pd.DataFrame:
        """The curve and its band, one row per grid point."""
        return pd.DataFrame(
            {
                self.modifier: self.grid,
                "benefit": self.curve,
                "band_low": self.band_low,
                "band_high": self.band_high,
            }
        )


def modifier_effect(
    modifier: np.ndarray,
    benefit: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    arm: np.ndarray,
    *,
    name: str,
    unit: str = "days",
    frac: float = 2 / 3,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    dependence: tuple[float, str] | None = None,
    random_state: int | None = None,
) -> ModifierEffect:
    """Smooth benefit against the modifier; locate and bound the sign change.

    Parameters
    ----------
    modifier : array-like
        Modifier value per patient.
    benefit : array-like
        Per-patient benefit measurements with independent errors: the doubly
        robust scores (see the module docstring).
    time, event, arm : array-like
        Follow-up, event indicator and arm (0/1), for the hazard ratios on
        each side of the crossover.
    name : str
        Name of the modifier, for tables and sentences.
    unit : str
        Unit of ``benefit``.
    frac : float
        LOWESS span: the share of patients in each local fit (0 < frac <= 1).
    n_bootstrap : int
        Bootstrap replicates (patients resampled with replacement), at least 20.
    alpha : float
        Intervals are at level ``1 - alpha``; the level of the dependence test.
    dependence : (float, str), optional
        p-value and name of a pre-specified test that benefit depends on the
        modifier (e.g. the Cox arm x modifier Wald test); default: the HC3 test
        of a linear trend of ``benefit`` in the modifier.
    random_state : int or None
        Seed of the bootstrap.

    Returns
    -------
    ModifierEffect

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> m = rng.uniform(0, 10, 300)
    >>> benefit = 5.0 - m + rng.normal(0, 1, 300)    # benefit ends at m = 5
    >>> t, e, a = rng.exponential(5, 300), rng.random(300) < 0.7, rng.integers(0, 2, 300)
    >>> effect = modifier_effect(m, benefit, t, e, a, name="m", random_state=0)
    >>> effect.supported, round(effect.crossover, 1), effect.direction
    (True, 5.1, 'ends')
    """
    m, b = _check_inputs(modifier, benefit, frac, n_bootstrap, alpha)
    lo, hi = np.quantile(m, [0.025, 0.975])
    if not hi > lo:
        raise StratifyInputError(f"modifier '{name}' barely varies: no dependence can be shown")
    grid = np.linspace(lo, hi, GRID_SIZE)
    curve = smooth_benefit(m, b, grid, frac)
    crossover, direction = _first_crossing(grid, curve)

    rng = np.random.default_rng(random_state)
    resamples = [rng.integers(0, len(m), len(m)) for _ in range(n_bootstrap)]
    replicates, crossings = _bootstrap(m, b, grid, frac, resamples, direction or "ends")
    band_low, band_high = np.nanquantile(replicates, [alpha / 2, 1 - alpha / 2], axis=0)

    share = float(np.mean(np.isfinite(crossings)))
    ci_low = ci_high = float("nan")
    if np.isfinite(crossover):
        # Order statistics, not interpolation: replicates beyond the range are ±inf.
        bounds = np.quantile(crossings, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
        ci_low, ci_high = (float(v) for v in bounds)
    trend = OLS(b, add_constant(m)).fit(cov_type="HC3")
    trend_slope, trend_p = float(trend.params[1]), float(trend.pvalues[1])
    dependence_p, dependence_test = dependence or (trend_p, "linear trend of the scores")
    supported = bool(
        dependence_p < alpha
        and np.isfinite(crossover)
        and np.isfinite(ci_low)
        and np.isfinite(ci_high)
    )
    sides: tuple[Stratum, ...] = ()
    if np.isfinite(crossover):
        cut = float(f"{crossover:.4g}")  # the value as reported, 4 significant digits
        sides = analyse_strata(m, time, event, arm, cutpoints=[cut], alpha=alpha)
    return ModifierEffect(
        modifier=name,
        unit=unit,
        grid=grid,
        curve=curve,
        band_low=band_low,
        band_high=band_high,
        crossover=float(crossover),
        direction=direction,
        ci_low=ci_low,
        ci_high=ci_high,
        crossing_share=share,
        trend_slope=trend_slope,
        trend_p=trend_p,
        dependence_p=float(dependence_p),
        dependence_test=dependence_test,
        supported=supported,
        sides=sides,
        alpha=alpha,
    )


def _bootstrap(m, b, grid, frac, resamples, direction) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed curve and crossing of every resample, split over joblib's workers.

    The resamples are drawn beforehand from one generator, so the result is the
    same, bit for bit, whatever the backend and the number of workers
    (``joblib.parallel_config``; by default this process does all).
    """
    n_jobs = min(effective_n_jobs(None), len(resamples))
    chunks = np.array_split(np.arange(len(resamples)), n_jobs)
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_bootstrap_chunk)(m, b, grid, frac, [resamples[i] for i in chunk], direction)
        for chunk in chunks
    )
    return np.vstack([c for c, _ in parts]), np.concatenate([x for _, x in parts])


def _bootstrap_chunk(m, b, grid, frac, resamples, direction) -> tuple[np.ndarray, np.ndarray]:
    curves = np.empty((len(resamples), len(grid)))
    crossings = np.empty(len(resamples))
    for r, rows in enumerate(resamples):
        curves[r] = smooth_benefit(m[rows], b[rows], grid, frac)
        crossings[r] = _crossing_or_beyond(grid, curves[r], direction)
    return curves, crossings


def _check_inputs(modifier, benefit, frac, n_bootstrap, alpha) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(modifier, dtype=float).ravel()
    b = np.asarray(benefit, dtype=float).ravel()
    if len(m) != len(b) or len(m) < 20:
        raise StratifyInputError("modifier and benefit need the same length, at least 20 patients")
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(b))):
        raise StratifyInputError("modifier and benefit must be finite (no missing values)")
    if not 0 < frac <= 1:
        raise StratifyInputError(f"frac must be in (0, 1] (got {frac!r})")
    if not isinstance(n_bootstrap, Integral) or n_bootstrap < 20:
        raise StratifyInputError(f"n_bootstrap must be an integer >= 20 (got {n_bootstrap!r})")
    if not 0 < alpha < 1:
        raise StratifyInputError(f"alpha must be in (0, 1) (got {alpha!r})")
    return m, b


def smooth_benefit(
    modifier: np.ndarray, benefit: np.ndarray, grid: np.ndarray, frac: float = 2 / 3
) -> np.ndarray:
    """LOWESS of ``benefit`` on ``modifier`` (no robustness iterations), on ``grid``.

    The smoother of :func:`modifier_effect`, for drawing other estimates the
    same way (e.g. a learner's out-of-fold benefit).
    """
    return lowess(benefit, modifier, frac=frac, it=0, xvals=grid)


def _crossing(grid: np.ndarray, curve: np.ndarray, before: float | None = None):
    """First sign change of ``curve`` along ``grid``, linearly interpolated, and the sign before it.

    With ``before`` (+1 or -1), only a change from that sign to the opposite one counts;
    otherwise any change away from a non-zero sign. ``(nan, 0.0)`` if there is none.
    """
    valid = np.isfinite(curve)
    g, c = grid[valid], curve[valid]
    s = np.sign(c)
    if before is None:
        hits = (s[:-1] != 0) & (s[1:] != s[:-1])
    else:
        hits = (s[:-1] == before) & (s[1:] == -before)
    found = np.flatnonzero(hits)
    if found.size == 0:
        return float("nan"), 0.0
    k = found[0]
    y0, y1 = c[k], c[k + 1]
    return float(g[k] + (g[k + 1] - g[k]) * y0 / (y0 - y1)), float(s[k])


def _first_crossing(grid: np.ndarray, curve: np.ndarray) -> tuple[float, str]:
    """First sign change of ``curve`` along ``grid``, and its direction."""
    at, before = _crossing(grid, curve)
    return at, {1.0: "ends", -1.0: "starts"}.get(before, "")


def _crossing_or_beyond(grid: np.ndarray, curve: np.ndarray, direction: str) -> float:
    """First crossing in ``direction``; else ±inf for a crossing beyond the observed range."""
    c = curve[np.isfinite(curve)]
    if len(c) == 0:
        return float("nan")
    want = 1.0 if direction == "ends" else -1.0  # sign before the crossing
    at, _ = _crossing(grid, curve, want)
    if np.isfinite(at):
        return at
    # No crossing in that direction: the sign that prevails says which side it lies on.
    before_sign_holds = np.mean(np.sign(c) == want) >= 0.5
    return float(np.inf if before_sign_holds else -np.inf)
