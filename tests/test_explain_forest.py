"""Exact TreeSHAP for scikit-survival trees: conversion, additivity, agreement, rejections.

Tolerances, all relative to the largest absolute value of the reference (so that
curves near 0, e.g. the early cumulative hazard, are not held to a relative
standard they cannot meet):

- ``EXACT`` (1e-12): a converted model against the sksurv predictions; only the
  order of floating-point sums differs.
- ``PATH`` (1e-8, the issue's additivity target): path-dependent TreeSHAP,
  which shap computes in float64 (observed ~1e-15).
- ``INTERVENTIONAL`` (1e-10): stratify's float64 closed form
  (``stratify.explain.interventional``), against sums and against shap's
  ``ExactExplainer`` (the issue asks for 1e-8 and 1e-6; observed ~1e-15).
  shap's own interventional kernel, which keeps node values and weights in
  float32, would fail this at ~1e-8. A misrouted sample or a wrong scaling
  costs orders of magnitude more.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from joblib import parallel_config
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.column import encode_categorical
from sksurv.ensemble import (
    ComponentwiseGradientBoostingSurvivalAnalysis,
    ExtraSurvivalTrees,
    GradientBoostingSurvivalAnalysis,
    RandomSurvivalForest,
)
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.tree import SurvivalTree
from sksurv.util import Surv

from stratify.exceptions import StratifyInputError
from stratify.explain.forest import forest_shap
from stratify.explain.trees import (
    TreeModel,
    combine,
    explain_trees,
    regression_forest_model,
    tree_model,
)
from stratify.learners.survival import survival_at

EXACT, PATH, INTERVENTIONAL = 1e-12, 1e-8, 1e-10
ARM = 0  # column of the treatment arm in the simulated trial


def _close(actual, expected, rtol):
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def _trial(n=200, seed=0):
    """Arm (0/1), four covariates on a 0.01 grid (ties, as in clinical data), censored times."""
    rng = np.random.default_rng(seed)
    arm = rng.permutation(np.repeat([0.0, 1.0], n // 2))
    cov = np.round(rng.normal(size=(n, 4)), 2)
    rate = 0.1 * np.exp(0.6 * cov[:, 0] - 0.7 * arm + 0.8 * arm * cov[:, 1])
    time = rng.exponential(1 / rate)
    censor = rng.uniform(2, 20, n)
    X = np.column_stack([arm, cov])
    return X, Surv.from_arrays(time <= censor, np.round(np.minimum(time, censor), 2))


@pytest.fixture(scope="module")
def data():
    return _trial()


@pytest.fixture(scope="module")
def models(data):
    X, y = data
    forest = {"n_estimators": 15, "min_samples_leaf": 5, "random_state": 0}
    boost = {"n_estimators": 20, "max_depth": 2, "learning_rate": 0.2, "random_state": 0}
    built = {
        "rsf": RandomSurvivalForest(**forest),
        "est": ExtraSurvivalTrees(**forest),
        "tree": SurvivalTree(max_depth=5, min_samples_leaf=5),
        "rsf_low_memory": RandomSurvivalForest(**forest, low_memory=True),
        "gbsa": GradientBoostingSurvivalAnalysis(**boost, subsample=0.8),
        "gbsa_dropout": GradientBoostingSurvivalAnalysis(**boost, dropout_rate=0.2),
    }
    return {name: model.fit(X, y) for name, model in built.items()}


def _times(model):
    """Before the first training time, inside the range (on and between grid points), after."""
    known = model.unique_times_
    return np.array([known[0] / 2, known[3], np.median(known), known[-5] + 1e-3, known[-1] + 1])


def _reference(model, X, output, times):
    """sksurv's own predictions: ``predict``, or its step functions inside their domain."""
    if output == "risk":
        return model.predict(X)[:, None]
    method = (
        model.predict_survival_function
        if output == "survival"
        else model.predict_cumulative_hazard_function
    )
    curves, arrays = method(X), method(X, return_array=True)
    known = model.unique_times_
    out = np.empty((len(X), len(times)))
    for j, t in enumerate(times):
        if t < known[0]:
            out[:, j] = 1.0 if output == "survival" else 0.0
        elif t > known[-1]:
            out[:, j] = arrays[:, -1]
        else:
            out[:, j] = [fn(t) for fn in curves]
    return out


CASES = [
    ("rsf", "risk"),
    ("rsf", "survival"),
    ("rsf", "chf"),
    ("est", "risk"),
    ("est", "survival"),
    ("tree", "risk"),
    ("tree", "chf"),
    ("rsf_low_memory", "risk"),
    ("gbsa", "risk"),
    ("gbsa_dropout", "risk"),
]


