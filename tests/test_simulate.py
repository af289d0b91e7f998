"""Tests of the MIROCALS simulator: contract, exact truth, and calibration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from stratify.data import TrialData
from stratify.data.simulate import (
    DESIGNS,
    EL_ESCORIAL,
    WEIBULL_SCALE,
    WEIBULL_SHAPE,
    simulate,
    simulate_mirocals,
)
from stratify.exceptions import StratifyInputError
from stratify.validation.calibration import calibration_table, simulate_statistics

COLUMNS = [
    "time",
    "event",
    "arm",
    "age",
    "male",
    "bulbar_onset",
    "country_france",
    "el_escorial",
    "onset_to_screening",
    "delta_fs",
    "alsfrs_r",
    "svc",
    "csf_pnfh",
    "tau_rmst",
    "tau_surv",
]
TRUTH = ["tau_rmst", "tau_surv"]


@pytest.fixture(scope="module")
def large() -> pd.DataFrame:
    return simulate_mirocals(200_000, seed=11)


def test_same_seed_same_frame_and_different_seeds_differ():
    a, b = simulate_mirocals(220, seed=3), simulate_mirocals(220, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = simulate_mirocals(220, seed=4)
    assert not np.allclose(a["time"], c["time"])
    assert not np.allclose(a["csf_pnfh"], c["csf_pnfh"])


def test_column_contract_and_dtypes():
    df = simulate_mirocals(220, seed=0)
    assert list(df.columns) == COLUMNS
    for name in ["event", "arm", "male", "bulbar_onset", "country_france"]:
        assert pd.api.types.is_integer_dtype(df[name]), name
        assert set(df[name].unique()) <= {0, 1}, name
    for name in ["time", "age", "onset_to_screening", "delta_fs", "alsfrs_r", "svc", "csf_pnfh"]:
        assert pd.api.types.is_float_dtype(df[name]), name
    for name in TRUTH:
        assert pd.api.types.is_float_dtype(df[name]), name
    assert set(df["el_escorial"]) <= set(EL_ESCORIAL)
    assert all(isinstance(v, str) for v in df["el_escorial"])
    assert df.notna().all().all()
    assert (df["time"] > 0).all() and (df["csf_pnfh"] > 0).all()
    assert df["age"].between(25, 76).all() and (df["svc"] >= 70).all()
    assert (df["onset_to_screening"] <= 24).all() and df["alsfrs_r"].between(0, 48).all()


def test_simulated_trial_passes_trial_data_checks():
    trial = TrialData.from_frame(simulate_mirocals(220, seed=2), modifier="csf_pnfh")
    assert trial.n_patients == 220
    assert list(trial.truth.columns) == TRUTH
    assert not set(TRUTH) & set(trial.covariates)


@pytest.mark.parametrize(("n", "seed"), [(220, 0), (220, 7), (221, 0), (221, 5), (20, 1), (57, 2)])
def test_exact_split_with_extra_patient_in_control(n, seed):
    arm = simulate_mirocals(n, seed=seed)["arm"]
    assert int(arm.sum()) == n // 2
    assert int((arm == 0).sum()) == n - n // 2


def test_randomisation_is_balanced_within_strata():
    df = simulate_mirocals(220, seed=9)
    counts = df.groupby(["country_france", "bulbar_onset"])["arm"].agg(["sum", "size"])
    imbalance = (2 * counts["sum"] - counts["size"]).abs()
    assert (imbalance <= 3).all(), counts


def test_follow_up_is_administrative_at_640_days():
    df = simulate_mirocals(5_000, seed=1)
    assert (df["time"] <= 640).all()
    assert (df.loc[df["event"] == 1, "time"] < 640).all()
    assert (df.loc[df["event"] == 0, "time"] == 640).all()


def test_dropout_censors_a_few_early_and_changes_nothing_else():
    base = simulate_mirocals(20_000, seed=1)
    lost = simulate_mirocals(20_000, seed=1, dropout=0.02)
    early = (lost["event"] == 0) & (lost["time"] < 640)
    assert 0.005 < early.mean() <= 0.02
    same = [c for c in COLUMNS if c not in {"time", "event"}]
    pd.testing.assert_frame_equal(base[same], lost[same])
    assert (lost["time"] <= base["time"]).all()


def _eta(df: pd.DataFrame) -> np.ndarray:
    """The sheet's prognostic linear predictor, written out independently."""
    return (
        0.025 * (df["age"] - 60)
        + 0.26 * df["bulbar_onset"]
        + 0.80 * np.log(df["delta_fs"] / 0.55)
        - 0.010 * (df["svc"] - 90)
        + 0.15 * (np.log(df["csf_pnfh"]) - 7.62)
        + 0.20 * (df["el_escorial"] == "definite")
    ).to_numpy()


def _s(t: float, log_rate: float) -> float:
    return math.exp(-((t / WEIBULL_SCALE) ** WEIBULL_SHAPE) * math.exp(log_rate))


