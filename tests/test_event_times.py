"""Event times as they come: ties, one event time in an arm, times in years, late or no events.

grf's ``simple1`` design puts every treated event exactly at the horizon (1 year);
scikit-survival cannot predict a survival forest fitted on one distinct time (and
stores no survival curve in it), which stopped the doubly robust scores and every
run. Here each learner and the scores face such trials, in years, and must give
finite, sensible estimates, or refuse in one line what cannot be estimated.
"""

import numpy as np
import pandas as pd
import pytest
from sksurv.ensemble import RandomSurvivalForest
from sksurv.util import Surv

from kit import assert_survival_curves
from stratify.config import ExperimentConfig
from stratify.data.source import load_trial
from stratify.exceptions import StratifyInputError
from stratify.learners.base_models import fit_base_model
from stratify.learners.dr import DRLearner
from stratify.learners.meta import TLearner
from stratify.learners.registry import make_learner
from stratify.learners.scores import dr_scores
from stratify.learners.survival import forest_survival_at, survival_at
from stratify.pipeline.experiment import learn
from stratify.trial.km import arm_survival

HORIZON = 1.0  # years
DAYS_PER_YEAR = 365.25
DESIGNS = ("one_time", "admin", "ties", "late")
LEARNERS = (
    ("s_learner", {}),
    ("t_learner", {}),
    ("t_learner", {"time_grid": 5}),
    ("coxnet_interaction", {}),
    ("dr_learner", {}),
    ("dr_learner", {"nuisance": "rsf"}),
    ("cox_interaction", {}),
)


