r"""Cross-fitted doubly robust (AIPCW) scores of the treatment effect on survival.

This module owns the per-patient pseudo-outcomes that validate benefit
estimates: a score :math:`\Gamma_i` whose conditional mean given the
covariates is the patient's true effect, for the RMST difference up to the
horizon and for the survival difference at the horizon. Averages of scores
estimate average effects; the RATE, calibration and C-for-benefit metrics of
:mod:`stratify.validation.metrics.benefit` compare learners' estimates with them.

The construction, for arm :math:`a` and horizon :math:`h`, with
:math:`\tilde U = \min(T, C)`, :math:`\Delta = 1\{T \le C\}`,
:math:`\tilde U_h = \min(\tilde U, h)` and
:math:`\Delta_h = \max(\Delta, 1\{\tilde U \ge h\})` (the outcome is known):

* target :math:`\psi = \min(T, h)` (RMST) or :math:`\psi = 1\{T > h\}` (survival),
  observed whenever :math:`\Delta_h = 1`;
* :math:`Q_a(u \mid x) = E[\psi \mid T > u, x, a]`, that is
  :math:`u + \int_u^h S_a(s \mid x)\,ds / S_a(u \mid x)` (RMST) or
  :math:`S_a(h \mid x) / S_a(u \mid x)` (survival), and
  :math:`m_a(x) = Q_a(0 \mid x)`;
* :math:`\tilde G_a = \max(\hat G_a, 0.05)`, the censoring survival
  :math:`P(C > u \mid x, a)` bounded below by :data:`G_FLOOR`, with discrete
  hazard :math:`\tilde\lambda(u) = 1 - \tilde G(u) / \tilde G(u-)` at its jumps
  :math:`u < h`;
* the AIPCW residual of patient :math:`i` in arm :math:`a = W_i`:

  .. math::

     R_i = \frac{\Delta_h (\psi_i - m_a)}{\tilde G(\tilde U_h-)}
         + \frac{(1 - \Delta_h)(Q_a(\tilde U) - m_a)}{\tilde G(\tilde U)}
         - \sum_{u \in J_i} \frac{\tilde\lambda(u)\,(Q_a(u) - m_a)}{\tilde G(u)},

  where :math:`J_i` holds the censoring jumps :math:`u < \tilde U_h`, plus
  :math:`u = \tilde U` when the patient is censored before :math:`h`;
* the score
  :math:`\Gamma_i = m_1(x_i) - m_0(x_i) + \frac{W_i - \pi}{\pi (1 - \pi)} R_i`.

This is the augmented inverse-probability-of-censoring-weighted (AIPCW)
transformation of Robins & Rotnitzky (1992) and Tsiatis (2006, ch. 9-10) in
discrete time (events before censorings at tied times), the construction of
grf's causal survival forest (Cui et al., 2023), combined with the AIPW
contrast of the two arms. With these conventions the weights satisfy
:math:`\Delta_h/\tilde G(\tilde U_h-) + (1-\Delta_h)/\tilde G(\tilde U)
- \sum_{J_i} \tilde\lambda/\tilde G = 1` exactly, for any :math:`\tilde G`, so
:math:`E[\Gamma_i \mid x] = \tau(x)` if the propensity is right (known in a
randomised trial) and either :math:`S_a` or :math:`G_a` is right.

References
----------
Robins JM, Rotnitzky A. Recovery of information and adjustment for dependent
censoring using surrogate markers. *AIDS Epidemiology*, 1992: 297-331.
Tsiatis AA. *Semiparametric Theory and Missing Data*. Springer, 2006.
Cui Y, Kosorok MR, Sverdrup E, Wager S, Zhu R. Estimating heterogeneous
treatment effects with right-censored data via causal survival forests.
*JRSS B* 2023; 85(2): 179-211.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sksurv.ensemble import RandomSurvivalForest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv, check_y_survival

from stratify.exceptions import StratifyInputError
from stratify.learners.survival import forest_survival_at

SCORE_COLUMNS = ("score_rmst", "score_surv")
#: Lower bound of the censoring survival used in the weights.
G_FLOOR = 0.05
NUISANCES = ("rsf", "coxph")
CENSORING = ("km", "coxph")
#: Small, fast random survival forest for the outcome nuisance (half-samples for each tree).
RSF_PARAMS = {
    "n_estimators": 100,
    "min_samples_leaf": 10,
    "max_features": "sqrt",
    "max_samples": 0.5,
    "n_jobs": 1,
}
#: The forest is fitted on times rounded up to at most this many event-time quantiles.
RSF_MAX_TIMES = 100
#: Ridge penalty of the Cox nuisances (covariates standardised on the training folds).
COX_ALPHA = 1.0


def dr_scores(
    X: pd.DataFrame,
    y: np.ndarray,
    arm: np.ndarray,
    *,
    horizon: float,
    n_folds: int = 5,
    propensity: float | None = 0.5,
    nuisance: str = "rsf",
    censoring: str = "km",
    random_state: int | None = None,
) -> pd.DataFrame:
    """Cross-fitted doubly robust scores for the RMST and survival differences.

    Every patient's score uses nuisances fitted on the other folds only (folds
    stratified on arm x event, seeded). See the module docstring for the
    formula.

    Parameters
    ----------
    X : pandas.DataFrame
        Numeric covariates (encode categories first, e.g. with
        :func:`stratify.data.covariates.encode_covariates`).
    y : numpy.ndarray
        Outcome as a ``sksurv.util.Surv`` structured array (event, time).
    arm : numpy.ndarray
        0 (control) or 1 (treated) per patient.
    horizon : float
        Horizon of the RMST and of the survival difference (same unit as time).
    n_folds : int
        Number of cross-fitting folds, at least 2.
    propensity : float or None
        Known probability of being treated (0.5 in a 1:1 trial); ``None``
        estimates it as the share treated in the training folds.
    nuisance : {"rsf", "coxph"}
        Model of survival ``S_a(t | x)`` within each arm: a random survival
        forest (:data:`RSF_PARAMS`) or a ridge Cox model.
    censoring : {"km", "coxph"}
        Model of censoring ``G_a(t | x)`` within each arm: Kaplan-Meier of the
        censoring times (assumes censoring independent of x given the arm,
        true for administrative censoring and random dropout), or a ridge Cox
        model of censoring on x.
    random_state : int or None
        Seed of the folds and the forests.

    Returns
    -------
    pandas.DataFrame
        Columns ``score_rmst`` (days) and ``score_surv``, indexed like ``X``.

    Examples
    --------
    >>> from stratify.data.simulate import simulate_mirocals
    >>> df = simulate_mirocals(200, seed=1)
    >>> y = Surv.from_arrays(df["event"].astype(bool), df["time"])
    >>> X = df[["age", "delta_fs", "svc", "csf_pnfh"]]
    >>> scores = dr_scores(X, y, df["arm"], horizon=640.0, nuisance="coxph", random_state=0)
    >>> scores.shape
    (200, 2)
    """
    X_arr, y, arm = _check_inputs(X, y, arm, horizon, n_folds, propensity, nuisance, censoring)
    rng = np.random.default_rng(random_state)
    scores = np.empty((len(y), 2))
    for train, test in _folds(y, arm, n_folds, int(rng.integers(2**31))):
        scores[test] = fold_scores(
            X_arr[train],
            y[train],
            arm[train],
            X_arr[test],
            y[test],
            arm[test],
            horizon=horizon,
            propensity=propensity,
            nuisance=nuisance,
            censoring=censoring,
            random_state=int(rng.integers(2**31)),
        )
    return pd.DataFrame(scores, columns=list(SCORE_COLUMNS), index=getattr(X, "index", None))


def fold_scores(
    X_train,
    y_train,
    arm_train,
    X_test,
    y_test,
    arm_test,
    *,
    horizon,
    propensity=0.5,
    nuisance="rsf",
    censoring="km",
    random_state=None,
) -> np.ndarray:
    """Scores of the test patients with nuisances fitted on the training patients.

    One split of :func:`dr_scores` (same arguments, already validated: arrays,
    ``Surv`` outcomes, 0/1 arms). Returns an array of shape ``(n_test, 2)``:
    RMST and survival scores.
    """
    pi = float(np.mean(arm_train)) if propensity is None else float(propensity)
    if not 0 < pi < 1:
        raise StratifyInputError(f"estimated propensity is {pi}; both arms must be in training")
    means, residual = fold_nuisances(
        X_train, y_train, arm_train, X_test, y_test, arm_test,
        horizon=horizon, nuisance=nuisance, censoring=censoring, random_state=random_state,
    )  # fmt: skip
    weight = (arm_test - pi) / (pi * (1 - pi))
    return means[:, 1] - means[:, 0] + weight[:, None] * residual


def fold_nuisances(
    X_train,
    y_train,
    arm_train,
    X_test,
    y_test,
    arm_test,
    *,
    horizon,
    nuisance="rsf",
    censoring="km",
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """The parts of the scores of the test patients, nuisances fitted on the training patients.

    Same arguments as :func:`fold_scores`. Returns ``(means, residual)``:
    ``means[i, a, k]``, the outcome model's mean of target ``k`` (0: RMST,
    1: survival) for patient ``i`` under arm ``a``, :math:`m_a(x_i)`; and
    ``residual[i, k]``, the AIPCW residual :math:`R_i` of the module
    docstring under the patient's own arm.
    """
    means = np.empty((len(y_test), 2, 2))  # patient, arm, target
    residual = np.empty((len(y_test), 2))
    for a in (0, 1):
        fit = arm_train == a
        if not np.any(y_train["event"][fit]):
            raise StratifyInputError(
                f"arm {a} has no event in a training fold of the doubly robust scores: its "
                "survival cannot be modelled there; use fewer folds"
            )
        curves = _outcome_curves(
            nuisance, X_train[fit], y_train[fit], X_test, horizon, random_state
        )
        means[:, a] = curves.means()
        own = arm_test == a
        cens = _censoring_curves(censoring, X_train[fit], y_train[fit], X_test[own], horizon)
        residual[own] = _aipcw_residual(curves.subset(own), cens, y_test[own], horizon)
    return means, residual


def cross_fitted_nuisances(
    X, y, arm, *, horizon, folds, nuisance="rsf", censoring="km", random_state=None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fold_nuisances` of every patient, from the other folds (inputs as :func:`dr_scores`).

    ``folds`` is a sequence of ``(train, test)`` index arrays whose test parts
    cover every patient once. Returns ``(means, residual)`` of shapes
    ``(n, 2, 2)`` and ``(n, 2)``.
    """
    X_arr, y, arm = _check_inputs(X, y, arm, horizon, len(folds), 0.5, nuisance, censoring)
    rng = np.random.default_rng(random_state)
    means, residual = np.empty((len(y), 2, 2)), np.empty((len(y), 2))
    for train, test in folds:
        means[test], residual[test] = fold_nuisances(
            X_arr[train], y[train], arm[train], X_arr[test], y[test], arm[test],
            horizon=horizon, nuisance=nuisance, censoring=censoring,
            random_state=int(rng.integers(2**31)),
        )  # fmt: skip
    return means, residual


