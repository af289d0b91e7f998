"""Cox models with arm × covariate interactions: penalised (Coxnet) and pre-specified.

:class:`CoxnetInteraction` lets an elastic net choose among all arm ×
covariate interactions; :class:`CoxInteraction` is the trial's pre-specified
reference, one interaction with the modifier. Both are proportional-hazards
models whose survival curves come from the Breslow baseline, so the effect
estimates follow from the curves like every other learner's.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis
from sksurv.linear_model.coxph import BreslowEstimator
from sksurv.util import check_y_survival

from stratify.data.covariates import ARM_TERM
from stratify.exceptions import StratifyInputError
from stratify.learners.base import HORIZON, CATELearner
from stratify.learners.checks import check_fit_inputs
from stratify.learners.params import Interval, Rule
from stratify.learners.survival import event_times, ph_survival_at


class CoxnetInteraction(CATELearner):
    """Elastic-net Cox model on covariates, centred arm and arm × covariate interactions.

    The design is ``[X, a, a·X]`` with ``a = arm - 0.5`` (the modified-covariate
    or centred parametrisation; Tian et al., *JASA* 2014), standardised inside
    :meth:`fit`. In a 1:1 randomised trial ``a`` has mean zero and is
    independent of ``X``, so the interaction columns ``a·X`` are uncorrelated
    with the main effects ``X``: penalising (and mis-specifying) the prognostic
    part does not leak into the interactions, and the lasso does not trade an
    interaction off against its main effect, as it would with 0/1 coding where
    ``arm·X`` and ``X`` are strongly correlated. The coefficient of ``a`` (the
    log hazard ratio at average covariates) is not penalised: the randomised
    comparison needs no shrinkage.

    Parameters
    ----------
    l1_ratio : float
        Elastic-net mixing, in (0, 1]: 1 is the lasso.
    alpha : float, optional
        Penalty strength on the standardised design. None chooses it by
        ``cv_folds``-fold cross-validation of the partial likelihood
        (Verweij & van Houwelingen's grouped version, as glmnet) over a path of
        ``n_alphas`` values.
    n_alphas : int
        Length of the penalty path searched, from the smallest alpha that
        zeroes every penalised coefficient down to 1 % of it.
    cv_folds : int
        Folds of the inner cross-validation (stratified by event).
    horizon : float, optional
        Horizon (days) of :meth:`predict_cate`; set by the experiment.
    random_state : int, optional
        Seed of the fold assignment.

    Attributes
    ----------
    model_ : sksurv.linear_model.CoxnetSurvivalAnalysis
        The model fitted at ``alpha_`` alone, with its Breslow baseline.
    scaler_ : sklearn.preprocessing.StandardScaler
        Standardisation of the design.
    alpha_ : float
        The penalty used.
    coef_ : pandas.Series
        Coefficients at ``alpha_`` per standardised design column
        (``x``, ``arm``, ``arm:x``).
    event_times_ : numpy.ndarray
        Distinct event times in the training data.
    feature_names_in_ : numpy.ndarray
        Columns of ``X`` seen in :meth:`fit`.
    """

    _param_constraints: ClassVar[dict] = {
        "l1_ratio": [Interval(Real, 0, 1)],
        "alpha": [None, Interval(Real, 0, None, closed="neither")],
        "n_alphas": [Interval(Integral, 2, None)],
        "cv_folds": [Interval(Integral, 2, None)],
        "horizon": HORIZON,
    }
    _param_rules: ClassVar[tuple] = (
        Rule(
            lambda p: p["l1_ratio"] > 0,
            "l1_ratio must be above 0 (0 would be pure ridge: use 0.01)",
        ),
    )

    def __init__(
        self,
        *,
        l1_ratio=0.5,
        alpha=None,
        n_alphas=50,
        cv_folds=3,
        horizon=None,
        random_state=None,
    ):
        self.l1_ratio = l1_ratio
        self.alpha = alpha
        self.n_alphas = n_alphas
        self.cv_folds = cv_folds
        self.horizon = horizon
        self.random_state = random_state

    def fit(self, X, y, arm) -> CoxnetInteraction:
        """Standardise the interaction design, choose the penalty, fit the model.

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
        CoxnetInteraction
            ``self``.
        """
        self._check_params()
        X, y, arm = check_fit_inputs(X, y, arm)
        design = _interaction_design(X, arm)
        self.scaler_ = StandardScaler().fit(design)
        Z = self.scaler_.transform(design)
        penalty = np.where(design.columns == ARM_TERM, 0.0, 1.0)
        if self.alpha is None:
            path = self._coxnet(penalty, None, baseline=False).fit(Z, y).alphas_
            self.alpha_ = self._cv_alpha(Z, y, penalty, path)
        else:
            self.alpha_ = float(self.alpha)
        self.model_ = self._coxnet(penalty, [self.alpha_], baseline=False).fit(Z, y)
        self.coef_ = pd.Series(self.model_.coef_[:, 0], index=design.columns)
        event, time = check_y_survival(y)
        # The Breslow baseline at alpha_, as Coxnet's fit_baseline_model would fit it.
        self.baseline_ = BreslowEstimator().fit(self._linear_predictor(Z), event, time)
        self.event_times_ = event_times(y)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _coxnet(self, penalty: np.ndarray, alphas, *, baseline: bool) -> CoxnetSurvivalAnalysis:
        return CoxnetSurvivalAnalysis(
            l1_ratio=self.l1_ratio,
            alphas=alphas,
            n_alphas=self.n_alphas,
            alpha_min_ratio=0.01,
            penalty_factor=penalty,
            fit_baseline_model=baseline,
        )

    def _cv_alpha(self, Z, y, penalty, alphas) -> float:
        """The alpha of ``alphas`` with the highest cross-validated (grouped) partial likelihood.

        Each fold fits its own path (warm starts from its own largest alpha; a path
        given from outside can end early, while the fit is still flat at the null
        model) and is read at ``alphas`` by linear interpolation, clamped at the
        ends, as :meth:`CoxnetSurvivalAnalysis.predict` does.
        """
        event, time = check_y_survival(y)
        folds = StratifiedKFold(self.cv_folds, shuffle=True, random_state=self.random_state)
        score = np.zeros(alphas.size)
        for train, _ in folds.split(Z, event):
            fold = self._coxnet(penalty, None, baseline=False).fit(Z[train], y[train])
            increasing = fold.alphas_[::-1]
            coef = np.array([np.interp(alphas, increasing, c[::-1]) for c in fold.coef_])
            eta = Z @ coef
            score += cox_partial_loglik(eta, time, event)
            score -= cox_partial_loglik(eta[train], time[train], event[train])
        return float(alphas[int(np.argmax(score))])

    def _linear_predictor(self, Z: np.ndarray) -> np.ndarray:
        return self.model_.predict(Z, alpha=self.alpha_)

    def _survival_under(self, X, arm, times) -> np.ndarray:
        Z = self.scaler_.transform(_interaction_design(X, np.full(len(X), arm)))
        return ph_survival_at(self.baseline_.baseline_survival_, self._linear_predictor(Z), times)


class CoxInteraction(CATELearner):
    """The pre-specified reference: Cox model with one arm × modifier interaction.

    Unpenalised Cox regression (Efron ties) on ``[X, arm, arm·modifier]``, as
    in the trial's statistical analysis plan; a tiny ridge penalty on the
    standardised design only keeps Newton-Raphson finite under separation.
    Survival curves come from the Breslow baseline.

    Parameters
    ----------
    modifier : str
        The biomarker, a column of ``X`` (the config's ``data.modifier``).
    alpha : float
        Ridge penalty on the standardised design (``CoxPHSurvivalAnalysis.alpha``).
    horizon : float, optional
        Horizon (days) of :meth:`predict_cate`; set by the experiment.

    Attributes
    ----------
    model_ : sksurv.linear_model.CoxPHSurvivalAnalysis
        The fitted model.
    scaler_ : sklearn.preprocessing.StandardScaler
        Standardisation of the design.
    coef_ : pandas.Series
        Coefficients per design column on the original scale (log hazard
        ratio per unit of ``x``, of ``arm``, and of ``arm:<modifier>``).
    event_times_ : numpy.ndarray
        Distinct event times in the training data.
    feature_names_in_ : numpy.ndarray
        Columns of ``X`` seen in :meth:`fit`.
    """

    _param_constraints: ClassVar[dict] = {
        "alpha": [Interval(Real, 0, None)],
        "horizon": HORIZON,
    }

    def __init__(self, *, modifier=None, alpha=1e-4, horizon=None):
        self.modifier = modifier
        self.alpha = alpha
        self.horizon = horizon

    def fit(self, X, y, arm) -> CoxInteraction:
        """Fit the Cox model with the arm × modifier interaction.

        Parameters
        ----------
        X : pandas.DataFrame
            Numeric covariates, the modifier among them.
        y : numpy.ndarray
            ``Surv`` outcome.
        arm : array-like
            0 (control) or 1 (treated) per patient.

        Returns
        -------
        CoxInteraction
            ``self``.

        Raises
        ------
        StratifyInputError
            If ``modifier`` is missing or not a column of ``X``.
        """
        self._check_params()
        X, y, arm = check_fit_inputs(X, y, arm)
        if self.modifier is None:
            raise StratifyInputError("the Cox interaction model needs a modifier (data.modifier)")
        if self.modifier not in X.columns:
            raise StratifyInputError(
                f"modifier {self.modifier!r} is not a column of X "
                f"(columns: {', '.join(map(str, X.columns))})"
            )
        design = self._design(X, arm)
        self.scaler_ = StandardScaler().fit(design)
        model = CoxPHSurvivalAnalysis(alpha=float(self.alpha), ties="efron")
        self.model_ = model.fit(self.scaler_.transform(design), y)
        self.coef_ = pd.Series(self.model_.coef_ / self.scaler_.scale_, index=design.columns)
        self.event_times_ = event_times(y)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _design(self, X: pd.DataFrame, arm: np.ndarray) -> pd.DataFrame:
        arm = arm.astype(float)
        return X.assign(**{ARM_TERM: arm, f"{ARM_TERM}:{self.modifier}": arm * X[self.modifier]})

    def _survival_under(self, X, arm, times) -> np.ndarray:
        Z = self.scaler_.transform(self._design(X, np.full(len(X), arm)))
        return ph_survival_at(self.model_.baseline_survival_, self.model_.predict(Z), times)


def cox_partial_loglik(eta: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Cox partial log-likelihood (Breslow ties) of linear predictors ``eta``.

    ``Σ_{i: event} [η_i − log Σ_{j: t_j ≥ t_i} exp(η_j)]``, for one predictor
    per patient or for several at once (one per column).

    Parameters
    ----------
    eta : numpy.ndarray of shape (n_patients,) or (n_patients, n_models)
        Linear predictor per patient (and model).
    time, event : numpy.ndarray of shape (n_patients,)
        Follow-up time and event indicator per patient.

    Returns
    -------
    numpy.ndarray
        Scalar, or one value per column of ``eta``.

    Examples
    --------
    >>> import numpy as np
    >>> float(cox_partial_loglik(np.zeros(3), np.array([1.0, 2, 3]),
    ...                          np.array([True, True, False])).round(6))
    -1.791759
    """
    order = np.argsort(time, kind="mergesort")
    t, e = time[order], eta[order]
    # log Σ_{k ≥ m} exp(e_k) at every position m of the time-sorted sample
    tail = np.logaddexp.accumulate(e[::-1], axis=0)[::-1]
    first_at_risk = np.searchsorted(t, t, side="left")
    dead = event[order].astype(bool)
    return np.sum(e[dead] - tail[first_at_risk[dead]], axis=0)


def _interaction_design(X: pd.DataFrame, arm: np.ndarray) -> pd.DataFrame:
    """``[X, a, a·X]`` with the centred arm ``a = arm − 0.5``."""
    a = arm.astype(float) - 0.5
    inter = X.mul(a, axis=0).add_prefix(f"{ARM_TERM}:")
    return pd.concat([X, pd.Series(a, index=X.index, name=ARM_TERM), inter], axis=1)
