"""What a run shows: the HTML report, the terminal summary, and every figure.

:mod:`~stratify.report.html` writes the self-contained report,
:mod:`~stratify.report.summary` the sentences and tables printed in the
terminal, and :mod:`stratify.report.figures` draws the figures (trial,
benefit, explanations).
"""
