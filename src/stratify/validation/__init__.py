"""Validation: cross-fitting, the honest evaluation of every learner, and the simulator check.

:mod:`~stratify.validation.crossfit` gives every patient out-of-fold estimates
(folds x repeats); :mod:`~stratify.validation.evaluation` scores them with
:mod:`~stratify.validation.metrics` (risk, benefit, heterogeneity tests) and,
in simulations, against the truth; :mod:`~stratify.validation.calibration`
checks a simulator against the published trial.
"""
