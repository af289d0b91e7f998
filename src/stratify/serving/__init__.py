"""Learners served as MLflow models: the model (:mod:`.model`), saving it (:mod:`.packaging`).

``stratify.serving.BenefitModel`` is the class every saved model's entry point
imports: it stays importable from here whatever the modules behind it.
"""

from stratify.serving.model import (
    BenefitModel,
    output_columns,
    read_learner,
    select_covariates,
    survival_column,
)
from stratify.serving.packaging import log_learner_model, save_learner_model

__all__ = [
    "BenefitModel",
    "log_learner_model",
    "output_columns",
    "read_learner",
    "save_learner_model",
    "select_covariates",
    "survival_column",
]
