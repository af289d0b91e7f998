"""Meta-learners over scikit-survival base models: the S-learner and the T-learner.

Both estimate each arm's survival curve with base models from
:mod:`stratify.learners.base_models`; the effect estimates follow from the
curves as in :class:`~stratify.learners.base.CATELearner`.

On large cohorts (tens of thousands of patients) a survival forest's cost is
set by the candidate thresholds of each covariate, the distinct training times
and the patients per tree: ``max_bins`` splits covariates at quantiles only,
``time_grid`` fits on times rounded up to a grid that contains the horizon,
and ``base_params`` sets the forest's ``max_samples``, ``min_samples_leaf``,
``n_estimators`` and ``n_jobs`` (BENCHMARKS.md, "Large cohorts").
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import ClassVar

import numpy as np
import pandas as pd

from stratify.data.covariates import ARM_TERM
from stratify.exceptions import StratifyInputError
from stratify.learners.base import HORIZON, CATELearner
from stratify.learners.base_models import BASE_CHOICE, BASE_MODELS, BASE_PARAMS, fit_base_model
from stratify.learners.checks import check_fit_inputs
from stratify.learners.coarsening import fit_outcome
from stratify.learners.params import OFF, Interval, Rule
from stratify.learners.survival import event_times, survival_at

#: Parameters of the S- and T-learners.
META_CONSTRAINTS = {
    "base": BASE_CHOICE,
    "base_params": BASE_PARAMS,
    "time_grid": [OFF, Interval(Integral, 2, None)],
    "max_bins": [OFF, Interval(Integral, 2, None)],
    "horizon": HORIZON,
}
#: How the S- and T-learners' parameters relate.
META_RULES = (
    Rule(
        lambda p: not (p["base_params"] or {}).get("low_memory"),
        "base_params low_memory=True keeps only a risk score in the trees, but learners need "
        "survival curves; set time_grid to shrink the curves the forest stores instead",
    ),
    Rule(
        lambda p: p["time_grid"] is None or p["horizon"] is not None,
        "time_grid needs the horizon, which the grid must contain (the experiment sets it; "
        "pass horizon= when building the learner yourself)",
    ),
    Rule(
        lambda p: p["max_bins"] is None or BASE_MODELS[p["base"]].forest,
        lambda p: f"max_bins applies to forests (base 'rsf'), not to base model {p['base']!r}",
    ),
)


class SLearner(CATELearner):
    """One survival model on covariates and arm; effects from setting arm to 1 and 0.

    The single model sees the arm as one more feature, so the arms share
    strength (good in small trials) but a model that rarely splits on the arm
    shrinks the effect towards zero (regularisation bias, Künzel et al. 2019).

    Parameters
    ----------
    base : {"rsf", "gbsa", "coxph"}
        Base model, by name (see :func:`~stratify.learners.base_models.make_base_model`).
    base_params : dict, optional
        Parameters of the base model, overriding its defaults (see
        :func:`~stratify.learners.base_models.make_base_model`); for forests on
        large cohorts e.g. ``{"max_samples": 0.2, "min_samples_leaf": 50,
        "n_jobs": 2}``. ``low_memory=True`` is refused: learners need curves.
    time_grid : int, optional
        None (the default): fit on the exact times. K: fit on times rounded up
        to at most K grid points, K - 1 quantiles of the training event times
        plus ``horizon`` (:func:`~stratify.learners.coarsening.coarsen_times`,
        whose Notes state the approximation). A forest then stores and scans K
        times instead of every distinct one; survival at the horizon keeps
        every death up to it.
    max_bins : int, optional
        Forests only. None (the default): split covariates anywhere. B: split
        each covariate at no more than B - 1 of its quantiles (observed
        values; covariates with at most B distinct values are untouched), as
        histogram gradient boosting does
        (:func:`~stratify.learners.binning.quantile_edges`). The
        forest's log-rank split search then costs B passes per covariate and
        node instead of one per patient: the largest saving on large
        cohorts. The fitted forest takes the covariates as they are.
    horizon : float, optional
        Horizon (days) of :meth:`predict_cate`, and the time the grid must
        contain; set by the experiment, and required with ``time_grid``.
        Curves are still given at any time: between grid points, the value at
        the grid point before.
    random_state : int, optional
        Seed of the base model.

    Attributes
    ----------
    model_ : sklearn.base.BaseEstimator
        The fitted base model; its features are the columns of ``X`` then ``arm``.
    event_times_ : numpy.ndarray
        Distinct event times in the training data (on the grid, with ``time_grid``).
    time_grid_ : numpy.ndarray or None
        The grid the times were rounded up to; None without ``time_grid``.
    feature_names_in_ : numpy.ndarray
        Columns of ``X`` seen in :meth:`fit`.

    Examples
    --------
    >>> from stratify.data.simulate import simulate_mirocals
    >>> from stratify.data.trial_data import TrialData
    >>> trial = TrialData.from_frame(simulate_mirocals(176, seed=1))
    >>> learner = SLearner(base="coxph", horizon=640).fit(trial.X, trial.y, trial.arm)
    >>> list(learner.predict_cate(trial.X).columns)
    ['cate_rmst', 'cate_surv']
    """

    _param_constraints: ClassVar[dict] = META_CONSTRAINTS
    _param_rules: ClassVar[tuple] = META_RULES

    def __init__(
        self,
        *,
        base="rsf",
        base_params=None,
        time_grid=None,
        max_bins=None,
        horizon=None,
        random_state=None,
    ):
        self.base = base
        self.base_params = base_params
        self.time_grid = time_grid
        self.max_bins = max_bins
        self.horizon = horizon
        self.random_state = random_state

    def fit(self, X, y, arm) -> SLearner:
        """Fit the base model on ``[X, arm]``.

        Parameters
        ----------
        X : pandas.DataFrame
            Numeric covariates; none may be called ``arm``.
        y : numpy.ndarray
            ``Surv`` outcome.
        arm : array-like
            0 (control) or 1 (treated) per patient.

        Returns
        -------
        SLearner
            ``self``.
        """
        self._check_params()
        X, y, arm = check_fit_inputs(X, y, arm)
        if ARM_TERM in X.columns:
            raise StratifyInputError(f"covariate '{ARM_TERM}' clashes with the treatment term")
        y, self.time_grid_ = fit_outcome(y, self.time_grid, self.horizon)
        self.model_ = fit_base_model(
            self.base,
            self.base_params,
            self.random_state,
            _with_arm(X, arm),
            y,
            max_bins=self.max_bins,
        )
        self.event_times_ = event_times(y)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _survival_under(self, X, arm, times) -> np.ndarray:
        return survival_at(self.model_, _with_arm(X, np.full(len(X), arm)), times)


class TLearner(CATELearner):
    """One survival model per arm; effects from the difference of their curves.

    Each arm's model sees only its own patients, so it is free of the
    S-learner's shrinkage but has half the data, and noise in either model
    shows up as spurious heterogeneity. Both models use the same
    ``random_state``, so relabelling the arms exactly flips the estimates.

    With random survival forests (``base="rsf"``) whose ``base_params`` do
    not set ``min_samples_leaf``, each arm's leaves grow with the arm: at
    least :func:`rsf_leaf_size` patients (max(10, floor(sqrt(m))) for ``m``
    patients in the arm), so the noise the T-learner reports as
    heterogeneity shrinks as the trial grows. The rule gives the forest's
    default of 10 up to 120 patients per arm, so trials of up to about 240
    patients (MIROCALS: 220) are fitted as before.

    Parameters
    ----------
    base : {"rsf", "gbsa", "coxph"}
        Base model, by name (see :func:`~stratify.learners.base_models.make_base_model`).
    base_params : dict, optional
        Parameters of the base model, overriding its defaults (see
        :func:`~stratify.learners.base_models.make_base_model`); for forests on
        large cohorts e.g. ``{"max_samples": 0.2, "min_samples_leaf": 50,
        "n_jobs": 2}``. ``low_memory=True`` is refused: learners need curves.
        With ``base="rsf"``, a ``min_samples_leaf`` given here is used for
        both arms as it is; without one, each arm's forest takes
        :func:`rsf_leaf_size` of the arm's training patients.
    time_grid : int, optional
        None (the default): fit on the exact times. K: fit on times rounded up
        to at most K grid points, K - 1 quantiles of the training event times
        plus ``horizon`` (:func:`~stratify.learners.coarsening.coarsen_times`,
        whose Notes state the approximation). A forest then stores and scans K
        times instead of every distinct one; survival at the horizon keeps
        every death up to it.
    max_bins : int, optional
        Forests only. None (the default): split covariates anywhere. B: split
        each covariate at no more than B - 1 of its quantiles (observed
        values; covariates with at most B distinct values are untouched), as
        histogram gradient boosting does
        (:func:`~stratify.learners.binning.quantile_edges`). The
        forest's log-rank split search then costs B passes per covariate and
        node instead of one per patient: the largest saving on large
        cohorts. The fitted forest takes the covariates as they are.
    horizon : float, optional
        Horizon (days) of :meth:`predict_cate`, and the time the grid must
        contain; set by the experiment, and required with ``time_grid``.
        Curves are still given at any time: between grid points, the value at
        the grid point before.
    random_state : int, optional
        Seed of both base models.

    Attributes
    ----------
    models_ : tuple of sklearn.base.BaseEstimator
        Fitted models of the control (index 0) and treated (index 1) arms.
    min_samples_leaf_ : tuple of int or None
        Leaf sizes of the control and treated forests set by
        :func:`rsf_leaf_size`; None when the base model is not ``"rsf"`` or
        ``base_params`` sets ``min_samples_leaf``.
    event_times_ : numpy.ndarray
        Distinct event times in the training data (both arms; on the grid,
        with ``time_grid``).
    time_grid_ : numpy.ndarray or None
        The grid the times were rounded up to (shared by both arms); None
        without ``time_grid``.
    feature_names_in_ : numpy.ndarray
        Columns of ``X`` seen in :meth:`fit`.
    """

    _param_constraints: ClassVar[dict] = META_CONSTRAINTS
    _param_rules: ClassVar[tuple] = META_RULES

    def __init__(
        self,
        *,
        base="rsf",
        base_params=None,
        time_grid=None,
        max_bins=None,
        horizon=None,
        random_state=None,
    ):
        self.base = base
        self.base_params = base_params
        self.time_grid = time_grid
        self.max_bins = max_bins
        self.horizon = horizon
        self.random_state = random_state

    def fit(self, X, y, arm) -> TLearner:
        """Fit one base model per arm.

        Parameters
        ----------
        X : pandas.DataFrame
            Numeric covariates.
        y : numpy.ndarray
            ``Surv`` outcome.
        arm : array-like
            0 (control) or 1 (treated) per patient; each arm needs an event.

        Returns
        -------
        TLearner
            ``self``.
        """
        self._check_params()
        X, y, arm = check_fit_inputs(X, y, arm)
        for a in (0, 1):
            if not y[arm == a][y.dtype.names[0]].any():
                raise StratifyInputError(f"arm {a} has no events: its survival cannot be modelled")
        y, self.time_grid_ = fit_outcome(y, self.time_grid, self.horizon)
        params = dict(self.base_params or {})
        if self.base == "rsf" and "min_samples_leaf" not in params:
            self.min_samples_leaf_ = tuple(rsf_leaf_size(int((arm == a).sum())) for a in (0, 1))
            arm_params = tuple({**params, "min_samples_leaf": k} for k in self.min_samples_leaf_)
        else:
            self.min_samples_leaf_ = None
            arm_params = (self.base_params, self.base_params)
        self.models_ = tuple(
            fit_base_model(
                self.base,
                arm_params[a],
                self.random_state,
                X[arm == a],
                y[arm == a],
                max_bins=self.max_bins,
            )
            for a in (0, 1)
        )
        self.event_times_ = event_times(y)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _survival_under(self, X, arm, times) -> np.ndarray:
        return survival_at(self.models_[arm], X, times)


def rsf_leaf_size(n_arm: int) -> int:
    """Smallest leaf of a T-learner arm's survival forest: max(10, floor(sqrt(n_arm))).

    A fixed leaf size lets each arm's forest fit noise at any trial size, and
    the T-learner reports the difference of two such fits as heterogeneity.
    Leaves that grow like the square root of the arm average more patients
    as the trial grows while still getting smaller relative to it (so the
    forest stays consistent). The rule is 10, the forest's default, for arms
    of up to 120 patients.

    Parameters
    ----------
    n_arm : int
        Training patients in the arm.

    Returns
    -------
    int
        ``min_samples_leaf`` of the arm's forest.

    Notes
    -----
    Measured by ``experiments/leaf_growth.py`` (MIROCALS simulator, 10
    seeds, predictions for 2,000 independent patients, RMST benefit at 640
    days): under no effect, the SD of the estimates (heterogeneity the
    learner invents; the truth is 0) was 40.0 days at n = 220 and, at
    n = 2,000, fell from 34.3 days with 10 per leaf to 22.2 days with this
    rule (31 per leaf; -35 %), while the RMSE on the MIROCALS design (true
    SD 70 days) went from 45.2 to 45.8 days (+1 %). A leaf of n_arm / 20
    (50) cut the SD further (18.3 days) but raised that RMSE by 8 %.

    Examples
    --------
    >>> rsf_leaf_size(110), rsf_leaf_size(1000), rsf_leaf_size(10_000)
    (10, 31, 100)
    """
    return max(10, math.isqrt(int(n_arm)))


def _with_arm(X: pd.DataFrame, arm: np.ndarray) -> pd.DataFrame:
    """``X`` with the arm appended as the last column."""
    return X.assign(**{ARM_TERM: arm.astype(float)})
