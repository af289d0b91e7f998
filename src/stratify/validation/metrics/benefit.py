r"""Benefit metrics: does a learner's estimated benefit rank and size the true benefit?

Each metric compares out-of-fold benefit estimates with per-patient doubly
robust scores :math:`\Gamma_i` (:func:`stratify.learners.scores.dr_scores`), whose
conditional mean is the patient's true effect, or, for calibration, with
Kaplan-Meier RMST differences within groups:

* :func:`rate` -- the rank-weighted average treatment effect (AUTOC or Qini)
  with a bootstrap standard error, as grf's ``rank_average_treatment_effect``;
* :func:`heterogeneity_test` -- a one-sided z-test of RATE > 0, one per
  learner, :func:`blp_test` -- grf's best-linear-predictor calibration test, and
  :func:`combine_heterogeneity` -- the run's single verdict;
* :func:`benefit_calibration` -- predicted vs observed RMST difference by
  quantile group of predicted benefit;
* :func:`c_for_benefit` -- concordance between predicted benefit and scores;
* :func:`truth_metrics` -- RMSE and Spearman correlation against a known truth.

Priorities, predictions and scores must all be out-of-fold: the estimate for
patient *i* must not have used patient *i*'s outcome.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from scipy import stats
from sksurv.util import check_y_survival
from statsmodels.regression.linear_model import OLS

from stratify.exceptions import StratifyInputError
from stratify.formatting import p_value
from stratify.trial.km import arm_survival, rmst_difference

TARGETS = ("AUTOC", "QINI")
BOOTSTRAPS = ("half", "standard")
ALTERNATIVES = ("greater", "two-sided")


def rate(
    priorities: np.ndarray,
    scores: np.ndarray,
    *,
    target: str = "AUTOC",
    n_bootstrap: int = 200,
    bootstrap: str = "half",
    random_state: int | None = None,
) -> tuple[float, float]:
    r"""Rank-weighted average treatment effect and its bootstrap standard error.

    Sort patients by decreasing priority. With :math:`\bar\Gamma` the mean
    score, the targeting operator characteristic at the j-th patient is
    :math:`\mathrm{TOC}_j = \frac1j \sum_{i \le j} \Gamma_{(i)} - \bar\Gamma`
    (the benefit of treating the top :math:`q = j/n` over treating everyone), and

    .. math:: \mathrm{AUTOC} = \frac1n \sum_{j=1}^n \mathrm{TOC}_j = \int_0^1 \mathrm{TOC}(q)\,dq,
              \qquad
              \mathrm{Qini} = \frac1n \sum_{j=1}^n \frac jn \mathrm{TOC}_j
              = \int_0^1 q\,\mathrm{TOC}(q)\,dq.

    Tied priorities are handled exactly as grf does: every score in a tied
    group is replaced by the group's mean score, which equals averaging the
    estimate over all orderings within ties. Constant priorities give 0.

    Parameters
    ----------
    priorities : numpy.ndarray
        Out-of-fold priority per patient, larger = treat first (e.g. estimated benefit).
    scores : numpy.ndarray
        Doubly robust score per patient.
    target : {"AUTOC", "QINI"}
        AUTOC weighs the top of the ranking (power when few benefit); Qini
        weighs all of it (power when benefit is diffuse).
    n_bootstrap : int
        Bootstrap replicates for the standard error (at least 2).
    bootstrap : {"half", "standard"}
        ``"half"``: grf's half-sampling, the SD of the estimate over random
        halves drawn without replacement (which matches the full-sample
        standard error); ``"standard"``: the SD over ordinary resamples.
    random_state : int or None
        Seed of the bootstrap.

    Returns
    -------
    (float, float)
        The estimate and its standard error, in the unit of the scores.

    References
    ----------
    Yadlowsky S, Fleming S, Shah N, Brunskill E, Wager S. Evaluating treatment
    prioritization rules via rank-weighted average treatment effects. *JASA* 2024
    (arXiv:2111.07966); grf ``rank_average_treatment_effect``.

    Examples
    --------
    >>> rate([3, 2, 1, 0], [4.0, 2.0, 0.0, -2.0], n_bootstrap=2, random_state=0)[0]
    1.5
    """
    p, g = _check_pair(priorities, scores, "priorities")
    if target not in TARGETS:
        raise StratifyInputError(f"target must be one of {TARGETS} (got {target!r})")
    if bootstrap not in BOOTSTRAPS:
        raise StratifyInputError(f"bootstrap must be one of {BOOTSTRAPS} (got {bootstrap!r})")
    if not isinstance(n_bootstrap, Integral) or n_bootstrap < 2:
        raise StratifyInputError(f"n_bootstrap must be an integer >= 2 (got {n_bootstrap!r})")
    if bootstrap == "half" and len(p) < 4:
        raise StratifyInputError("half-sampling needs at least 4 patients (2 per half)")
    order = np.argsort(-p, kind="stable")
    p, g = p[order], g[order]
    new_group = np.r_[True, p[1:] != p[:-1]]
    starts, group_of = np.flatnonzero(new_group), np.cumsum(new_group) - 1
    estimate = _weighted_rate(g, starts, group_of, np.ones((1, len(g))), target)[0]
    weights = _bootstrap_weights(len(g), n_bootstrap, bootstrap, random_state)
    replicates = _weighted_rate(g, starts, group_of, weights, target)
    se = np.std(replicates, ddof=1)
    rounding = 1e-12 * max(1.0, float(np.max(np.abs(g))))  # as grf, zero what is rounding error
    return tuple(float(v) if abs(v) > rounding else 0.0 for v in (estimate, se))


def _weighted_rate(g, starts, group_of, w, target) -> np.ndarray:
    """RATE for each row of weights ``w`` (rows: replicates), scores sorted by priority."""
    group_w = np.add.reduceat(w, starts, axis=1)
    group_sum = np.add.reduceat(w * g, starts, axis=1)
    mean_in_group = np.divide(group_sum, group_w, out=np.zeros_like(group_w), where=group_w > 0)
    tied_g = mean_in_group[:, group_of]
    cum_w = np.cumsum(w, axis=1)
    total = cum_w[:, -1:]
    ate = np.sum(w * g, axis=1, keepdims=True) / total
    top_mean = np.divide(
        np.cumsum(w * tied_g, axis=1), cum_w, out=np.zeros_like(cum_w), where=cum_w > 0
    )
    toc = np.where(cum_w > 0, top_mean - ate, 0.0)
    share = cum_w / total if target == "QINI" else 1.0
    return np.sum(share * w * toc, axis=1) / total[:, 0]


def _bootstrap_weights(n, n_bootstrap, kind, random_state) -> np.ndarray:
    """Replicate weights, shape (n_bootstrap, n): 0/1 half-samples or multinomial counts."""
    rng = np.random.default_rng(random_state)
    if kind == "standard":
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(float)
    ranks = np.argsort(rng.random((n_bootstrap, n)), axis=1)
    return (ranks < n // 2).astype(float)


def heterogeneity_test(
    priorities: np.ndarray,
    scores: np.ndarray,
    *,
    target: str = "AUTOC",
    alternative: str = "greater",
    n_bootstrap: int = 200,
    random_state: int | None = None,
) -> float:
    r"""P-value of the RATE test of treatment-effect heterogeneity for one learner.

    :math:`z = \widehat{\mathrm{RATE}} / \widehat{\mathrm{se}}` (see :func:`rate`),
    compared with the standard normal. Under no heterogeneity (the same mean
    score for every x) any out-of-fold ranking has RATE 0.

    The default test is one-sided (``"greater"``, :math:`p = 1 - \Phi(z)`):
    the claim being tested is that treating patients in the learner's order
    selects those who benefit more. A significantly negative RATE means the
    learner ranks patients backwards, which is a failure of the learner, not
    support for it; ``"two-sided"`` is available. If the standard error is 0
    (e.g. constant priorities) there is no evidence and p = 1.

    The null is no heterogeneity *on the scale of the scores* (for RMST
    scores: the same RMST difference in days for everyone). A common hazard
    ratio is not that null when baseline risk varies: in the MIROCALS
    simulator with HR 0.75 for all, the true RMST difference has SD 9.8 days
    and ranking by ln ΔFS has a true AUTOC of 7.4 days, so rejections there are
    power, not type-I errors.

    Returns
    -------
    float
        The p-value.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=400)
    >>> scores = x + rng.normal(size=400)  # benefit grows with x
    >>> heterogeneity_test(x, scores, random_state=1) < 0.001
    True
    """
    if alternative not in ALTERNATIVES:
        raise StratifyInputError(f"alternative must be one of {ALTERNATIVES} ({alternative!r})")
    estimate, se = rate(
        priorities, scores, target=target, n_bootstrap=n_bootstrap, random_state=random_state
    )
    if se == 0:
        return 1.0
    z = estimate / se
    return float(stats.norm.sf(z) if alternative == "greater" else 2 * stats.norm.sf(abs(z)))


def blp_test(predicted: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    r"""Best-linear-predictor test of heterogeneity (grf's ``test_calibration``).

    Regress the doubly robust scores on the mean prediction and the centred
    prediction, without intercept:

    .. math:: \Gamma_i = \alpha\,\bar\tau + \beta\,(\hat\tau_i - \bar\tau) + \varepsilon_i,

    with heteroskedasticity-robust (HC3) standard errors from statsmodels.
    :math:`\beta` is the *calibration slope for heterogeneity*: 1 when the
    spread of the estimates is right, below 1 when they vary too much, 0 when
    their variation is noise. The test is one-sided, :math:`H_0: \beta \le 0`:
    heterogeneity is claimed only if patients the learner rates higher have a
    higher mean score. Unlike RATE it uses the size of the estimates, not only
    their order, which gains power when a learner's estimates are roughly
    linear in the truth.

    Parameters
    ----------
    predicted : numpy.ndarray
        Out-of-fold benefit estimate per patient.
    scores : numpy.ndarray
        Doubly robust score per patient, same unit.

    Returns
    -------
    (float, float, float)
        The one-sided p-value, :math:`\hat\beta` and its standard error. Constant
        estimates carry no evidence: p = 1 and the slope is NaN.

    References
    ----------
    Chernozhukov V, Demirer M, Duflo E, Fernández-Val I. Generic machine learning
    inference on heterogeneous treatment effects in randomized experiments
    (NBER w24678, 2018); grf ``test_calibration``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tau = rng.normal(size=400)
    >>> p, slope, se = blp_test(tau, tau + rng.normal(size=400))
    >>> p < 1e-6, abs(slope - 1) < 2 * se  # calibrated estimates: slope 1 within noise
    (True, True)
    """
    tau, g = _check_pair(predicted, scores, "predicted")
    centred = tau - tau.mean()
    if np.ptp(centred) <= 1e-12 * max(1.0, float(np.max(np.abs(tau)))):
        return 1.0, float("nan"), float("nan")
    design = np.column_stack([np.full_like(tau, tau.mean()), centred])
    fit = OLS(g, design).fit(cov_type="HC3")
    slope, se = float(fit.params[1]), float(fit.bse[1])
    p = float(stats.norm.sf(slope / se)) if se > 0 else 1.0
    return p, slope, se


def combine_heterogeneity(
    p_values: dict[str, float], primary: str | None = None
) -> tuple[float, str]:
    """The run's one heterogeneity verdict from the learners' p-values.

    With ``primary`` (a learner named before seeing the data) the verdict is
    that learner's p-value, unadjusted: one pre-specified test. Otherwise it
    is the Bonferroni-Holm adjusted p-value of the smallest p-value,
    ``min(1, m * min p)`` over the m learners (Holm's first step equals
    Bonferroni's), which keeps the family-wise type-I error at its level under
    any dependence between the learners' tests. A NaN p-value (a learner that
    could not be tested) still counts in m, which is conservative.

    Returns
    -------
    (float, str)
        The p-value and a sentence saying how it was obtained.

    Examples
    --------
    >>> combine_heterogeneity({"tlearner": 0.02, "forest": 0.30})
    (0.04, 'Holm-adjusted minimum over 2 learners: forest 0.3, tlearner 0.02 (smallest) -> 0.04')
    >>> combine_heterogeneity({"tlearner": 0.02, "forest": 0.30}, primary="forest")[0]
    0.3
    """
    if not p_values:
        raise StratifyInputError("combine_heterogeneity needs at least one p-value")
    if primary is not None:
        if primary not in p_values:
            raise StratifyInputError(f"primary learner '{primary}' has no p-value")
        p = float(p_values[primary])
        return p, f"pre-specified primary learner {primary}: p = {p_value(p, 3)}, not adjusted"
    names = sorted(p_values)
    finite = {k: float(v) for k, v in p_values.items() if np.isfinite(v)}
    if not finite:
        return float("nan"), f"no learner could be tested ({', '.join(names)})"
    best = min(finite, key=finite.get)
    m = len(p_values)
    p = min(1.0, m * finite[best])
    listed = ", ".join(
        f"{k} {p_value(p_values[k], 3)}" + (" (smallest)" if k == best else "") for k in names
    )
    return p, f"Holm-adjusted minimum over {m} learners: {listed} -> {p_value(p, 3)}"


def benefit_calibration(
    predicted_rmst: np.ndarray,
    y: np.ndarray,
    arm: np.ndarray,
    horizon: float,
    n_groups: int = 4,
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Predicted vs observed RMST difference by quantile group of predicted benefit.

    Patients are split into ``n_groups`` groups of (almost) equal size by the
    rank of their predicted benefit (ties at a boundary are split by row
    order). Within each group the observed benefit is the Kaplan-Meier RMST
    difference treated - control up to ``horizon`` with R's standard error
    (:func:`stratify.trial.km.arm_survival`, :func:`stratify.trial.km.rmst_difference`).

    Parameters
    ----------
    predicted_rmst : numpy.ndarray
        Out-of-fold predicted RMST difference (days) per patient.
    y : numpy.ndarray
        ``Surv`` outcomes.
    arm : numpy.ndarray
        0 (control) or 1 (treated).
    horizon : float
        RMST horizon (days).
    n_groups : int
        Number of groups.
    alpha : float
        Confidence intervals are at level ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        One row per group (1 = lowest predicted benefit): ``group``, ``n``,
        ``n_treated``, ``predicted_mean``, ``predicted_min``, ``predicted_max``,
        ``observed``, ``observed_se``, ``ci_low``, ``ci_high`` (NaN when the
        group lacks an arm). ``attrs`` holds ``horizon`` and ``alpha`` for
        :func:`stratify.report.figures.benefit.benefit_calibration_plot`.
    """
    predicted, _ = _check_pair(predicted_rmst, arm, "predicted_rmst")
    arm = np.asarray(arm).astype(int)
    event, time = check_y_survival(y)
    if len(time) != len(predicted):
        raise StratifyInputError("predicted_rmst and y must have one entry per patient")
    if not isinstance(n_groups, Integral) or not 1 <= n_groups <= len(predicted):
        raise StratifyInputError(f"n_groups must be an integer from 1 to n (got {n_groups!r})")
    rank = np.empty(len(predicted), dtype=int)
    rank[np.argsort(predicted, kind="stable")] = np.arange(len(predicted))
    group = rank * n_groups // len(predicted)
    rows = [
        _group_row(k + 1, predicted[in_k], time[in_k], event[in_k], arm[in_k], horizon, alpha)
        for k, in_k in enumerate(group[None, :] == np.arange(n_groups)[:, None])
    ]
    table = pd.DataFrame(rows)
    table.attrs.update(horizon=float(horizon), alpha=float(alpha))
    return table


def _group_row(label, predicted, time, event, arm, horizon, alpha) -> dict:
    row = {
        "group": label,
        "n": len(predicted),
        "n_treated": int(arm.sum()),
        "predicted_mean": float(predicted.mean()),
        "predicted_min": float(predicted.min()),
        "predicted_max": float(predicted.max()),
    }
    observed = dict.fromkeys(("observed", "observed_se", "ci_low", "ci_high"), np.nan)
    if 0 < row["n_treated"] < row["n"]:
        by_arm = [
            arm_survival(time[arm == a], event[arm == a], label=a, horizon=horizon, alpha=alpha)
            for a in (0, 1)
        ]
        diff = rmst_difference(*by_arm, alpha=alpha)
        observed = {
            "observed": diff.estimate,
            "observed_se": diff.se,
            "ci_low": diff.ci_low,
            "ci_high": diff.ci_high,
        }
    return row | observed


def c_for_benefit(predicted: np.ndarray, scores: np.ndarray) -> float:
    r"""Concordance between predicted benefit and doubly robust scores.

    Over all pairs of patients whose scores differ, the share in which the
    patient with the larger score also has the larger predicted benefit,
    pairs with tied predictions counting 1/2:

    .. math:: C = \frac{\sum_{i,j:\,\Gamma_i > \Gamma_j} \left(1\{\hat\tau_i > \hat\tau_j\}
              + \tfrac12 1\{\hat\tau_i = \hat\tau_j\}\right)}{\#\{i,j:\,\Gamma_i > \Gamma_j\}}.

    This adapts van Klaveren et al.'s C-for-benefit (*J Clin Epidemiol* 2018)
    to censored outcomes: instead of matching a treated with a control patient
    and comparing their observed outcomes, each patient's observed benefit is
    their DR score. C = 1 for a perfect ranking, 0 for a reversed one, and
    0.5 (the null value) when predictions carry no information on the scores,
    e.g. independent of them. Scores are noisy, so C is pulled towards 0.5
    even for a perfect learner; it is rank-based and so depends on the shape of
    the score distribution, not only its mean: use RATE for testing. Computed
    in O(n log n) from Kendall's tau-b, :math:`C = \tfrac12 + \tfrac12 \tau_b
    \sqrt{(n_0 - n_1)/(n_0 - n_2)}` (:math:`n_0` pairs, :math:`n_1` tied in
    predictions, :math:`n_2` tied in scores).

    Returns
    -------
    float
        C, or NaN when all scores are equal.

    Examples
    --------
    >>> round(c_for_benefit([1, 2, 3, 3], [10.0, 20.0, 30.0, 40.0]), 6)  # 5.5 of 6 pairs
    0.916667
    """
    p, g = _check_pair(predicted, scores, "predicted")
    n0 = len(p) * (len(p) - 1) / 2
    n1, n2 = _tied_pairs(p), _tied_pairs(g)
    if n0 == n2:
        return float("nan")
    if n0 == n1:
        return 0.5
    tau_b = stats.kendalltau(p, g).statistic
    return float(0.5 + 0.5 * tau_b * np.sqrt((n0 - n1) / (n0 - n2)))


def _tied_pairs(x: np.ndarray) -> float:
    counts = np.unique(x, return_counts=True)[1].astype(float)
    return float(np.sum(counts * (counts - 1) / 2))


def truth_metrics(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """RMSE and Spearman correlation of estimated against true effects (simulations).

    Returns
    -------
    dict
        ``cate_rmse`` (unit of the effect) and ``cate_spearman``; the
        correlation is NaN when either side is constant (e.g. the true effect
        under no effect), where it is undefined.

    Examples
    --------
    >>> {k: round(v, 4) for k, v in truth_metrics([1.0, 2.0, 4.0], [1.0, 2.0, 3.0]).items()}
    {'cate_rmse': 0.5774, 'cate_spearman': 1.0}
    """
    p, t = _check_pair(predicted, truth, "predicted")
    rmse = float(np.sqrt(np.mean((p - t) ** 2)))
    if np.ptp(p) == 0 or np.ptp(t) == 0:
        return {"cate_rmse": rmse, "cate_spearman": float("nan")}
    return {"cate_rmse": rmse, "cate_spearman": float(stats.spearmanr(p, t).statistic)}


def _check_pair(first, second, name) -> tuple[np.ndarray, np.ndarray]:
    """Two finite 1-d float arrays of the same length (at least 2)."""
    a = np.asarray(first, dtype=float).ravel()
    b = np.asarray(second, dtype=float).ravel()
    if len(a) != len(b) or len(a) < 2:
        raise StratifyInputError(f"{name} and its partner must have the same length, at least 2")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise StratifyInputError(f"{name} and its partner must be finite (no NaN)")
    return a, b
