"""Large-cohort controls of the forest learners (issue #6): what they change, and what they don't.

Controls: ``time_grid`` (times rounded up to a grid containing the horizon),
``max_bins`` (covariates split at quantiles only), the forest's ``max_samples``,
``min_samples_leaf``, ``n_estimators``, ``max_features``, ``n_jobs`` through
``base_params``, the doubly robust learner's ``max_samples``/``n_jobs``, and
:func:`~stratify.explain.benefit.explained_rows` for explaining a sample.

Tolerances, with their origin: on the MIROCALS simulator (n = 600, seeds 0-3,
30-tree T-learners) a 20-point time grid moved each patient's survival at the
horizon by 0.7-1.4 points on average (largest patient 7 points) and the mean
by at most 0.08 points, against 4.4-5.5 points on average between two random
seeds of the exact fit: the grid is a quarter of the forest's own Monte Carlo
noise. The tests use another seed and allow 3 points on average and 0.5 points
of mean shift.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.base import clone
from sksurv.util import Surv

import kit
from kit import MIROCALS
from stratify.data.simulate import simulate_mirocals
from stratify.data.trial_data import TrialData
from stratify.exceptions import StratifyInputError
from stratify.explain.benefit import benefit_shap, explained_rows
from stratify.learners import DRLearner, SLearner, TLearner, make_base_model, make_learner
from stratify.learners.base import restricted_mean, rmst_grid
from stratify.learners.base_models import fit_base_model
from stratify.learners.binning import bin_covariates, quantile_edges
from stratify.learners.coarsening import coarsen_times
from stratify.learners.survival import forest_survival_at, survival_at

HORIZON = 640.0
SMALL = {"n_estimators": 10}


@functools.cache
def trial(n: int = 600, seed: int = 7) -> TrialData:
    return TrialData.from_frame(simulate_mirocals(n, seed), modifier="csf_pnfh")


def build(name: str, **params):
    return make_learner(name, params, random_state=0, modifier="csf_pnfh", horizon=HORIZON)


# --- defaults ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SLearner, TLearner])
def test_the_defaults_coarsen_nothing(cls):
    learner = cls()
    assert (learner.time_grid, learner.max_bins, learner.base_params) == (None, None, None)
    d = trial(176, 3)
    fitted = cls(base_params=SMALL, random_state=0).fit(d.X, d.y, d.arm)
    assert fitted.time_grid_ is None
    np.testing.assert_array_equal(fitted.event_times_, np.unique(d.time[d.event == 1]))


def test_default_t_learner_is_scikit_survivals_forest_bit_for_bit():
    # The learner's curves are those of RandomSurvivalForest fitted on each arm with the
    # registry's settings, evaluated by scikit-survival itself: no control changes them.
    d = trial(176, 3)
    learner = TLearner(base_params=SMALL, random_state=4).fit(d.X, d.y, d.arm)
    grid = rmst_grid(learner, HORIZON)
    for a in (0, 1):
        rows = d.arm == a
        forest = make_base_model("rsf", SMALL, random_state=4).fit(d.X[rows], d.y[rows])
        full = forest.predict_survival_function(d.X, return_array=True)
        idx = np.searchsorted(forest.unique_times_, grid, side="right") - 1
        expected = np.where(idx >= 0, full[:, np.maximum(idx, 0)], 1.0)
        np.testing.assert_array_equal(learner.predict_survival(d.X, a, grid), expected)


def test_forest_survival_at_evaluates_only_the_asked_times_exactly():
    d = trial(176, 3)
    forest = make_base_model("rsf", SMALL, random_state=1).fit(d.X, d.y)
    known = forest.unique_times_
    times = np.concatenate([[0.0, known[0] / 2], known[::5], [known[-1] + 50]])
    full = forest.predict_survival_function(d.X, return_array=True)
    curves = forest_survival_at(forest, d.X, times)
    assert curves.shape == (len(d.X), times.size)
    np.testing.assert_array_equal(curves[:, :2], 1.0)
    np.testing.assert_array_equal(curves[:, 2:-1], full[:, ::5])
    np.testing.assert_array_equal(curves[:, -1], full[:, -1])
    np.testing.assert_array_equal(survival_at(forest, d.X, times), curves)
    # threads apply the trees; the sum keeps the trees' order, so nothing changes
    # (scikit-survival's own threaded sum can differ in the last bit)
    forest.set_params(n_jobs=2)
    np.testing.assert_array_equal(forest_survival_at(forest, d.X, times), curves)


# --- time grid -----------------------------------------------------------------------


def test_coarsen_times_rounds_up_to_a_grid_with_the_horizon():
    d = trial()
    y_coarse, grid = coarsen_times(d.y, 12, horizon=HORIZON)
    assert grid.size <= 12 and HORIZON in grid and np.all(np.diff(grid) > 0)
    assert set(np.unique(y_coarse["time"])) <= set(grid)
    np.testing.assert_array_equal(y_coarse["event"], d.y["event"])
    inside = d.time <= grid[-1]
    assert np.all(y_coarse["time"][inside] >= d.time[inside])  # never earlier
    # deaths up to the horizon stay up to the horizon, later ones stay later
    died = d.event == 1
    np.testing.assert_array_equal(
        y_coarse["time"][died] <= HORIZON, d.time[died] <= HORIZON, strict=True
    )
    # every grid interval holds at most about 1/11 of the deaths (quantiles) plus ties
    counts = np.unique(y_coarse["time"][died], return_counts=True)[1]
    assert counts.max() <= died.sum() / 11 + 10


def test_without_censoring_the_grid_is_exact_at_its_points():
    # With no censoring, Kaplan-Meier at a grid point depends only on the deaths up to it,
    # so root-only trees (bootstrap Kaplan-Meier curves, same draws) agree at the grid points.
    rng = np.random.default_rng(0)
    n = 300
    X = rng.normal(size=(n, 3))
    y = Surv.from_arrays(np.ones(n, bool), np.ceil(rng.exponential(400, n)))
    stumps = {"n_estimators": 5, "min_samples_split": n + 1}
    exact = make_base_model("rsf", stumps, random_state=0).fit(X, y)
    y_coarse, grid = coarsen_times(y, 15, horizon=300.0)
    coarse = make_base_model("rsf", stumps, random_state=0).fit(X, y_coarse)
    np.testing.assert_allclose(
        survival_at(coarse, X, grid), survival_at(exact, X, grid), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("cls", [SLearner, TLearner])
def test_time_grid_keeps_survival_at_the_horizon_and_stores_fewer_times(cls):
    d = trial()
    exact = cls(base_params=SMALL, horizon=HORIZON, random_state=0).fit(d.X, d.y, d.arm)
    gridded = clone(exact).set_params(time_grid=20).fit(d.X, d.y, d.arm)
    assert gridded.time_grid_.size <= 20 and HORIZON in gridded.time_grid_
    models = [gridded.model_] if cls is SLearner else gridded.models_
    assert all(m.unique_times_.size <= 20 for m in models)
    assert all(m.unique_times_.size > 200 for m in ([exact.model_] if cls is SLearner else []))
    s_exact = exact.predict_survival(d.X, d.arm, [HORIZON])[:, 0]
    s_grid = gridded.predict_survival(d.X, d.arm, [HORIZON])[:, 0]
    assert np.abs(s_grid - s_exact).mean() < 0.03
    assert abs(np.mean(s_grid - s_exact)) < 0.005


def test_rmst_with_a_time_grid_integrates_the_gridded_curves_exactly():
    d = trial()
    learner = TLearner(base_params=SMALL, time_grid=15, horizon=HORIZON, random_state=0)
    learner.fit(d.X, d.y, d.arm)
    fine = np.union1d(rmst_grid(learner, HORIZON), np.linspace(0, HORIZON, 2001))
    by_hand = [restricted_mean(learner.predict_survival(d.X, a, fine), fine) for a in (0, 1)]
    np.testing.assert_allclose(
        learner.predict_cate(d.X)["cate_rmst"], by_hand[1] - by_hand[0], atol=1e-9
    )


# --- covariate bins ------------------------------------------------------------------


def test_max_bins_forest_takes_the_original_covariates_exactly():
    d = trial()
    edges = quantile_edges(d.X, 16)
    assert set(edges) == {j for j, c in enumerate(d.X) if d.X[c].nunique() > 16}
    binned = make_base_model("rsf", SMALL, random_state=2).fit(bin_covariates(d.X, edges), d.y)
    restored = fit_base_model("rsf", SMALL, 2, d.X, d.y, max_bins=16)
    new = trial(300, 8).X  # patients the bins were not drawn from
    for X in (d.X, new):
        times = restored.unique_times_[::10]
        np.testing.assert_array_equal(
            survival_at(restored, X, times), survival_at(binned, bin_covariates(X, edges), times)
        )
    for tree in restored.estimators_:  # splits only at the edges
        for j, e in edges.items():
            used = tree.tree_.threshold[(tree.tree_.feature == j) & (tree.tree_.children_left >= 0)]
            assert np.isin(used, e).all()


def test_max_bins_learner_is_explained_exactly():
    d = trial(300, 9)
    learner = build("t_learner", base_params=SMALL, time_grid=20, max_bins=16)
    learner.fit(d.X, d.y, d.arm)
    explanation = benefit_shap(learner, d.X.iloc[:40], HORIZON)
    cate = learner.predict_cate(d.X.iloc[:40])
    for estimand, e in explanation.explanations.items():
        np.testing.assert_allclose(
            e.base_values + e.values.sum(axis=1), cate[estimand], rtol=0, atol=1e-9
        )


# --- forest parameters ---------------------------------------------------------------


def test_max_samples_reaches_every_tree_and_shrinks_them():
    d = trial()
    full = build("t_learner", base_params=SMALL).fit(d.X, d.y, d.arm)
    sub = build("t_learner", base_params={**SMALL, "max_samples": 0.3}).fit(d.X, d.y, d.arm)
    for a in (0, 1):
        n_arm = int((d.arm == a).sum())
        roots = [t.tree_.weighted_n_node_samples[0] for t in sub.models_[a].estimators_]
        assert (
            roots == [np.ceil(0.3 * n_arm)] * SMALL["n_estimators"]
            or roots == [round(0.3 * n_arm)] * SMALL["n_estimators"]
        )
        nodes_full = np.mean([t.tree_.node_count for t in full.models_[a].estimators_])
        nodes_sub = np.mean([t.tree_.node_count for t in sub.models_[a].estimators_])
        assert nodes_sub < 0.6 * nodes_full


def test_integer_max_samples_above_an_arm_is_capped():
    d = trial(176, 3)
    learner = build("t_learner", base_params={**SMALL, "max_samples": 10_000})
    learner.fit(d.X, d.y, d.arm)  # each arm has 88 patients: every tree draws 88
    roots = {t.tree_.weighted_n_node_samples[0] for t in learner.models_[0].estimators_}
    assert roots == {float((d.arm == 0).sum())}


def test_min_samples_leaf_and_n_jobs_reach_the_forest_and_n_jobs_changes_nothing():
    d = trial(176, 3)
    one = build("s_learner", base_params={**SMALL, "min_samples_leaf": 30}).fit(d.X, d.y, d.arm)
    two = build("s_learner", base_params={**SMALL, "min_samples_leaf": 30, "n_jobs": 2})
    two.fit(d.X, d.y, d.arm)
    for tree in one.model_.estimators_:
        leaves = tree.tree_.children_left < 0
        assert tree.tree_.n_node_samples[leaves].min() >= 30
    np.testing.assert_array_equal(
        one.predict_cate(d.X).to_numpy(), two.predict_cate(d.X).to_numpy()
    )


def test_dr_learner_final_forest_controls():
    d = trial(176, 3)
    params = {"n_estimators": 10, "n_folds": 2, "max_samples": 0.5}
    one = build("dr_learner", **params).fit(d.X, d.y, d.arm)
    two = build("dr_learner", **params, n_jobs=2).fit(d.X, d.y, d.arm)
    assert one.final_rmst_.max_samples == 0.5
    # scikit-learn adds the threads' trees in the order they finish: the last bits may differ
    np.testing.assert_allclose(
        one.predict_cate(d.X).to_numpy(),
        two.predict_cate(d.X).to_numpy(),
        rtol=1e-12,
        atol=1e-12,
    )
    capped = build("dr_learner", n_estimators=5, max_samples=10_000).fit(d.X, d.y, d.arm)
    assert capped.final_rmst_.max_samples == len(d.X)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("t_learner", {"time_grid": 1}, r"time_grid must be an integer >= 2 \(got 1\)"),
        ("s_learner", {"time_grid": 50.5}, r"time_grid must be an integer >= 2"),
        ("t_learner", {"max_bins": 1}, r"max_bins must be an integer >= 2"),
        ("t_learner", {"base": "coxph", "max_bins": 64}, r"max_bins applies to forests"),
        ("t_learner", {"base_params": {"max_samples": 1.5}}, r"'rsf': max_samples must be None"),
        ("t_learner", {"base_params": {"max_samples": 0}}, r"max_samples must be None"),
        ("s_learner", {"base_params": {"min_samples_leaf": 0}}, r"min_samples_leaf must be an"),
        ("s_learner", {"base_params": {"n_estimators": 0}}, r"n_estimators must be an integer"),
        ("s_learner", {"base_params": {"max_features": "all"}}, r"max_features must be 'sqrt'"),
        ("s_learner", {"base_params": {"n_jobs": 0}}, r"n_jobs must be None or a non-zero"),
        ("t_learner", {"base_params": {"low_memory": "yes"}}, r"low_memory must be true or false"),
        ("t_learner", {"base_params": {"low_memory": True}}, r"learners need survival curves"),
        ("dr_learner", {"max_samples": 2.0}, r"max_samples must be None"),
        ("dr_learner", {"n_jobs": 0}, r"n_jobs must be None or a non-zero"),
    ],
)
def test_bad_control_values_are_named(name, params, message):
    with pytest.raises(StratifyInputError, match=f"learner '{name}': .*{message}"):
        build(name, **params)


def test_a_time_grid_needs_the_horizon():
    with pytest.raises(StratifyInputError, match="time_grid needs the horizon"):
        TLearner(time_grid=50).fit(trial(176, 3).X, trial(176, 3).y, trial(176, 3).arm)


def test_registry_gives_the_forest_learners_the_horizon():
    assert build("t_learner").horizon == HORIZON
    assert build("s_learner", time_grid=100).get_params()["horizon"] == HORIZON
    assert DRLearner().get_params()["max_samples"] is None


# --- explaining a sample -------------------------------------------------------------


def test_explained_rows_is_a_seeded_sorted_sample():
    rows = explained_rows(10_000, 500, 3)
    assert rows.size == 500 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, explained_rows(10_000, 500, 3))
    assert not np.array_equal(rows, explained_rows(10_000, 500, 4))
    np.testing.assert_array_equal(explained_rows(40, 500, 3), np.arange(40))
    np.testing.assert_array_equal(explained_rows(40, None, 3), np.arange(40))
    with pytest.raises(StratifyInputError, match="max_patients must be None or an integer"):
        explained_rows(40, 0, 3)


def test_explain_max_patients_explains_a_seeded_sample_of_the_trial(tmp_path):
    from stratify.config import load_config
    from stratify.pipeline.experiment import learn, load_trial
    from stratify.pipeline.explanation import explain_learners

    overrides = [
        f"tracking.uri={tmp_path}", *kit.SMALL,
        "learners=[{name: s_learner, params: {base_params: {n_estimators: 10}}}]",
        "explain.learner=null",
    ]  # fmt: skip
    full = load_config(MIROCALS, overrides)
    sampled = load_config(MIROCALS, [*overrides, "explain.max_patients=40"])
    data = load_trial(full)
    evaluation = learn(full, data)
    everyone = explain_learners(full, data, evaluation).learners["s_learner"]
    some = explain_learners(sampled, data, evaluation).learners["s_learner"]
    assert some.rows.size == 40 and everyone.rows is None
    values = some.benefit.explanations["cate_rmst"].values
    # the same fitted learner, so each sampled patient's SHAP values are that patient's values
    expected = everyone.benefit.explanations["cate_rmst"].values[some.rows]
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)
    table = some.patient_table(data.X.index)
    assert set(table["patient"]) == set(data.X.index[some.rows])
    assert len(some.time_shap.values) == 40 and len(everyone.time_shap.values) == len(data.X)
