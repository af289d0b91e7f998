"""One self-contained HTML report per run: what a trial statistician reads after ``stratify run``.

:func:`build_report` turns what :func:`stratify.pipeline.experiment.run` already holds
(the config, the trial, the classical analysis and its figures, the learners'
evaluation, their explanations and the run's provenance tags) into one HTML
document:

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
escaped. Tables hold aggregates only, never one row per patient;
:func:`write_report` writes the document atomically.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import pandas as pd

from stratify import __version__
from stratify.exceptions import StratifyInputError
from stratify.files import write_atomically
from stratify.formatting import DASH, MISSING, bound, hazard_ratio, names, number
from stratify.rendering import DPI, figure_png, palette_png
from stratify.report.figures.benefit import benefit_calibration_plot
from stratify.report.figures.explain import learner_figures, modifier_figures

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from stratify.config import ExperimentConfig
    from stratify.data import TrialData
    from stratify.explain.modifier import ModifierEffect
    from stratify.explain.results import Explained, LearnerExplanation
    from stratify.trial import TrialAnalysis
    from stratify.trial.cox import HazardRatio
    from stratify.trial.strata import Stratum
    from stratify.validation.evaluation import Evaluation, LearnerReport

#: CSS pixels per inch.
CSS_DPI = 96

#: Readable names of the provenance tags :func:`stratify.pipeline.experiment.run` sets.
PROVENANCE_LABELS = {
    "stratify.version": "stratify version",
    "stratify.git_commit": "Git commit of stratify",
    "stratify.config_hash": "Config hash",
    "stratify.dataset_hash": "Dataset hash",
    "stratify.data_source": "Data source",
    "stratify.heterogeneity_method": "Heterogeneity verdict",
    "mlflow.run_id": "MLflow run",
    "mlflow.experiment": "MLflow experiment",
    "tracking_uri": "Tracking store",
    "created": "Report created",
}

TEST_NAMES = {"blp": "calibration-slope (BLP)", "rate": "RATE AUTOC"}

CSS = """
:root { --ink: #1b1b1b; --muted: #5a5a5a; --rule: #d0d0d0; --accent: #0072B2;
        --good: #e8f3ec; --note: #f6f1e4; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1060px; padding: 24px 28px 48px; color: var(--ink);
       font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       counter-reset: fig tab; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--accent); }
h3 { font-size: 17px; margin: 26px 0 8px; }
h4 { font-size: 15px; margin: 20px 0 6px; }
p { margin: 8px 0; }
.subtitle { color: var(--muted); margin: 0 0 16px; }
.lead { font-size: 17px; font-weight: 600; margin: 12px 0; }
.findings { background: var(--good); border-left: 4px solid #009E73; padding: 10px 14px 10px 32px;
            margin: 12px 0; }
.findings li { margin: 4px 0; }
.verdict, .finding { background: var(--note); border-left: 4px solid #E69F00;
                     padding: 8px 12px; margin: 12px 0; }
