"""The pipeline: what ``stratify run`` and ``stratify study`` do, from a config to a tracked run.

:mod:`~stratify.pipeline.experiment` loads the trial, analyses it, cross-fits
and evaluates the learners, explains them (:mod:`~stratify.pipeline.explanation`),
draws, tracks and reports; :mod:`~stratify.pipeline.study` runs many
experiments resumably; :mod:`~stratify.pipeline.execution` chooses where the
work runs (joblib workers or a Dask cluster).
"""
