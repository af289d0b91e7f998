r"""The causal survival forest of Cui et al. (2023), as grf implements it, in Python.

For a horizon :math:`h` and target :math:`\psi(T) = \min(T, h)` (RMST) or
:math:`1\{T > h\}` (survival), the forest solves, in the neighbourhood of each
``x`` that its honest trees define, the doubly robust (AIPCW) estimating
equation of Cui, Kosorok, Sverdrup, Wager & Zhu (*JRSS B* 2023):

.. math::

   \sum_i \alpha_i(x) \big[\psi^{num}_i - \psi^{den}_i\, \tau(x)\big] = 0, \quad
   \psi^{num}_i = (W_i - e_i)\,\Gamma_i, \quad \psi^{den}_i = (W_i - e_i)^2,

where :math:`e_i` is the propensity and :math:`\Gamma_i` the AIPCW
transformation of :math:`\psi(T_i) - m(x_i)`, with
:math:`m(x) = e\,m_1(x) + (1 - e)\,m_0(x)` and :math:`m_a`,
:math:`Q_a(t \mid x) = E[\psi \mid T > t, x, a]` and the censoring survival
from nuisance models fitted on the other folds (:mod:`stratify.learners.scores`, whose
residual :math:`R_i` gives :math:`\Gamma_i = R_i + m_{W_i}(x_i) - m(x_i)`,
since the AIPCW weights sum to one). The trees, their honesty, the gradient
relabelling and split constraints, and the little-bag variance are those of
:mod:`stratify.learners.honest_trees` (grf's ``core/src``).

Two forests are grown, one per estimand (``cate_rmst`` and ``cate_surv``).
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from numbers import Integral, Real
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from joblib import effective_n_jobs
from scipy import stats
from sklearn.ensemble import RandomForestRegressor
from sklearn.utils.validation import check_is_fitted
from sksurv.util import Surv

from stratify.exceptions import StratifyInputError
from stratify.learners import honest_trees, local_linear, scores
from stratify.learners.base import CATE_COLUMNS, HORIZON, HORIZON_REQUIRED, CATELearner
from stratify.learners.base_models import CONTROLS
from stratify.learners.checks import check_covariates, check_fit_inputs
from stratify.learners.meta import TLearner
from stratify.learners.params import Interval, Options, Rule

#: How the estimates are pulled toward the average effect.
SHRINKAGE = ("none", "calibrated")
#: The forest that estimates an unknown propensity, out of bag (grf fits W.hat with a
#: regression forest on half-samples). Leaves of 20: on grf's type2 design (propensity
#: 0.25-0.77 through x1) leaves of 5 cost the causal forest 4 % in RMSE (5 seeds).
PROPENSITY_FOREST = {
    "n_estimators": 500,
    "min_samples_leaf": 20,
    "max_samples": 0.5,
    "oob_score": True,
}


class CausalSurvivalForest(CATELearner):
    """Causal survival forest (grf's ``causal_survival_forest``) for both estimands.

    :meth:`fit` cross-fits the nuisances (survival ``nuisance`` and censoring
    ``censoring`` models within each arm, ``n_folds`` folds), builds the
    estimating-equation terms for the RMST difference and the survival
    difference at ``horizon``, and grows one honest forest for each.
    Out-of-bag estimates of the training patients, with standard errors, are in
    :attr:`oob_cate_`; :meth:`predict_cate_interval` gives estimates and
    confidence intervals for new patients.

    Parameters
    ----------
    horizon : float
        Horizon of the estimands (same unit as the times); required.
    n_estimators : int
        Trees per forest (grf's ``num.trees``), a multiple of ``ci_group_size``.
    sample_fraction : float
        Share of patients drawn for each tree, in (0, 0.5] with little bags.
    mtry : int, optional
        Covariates tried at each split (a Poisson draw around it, as grf);
        None: ``min(ceil(sqrt(p) + 20), p)``, grf's default.
    min_node_size : int
        grf's ``min.node.size``: nodes of at most this many patients are leaves,
        and a split leaves at least this many patients with a treatment
        residual below, and above, the node's mean on each side.
    alpha : float
        grf's ``alpha``: the least share of failures (and of the treatment
        residual's spread) each child keeps.
    honesty : bool
        Whether half of each subsample (``honesty_fraction``) only fills the leaves.
    honesty_fraction : float
        Share of the subsample that fills the leaves.
    ci_group_size : int
        Trees per little bag; at least 2 for standard errors.
    propensity : float or None
        Known probability of treatment (0.5 in a 1:1 trial). None estimates
        it per patient with an out-of-bag regression forest of the arm
        (:data:`PROPENSITY_FOREST`), as grf estimates ``W.hat``.
    nuisance : {"coxph", "rsf"}
        Survival model within each arm (:func:`stratify.learners.scores.dr_scores`).
    censoring : {"coxph", "km"}
        Censoring model within each arm: a Cox model of the censoring time on
        the covariates (grf, too, models censoring given the covariates, with a
        survival forest), or Kaplan-Meier, which assumes censoring independent
        of them. On grf's type2 design, where censoring depends on the
        covariates, ``"coxph"`` gives 0.99x grf's RMSE against 1.01x with
        ``"km"`` (BENCHMARKS.md); where censoring does not depend on them the
        two agree.
    n_folds : int
        Cross-fitting folds of the nuisances.
    modifier : str, optional
        A pre-specified effect modifier, a column of ``X`` (stratify passes the
        config's ``data.modifier``). With ``linear_correction`` the estimates
        are locally linear in it (:mod:`stratify.learners.local_linear`: grf's
        ``linear.correction.variables`` for its causal and regression forests,
        which grf's causal survival forest lacks): within the forest's
        neighbourhood of ``x`` a ridge-penalised slope along the modifier is
        fitted with the effect. At n = 220 this is what lets a forest learn a
        gradient along the biomarker (BENCHMARKS.md). Without a modifier the
        forest is grf's.
    linear_correction : bool
        Whether to correct along ``modifier`` (ignored without one).
    ll_lambda : "auto" or float
        Ridge penalty of the local slope (relative to the forest weights' sum,
        on the standardised modifier). ``"auto"``: per estimand, the value of
        :data:`stratify.learners.local_linear.LAMBDA_GRID` with the least
        out-of-bag doubly robust loss, kept only if it beats the uncorrected
        forest by more than one standard error
        (:func:`stratify.learners.local_linear.choose_lambda`); otherwise the
        forest stays uncorrected.
    shrinkage : {"none", "calibrated"}
        ``"none"``: grf's estimate. ``"calibrated"``: every estimate is pulled
        toward the average effect :math:`\\bar\\tau` by one factor,
        :math:`\\bar\\tau + \\lambda (\\hat\\tau(x) - \\bar\\tau)`, where
        :math:`\\lambda \\in [0, 1]` is the calibration slope of the out-of-bag
        estimates on the doubly robust signal (:func:`calibration_slope`, grf's
        ``test_calibration``): the least-squares factor, 0 when the spread of
        the estimates is noise (applied after the local linear correction). It
        helps where heterogeneity is weak for the sample size (BENCHMARKS.md,
        with the correction along pNFH, at n = 220: 0.65x grf's RMSE without
        an effect, 0.86x with a common one, 0.78x on the MIROCALS design) and
        costs where the forest's spread is real but the signal noisy (1.07x on
        grf's type2 design at n = 1,000). Intervals then use the variance of
        the shrunk estimate; they do not account for the bias of shrinking.
    n_jobs : int
        Threads growing and applying the trees (estimates do not depend on it).
    random_state : int, optional
        Seed of the folds, the nuisances and the trees.

    Attributes
    ----------
    horizon_ : float
    forests_ : dict of str to stratify.learners.honest_trees.Forest
        The grown forests, by estimand.
    oob_cate_ : pandas.DataFrame
        Out-of-bag ``cate_rmst``, ``cate_rmst_se``, ``cate_surv``,
        ``cate_surv_se`` of the training patients.
    ll_lambda_ : dict of str to float
        The penalty used per estimand; ``inf`` where the forest is uncorrected.
    ll_loss_ : dict of str to dict
        With ``ll_lambda="auto"``: per estimand and penalty, the out-of-bag
        loss and the standard error of its difference to the uncorrected
        forest's (:func:`stratify.learners.local_linear.choose_lambda`).
    average_effect_, average_effect_se_ : dict of str to float
        The doubly robust average effect of each estimand (the estimating
        equation solved over all patients) and its standard error.
    shrinkage_factor_ : dict of str to float
        :math:`\\lambda` per estimand (1 without shrinkage).
    calibration_ : dict of str to tuple of float
        Per estimand, the calibration slope of the out-of-bag estimates and its
        standard error (:func:`calibration_slope`): grf's ``test_calibration``
        "differential forest prediction", for survival.
    propensity_ : numpy.ndarray
        The propensity used for each training patient.
    survival_model_ : TLearner
        Survival curves (for risk metrics), a T-learner with base ``nuisance``.
    event_times_, feature_names_in_ : numpy.ndarray
    """

    #: The modifier is optional (the registry refuses learners that need one without it).
    needs_modifier = False

    _param_constraints: ClassVar[dict] = {
        "horizon": HORIZON,
        "ci_group_size": [Interval(Integral, 1, None)],
        "n_estimators": CONTROLS["n_estimators"],
        "sample_fraction": [Interval(Real, 1e-6, 1)],
        "mtry": [None, Interval(Integral, 1, None)],
        "min_node_size": [Interval(Integral, 1, None)],
        "alpha": [Interval(Real, 0, 0.25)],
        "honesty": [Options((True, False))],
        "honesty_fraction": [Interval(Real, 0.05, 0.95)],
        "propensity": [None, Interval(Real, 1e-6, 1 - 1e-6)],
        "nuisance": [Options(scores.NUISANCES)],
        "censoring": [Options(scores.CENSORING)],
        "shrinkage": [Options(SHRINKAGE)],
        "n_folds": [Interval(Integral, 2, None)],
        "linear_correction": [Options((True, False))],
        "ll_lambda": [Options(("auto",)), Interval(Real, 0, math.inf, closed="neither")],
        "n_jobs": CONTROLS["n_jobs"],
    }
    _param_rules: ClassVar[tuple] = (
        HORIZON_REQUIRED,
        Rule(
            lambda p: p["n_estimators"] % p["ci_group_size"] == 0,
            lambda p: (
                f"n_estimators ({p['n_estimators']}) must be a multiple of ci_group_size "
                f"({p['ci_group_size']})"
            ),
        ),
        Rule(
            lambda p: p["ci_group_size"] == 1 or p["sample_fraction"] <= 0.5,
            lambda p: (
                "sample_fraction must be a number in [1e-06, 0.5] with little bags "
                f"(ci_group_size > 1; got {p['sample_fraction']!r})"
            ),
        ),
    )

    def __init__(
        self,
        *,
        horizon=None,
        n_estimators=2000,
        sample_fraction=0.5,
        mtry=None,
        min_node_size=5,
        alpha=0.05,
        honesty=True,
        honesty_fraction=0.5,
        ci_group_size=2,
        propensity=0.5,
        nuisance="coxph",
        censoring="coxph",
        n_folds=5,
        modifier=None,
        linear_correction=True,
        ll_lambda="auto",
        shrinkage="none",
        n_jobs=1,
        random_state=None,
    ):
        self.horizon = horizon
        self.n_estimators = n_estimators
        self.sample_fraction = sample_fraction
        self.mtry = mtry
        self.min_node_size = min_node_size
        self.alpha = alpha
        self.honesty = honesty
        self.honesty_fraction = honesty_fraction
        self.ci_group_size = ci_group_size
        self.propensity = propensity
        self.nuisance = nuisance
        self.censoring = censoring
        self.n_folds = n_folds
        self.modifier = modifier
        self.linear_correction = linear_correction
        self.ll_lambda = ll_lambda
        self.shrinkage = shrinkage
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y, arm) -> CausalSurvivalForest:
        """Cross-fit the nuisances and grow the forests.

        Parameters
        ----------
        X : pandas.DataFrame
            Numeric covariates.
        y : numpy.ndarray
            ``Surv`` outcome.
        arm : array-like
            0 (control) or 1 (treated) per patient.

        Returns
        -------
        CausalSurvivalForest
            ``self``.
        """
        self._check_params()
        X, y, arm = check_fit_inputs(X, y, arm)
        compiled_once()
        self.horizon_ = float(self.horizon)
        event = np.asarray(y[y.dtype.names[0]], bool)
        time = np.asarray(y[y.dtype.names[1]], float)
        # Work in an order fixed by the data alone, so that the estimates do not depend on
        # the order of the rows nor on which arm is called 1 (only identical rows tie).
        order = canonical_order(X.to_numpy(), time, event)
        X_fit, y, arm = X.iloc[order], y[order], arm[order]
        event, time = event[order], time[order]
        rng = np.random.default_rng(self.random_state)
        fold_seed, nuisance_seed, tree_seed = (int(s) for s in rng.integers(2**31, size=3))
        numerator, denominator, centred, e = self._estimating_terms(
            X_fit, y, arm, event, fold_seed, nuisance_seed
        )
        failure = event | (time >= self.horizon_)
        p = X.shape[1]
        options = honest_trees.TreeOptions(
            mtry=int(self.mtry or min(math.ceil(math.sqrt(p) + 20), p)),
            min_node_size=int(self.min_node_size),
            alpha=float(self.alpha),
            honesty=self.honesty,
            honesty_fraction=float(self.honesty_fraction),
        )
        n_jobs = self._threads()
        z = self._correction_covariate(X_fit)
        self.forests_, self.average_effect_, self.average_effect_se_ = {}, {}, {}
        self.shrinkage_factor_, self.calibration_ = {}, {}
        self.ll_lambda_, self.ll_loss_, self.leaf_moments_ = {}, {}, {}
        oob = {}
        for k, name in enumerate(CATE_COLUMNS):
            forest, in_bag = honest_trees.grow_forest(
                X_fit.to_numpy(), numerator[:, k], denominator, centred, failure,
                n_trees=int(self.n_estimators), sample_fraction=float(self.sample_fraction),
                group_size=int(self.ci_group_size), options=options, seed=tree_seed + k,
                n_jobs=n_jobs,
            )  # fmt: skip
            tau, var = honest_trees.estimate(forest, X_fit.to_numpy(), in_bag=in_bag, n_jobs=n_jobs)
            self.ll_lambda_[name] = np.inf
            if z is not None:
                moments = local_linear.leaf_means(
                    forest, X_fit.to_numpy(),
                    local_linear.moment_columns(numerator[:, k], denominator, z),
                    seed=tree_seed + k, sample_fraction=float(self.sample_fraction),
                    options=options, n_jobs=n_jobs,
                )  # fmt: skip
                tau, var = self._corrected(
                    name, forest, moments, X_fit.to_numpy(), z, in_bag, tau, var,
                    numerator[:, k], denominator,
                )  # fmt: skip
            ate, ate_var = _average_effect(numerator[:, k], denominator)
            ok = np.isfinite(tau)
            slope = calibration_slope(tau[ok], numerator[ok, k], denominator[ok], ate)
            self.calibration_[name] = slope
            factor = 1.0 if self.shrinkage == "none" else float(np.clip(slope[0], 0.0, 1.0))
            self.forests_[name] = forest
            self.average_effect_[name] = ate
            self.shrinkage_factor_[name] = factor
            self.average_effect_se_[name] = math.sqrt(ate_var)
            est, se = self._shrunk(name, tau, var)
            oob[name], oob[f"{name}_se"] = est, se
        back = np.argsort(order)
        self.oob_cate_ = pd.DataFrame({k: v[back] for k, v in oob.items()}, index=X.index)
        self.propensity_ = e[back]
        self.survival_model_ = TLearner(base=self.nuisance, random_state=self.random_state)
        self.survival_model_.fit(X, y[back], arm[back])
        self.event_times_ = self.survival_model_.event_times_
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _estimating_terms(self, X, y, arm, event, fold_seed: int, nuisance_seed: int):
        """Numerators (one column per estimand), denominators, W - e and e, per patient."""
        folds = balanced_folds(arm, event, int(self.n_folds), fold_seed)
        means, residual = scores.cross_fitted_nuisances(
            X, y, arm, horizon=self.horizon_, folds=folds, nuisance=self.nuisance,
            censoring=self.censoring, random_state=nuisance_seed,
        )  # fmt: skip
        e = self._propensity(X, arm, nuisance_seed)
        centred = arm - e
        own = means[np.arange(len(arm)), arm]  # m_{W_i}(x_i), shape (n, 2)
        marginal = e[:, None] * means[:, 1] + (1 - e[:, None]) * means[:, 0]  # m(x_i)
        # AIPCW of psi - m(x) is the residual under the own arm plus m_{W_i} - m (weights sum to 1)
        numerator = centred[:, None] * (residual + own - marginal)
        return numerator, centred**2, centred, e

    def _correction_covariate(self, X: pd.DataFrame) -> np.ndarray | None:
        """The standardised modifier (n, 1) for the local linear correction, or None.

        Also records the centre and scale used (``correction_center_``,
        ``correction_scale_``); None without a modifier, with the correction
        off, or when the modifier is constant.
        """
        self.correction_center_ = self.correction_scale_ = None
        if self.modifier is None or not self.linear_correction:
            return None
        if self.modifier not in X.columns:
            raise StratifyInputError(
                f"modifier {self.modifier!r} is not among the covariates {list(X.columns)}"
            )
        values = X[self.modifier].to_numpy(float)
        scale = float(values.std())
        if not scale > 0:
            return None
        self.correction_center_, self.correction_scale_ = float(values.mean()), scale
        return ((values - self.correction_center_) / scale)[:, None]

    def _corrected(self, name, forest, moments, X, z, in_bag, tau, var, numerator, denominator):
        """Out-of-bag estimates after the local linear correction (see ``ll_lambda``)."""
        if self.ll_lambda == "auto":
            grid = local_linear.LAMBDA_GRID
            path, _ = local_linear.estimate(
                forest, moments, X, z, grid, in_bag=in_bag, variance=False,
                n_jobs=self._threads(),
            )  # fmt: skip
            candidates = {lam: path[:, c] for c, lam in enumerate(grid)}
            lam, self.ll_loss_[name] = local_linear.choose_lambda(
                tau, candidates, numerator, denominator
            )
        else:
            lam = float(self.ll_lambda)
        self.ll_lambda_[name] = lam
        if not np.isfinite(lam):
            return tau, var
        self.leaf_moments_[name] = moments
        return local_linear.estimate(
            forest, moments, X, z, lam, in_bag=in_bag, n_jobs=self._threads()
        )

    def _threads(self) -> int:
        return effective_n_jobs(self.n_jobs)

    def _propensity(self, X: pd.DataFrame, arm: np.ndarray, seed: int) -> np.ndarray:
        if self.propensity is not None:
            return np.full(len(arm), float(self.propensity))
        forest = RandomForestRegressor(
            **PROPENSITY_FOREST, n_jobs=self._threads(), random_state=seed
        )
        e = forest.fit(X, arm).oob_prediction_
        e = np.where(np.isfinite(e), e, arm.mean())
        return np.clip(e, 0.05, 0.95)

    def _shrunk(self, name: str, tau: np.ndarray, var: np.ndarray):
        """Estimates and standard errors after shrinkage toward the average effect."""
        lam, ate = self.shrinkage_factor_[name], self.average_effect_[name]
        est = ate + lam * (tau - ate)
        se = np.sqrt(lam**2 * var + (1 - lam) ** 2 * self.average_effect_se_[name] ** 2)
        return est, se

    def predict_cate(self, X) -> pd.DataFrame:
        """Estimated benefit of new patients at the fitted horizon, from all trees.

        Parameters
        ----------
        X : pandas.DataFrame
            Covariates, columns as in :meth:`fit`.

        Returns
        -------
        pandas.DataFrame
            Columns ``cate_rmst`` and ``cate_surv``, indexed like ``X``.
        """
        frame = self._predict(X, variance=False)
        return frame[list(CATE_COLUMNS)]

    def predict_cate_interval(self, X, *, level: float = 0.95) -> pd.DataFrame:
        """Estimates at the fitted horizon with standard errors and confidence intervals.

        Parameters
        ----------
        X : pandas.DataFrame
            Covariates, columns as in :meth:`fit`.
        level : float
            Confidence level of the normal intervals.

        Returns
        -------
        pandas.DataFrame
            For each estimand ``e``: ``e``, ``e_se``, ``e_low``, ``e_high``.
        """
        return with_intervals(self._predict(X, variance=True), level)

    def _predict(self, X, *, variance: bool) -> pd.DataFrame:
        check_is_fitted(self)
        self._prediction_horizon()  # refuses a horizon set since the fit
        index = getattr(X, "index", None)
        X = check_covariates(X)
        if list(X.columns) != list(self.feature_names_in_):
            raise StratifyInputError(
                f"columns {list(X.columns)} differ from the learner's covariates "
                f"{list(self.feature_names_in_)}"
            )
        out = {}
        for name, forest in self.forests_.items():
            lam = self.ll_lambda_[name]
            if np.isfinite(lam):
                z = (X[self.modifier].to_numpy(float) - self.correction_center_)[:, None]
                tau, var = local_linear.estimate(
                    forest, self.leaf_moments_[name], X.to_numpy(), z / self.correction_scale_,
                    lam, variance=variance, n_jobs=self._threads(),
                )  # fmt: skip
            else:
                tau, var = honest_trees.estimate(
                    forest, X.to_numpy(), variance=variance, n_jobs=self._threads()
                )
            out[name], out[f"{name}_se"] = self._shrunk(name, tau, var)
        return pd.DataFrame(out, index=index)

    def _survival_under(self, X, arm, times) -> np.ndarray:
        """From the T-learner fitted on all training data (see the class docstring)."""
        return self.survival_model_.predict_survival(X, arm, times)


_COMPILED = False


def compiled_once() -> None:
    """Have the forest's compiled kernels in this process, compiled once per machine.

    numba compiles the kernels on their first call and caches them on disk; on a
    fresh install that takes ~25 s of CPU, and cross-fitting workers that meet the
    forest at the same moment would each compile them. The first call in a process
    therefore fits two forests of 4 trees on a 60-patient toy trial (plain and
    locally linear: every kernel with the argument types of real use) under a file
    lock, so that one process compiles and writes the cache while the others wait
    and then load it (~0.5 s). Without a usable lock file the kernels compile on
    first use, as numba does.
    """
    global _COMPILED
    if _COMPILED:
        return
    _COMPILED = True  # before the toy fits, which call this too
    lock = FileLock(Path(tempfile.gettempdir()) / f"stratify-numba-{_KERNELS_ID}.lock")
    try:
        lock.acquire(timeout=600)
    except (OSError, Timeout):
        return
    try:
        rng = np.random.default_rng(0)
        X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["z", "w"])
        time = rng.exponential(size=60)
        y = Surv.from_arrays(rng.random(60) < 0.8, time)
        for params in ({"ll_lambda": 1.0}, {"linear_correction": False}):
            toy = CausalSurvivalForest(
                horizon=float(np.median(time)), n_estimators=4, modifier="z", random_state=0,
                n_jobs=1, **params,
            )  # fmt: skip
            toy.fit(X, y, np.arange(60) % 2).predict_cate_interval(X.iloc[:2])
    finally:
        lock.release()


#: Names the lock of :func:`compiled_once` after this installation's kernels.
_KERNELS_ID = hashlib.sha256(str(Path(honest_trees.__file__).resolve()).encode()).hexdigest()[:12]


def with_intervals(frame: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Add ``<e>_low``/``<e>_high`` normal intervals for every ``<e>``/``<e>_se`` pair."""
    z = stats.norm.ppf(0.5 + level / 2)
    out = frame.copy()
    for name in CATE_COLUMNS:
        if f"{name}_se" in out:
            out[f"{name}_low"] = out[name] - z * out[f"{name}_se"]
            out[f"{name}_high"] = out[name] + z * out[f"{name}_se"]
    return out


def canonical_order(X: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Rows sorted by time, then event, then each covariate: an order set by the data alone."""
    keys = [X[:, j] for j in range(X.shape[1] - 1, -1, -1)]
    return np.lexsort([*keys, event, time])


def balanced_folds(arm, event, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds stratified on arm x event, dealt in a seeded random order within each stratum.

    The same patients (by position) get the same fold whatever the arms are
    called, which :func:`sklearn.model_selection.StratifiedKFold` does not promise.
    """
    rank = np.random.default_rng(seed).permutation(len(arm))
    fold = np.empty(len(arm), dtype=int)
    for a in (0, 1):
        for d in (False, True):
            members = np.flatnonzero((arm == a) & (event == d))
            fold[members[np.argsort(rank[members])]] = np.arange(len(members)) % n_folds
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_folds)]


def calibration_slope(tau, numerator, denominator, ate) -> tuple[float, float]:
    r"""Slope (and its standard error) of the signal on out-of-bag estimates around the average.

    The least-squares solution of the estimating equation
    :math:`\sum_i (\psi^{num}_i - \psi^{den}_i [\bar\tau + \lambda (\hat\tau_i - \bar\tau)])
    \psi^{den}_i (\hat\tau_i - \bar\tau) = 0` -- grf's ``test_calibration``
    "differential forest prediction" -- with a heteroscedasticity-robust (HC0)
    standard error. 1 means the estimates' spread is right, 0 that it is noise.
    """
    centred = tau - ate
    x = denominator * centred
    r = numerator - denominator * ate
    sxx = float(np.sum(x * centred))
    if sxx <= 0:
        return 0.0, np.inf
    slope = float(np.sum(r * centred) / sxx)
    resid = r - x * slope
    se = float(np.sqrt(np.sum((centred * resid) ** 2)) / sxx)
    return slope, se


def _average_effect(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float]:
    """The estimating equation solved over everybody, and its sandwich variance."""
    ate = float(numerator.sum() / denominator.sum())
    influence = (numerator - denominator * ate) / denominator.mean()
    return ate, float(np.var(influence, ddof=1) / len(numerator))
