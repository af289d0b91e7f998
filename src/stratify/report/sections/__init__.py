"""The report's sections, each a plain function of the :class:`~stratify.report.run.RunResult`.

:mod:`~stratify.report.sections.header` the title and the key findings,
:mod:`~stratify.report.sections.trial` the trial summary and the analysis figures,
:mod:`~stratify.report.sections.learners` the learner comparison and calibration,
:mod:`~stratify.report.sections.explain` SHAP and the effect modifier,
:mod:`~stratify.report.sections.provenance` the config and provenance. Each returns
HTML written with :mod:`stratify.report.document` and embeds the figures the run
drew; none draws one.
"""
