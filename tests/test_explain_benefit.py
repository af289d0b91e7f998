"""SHAP of benefit: additive and exact for every learner, signs, interactions, time axis."""

import numpy as np
import pandas as pd
import pytest
import shap
from sksurv.util import Surv

from stratify.data.simulate import simulate_mirocals
from stratify.exceptions import StratifyInputError
from stratify.explain.benefit import (
    arm_interactions,
    benefit_shap,
    is_tree_learner,
    time_dependent_benefit_shap,
)
from stratify.explain.coalitions import predicted_values, shapley_from_values
from stratify.learners import make_learner

HORIZON = 640.0
SMALL = {
    "s_learner": {"base_params": {"n_estimators": 8}},
    "t_learner": {"base_params": {"n_estimators": 8}},
    "dr_learner": {"n_estimators": 20, "n_folds": 2},
    "coxnet_interaction": {"alpha": 0.05},
    "cox_interaction": {},
}


@pytest.fixture(scope="module")
def trial():
    frame = simulate_mirocals(200, seed=5)
    X = frame[["age", "svc", "delta_fs", "csf_pnfh"]].astype(float)
    return X, Surv.from_arrays(frame["event"], frame["time"]), frame["arm"].to_numpy()


@pytest.fixture(scope="module")
def fitted(trial):
    X, y, arm = trial
    build = {"random_state": 0, "modifier": "csf_pnfh", "horizon": HORIZON}
    return {name: make_learner(name, p, **build).fit(X, y, arm) for name, p in SMALL.items()}


