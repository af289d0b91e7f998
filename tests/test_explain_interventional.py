"""The float64 interventional TreeSHAP closed form against brute-force Shapley enumeration.

The reference here shares no code with the closed form: it evaluates the game
``v_r(S) = f(x_S, r_{not S})`` by routing hybrid rows through the trees
(``TreeModel.predict``) for every coalition ``S`` and every background row, and
weighs marginal contributions by ``|S|! (p - |S| - 1)! / p!``. Both are exact
in float64, so they must agree to rounding: 1e-12 of the output's scale.
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pytest
from sksurv.ensemble import RandomSurvivalForest
from sksurv.util import Surv

from stratify.explain import interventional
from stratify.explain.interventional import interventional_shap
from stratify.explain.trees import TreeModel, tree_model

RTOL = 1e-12


def _brute_force(tm: TreeModel, X: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Baseline Shapley values averaged over the background, by enumerating coalitions."""
    n, p = X.shape
    values = np.zeros((n, p, tm.n_outputs))
    for i, x in enumerate(X):
        for j in range(p):
            others = [k for k in range(p) if k != j]
            for size in range(p):
                weight = factorial(size) * factorial(p - size - 1) / factorial(p)
                for S in combinations(others, size):
                    without = background.copy()
                    without[:, list(S)] = x[list(S)]
                    with_j = without.copy()
                    with_j[:, j] = x[j]
                    diff = tm.predict(with_j) - tm.predict(without)
                    values[i, j] += weight * diff.mean(axis=0)
    return values


def _tree(features, thresholds, children, values, default=None) -> dict:
    """A tree dict from per-node lists (children as (left, right), (-1, -1) for leaves)."""
    left = np.array([c[0] for c in children], dtype=np.int32)
    right = np.array([c[1] for c in children], dtype=np.int32)
    return {
        "children_left": left,
        "children_right": right,
        "children_default": np.array(default if default else left, dtype=np.int32),
        "features": np.array(features, dtype=np.int32),
        "thresholds": np.array(thresholds, dtype=float),
        "values": np.array(values, dtype=float).reshape(len(features), -1),
        "node_sample_weight": np.ones(len(features)),
    }


def _close(actual, expected):
    scale = max(np.abs(expected).max(), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RTOL * scale)


def _grid(rng, n, p):
    """Values on a coarse grid, so that rows fall on both sides of and onto thresholds."""
    return rng.integers(-3, 4, size=(n, p)).astype(float) / 2


def test_a_feature_split_twice_on_a_path_and_missing_values():
    # node 0: x0 <= 0 ; node 1: x1 <= 0.5 ; node 2: x0 <= 1 (x0 again, on the right of node 0)
    # node 5: x2 <= -0.5 (under node 2's left) ; NaN goes right at node 0 and left elsewhere
    tree = _tree(
        features=[0, 1, 0, -2, -2, 2, -2, -2, -2],
        thresholds=[0.0, 0.5, 1.0, 0, 0, -0.5, 0, 0, 0],
        children=[(1, 2), (3, 4), (5, 6), (-1, -1), (-1, -1), (7, 8), (-1, -1), (-1, -1), (-1, -1)],
        values=[[0, 0], [0, 0], [0, 0], [1, 10], [-2, 3], [0, 0], [5, -1], [0.5, 7], [-4, 2]],
        default=[2, 3, 5, -1, -1, 7, -1, -1, -1],
    )
    tm = TreeModel([tree], np.array([0.25, -1.0]), n_features=4)
    rng = np.random.default_rng(0)
    X, background = _grid(rng, 12, 4), _grid(rng, 9, 4)
    X[::4, 0] = np.nan
    X[1::5, 2] = np.nan
    background[::3, 0] = np.nan
    values, expected = interventional_shap(tm.trees, tm.base_offset, X, background)
    _close(values, _brute_force(tm, X, background))
    _close(expected, tm.predict(background).mean(axis=0))
    _close(expected + values.sum(axis=1), tm.predict(X))
    assert np.all(values[:, 3] == 0)  # a feature no tree splits on gets exactly zero


def test_a_forest_agrees_with_brute_force_and_adds_up():
    rng = np.random.default_rng(1)
    X = (
        np.round(rng.normal(size=(160, 4)), 1).astype(np.float32).astype(float)
    )  # as sklearn sees it
    risk = np.exp(X[:, 0] - 0.8 * X[:, 1] * (X[:, 2] > 0))
    y = Surv.from_arrays(rng.random(160) < 0.8, rng.exponential(1 / risk))
    rsf = RandomSurvivalForest(n_estimators=8, min_samples_leaf=6, random_state=0).fit(X, y)
    tm = tree_model(rsf, "survival", np.quantile(y["time"], [0.25, 0.5]))
    rows, background = X[:10], X[100:125]
    values, expected = interventional_shap(tm.trees, tm.base_offset, rows, background)
    assert values.shape == (10, 4, 2)
    _close(values, _brute_force(tm, rows, background))
    _close(expected + values.sum(axis=1), tm.predict(rows))


