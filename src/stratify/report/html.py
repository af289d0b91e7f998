"""One self-contained HTML report per run: what a trial statistician reads after ``stratify run``.

:func:`build_report` turns what a run produced (a
:class:`~stratify.report.run.RunResult`: the config, the trial, the classical
analysis and its figures, the learners' evaluation, their explanations and the
figures the run drew) and the run's provenance tags into one HTML document:

1. the title and the key findings (overall effect, heterogeneity verdict,
   modifier finding);
2. the trial summary: patients, arms, events, Kaplan-Meier survival and RMST at
   the horizon, log-rank, Cox hazard ratios (unadjusted, adjusted, arm x
   modifier) and the modifier strata with their notes;
3. the Kaplan-Meier, forest and interaction figures;
4. the learner comparison and the run's heterogeneity verdict, with calibration
   for benefit per learner;
5. SHAP of every learner's benefit and the modifier analysis (curve, crossover
   with its interval and hazard ratios on each side, or why there is none);
6. the resolved config (YAML) and provenance.

The document is self-contained: the CSS is inline, every figure is a base64 PNG
``data:`` URI, and there are no scripts, fonts or links to other sites, so it
opens offline, can be mailed as one file and prints with figures and tables
kept whole. Every piece of text that comes from a config or a data file is
escaped. Tables hold aggregates only, never one row per patient. The report
draws no figure: it embeds those the run drew (``RunResult.figures`` and
``RunResult.drawn``). :func:`write_report` writes the document atomically.

The page is built from :mod:`stratify.report.document` (CSS, tables, figures)
and :mod:`stratify.report.sections` (one function per section); the sentences
come from :mod:`stratify.report.summary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from stratify.rendering import DPI
from stratify.report.document import (
    check_dpi,
    check_figures,
    document,
    escape,
    figure_data_uri,
    footer,
)
from stratify.report.output import check_report_path, write_report
from stratify.report.sections.explain import explain
from stratify.report.sections.header import header
from stratify.report.sections.learners import learners
from stratify.report.sections.provenance import config_and_provenance
from stratify.report.sections.trial import analysis_figures, trial

if TYPE_CHECKING:
    from stratify.report.run import RunResult


def build_report(
    run: RunResult,
    provenance: Mapping[str, str] | None = None,
    *,
    headline: str | None = None,
    dpi: int = DPI,
) -> str:
    """The run's report: one self-contained HTML document.

    Parameters
    ----------
    run : RunResult
        What the run produced. Without learners (``run.evaluation`` None) or
        explanations (``run.explained`` None) the sections say so. The figures
        embedded are ``run.figures`` (in that order) and those of ``run.drawn``;
        a figure missing there is missing from the report.
    provenance : mapping of str to str, optional
        Provenance rows, e.g. the run's ``stratify.*`` tags and its MLflow run
        id; shown in the given order with readable names for known keys.
    headline : str, optional
        The one sentence shown under the title; default: the modifier finding
        when there is one, else the overall treatment effect.
    dpi : int
        Resolution of the embedded PNG figures.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    StratifyInputError
        If ``dpi`` is not an integer from 30 to 600, or a figure is not a matplotlib
        figure.
    """
    dpi = check_dpi(dpi)
    check_figures(run.figures)
    for figures in run.drawn.values():
        check_figures(figures)
    sections = [
        ("trial", "Trial summary", trial(run)),
        ("figures", "Kaplan\u2013Meier and forest plots", analysis_figures(run, dpi)),
        ("learners", "Who benefits? Learner comparison", learners(run, dpi)),
        ("explain", "Why? SHAP and the effect modifier", explain(run, dpi)),
        ("config", "Config and provenance", config_and_provenance(run.config, provenance)),
    ]
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title, _ in sections)
    body = header(run, headline) + f"<nav>{nav}</nav>"
    body += "".join(
        f'<section id="{key}"><h2>{escape(title)}</h2>{content}</section>'
        for key, title, content in sections
    )
    body += footer()
    return document(f"{run.config.name} \u2014 stratify report", body)


__all__ = ["DPI", "build_report", "check_report_path", "figure_data_uri", "write_report"]
