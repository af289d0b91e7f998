"""Validation metrics: risk (discrimination, calibration in time) and benefit (RATE, calibration).

:mod:`~stratify.validation.metrics.risk` scores predicted survival;
:mod:`~stratify.validation.metrics.benefit`
scores predicted treatment benefit against the doubly robust scores of
:mod:`stratify.learners.scores` and, in simulations, against the true effects.
"""

from stratify.validation.metrics.benefit import (
    benefit_calibration,
    blp_test,
    c_for_benefit,
    combine_heterogeneity,
    heterogeneity_test,
    rate,
    truth_metrics,
)
from stratify.validation.metrics.risk import evaluation_times, risk_metrics

__all__ = [
    "benefit_calibration",
    "blp_test",
    "c_for_benefit",
    "combine_heterogeneity",
    "evaluation_times",
    "heterogeneity_test",
    "rate",
    "risk_metrics",
    "truth_metrics",
]
