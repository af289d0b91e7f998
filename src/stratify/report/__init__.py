"""What a run shows: the HTML report, the terminal summary, and every figure.

:mod:`~stratify.report.run` holds what a run produced (:class:`RunResult`),
:mod:`~stratify.report.html` builds the self-contained report from it
(:mod:`~stratify.report.document` the page, :mod:`~stratify.report.sections` its
sections, :mod:`~stratify.report.output` writing the file),
:mod:`~stratify.report.summary` the sentences the report, the terminal and the
run's description state, and :mod:`stratify.report.figures` draws the figures
(trial, benefit, explanations).
"""
