"""Simulated randomised survival trials whose true per-patient effect is known.

The one design so far, :func:`simulate_mirocals`, mimics MIROCALS (low-dose
interleukin-2, IL-2LD, versus placebo in ALS; Bensimon et al., *Lancet* 2025):
220 patients randomised 1:1, followed for 640 days, with a benefit that shrinks
and then reverses as CSF phosphorylated neurofilament heavy chain (pNFH) rises.
The data-generating process is section 3 of the MIROCALS calibration sheet
(``mirocals_calibration.md``); the patient data are not public, so the
simulator is checked against the published figures (section 4 of the sheet)
over many simulated trials, not against one seed.

Assumptions that are ours, not the trial's (tagged [S] in the sheet):

* age ~ normal(60.5, 10.5) truncated to [25, 76] (the shape; the median of
  about 60 is published);
* 28 % bulbar onset; 60 % recruited in France (else UK);
* El Escorial: 20 % laboratory-supported probable, 39 % probable, 30 %
  definite (the 11 % "possible" is published);
* onset to screening ~ lognormal, median 12 months, sdlog 0.45, capped at 24;
* ln ΔFS ~ N(ln 0.55, 0.50) and ln pNFH ~ N(7.62, 0.74), correlation 0.5
  (chosen so that the < 750 / 750-3700 / > 3700 pg/mL shares are 9 / 70 / 21 %);
* the riluzole run-in lasts uniform(12, 18) weeks and ALSFRS-R at
  randomisation is 48 - ΔFS x (onset to screening + run-in), kept in [0, 48];
* SVC (% predicted) ~ normal(93 - 4·ln(ΔFS/0.55), 15) truncated at ≥ 70;
* survival is Weibull proportional hazards with shape 1.4 and the prognostic
  log hazard ratios of the sheet (the ENCALS predictors);
* the treatment has no effect below 750 pg/mL (the floor of g);
* randomisation uses permuted blocks of 4 within country x onset site, and the
  final incomplete blocks are balanced so that exactly ``n // 2`` are treated;
* dropout, when asked for, censors a random ``dropout`` share of patients at a
  uniform time over the 640 days, independently of everything else.

The Weibull scale is calibrated, not published: it is the value for which the
expected placebo mortality at 640 days, averaged over 400,000 simulated
patients, equals the published 49/110 (see ``experiments/calibrate_mirocals.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.special import gamma, gammainc, ndtr, ndtri

from stratify.exceptions import StratifyInputError

#: Weibull shape of survival from randomisation (ENCALS cohorts: 1.4-1.5).
WEIBULL_SHAPE = 1.4
#: Weibull scale in days. Printed by ``python experiments/calibrate_mirocals.py --n-trials 0``
#: (expected placebo 640-day mortality = 49/110 over 400,000 patients, seed 2025).
WEIBULL_SCALE = 1013.1
#: Administrative end of follow-up, days (vital status complete for everyone).
FOLLOW_UP = 640.0
#: Below this CSF pNFH (pg/mL) the treatment has no effect [S].
PNFH_FLOOR = 750.0
EFFECTS = ("mirocals", "none", "common")
EL_ESCORIAL = ("possible", "lab_supported_probable", "probable", "definite")
EL_ESCORIAL_P = (0.11, 0.20, 0.39, 0.30)
_DAYS_PER_MONTH = 365.25 / 12


def simulate_mirocals(
    n: int = 220,
    seed: int = 0,
    *,
    horizon: float = 640.0,
    effect: str = "mirocals",
    common_log_hr: float = math.log(0.75),
    dropout: float = 0.0,
) -> pd.DataFrame:
    """Simulate one MIROCALS-like trial with its true per-patient effects.

    The hazard of death, t days after randomisation, is Weibull PH:
    ``h(t) = k/λ (t/λ)^(k-1) exp(η + arm·g(pNFH))`` with k = 1.4, λ =
    :data:`WEIBULL_SCALE`, and
    ``η = 0.025(age - 60) + 0.26 bulbar + 0.80 ln(ΔFS/0.55) - 0.010(SVC - 90)
    + 0.15(ln pNFH - 7.62) + 0.20 definite``.
    Under ``effect="mirocals"``, ``g(p) = ln 0.28 + 0.0003 p`` for p ≥ 750
    pg/mL and 0 below, so the true benefit is largest just above 750 pg/mL and
    reverses above p = -ln(0.28)/0.0003 ≈ 4,243 pg/mL (the published adjusted
    Cox model puts the crossing near 3,800). See the module docstring for the
    assumptions behind the covariates.

    Post-randomisation variables (regulatory T-cell and CCL2 responses,
    ALSFRS-R slopes after randomisation) are deliberately not returned: they
    are affected by treatment, and conditioning on them would bias any effect
    estimate, so they must never be used as covariates.

    Parameters
    ----------
    n : int
        Number of patients, at least 20; ``n // 2`` are treated.
    seed : int
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same
        frame.
    horizon : float
        Time (days) up to which the true effects are computed. It does not
        change the data: follow-up always ends at 640 days.
    effect : {"mirocals", "none", "common"}
        Treatment effect on the log hazard: g(pNFH) above, none, or
        ``common_log_hr`` for every patient.
    common_log_hr : float
        Log hazard ratio used when ``effect="common"``; ignored otherwise.
    dropout : float
        Share of patients lost to follow-up, between 0 and 0.02.

    Returns
    -------
    pandas.DataFrame
        One row per patient: ``time`` (days), ``event`` (1 = death), ``arm``
        (1 = IL-2LD, 0 = placebo), ``age``, ``male``, ``bulbar_onset``,
        ``country_france``, ``el_escorial``, ``onset_to_screening`` (months),
        ``delta_fs`` (points/month), ``alsfrs_r``, ``svc`` (% predicted),
        ``csf_pnfh`` (pg/mL), and the truth: ``tau_rmst`` (RMST treated minus
        control up to ``horizon``, days) and ``tau_surv`` (S1 - S0 at
        ``horizon``), exact in closed form.

    Raises
    ------
    StratifyInputError
        If an argument is invalid; the message names it.

    Examples
    --------
    >>> df = simulate_mirocals(220, seed=1)
    >>> df.shape
    (220, 15)
    >>> int(df["arm"].sum()), int((df["arm"] == 0).sum())
    (110, 110)
    >>> bool(df["time"].max() <= 640)
    True
    """
    _check_arguments(n, seed, horizon, effect, common_log_hr, dropout)
    rng = np.random.default_rng(seed)
    frame = simulate_covariates(rng, n)
    strata = 2 * frame["country_france"].to_numpy() + frame["bulbar_onset"].to_numpy()
    arm = _randomise(rng, strata, n // 2)
    eta = prognostic_index(frame)
    log_hr = _arm_log_hr(frame["csf_pnfh"].to_numpy(), effect, common_log_hr)
    death = WEIBULL_SCALE * (rng.exponential(size=n) * np.exp(-eta - arm * log_hr)) ** (
        1 / WEIBULL_SHAPE
    )
    lost = rng.random(n) < dropout
    censor = np.where(lost, FOLLOW_UP * (1.0 - rng.random(n)), FOLLOW_UP)
    outcome = pd.DataFrame(
        {"time": np.minimum(death, censor), "event": (death < censor).astype(int), "arm": arm}
    )
    frame = pd.concat([outcome, frame], axis=1)
    frame["tau_rmst"] = _rmst(eta + log_hr, horizon) - _rmst(eta, horizon)
    frame["tau_surv"] = _survival(eta + log_hr, horizon) - _survival(eta, horizon)
    return frame


def _check_arguments(n, seed, horizon, effect, common_log_hr, dropout) -> None:
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 20:
        raise StratifyInputError(f"n must be an integer >= 20 (got {n!r})")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise StratifyInputError(f"seed must be a non-negative integer (got {seed!r})")
    if effect not in EFFECTS:
        valid = ", ".join(repr(e) for e in EFFECTS)
        raise StratifyInputError(f"effect must be one of {valid} (got {effect!r})")
    if not _is_real(horizon) or not 0 < horizon < math.inf:
        raise StratifyInputError(f"horizon must be a positive number of days (got {horizon!r})")
    if not _is_real(common_log_hr) or not math.isfinite(common_log_hr):
        raise StratifyInputError(f"common_log_hr must be a finite number (got {common_log_hr!r})")
    if not _is_real(dropout) or not 0 <= dropout <= 0.02:
        raise StratifyInputError(f"dropout must be a number in [0, 0.02] (got {dropout!r})")


def _is_real(x) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool) and not math.isnan(x)


def simulate_covariates(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Baseline covariates at randomisation (section 3 of the sheet).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of patients.

    Returns
    -------
    pandas.DataFrame
        The covariate columns of :func:`simulate_mirocals`, without arm or outcome.
    """
    age = _truncated_normal(rng, 60.5, 10.5, 25.0, 76.0, n)
    male = (rng.random(n) < 0.62).astype(int)
    bulbar = (rng.random(n) < 0.28).astype(int)
    france = (rng.random(n) < 0.60).astype(int)
    el_escorial = np.asarray(EL_ESCORIAL, dtype=object)[rng.choice(4, size=n, p=EL_ESCORIAL_P)]
    duration = np.minimum(12.0 * np.exp(0.45 * rng.standard_normal(n)), 24.0)
    z = rng.standard_normal((n, 2))
    log_dfs = math.log(0.55) + 0.50 * z[:, 0]
    log_pnfh = 7.62 + 0.74 * (0.5 * z[:, 0] + math.sqrt(1 - 0.5**2) * z[:, 1])
    delta_fs = np.exp(log_dfs)
    run_in = rng.uniform(12.0, 18.0, n) * 7 / _DAYS_PER_MONTH
    alsfrs = np.clip(48.0 - delta_fs * (duration + run_in), 0.0, 48.0)
    svc = _truncated_normal(rng, 93.0 - 4.0 * (log_dfs - math.log(0.55)), 15.0, 70.0, np.inf, n)
    return pd.DataFrame(
        {
            "age": age,
            "male": male,
            "bulbar_onset": bulbar,
            "country_france": france,
            "el_escorial": el_escorial,
            "onset_to_screening": duration,
            "delta_fs": delta_fs,
            "alsfrs_r": alsfrs,
            "svc": svc,
            "csf_pnfh": np.exp(log_pnfh),
        }
    )


