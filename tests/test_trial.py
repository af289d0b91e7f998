"""Tests of `stratify.trial`: invariances and limit cases.

Agreement with R's survival (GBSG2 and two more references) is in tests/test_trial_reference.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stratify.data import TrialData
from stratify.exceptions import StratifyInputError
from stratify.trial import analyse_trial
from stratify.trial.km import fit_km, rmst_se
from stratify.trial.strata import analyse_strata, assign_strata, stratum_labels

REQUIRED_KEYS = {
    "n_patients", "n_events", "logrank_p", "hr_unadjusted", "hr_unadjusted_ci_low",
    "hr_unadjusted_ci_high", "hr_unadjusted_p", "hr_adjusted", "hr_adjusted_ci_low",
    "hr_adjusted_ci_high", "hr_adjusted_p", "interaction_hr_per_unit", "interaction_p",
    "km_surv_control", "km_surv_treated", "rmst_diff", "rmst_diff_ci_low", "rmst_diff_ci_high",
}  # fmt: skip

# ---------------------------------------------------------------- simulated trials


def _simulate(seed: int, n: int = 240, *, censor: bool = True) -> pd.DataFrame:
    """Exponential survival with an arm effect that depends on a biomarker."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    marker = rng.lognormal(0, 0.5, n)
    sex = rng.choice(["F", "M"], n)
    arm = rng.permutation(np.repeat(["placebo", "drug"], n // 2))
    eta = 0.03 * (age - 60) + (arm == "drug") * (-0.9 + 0.5 * marker) + 0.2 * (sex == "M")
    t = rng.exponential(300 * np.exp(-eta))
    c = rng.uniform(200, 900, n) if censor else np.full(n, np.inf)
    return pd.DataFrame(
        {
            "time": np.ceil(np.minimum(t, c)),  # whole days: ties, as in real trials
            "event": (t <= c).astype(int),
            "arm": arm,
            "age": age,
            "sex": sex,
            "marker": marker,
        }
    )


def _trial(
    frame: pd.DataFrame, treated: str = "drug", modifier: str | None = "marker"
) -> TrialData:
    return TrialData.from_frame(frame, treated=treated, modifier=modifier)


HORIZON = 150.0
CUTS = [0.8, 1.5]


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return _simulate(1)


@pytest.fixture(scope="module")
def sim_analysis(sim):
    return analyse_trial(_trial(sim), horizon=HORIZON, cutpoints=CUTS)


def test_metrics_have_the_required_keys_as_floats(sim_analysis):
    """Every metric the project requires is reported, and every metric is a float."""
    assert set(sim_analysis.metrics()) >= REQUIRED_KEYS
    assert all(isinstance(v, float) for v in sim_analysis.metrics().values())


def test_time_scale_invariance(sim, sim_analysis):
    """Multiplying all times by c leaves HRs and p-values unchanged and scales RMST by c."""
    c = 7.5
    scaled = analyse_trial(
        _trial(sim.assign(time=sim["time"] * c)), horizon=HORIZON * c, cutpoints=CUTS
    )
    got, ref = scaled.metrics(), sim_analysis.metrics()
    for key, value in ref.items():
        factor = c if key.startswith("rmst_") and not key.endswith("_p") else 1.0
        assert got[key] == pytest.approx(value * factor, rel=1e-7, nan_ok=True), key


def test_arm_swap_inverts(sim, sim_analysis):
    """Relabelling the arms inverts every arm HR (CI swapped) and negates the RMST difference."""
    swapped = analyse_trial(_trial(sim, treated="placebo"), horizon=HORIZON, cutpoints=CUTS)
    got, ref = swapped.metrics(), sim_analysis.metrics()
    prefixes = ["hr_unadjusted", "hr_adjusted", "hr_interaction_arm", "interaction_hr_per_unit"]
    prefixes += [f"stratum{i}_hr" for i in (1, 2, 3)]
    for prefix in prefixes:
        assert got[prefix] == pytest.approx(1 / ref[prefix], rel=1e-7)
        assert got[f"{prefix}_ci_low"] == pytest.approx(1 / ref[f"{prefix}_ci_high"], rel=1e-7)
        assert got[f"{prefix}_ci_high"] == pytest.approx(1 / ref[f"{prefix}_ci_low"], rel=1e-7)
    for key in ["hr_unadjusted_p", "hr_adjusted_p", "interaction_p", "logrank_p", "rmst_diff_p"]:
        assert got[key] == pytest.approx(ref[key], rel=1e-7)
    assert got["rmst_diff"] == pytest.approx(-ref["rmst_diff"], rel=1e-12)
    assert got["rmst_diff_ci_low"] == pytest.approx(-ref["rmst_diff_ci_high"], rel=1e-12)
    assert got["km_surv_control"] == ref["km_surv_treated"]
    assert swapped.arm_labels == ("drug", "placebo")


def test_covariate_scale_invariance(sim, sim_analysis):
    """Rescaling a covariate (to a variance far below 1e-4) leaves every arm result unchanged."""
    rescaled = analyse_trial(
        _trial(sim.assign(age=sim["age"] * 1e-4)), horizon=HORIZON, cutpoints=CUTS
    )
    got = rescaled.metrics()
    for key, value in sim_analysis.metrics().items():
        assert got[key] == pytest.approx(value, rel=1e-7), key


def test_row_permutation_invariance(sim, sim_analysis):
    permuted = sim.sample(frac=1.0, random_state=3).reset_index(drop=True)
    got = analyse_trial(_trial(permuted), horizon=HORIZON, cutpoints=CUTS).metrics()
    for key, value in sim_analysis.metrics().items():
        assert got[key] == pytest.approx(value, rel=1e-7), key


def test_no_censoring_limit():
    """Without censoring KM is the empirical survival and RMST the mean of min(T, h)."""
    frame = _simulate(2, censor=False)
    data = _trial(frame, modifier=None)
    analysis = analyse_trial(data, horizon=HORIZON)
    for arm_code, summary in ((0, analysis.control), (1, analysis.treated)):
        t = data.time[data.arm == arm_code]
        restricted = np.minimum(t, HORIZON)
        assert summary.surv == pytest.approx(np.mean(t > HORIZON), rel=1e-12)
        assert summary.rmst == pytest.approx(restricted.mean(), rel=1e-12)
        assert summary.rmst_se == pytest.approx(restricted.std() / np.sqrt(t.size), rel=1e-9)
    assert analysis.n_events == data.n_patients


def test_rmst_se_small_example_matches_r():
    """R: print(survfit(Surv(c(1,2,2,4,5), c(1,0,1,1,0)) ~ 1), rmean = 4.5) gives 3.15, 0.628."""
    kmf = fit_km(np.array([1.0, 2, 2, 4, 5]), np.array([1, 0, 1, 1, 0]), alpha=0.05)
    assert rmst_se(kmf, 4.5) == pytest.approx(0.6278933, rel=1e-6)


def test_stratum_without_events_is_nan_with_note(sim):
    frame = sim.assign(event=np.where(sim["marker"] < CUTS[0], 0, sim["event"]))
    analysis = analyse_trial(_trial(frame), horizon=HORIZON, cutpoints=CUTS)
    first = analysis.strata[0]
    assert first.events == 0 and first.n > 0
    assert np.isnan(first.hr.estimate) and "no events" in first.note
    metrics = analysis.metrics()
    assert np.isnan(metrics["stratum1_hr"]) and np.isnan(metrics["stratum1_hr_p"])
    assert np.isfinite(metrics["stratum2_hr"])
    assert "no events" in analysis.table().query("analysis == 'stratum'")["note"].iloc[0]


def test_strata_not_estimable_reasons():
    """One arm only, too few events, and a monotone likelihood each give NaN and a reason."""
    t = np.array([1.0, 2, 3, 10, 11, 12, 13, 14, 5, 6, 7])
    e = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1], dtype=bool)
    a = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1])
    m = np.array([0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9])  # stratum 2: treated only
    strata = analyse_strata(m, t, e, a, cutpoints=[5], alpha=0.05)
    assert "did not converge" in strata[0].note  # treated events all before any control event
    assert "only treated" in strata[1].note
    few = analyse_strata(
        np.zeros(4), [1, 2, 3, 4], [1, 1, 1, 0], [0, 1, 0, 1], cutpoints=[5], alpha=0.05
    )
    assert "too few events" in few[0].note
    assert all(np.isnan(s.hr.estimate) for s in (*strata, *few))


