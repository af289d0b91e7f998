"""Learner parameters: the constraint kinds, the tables, and the horizon every learner takes."""

from __future__ import annotations

import functools
import math
import re
from numbers import Integral, Real

import numpy as np
import pandas as pd
import pytest
from sksurv.ensemble import RandomSurvivalForest

from stratify.cli.app import main
from stratify.data.simulate import simulate_mirocals
from stratify.data.trial_data import TrialData
from stratify.exceptions import StratifyInputError
from stratify.learners import (
    LEARNERS,
    CoxInteraction,
    CoxnetInteraction,
    DRLearner,
    SLearner,
    TLearner,
    base_models,
    make_learner,
)
from stratify.learners.base import at_horizon
from stratify.learners.base_models import BASE_MODELS, BaseModel, make_base_model
from stratify.learners.params import (
    FractionOrCount,
    Interval,
    Nested,
    NonZeroInteger,
    Options,
    Registered,
    Rule,
    check_params,
    check_value,
)
from stratify.learners.survival import final_estimator

HORIZON = 640.0
MODIFIER = "csf_pnfh"


@functools.cache
def small() -> TrialData:
    return TrialData.from_frame(simulate_mirocals(176, 3), modifier=MODIFIER)


def refused(kinds, value, name="p") -> str:
    with pytest.raises(StratifyInputError) as info:
        check_value(kinds, value, name)
    return str(info.value)


# --- each constraint kind accepts and refuses, with the exact message ------------------


def test_interval_of_integers():
    kinds = [Interval(Integral, 2, None)]
    assert check_value(kinds, 2, "n_folds") == 2
    for bad in (1, 2.0, True, "3", None):
        assert refused(kinds, bad, "n_folds") == f"n_folds must be an integer >= 2 (got {bad!r})"


def test_interval_of_numbers_with_each_kind_of_bounds():
    both = [Interval(Real, 0, 1)]
    assert check_value(both, 0, "x") == 0 and check_value(both, 1.0, "x") == 1.0
    assert refused(both, 1.5, "l1_ratio") == "l1_ratio must be a number in [0, 1] (got 1.5)"
    assert refused(both, math.nan, "x") == "x must be a number in [0, 1] (got nan)"
    assert refused(both, False, "x") == "x must be a number in [0, 1] (got False)"
    right = [Interval(Real, 0, 1, closed="right")]
    assert refused(right, 0, "x") == "x must be a number in (0, 1] (got 0)"
    assert check_value(right, 1, "x") == 1
    above = [Interval(Real, 0, None, closed="neither")]
    assert check_value(above, 1e-9, "h") == 1e-9
    assert refused(above, 0, "horizon") == "horizon must be a number > 0 (got 0)"
    small_fraction = [Interval(Real, 1e-6, 1 - 1e-6)]
    assert refused(small_fraction, 1, "propensity") == (
        "propensity must be a number in [1e-06, 0.999999] (got 1)"
    )


def test_options_and_booleans():
    finals = [Options(("forest", "linear"))]
    assert check_value(finals, "linear", "final") == "linear"
    assert refused(finals, "boosting", "final") == (
        "final must be one of 'forest', 'linear' (got 'boosting')"
    )
    assert refused(finals, ["forest"], "final") == (
        "final must be one of 'forest', 'linear' (got ['forest'])"
    )
    flag = [Options((True, False))]
    assert check_value(flag, False, "honesty") is False
    for bad in (1, 0, "yes", np.float64(1.0)):
        assert refused(flag, bad, "honesty") == f"honesty must be true or false (got {bad!r})"
    lam = [Options(("auto",)), Interval(Real, 0, math.inf, closed="neither")]
    assert check_value(lam, "auto", "ll_lambda") == "auto"
    assert check_value(lam, 0.5, "ll_lambda") == 0.5
    assert refused(lam, True, "ll_lambda") == (
        "ll_lambda must be 'auto' or a number in (0, inf) (got True)"
    )


def test_registered_names_list_the_registry():
    kinds = [Registered(("rsf", "gbsa"), "base model")]
    assert check_value(kinds, "gbsa", "base") == "gbsa"
    assert (
        refused(kinds, "xgb", "base")
        == "unknown base model 'xgb'; valid base models: 'rsf', 'gbsa'"
    )
    assert (
        refused(kinds, None, "base") == "unknown base model None; valid base models: 'rsf', 'gbsa'"
    )