def exact_reference(learner, X, background, estimand):
    """shap's brute-force ExactExplainer on the learner's predict_cate, same background."""
    columns = list(X.columns)

    def f(values):
        return learner.predict_cate(pd.DataFrame(values, columns=columns))[estimand].to_numpy()

    masker = shap.maskers.Independent(background.to_numpy(), max_samples=len(background))
    return shap.ExactExplainer(f, masker)(X.to_numpy()).values


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("with_background", [False, True])
def test_shap_of_benefit_adds_up_to_the_estimate(trial, fitted, name, with_background):
    X, _, _ = trial
    learner = fitted[name]
    if not with_background and not is_tree_learner(learner):
        pytest.skip("model-agnostic explainers always use a background")
    background = X.iloc[::10] if with_background else None
    explanation = benefit_shap(learner, X.iloc[:40], HORIZON, background=background)
    predicted = learner.predict_cate(X.iloc[:40])
    # every path works in float64: path-dependent TreeSHAP (shap), interventional TreeSHAP
    # (stratify's closed form) and Kernel SHAP on all coalitions; the issue asks for 1e-8
    rtol = 1e-10
    for estimand, e in explanation.explanations.items():
        assert e.values.shape == (40, 4) and e.feature_names == list(X.columns)
        total = e.base_values + e.values.sum(axis=1)
        scale = np.abs(predicted[estimand]).max()
        np.testing.assert_allclose(total, predicted[estimand], rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize(
    "name", ["t_learner", "s_learner", "dr_learner", "cox_interaction", "coxnet_interaction"]
)
def test_shap_of_benefit_agrees_with_brute_force_shapley_values(trial, fitted, name):
    # Interventional TreeSHAP over a background equals the Shapley values that
    # ExactExplainer computes by enumerating all 2^4 coalitions on the same background.
    X, _, _ = trial
    background = X.iloc[::20]
    explanation = benefit_shap(fitted[name], X.iloc[:15], HORIZON, background=background)
    # both exact in float64 (the issue asks for 1e-6)
    rtol = 1e-10
    for estimand in ("cate_rmst", "cate_surv"):
        reference = exact_reference(fitted[name], X.iloc[:15], background, estimand)
        ours = explanation.explanations[estimand].values
        np.testing.assert_allclose(ours, reference, rtol=rtol, atol=rtol * np.abs(reference).max())


def test_swapping_the_arms_negates_every_shap_value(trial):
    X, y, arm = trial
    params = SMALL["t_learner"]
    build = {"random_state": 0, "modifier": None, "horizon": HORIZON}
    one = make_learner("t_learner", params, **build).fit(X, y, arm)
    other = make_learner("t_learner", params, **build).fit(X, y, 1 - arm)
    a = benefit_shap(one, X.iloc[:30], HORIZON).explanations["cate_rmst"]
    b = benefit_shap(other, X.iloc[:30], HORIZON).explanations["cate_rmst"]
    np.testing.assert_allclose(a.values, -b.values, atol=1e-9)
    np.testing.assert_allclose(a.base_values, -b.base_values, atol=1e-9)


def _shapley_by_permutations(f, x, background):
    """Shapley values by their definition: the mean marginal gain over all p! orders."""
    from itertools import permutations

    p = len(x)

    def value(coalition):
        rows = background.copy()
        rows[:, list(coalition)] = x[list(coalition)]
        return f(rows).mean(axis=0)

    phi = np.zeros((p, 2))
    orders = list(permutations(range(p)))
    for order in orders:
        for k, j in enumerate(order):
            phi[j] += value(order[: k + 1]) - value(order[:k])
    return phi / len(orders)


def exact_shapley(predict, data, background, **kwargs):
    return shapley_from_values(predicted_values(predict, data, background, **kwargs))


def test_exact_shapley_is_the_definition_in_any_batch():
    rng = np.random.default_rng(0)
    data, background = rng.normal(size=(7, 4)), rng.normal(size=(5, 4))
    calls = []

    def f(rows):  # two outputs, with an interaction and a non-linearity
        calls.append(len(rows))
        return np.column_stack([rows[:, 0] * rows[:, 1] + np.exp(rows[:, 2]), np.sin(rows[:, 3])])

    values, base = exact_shapley(f, data, background)
    assert len(calls) == 3  # the background, the patients, all their coalitions at once
    for i in range(len(data)):
        np.testing.assert_allclose(
            values[i], _shapley_by_permutations(f, data[i], background), atol=1e-12
        )
    np.testing.assert_allclose(base + values.sum(axis=1), f(data), atol=1e-12)
    np.testing.assert_allclose(base, np.tile(f(background).mean(axis=0), (7, 1)), atol=1e-15)
    # covariates an output does not use get nothing of it
    assert np.abs(values[:, 3, 0]).max() < 1e-15
    assert np.abs(values[:, :3, 1]).max() < 1e-15
    calls.clear()
    small, _ = exact_shapley(f, data, background, max_rows=100)  # 70 rows, one patient a call
    np.testing.assert_allclose(small, values, atol=1e-12)
    assert len(calls) == 1 + 2 * 7


def test_exact_shapley_of_one_covariate_is_the_whole_difference():
    background = np.array([[1.0], [3.0]])
    values, base = exact_shapley(
        lambda r: np.column_stack([r[:, 0] ** 2]), np.array([[4.0]]), background
    )
    assert base[0, 0] == 5.0 and values[0, 0, 0] == 11.0


def test_ranks_and_importance(trial, fitted):
    X, _, _ = trial
    explanation = benefit_shap(fitted["cox_interaction"], X.iloc[:30], HORIZON, background=X[:20])
    importance = explanation.importance()
    assert list(importance.index) == sorted(importance.index, key=lambda c: -importance[c])
    # The reference model's benefit varies with pNFH through the interaction term: first.
    assert explanation.rank("csf_pnfh") == 1
    with pytest.raises(StratifyInputError, match="'bulbar' is not a covariate"):
        explanation.rank("bulbar")
    assert "exact over 20 background patients (all 2^4 coalitions)" in explanation.method


def test_arm_interactions_find_the_effect_modifier():
    # The arm halves the hazard when x1 is high and doubles it when low; x2, x3 are noise.
    rng = np.random.default_rng(3)
    n = 600
    X = pd.DataFrame(rng.uniform(size=(n, 3)), columns=["x1", "x2", "x3"])
    arm = rng.integers(0, 2, n)
    log_hr = arm * np.where(X["x1"] > 0.5, -1.5, 1.5)
    time = rng.exponential(400 * np.exp(-log_hr))
    y = Surv.from_arrays(time < 640, np.minimum(time, 640))
    params = {"base_params": {"n_estimators": 30}}
    learner = make_learner("s_learner", params, random_state=0, modifier=None, horizon=HORIZON)
    learner.fit(X, y, arm)
    table = arm_interactions(learner, X, arm, HORIZON)
    assert list(table.columns) == ["covariate", "mean_abs_interaction", "mean_interaction", "rank"]
    assert table["covariate"].iloc[0] == "x1" and table["rank"].tolist() == [1, 2, 3]
    assert table["mean_abs_interaction"].iloc[0] > 3 * table["mean_abs_interaction"].iloc[1]
    benefit = benefit_shap(learner, X, HORIZON)
    assert benefit.rank("x1") == 1


def test_arm_interactions_need_an_s_learner_forest(trial, fitted):
    X, _, arm = trial
    with pytest.raises(StratifyInputError, match="S-learner on a survival forest"):
        arm_interactions(fitted["t_learner"], X, arm, HORIZON)


def test_time_dependent_shap_of_the_survival_difference(trial, fitted):
    X, _, _ = trial
    times = np.array([100.0, 300.0, 640.0])
    for name in ("t_learner", "s_learner"):
        e = time_dependent_benefit_shap(fitted[name], X.iloc[:25], times)
        assert e.values.shape == (25, 4, 3)
        learner = fitted[name]
        diff = learner.predict_survival(X.iloc[:25], 1, times) - learner.predict_survival(
            X.iloc[:25], 0, times
        )
        np.testing.assert_allclose(e.base_values + e.values.sum(axis=1), diff, atol=1e-10)
    assert time_dependent_benefit_shap(fitted["cox_interaction"], X, times) is None


def test_wrong_columns_are_refused(trial, fitted):
    X, _, _ = trial
    with pytest.raises(StratifyInputError, match="differ from the learner's covariates"):
        benefit_shap(fitted["t_learner"], X[["svc", "age", "delta_fs", "csf_pnfh"]], HORIZON)
    with pytest.raises(StratifyInputError, match="DataFrame"):
        benefit_shap(fitted["t_learner"], X.to_numpy(), HORIZON)