def test_constant_covariate_is_named(sim):
    with pytest.raises(StratifyInputError, match="'site' is constant"):
        analyse_trial(_trial(sim.assign(site=3.0)), horizon=HORIZON)


def test_collinear_covariate_is_named(sim):
    with pytest.raises(StratifyInputError, match="'age_months' is perfectly collinear"):
        analyse_trial(_trial(sim.assign(age_months=sim["age"] * 12)), horizon=HORIZON)


@pytest.mark.parametrize("horizon", [0.0, -5.0, float("nan"), 1e6])
def test_bad_horizon(sim, horizon):
    with pytest.raises(StratifyInputError, match="horizon"):
        analyse_trial(_trial(sim), horizon=horizon)


@pytest.mark.parametrize("cutpoints", [[1.5, 0.8], [], [1.0, 1.0]])
def test_bad_cutpoints(sim, cutpoints):
    with pytest.raises(StratifyInputError, match="cutpoints"):
        analyse_trial(_trial(sim), horizon=HORIZON, cutpoints=cutpoints)


def test_no_modifier_no_interaction_or_strata_keys(sim):
    analysis = analyse_trial(_trial(sim, modifier=None), horizon=HORIZON)
    keys = set(analysis.metrics())
    assert REQUIRED_KEYS - {"interaction_hr_per_unit", "interaction_p"} <= keys
    assert not any(k.startswith(("interaction", "hr_interaction", "stratum")) for k in keys)
    with pytest.raises(ValueError, match="modifier"):
        analysis.hr_curve([1.0])
    with pytest.raises(StratifyInputError, match="cutpoints need a modifier"):
        analyse_trial(_trial(sim, modifier=None), horizon=HORIZON, cutpoints=[1.0])