@pytest.mark.parametrize(("horizon", "effect"), [(640.0, "mirocals"), (365.0, "common")])
def test_truth_matches_numerical_integration(horizon, effect):
    df = simulate_mirocals(300, seed=4, horizon=horizon, effect=effect)
    eta = _eta(df)
    p = df["csf_pnfh"].to_numpy()
    g = np.where(p >= 750, math.log(0.28) + 0.0003 * p, 0.0)
    if effect == "common":
        g = np.full(p.size, math.log(0.75))
    rows = [*np.flatnonzero(p >= 750)[:3], *np.flatnonzero(p < 750)[:1], *np.flatnonzero(g > 0)[:2]]
    assert len(rows) >= 4
    for i in rows:
        treated = quad(_s, 0, horizon, args=(eta[i] + g[i],), epsabs=1e-12, epsrel=1e-13)[0]
        control = quad(_s, 0, horizon, args=(eta[i],), epsabs=1e-12, epsrel=1e-13)[0]
        assert df["tau_rmst"].iloc[i] == pytest.approx(treated - control, abs=1e-8)
        surv = _s(horizon, eta[i] + g[i]) - _s(horizon, eta[i])
        assert df["tau_surv"].iloc[i] == pytest.approx(surv, abs=1e-12)


def test_no_effect_means_zero_truth():
    df = simulate_mirocals(500, seed=2, effect="none")
    assert (df[TRUTH] == 0).all().all()


@pytest.mark.parametrize("log_hr", [math.log(0.75), math.log(1.4)])
def test_common_effect_has_one_sign(log_hr):
    df = simulate_mirocals(500, seed=2, effect="common", common_log_hr=log_hr)
    sign = -np.sign(log_hr)
    assert (np.sign(df["tau_rmst"]) == sign).all()
    assert (np.sign(df["tau_surv"]) == sign).all()


def test_mirocals_effect_helps_low_and_harms_high_pnfh():
    df = simulate_mirocals(20_000, seed=6)
    p = df["csf_pnfh"]
    assert (df.loc[p < 750, TRUTH] == 0).all().all()
    benefit = df.loc[(p >= 750) & (p < 4000)]
    harm = df.loc[p > 4500]
    assert len(harm) > 100
    assert (benefit["tau_rmst"] > 0).all() and (benefit["tau_surv"] > 0).all()
    assert (harm["tau_rmst"] < 0).all() and (harm["tau_surv"] < 0).all()


def test_horizon_changes_truth_not_data():
    a = simulate_mirocals(400, seed=8)
    b = simulate_mirocals(400, seed=8, horizon=365.0)
    data = [c for c in COLUMNS if c not in TRUTH]
    pd.testing.assert_frame_equal(a[data], b[data])
    assert not np.allclose(a["tau_rmst"], b["tau_rmst"])
    assert not np.allclose(a["tau_surv"], b["tau_surv"])


def test_large_sample_matches_the_sheet(large):
    df = large
    p = df["csf_pnfh"]
    mortality = df.groupby("arm")["event"].mean()
    checks = {
        "male": (df["male"].mean(), 0.62),
        "possible ALS": ((df["el_escorial"] == "possible").mean(), 0.11),
        "share < 750": ((p < 750).mean(), 0.088),
        "share 750-3700": (p.between(750, 3700).mean(), 0.701),
        "share > 3700": ((p > 3700).mean(), 0.211),
        "placebo 640-day mortality": (mortality[0], 0.447),
        "IL-2 640-day mortality": (mortality[1], 0.354),
        "bulbar onset": (df["bulbar_onset"].mean(), 0.28),
        "France": (df["country_france"].mean(), 0.60),
    }
    for name, (got, want) in checks.items():
        assert abs(got - want) <= 0.01, f"{name}: {got:.4f} vs sheet {want}"
    assert df["alsfrs_r"].mean() == pytest.approx(37.8, abs=0.5)
    assert df["alsfrs_r"].std() == pytest.approx(6.3, abs=0.5)
    assert p.median() == pytest.approx(2030, rel=0.03)
    assert np.corrcoef(np.log(df["delta_fs"]), np.log(p))[0, 1] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": 19}, "n"),
        ({"n": 220.0}, "n"),
        ({"n": True}, "n"),
        ({"n": "220"}, "n"),
        ({"seed": -1}, "seed"),
        ({"effect": "bogus"}, "effect"),
        ({"dropout": 0.05}, "dropout"),
        ({"dropout": -0.01}, "dropout"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": math.nan}, "horizon"),
        ({"common_log_hr": math.inf}, "common_log_hr"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(StratifyInputError, match=rf"^{name} must"):
        simulate_mirocals(**kwargs)


def test_effect_error_lists_valid_values():
    with pytest.raises(StratifyInputError, match="'mirocals', 'none', 'common'"):
        simulate_mirocals(effect="strong")


def test_registry_and_simulate():
    assert DESIGNS["mirocals"] is simulate_mirocals
    pd.testing.assert_frame_equal(simulate("mirocals", n=30, seed=1), simulate_mirocals(30, seed=1))
    with pytest.raises(StratifyInputError, match=r"design must be one of 'mirocals'"):
        simulate("lithium")


# --- calibration against the published trial (section 4 of the sheet) -------


@pytest.mark.slow
def test_published_values_lie_in_central_95_percent_of_simulated_trials():
    """Each published MIROCALS figure (Lancet 2025; sheet section 4) lies between the 2.5th and
    97.5th percentile of 200 simulated trials of n = 220, analysed by stratify's own
    (R-matched) trial analysis. 1,000 trials: see experiments/calibrate_mirocals.py."""
    table = calibration_table(simulate_statistics(200, seed=0))
    assert table["n_missing"].sum() == 0
    outside = table[~table["inside"]]
    assert outside.empty, "; ".join(
        f"{r.target}: published {r.published:.4g} at percentile {r.percentile:.1f} "
        f"(central 95 %: {r.low:.4g} to {r.high:.4g})"
        for r in outside.itertuples()
    )