@dataclass(frozen=True)
class _Curves:
    """Survival curves of a group of patients on a grid starting at 0, with their tails.

    ``surv[i, k]`` is S(t) on ``[times[k], times[k + 1])``; ``tail[i, k]`` is
    ``∫_{times[k]}^h S``; ``surv_h`` is S(h).
    """

    times: np.ndarray
    surv: np.ndarray
    tail: np.ndarray
    surv_h: np.ndarray

    def subset(self, rows: np.ndarray) -> _Curves:
        return _Curves(self.times, self.surv[rows], self.tail[rows], self.surv_h[rows])

    def means(self) -> np.ndarray:
        """m_a(x): RMST up to h and S(h), shape (n, 2)."""
        return np.column_stack([self.tail[:, 0], self.surv_h])

    def q(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Q(t) = E[psi | T > t] for both targets; ``t`` has one row per patient (or is 1-d)."""
        t = np.broadcast_to(t, (self.surv.shape[0], *np.shape(t)[-1:]))
        k = np.searchsorted(self.times, t, side="right") - 1
        rows = np.arange(t.shape[0])[:, None]
        s = self.surv[rows, k]
        tail = self.tail[rows, k] - s * (t - self.times[k])
        alive = s > 0
        safe = np.where(alive, s, 1.0)
        q_rmst = np.where(alive, t + tail / safe, t)
        q_surv = np.where(alive, np.minimum(self.surv_h[:, None] / safe, 1.0), 0.0)
        return q_rmst, q_surv


def _outcome_curves(kind, X_fit, y_fit, X_new, horizon, random_state) -> _Curves:
    """Fit S_a(t | x) on one arm's training patients; predict for ``X_new``."""
    if kind == "rsf":
        model = RandomSurvivalForest(**RSF_PARAMS, random_state=random_state)
        model.fit(X_fit, _coarsen(y_fit, RSF_MAX_TIMES))
        # From the leaves: scikit-survival cannot predict a forest fitted on one distinct time
        # (every time of an arm at its single event time once coarsened, as in grf's simple1).
        surv = forest_survival_at(model, X_new, model.unique_times_)
    else:
        scaler = StandardScaler().fit(X_fit)
        model = CoxPHSurvivalAnalysis(alpha=COX_ALPHA).fit(scaler.transform(X_fit), y_fit)
        surv = model.predict_survival_function(scaler.transform(X_new), return_array=True)
    times = np.asarray(model.unique_times_, dtype=float)
    n_le_h = np.searchsorted(times, horizon, side="right")
    surv_h = surv[:, n_le_h - 1] if n_le_h else np.ones(len(surv))
    keep = (times > 0) & (times < horizon)
    grid = np.concatenate([[0.0], times[keep]])
    surv = np.column_stack([np.ones(len(surv)), surv[:, keep]])
    widths = np.diff(np.append(grid, horizon))
    tail = np.cumsum((surv * widths)[:, ::-1], axis=1)[:, ::-1]
    return _Curves(grid, surv, tail, surv_h)


def _coarsen(y, n_times: int) -> np.ndarray:
    """Times rounded up to the next of at most ``n_times`` event-time quantiles (or the last time).

    Forest fitting time grows with the number of distinct times; the rounding
    only changes the outcome nuisance, which the AIPCW score corrects for.
    """
    events = y["time"][y["event"]]
    grid = np.unique(np.quantile(events, np.linspace(0, 1, n_times + 1)[1:]))
    last = y["time"].max()
    grid = np.append(grid[grid < last], last)
    return Surv.from_arrays(y["event"], grid[np.searchsorted(grid, y["time"], side="left")])


def _censoring_curves(kind, X_fit, y_fit, X_new, horizon) -> tuple[np.ndarray, np.ndarray]:
    """Censoring survival max(G, floor) at its grid times before ``horizon``, per patient.

    Returns ``(times, G)`` with ``G`` of shape ``(len(X_new), len(times))`` (or
    ``(1, len(times))`` for Kaplan-Meier, shared by all patients).
    """
    if kind == "km":
        times, g = kaplan_meier_estimator(y_fit["event"], y_fit["time"], reverse=True)
        g = g[None, :]
    else:
        censored = Surv.from_arrays(~y_fit["event"], y_fit["time"])
        if not np.any(censored["event"]):
            return np.empty(0), np.ones((len(X_new), 0))
        scaler = StandardScaler().fit(X_fit)
        model = CoxPHSurvivalAnalysis(alpha=COX_ALPHA).fit(scaler.transform(X_fit), censored)
        g = model.predict_survival_function(scaler.transform(X_new), return_array=True)
        times = np.asarray(model.unique_times_, dtype=float)
    before = times < horizon
    return times[before], np.maximum(g[:, before], G_FLOOR)


def _aipcw_residual(curves: _Curves, cens, y, horizon) -> np.ndarray:
    """R_i of the module docstring for both targets, shape (n, 2)."""
    jumps, g = cens
    event, time = y["event"], y["time"].astype(float)
    known = event | (time >= horizon)
    t_h = np.minimum(time, horizon)
    m = curves.means()
    psi = np.column_stack([t_h, (~(event & (time <= horizon))).astype(float)])
    g_left = _step_at(jumps, g, t_h, side="left")
    g_at = _step_at(jumps, g, time, side="right")
    q_rmst_own, q_surv_own = curves.q(t_h[:, None])  # Q at the patient's own time
    q_own = np.column_stack([q_rmst_own[:, 0], q_surv_own[:, 0]])
    direct = np.where(known[:, None], (psi - m) / g_left[:, None], (q_own - m) / g_at[:, None])
    g_prev = np.column_stack([np.ones(len(g)), g[:, :-1]])
    hazard_over_g = (1.0 - g / g_prev) / g  # lambda(u) / G(u) at each jump
    in_j = (jumps[None, :] < t_h[:, None]) | (~known[:, None] & (jumps[None, :] == time[:, None]))
    q_rmst, q_surv = curves.q(np.broadcast_to(jumps, (len(time), len(jumps))))
    weight = np.where(in_j, hazard_over_g, 0.0)
    integral = np.column_stack(
        [np.sum(weight * (q_rmst - m[:, :1]), axis=1), np.sum(weight * (q_surv - m[:, 1:]), axis=1)]
    )
    return direct - integral


def _step_at(times, values, t, *, side) -> np.ndarray:
    """Right-continuous step function (value 1 before ``times[0]``) at t (side="right") or t- ."""
    k = np.searchsorted(times, t, side=side) - 1
    padded = np.column_stack([np.ones(len(values)), values])
    rows = np.arange(len(t)) if len(values) > 1 else np.zeros(len(t), dtype=int)
    return padded[rows, k + 1]


def _folds(y, arm, n_folds, seed):
    """Stratified K-fold on arm x event (on arm alone if a stratum is smaller than K)."""
    strata = 2 * arm + y["event"].astype(int)
    if np.bincount(strata, minlength=4).min() < n_folds:
        strata = arm
    return StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), strata)


