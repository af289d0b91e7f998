"""Risk and benefit metrics: brute-force definitions, sksurv equality, null behaviour, speed."""

import itertools
import time

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats
from sklearn.exceptions import UndefinedMetricWarning
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    integrated_brier_score,
)
from sksurv.util import Surv

from stratify.data.simulate import simulate_mirocals
from stratify.exceptions import StratifyInputError
from stratify.report.figures.benefit import benefit_calibration_plot
from stratify.trial.km import arm_survival, rmst_difference
from stratify.validation.metrics import (
    benefit_calibration,
    blp_test,
    c_for_benefit,
    combine_heterogeneity,
    evaluation_times,
    heterogeneity_test,
    rate,
    risk_metrics,
    truth_metrics,
)

# ---------------------------------------------------------------- RATE


def brute_rate(priorities, scores, target):
    """RATE by its definition, for distinct priorities: loop over j, mean of the top j."""
    order = np.argsort(-np.asarray(priorities), kind="stable")
    g = np.asarray(scores, float)[order]
    n = len(g)
    toc = [g[: j + 1].mean() - g.mean() for j in range(n)]
    weights = np.ones(n) if target == "AUTOC" else np.arange(1, n + 1) / n
    return float(np.sum(weights * np.array(toc)) / n)


@pytest.mark.parametrize("target", ["AUTOC", "QINI"])
def test_rate_equals_brute_force(target):
    rng = np.random.default_rng(1)
    priorities, scores = rng.permutation(9), rng.normal(size=9)
    estimate, _ = rate(priorities, scores, target=target, n_bootstrap=10, random_state=0)
    assert estimate == pytest.approx(brute_rate(priorities, scores, target), abs=1e-12)


@pytest.mark.parametrize("target", ["AUTOC", "QINI"])
def test_ties_average_over_orderings(target):
    priorities = np.array([2, 0, 2, 1, 2, 1, 0])
    scores = np.array([3.0, -1.0, 0.5, 2.0, -2.0, 1.0, 4.0])
    groups = [np.flatnonzero(priorities == v) for v in (2, 1, 0)]
    values = []
    for perms in itertools.product(*(itertools.permutations(g) for g in groups)):
        ranked = np.concatenate(perms)  # one way of breaking the ties
        distinct = np.empty(7)
        distinct[ranked] = np.arange(7, 0, -1)
        values.append(brute_rate(distinct, scores, target))
    estimate, _ = rate(priorities, scores, target=target, n_bootstrap=10, random_state=0)
    assert estimate == pytest.approx(np.mean(values), abs=1e-12)


def test_constant_priorities_give_zero():
    estimate, se = rate(np.ones(50), np.arange(50.0), n_bootstrap=20, random_state=0)
    assert estimate == pytest.approx(0, abs=1e-12)
    assert se == pytest.approx(0, abs=1e-12)
    assert heterogeneity_test(np.ones(50), np.arange(50.0), n_bootstrap=20, random_state=0) == 1


def test_qini_weighs_the_whole_ranking():
    n = 1000
    rank = np.arange(n)[::-1].astype(float)  # priority n-1, ..., 0
    top_heavy = np.where(rank >= 0.9 * n, 1.0, 0.0)  # only the top 10 % benefit
    linear = rank / n  # benefit grows steadily with priority
    ratio = {}
    for name, scores in (("top", top_heavy), ("linear", linear)):
        autoc, _ = rate(rank, scores, n_bootstrap=2, random_state=0)
        qini, _ = rate(rank, scores, target="QINI", n_bootstrap=2, random_state=0)
        ratio[name] = autoc / qini
    # Theory: ratio 2 ln(1/0.1) / 0.9 = 5.1 for the top 10 %, 3 for linear benefit.
    assert ratio["top"] == pytest.approx(5.1, abs=0.2)
    assert ratio["linear"] == pytest.approx(3.0, abs=0.05)


