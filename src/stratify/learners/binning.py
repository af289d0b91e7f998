"""Covariate binning that makes survival forests affordable on large cohorts.

A forest grown on covariates binned at their quantiles (:func:`quantile_edges`,
:func:`bin_covariates`) searches few thresholds per covariate; its thresholds
are then moved back onto observed values (:func:`restore_thresholds`) so that
the fitted forest takes the covariates as they are.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd

from stratify.learners.params import Interval, check_value


def quantile_edges(X: pd.DataFrame, max_bins: int) -> dict[int, np.ndarray]:
    """Bin edges of the covariates with more than ``max_bins`` distinct values.

    A survival forest's log-rank split search costs, per covariate and node,
    a pass over the node's patients for *every* candidate threshold (in
    scikit-survival 0.28), so a continuous covariate costs the square of the
    node's size; with at most ``max_bins`` distinct values it costs
    ``max_bins`` passes. The edges of a covariate are its ``max_bins``
    quantiles (observed values, as float32 as the trees compare them); each
    value is then represented by the first edge at or above it
    (:func:`bin_covariates`), so that a split between two edges means "at or
    below the lower edge" for the original values too
    (:func:`restore_thresholds`).

    Parameters
    ----------
    X : pandas.DataFrame
        Covariates.
    max_bins : int
        Largest number of distinct values a covariate keeps (at least 2).

    Returns
    -------
    dict of int to numpy.ndarray
        Column position -> increasing edges (float64 values of float32
        numbers), for the columns that are binned.
    """
    max_bins = int(check_value([Interval(Integral, 2, None)], max_bins, "max_bins"))
    values = np.asarray(X, dtype=np.float32).astype(np.float64)
    levels = np.arange(1, max_bins + 1) / max_bins
    edges = {}
    for j in range(values.shape[1]):
        column = values[:, j]
        if np.unique(column).size > max_bins:
            edges[j] = np.unique(np.quantile(column, levels, method="inverted_cdf"))
    return edges


def bin_covariates(X: pd.DataFrame, edges: dict[int, np.ndarray]) -> pd.DataFrame:
    """``X`` with each binned covariate replaced by the first edge at or above its value.

    Values are compared as float32 (as the trees compare them); values above
    the last edge take the last edge.
    """
    values = np.asarray(X, dtype=np.float32).astype(np.float64)
    for j, e in edges.items():
        position = np.searchsorted(e, values[:, j], side="left")
        values[:, j] = e[np.minimum(position, e.size - 1)]
    return pd.DataFrame(values, index=X.index, columns=X.columns)


def restore_thresholds(forest, edges: dict[int, np.ndarray]) -> None:
    """Make a forest grown on binned covariates (:func:`bin_covariates`) take the original values.

    A split of a binned covariate lies between two consecutive edges ``e_k``
    and ``e_k+1`` (the trees put it at their midpoint); its patients at or
    below ``e_k`` after binning are exactly those at or below ``e_k`` before
    it, so the threshold becomes ``e_k``. The trees then route every original
    covariate vector (compared in float32, as scikit-learn does) exactly as
    they route its binned version: predictions, curves and SHAP values of the
    forest on the original covariates are those of the binned fit.

    Parameters
    ----------
    forest : RandomSurvivalForest or ExtraSurvivalTrees
        Fitted on ``bin_covariates(X, edges)``; changed in place.
    edges : dict of int to numpy.ndarray
        From :func:`quantile_edges`.
    """
    for tree in forest.estimators_:
        split = tree.tree_.children_left >= 0
        feature = tree.tree_.feature
        threshold = tree.tree_.threshold  # a view of the tree's nodes: written in place
        for j, e in edges.items():
            nodes = split & (feature == j)
            lower = np.searchsorted(e, threshold[nodes], side="right") - 1
            threshold[nodes] = e[lower]