def _check_inputs(X, y, arm, horizon, n_folds, propensity, nuisance, censoring):
    """Validated arrays (X float, y Surv, arm int 0/1); errors name the argument."""
    try:
        X_arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as err:
        raise StratifyInputError("X must be numeric: encode categorical covariates first") from err
    if not np.isfinite(X_arr).all():
        raise StratifyInputError("X must not have missing or infinite values")
    y = Surv.from_arrays(*check_y_survival(y))  # any field names -> ("event", "time")
    arm = np.asarray(arm)
    if not (X_arr.ndim == 2 and len(X_arr) == len(y) == len(arm)):
        raise StratifyInputError("X, y and arm must have one row per patient")
    if not np.all(np.isin(arm, (0, 1))):
        raise StratifyInputError("arm must be 0 (control) or 1 (treated)")
    if not isinstance(horizon, Real) or not 0 < horizon < np.inf:
        raise StratifyInputError(f"horizon must be a positive number (got {horizon!r})")
    if not isinstance(n_folds, Integral) or not 2 <= n_folds <= np.bincount(arm, minlength=2).min():
        raise StratifyInputError(f"n_folds must be an integer from 2 to the arm size ({n_folds!r})")
    if propensity is not None and not 0 < propensity < 1:
        raise StratifyInputError(f"propensity must be in (0, 1) or None (got {propensity!r})")
    if nuisance not in NUISANCES:
        raise StratifyInputError(f"nuisance must be one of {NUISANCES} (got {nuisance!r})")
    if censoring not in CENSORING:
        raise StratifyInputError(f"censoring must be one of {CENSORING} (got {censoring!r})")
    _check_events(y, arm)
    return X_arr, y, arm.astype(int)


def _check_events(y, arm) -> None:
    """Each arm needs an event: its survival is modelled within the arm."""
    for a in (0, 1):
        if not np.any(y["event"][arm == a]):
            raise StratifyInputError(f"arm {a} has no events: its survival cannot be modelled")