def test_hr_curve_at_zero_is_arm_hr(sim_analysis):
    curve = sim_analysis.hr_curve([0.0, 1.0])
    arm = sim_analysis.hr_interaction_arm
    assert curve["hr"].iloc[0] == pytest.approx(arm.estimate, rel=1e-12)
    assert curve["ci_low"].iloc[0] == pytest.approx(arm.ci_low, rel=1e-12)
    per_unit = sim_analysis.interaction_hr.estimate
    assert curve["hr"].iloc[1] == pytest.approx(arm.estimate * per_unit, rel=1e-12)


def test_strata_convention():
    """MIROCALS: '< 750', '750-3700' (both ends), '> 3700'; one cutpoint: '< c', '>= c'."""
    assert assign_strata([749.9, 750, 3700, 3700.1], [750, 3700]).tolist() == [1, 2, 2, 3]
    assert assign_strata([1, 2, 3, 4, 5], [2, 3, 4]).tolist() == [1, 2, 2, 3, 4]
    assert stratum_labels([750, 3700]) == ["< 750", "750\u20133700", "> 3700"]
    assert stratum_labels([2, 3, 4]) == ["< 2", "2\u20133", "3\u20134", "> 4"]


def test_overall_cox_failure_is_a_clear_error():
    """All treated events precede every control event: the arm HR is infinite, so stop."""
    frame = pd.DataFrame(
        {
            "time": [1.0, 2, 3, 4, 10, 11, 12, 13],
            "event": 1,
            "arm": [1, 1, 1, 1, 0, 0, 0, 0],
            "age": [50.0, 61, 55, 70, 48, 66, 59, 62],
        }
    )
    with pytest.raises(StratifyInputError, match="Cox model of arm cannot be fitted"):
        analyse_trial(TrialData.from_frame(frame), horizon=3)


def test_cox_failures_are_caught_whatever_numpys_error_state():
    # lifelines' KaplanMeierFitter sets numpy to ignore invalid values for the whole process;
    # fit_km must not leak that, and fit_cox must not depend on it
    before = np.geterr()
    fit_km(np.array([1.0, 2, 3, 4]), np.array([1, 0, 1, 1], dtype=bool), alpha=0.05)
    assert np.geterr() == before
    t = np.array([1.0, 2, 3, 10, 11, 12, 13, 14])
    e = np.ones(8, dtype=bool)
    a = np.array([1, 1, 1, 0, 0, 0, 0, 0])  # every treated death before any control death
    with np.errstate(all="ignore"):
        strata = analyse_strata(np.zeros(8), t, e, a, cutpoints=[5], alpha=0.05)
    assert "did not converge" in strata[0].note