def test_fraction_or_count():
    strict, one = [FractionOrCount()], [None, FractionOrCount(one=True)]
    for good in (1, 50, 0.2, 1e-9):
        assert check_value(strict, good, "min_samples_leaf") == good
    message = "min_samples_leaf must be an integer >= 1 or a fraction in (0, 1) (got {!r})"
    for bad in (0, 1.0, -0.5, 2.5, True, None, "10"):
        assert refused(strict, bad, "min_samples_leaf") == message.format(bad)
    assert check_value(one, 1.0, "max_samples") == 1.0
    assert check_value(one, None, "max_samples") is None
    assert refused(one, 0, "max_samples") == (
        "max_samples must be None or an integer >= 1 or a fraction in (0, 1] (got 0)"
    )


def test_thread_counts():
    kinds = [None, NonZeroInteger()]
    for good in (None, 1, -1, 8):
        assert check_value(kinds, good, "n_jobs") == good
    for bad in (0, 1.5, True):
        assert refused(kinds, bad, "n_jobs") == (
            f"n_jobs must be None or a non-zero integer (-1: all cores) (got {bad!r})"
        )


def test_nested_parameters_are_checked_against_the_chosen_table():
    tables = {"a": {"depth": [Interval(Integral, 1, None)], "free": None}}
    nested = Nested("kind", lambda k: (f"model {k!r}", tables[k]), refused={"seed": "is ours"})
    table = {"kind": [Options(("a",))], "params": nested}
    check_params(table, {"kind": "a", "params": None})
    check_params(table, {"kind": "a", "params": {"depth": 3, "free": object()}})
    cases = [
        ([1], "params must be a mapping (got [1])"),
        ({"seed": 1}, "model 'a': seed is ours"),
        ({"width": 1}, "unknown parameter 'width' for model 'a'; valid parameters: depth, free"),
        ({"depth": 0}, "model 'a': depth must be an integer >= 1 (got 0)"),
    ]
    for params, message in cases:
        with pytest.raises(StratifyInputError, match=f"^{re.escape(message)}$"):
            check_params(table, {"kind": "a", "params": params})


def test_rules_run_after_the_table():
    rule = Rule(lambda p: p["n"] % p["k"] == 0, lambda p: f"n ({p['n']}) must be a multiple of k")
    table = {"n": [Interval(Integral, 1, None)], "k": [Interval(Integral, 1, None)]}
    check_params(table, {"n": 4, "k": 2}, [rule])
    with pytest.raises(StratifyInputError, match=r"^n \(5\) must be a multiple of k$"):
        check_params(table, {"n": 5, "k": 2}, [rule])
    with pytest.raises(StratifyInputError, match=r"^k must be an integer >= 1 \(got 0\)$"):
        check_params(table, {"n": 5, "k": 0}, [rule])  # the table first: no division by 0


# --- the tables of the learners ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_every_learner_declares_every_parameter_it_checks_and_takes_a_horizon(name):
    cls = LEARNERS[name]
    own = cls().get_params(deep=False)
    assert "horizon" in own and "horizon" in cls._param_constraints
    assert set(cls._param_constraints) <= set(own)


def test_base_models_table_lists_the_estimator_parameters():
    for model in BASE_MODELS.values():
        assert set(model.table) == set(final_estimator(model()).get_params(deep=False))
    assert BASE_MODELS["rsf"].forest and not BASE_MODELS["coxph"].forest


def test_checking_parameters_builds_no_scikit_survival_model(monkeypatch):
    def refuse(random_state):
        raise AssertionError("a base model was built to check parameters")

    monkeypatch.setitem(BASE_MODELS, "rsf", BaseModel(refuse, RandomSurvivalForest))
    params = {
        "base_params": {"min_samples_leaf": 0.05, "max_samples": 0.5, "n_jobs": 2},
        "time_grid": 50,
        "max_bins": 32,
    }
    for name in ("s_learner", "t_learner"):
        make_learner(name, params, random_state=0, modifier=None, horizon=HORIZON)._check_params()
    with pytest.raises(StratifyInputError, match="max_bins applies to forests"):
        make_learner(
            "t_learner", {"base": "coxph", "max_bins": 8}, random_state=0, modifier=None,
            horizon=HORIZON,
        )  # fmt: skip


def test_fit_checks_the_table_and_names_the_learner():
    data = small()
    cases = [
        (TLearner(base_params={"n_estimators": 0}),
         "TLearner: base model 'rsf': n_estimators must be an integer >= 1 (got 0)"),
        (SLearner(base="xgb"), "SLearner: unknown base model 'xgb'; valid base models: "),
        (CoxnetInteraction(l1_ratio=0), "CoxnetInteraction: l1_ratio must be above 0"),
        (CoxInteraction(modifier=MODIFIER, horizon=-1),
         "CoxInteraction: horizon must be None or a number > 0 (got -1)"),
        (DRLearner(horizon=HORIZON, min_samples_leaf=1.0),
         "DRLearner: min_samples_leaf must be None or an integer >= 1 or a fraction in (0, 1) "
         "(got 1.0)"),
    ]  # fmt: skip
    for learner, message in cases:
        with pytest.raises(StratifyInputError, match=f"^{re.escape(message)}"):
            learner.fit(data.X, data.y, data.arm)