def _sums(expl):
    """base value + sum of SHAP values, as (n, n_outputs)."""
    total = expl.base_values + expl.values.sum(axis=1)
    return total.reshape(len(total), -1)


@pytest.mark.parametrize(("name", "output"), CASES)
def test_tree_model_predicts_what_sksurv_predicts(models, data, name, output):
    X, _ = data
    model = models[name]
    times = None if output == "risk" else _times(model)
    tm = tree_model(model, output, times)
    assert tm.n_outputs == (1 if times is None else len(times))
    _close(tm.predict(X), _reference(model, X, output, times), EXACT)


@pytest.mark.parametrize(("name", "output"), CASES)
def test_shap_values_add_up_to_the_prediction(models, data, name, output):
    X, _ = data
    model = models[name]
    times = None if output == "risk" else _times(model)
    reference = _reference(model, X[:40], output, times)
    path = forest_shap(model, X[:40], output=output, times=times)
    _close(_sums(path), reference, PATH)
    interventional = forest_shap(model, X[:40], output=output, times=times, background=X[100:150])
    _close(_sums(interventional), reference, INTERVENTIONAL)
    # the base value is the mean prediction over the background
    _close(
        interventional.base_values.reshape(40, -1)[0],
        _reference(model, X[100:150], output, times).mean(axis=0),
        INTERVENTIONAL,
    )


@pytest.mark.parametrize("output", ["risk", "survival"])
def test_interventional_values_equal_shaps_exact_explainer(models, data, output):
    # imported here: stratify.explain.trees has imported shap, silencing its import-time
    # matplotlib deprecation notice that pytest would turn into an error
    import shap

    X, _ = data
    model = models["rsf"]
    times = None if output == "risk" else _times(model)[1:4]
    background = X[100:130]

    def predict(rows):
        return model.predict(rows) if output == "risk" else survival_at(model, rows, times)

    masker = shap.maskers.Independent(background, max_samples=len(background))
    exact = shap.ExactExplainer(predict, masker)(X[:6])
    ours = forest_shap(model, X[:6], output=output, times=times, background=background)
    assert ours.values.shape == exact.values.shape
    _close(ours.values, exact.values, INTERVENTIONAL)
    _close(ours.base_values, exact.base_values, INTERVENTIONAL)


def test_explanation_names_features_and_times(gbsg2):
    X, y = gbsg2
    X = encode_categorical(X)
    rsf = RandomSurvivalForest(n_estimators=5, min_samples_leaf=20, random_state=0).fit(X, y)
    expl = forest_shap(rsf, X.iloc[:3], output="survival", times=[365, 730])
    assert expl.feature_names == list(X.columns)
    assert expl.output_names == [365.0, 730.0]
    assert expl.values.shape == (3, X.shape[1], 2)
    assert expl.base_values.shape == (3, 2)
    np.testing.assert_array_equal(expl.data, X.iloc[:3].to_numpy(dtype=float))
    with pytest.raises(
        StratifyInputError, match="must have the model's columns in order: age, estrec, horTh=yes"
    ):
        forest_shap(rsf, X.iloc[:3, ::-1])


def test_map_outputs_scale_and_combine_are_exact(models, data):
    X, _ = data
    rsf, gbsa = models["rsf"], models["gbsa"]
    grid = np.linspace(0, 10, 21)
    surv = tree_model(rsf, "survival", grid)
    # restricted mean survival time up to 10: trapezoid weights on the grid
    weights = np.full(grid.size, grid[1] - grid[0])
    weights[[0, -1]] /= 2
    rmst = surv.map_outputs(weights[:, None])
    assert rmst.n_outputs == 1
    _close(rmst.predict(X)[:, 0], survival_at(rsf, X, grid) @ weights, EXACT)
    # SHAP values are linear in the model: explaining the map = mapping the explanation
    _close(explain_trees(rmst, X[:20]).values, explain_trees(surv, X[:20]).values @ weights, PATH)

    mixed = combine([tree_model(rsf), tree_model(gbsa).scale(2.5)])
    assert len(mixed.trees) == len(rsf.estimators_) + gbsa.estimators_.shape[0]
    expected = rsf.predict(X) + 2.5 * gbsa.predict(X)
    _close(mixed.predict(X)[:, 0], expected, EXACT)
    _close(_sums(explain_trees(mixed, X[:20])), expected[:20, None], PATH)


def _splits_on(tm: TreeModel, feature: int) -> int:
    return sum(
        int(((t["children_left"] >= 0) & (t["features"] == feature)).sum()) for t in tm.trees
    )


