"""Classical analysis of a randomised survival trial, in agreement with R's ``survival``.

Kaplan-Meier and RMST by arm (:mod:`~stratify.trial.km`), the log-rank test,
Cox models of arm (:mod:`~stratify.trial.cox`), modifier strata
(:mod:`~stratify.trial.strata`), assembled by :func:`analyse_trial` into a
:class:`TrialAnalysis` (:mod:`~stratify.trial.result`).
"""

from stratify.trial.analysis import analyse_trial
from stratify.trial.cox import CoxFit, HazardRatio
from stratify.trial.km import ArmSurvival, Difference
from stratify.trial.result import TrialAnalysis
from stratify.trial.strata import Stratum, assign_strata, stratum_labels

__all__ = [
    "ArmSurvival",
    "CoxFit",
    "Difference",
    "HazardRatio",
    "Stratum",
    "TrialAnalysis",
    "analyse_trial",
    "assign_strata",
    "stratum_labels",
]
