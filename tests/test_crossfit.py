"""Cross-fitting: the splits, the guards on thin folds, and worker-count invariance."""

import numpy as np
import pytest

from stratify.data import TrialData
from stratify.data.simulate import simulate_mirocals
from stratify.exceptions import StratifyInputError
from stratify.validation.crossfit import NamedLearner, cross_fit, dispatch_order, splits, task_seed

COVARIATES = ["age", "bulbar_onset", "delta_fs", "svc", "csf_pnfh"]


@pytest.fixture(scope="module")
def trial() -> TrialData:
    frame = simulate_mirocals(220, seed=11)
    return TrialData.from_frame(frame, covariates=COVARIATES, modifier="csf_pnfh")


def test_splits_partition_every_repeat_and_keep_arm_event_balance(trial):
    parts = splits(trial, folds=5, repeats=3, seed=1)
    assert len(parts) == 15
    strata = trial.arm * 2 + trial.event.astype(int)
    for r in range(3):
        tests = [test for (rr, _, _, test) in parts if rr == r]
        assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(trial.n_patients))
        for test in tests:  # stratified: each stratum's share within one patient of its quota
            counts = np.bincount(strata[test], minlength=4)
            expected = np.bincount(strata, minlength=4) / 5
            assert np.all(np.abs(counts - expected) <= 1)
    assert [p[3].tolist() for p in parts] == [
        p[3].tolist() for p in splits(trial, folds=5, repeats=3, seed=1)
    ]


def test_too_many_folds_for_a_thin_stratum_is_a_clear_error(trial):
    frame = simulate_mirocals(40, seed=3)
    small = TrialData.from_frame(frame, covariates=COVARIATES)
    thin = int(np.bincount(small.arm * 2 + small.event.astype(int)).min())
    with pytest.raises(StratifyInputError, match=rf"cv.folds: {thin + 1} folds, but only {thin}"):
        splits(small, folds=thin + 1, repeats=1, seed=0)


def test_an_arm_without_events_is_a_clear_error(trial, mirocals_frame):
    frame = mirocals_frame
    frame.loc[frame["arm"] == 1, "event"] = 0
    data = TrialData.from_frame(frame, covariates=COVARIATES)
    with pytest.raises(StratifyInputError, match="the treated arm has 0 event"):
        splits(data, folds=5, repeats=1, seed=0)


def test_task_seeds_depend_on_coordinates_only():
    assert task_seed(3, 0, 1, 2) == task_seed(3, 0, 1, 2)
    assert len({task_seed(3, i, r, f) for i in range(3) for r in range(3) for f in range(3)}) == 27


def test_every_learner_starts_before_any_learner_goes_on():
    order = dispatch_order(3, 4)
    assert sorted(order) == list(range(12))  # every task once
    assert order[:3] == [0, 4, 8]  # part 0 of learners 0, 1, 2
    assert order[3:] == [1, 2, 3, 5, 6, 7, 9, 10, 11]
    assert dispatch_order(1, 1) == [0]


def test_results_identical_with_one_or_two_workers(trial):
    """The issue's requirement: same seed → same numbers whatever the number of workers."""
    learners = [
        NamedLearner("t", "t_learner", {"base_params": {"n_estimators": 20}}),
        NamedLearner("cox", "cox_interaction", {}),
    ]
    kw = dict(horizon=640.0, folds=3, repeats=2, seed=5)
    one = cross_fit(learners, trial, n_jobs=1, **kw)
    two = cross_fit(learners, trial, n_jobs=2, **kw)
    for label in ("t", "cox"):
        np.testing.assert_array_equal(one[label].estimates, two[label].estimates)
        assert one[label].fold_metrics.equals(two[label].fold_metrics)
        assert not np.isnan(one[label].estimates).any()
        assert one[label].oof.shape == (trial.n_patients, 2)
        assert set(one[label].fold_metrics.columns) >= {"c_index_harrell", "c_index_uno", "ibs"}