def test_one_background_row_gives_the_baseline_shapley_values_of_one_reference():
    tree = _tree(
        features=[0, 1, -2, -2, -2],
        thresholds=[0.0, 0.0, 0, 0, 0],
        children=[(1, 4), (2, 3), (-1, -1), (-1, -1), (-1, -1)],
        values=[0, 0, 3.0, 1.0, 7.0],
    )
    tm = TreeModel([tree], np.zeros(1), n_features=2)
    # x = (-1, 1) reaches the leaf 1.0; r = (1, -1) reaches 7.0. v({}) = 7, v({0}) = f(-1, -1) = 3,
    # v({1}) = f(1, 1) = 7, v({0, 1}) = 1: phi_0 = ((3 - 7) + (1 - 7)) / 2 = -5,
    # phi_1 = ((7 - 7) + (1 - 3)) / 2 = -1.
    values, expected = interventional_shap(
        tm.trees, tm.base_offset, np.array([[-1.0, 1.0]]), np.array([[1.0, -1.0]])
    )
    np.testing.assert_array_equal(values[0, :, 0], [-5.0, -1.0])
    assert expected[0] == 7.0


def test_a_single_leaf_tree_only_moves_the_expected_value():
    stump = _tree(features=[-2], thresholds=[0.0], children=[(-1, -1)], values=[[2.5]])
    tm = TreeModel([stump], np.array([1.0]), n_features=3)
    values, expected = interventional_shap(
        tm.trees, tm.base_offset, np.ones((4, 3)), np.zeros((2, 3))
    )
    assert np.all(values == 0)
    assert expected[0] == 3.5


def test_chunking_and_the_wide_key_path_change_nothing(monkeypatch):
    rng = np.random.default_rng(2)
    X = np.round(rng.normal(size=(200, 5)), 1).astype(np.float32).astype(float)
    y = Surv.from_arrays(rng.random(200) < 0.8, rng.exponential(np.exp(-X[:, 0])))
    rsf = RandomSurvivalForest(n_estimators=6, min_samples_leaf=4, random_state=0).fit(X, y)
    tm = tree_model(rsf)
    rows, background = X[:60], X[120:170]
    reference, _ = interventional_shap(tm.trees, tm.base_offset, rows, background)
    monkeypatch.setattr(interventional, "_CHUNK_CELLS", 50)  # about one patient per chunk
    chunked, _ = interventional_shap(tm.trees, tm.base_offset, rows, background)
    # the same terms; only BLAS's summation order may differ
    np.testing.assert_allclose(chunked, reference, rtol=0, atol=1e-14 * np.abs(reference).max())
    tolerance = 1e-14 * np.abs(reference).max()
    monkeypatch.setattr(interventional, "_MAX_PAIRS", 10)  # halve down to single rows
    halved, _ = interventional_shap(tm.trees, tm.base_offset, rows, background)
    np.testing.assert_allclose(halved, reference, rtol=0, atol=tolerance)
    monkeypatch.setattr(interventional, "_KEY_BITS", 0)  # force np.unique over rows
    wide, _ = interventional_shap(tm.trees, tm.base_offset, rows, background)
    np.testing.assert_allclose(wide, reference, rtol=0, atol=tolerance)
    monkeypatch.setattr(interventional, "_WORD_BITS", 0)  # force packed multi-word sets
    wider, _ = interventional_shap(tm.trees, tm.base_offset, rows, background)
    np.testing.assert_allclose(wider, reference, rtol=0, atol=tolerance)


@pytest.mark.parametrize("p", [1, 3, 8])
def test_the_closed_form_weights_are_shapley_values_of_the_leaf_game(p):
    # the game [A subset of S, S disjoint from B] enumerated against the tables
    w_in, w_out = interventional._table(p)
    players = range(p)
    for a in range(p + 1):
        for b in range(p + 1 - a):
            A, B = set(range(a)), set(range(a, a + b))
            phi = np.zeros(p)
            for j in players:
                others = [k for k in players if k != j]
                for size in range(p):
                    weight = factorial(size) * factorial(p - size - 1) / factorial(p)
                    for S in map(set, combinations(others, size)):
                        with_j = S | {j}
                        phi[j] += weight * (
                            float(with_j >= A and not with_j & B) - float(A <= S and not S & B)
                        )
            expected = np.array(
                [w_in[a, b] if j in A else -w_out[a, b] if j in B else 0.0 for j in players]
            )
            np.testing.assert_allclose(phi, expected, rtol=0, atol=1e-14)
