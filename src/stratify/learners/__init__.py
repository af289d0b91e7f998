"""Treatment-effect learners for censored outcomes (see :mod:`stratify.learners.base`).

Configs name learners from :data:`LEARNERS`; :func:`make_learner` builds them.
"""

from stratify.learners.base import CATE_COLUMNS, CATELearner
from stratify.learners.base_models import BASE_MODELS, make_base_model
from stratify.learners.causal_survival_forest import CausalSurvivalForest
from stratify.learners.cox import CoxInteraction, CoxnetInteraction
from stratify.learners.dr import DRLearner
from stratify.learners.meta import SLearner, TLearner
from stratify.learners.registry import LEARNERS, make_learner
from stratify.learners.survival import survival_at

__all__ = [
    "BASE_MODELS",
    "CATE_COLUMNS",
    "LEARNERS",
    "CATELearner",
    "CausalSurvivalForest",
    "CoxInteraction",
    "CoxnetInteraction",
    "DRLearner",
    "SLearner",
    "TLearner",
    "make_base_model",
    "make_learner",
    "survival_at",
]
