"""The learner comparison, the run's heterogeneity verdict and calibration for benefit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from stratify.formatting import MISSING, fixed, interval
from stratify.rendering import DPI
from stratify.report.document import escape, figure, grid, p_cell, paragraph, table
from stratify.report.run import CALIBRATION_FIGURE
from stratify.report.summary import verdict

if TYPE_CHECKING:
    from stratify.report.run import RunResult
    from stratify.validation.evaluation import LearnerReport


def learners(run: RunResult, dpi: int = DPI) -> str:
    """The learner comparison, the heterogeneity verdict, calibration per learner."""
    evaluation = run.evaluation
    if evaluation is None:
        return paragraph(
            "No learners were configured (the config's learners list is empty), so there is "
            "no learner comparison, heterogeneity verdict or calibration for benefit."
        )
    cv = run.config.cv
    intro = (
        f"{len(evaluation.learners)} learner(s), cross-fitted with {cv.folds} folds \u00d7 "
        f"{cv.repeats} repeat(s) stratified on arm \u00d7 event: every patient's estimated "
        f"benefit (RMST difference to {run.horizon_text} days, treated \u2212 control) comes from "
        f"models that did not see that patient. Benefit metrics score these out-of-fold "
        f"estimates against the cross-fitted doubly robust scores."
    )
    stated = verdict(evaluation, run.analysis.alpha, run.data.n_patients)
    out = paragraph(intro) + f'<p class="verdict"><strong>{escape(stated)}</strong></p>'
    out += _benefit_table(run) + _risk_table(run)
    out += "<h3>Calibration for benefit</h3>" + paragraph(
        "Patients are grouped by their predicted benefit; within each group the observed "
        "benefit is the Kaplan\u2013Meier RMST difference between the arms. Points near the "
        "diagonal are well calibrated."
    )
    return out + grid(
        _calibration(run, label, report, dpi) for label, report in evaluation.learners.items()
    )


def _learner_name(run: RunResult, label: str) -> str:
    """The label, and the learner and its parameters when they say more."""
    spec = next((s for s in run.config.learners if s.run_label == label), None)
    if spec is None:
        return label
    params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
    model = spec.name + (f" ({params})" if params else "")
    return label if model == label else f"{label}: {model}"


def _benefit_table(run: RunResult) -> str:
    used = run.config.heterogeneity.test
    reports = run.evaluation.learners
    truth = all("cate_rmse" in r.metrics for r in reports.values())
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
    for label, report in reports.items():
        m = report.metrics
        row = [
            _learner_name(run, label),
            fixed(m["cate_rmst_mean"], "+.1f"),
            fixed(m["cate_rmst_sd"], ".1f"),
            _with_se(m, "rate_autoc", ".1f"),
            _with_se(m, "rate_qini", ".1f"),
            fixed(m["c_for_benefit"], ".3f"),
            _with_se(m, "blp_slope", ".2f", se="blp_slope_se"),
            p_cell(m["heterogeneity_p_blp"], digits=3),
            p_cell(m["heterogeneity_p_rate"], digits=3),
        ]
        if truth:
            row += [fixed(m["cate_rmse"], ".1f"), fixed(m["cate_spearman"], ".2f")]
        rows.append(row)
    caption = "Estimated benefit (out-of-fold) and tests of heterogeneity, by learner"
    numeric = tuple(range(2, len(head)))
    out = table(head, rows, caption=caption, numeric=numeric)
    if truth:
        out += paragraph(
            "The data are simulated: the last two columns compare each learner's estimates "
            "with every patient's true benefit (never used for fitting).",
            muted=True,
        )
    return out


def _risk_table(run: RunResult) -> str:
    keys = ("c_index_harrell", "c_index_uno", "ibs")
    rows = [
        [label, *(_mean_sd(report.metrics, key) for key in keys)]
        for label, report in run.evaluation.learners.items()
    ]
    head = ["Learner", "Harrell's C", "Uno's C", "Integrated Brier score"]
    caption = "Risk prediction on held-out folds (mean \u00b1 SD over folds \u00d7 repeats)"
    return table(head, rows, caption=caption, numeric=(1, 2, 3))


def _calibration(run: RunResult, label: str, report: LearnerReport, dpi: int) -> str:
    """A learner's calibration table, after its figure when the run drew one."""
    groups = report.calibration
    caption = (
        f"{label}: observed vs predicted benefit (RMST difference to {run.horizon_text} days) in "
        f"{len(groups)} groups of predicted benefit, with {run.level_text} CIs of the observed "
        f"benefit; dotted: perfect calibration."
    )
    rows = [
        [
            int(r.group),
            f"{int(r.n)} ({int(r.n_treated)})",
            f"{fixed(r.predicted_mean, '+.1f')} ({fixed(r.predicted_min, '+.1f')} to "
            f"{fixed(r.predicted_max, '+.1f')})",
            interval(r.observed, r.ci_low, r.ci_high, "+.1f"),
        ]
        for r in groups.itertuples()
    ]
    head = [
        "Group",
        "Patients (treated)",
        "Predicted, mean (range)",
        f"Observed ({run.level_text} CI)",
    ]
    drawn = run.drawn.get(label, {}).get(CALIBRATION_FIGURE)
    return (
        f"<h4>{escape(label)}</h4>"
        + ("" if drawn is None else figure(drawn, caption, dpi))
        + table(head, rows, caption=f"{label}: benefit by group (days)", numeric=(0, 1, 2, 3))
    )


def _with_se(metrics: Mapping[str, float], key: str, spec: str, se: str | None = None) -> str:
    value = fixed(metrics.get(key, math.nan), spec)
    if value == MISSING:
        return MISSING
    return f"{value} ({fixed(metrics.get(se or f'{key}_se', math.nan), spec)})"


def _mean_sd(metrics: Mapping[str, float], key: str) -> str:
    mean, sd = (fixed(metrics.get(k, math.nan), ".3f") for k in (key, f"{key}_sd"))
    return mean if MISSING in (mean, sd) else f"{mean} \u00b1 {sd}"


__all__ = ["learners"]