def test_perfect_priorities_positive_random_near_zero():
    rng = np.random.default_rng(2)
    perfect, random = [], []
    for _ in range(100):
        tau = rng.normal(size=220)
        scores = tau + rng.normal(0, 2, 220)
        perfect.append(rate(tau, scores, n_bootstrap=50, random_state=0))
        random.append(rate(rng.random(220), scores, n_bootstrap=50, random_state=0)[0])
    perfect = np.array(perfect)
    assert np.all(perfect[:, 0] > 0)
    assert np.mean(perfect[:, 0] / perfect[:, 1]) > 3  # z-statistics well above 0
    # Random priorities: mean over 100 replicates within 3 Monte Carlo SEs of 0.
    assert abs(np.mean(random)) <= 3 * np.std(random) / np.sqrt(100)


@pytest.mark.parametrize("bootstrap", ["half", "standard"])
def test_bootstrap_se_matches_spread_over_replicates(bootstrap):
    rng = np.random.default_rng(3)
    results = []
    for _ in range(150):
        x = rng.normal(size=220)
        scores = 0.5 * x + rng.standard_exponential(220) * 2  # skewed noise
        results.append(rate(x, scores, n_bootstrap=100, bootstrap=bootstrap, random_state=1))
    estimates, ses = np.array(results).T
    assert 0.8 <= ses.mean() / estimates.std() <= 1.25


def test_rate_is_seeded_and_fast():
    rng = np.random.default_rng(4)
    priorities, scores = rng.normal(size=220), rng.normal(size=220)
    first = rate(priorities, scores, random_state=5)
    assert rate(priorities, scores, random_state=5) == first
    elapsed = []
    for _ in range(5):
        start = time.process_time()  # CPU time: not inflated by other jobs
        rate(priorities, scores, n_bootstrap=200, random_state=5)
        elapsed.append(time.process_time() - start)
    assert min(elapsed) < 0.1


@pytest.mark.parametrize("scenario", ["random_priorities", "priorities_drive_the_noise"])
def test_heterogeneity_test_keeps_its_level_on_true_null_scores(scenario):
    # Scores with the same mean for everyone (no heterogeneity), skewed noise whose
    # spread grows with x; priorities random, or x itself (ranking by noise level).
    rng = np.random.default_rng(6)
    reps, n = 300, 220
    rejected = 0
    for r in range(reps):
        x = rng.normal(size=n)
        noise = rng.standard_exponential(n) - 1.0
        scores = 30.0 + 100.0 * np.exp(0.5 * x) * noise
        priorities = rng.random(n) if scenario == "random_priorities" else x
        rejected += heterogeneity_test(priorities, scores, n_bootstrap=100, random_state=r) < 0.05
    margin = 3 * np.sqrt(0.05 * 0.95 / reps)  # Monte Carlo error of the rejection rate
    assert rejected / reps <= 0.05 + margin


def test_heterogeneity_alternatives():
    rng = np.random.default_rng(7)
    x = rng.normal(size=300)
    scores = -x + rng.normal(size=300)  # learner ranks backwards
    assert heterogeneity_test(x, scores, random_state=0) > 0.99
    assert heterogeneity_test(x, scores, alternative="two-sided", random_state=0) < 0.01
    with pytest.raises(StratifyInputError, match="alternative"):
        heterogeneity_test(x, scores, alternative="less")


# ---------------------------------------------------------------- BLP calibration test


def hc3_slope(predicted, scores):
    """OLS slope on the centred prediction and its HC3 SE, written out from the formulas."""
    tau = np.asarray(predicted, float)
    X = np.column_stack([np.full_like(tau, tau.mean()), tau - tau.mean()])
    XtX_inv = np.linalg.inv(X.T @ X)
    beta = XtX_inv @ X.T @ scores
    resid = scores - X @ beta
    leverage = np.einsum("ij,jk,ik->i", X, XtX_inv, X)
    meat = (X * (resid / (1 - leverage))[:, None] ** 2).T @ X
    cov = XtX_inv @ meat @ XtX_inv
    return beta[1], np.sqrt(cov[1, 1])


