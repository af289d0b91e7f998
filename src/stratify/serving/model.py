"""Fitted learners as MLflow models that serve each patient's estimated benefit.

A learner fitted on the whole trial (the one :mod:`stratify.pipeline.explanation`
explains) is saved in MLflow's ``python_function`` format by
:func:`~stratify.serving.packaging.save_learner_model`, or logged to a run by
:func:`~stratify.serving.packaging.log_learner_model`; :class:`BenefitModel` is
what serves it.
``mlflow.pyfunc.load_model(uri).predict(covariates)`` then returns, per
patient (row, index kept):

* ``cate_rmst``: RMST treated minus control up to the horizon, days;
* ``cate_surv``: survival treated minus control at the horizon;
* ``surv_control@<t>`` and ``surv_treated@<t>``: the estimated survival
  probability under each arm at every day ``t`` of the model's time grid, ``t``
  written as the shortest decimal that reads back as the same float (``640``,
  ``213.5``).

The horizon and the time grid are fixed when the model is saved and recorded in
its metadata (``MLmodel``, key ``metadata``); they cannot be changed at
prediction time. The input is a DataFrame whose columns include the analysed
covariates the learner was fitted on (``TrialData.X``: after ``log_transform``,
e.g. ``log_delta_fs``, and one-hot encoding), by name and in any order; other
columns are ignored, a missing covariate is an error naming it.

Per-arm curves exist for every learner. For ``dr_learner`` they come from its
nuisance T-learner, not from the doubly robust regressions that give its
``cate_*`` columns, so ``cate_surv`` is not the difference of its two curves
(the metadata says so, key ``survival_curves``).

How a model is saved, and what goes with it, is :mod:`stratify.serving.packaging`.
"""

from __future__ import annotations

import lzma
import warnings
from collections.abc import Sequence
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd

from stratify.exceptions import StratifyInputError
from stratify.learners.base import CATE_COLUMNS, CATELearner, at_horizon

with warnings.catch_warnings():
    # Importing mlflow.pyfunc has MLflow infer schemas of its own agent types, and warn that
    # their `Any` hints are not validated: about MLflow's classes, not this model (and an
    # error under the test suite's warning filter).
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
    import mlflow.pyfunc

#: Arm labels of the survival columns, by arm (0 = control, 1 = treated).
ARMS = ("control", "treated")
#: Key of the learner in the model's artifacts.
LEARNER_ARTIFACT = "learner"


def survival_column(arm: int, time: float) -> str:
    """Name of the output column of survival under ``arm`` (0 or 1) at ``time`` days.

    Examples
    --------
    >>> survival_column(1, 640.0), survival_column(0, 213.5)
    ('surv_treated@640', 'surv_control@213.5')
    """
    return f"surv_{ARMS[arm]}@{format_days(time)}"


def output_columns(times: Sequence[float]) -> list[str]:
    """Columns returned by a served learner: the effects, then each arm's curve on ``times``.

    Examples
    --------
    >>> output_columns([320, 640])  # doctest: +NORMALIZE_WHITESPACE
    ['cate_rmst', 'cate_surv', 'surv_control@320', 'surv_control@640',
     'surv_treated@320', 'surv_treated@640']
    """
    return [*CATE_COLUMNS, *(survival_column(a, t) for a in (0, 1) for t in times)]