def _truncated_normal(rng, mean, sd, low, high, size) -> np.ndarray:
    """Normal(mean, sd) restricted to [low, high], by inverting the CDF."""
    lo, hi = ndtr((low - mean) / sd), ndtr((high - mean) / sd)
    return mean + sd * ndtri(lo + (hi - lo) * rng.random(size))


def _randomise(rng: np.random.Generator, strata: np.ndarray, n_treated: int) -> np.ndarray:
    """1:1 permuted blocks of 4 within strata, then exactly ``n_treated`` treated.

    Only the last, incomplete block of a stratum can be unbalanced, so the
    overall excess is removed by switching randomly chosen patients of the
    over-represented arm within those blocks (there are always enough).
    """
    arm = np.zeros(strata.size, dtype=int)
    in_last_block = np.zeros(strata.size, dtype=bool)
    for stratum in range(4):
        idx = np.flatnonzero(strata == stratum)
        n_blocks = -(-idx.size // 4)
        blocks = rng.permuted(np.tile([0, 0, 1, 1], (n_blocks, 1)), axis=1)
        arm[idx] = blocks.ravel()[: idx.size]
        in_last_block[idx[(idx.size // 4) * 4 :]] = True
    excess = int(arm.sum()) - n_treated
    if excess:
        over = 1 if excess > 0 else 0
        candidates = np.flatnonzero(in_last_block & (arm == over))
        arm[rng.choice(candidates, size=abs(excess), replace=False)] = 1 - over
    return arm


def prognostic_index(frame: pd.DataFrame) -> np.ndarray:
    """Prognostic part η of the log hazard (no treatment term).

    Parameters
    ----------
    frame : pandas.DataFrame
        Covariates as made by :func:`simulate_covariates`.

    Returns
    -------
    numpy.ndarray
        η per patient; the hazard is ``k/λ (t/λ)^(k-1) exp(η + arm·g(pNFH))``.
    """
    return (
        0.025 * (frame["age"] - 60)
        + 0.26 * frame["bulbar_onset"]
        + 0.80 * np.log(frame["delta_fs"] / 0.55)
        - 0.010 * (frame["svc"] - 90)
        + 0.15 * (np.log(frame["csf_pnfh"]) - 7.62)
        + 0.20 * (frame["el_escorial"] == "definite")
    ).to_numpy(dtype=float)


def _arm_log_hr(pnfh: np.ndarray, effect: str, common_log_hr: float) -> np.ndarray:
    """Log hazard ratio of treatment for each patient, g(pNFH)."""
    if effect == "none":
        return np.zeros(pnfh.size)
    if effect == "common":
        return np.full(pnfh.size, float(common_log_hr))
    return np.where(pnfh >= PNFH_FLOOR, math.log(0.28) + 0.0003 * pnfh, 0.0)


def _survival(log_rate: np.ndarray, t: float) -> np.ndarray:
    """Weibull PH survival ``exp(-(t/λ)^k · exp(log_rate))``."""
    return np.exp(-((t / WEIBULL_SCALE) ** WEIBULL_SHAPE) * np.exp(log_rate))


def _rmst(log_rate: np.ndarray, horizon: float) -> np.ndarray:
    """Weibull PH restricted mean survival up to ``horizon``, in closed form.

    ``∫_0^h exp(-c t^k) dt = c^(-1/k) Γ(1 + 1/k) P(1/k, c h^k)`` with
    ``c = exp(log_rate)/λ^k`` and P the regularised lower incomplete gamma.
    """
    k = WEIBULL_SHAPE
    cum_hazard = (horizon / WEIBULL_SCALE) ** k * np.exp(log_rate)
    return WEIBULL_SCALE * np.exp(-log_rate / k) * gamma(1 + 1 / k) * gammainc(1 / k, cum_hazard)


#: Simulation designs by name; every learner is scored on these.
DESIGNS: dict[str, Callable[..., pd.DataFrame]] = {"mirocals": simulate_mirocals}


def simulate(design: str, **kwargs) -> pd.DataFrame:
    """Simulate one trial from the design called ``design``.

    Parameters
    ----------
    design : str
        A key of :data:`DESIGNS`.
    **kwargs
        Passed to the design's function (e.g. ``n``, ``seed``, ``effect``).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> float(simulate("mirocals", n=40, seed=3, effect="none")["tau_rmst"].abs().max())
    0.0
    """
    if design not in DESIGNS:
        valid = ", ".join(repr(d) for d in DESIGNS)
        raise StratifyInputError(f"design must be one of {valid} (got {design!r})")
    return DESIGNS[design](**kwargs)