def test_blp_matches_the_hc3_formulas():
    rng = np.random.default_rng(11)
    tau = rng.gamma(2.0, 20.0, size=150)
    scores = 0.6 * tau + 80 * rng.standard_exponential(150)
    p, slope, se = blp_test(tau, scores)
    ref_slope, ref_se = hc3_slope(tau, scores)
    assert slope == pytest.approx(ref_slope, rel=1e-10)
    assert se == pytest.approx(ref_se, rel=1e-10)
    assert p == pytest.approx(stats.norm.sf(ref_slope / ref_se), rel=1e-10)


def test_blp_slope_is_one_for_calibrated_estimates_and_scales_inversely():
    rng = np.random.default_rng(12)
    tau = rng.normal(30, 60, size=2000)
    scores = tau + rng.normal(0, 300, size=2000)  # noisy like AIPCW RMST scores
    p, slope, se = blp_test(tau, scores)
    assert abs(slope - 1) < 3 * se and p < 1e-6
    # Estimates twice too spread out: slope halves; shifting them changes nothing.
    p2, slope2, _ = blp_test(2 * tau, scores)
    assert slope2 == pytest.approx(slope / 2, rel=1e-12) and p2 == pytest.approx(p, rel=1e-9)
    p3, slope3, _ = blp_test(tau + 500, scores)
    assert slope3 == pytest.approx(slope, rel=1e-9) and p3 == pytest.approx(p, rel=1e-9)


def test_blp_constant_estimates_carry_no_evidence():
    p, slope, se = blp_test(np.full(50, 7.0), np.arange(50.0))
    assert p == 1 and np.isnan(slope) and np.isnan(se)


@pytest.mark.parametrize("scenario", ["random_priorities", "priorities_drive_the_noise"])
def test_blp_test_keeps_its_level_on_true_null_scores(scenario):
    # As for RATE above: the same mean score for everyone, skewed heteroskedastic noise.
    rng = np.random.default_rng(13)
    reps, n = 1000, 220
    rejected = 0
    for _ in range(reps):
        x = rng.normal(size=n)
        scores = 30.0 + 100.0 * np.exp(0.5 * x) * (rng.standard_exponential(n) - 1.0)
        predicted = rng.random(n) if scenario == "random_priorities" else x
        rejected += blp_test(predicted, scores)[0] < 0.05
    margin = 3 * np.sqrt(0.05 * 0.95 / reps)
    assert rejected / reps <= 0.05 + margin


def test_rate_refuses_bad_input():
    with pytest.raises(StratifyInputError, match="target"):
        rate([1, 2, 3], [1.0, 2.0, 3.0], target="AUC")
    with pytest.raises(StratifyInputError, match="same length"):
        rate([1, 2, 3], [1.0, 2.0])
    with pytest.raises(StratifyInputError, match="finite"):
        rate([1, 2, 3], [1.0, np.nan, 2.0])
    with pytest.raises(StratifyInputError, match="at least 4"):
        rate([1, 2, 3], [1.0, 2.0, 3.0])


# ---------------------------------------------------------------- combining p-values


def test_combine_heterogeneity_holm_on_minimum():
    p, text = combine_heterogeneity({"a": 0.01, "b": 0.20, "c": 0.5})
    assert p == pytest.approx(0.03)
    assert "Holm" in text and "a 0.01 (smallest)" in text
    assert combine_heterogeneity({"a": 0.6, "b": 0.7})[0] == 1.0
    assert combine_heterogeneity({"a": 0.01, "b": np.nan})[0] == pytest.approx(0.02)
    assert np.isnan(combine_heterogeneity({"a": np.nan})[0])


def test_combine_heterogeneity_primary():
    p, text = combine_heterogeneity({"a": 0.01, "b": 0.20}, primary="b")
    assert p == 0.20
    assert "pre-specified" in text and "b" in text
    with pytest.raises(StratifyInputError, match="primary"):
        combine_heterogeneity({"a": 0.01}, primary="z")


# ---------------------------------------------------------------- calibration


@pytest.fixture(scope="module")
def mirocals():
    df = simulate_mirocals(220, seed=3)
    y = Surv.from_arrays(df["event"].astype(bool), df["time"])
    predicted = df["tau_rmst"].to_numpy() + np.random.default_rng(0).normal(0, 20, 220)
    return df, y, predicted