@pytest.mark.parametrize("arm", [0.0, 1.0])
def test_fix_feature_predicts_the_counterfactual_arm(models, data, arm):
    X, _ = data
    rsf = models["rsf"]
    tm = tree_model(rsf)
    assert _splits_on(tm, ARM) > 0  # otherwise the test would be vacuous
    fixed = tm.fix_feature(ARM, arm)
    assert _splits_on(fixed, ARM) == 0
    X_arm = X.copy()
    X_arm[:, ARM] = arm
    counterfactual = rsf.predict(X_arm)[:, None]
    _close(fixed.predict(X), counterfactual, EXACT)
    path = explain_trees(fixed, X[:40])
    _close(_sums(path), counterfactual[:40], PATH)
    assert np.all(path.values[:, ARM] == 0)
    interventional = explain_trees(fixed, X[:40], background=X[100:150])
    _close(_sums(interventional), counterfactual[:40], INTERVENTIONAL)
    for tree in fixed.trees:  # the kept subtrees carry the removed nodes' weight
        internal = np.flatnonzero(tree["children_left"] >= 0)
        weight = tree["node_sample_weight"]
        children = (
            weight[tree["children_left"][internal]] + weight[tree["children_right"][internal]]
        )
        np.testing.assert_allclose(weight[internal], children, rtol=1e-12)


def test_fix_feature_of_a_root_split_keeps_the_chosen_child_with_the_root_weight():
    X = np.column_stack([np.tile([0.0, 1.0], 10), np.arange(20.0)])
    y = Surv.from_arrays(np.ones(20, bool), np.where(X[:, 0] == 0, 1.0, 9.0) + X[:, 1] / 100)
    tree = SurvivalTree(max_depth=1, min_samples_leaf=2).fit(X, y)
    assert tree.tree_.feature[0] == 0
    fixed = tree_model(tree).fix_feature(0, 1.0)
    (only,) = fixed.trees
    assert only["children_left"].tolist() == [-1]
    assert only["node_sample_weight"].tolist() == [20.0]
    treated = np.column_stack([np.ones(20), X[:, 1]])
    _close(fixed.predict(X)[:, 0], tree.predict(treated), EXACT)


def test_interaction_values_sum_to_shap_values(models, data):
    X, _ = data
    rsf = models["rsf"]
    tm = tree_model(rsf)
    inter = explain_trees(tm, X[:8], interactions=True)
    assert inter.values.shape == (8, X.shape[1], X.shape[1])
    _close(inter.values.sum(axis=2), explain_trees(tm, X[:8]).values, PATH)
    _close(inter.values, np.swapaxes(inter.values, 1, 2), PATH)
    curves = tree_model(rsf, "survival", _times(rsf)[1:3])
    multi = explain_trees(curves, X[:4], interactions=True)
    assert multi.values.shape == (4, X.shape[1], X.shape[1], 2)
    _close(multi.values.sum(axis=2), explain_trees(curves, X[:4]).values, PATH)


def test_values_between_float32_thresholds_are_routed_as_sklearn_routes_them():
    # sklearn's threshold between 0.1f and 0.2f is their float64 midpoint, which rounds to
    # 0.15f: a kernel comparing in float32 would send x = 0.15 left, sklearn right.
    x = np.repeat([0.1, 0.2], 20)
    X = np.column_stack([x, np.random.default_rng(0).permutation(np.linspace(0, 1, 40))])
    y = Surv.from_arrays(np.ones(40, bool), np.where(x > 0.15, 1.0, 5.0) + np.linspace(0, 0.5, 40))
    tree = SurvivalTree(max_depth=1, min_samples_leaf=5).fit(X, y)
    X_new = np.array([[0.15, 0.5], [0.1, 0.5], [0.2, 0.5]])
    expected = tree.predict(X_new)
    assert expected[0] == expected[2] != expected[1]
    expl = forest_shap(tree, X_new, background=X[::4])
    _close(expl.base_values + expl.values.sum(axis=1), expected, INTERVENTIONAL)


def test_missing_values_follow_sklearns_direction():
    X, y = _trial(seed=3)
    X[::7, 2] = np.nan
    rsf = RandomSurvivalForest(n_estimators=10, min_samples_leaf=5, random_state=1).fit(X, y)
    X_new = X[:30].copy()
    X_new[::3, 1] = np.nan
    expected = rsf.predict(X_new)
    _close(tree_model(rsf).predict(X_new)[:, 0], expected, EXACT)
    _close(_sums(forest_shap(rsf, X_new))[:, 0], expected, PATH)
    _close(_sums(forest_shap(rsf, X_new, background=X[50:80]))[:, 0], expected, INTERVENTIONAL)