def trial(design: str, n: int = 200, seed: int = 0):
    """A two-arm trial in years, ``(X, y, arm)``; control deaths exponential, censoring uniform.

    ``one_time``: every treated death exactly at the horizon (grf's simple1);
    ``admin``: every treated patient followed to the horizon, half dying there
    (one distinct time in the arm, events and censorings alike);
    ``ties``: all times rounded up to a quarter of a year;
    ``late``: no treated death before the horizon;
    ``none``: no treated death at all.
    """
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(size=(n, 3)), columns=["x1", "x2", "x3"])
    arm = rng.permutation(np.repeat([0, 1], n // 2))
    death = rng.exponential(0.8 / (0.5 + X["x1"].to_numpy()))
    censor = rng.uniform(0.2, 2 * HORIZON, n)
    treated = arm == 1
    if design in ("one_time", "admin"):
        death = np.where(treated, HORIZON, death)
    elif design == "ties":
        death, censor = np.ceil(death * 4) / 4, np.ceil(censor * 4) / 4
    elif design == "late":
        death = np.where(treated, HORIZON + death, death)
    elif design == "none":
        death = np.where(treated, 10 * HORIZON, death)
    time, event = np.minimum(death, censor), death <= censor
    if design == "admin":
        time = np.where(treated, HORIZON, time)
        event = np.where(treated, rng.random(n) < 0.5, event)
    return X, Surv.from_arrays(event, time), arm


def km_differences(y, arm) -> tuple[float, float]:
    """Kaplan-Meier RMST and survival differences, treated - control, at the horizon."""
    control, treated = (
        arm_survival(
            y["time"][arm == a], y["event"][arm == a], label=a, horizon=HORIZON, alpha=0.05
        )
        for a in (0, 1)
    )
    return treated.rmst - control.rmst, treated.surv - control.surv


def test_forest_fitted_on_one_distinct_time_gives_kaplan_meier():
    """One time, no splits possible: every tree is the arm's Kaplan-Meier, 1 - d/n at that time."""
    X, y, arm = trial("admin")
    X, y = X[arm == 1].assign(x1=0.0, x2=0.0, x3=0.0), y[arm == 1]
    assert np.unique(y["time"]).size == 1
    km = 1.0 - y["event"].mean()
    params = {"n_estimators": 5, "bootstrap": False}
    forest = fit_base_model("rsf", params, 0, X, y)
    expected = np.tile([1.0, km, km], (len(X), 1))
    np.testing.assert_allclose(survival_at(forest, X, [0.5, HORIZON, 2.0]), expected)
    for tree in forest.estimators_:  # stored curves, as the tree explainers read them
        np.testing.assert_allclose(tree.tree_.value[:, 0, 1], km)
    raw = RandomSurvivalForest(n_estimators=5, bootstrap=False, random_state=0).fit(X, y)
    np.testing.assert_allclose(forest_survival_at(raw, X, [0.5, HORIZON, 2.0]), expected)


def test_t_learner_arm_with_one_distinct_time_has_its_survival():
    """The treated forest sees a single time: its curves are ~KM, not 0, and cate_surv follows."""
    X, y, arm = trial("admin", n=400)
    learner = TLearner(random_state=0, horizon=HORIZON).fit(X, y, arm)
    s1 = learner.predict_survival(X, 1, [0.5, HORIZON])
    assert np.all(s1[:, 0] == 1.0)  # no treated death before the horizon
    treated_km = 1.0 - y["event"][arm == 1].mean()
    assert abs(s1[:, 1].mean() - treated_km) < 0.05
    _, d_surv = km_differences(y, arm)
    assert abs(learner.predict_cate(X)["cate_surv"].mean() - d_surv) < 0.1


@pytest.mark.parametrize("nuisance", ["rsf", "coxph"])
@pytest.mark.parametrize("design", ["one_time", "admin"])
def test_dr_scores_with_every_treated_death_at_one_time(design, nuisance):
    """Scores are finite and average to the Kaplan-Meier differences.

    Over 8 seeds the mean scores stayed within 0.032 (RMST, years) and 0.045
    (survival) of Kaplan-Meier, with SDs of 0.01 and 0.015.
    """
    X, y, arm = trial(design, n=300, seed=1)
    scores = dr_scores(X, y, arm, horizon=HORIZON, n_folds=2, nuisance=nuisance, random_state=1)
    assert np.isfinite(scores.to_numpy()).all()
    d_rmst, d_surv = km_differences(y, arm)
    assert abs(scores["score_rmst"].mean() - d_rmst) < 0.05  # years, horizon 1
    assert abs(scores["score_surv"].mean() - d_surv) < 0.07


@pytest.mark.parametrize(("name", "params"), LEARNERS, ids=lambda v: str(v or ""))
@pytest.mark.parametrize("design", DESIGNS)
def test_every_learner_handles_the_event_times(design, name, params):
    X, y, arm = trial(design)
    learner = make_learner(name, params, random_state=0, modifier="x1", horizon=HORIZON)
    learner.fit(X, y, arm)
    cate = learner.predict_cate(X)
    assert np.isfinite(cate.to_numpy()).all()
    if name != "dr_learner":  # a regression of noisy scores may leave [-1, 1]; curves may not
        assert np.all(np.abs(cate["cate_rmst"]) <= HORIZON)
        assert np.all(np.abs(cate["cate_surv"]) <= 1)
    surv = learner.predict_survival(X, arm, [0.0, 0.25, 0.5, HORIZON, 2 * HORIZON])
    assert_survival_curves(surv, (len(X), 5))
    assert np.isfinite(learner.predict_risk(X, arm, HORIZON)).all()


@pytest.mark.parametrize(("name", "params"), LEARNERS, ids=lambda v: str(v or ""))
def test_effects_in_years_are_effects_in_days_rescaled(name, params):
    """Only the order of times matters to the models: RMST scales with the unit, survival not."""
    X, y, arm = trial("one_time", seed=3)
    y_days = Surv.from_arrays(y["event"], y["time"] * DAYS_PER_YEAR)
    h_days = HORIZON * DAYS_PER_YEAR
    years = make_learner(name, params, random_state=0, modifier="x1", horizon=HORIZON)
    days = make_learner(name, params, random_state=0, modifier="x1", horizon=h_days)
    in_years = years.fit(X, y, arm).predict_cate(X)
    in_days = days.fit(X, y_days, arm).predict_cate(X)
    np.testing.assert_allclose(
        in_days["cate_rmst"] / DAYS_PER_YEAR, in_years["cate_rmst"], atol=1e-9
    )
    np.testing.assert_allclose(in_days["cate_surv"], in_years["cate_surv"], atol=1e-12)


def test_an_arm_without_deaths_is_refused_in_one_line():
    X, y, arm = trial("none")
    fits = (
        lambda: dr_scores(X, y, arm, horizon=HORIZON, n_folds=2, random_state=0),
        lambda: DRLearner(horizon=HORIZON, random_state=0).fit(X, y, arm),
        lambda: TLearner(random_state=0).fit(X, y, arm),
    )
    for fit in fits:
        with pytest.raises(StratifyInputError, match=r"^arm 1 has no events") as err:
            fit()
        assert "\n" not in str(err.value)


def test_a_training_fold_without_deaths_is_refused_in_one_line():
    """One treated death: the fold that holds it out trains the treated model on no death."""
    X, y, arm = trial("none")
    first_treated = int(np.flatnonzero(arm == 1)[0])
    y["event"][first_treated], y["time"][first_treated] = True, 0.5
    with pytest.raises(StratifyInputError, match=r"^arm 1 has no event in a training fold") as err:
        dr_scores(X, y, arm, horizon=HORIZON, n_folds=2, random_state=0)
    assert "\n" not in str(err.value)


def test_cross_fitting_and_scores_of_a_run_on_the_simple1_design(tmp_path):
    """What ``stratify run`` computes, on a file whose treated deaths share one time."""
    X, y, arm = trial("one_time", n=160)
    path = tmp_path / "simple1.csv"
    X.assign(time=y["time"], event=y["event"].astype(int), arm=arm).to_csv(path, index=False)
    config = ExperimentConfig(
        name="simple1",
        horizon=HORIZON,
        data={"path": str(path), "treated": 1, "modifier": "x1"},
        learners=["t_learner", {"name": "dr_learner", "params": {"nuisance": "rsf"}}],
        cv={"folds": 2, "repeats": 1},
        heterogeneity={"n_bootstrap": 50},
    )
    evaluation = learn(config, load_trial(config))
    for label in ("t_learner", "dr_learner"):
        assert np.isfinite(evaluation.learners[label].oof.to_numpy()).all()
    assert np.isfinite(evaluation.scores.to_numpy()).all()
    assert np.isfinite(evaluation.heterogeneity_p)