def test_calibration_groups(mirocals):
    df, y, predicted = mirocals
    table = benefit_calibration(predicted, y, df["arm"].to_numpy(), 640.0, n_groups=4)
    assert list(table["group"]) == [1, 2, 3, 4]
    assert table["n"].sum() == 220
    assert table["n"].max() - table["n"].min() <= 1
    assert table["predicted_mean"].is_monotonic_increasing
    assert (table["ci_low"] < table["observed"]).all() and (
        table["observed"] < table["ci_high"]
    ).all()
    assert table.attrs == {"horizon": 640.0, "alpha": 0.05}


def test_calibration_single_group_is_the_trial_rmst_difference(mirocals):
    df, y, predicted = mirocals
    table = benefit_calibration(predicted, y, df["arm"].to_numpy(), 640.0, n_groups=1)
    control, treated = (
        arm_survival(
            df.time[df.arm == a].to_numpy(),
            df.event[df.arm == a].to_numpy(),
            label=a,
            horizon=640.0,
            alpha=0.05,
        )
        for a in (0, 1)
    )
    expected = rmst_difference(control, treated, alpha=0.05)
    assert table.loc[0, "observed"] == pytest.approx(expected.estimate)
    assert table.loc[0, "observed_se"] == pytest.approx(expected.se)


def test_calibration_group_without_an_arm_is_nan():
    y = Surv.from_arrays([True, False, True, True, False, True], [5.0, 9.0, 3.0, 4.0, 8.0, 7.0])
    arm = np.array([0, 0, 0, 1, 1, 0])
    table = benefit_calibration(np.arange(6.0), y, arm, 6.0, n_groups=2)
    assert np.isnan(table.loc[0, "observed"])  # lowest half is all control
    assert np.isfinite(table.loc[1, "observed"])


def test_calibration_plot(mirocals, tmp_path):
    df, y, predicted = mirocals
    table = benefit_calibration(predicted, y, df["arm"].to_numpy(), 640.0)
    table.loc[0, ["observed", "ci_low", "ci_high"]] = np.nan  # a group that could not be estimated
    fig = benefit_calibration_plot(table)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "Predicted benefit" in ax.get_xlabel() and "640" in ax.get_xlabel()
    assert "Observed benefit" in ax.get_ylabel()
    fig.savefig(tmp_path / "calibration.png")
    assert (tmp_path / "calibration.png").stat().st_size > 0


# ---------------------------------------------------------------- C for benefit, truth


def brute_c_for_benefit(predicted, scores):
    num = den = 0.0
    for i, j in itertools.permutations(range(len(scores)), 2):
        if scores[i] > scores[j]:
            den += 1
            num += (
                1.0 if predicted[i] > predicted[j] else 0.5 if predicted[i] == predicted[j] else 0
            )
    return num / den


def test_c_for_benefit_perfect_reversed_random():
    rng = np.random.default_rng(8)
    tau = rng.normal(size=2000)
    assert c_for_benefit(tau, tau) == pytest.approx(1.0)
    assert c_for_benefit(-tau, tau) == pytest.approx(0.0)
    assert c_for_benefit(rng.normal(size=2000), tau) == pytest.approx(0.5, abs=0.03)


def test_c_for_benefit_equals_pairwise_definition_with_ties():
    rng = np.random.default_rng(9)
    predicted = rng.integers(0, 4, 40).astype(float)
    scores = rng.integers(0, 6, 40).astype(float)
    assert c_for_benefit(predicted, scores) == pytest.approx(brute_c_for_benefit(predicted, scores))
    assert c_for_benefit(np.ones(10), np.arange(10.0)) == 0.5
    assert np.isnan(c_for_benefit(np.arange(10.0), np.ones(10)))


def test_truth_metrics():
    rng = np.random.default_rng(10)
    truth, predicted = rng.normal(size=100), rng.normal(size=100)
    result = truth_metrics(predicted, truth)
    assert result["cate_rmse"] == pytest.approx(np.sqrt(np.mean((predicted - truth) ** 2)))
    assert result["cate_spearman"] == pytest.approx(stats.spearmanr(predicted, truth).statistic)
    no_effect = truth_metrics(predicted, np.zeros(100))
    assert np.isnan(no_effect["cate_spearman"])
    assert no_effect["cate_rmse"] == pytest.approx(np.sqrt(np.mean(predicted**2)))