class BenefitModel(mlflow.pyfunc.PythonModel):
    """A fitted learner served by MLflow: covariates in, benefit and per-arm survival out.

    Built with a learner, it predicts in memory. A saved model builds it empty
    (from the saved code, :data:`ENTRY_POINT`) and :meth:`load_context` reads the
    covariates, horizon and grid from the model config and the learner from the
    model's artifacts.

    Parameters
    ----------
    learner : CATELearner, optional
        The fitted learner.
    covariates : sequence of str
        Covariates the learner was fitted on, in its order.
    horizon : float, optional
        Horizon (days) of ``cate_rmst`` and ``cate_surv``.
    times : sequence of float
        Time grid (days) of the survival columns.

    Examples
    --------
    >>> from stratify.data.simulate import simulate_mirocals
    >>> from stratify.data.trial_data import TrialData
    >>> from stratify.learners import CoxInteraction
    >>> trial = TrialData.from_frame(simulate_mirocals(220, seed=3), modifier="csf_pnfh")
    >>> learner = CoxInteraction(modifier="csf_pnfh").fit(trial.X, trial.y, trial.arm)
    >>> model = BenefitModel(learner, covariates=trial.covariates, horizon=640, times=[320, 640])
    >>> model.predict(None, trial.X.head(2)).columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['cate_rmst', 'cate_surv', 'surv_control@320', 'surv_control@640',
     'surv_treated@320', 'surv_treated@640']
    """

    def __init__(self, learner=None, *, covariates=(), horizon=None, times=()):
        self.learner = learner if learner is None else at_horizon(learner, horizon)
        self.covariates = tuple(covariates)
        self.horizon = horizon
        self.times = tuple(times)

    @property
    def output_columns(self) -> list[str]:
        """Names of the columns :meth:`predict` returns."""
        return output_columns(self.times)

    def load_context(self, context) -> None:
        """Read the model config and the learner (called by ``mlflow.pyfunc.load_model``)."""
        config = context.model_config
        self.covariates = tuple(config["covariates"])
        self.horizon = float(config["horizon"])
        self.times = tuple(float(t) for t in config["times"])
        # a learner saved before learners took their horizon gets the model's
        self.learner = at_horizon(read_learner(context.artifacts[LEARNER_ARTIFACT]), self.horizon)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Benefit and per-arm survival of every patient (row) of ``model_input``.

        Parameters
        ----------
        context : mlflow.pyfunc.PythonModelContext or None
            Unused (MLflow's calling convention).
        model_input : pandas.DataFrame
            One row per patient with (at least) the model's covariates, by name;
            other columns are ignored.
        params : dict, optional
            Unused: the horizon and time grid were fixed when the model was saved.

        Returns
        -------
        pandas.DataFrame
            Columns :attr:`output_columns`, indexed like ``model_input``.

        Raises
        ------
        StratifyInputError
            If a covariate is missing or a value is missing, infinite or not numeric.
        """
        del context, params
        if self.learner is None:
            raise StratifyInputError(
                "this model has no learner: load a saved one with mlflow.pyfunc.load_model"
            )
        X = select_covariates(model_input, self.covariates)
        cate = self.learner.predict_cate(X)
        curves = [self.learner.predict_survival(X, arm, self.times) for arm in (0, 1)]
        surv = pd.DataFrame(np.hstack(curves), columns=self.output_columns[2:], index=X.index)
        return pd.concat([cate[list(CATE_COLUMNS)], surv], axis=1)


def select_covariates(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """The model's covariates of ``frame`` as floats, in the model's order; other columns dropped.

    Raises
    ------
    StratifyInputError
        If ``frame`` is not a DataFrame, or a covariate is missing, not numeric, or has
        missing or infinite values (the covariates are named in the message).
    """
    if not isinstance(frame, pd.DataFrame):
        raise StratifyInputError(
            f"model input must be a pandas DataFrame of covariates (got {type(frame).__name__})"
        )
    missing = [c for c in covariates if c not in frame.columns]
    if missing:
        raise StratifyInputError(
            f"model input is missing covariate(s) {_names(missing)}; "
            f"the model takes: {', '.join(covariates)}"
        )
    X = frame[list(covariates)].apply(pd.to_numeric, errors="coerce").astype(float)
    bad = [c for c in covariates if not np.isfinite(X[c].to_numpy()).all()]
    if bad:
        raise StratifyInputError(
            f"covariate(s) {_names(bad)} of the model input have missing, infinite or "
            "non-numeric values"
        )
    return X


def _names(columns: Sequence[str]) -> str:
    return ", ".join(repr(str(c)) for c in columns)


def read_learner(path: str | Path) -> CATELearner:
    """The learner stored in a model's ``learner.pkl.xz`` artifact."""
    with lzma.open(path, "rb") as f:
        return cloudpickle.load(f)


def format_days(t: float) -> str:
    """``t`` as the shortest decimal that reads back as the same float (``640``, ``213.5``)."""
    return np.format_float_positional(float(t), trim="-")
