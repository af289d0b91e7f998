"""Fitted learners served as MLflow models (see :mod:`stratify.serving.model`).

``stratify.serving.BenefitModel`` is the class every saved model's entry point
imports: it stays importable from here whatever the modules behind it.
"""

from stratify.serving.model import (
    BenefitModel,
    log_learner_model,
    output_columns,
    read_learner,
    save_learner_model,
    select_covariates,
    survival_column,
)

__all__ = [
    "BenefitModel",
    "log_learner_model",
    "output_columns",
    "read_learner",
    "save_learner_model",
    "select_covariates",
    "survival_column",
]
