"""scikit-survival base models by name: the registry, their parameters, and fitting them.

This module owns the fixed registry of base survival models that learners are
built from (:data:`BASE_MODELS`), the table of each one's parameters that a
learner's ``base_params`` are checked against (:data:`CONTROLS`,
:meth:`BaseModel.table`), and building and fitting them
(:func:`make_base_model`, :func:`fit_base_model`). Configs name base models
from the registry, never by import path. Evaluating the fitted models' curves
is :mod:`stratify.learners.survival`'s; binning covariates,
:mod:`stratify.learners.binning`'s.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
from sksurv.linear_model import CoxPHSurvivalAnalysis

from stratify.exceptions import StratifyInputError
from stratify.learners.binning import bin_covariates, quantile_edges, restore_thresholds
from stratify.learners.params import (
    FractionOrCount,
    Interval,
    Nested,
    NonZeroInteger,
    Options,
    Registered,
    check_value,
)
from stratify.learners.survival import FORESTS, complete_single_time_curves, final_estimator


def _rsf(random_state):
    # Small trials: shallow trees (at least 10 deaths or survivors per leaf), a third of
    # the features per split. Each tree costs ~2.5 ms of fixed overhead whatever n is, so
    # 100 trees is the compromise between Monte Carlo noise and the cross-fitting budget.
    # low_memory=False keeps the per-leaf survival curves (predict_survival_function).
    return RandomSurvivalForest(
        n_estimators=100,
        min_samples_leaf=10,
        max_features="sqrt",
        n_jobs=1,
        low_memory=False,
        random_state=random_state,
    )


def _gbsa(random_state):
    return GradientBoostingSurvivalAnalysis(
        loss="coxph",
        n_estimators=100,
        learning_rate=0.05,
        max_depth=2,
        min_samples_leaf=10,
        subsample=0.8,
        random_state=random_state,
    )


def _coxph(random_state):
    # Standardised so that the small ridge penalty means the same for every covariate
    # whatever its units; the ridge keeps Newton-Raphson finite under (quasi-)separation.
    # Efron ties, as the classical analysis (stratify.trial) uses.
    del random_state  # deterministic
    return make_pipeline(StandardScaler(), CoxPHSurvivalAnalysis(alpha=1e-2, ties="efron"))


#: Base-model parameters that decide cost on large cohorts, with the values they may take;
#: a base model's other parameters are passed to scikit-survival as they are.
CONTROLS: dict[str, list] = {
    "n_estimators": [Interval(Integral, 1, None)],
    "min_samples_leaf": [FractionOrCount()],
    "max_samples": [None, FractionOrCount(one=True)],
    "max_features": [Options(("sqrt", "log2")), None, FractionOrCount(one=True)],
    "n_jobs": [None, NonZeroInteger()],
    "low_memory": [Options((True, False))],
}


@dataclass(frozen=True)
class BaseModel:
    """A registered base model: how to build it, and the estimator it is.

    Parameters
    ----------
    build : callable
        ``build(random_state)``: the unfitted model with stratify's defaults.
    estimator : type
        The scikit-survival estimator class (the last step of the model when
        it is a pipeline): its parameters are those ``base_params`` may set.
    """

    build: Callable[[int | None], BaseEstimator]
    estimator: type

    def __call__(self, random_state: int | None = None) -> BaseEstimator:
        """The unfitted model (``build(random_state)``)."""
        return self.build(random_state)

    @property
    def forest(self) -> bool:
        """Whether the model is a survival forest (``max_bins`` applies to it)."""
        return issubclass(self.estimator, FORESTS)

    @cached_property
    def table(self) -> dict[str, list | None]:
        """Every parameter of the estimator -> its constraints (None: not checked here)."""
        signature = inspect.signature(self.estimator.__init__).parameters.values()
        names = [p.name for p in signature if p.name != "self" and p.kind != p.VAR_KEYWORD]
        return {name: CONTROLS.get(name) for name in sorted(names)}


#: Base survival models by name; ``BASE_MODELS[name](random_state)`` is an unfitted model.
BASE_MODELS: dict[str, BaseModel] = {
    "rsf": BaseModel(_rsf, RandomSurvivalForest),
    "gbsa": BaseModel(_gbsa, GradientBoostingSurvivalAnalysis),
    "coxph": BaseModel(_coxph, CoxPHSurvivalAnalysis),
}

#: How a learner's ``base`` is checked.
BASE_CHOICE = [Registered(tuple(BASE_MODELS), "base model")]


def _base_table(name: str) -> tuple[str, Mapping[str, list | None]]:
    return f"base model {name!r}", BASE_MODELS[name].table


#: How a learner's ``base_params`` are checked: against the table of its ``base``.
BASE_PARAMS = Nested(
    "base", _base_table, refused={"random_state": "comes from the learner's seed, not base_params"}
)


def make_base_model(
    name: str, params: dict | None = None, *, random_state: int | None = None
) -> BaseEstimator:
    """Build an unfitted base survival model from the registry, its parameters checked.

    Parameters
    ----------
    name : {"rsf", "gbsa", "coxph"}
        ``"rsf"``: :class:`~sksurv.ensemble.RandomSurvivalForest` (100 trees,
        ``min_samples_leaf=10``, ``max_features="sqrt"``); ``"gbsa"``:
        :class:`~sksurv.ensemble.GradientBoostingSurvivalAnalysis` (Cox loss,
        100 depth-2 trees, learning rate 0.05, subsample 0.8); ``"coxph"``:
        :class:`~sksurv.linear_model.CoxPHSurvivalAnalysis` on standardised
        covariates (ridge ``alpha=0.01``, Efron ties).
    params : dict, optional
        Parameters overriding the defaults, named as in the scikit-survival
        estimator (for ``"coxph"``, those of ``CoxPHSurvivalAnalysis``). The
        controls that matter on large cohorts are checked here (see
        :data:`CONTROLS`): ``n_estimators``, ``min_samples_leaf`` (an integer,
        or a fraction of the training patients), ``max_samples`` (patients
        drawn for each tree: an integer, or a fraction of the training
        patients), ``max_features``, ``n_jobs`` (threads growing and applying
        the trees) and ``low_memory``.
    random_state : int, optional
        Seed of the model's randomness (ignored by ``"coxph"``).

    Returns
    -------
    sklearn.base.BaseEstimator
        An unfitted scikit-survival estimator (or a pipeline ending in one).

    Raises
    ------
    StratifyInputError
        If ``name`` is not in :data:`BASE_MODELS`, a parameter is unknown, or
        a control of :data:`CONTROLS` has an invalid value.

    Examples
    --------
    >>> make_base_model("rsf", {"n_estimators": 50}, random_state=0).n_estimators
    50
    """
    check_value(BASE_CHOICE, name, "base")
    BASE_PARAMS.check(params, "base_params", {"base": name})
    return _build(name, params, random_state)


def _build(name: str, params: dict | None, random_state: int | None) -> BaseEstimator:
    model = BASE_MODELS[name](random_state)
    final_estimator(model).set_params(**dict(params or {}))
    return model


def fit_base_model(
    name: str,
    params: dict | None,
    random_state: int | None,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    max_bins: int | None = None,
) -> BaseEstimator:
    """Build a base model and fit it on ``(X, y)``.

    ``name`` and ``params`` are those of a learner, checked against its table
    when the learner was made and when it is fitted; they are not checked
    again here. An integer ``max_samples`` above the number of patients the
    model is fitted on (a small fold, one arm) is capped at that number:
    every tree then draws a full-size bootstrap sample.

    Parameters
    ----------
    name, params, random_state
        As for :func:`make_base_model`.
    X : pandas.DataFrame
        Covariates (float).
    y : numpy.ndarray
        ``Surv`` outcome.
    max_bins : int, optional
        Forests only: split each covariate at no more than ``max_bins - 1``
        of its quantiles (:func:`~stratify.learners.binning.quantile_edges`);
        the fitted forest still takes the covariates as they are.

    Returns
    -------
    sklearn.base.BaseEstimator
        The fitted model.
    """
    params = dict(params or {})
    samples = params.get("max_samples")
    if isinstance(samples, Integral) and samples > len(y):
        params["max_samples"] = len(y)
    if max_bins is not None and not BASE_MODELS[name].forest:
        raise StratifyInputError(f"max_bins applies to forests, not to base model {name!r}")
    model = _build(name, params, random_state)
    if max_bins is None:
        model.fit(X, y)
    else:
        edges = quantile_edges(X, max_bins)
        model.fit(bin_covariates(X, edges), y)
        restore_thresholds(model, edges)
    complete_single_time_curves(model)
    return model
