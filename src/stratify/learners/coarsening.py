"""Time coarsening: fitting forests on times rounded up to a grid that contains the horizon.

A survival forest stores and scans every distinct training time; on large
cohorts a grid of a few quantiles of the event times (:func:`coarsen_times`)
bounds both. :func:`fit_outcome` is how a learner applies its ``time_grid``.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sksurv.util import check_y_survival

from stratify.learners.params import Interval, check_value


def coarsen_times(y: np.ndarray, n_points: int, horizon: float | None = None):
    """Round every time up to a grid of at most ``n_points`` times: a forest's time grid.

    A survival forest stores, in every node, its curves at every distinct
    training time, and its log-rank splits cost one pass over those times per
    candidate split; on tens of thousands of patients (thousands of distinct
    days) both dominate. Fitting on times rounded up to a grid bounds both by
    the grid's size.

    The grid is ``n_points - 1`` quantiles of the event times (equal numbers
    of events between consecutive points, the last at the latest event; all
    ``n_points`` of them without a horizon), plus ``horizon``. Each time, event
    or censoring, becomes the first grid point at or after it; times after the
    last grid point become the last.

    Parameters
    ----------
    y : numpy.ndarray
        ``Surv`` outcome with at least one event.
    n_points : int
        Largest number of grid points (at least 2).
    horizon : float, optional
        A time the curves must be right at (the analysis horizon): added to the
        grid.

    Returns
    -------
    y_coarse : numpy.ndarray
        ``y`` with its times rounded up to the grid (same fields).
    grid : numpy.ndarray
        The grid, increasing.

    Notes
    -----
    What it approximates: at every grid point, the horizon included, the
    deaths counted up to that point are exactly those observed up to it; a
    patient censored between two grid points is counted at risk for the deaths
    of that interval (as if censored at its end), which understates the hazard
    by that interval's censored share of its risk set -- small when the grid is
    fine relative to censoring. Between grid points a curve keeps its value at
    the previous grid point, so it is never evaluated past the deaths it has
    counted, and restricted mean survival is overstated by at most the sum over
    intervals of (survival drop x interval width), below the widest interval
    before the horizon times the probability of death by the horizon. Effects
    (differences between arms) share the same grid, so most of this cancels.

    Examples
    --------
    >>> from sksurv.util import Surv
    >>> y = Surv.from_arrays([True, True, False, True, True], [3.0, 5.0, 6.0, 8.0, 13.0])
    >>> y_coarse, grid = coarsen_times(y, 3, horizon=10.0)
    >>> grid.tolist(), y_coarse["time"].tolist()
    ([5.0, 10.0, 13.0], [5.0, 5.0, 10.0, 10.0, 13.0])
    """
    event, time = check_y_survival(y)
    n_points = int(check_value([Interval(Integral, 2, None)], n_points, "time_grid"))
    time = np.asarray(time, dtype=float)
    levels = n_points - (horizon is not None)
    quantiles = np.arange(1, levels + 1) / levels
    grid = np.quantile(time[event], quantiles, method="inverted_cdf")
    if horizon is not None:
        grid = np.append(grid, float(horizon))
    grid = np.unique(grid)
    position = np.minimum(np.searchsorted(grid, time, side="left"), grid.size - 1)
    y_coarse = y.copy()
    y_coarse[y.dtype.names[1]] = grid[position]
    return y_coarse, grid


def fit_outcome(y: np.ndarray, time_grid, horizon) -> tuple[np.ndarray, np.ndarray | None]:
    """The outcome a learner's base models are fitted on, and its time grid (None: exact times).

    Parameters
    ----------
    y : numpy.ndarray
        ``Surv`` outcome.
    time_grid : int or None
        None: the exact times; otherwise see :func:`coarsen_times`.
    horizon : float or None
        Added to the grid.

    Returns
    -------
    tuple
        ``(y, None)`` or ``coarsen_times(y, time_grid, horizon)``.
    """
    if time_grid is None:
        return y, None
    return coarsen_times(y, time_grid, horizon)