.muted { color: var(--muted); font-size: 13px; }
nav { font-size: 14px; margin: 10px 0 0; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
table { border-collapse: collapse; margin: 10px 0 18px; font-size: 13.5px;
        counter-increment: tab; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0 0 4px; }
caption::before { content: "Table " counter(tab) ". "; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { border-bottom: 1.5px solid var(--ink); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.scroll { overflow-x: auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 0 28px; }
.card { min-width: 0; }
.card table { font-size: 13px; }
.card th, .card td { padding: 3px 6px; }
figure { margin: 14px 0 22px; counter-increment: fig; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; max-width: 860px; }
figcaption::before { content: "Figure " counter(fig) ". "; font-weight: 600; color: var(--ink); }
pre { background: #f5f5f5; border: 1px solid var(--rule); padding: 10px 12px; font-size: 12.5px;
      overflow-x: auto; white-space: pre-wrap; }
code { font-size: 12.5px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule);
         padding-top: 8px; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  nav { display: none; }
  .grid { display: block; }
  table, .card table { font-size: 8pt; }
  th, td, .card th, .card td { padding: 2px 4px; }
  .scroll { overflow: visible; }
  h2 { break-before: page; }
  section:first-of-type > h2 { break-before: auto; }
  h2, h3, h4, caption { break-after: avoid; }
  figure, table, .verdict, .finding, .findings { break-inside: avoid; }
  pre { white-space: pre-wrap; }
}
"""


# ------------------------------------------------------------------ public API


def build_report(
    config: ExperimentConfig,
    data: TrialData,
    analysis: TrialAnalysis,
    figures: Mapping[str, Figure],
    evaluation: Evaluation | None = None,
    explained: Explained | None = None,
    provenance: Mapping[str, str] | None = None,
    *,
    headline: str | None = None,
    dpi: int = DPI,
    drawn: Mapping[str, Mapping[str, Figure]] | None = None,
) -> str:
    """The run's report: one self-contained HTML document.

    Parameters
    ----------
    config : ExperimentConfig
        The run's config (shown as YAML; names, horizon and settings).
    data : TrialData
        The analysed trial (only counts and names are reported).
    analysis : TrialAnalysis
        The classical analysis.
    figures : mapping of str to matplotlib.figure.Figure
        The analysis figures by artifact path, as returned by
        :func:`stratify.pipeline.experiment.analyse`; embedded in that order.
    evaluation : Evaluation, optional
        The cross-fitted learners; None for a config without learners (the
        learner sections then say so).
    explained : Explained, optional
        SHAP explanations and the modifier analysis; None when there are no
        learners or ``explain.enabled`` is false (the section then says so).
    provenance : mapping of str to str, optional
        Provenance rows, e.g. the run's ``stratify.*`` tags and its MLflow run
        id; shown in the given order with readable names for known keys.
    headline : str, optional
        The one sentence shown under the title; default: the modifier finding
        when there is one, else the overall treatment effect.
    dpi : int
        Resolution of the embedded PNG figures.
    drawn : mapping, optional
        Figures already drawn for the run's logging
        (:func:`stratify.pipeline.experiment.draw_figures`): ``""`` to the modifier
        figure, each learner label to its calibration and SHAP figures. They are
        embedded as they are; whatever is missing is drawn here.

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
    dpi = _check_dpi(dpi)
    _check_figures(figures)
    render = _Renderer(config, data, analysis, dpi, drawn or {})
    sections = [
        ("trial", "Trial summary", render.trial()),
        ("figures", "Kaplan\u2013Meier and forest plots", render.analysis_figures(figures)),
        ("learners", "Who benefits? Learner comparison", render.learners(evaluation)),
        ("explain", "Why? SHAP and the effect modifier", render.explain(evaluation, explained)),
        ("config", "Config and provenance", render.config_and_provenance(provenance)),
    ]
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections)
    body = render.header(evaluation, explained, headline) + f"<nav>{nav}</nav>"
    body += "".join(
        f'<section id="{key}"><h2>{_e(title)}</h2>{content}</section>'
        for key, title, content in sections
    )
    body += _footer()
    return _document(f"{config.name} \u2014 stratify report", body)


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that a report can be written to ``path``.

    Parameters
    ----------
    path : str or path-like
        The report file to be written.

    Returns
    -------
    pathlib.Path
        The path, absolute; its folder exists afterwards.

    Raises
    ------
    StratifyInputError
        If ``path`` is a folder, or its folder cannot be created or written.
    """
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise StratifyInputError(f"cannot write the report to {target}: it is a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(target, exc) from None
    if not os.access(target.parent, os.W_OK):
        raise StratifyInputError(f"cannot write the report to {target}: its folder is not writable")
    return target


def write_report(html_text: str, path: str | os.PathLike[str]) -> Path:
    """Write a report atomically: a temporary file in the same folder, then a rename.

    Readers never see a partial file, and a failure leaves no file behind (an
    existing report at ``path`` is kept unchanged). Missing folders are created.

    Parameters
    ----------
    html_text : str
        The document, e.g. from :func:`build_report`.
    path : str or path-like
        Where to write it.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    StratifyInputError
        If the folder cannot be created or written to, naming ``path``.
    """
    return write_atomically(
        path,
        lambda tmp: tmp.write_text(html_text, encoding="utf-8", newline="\n"),
        what="cannot write the report to",
    )


def _unwritable(target: Path, exc: OSError) -> StratifyInputError:
    return StratifyInputError(f"cannot write the report to {target}: {exc.strerror or exc}")


def figure_data_uri(figure: Figure, dpi: int = DPI, *, compact: bool = True) -> str:
    """A figure as a ``data:image/png;base64,...`` URI.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure, rendered once by :func:`stratify.rendering.figure_png` (the
        run's artifact of the same figure shares the rendering).
    dpi : int
        Resolution.
    compact : bool
        Store the PNG with a 256-colour palette
        (:func:`stratify.rendering.palette_png`): about a third of the size, and
        no visible change for plots.

    Returns
    -------
    str
    """
    png = figure_png(figure, dpi)
    png = palette_png(png) if compact else png
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# ------------------------------------------------------------------ the sections


CALIBRATION_FIGURE = "figures/benefit_calibration.png"
"""Artifact path of a learner run's benefit-calibration figure."""


class _Renderer:
    """The report's sections, from the objects of one run."""

    def __init__(self, config: ExperimentConfig, data: TrialData, analysis: TrialAnalysis, dpi,
                 drawn: Mapping[str, Mapping[str, Figure]]):  # fmt: skip
        self.config, self.data, self.analysis, self.dpi = config, data, analysis, dpi
        self.drawn = drawn
        self.horizon = f"{analysis.horizon:g}"
        self.level = f"{100 * (1 - analysis.alpha):g}%"
        self.modifier = data.modifier

    # -------------------------------------------------------------- header

    def header(self, evaluation, explained, headline: str | None) -> str:
        """Title, subtitle, the one-sentence finding and the key findings."""
        a, data = self.analysis, self.data
        control, treated = a.arm_labels
        subtitle = (
            f"Randomised survival trial, {treated} (treated) vs {control} (control): "
            f"{data.n_patients} patients, "
            f"{data.n_events} events, horizon {self.horizon} days"
        )
        overall = self._overall_sentence()
        finding = "" if explained is None else explained.finding
        verdict = (
            "" if evaluation is None else _verdict_sentence(evaluation, a.alpha, data.n_patients)
        )
        lead = headline or finding or overall
        findings = [f for f in (overall, verdict, finding) if f]
        items = "".join(f"<li>{_e(f)}</li>" for f in findings if f != lead)
        out = f"<h1>{_e(self.config.name)}: who benefits?</h1>"
        out += f'<p class="subtitle">{_e(subtitle)}</p><p class="lead">{_e(lead)}</p>'
        return out + (f'<ul class="findings">{items}</ul>' if items else "")

    def _overall_sentence(self) -> str:
        a = self.analysis
        control, treated = a.control, a.treated
        d = a.rmst_diff
        significant = "" if a.logrank_p < a.alpha else "not "
        return (
            f"Overall, hazard ratio {treated.label} (treated) vs {control.label} (control) "
            f"{_hr(a.hr_unadjusted, with_p=False)}, log-rank {_p_is(a.logrank_p, a.alpha)} "
            f"({significant}statistically significant at the {100 * a.alpha:g}% level); survival "
            f"at {self.horizon} days {treated.surv:.1%} vs {control.surv:.1%}; RMST difference "
            f"{d.estimate:+.1f} days ({d.ci_low:+.1f} to {d.ci_high:+.1f})."
        )

    # -------------------------------------------------------------- trial summary

    def trial(self) -> str:
        """Patients and arms, the estimates by arm, the treatment effect, strata, all rows."""
        data, a = self.data, self.analysis
        adjusted = ", ".join(a.cox_adjusted.terms[1:]) or "(nothing)"
        intro = (
            f"{data.summary()}. Treated arm: {a.arm_labels[1]}; control arm: {a.arm_labels[0]}. "
            f"Adjusted models adjust for {adjusted}."
        )
        if self.modifier:
            intro += f" Effect modifier: {self.modifier}."
        intro += f" Intervals are {self.level} confidence intervals; p-values are two-sided."
        out = f"<p>{_e(intro)}</p>" + self._arms_table() + self._effects_table()
        if a.strata:
            out += self._strata_table()
        out += "<h3>All estimates</h3>" + _p_html(
            "Every row of the run's tables/trial_analysis.csv, including each covariate of the "
            "adjusted Cox models (hazard ratios per unit)."
        )
        return out + _analysis_table(a.table())

    def _arms_table(self) -> str:
        z = NormalDist().inv_cdf(1 - self.analysis.alpha / 2)
        rows = []
        for role, arm in (("control", self.analysis.control), ("treated", self.analysis.treated)):
            rmst = _interval(arm.rmst, arm.rmst - z * arm.rmst_se, arm.rmst + z * arm.rmst_se)
            survival = (
                f"{arm.surv:.1%} ({arm.surv_ci_low:.1%}{DASH}{arm.surv_ci_high:.1%})"
                if math.isfinite(arm.surv)
                else MISSING
            )
            rows.append([f"{arm.label} ({role})", arm.n, arm.events, survival, rmst])
        head = [
            "Arm",
            "Patients",
            "Events",
            f"KM survival at {self.horizon} days ({self.level} CI)",
            f"RMST to {self.horizon} days, days ({self.level} CI)",
        ]
        return _table(head, rows, caption="Outcomes by arm", numeric=(1, 2, 3, 4))

    def _effects_table(self) -> str:
        a = self.analysis
        d = a.rmst_diff
        adjusted = names(a.cox_adjusted.terms[1:])
        rows = [
            [
                "RMST difference, treated \u2212 control (days)",
                f"{d.estimate:+.1f} ({d.ci_low:+.1f} to {d.ci_high:+.1f})",
                _p(d.p, a.alpha),
            ],
            [
                "Log-rank test (1 df)",
                f"\u03c7\u00b2 = {a.logrank_chisq:.2f}",
                _p(a.logrank_p, a.alpha),
            ],
            [
                "Cox HR, treated vs control, unadjusted",
                _hr(a.hr_unadjusted, with_p=False),
                _p(a.hr_unadjusted.p, a.alpha),
            ],
            [
                f"Cox HR, treated vs control, adjusted for {adjusted}",
                _hr(a.hr_adjusted, with_p=False),
                _p(a.hr_adjusted.p, a.alpha),
            ],
        ]
        if a.cox_interaction is not None:
            inter, at_zero = a.interaction_hr, a.hr_interaction_arm
            rows += [
                [
                    f"Arm \u00d7 {a.modifier} interaction: ratio of HRs per unit of {a.modifier}",
                    _hr(inter, with_p=False),
                    _p(inter.p, a.alpha),
                ],
                [
                    f"Arm HR at {a.modifier} = 0 (interaction model)",
                    _hr(at_zero, with_p=False),
                    _p(at_zero.p, a.alpha),
                ],
            ]
        head = ["Comparison", f"Estimate ({self.level} CI)", "p"]
        return _table(head, rows, caption="Treatment effect", numeric=(1, 2))

    def _strata_table(self) -> str:
        a = self.analysis
        rows = [
            [
                f"{a.modifier} {s.label}",
                s.n,
                f"{s.n_control} / {s.n_treated}",
                s.events,
                f"{s.events_control} / {s.events_treated}",
                _hr(s.hr, with_p=False),
                _p(s.hr.p, a.alpha),
                s.note,
            ]
            for s in a.strata
        ]
        head = [
            "Stratum",
            "Patients",
            "control / treated",
            "Events",
            "control / treated",
            f"HR ({self.level} CI)",
            "p",
            "Note",
        ]
        cuts = ", ".join(f"{c:g}" for c in a.cutpoints)
        caption = f"Unadjusted hazard ratio within {a.modifier} strata (cutpoints {cuts})"
        return _table(head, rows, caption=caption, numeric=(1, 2, 3, 4, 5, 6))

    # -------------------------------------------------------------- analysis figures

    def analysis_figures(self, figures: Mapping[str, Figure]) -> str:
        """Every figure of the classical analysis, with its caption."""
        if not figures:
            return _p_html("The analysis produced no figures.")
        return "".join(
            self.figure(figure, self._analysis_caption(path)) for path, figure in figures.items()
        )

    def _analysis_caption(self, path: str) -> str:
        a = self.analysis
        control, treated = a.arm_labels
        m, h, level = a.modifier, self.horizon, self.level
        cuts = ", ".join(f"{c:g}" for c in a.cutpoints)
        ticks = "every patient" if self.config.tracking.log_patient_level else "its deciles"
        captions = {
            "figures/km_by_arm.png": (
                f"Kaplan\u2013Meier survival by arm with pointwise {level} confidence bands "
                f"(log-log); tick marks on the curves are censored patients, the dotted line is "
                f"the {h}-day horizon; numbers at risk below."
            ),
            "figures/km_by_stratum.png": (
                f"Kaplan\u2013Meier survival by arm within {m} strata (cutpoints {cuts}), with "
                f"the number of patients, events and the unadjusted hazard ratio in each panel."
            ),
            "figures/forest_plot.png": (
                f"Hazard ratio of {treated} vs {control} with {level} CI, log scale: all "
                f"patients (unadjusted and adjusted) and within each {m} stratum. Left of 1 "
                f"favours {treated}."
            ),
            "figures/interaction_hr.png": (
                f"Hazard ratio of {treated} vs {control} as a function of {m}, from the Cox "
                f"model with an arm \u00d7 {m} interaction, with its {level} delta-method band; "
                f"ticks mark {ticks} of {m}."
            ),
        }
        return captions.get(path, f"{path}.")

    def figure(self, figure: Figure, caption: str) -> str:
        """One embedded figure with its caption."""
        width = round(figure.get_figwidth() * CSS_DPI)
        return (
            f'<figure><img src="{figure_data_uri(figure, self.dpi)}" width="{width}" '
            f'alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>'
        )

    # -------------------------------------------------------------- learners

    def learners(self, evaluation: Evaluation | None) -> str:
        """The learner comparison, the heterogeneity verdict, calibration per learner."""
        if evaluation is None:
            return _p_html(
                "No learners were configured (the config's learners list is empty), so there is "
                "no learner comparison, heterogeneity verdict or calibration for benefit."
            )
        cv = self.config.cv
        intro = (
            f"{len(evaluation.learners)} learner(s), cross-fitted with {cv.folds} folds \u00d7 "
            f"{cv.repeats} repeat(s) stratified on arm \u00d7 event: every patient's estimated "
            f"benefit (RMST difference to {self.horizon} days, treated \u2212 control) comes from "
            f"models that did not see that patient. Benefit metrics score these out-of-fold "
            f"estimates against the cross-fitted doubly robust scores."
        )
        verdict = _verdict_sentence(evaluation, self.analysis.alpha, self.data.n_patients)
        out = _p_html(intro) + f'<p class="verdict"><strong>{_e(verdict)}</strong></p>'
        out += self._benefit_table(evaluation) + self._risk_table(evaluation)
        out += "<h3>Calibration for benefit</h3>" + _p_html(
            "Patients are grouped by their predicted benefit; within each group the observed "
            "benefit is the Kaplan\u2013Meier RMST difference between the arms. Points near the "
            "diagonal are well calibrated."
        )
        return out + _grid(
            self._calibration(label, report) for label, report in evaluation.learners.items()
        )

    def _learner_name(self, label: str) -> str:
        """The label, and the learner and its parameters when they say more."""
        spec = next((s for s in self.config.learners if s.run_label == label), None)
        if spec is None:
            return label
        params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
        model = spec.name + (f" ({params})" if params else "")
        return label if model == label else f"{label}: {model}"

    def _benefit_table(self, evaluation: Evaluation) -> str:
        used = self.config.heterogeneity.test
        truth = all("cate_rmse" in r.metrics for r in evaluation.learners.values())
        head = [
            "Learner",
            "Mean benefit, days",
            "SD",
            "RATE AUTOC (SE)",
            "RATE Qini (SE)",
            "C-for-benefit",
            "Calibration slope (SE)",
            "p, BLP" + (" (used)" if used == "blp" else ""),
            "p, RATE" + (" (used)" if used == "rate" else ""),
        ]
        if truth:
            head += ["RMSE vs true benefit, days", "Spearman vs true benefit"]
        rows = []
        for label, report in evaluation.learners.items():
            m = report.metrics
            row = [
                self._learner_name(label),
                _f(m["cate_rmst_mean"], "+.1f"),
                _f(m["cate_rmst_sd"], ".1f"),
                _with_se(m, "rate_autoc", ".1f"),
                _with_se(m, "rate_qini", ".1f"),
                _f(m["c_for_benefit"], ".3f"),
                _with_se(m, "blp_slope", ".2f", se="blp_slope_se"),
                _p(m["heterogeneity_p_blp"], digits=3),
                _p(m["heterogeneity_p_rate"], digits=3),
            ]
            if truth:
                row += [_f(m["cate_rmse"], ".1f"), _f(m["cate_spearman"], ".2f")]
            rows.append(row)
        caption = "Estimated benefit (out-of-fold) and tests of heterogeneity, by learner"
        numeric = tuple(range(2, len(head)))
        out = _table(head, rows, caption=caption, numeric=numeric)
        if truth:
            out += _p_html(
                "The data are simulated: the last two columns compare each learner's estimates "
                "with every patient's true benefit (never used for fitting).",
                muted=True,
            )
        return out

    def _risk_table(self, evaluation: Evaluation) -> str:
        keys = ("c_index_harrell", "c_index_uno", "ibs")
        rows = [
            [label, *(_mean_sd(report.metrics, key) for key in keys)]
            for label, report in evaluation.learners.items()
        ]
        head = ["Learner", "Harrell's C", "Uno's C", "Integrated Brier score"]
        caption = "Risk prediction on held-out folds (mean \u00b1 SD over folds \u00d7 repeats)"
        return _table(head, rows, caption=caption, numeric=(1, 2, 3))

    def _calibration(self, label: str, report: LearnerReport) -> str:
        table = report.calibration
        caption = (
            f"{label}: observed vs predicted benefit (RMST difference to {self.horizon} days) in "
            f"{len(table)} groups of predicted benefit, with {self.level} CIs of the observed "
            f"benefit; dotted: perfect calibration."
        )
        rows = [
            [
                int(r.group),
                f"{int(r.n)} ({int(r.n_treated)})",
                f"{_f(r.predicted_mean, '+.1f')} ({_f(r.predicted_min, '+.1f')} to "
                f"{_f(r.predicted_max, '+.1f')})",
                _interval(r.observed, r.ci_low, r.ci_high, "+.1f"),
            ]
            for r in table.itertuples()
        ]
        head = [
            "Group",
            "Patients (treated)",
            "Predicted, mean (range)",
            f"Observed ({self.level} CI)",
        ]
        figure = self.drawn.get(label, {}).get(CALIBRATION_FIGURE) or benefit_calibration_plot(
            table, title=f"Calibration for benefit: {label}"
        )
        return (
            f"<h4>{_e(label)}</h4>"
            + self.figure(figure, caption)
            + _table(head, rows, caption=f"{label}: benefit by group (days)", numeric=(0, 1, 2, 3))
        )

    # -------------------------------------------------------------- explanations

    def explain(self, evaluation: Evaluation | None, explained: Explained | None) -> str:
        """SHAP of every learner's benefit and the modifier analysis, or why there are none."""
        if evaluation is None:
            return _p_html(
                "No learners were configured, so there is nothing to explain: SHAP and the "
                "modifier analysis need cross-fitted learners."
            )
        if explained is None:
            reason = (
                "explanations were switched off (explain.enabled: false)"
                if not self.config.explain.enabled
                else "no explanations were computed for this run"
            )
            return _p_html(f"Not reported: {reason}, so there is no SHAP or modifier analysis.")
        out = "<h3>What drives estimated benefit (SHAP)</h3>" + self._ranks_table(explained)
        out += _grid(self._learner_shap(x) for x in explained.learners.values())
        return out + self._modifier_section(evaluation, explained)

    def _ranks_table(self, explained: Explained) -> str:
        rows = []
        for label, x in explained.learners.items():
            lead = " (reported on the run)" if label == explained.explained_learner else ""
            top = x.importance()["covariate"].iloc[0]
            ranks = x.metrics()
            ranks = [_f(ranks[k], ".0f") for k in ("modifier_rank", "modifier_rank_surv")]
            rows.append([label + lead, x.benefit.method, top, *ranks])
        p = len(self.data.X.columns)
        m = self.modifier or "the modifier"
        head = [
            "Learner",
            "SHAP method",
            "Top covariate",
            f"Rank of {m}, RMST benefit (of {p})",
            f"Rank of {m}, survival benefit (of {p})",
        ]
        intro = _p_html(
            "Each learner is refitted once on the whole trial and its estimated benefit is "
            "explained with SHAP: a covariate's SHAP value is how much it moves one patient's "
            "estimated benefit away from the average. Covariates are ranked by mean |SHAP|."
        )
        return intro + _table(
            head, rows, caption="Covariates driving benefit, by learner", numeric=(3, 4)
        )

    def _learner_shap(self, x: LearnerExplanation) -> str:
        captions = {
            "figures/shap_benefit.png": (
                f"{x.label}: SHAP values of estimated benefit (RMST to {self.horizon} days), one "
                f"point per patient, coloured by the covariate's value ({x.benefit.method})."
            ),
            "figures/shap_time.png": (
                f"{x.label}: mean |SHAP| of the survival difference over time, for the "
                f"covariates that matter most."
            ),
        }
        out = f"<h4>{_e(x.label)}</h4>"
        if x.label in self.drawn:
            figures = {k: v for k, v in self.drawn[x.label].items() if k != CALIBRATION_FIGURE}
        else:
            figures = learner_figures(x, self.analysis.horizon)
        for path, figure in figures.items():
            out += self.figure(figure, captions.get(path, f"{x.label}: {path}."))
        out += _importance_table(x, self.horizon)
        if x.interactions is not None:
            out += _interactions_table(x)
        return out

    def _modifier_section(self, evaluation: Evaluation, explained: Explained) -> str:
        if self.modifier is None:
            return "<h3>Effect modifier</h3>" + _p_html(
                "No effect modifier was configured (data.modifier), so there is no crossover "
                "analysis."
            )
        out = f"<h3>Effect modifier: {_e(self.modifier)}</h3>"
        if explained.finding:
            out += f'<p class="finding"><strong>{_e(explained.finding)}</strong></p>'
        effect = explained.modifier
        if effect is None:
            return out
        out += _p_html(
            f"Estimated benefit is smoothed against {effect.modifier} (LOWESS of the cross-"
            f"fitted doubly robust scores; {self.config.explain.n_bootstrap} bootstrap "
            f"replicates). A crossover is claimed only when the pre-specified test of effect "
            f"modification rejects, the smoothed benefit changes sign inside the central 95% of "
            f"{effect.modifier} and its whole bootstrap interval lies inside that range."
        )
        out += self._gate_note(evaluation, effect)
        figures = self.drawn.get("")
        if figures is None:
            figures = modifier_figures(
                explained, show_patients=self.config.tracking.log_patient_level
            )
        for figure in figures.values():
            out += self.figure(figure, self._modifier_caption(explained))
        out += _crossover_table(effect, self.level)
        if effect.sides:
            out += _sides_table(effect, self.level, self.analysis.alpha)
        return out

    def _gate_note(self, evaluation: Evaluation, effect: ModifierEffect) -> str:
        if not effect.supported or evaluation.heterogeneity_p < self.analysis.alpha:
            return ""
        return _p_html(
            f"Note: the learners' heterogeneity test above does not reject "
            f"({_p_is(evaluation.heterogeneity_p, digits=3)}); the crossover rests on the "
            f"pre-specified {effect.dependence_test} ({_p_is(effect.dependence_p)}), a "
            f"test of one modifier with more power than an omnibus test over all covariates."
        )

    def _modifier_caption(self, explained: Explained) -> str:
        effect = explained.modifier
        caption = (
            f"Estimated benefit (RMST difference to {self.horizon} days) against "
            f"{effect.modifier}: LOWESS of the doubly robust scores with its pointwise 95% "
            f"bootstrap band, each learner's smoothed out-of-fold estimates (thin lines) and the "
            f"crossover (shaded: its interval, when supported)."
        )
        if not self.config.tracking.log_patient_level:
            return caption
        return caption + (
            f" Right: {explained.explained_learner}'s SHAP values for {effect.modifier}, one "
            f"point per patient."
        )

    # -------------------------------------------------------------- config and provenance

    def config_and_provenance(self, provenance: Mapping[str, str] | None) -> str:
        """The resolved config as YAML, the provenance rows and what the report holds."""
        out = "<h3>Config</h3>" + _p_html(
            "The resolved config of the run (relative paths are relative to the project root)."
        )
        out += f"<pre>{_e(self.config.to_yaml())}</pre><h3>Provenance</h3>"
        rows = [
            [PROVENANCE_LABELS.get(key, key), key, value]
            for key, value in (provenance or {}).items()
        ]
        if rows:
            out += _table(["Item", "Key", "Value"], rows, caption="Provenance of this run")
        else:
            out += _p_html("No provenance was supplied with this report.")
        return out + _p_html(self._privacy_note(), muted=True)

    def _privacy_note(self) -> str:
        logged = self.config.tracking.log_patient_level
        where = (
            "Patient-level tables were logged to the run (tracking.log_patient_level: true) but "
            "are not part of this report"
            if logged
            else "No patient-level data were logged (tracking.log_patient_level: false)"
        )
        text = (
            f"{where}: every table here is an aggregate. Some figures draw one mark per patient "
            f"(censoring ticks on the Kaplan\u2013Meier curves, SHAP points), as the run's "
            f"logged figures do."
        )
        if self.config.tracking.log_models:
            text += (
                " The learners were logged as models (tracking.log_models: true): a fitted "
                "model holds values derived from individual patients (the trial's event "
                "times, a forest's split points and leaf curves, a Cox model's baseline "
                "hazard), though no patient rows."
            )
        return text


# ------------------------------------------------------------------ tables of explanations


def _importance_table(x: LearnerExplanation, horizon: str) -> str:
    rows = [
        [
            int(r.rank),
            r.covariate,
            _f(r.mean_abs_shap_rmst, ".2f"),
            _f(100 * r.mean_abs_shap_surv, ".2f"),
        ]
        for r in x.importance().itertuples()
    ]
    head = [
        "Rank",
        "Covariate",
        "Mean |SHAP|, RMST benefit (days)",
        f"Mean |SHAP|, survival benefit at {horizon} days (percentage points)",
    ]
    return _table(head, rows, caption=f"{x.label}: importance for benefit", numeric=(0, 2, 3))


def _interactions_table(x: LearnerExplanation) -> str:
    rows = [
        [
            int(r.rank),
            r.covariate,
            _f(r.mean_abs_interaction, ".2f"),
            _f(r.mean_interaction, "+.2f"),
        ]
        for r in x.interactions.itertuples()
    ]
    head = ["Rank", "Covariate", "Mean |interaction| (days)", "Mean interaction (days)"]
    caption = f"{x.label}: SHAP interactions between the arm and each covariate"
    return _table(head, rows, caption=caption, numeric=(0, 2, 3))


def _crossover_table(effect: ModifierEffect, level: str) -> str:
    m = effect.modifier
    supported = "yes" if effect.supported else "no"
    rows = [
        [
            "Test of effect modification (gates the claim)",
            effect.dependence_test,
            _p(effect.dependence_p),
        ],
        [
            f"Linear trend of benefit per unit of {m} (HC3)",
            f"{effect.trend_slope:.4g} {effect.unit} per unit",
            _p(effect.trend_p),
        ],
        ["Crossover (smoothed benefit changes sign)", _crossover_text(effect), ""],
        [f"Bootstrap {level} interval of the crossover", _crossover_ci(effect), ""],
        ["Replicates crossing in the same direction", f"{effect.crossing_share:.0%}", ""],
        ["Crossover supported by the data", supported, ""],
    ]
    return _table(["Quantity", "Value", "p"], rows, caption=f"Crossover along {m}", numeric=(2,))


def _crossover_text(effect: ModifierEffect) -> str:
    if not math.isfinite(effect.crossover):
        return f"none within the central 95% of {effect.modifier}"
    what = "ends" if effect.direction == "ends" else "begins"
    return f"{effect.modifier} {number(effect.crossover)} (benefit {what} there)"


def _crossover_ci(effect: ModifierEffect) -> str:
    if not math.isfinite(effect.crossover):
        return MISSING
    return f"{bound(effect.ci_low)} to {bound(effect.ci_high)}"


def _sides_table(effect: ModifierEffect, level: str, alpha: float) -> str:
    rows = [_side_row(effect.modifier, s, alpha) for s in effect.sides]
    head = [
        "Side of the crossover",
        "Patients",
        "Events",
        "control / treated",
        f"HR, treated vs control ({level} CI)",
        "p",
        "Note",
    ]
    caption = f"Unadjusted hazard ratio on each side of the crossover ({effect.modifier})"
    return _table(head, rows, caption=caption, numeric=(1, 2, 3, 4, 5))


def _side_row(name: str, s: Stratum, alpha: float) -> list:
    return [
        f"{name} {s.label}",
        s.n,
        s.events,
        f"{s.events_control} / {s.events_treated}",
        _hr(s.hr, with_p=False),
        _p(s.hr.p, alpha),
        s.note,
    ]


def _analysis_table(table: pd.DataFrame) -> str:
    rows = []
    for r in table.itertuples():
        if r.measure == "HR":
            estimate = _hr(_HR(r.estimate, r.ci_low, r.ci_high, r.p), with_p=False)
        else:
            estimate = _interval(r.estimate, r.ci_low, r.ci_high, ".4g")
        rows.append([r.analysis, r.term, r.measure, r.n, r.events, estimate, _p(r.p), r.note])
    head = ["Analysis", "Term", "Measure", "n", "Events", "Estimate (CI)", "p", "Note"]
    return _table(head, rows, caption="All estimates of the trial analysis", numeric=(3, 4, 5, 6))


# ------------------------------------------------------------------ formatting


class _HR:
    """A hazard ratio from a table row (the fields :func:`_hr` reads)."""

    def __init__(self, estimate, ci_low, ci_high, p):
        self.estimate, self.ci_low, self.ci_high, self.p = estimate, ci_low, ci_high, p


def _e(value: object) -> str:
    """Text for HTML: every user-supplied string goes through here."""
    return html.escape(str(value), quote=True)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _f(value, spec: str) -> str:
    """A number in format ``spec``; a dash when missing."""
    return format(float(value), spec) if _finite(value) else MISSING


def _hr(hr: HazardRatio, with_p: bool = True) -> str:
    """A hazard ratio with its CI (as the terminal shows it), and its p."""
    if not _finite(hr.estimate):
        return "not estimable"
    return hazard_ratio(hr) + (f", {_p_is(hr.p)}" if with_p else "")


def _p(p: float, alpha: float = 0.05, digits: int = 2) -> str:
    """A p-value to ``digits`` significant digits, one more if rounding would cross ``alpha``.

    Below 0.001: "< 0.001"; missing: a dash.
    """
    if not _finite(p):
        return MISSING
    if p < 0.001:
        return "< 0.001"
    text = f"{p:.{digits}g}"
    return f"{p:.{digits + 1}g}" if (float(text) < alpha) != (p < alpha) else text


def _p_is(p: float, alpha: float = 0.05, digits: int = 2) -> str:
    """ "p = 0.34" or "p < 0.001", for sentences."""
    text = _p(p, alpha, digits)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _interval(estimate, low, high, spec: str = ".1f") -> str:
    if not _finite(estimate):
        return MISSING
    if not (_finite(low) and _finite(high)):
        return format(float(estimate), spec)
    return f"{estimate:{spec}} ({low:{spec}} to {high:{spec}})"


def _with_se(metrics: Mapping[str, float], key: str, spec: str, se: str | None = None) -> str:
    value, error = metrics.get(key, math.nan), metrics.get(se or f"{key}_se", math.nan)
    if not _finite(value):
        return MISSING
    return f"{value:{spec}} ({_f(error, spec)})"


def _mean_sd(metrics: Mapping[str, float], key: str) -> str:
    mean, sd = metrics.get(key, math.nan), metrics.get(f"{key}_sd", math.nan)
    if not _finite(mean):
        return MISSING
    return f"{mean:.3f} \u00b1 {sd:.3f}" if _finite(sd) else f"{mean:.3f}"


def _verdict_sentence(evaluation: Evaluation, alpha: float, n: int) -> str:
    """The run's heterogeneity verdict, stated without overclaiming either way."""
    p, method = evaluation.heterogeneity_p, evaluation.heterogeneity_method
    k = len(evaluation.learners)
    if not _finite(p):
        return f"Heterogeneity of the treatment effect could not be tested ({method})."
    level = f"{100 * alpha:g}%"
    test = f"{_p_is(p, alpha, digits=3)}; {k} learner(s); {method}"
    if p < alpha:
        return (
            f"Heterogeneity: the treatment effect differs between patients beyond what chance "
            f"explains at the {level} level ({test})."
        )
    return (
        f"Heterogeneity: no evidence at the {level} level that the treatment effect differs "
        f"between patients ({test}). This does not show that every patient "
        f"benefits alike: with {n} patients the test may lack power, so individual benefit "
        f"estimates are exploratory."
    )


# ------------------------------------------------------------------ document


def _table(head: Sequence[str], rows: Sequence[Sequence], *, caption: str, numeric=()) -> str:
    """An HTML table; every cell is escaped, ``numeric`` columns are right-aligned."""

    def cell(tag: str, j: int, value) -> str:
        kind = ' class="num"' if j in numeric else ""
        return f"<{tag}{kind}>{_e(value)}</{tag}>"

    header = "".join(cell("th", j, h) for j, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", j, v) for j, v in enumerate(row)) + "</tr>" for row in rows
    )
    return (
        f'<div class="scroll"><table><caption>{_e(caption)}</caption>'
        f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _grid(cards: Iterable[str]) -> str:
    """Blocks side by side on a wide screen, one below the other on paper."""
    return '<div class="grid">' + "".join(f'<div class="card">{c}</div>' for c in cards) + "</div>"


def _p_html(text: str, *, muted: bool = False) -> str:
    return f'<p class="muted">{_e(text)}</p>' if muted else f"<p>{_e(text)}</p>"


def _footer() -> str:
    return (
        f"<footer>Made by stratify {_e(__version__)}. A self-contained file: no scripts and "
        f"nothing loaded from elsewhere; figures are embedded PNG images.</footer>"
    )


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n"
    )


def _check_dpi(dpi) -> int:
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 30 <= dpi <= 600:
        raise StratifyInputError(f"dpi must be an integer from 30 to 600 (got {dpi!r})")
    return dpi


def _check_figures(figures) -> None:
    from matplotlib.figure import Figure

    if not isinstance(figures, Mapping):
        raise StratifyInputError("figures must map artifact paths to matplotlib figures")
    for path, figure in figures.items():
        if not isinstance(figure, Figure):
            raise StratifyInputError(f"figures['{path}'] is not a matplotlib figure")


__all__ = ["DPI", "build_report", "figure_data_uri", "write_report"]
