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
    """String labels: the treated label decides the coding."""
    frame = trial_frame.assign(arm=trial_frame["arm"].map({0: "placebo", 1: "IL-2"}))
    data = TrialData.from_frame(frame, treated="IL-2")
    assert data.arm_labels == ("placebo", "IL-2")
    np.testing.assert_array_equal(data.arm, trial_frame["arm"].to_numpy())


def test_unquoted_yaml_yes_gets_a_hint(trial_frame):
    frame = trial_frame.assign(arm=trial_frame["arm"].map({0: "no", 1: "yes"}))
    assert "quote the label" in _err(frame, treated=True)
    # True == 1 in Python: a boolean label must not silently pick arm 1 of a 0/1 column
    assert "quote the label" in _err(trial_frame, treated=True)


def test_arms_not_coded_0_1_need_the_treated_label(trial_frame):
    """A trial coded 1/2 must never be analysed with arm 1 silently taken as treated."""
    frame = trial_frame.assign(arm=trial_frame["arm"] + 1)
    message = _err(frame)
    assert message == "column 'arm' has values 1, 2: set data.treated to the treated arm's label"
    data = TrialData.from_frame(frame, treated=2)
    np.testing.assert_array_equal(data.arm, trial_frame["arm"].to_numpy())
    assert data.arm_labels == (1, 2)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (lambda n: [f"P{i % 150}" for i in range(n)], "id column 'pid': id 'P0' appears more"),
        (lambda n: [None] + [f"P{i}" for i in range(1, n)], "id column 'pid': 1 missing id(s)"),
    ],
)
def test_ids_must_be_unique_and_present(trial_frame, ids, expected):
    frame = trial_frame.assign(pid=ids(len(trial_frame)))
    assert expected in _err(frame, id_column="pid")


def test_index_like_columns_are_refused_as_default_covariates(trial_frame):
    saved = trial_frame.reset_index().rename(columns={"index": "Unnamed: 0"})
    assert "column 'Unnamed: 0' looks like a row number or saved index" in _err(saved)
    numbered = trial_frame.assign(patient_no=np.arange(1, len(trial_frame) + 1))
    assert "column 'patient_no' looks like a row number" in _err(numbered)
    # listed explicitly, or named as the id, it is the user's choice
    TrialData.from_frame(numbered, id_column="patient_no")


def test_numeric_column_with_stray_text_is_an_error_not_a_category(trial_frame):
    frame = trial_frame.assign(
        male=trial_frame["male"].astype(object).where(trial_frame.index != 4, ".")
    )
    assert "covariate 'male' is numeric but has non-numeric values such as '.'" in _err(frame)


def test_reserved_names(trial_frame):
    frame = trial_frame.rename(columns={"arm": "group"}).assign(arm=trial_frame["male"])
    assert "covariate 'arm' has the name of the treatment term" in _err(frame, arm="group")
    assert "modifier 'event' is the time, event, arm or id column" in _err(
        trial_frame, modifier="event"
    )


def test_log_transform(trial_frame):
    data = TrialData.from_frame(trial_frame, log_transform=["age"], modifier="marker")
    assert "log_age" in data.covariates and "age" not in data.covariates
    np.testing.assert_allclose(data.X["log_age"], np.log(trial_frame["age"]))
    assert "the modifier 'marker' keeps its own units" in _err(
        trial_frame, modifier="marker", log_transform=["marker"]
    )
    negative = trial_frame.assign(age=trial_frame["age"] - 100)
    assert "column 'age' has values ≤ 0" in _err(negative, log_transform=["age"])
    assert "'stage' is not a covariate" in _err(
        trial_frame, covariates=["age"], log_transform=["stage"]
    )


def test_adjustment_is_the_configured_covariates(trial_frame):
    """The modifier is kept for the interaction model, but adjusted only if listed."""
    data = TrialData.from_frame(trial_frame, covariates=["age"], modifier="marker")
    assert data.covariates == ["age", "marker"]
    assert data.adjustment == ("age",)
    listed = TrialData.from_frame(trial_frame, covariates=["age", "marker"], modifier="marker")
    assert listed.adjustment == ("age", "marker")


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
            "column 'time': non-numeric time 'abc' in row 4",
        ),
        (
            lambda f: f.assign(time=f["time"].where(f.index != 5, 0.0)),
            {},
            "column 'time': times must be > 0; row 6 has 0",
        ),
        (
            lambda f: f.assign(time=f["time"].where(f.index != 7, -2.0)),
            {},
            "column 'time': times must be > 0; row 8 has -2",
        ),
        (
            lambda f: f.assign(time=f["time"].where(f.index != 9)),
            {},
            "column 'time': 1 missing time(s), first in row 10",
        ),
        (
            lambda f: f.assign(event=f["event"].where(f.index != 2, 2)),
            {},
            "column 'event': events must be 0 (censored) or 1 (event); found 2 in row 3",
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
