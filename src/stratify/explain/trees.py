"""Fitted scikit-survival tree ensembles as plain sums of trees, explained exactly.

shap's ``TreeExplainer`` refuses scikit-survival models, yet a fitted survival
tree is an ordinary binary tree whose nodes hold a cumulative hazard and a
survival curve on the training time grid. This module converts such a model
into a :class:`TreeModel` -- a constant plus a sum of trees whose node values
are vectors (one entry per explained output) -- and hands it to shap as its
documented *dict model*, so that shap's own C++ TreeSHAP computes exact
path-dependent SHAP values. Interventional values (over a background sample)
come from :mod:`stratify.explain.interventional`, a float64 closed form that is
both more precise and faster than shap's float32 interventional kernel.

The conversion reproduces each model's prediction exactly (up to the order of
floating-point sums):

- ``RandomSurvivalForest``, ``ExtraSurvivalTrees``: the ensemble cumulative
  hazard and survival function are the means over trees of the trees' node
  curves, and the risk score (``predict``) is the sum of the ensemble
  cumulative hazard over the training event times. With ``low_memory=True``
  the trees store the risk score only.
- ``SurvivalTree``: the same with a single tree.
- ``GradientBoostingSurvivalAnalysis``: ``predict`` (``loss="coxph"``) is the
  log-hazard score ``learning_rate * sum_m scale_m * tree_m(x)`` with a zero
  initial score, ``scale_m = 1`` unless the model was fitted with dropout.

Because a :class:`TreeModel` is linear in its node values, linear maps of the
outputs (e.g. survival on a grid to restricted mean survival time), scaling,
sums of models and fixing a feature at a value are exact operations on it.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from sksurv.ensemble import (
    ComponentwiseGradientBoostingSurvivalAnalysis,
    ExtraSurvivalTrees,
    GradientBoostingSurvivalAnalysis,
    RandomSurvivalForest,
)
from sksurv.tree import SurvivalTree

from stratify.exceptions import StratifyInputError
from stratify.explain.interventional import interventional_shap

with warnings.catch_warnings():
    # importing shap styles its matplotlib colormaps with calls (set_bad, set_over, ...) that
    # recent matplotlib flags as pending deprecation: shap's business, and pytest makes it an error
    warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module=r"shap\.plots")
    import shap

OUTPUTS = ("risk", "survival", "chf")
"""What :func:`tree_model` can explain: the risk score, or the curves on a time grid."""

_SUPPORTED = (
    "RandomSurvivalForest, ExtraSurvivalTrees, SurvivalTree and "
    "GradientBoostingSurvivalAnalysis(loss='coxph')"
)


@dataclass(frozen=True, eq=False)
class TreeModel:
    """A sum of trees: ``output(x) = base_offset + sum_k tree_k(x)``.

    Each tree is a dict in the format of shap's ``SingleTree`` (keys
    ``children_left``, ``children_right``, ``children_default``, ``features``,
    ``thresholds``, ``values``, ``node_sample_weight``); leaves have
    ``children_left == -1``. ``values`` has shape ``(n_nodes, n_outputs)`` and is
    already scaled (``1 / n_trees`` for forests, the learning rate for
    boosting). A sample goes left at a node when its feature value, as float32,
    is ``<= threshold`` (scikit-learn's rule); a missing value (NaN) follows
    ``children_default``. Converted thresholds are the largest float32 at or
    below scikit-learn's float64 ones: the same split for float32 inputs, and
    one that stays the same wherever it is compared in float32. Models
    compare by identity (``eq=False``: the fields hold arrays).

    Attributes
    ----------
    trees : list of dict
        The trees, as above.
    base_offset : numpy.ndarray of shape (n_outputs,)
        The constant added to the sum of the trees.
    n_features : int
        Number of input features.
    """

    trees: list[dict]
    base_offset: np.ndarray
    n_features: int

    @property
    def n_outputs(self) -> int:
        """Number of outputs: the length of ``base_offset``."""
        return int(np.asarray(self.base_offset).shape[0])

    def predict(self, X) -> np.ndarray:
        """Evaluate the model by direct traversal of every tree.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs; compared as float32, as scikit-learn does.

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_outputs)
            ``base_offset + sum_k tree_k(x)``.
        """
        X = as_float32_matrix(X, self.n_features, "X")
        out = np.tile(np.asarray(self.base_offset, dtype=float), (X.shape[0], 1))
        for tree in self.trees:
            out += tree["values"][_leaves(tree, X)]
        return out

    def map_outputs(self, matrix) -> TreeModel:
        """Apply a linear map to the outputs: ``output(x) @ matrix``.

        Parameters
        ----------
        matrix : array-like of shape (n_outputs, m)
            E.g. trapezoid weights that turn survival on a grid into restricted
            mean survival time (``m = 1``).

        Returns
        -------
        TreeModel
            A model with ``m`` outputs, ``values @ matrix`` and
            ``base_offset @ matrix``.
        """
        matrix = np.asarray(matrix, dtype=float)
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        if matrix.ndim != 2 or matrix.shape[0] != self.n_outputs:
            raise StratifyInputError(
                f"map_outputs needs a matrix with {self.n_outputs} rows (one per output), "
                f"got shape {matrix.shape}"
            )
        trees = [_with_values(t, t["values"] @ matrix) for t in self.trees]
        offset = np.asarray(self.base_offset, dtype=float) @ matrix
        return dataclasses.replace(self, trees=trees, base_offset=offset)

    def scale(self, factor: float) -> TreeModel:
        """Multiply the model by a constant.

        Parameters
        ----------
        factor : float
            The multiplier.

        Returns
        -------
        TreeModel
            ``factor * output(x)``.
        """
        trees = [_with_values(t, t["values"] * factor) for t in self.trees]
        offset = np.asarray(self.base_offset, dtype=float) * factor
        return dataclasses.replace(self, trees=trees, base_offset=offset)

    def fix_feature(self, feature: int, value: float) -> TreeModel:
        """Resolve every split on ``feature`` as if the feature equalled ``value``.

        Each such node is removed and its parent points to the child that
        ``value`` goes to, so the new model does not depend on ``feature`` and
        predicts, for any ``x``, what the old one predicts for ``x`` with
        ``x[feature] = value``. The sample weights of a kept subtree are scaled
        up to the weight of the removed node: the training samples that went the
        other way are spread over it in proportion (right for a randomised
        treatment, which is independent of the other features). Path-dependent
        TreeSHAP then sees proper conditional fractions.

        Parameters
        ----------
        feature : int
            Column index of the feature to fix.
        value : float
            Its value (compared as float32; NaN follows the missing-value
            direction).

        Returns
        -------
        TreeModel
            A model that ignores ``feature``.
        """
        if not 0 <= feature < self.n_features:
            raise StratifyInputError(
                f"fix_feature: feature index {feature} is out of range "
                f"for {self.n_features} features"
            )
        x = float(np.float32(value))
        trees = [_fix_tree(t, feature, x) for t in self.trees]
        return dataclasses.replace(self, trees=trees)

    def shap_model(self) -> dict:
        """The model as shap's ``TreeExplainer`` dict model.

        Returns
        -------
        dict
            ``{"trees": ..., "base_offset": ..., "input_dtype": numpy.float32,
            "internal_dtype": numpy.float64, "tree_output": "raw_value"}``.
        """
        # shap may overwrite the weights in place: give it copies
        trees = [
            {**tree, "node_sample_weight": tree["node_sample_weight"].copy()} for tree in self.trees
        ]
        return {
            "trees": trees,
            "base_offset": np.array(self.base_offset, dtype=float),
            "input_dtype": np.float32,
            "internal_dtype": np.float64,
            "tree_output": "raw_value",
        }


def combine(models: Sequence[TreeModel]) -> TreeModel:
    """Sum tree models: the trees are concatenated and the offsets added.

    Parameters
    ----------
    models : sequence of TreeModel
        Models with the same ``n_features`` and ``n_outputs``.

    Returns
    -------
    TreeModel
        ``sum_j models[j](x)``.
    """
    models = list(models)
    if not models:
        raise StratifyInputError("combine needs at least one TreeModel")
    shapes = {(m.n_features, m.n_outputs) for m in models}
    if len(shapes) > 1:
        raise StratifyInputError(
            "combine needs models with the same numbers of features and outputs, "
            f"got {sorted(shapes)}"
        )
    trees = [t for m in models for t in m.trees]
    offset = np.sum([np.asarray(m.base_offset, dtype=float) for m in models], axis=0)
    return TreeModel(trees=trees, base_offset=offset, n_features=models[0].n_features)


def tree_model(model, output: str = "risk", times=None) -> TreeModel:
    """Convert a fitted scikit-survival tree model into a :class:`TreeModel`.

    Parameters
    ----------
    model : estimator
        A fitted ``RandomSurvivalForest``, ``ExtraSurvivalTrees``,
        ``SurvivalTree`` (or ``ExtraSurvivalTree``) or
        ``GradientBoostingSurvivalAnalysis`` with ``loss="coxph"``.
    output : {"risk", "survival", "chf"}, default "risk"
        ``"risk"``: what ``model.predict`` returns. ``"survival"`` / ``"chf"``:
        the survival / cumulative hazard function at ``times`` (forests and
        trees only; right-continuous steps, 1 / 0 before the first training
        time, the last value after the last).
    times : array-like of shape (n_times,), optional
        Non-negative times; required for ``"survival"`` and ``"chf"``.

    Returns
    -------
    TreeModel
        One output for ``"risk"``, one per time otherwise.

    Raises
    ------
    StratifyInputError
        For an unsupported or unfitted model, an unknown output, missing or
        invalid times, or a curve asked of a model that cannot give it exactly.
    """
    if output not in OUTPUTS:
        raise StratifyInputError(f"output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    _check_supported(model)
    if isinstance(model, GradientBoostingSurvivalAnalysis):
        return _boosting_model(model, output)
    if output != "risk" and model.low_memory:
        raise StratifyInputError(
            f"{type(model).__name__} was fitted with low_memory=True, so its trees keep only the "
            f"risk score; refit with low_memory=False to explain output={output!r}"
        )
    grid = _check_times(times, output)
    if isinstance(model, RandomSurvivalForest | ExtraSurvivalTrees):
        trees, scaling = list(model.estimators_), 1.0 / len(model.estimators_)
    else:
        trees, scaling = [model], 1.0
    converted = [_survival_tree(t, output, grid, scaling) for t in trees]
    n_outputs = converted[0]["values"].shape[1]
    return TreeModel(converted, np.zeros(n_outputs), int(model.n_features_in_))


def regression_forest_model(forest) -> TreeModel:
    """Convert a fitted scikit-learn regression forest into a :class:`TreeModel`.

    Parameters
    ----------
    forest : RandomForestRegressor or ExtraTreesRegressor
        Fitted, with one target.

    Returns
    -------
    TreeModel
        One output: ``forest.predict``, the mean of the trees' leaf means.
    """
    if not isinstance(forest, RandomForestRegressor | ExtraTreesRegressor):
        raise StratifyInputError(
            f"regression_forest_model takes a RandomForestRegressor or ExtraTreesRegressor, "
            f"not {type(forest).__name__}"
        )
    try:
        check_is_fitted(forest, "estimators_")
    except NotFittedError:
        raise StratifyInputError(f"{type(forest).__name__} is not fitted") from None
    if forest.n_outputs_ != 1:
        raise StratifyInputError("regression_forest_model takes a forest with one target")
    scaling = 1.0 / len(forest.estimators_)
    trees = [_sklearn_tree(t.tree_, t.tree_.value[:, 0, :] * scaling) for t in forest.estimators_]
    return TreeModel(trees, np.zeros(1), int(forest.n_features_in_))


def honest_forest_model(forest) -> TreeModel | None:
    """Convert a :class:`stratify.learners.honest_trees.Forest` into a :class:`TreeModel`.

    The forest's estimate is the ratio of the means over trees of the leaf
    numerators and denominators. Where every leaf has the same denominator
    (a causal forest with propensity 0.5, whose denominators are all
    ``0.25``), that ratio is the mean over trees of numerator / denominator:
    a sum of trees, explained exactly.

    Parameters
    ----------
    forest : stratify.learners.honest_trees.Forest
        A grown forest.

    Returns
    -------
    TreeModel or None
        One output, the forest's estimate for new patients; None where the
        leaf denominators differ (the estimate is then not a sum of trees).
    """
    den = forest.denominator[forest.count > 0]
    if den.size == 0 or not np.allclose(den, den[0], rtol=1e-12, atol=0.0):
        return None
    scale = 1.0 / (forest.n_trees * float(den[0]))
    trees = []
    for t in range(forest.n_trees):
        rows = forest.tree(t)
        root = int(forest.roots[t])
        left = np.where(forest.left[rows] >= 0, forest.left[rows] - root, -1).astype(np.int32)
        right = np.where(forest.right[rows] >= 0, forest.right[rows] - root, -1).astype(np.int32)
        trees.append(
            {
                "children_left": left,
                "children_right": right,
                "children_default": left.copy(),
                "features": np.where(left >= 0, forest.feature[rows], -2).astype(np.int32),
                "thresholds": forest.threshold[rows].astype(np.float64),
                "values": (forest.numerator[rows] * scale)[:, None],
                "node_sample_weight": forest.count[rows].astype(np.float64),
            }
        )
    return TreeModel(trees, np.zeros(1), int(forest.n_features))


def explain_trees(
    tm: TreeModel,
    X,
    *,
    background=None,
    feature_names=None,
    output_names=None,
    interactions: bool = False,
) -> shap.Explanation:
    """Exact SHAP values of a :class:`TreeModel` (shap's TreeSHAP, or interventional in float64).

    Parameters
    ----------
    tm : TreeModel
        The model to explain.
    X : array-like of shape (n_samples, n_features)
        The samples to explain. Cast to float32 (as scikit-learn compares) and
        then float64, so that shap routes samples exactly as the model does.
    background : array-like of shape (n_background, n_features), optional
        ``None``: path-dependent TreeSHAP (the training samples recorded in
        the trees stand for the feature distribution). Otherwise
        interventional TreeSHAP over all rows of ``background`` (no
        subsampling; the cost grows with its number of distinct leaf patterns).
    feature_names : sequence of str, optional
        Defaults to the columns of ``X`` when it is a DataFrame.
    output_names : sequence, optional
        Names of the outputs (e.g. the times).
    interactions : bool, default False
        Return SHAP interaction values instead (path-dependent only).

    Returns
    -------
    shap.Explanation
        ``values`` of shape ``(n, p)`` for one output or ``(n, p, n_outputs)``
        (interactions: ``(n, p, p[, n_outputs])``), ``base_values`` of shape
        ``(n,)`` or ``(n, n_outputs)``, ``data`` the values of ``X``. For every
        sample, ``base_values + values.sum(axis=1)`` is the model output.

    Notes
    -----
    Both variants are computed in float64: additivity holds to rounding
    (about 1e-15 of the output's scale). Path-dependent values come from shap's
    C++ TreeSHAP; interventional ones from
    :func:`stratify.explain.interventional.interventional_shap`, whose cost
    grows with the number of distinct (leaf, outside-the-box) patterns rather
    than with patients x background rows. Both run in one thread: under
    ``joblib.parallel_config(n_jobs=k)`` the rows are split over ``k`` worker
    processes.
    """
    Xf = as_float32_matrix(X, tm.n_features, "X")
    bg = _background(tm, background, interactions)
    if feature_names is None and isinstance(X, pd.DataFrame):
        feature_names = [str(c) for c in X.columns]
    values, expected = _shap_in_chunks(tm, Xf, bg, interactions)
    base = np.repeat(expected[None, :], Xf.shape[0], axis=0)
    if tm.n_outputs == 1:
        base = base[:, 0]
    return shap.Explanation(
        values,
        base_values=base,
        data=np.asarray(X, dtype=float),
        feature_names=feature_names,
        output_names=None if output_names is None else list(output_names),
    )


def as_float32_matrix(X, n_features: int, what: str) -> np.ndarray:
    """Check a design matrix and return it rounded to float32, as float64.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Numeric values; NaN allowed (missing), infinities not.
    n_features : int
        Expected number of columns.
    what : str
        Name of the argument, for messages.

    Returns
    -------
    numpy.ndarray of shape (n_samples, n_features), float64
    """
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise StratifyInputError(f"{what} must be numeric: {err}") from None
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise StratifyInputError(
            f"{what} must be a matrix with {n_features} columns (the model's features); "
            f"got shape {arr.shape}"
        )
    if np.isinf(arr).any():
        raise StratifyInputError(
            f"{what} contains infinite values (or values too large for float32)"
        )
    return arr.astype(np.float64)


def _background(tm: TreeModel, background, interactions: bool) -> np.ndarray | None:
    """The checked background matrix, or None for path-dependent TreeSHAP."""
    if background is None:
        return None
    if interactions:
        raise StratifyInputError(
            "SHAP interaction values are path-dependent only: call with background=None"
        )
    bg = as_float32_matrix(background, tm.n_features, "background")
    if bg.shape[0] == 0:
        raise StratifyInputError("background must have at least one row")
    return bg


def _shap_in_chunks(tm: TreeModel, Xf: np.ndarray, bg, interactions: bool):
    """SHAP values and expected value(s), rows split over joblib's configured workers.

    shap's C++ kernel is single-threaded and holds the GIL, so rows are split
    over worker processes when the caller asks for them with
    ``joblib.parallel_config(n_jobs=...)``; by default one process does all.
    """
    n_jobs = min(effective_n_jobs(None), Xf.shape[0])
    if n_jobs <= 1:
        return _shap_chunk(tm, Xf, bg, interactions)
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_shap_chunk)(tm, rows, bg, interactions) for rows in np.array_split(Xf, n_jobs)
    )
    return np.concatenate([values for values, _ in parts]), parts[0][1]


def _shap_chunk(tm: TreeModel, Xf: np.ndarray, bg, interactions: bool):
    """SHAP values and expected value(s) for some rows.

    Interventional: stratify's float64 closed form
    (:func:`stratify.explain.interventional.interventional_shap`).
    Path-dependent: shap's TreeExplainer on the dict model.
    """
    if bg is not None:
        values, expected = interventional_shap(tm.trees, tm.base_offset, Xf, bg)
        return (values[:, :, 0] if tm.n_outputs == 1 else values), expected
    explainer = shap.TreeExplainer(tm.shap_model(), feature_perturbation="tree_path_dependent")
    if interactions:
        values = explainer.shap_interaction_values(Xf)
    else:
        values = explainer.shap_values(Xf, check_additivity=False)
    return values, np.asarray(explainer.expected_value, dtype=float).reshape(-1)


def _check_supported(model) -> None:
    """Refuse anything but a fitted model of a supported type, in one sentence."""
    name = type(model).__name__
    if isinstance(model, Pipeline):
        raise StratifyInputError(
            "tree_model does not take a Pipeline; explain its final step "
            f"({type(model[-1]).__name__}) on the transformed covariates instead "
            f"(supported: {_SUPPORTED})"
        )
    supported = (
        RandomSurvivalForest,
        ExtraSurvivalTrees,
        SurvivalTree,
        GradientBoostingSurvivalAnalysis,
    )
    if not isinstance(model, supported) or isinstance(
        model, ComponentwiseGradientBoostingSurvivalAnalysis
    ):
        raise StratifyInputError(
            f"exact TreeSHAP does not support {name}; supported models are {_SUPPORTED}"
        )
    fitted_attr = "tree_" if isinstance(model, SurvivalTree) else "estimators_"
    try:
        check_is_fitted(model, fitted_attr)
    except NotFittedError:
        raise StratifyInputError(f"{name} is not fitted; call fit before explaining it") from None


def _check_times(times, output: str) -> np.ndarray | None:
    """The time grid as a 1-d float array (None for the risk score)."""
    if output == "risk":
        return None
    if times is None:
        raise StratifyInputError(f"output={output!r} needs times: the time points to explain")
    grid = np.asarray(times, dtype=float).reshape(-1)
    if grid.size == 0 or not np.isfinite(grid).all() or (grid < 0).any():
        raise StratifyInputError("times must be a non-empty array of finite, non-negative times")
    return grid


def _boosting_model(model: GradientBoostingSurvivalAnalysis, output: str) -> TreeModel:
    """GBSA's log-hazard score: learning rate x (dropout scale) x sum of regression trees."""
    if output != "risk":
        raise StratifyInputError(
            f"GradientBoostingSurvivalAnalysis: exact TreeSHAP explains its risk score only; its "
            f"{output} curve S0(t)^exp(f(x)) is not a sum of trees"
        )
    if model.loss != "coxph":
        raise StratifyInputError(
            f"GradientBoostingSurvivalAnalysis(loss={model.loss!r}) predicts exp(sum of trees), "
            "which is not a sum of trees; exact TreeSHAP supports loss='coxph' only"
        )
    estimators = np.asarray(model.estimators_).reshape(-1)
    # With dropout, sksurv rescales each stage by a factor kept in the private `_scale`
    # (sksurv 0.28); it is absent when dropout_rate == 0.
    scale = getattr(model, "_scale", None)
    factors = np.ones(estimators.size) if scale is None else np.asarray(scale, dtype=float)
    trees = [
        _sklearn_tree(est.tree_, est.tree_.value[:, 0, :] * (model.learning_rate * f))
        for est, f in zip(estimators, factors[: estimators.size], strict=True)
    ]
    # init="zero" (fixed by sksurv): the initial raw prediction is 0
    return TreeModel(trees, np.zeros(1), int(model.n_features_in_))


def _survival_tree(tree: SurvivalTree, output: str, grid, scaling: float) -> dict:
    """One survival tree with node values for ``output``, multiplied by ``scaling``."""
    value = tree.tree_.value
    if tree.low_memory:
        node_values = value[:, 0, :]  # the stored risk score
    elif output == "risk":
        node_values = value[:, tree.is_event_time_, 0].sum(axis=1, keepdims=True)
    else:
        column, before_first = (1, 1.0) if output == "survival" else (0, 0.0)
        node_values = _step_values(value[:, :, column], tree.unique_times_, grid, before_first)
    return _sklearn_tree(tree.tree_, node_values * scaling)


def _step_values(curves: np.ndarray, known: np.ndarray, grid: np.ndarray, before: float):
    """Right-continuous step functions known at ``known``, evaluated at ``grid``."""
    idx = np.searchsorted(np.asarray(known, dtype=float), grid, side="right") - 1
    out = np.full((curves.shape[0], grid.size), before)
    after_start = idx >= 0
    out[:, after_start] = curves[:, idx[after_start]]
    return out


def _sklearn_tree(tree, values: np.ndarray) -> dict:
    """A shap SingleTree dict from a fitted ``sklearn.tree._tree.Tree`` and node values."""
    left = tree.children_left.astype(np.int32)
    right = tree.children_right.astype(np.int32)
    return {
        "children_left": left,
        "children_right": right,
        "children_default": np.where(tree.missing_go_to_left, left, right).astype(np.int32),
        "features": tree.feature.astype(np.int32),
        "thresholds": _float32_floor(tree.threshold),
        "values": np.ascontiguousarray(values, dtype=np.float64),
        "node_sample_weight": tree.weighted_n_node_samples.astype(np.float64),
    }


def _float32_floor(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each threshold, as float64.

    For float32 inputs ``x <= t`` and ``x <= floor32(t)`` agree, so the split is
    unchanged, and it stays unchanged where a consumer stores thresholds as
    float32 (shap's C++ kernels can): rounding a midpoint such as
    (0.1f + 0.2f) / 2 to nearest would send ``x = 0.15f`` the other way.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    t32 = t.astype(np.float32)
    t32 = np.where(t32 > t, np.nextafter(t32, np.float32(-np.inf)), t32)
    return t32.astype(np.float64)


def _with_values(tree: dict, values: np.ndarray) -> dict:
    """A copy of ``tree`` with other node values."""
    return {**tree, "values": np.ascontiguousarray(values, dtype=np.float64)}


def _leaves(tree: dict, X: np.ndarray) -> np.ndarray:
    """The leaf each row of ``X`` (float32 values as float64) falls in, vectorised by level."""
    left, right = tree["children_left"], tree["children_right"]
    node = np.zeros(X.shape[0], dtype=np.intp)
    rows = np.arange(X.shape[0])
    active = left[node] >= 0
    while active.any():
        r, n = rows[active], node[active]
        x = X[r, tree["features"][n]]
        goes_left = x <= tree["thresholds"][n]
        child = np.where(goes_left, left[n], right[n])
        node[r] = np.where(np.isnan(x), tree["children_default"][n], child)
        active[r] = left[node[r]] >= 0
    return node


def _fix_tree(tree: dict, feature: int, x: float) -> dict:
    """``tree`` with the splits on ``feature`` resolved for value ``x`` (see fix_feature)."""
    order: list[tuple[int, float]] = []  # kept old nodes in preorder, with weight factors
    new_left: list[int] = []
    new_right: list[int] = []
    stack = [(0, 1.0, -1, False)]  # (old node, weight factor, new parent, is right child)
    while stack:
        node, factor, parent, is_right = stack.pop()
        node, factor = _resolve(tree, node, factor, feature, x)
        new = len(order)
        order.append((node, factor))
        new_left.append(-1)
        new_right.append(-1)
        if parent >= 0:
            (new_right if is_right else new_left)[parent] = new
        if tree["children_left"][node] >= 0:
            stack.append((int(tree["children_right"][node]), factor, new, True))
            stack.append((int(tree["children_left"][node]), factor, new, False))
    return _compact(tree, order, new_left, new_right)


def _resolve(tree: dict, node: int, factor: float, feature: int, x: float) -> tuple[int, float]:
    """Follow splits on ``feature`` from ``node`` down to the first node that is kept."""
    weight = tree["node_sample_weight"]
    while tree["children_left"][node] >= 0 and tree["features"][node] == feature:
        if np.isnan(x):
            child = int(tree["children_default"][node])
        elif x <= tree["thresholds"][node]:
            child = int(tree["children_left"][node])
        else:
            child = int(tree["children_right"][node])
        if weight[child] > 0:
            factor *= weight[node] / weight[child]
        node = child
    return node, factor


def _compact(tree: dict, order, new_left: list[int], new_right: list[int]) -> dict:
    """Gather the kept nodes of ``tree`` into new arrays with the new child links."""
    old = np.array([n for n, _ in order], dtype=np.intp)
    factors = np.array([f for _, f in order])
    left = np.array(new_left, dtype=np.int32)
    right = np.array(new_right, dtype=np.int32)
    default = np.where(
        tree["children_default"][old] == tree["children_left"][old], left, right
    ).astype(np.int32)
    return {
        "children_left": left,
        "children_right": right,
        "children_default": np.where(left < 0, -1, default).astype(np.int32),
        "features": tree["features"][old].copy(),
        "thresholds": tree["thresholds"][old].copy(),
        "values": np.ascontiguousarray(tree["values"][old]),
        "node_sample_weight": tree["node_sample_weight"][old] * factors,
    }


__all__ = [
    "OUTPUTS",
    "TreeModel",
    "as_float32_matrix",
    "combine",
    "explain_trees",
    "regression_forest_model",
    "tree_model",
]