def test_make_base_model_checks_its_parameters_too():
    with pytest.raises(StratifyInputError, match=r"^base model 'gbsa': max_features must be"):
        make_base_model("gbsa", {"max_features": "all"})
    assert make_base_model("gbsa", {"max_features": 0.5}).max_features == 0.5
    assert base_models.CONTROLS["min_samples_leaf"] == [FractionOrCount()]


def test_dr_learner_min_samples_leaf_is_a_fraction_or_a_count_as_in_base_params():
    data = small()
    fraction = DRLearner(horizon=HORIZON, n_estimators=5, min_samples_leaf=0.1, random_state=0)
    fraction.fit(data.X, data.y, data.arm)
    assert fraction.final_rmst_.min_samples_leaf == 0.1
    count = DRLearner(horizon=HORIZON, n_estimators=5, min_samples_leaf=18, random_state=0)
    same = DRLearner(horizon=HORIZON, n_estimators=5, min_samples_leaf=0.1, random_state=0)
    # 0.1 of 176 patients, rounded up, is 18 per leaf, as scikit-learn reads a fraction
    np.testing.assert_array_equal(
        count.fit(data.X, data.y, data.arm).predict_cate(data.X),
        same.fit(data.X, data.y, data.arm).predict_cate(data.X),
    )
    default = DRLearner(horizon=HORIZON, n_estimators=5, random_state=0)
    assert default.fit(data.X, data.y, data.arm).final_rmst_.min_samples_leaf == 20


def test_stratify_validate_refuses_bad_learner_parameters(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "name: bad\nhorizon: 640\ndata: {simulate: {n: 120}}\n"
        "learners: [{name: t_learner, params: {base_params: {min_samples_leaf: 0}}}]\n"
    )
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "learners.0: learner 't_learner': base model 'rsf': min_samples_leaf must be an integer "
        ">= 1 or a fraction in (0, 1) (got 0)"
    ) in err


# --- the horizon ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SLearner, TLearner, CoxnetInteraction, CoxInteraction])
def test_a_learner_whose_horizon_was_not_set_refuses_to_estimate_effects(cls):
    data = small()
    params = {"modifier": MODIFIER} if cls is CoxInteraction else {"random_state": 0}
    if cls in (SLearner, TLearner):
        params["base"] = "coxph"
    learner = cls(**params).fit(data.X, data.y, data.arm)  # curves need no horizon
    assert learner.predict_survival(data.X, 1, [HORIZON]).shape == (len(data.X), 1)
    message = (
        f"{cls.__name__} has no horizon to estimate effects at: build it with horizon= "
        "(the experiment sets it)"
    )
    with pytest.raises(StratifyInputError, match=f"^{re.escape(message)}$"):
        learner.predict_cate(data.X)
    built = cls(**params, horizon=HORIZON).fit(data.X, data.y, data.arm)
    expected = built.predict_cate(data.X)
    pd.testing.assert_frame_equal(
        learner.set_params(horizon=HORIZON).predict_cate(data.X), expected
    )


def test_learners_fitted_for_one_horizon_need_it():
    for cls in (DRLearner, LEARNERS["causal_survival_forest"]):
        with pytest.raises(StratifyInputError, match=f"^{cls.__name__}: horizon is None, but"):
            cls()._check_params()


def test_at_horizon_gives_a_learner_saved_without_one_its_horizon():
    data = small()
    learner = CoxInteraction(modifier=MODIFIER).fit(data.X, data.y, data.arm)
    del learner.horizon  # as unpickled from a model saved before learners took a horizon
    served = at_horizon(learner, HORIZON)
    assert served is not learner and not hasattr(learner, "horizon")
    same = CoxInteraction(modifier=MODIFIER, horizon=HORIZON).fit(data.X, data.y, data.arm)
    pd.testing.assert_frame_equal(served.predict_cate(data.X), same.predict_cate(data.X))
    assert at_horizon(same, HORIZON) is same and at_horizon(same, None) is same
    dr = DRLearner(horizon=HORIZON, n_estimators=5, random_state=0).fit(data.X, data.y, data.arm)
    with pytest.raises(StratifyInputError, match=r"^DRLearner was fitted for horizon 640; it"):
        at_horizon(dr, 365).predict_cate(data.X)
    assert dr.horizon == HORIZON  # the learner itself is left as it is