# ---------------------------------------------------------------- risk


@pytest.fixture(scope="module")
def risk_fold():
    df = simulate_mirocals(400, seed=11)
    X = df[["age", "delta_fs", "svc", "bulbar_onset", "arm"]].to_numpy(float)
    y = Surv.from_arrays(df["event"].astype(bool), df["time"])
    train, test = np.arange(400) < 300, np.arange(400) >= 300
    model = CoxPHSurvivalAnalysis().fit(X[train], y[train])
    times = evaluation_times(y[test], horizon=640.0, n_times=30)
    surv = np.vstack([f(times) for f in model.predict_survival_function(X[test])])
    return y[train], y[test], model.predict(X[test]), surv, times


def test_risk_metrics_equal_sksurv(risk_fold):
    y_train, y_test, risk, surv, times = risk_fold
    result = risk_metrics(y_train, y_test, risk, surv, times)
    assert (
        result["c_index_harrell"]
        == concordance_index_censored(y_test["event"], y_test["time"], risk)[0]
    )
    assert result["c_index_uno"] == concordance_index_ipcw(y_train, y_test, risk, tau=times[-1])[0]
    assert result["ibs"] == integrated_brier_score(y_train, y_test, surv, times)
    assert 0.6 < result["c_index_harrell"] < 0.9 and 0 < result["ibs"] < 0.25


def test_evaluation_times_within_follow_up(risk_fold):
    _, y_test, *_ = risk_fold
    times = evaluation_times(y_test, horizon=500.0, n_times=20)
    assert len(times) == 20 and np.all(np.diff(times) > 0)
    assert times[0] == y_test["time"].min() and times[-1] < 500.0


def test_risk_metrics_nan_with_reason_when_undefined(risk_fold):
    y_train, y_test, risk, surv, times = risk_fold
    censored = Surv.from_arrays(np.zeros(len(y_test), bool), y_test["time"])
    with pytest.warns(UndefinedMetricWarning) as caught:
        result = risk_metrics(y_train, censored, risk, surv, times)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("c_index_harrell is undefined") and "censored" in m for m in messages)
    assert any(m.startswith("c_index_uno is undefined") for m in messages)
    assert any(m.startswith("ibs is undefined") for m in messages)
    assert all(np.isnan(v) for v in result.values())


def test_risk_metrics_no_comparable_pairs():
    y_train = Surv.from_arrays([True, False, True, False], [1.0, 2.0, 3.0, 4.0])
    y_test = Surv.from_arrays([False, True], [2.0, 2.5])  # the only event is the last time
    times = np.array([2.0, 2.2])
    with pytest.warns(UndefinedMetricWarning) as caught:
        result = risk_metrics(y_train, y_test, np.array([0.1, 0.2]), np.ones((2, 2)) * 0.5, times)
    assert any("no comparable pairs" in str(w.message) for w in caught)
    assert np.isnan(result["c_index_harrell"])


def test_metric_keys_are_stable(risk_fold):
    y_train, y_test, risk, surv, times = risk_fold
    assert set(risk_metrics(y_train, y_test, risk, surv, times)) == {
        "c_index_harrell",
        "c_index_uno",
        "ibs",
    }
    assert set(truth_metrics([1.0, 2.0], [1.0, 3.0])) == {"cate_rmse", "cate_spearman"}
    assert isinstance(pd.DataFrame([truth_metrics([1.0, 2.0], [1.0, 3.0])]), pd.DataFrame)


def test_risk_metrics_without_a_time_grid(risk_fold):
    y_train, y_test, risk, _, _ = risk_fold
    with pytest.warns(UndefinedMetricWarning, match="ibs is undefined.*fewer than two"):
        result = risk_metrics(y_train, y_test, risk, None, np.array([]))
    assert np.isnan(result["ibs"])
    assert result["c_index_uno"] == concordance_index_ipcw(y_train, y_test, risk)[0]