def test_rows_split_over_joblib_workers_give_the_same_values(models, data):
    X, _ = data
    tm = tree_model(models["est"], "chf", _times(models["est"]))
    alone = explain_trees(tm, X[:15])
    with parallel_config(backend="threading", n_jobs=2):
        split = explain_trees(tm, X[:15])
    np.testing.assert_array_equal(split.values, alone.values)
    np.testing.assert_array_equal(split.base_values, alone.base_values)


def _unfitted():
    return forest_shap(RandomSurvivalForest(), np.zeros((2, 5)))


REJECTIONS = {
    "cox": (
        lambda m, X: forest_shap(CoxPHSurvivalAnalysis(), X),
        "exact TreeSHAP does not support CoxPHSurvivalAnalysis; supported models are "
        "RandomSurvivalForest",
    ),
    "componentwise": (
        lambda m, X: forest_shap(ComponentwiseGradientBoostingSurvivalAnalysis(), X),
        "does not support ComponentwiseGradientBoostingSurvivalAnalysis",
    ),
    "pipeline": (
        lambda m, X: forest_shap(make_pipeline(StandardScaler(), m["rsf"]), X),
        "does not take a Pipeline; explain its final step (RandomSurvivalForest)",
    ),
    "unfitted": (lambda m, X: _unfitted(), "RandomSurvivalForest is not fitted"),
    "no times": (
        lambda m, X: forest_shap(m["rsf"], X, output="survival"),
        "output='survival' needs times",
    ),
    "negative times": (
        lambda m, X: forest_shap(m["rsf"], X, output="chf", times=[1.0, -1.0]),
        "non-negative times",
    ),
    "unknown output": (
        lambda m, X: forest_shap(m["rsf"], X, output="hazard"),
        "output must be one of risk, survival, chf",
    ),
    "gbsa survival": (
        lambda m, X: forest_shap(m["gbsa"], X, output="survival", times=[1.0]),
        "explains its risk score only",
    ),
    "gbsa squared loss": (
        lambda m, X: tree_model(GradientBoostingSurvivalAnalysis(loss="squared").fit(*_trial(60))),
        "supports loss='coxph' only",
    ),
    "low memory survival": (
        lambda m, X: forest_shap(m["rsf_low_memory"], X, output="survival", times=[1.0]),
        "fitted with low_memory=True",
    ),
    "wrong columns": (
        lambda m, X: forest_shap(m["rsf"], X[:, 1:]),
        "must have 5 columns (the model's features); got shape (200, 4)",
    ),
    "wrong background": (
        lambda m, X: forest_shap(m["rsf"], X, background=X[:, :3]),
        "background must have 5 columns",
    ),
    "interactions with background": (
        lambda m, X: explain_trees(tree_model(m["rsf"]), X, background=X, interactions=True),
        "interaction values are path-dependent only",
    ),
}


@pytest.mark.parametrize("case", REJECTIONS)
def test_rejections_name_the_problem(models, data, case):
    call, message = REJECTIONS[case]
    with pytest.raises(StratifyInputError, match=re.escape(message)):
        call(models, data[0])


def test_dataframe_without_feature_names_in_model_is_accepted(models, data):
    X, _ = data
    frame = pd.DataFrame(X, columns=["arm", "a", "b", "c", "d"])
    expl = forest_shap(models["tree"], frame.iloc[:3])
    assert expl.feature_names == ["arm", "a", "b", "c", "d"]


def test_regression_forests_convert_exactly_and_others_are_refused(data):
    from sklearn.ensemble import (
        ExtraTreesRegressor,
        GradientBoostingRegressor,
        RandomForestRegressor,
    )

    X, y = data
    target = np.log(y["time"])
    for forest in (
        RandomForestRegressor(n_estimators=7, min_samples_leaf=5, random_state=0),
        ExtraTreesRegressor(n_estimators=7, min_samples_leaf=5, random_state=0),
    ):
        forest.fit(X, target)
        tm = regression_forest_model(forest)
        _close(tm.predict(X)[:, 0], forest.predict(X), EXACT)
        interventional = explain_trees(tm, X[:20], background=X[100:140])
        _close(_sums(interventional)[:, 0], forest.predict(X[:20]), INTERVENTIONAL)
    with pytest.raises(StratifyInputError, match="not GradientBoostingRegressor"):
        regression_forest_model(GradientBoostingRegressor().fit(X, target))
    with pytest.raises(StratifyInputError, match="RandomForestRegressor is not fitted"):
        regression_forest_model(RandomForestRegressor())
    two = RandomForestRegressor(n_estimators=2).fit(X, np.column_stack([target, target]))
    with pytest.raises(StratifyInputError, match="one target"):
        regression_forest_model(two)
