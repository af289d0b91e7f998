"""Exact SHAP values for scikit-survival forests, boosted trees and single trees.

:func:`forest_shap` is the one-call entry point: it converts the fitted model
(:func:`stratify.explain.trees.tree_model`) and explains the conversion with
shap's exact TreeSHAP (:func:`stratify.explain.trees.explain_trees`), after
checking that ``X`` has the columns the model was fitted on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stratify.exceptions import StratifyInputError
from stratify.explain.trees import explain_trees, tree_model

if TYPE_CHECKING:
    import shap


def forest_shap(model, X, *, output="risk", times=None, background=None) -> shap.Explanation:
    """Exact SHAP values of a fitted scikit-survival tree model.

    Parameters
    ----------
    model : estimator
        A fitted ``RandomSurvivalForest``, ``ExtraSurvivalTrees``,
        ``SurvivalTree`` or ``GradientBoostingSurvivalAnalysis``
        (``loss="coxph"``, risk score only).
    X : array-like or pandas.DataFrame of shape (n_samples, n_features)
        The patients to explain, with the model's columns (in order, when the
        model was fitted on a DataFrame).
    output : {"risk", "survival", "chf"}, default "risk"
        ``"risk"`` explains ``model.predict``; ``"survival"`` / ``"chf"``
        explain the survival / cumulative hazard function at ``times``.
    times : array-like of shape (n_times,), optional
        Non-negative times, required for ``"survival"`` and ``"chf"``.
    background : array-like or pandas.DataFrame, optional
        ``None`` for path-dependent TreeSHAP (the trees' training samples stand
        for the feature distribution); otherwise interventional TreeSHAP over
        every row of ``background``.

    Returns
    -------
    shap.Explanation
        ``values`` of shape ``(n, p)`` for the risk score or one time,
        ``(n, p, n_times)`` for several; ``base_values`` of shape ``(n,)`` or
        ``(n, n_times)``; ``feature_names`` from ``X`` (or the model);
        ``output_names`` the times. ``base_values + values.sum(axis=1)``
        equals the model's prediction for every patient.

    Raises
    ------
    StratifyInputError
        For an unsupported or unfitted model, missing times, a curve asked of a
        model that cannot give it exactly, or ``X`` without the model's columns.

    Notes
    -----
    Exact, not sampled, and in float64: path-dependent values come from shap's
    C++ TreeSHAP on the converted trees, interventional ones from stratify's
    closed form (:mod:`stratify.explain.interventional`). The cost grows with
    the number of trees, their leaves and depth, and (interventional) the
    number of distinct leaf patterns in the background. It runs in one process unless called under
    ``joblib.parallel_config(n_jobs=k)``, which splits the rows over ``k``
    worker processes. See :func:`stratify.explain.trees.explain_trees` for the
    numerical precision of each variant.

    Examples
    --------
    >>> import numpy as np
    >>> from sksurv.ensemble import RandomSurvivalForest
    >>> from sksurv.util import Surv
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3))
    >>> y = Surv.from_arrays(rng.random(60) < 0.7, rng.exponential(np.exp(-X[:, 0])))
    >>> rsf = RandomSurvivalForest(n_estimators=5, min_samples_leaf=5, random_state=0).fit(X, y)
    >>> expl = forest_shap(rsf, X[:4])
    >>> expl.values.shape
    (4, 3)
    >>> bool(np.allclose(expl.base_values + expl.values.sum(axis=1), rsf.predict(X[:4])))
    True
    >>> curves = forest_shap(rsf, X[:4], output="survival", times=[0.5, 1.0])
    >>> curves.values.shape, curves.output_names
    ((4, 3, 2), [0.5, 1.0])
    """
    tm = tree_model(model, output, times)
    names = _check_columns(model, X, "X")
    if background is not None:
        _check_columns(model, background, "background")
    output_names = None if times is None or output == "risk" else _time_names(times)
    return explain_trees(
        tm, X, background=background, feature_names=names, output_names=output_names
    )


def _check_columns(model, X, what: str) -> list[str] | None:
    """The feature names for ``X``; a DataFrame must carry the model's columns in order."""
    expected = getattr(model, "feature_names_in_", None)
    if isinstance(X, pd.DataFrame):
        columns = [str(c) for c in X.columns]
        if expected is not None and columns != [str(c) for c in expected]:
            raise StratifyInputError(
                f"{what} must have the model's columns in order: {', '.join(map(str, expected))}; "
                f"got {', '.join(columns)}"
            )
        return columns
    n_columns = np.shape(X)[1] if np.ndim(X) == 2 else None
    if n_columns != model.n_features_in_:
        raise StratifyInputError(
            f"{what} must have {model.n_features_in_} columns (the model's features); "
            f"got shape {np.shape(X)}"
        )
    return None if expected is None else [str(c) for c in expected]


def _time_names(times) -> list[float]:
    """The times as plain floats, for ``output_names``."""
    return [float(t) for t in np.asarray(times, dtype=float).reshape(-1)]


__all__ = ["forest_shap"]
