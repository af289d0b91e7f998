"""TrialData validation: every bad input named in issue #2 gets a message naming the column."""

import numpy as np
import pandas as pd
import pytest

from stratify.data import TrialData
from stratify.exceptions import StratifyInputError


def test_valid_frame_builds_encoded_trial(trial_frame):
    data = TrialData.from_frame(trial_frame, modifier="marker")
    assert data.n_patients == 200
    assert data.n_events == int(trial_frame["event"].sum())
    # categorical 'stage' is one-hot encoded with the first sorted level ("I") dropped
    assert data.covariates == ["age", "male", "stage=II", "stage=III", "marker"]
    assert set(np.unique(data.arm)) == {0, 1}
    assert data.y.dtype.names == ("event", "time")
    assert data.X.index.name == "patient"
    assert "200 patients used (100 treated, 100 control)" in data.summary()


def test_treated_label_and_arm_labels(trial_frame):
    frame = trial_frame.assign(arm=trial_frame["arm"].map({0: "placebo", 1: "IL-2"}))
    data = TrialData.from_frame(frame, treated="IL-2")
    assert data.arm_labels == ("placebo", "IL-2")
    np.testing.assert_array_equal(data.arm, trial_frame["arm"].to_numpy())


def test_unquoted_yaml_yes_gets_a_hint(trial_frame):
    frame = trial_frame.assign(arm=trial_frame["arm"].map({0: "no", 1: "yes"}))
    assert "quote the label" in _err(frame, treated=True)


def test_relabelling_treated_flips_arm(trial_frame):
    data = TrialData.from_frame(trial_frame, treated=0)
    np.testing.assert_array_equal(data.arm, 1 - trial_frame["arm"].to_numpy())


def test_id_column_indexes_patients(trial_frame):
    frame = trial_frame.assign(pid=[f"P{i:03d}" for i in range(len(trial_frame))])
    data = TrialData.from_frame(frame, id_column="pid")
    assert data.X.index[0] == "P000"
    assert "pid" not in data.covariates


def test_truth_columns_are_kept_apart(trial_frame):
    frame = trial_frame.assign(tau_rmst=1.0, tau_surv=0.1)
    data = TrialData.from_frame(frame)
    assert "tau_rmst" not in data.covariates
    assert list(data.truth.columns) == ["tau_rmst", "tau_surv"]
    with pytest.raises(StratifyInputError, match="'tau_rmst' is a true effect"):
        TrialData.from_frame(frame, covariates=["age", "tau_rmst"])


def _err(frame, **kw) -> str:
    with pytest.raises(StratifyInputError) as info:
        TrialData.from_frame(frame, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("mutate", "kwargs", "expected"),
    [
        (lambda f: f.drop(columns="time"), {}, "column 'time' not found"),
        (lambda f: f, {"covariates": ["age", "weight"]}, "column 'weight' not found"),
        (lambda f: f, {"modifier": "pnfh"}, "column 'pnfh' not found"),
        (
            lambda f: f.assign(time=f["time"].astype(object).where(f.index != 3, "abc")),
            {},
            "column 'time': non-numeric time 'abc' in row 3",
        ),
        (
            lambda f: f.assign(time=f["time"].where(f.index != 5, 0.0)),
            {},
            "column 'time': times must be > 0; row 5 has 0",
        ),
        (
            lambda f: f.assign(time=f["time"].where(f.index != 7, -2.0)),
            {},
            "column 'time': times must be > 0; row 7 has -2",
        ),
        (
            lambda f: f.assign(time=f["time"].where(f.index != 9)),
            {},
            "column 'time': 1 missing time(s), first in row 9",
        ),
        (
            lambda f: f.assign(event=f["event"].where(f.index != 2, 2)),
            {},
            "column 'event': events must be 0 (censored) or 1 (event); found 2",
        ),
        (
            lambda f: f.assign(event=f["event"].astype(object).where(f.index != 2, "dead")),
            {},
            "column 'event': events must be 0 (censored) or 1 (event); found 'dead'",
        ),
        (
            lambda f: f.assign(event=f["event"].where(f.index != 2)),
            {},
            "column 'event': 1 missing event value(s)",
        ),
        (
            lambda f: f.assign(arm=f.index % 3),
            {},
            "column 'arm': a two-arm trial needs exactly two arm values; found 3",
        ),
        (
            lambda f: f.assign(arm=1),
            {},
            "column 'arm': a two-arm trial needs exactly two arm values; found 1",
        ),
        (
            lambda f: f,
            {"treated": "IL-2"},
            "treated arm label 'IL-2' is not a value of column 'arm'",
        ),
        (lambda f: f.assign(event=0), {}, "column 'event': no events"),
        (
            lambda f: f.assign(age=f["age"].where(f.index % 50 != 0)),
            {},
            "missing covariate values in 4 patient(s): columns 'age' (4)",
        ),
        (
            lambda f: f.assign(marker=f["stage"]),
            {"modifier": "marker"},
            "modifier column 'marker' must be numeric",
        ),
        (lambda f: f, {"covariates": ["age", "age"]}, "covariate 'age' is listed twice"),
        (lambda f: f, {"covariates": ["age", "time"]}, "covariate 'time' is the time"),
        (lambda f: f.assign(site="A"), {}, "covariate 'site' has a single value"),
    ],
)
def test_bad_input_names_column(trial_frame, mutate, kwargs, expected):
    assert expected in _err(mutate(trial_frame.copy()), **kwargs)


def test_missing_covariates_complete_case_is_reported_not_silent(trial_frame):
    frame = trial_frame.assign(age=trial_frame["age"].where(trial_frame.index % 50 != 0))
    data = TrialData.from_frame(frame, missing="complete_case")
    assert data.n_patients == 196
    assert data.n_input == 200
    assert data.exclusions == {"missing covariates": 4}
    assert "excluded from 200 rows: 4 missing covariates" in data.summary()


def test_only_one_arm_left_after_exclusions(trial_frame):
    frame = trial_frame.assign(age=trial_frame["age"].where(trial_frame["arm"] == 1))
    assert "only one arm left" in _err(frame, missing="complete_case")


def test_boolean_event_column_is_accepted(trial_frame):
    data = TrialData.from_frame(trial_frame.assign(event=trial_frame["event"].astype(bool)))
    assert data.n_events == int(trial_frame["event"].sum())


def test_event_and_time_arrays_line_up_with_rows(trial_frame):
    shuffled = trial_frame.sample(frac=1.0, random_state=0)
    data = TrialData.from_frame(shuffled)
    np.testing.assert_array_equal(data.time, shuffled["time"].to_numpy())
    pd.testing.assert_index_equal(data.X.index, pd.Index(shuffled.index, name="patient"))
