"""The trial summary (arms, treatment effect, strata, every estimate) and the analysis figures."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

from stratify.formatting import DASH, MISSING, hazard_ratio, interval, names
from stratify.rendering import DPI
from stratify.report.document import escape, figure, p_cell, paragraph, table
from stratify.trial import HazardRatio

if TYPE_CHECKING:
    import pandas as pd

    from stratify.report.run import RunResult


def trial(run: RunResult) -> str:
    """Patients and arms, the estimates by arm, the treatment effect, strata, all rows."""
    data, a = run.data, run.analysis
    adjusted = ", ".join(a.cox_adjusted.terms[1:]) or "(nothing)"
    intro = (
        f"{data.summary()}. Treated arm: {a.arm_labels[1]}; control arm: {a.arm_labels[0]}. "
        f"Adjusted models adjust for {adjusted}."
    )
    if data.modifier:
        intro += f" Effect modifier: {data.modifier}."
    intro += f" Intervals are {run.level_text} confidence intervals; p-values are two-sided."
    out = f"<p>{escape(intro)}</p>" + _arms_table(run) + _effects_table(run)
    if a.strata:
        out += _strata_table(run)
    out += "<h3>All estimates</h3>" + paragraph(
        "Every row of the run's tables/trial_analysis.csv, including each covariate of the "
        "adjusted Cox models (hazard ratios per unit)."
    )
    return out + _analysis_table(a.table(), a.alpha)


def _arms_table(run: RunResult) -> str:
    a = run.analysis
    z = NormalDist().inv_cdf(1 - a.alpha / 2)
    rows = []
    for role, arm in (("control", a.control), ("treated", a.treated)):
        rmst = interval(arm.rmst, arm.rmst - z * arm.rmst_se, arm.rmst + z * arm.rmst_se)
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
        f"KM survival at {run.horizon_text} days ({run.level_text} CI)",
        f"RMST to {run.horizon_text} days, days ({run.level_text} CI)",
    ]
    return table(head, rows, caption="Outcomes by arm", numeric=(1, 2, 3, 4))


def _effects_table(run: RunResult) -> str:
    a = run.analysis
    d = a.rmst_diff
    adjusted = names(a.cox_adjusted.terms[1:])
    rows = [
        [
            "RMST difference, treated \u2212 control (days)",
            f"{d.estimate:+.1f} ({d.ci_low:+.1f} to {d.ci_high:+.1f})",
            p_cell(d.p, a.alpha),
        ],
        [
            "Log-rank test (1 df)",
            f"\u03c7\u00b2 = {a.logrank_chisq:.2f}",
            p_cell(a.logrank_p, a.alpha),
        ],
        [
            "Cox HR, treated vs control, unadjusted",
            hazard_ratio(a.hr_unadjusted),
            p_cell(a.hr_unadjusted.p, a.alpha),
        ],
        [
            f"Cox HR, treated vs control, adjusted for {adjusted}",
            hazard_ratio(a.hr_adjusted),
            p_cell(a.hr_adjusted.p, a.alpha),
        ],
    ]
    if a.cox_interaction is not None:
        inter, at_zero = a.interaction_hr, a.hr_interaction_arm
        rows += [
            [
                f"Arm \u00d7 {a.modifier} interaction: ratio of HRs per unit of {a.modifier}",
                hazard_ratio(inter),
                p_cell(inter.p, a.alpha),
            ],
            [
                f"Arm HR at {a.modifier} = 0 (interaction model)",
                hazard_ratio(at_zero),
                p_cell(at_zero.p, a.alpha),
            ],
        ]
    head = ["Comparison", f"Estimate ({run.level_text} CI)", "p"]
    return table(head, rows, caption="Treatment effect", numeric=(1, 2))


def _strata_table(run: RunResult) -> str:
    a = run.analysis
    rows = [
        [
            f"{a.modifier} {s.label}",
            s.n,
            f"{s.n_control} / {s.n_treated}",
            s.events,
            f"{s.events_control} / {s.events_treated}",
            hazard_ratio(s.hr),
            p_cell(s.hr.p, a.alpha),
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
        f"HR ({run.level_text} CI)",
        "p",
        "Note",
    ]
    cuts = ", ".join(f"{c:g}" for c in a.cutpoints)
    caption = f"Unadjusted hazard ratio within {a.modifier} strata (cutpoints {cuts})"
    return table(head, rows, caption=caption, numeric=(1, 2, 3, 4, 5, 6))


def _analysis_table(frame: pd.DataFrame, alpha: float) -> str:
    rows = []
    for r in frame.itertuples():
        if r.measure == "HR":
            estimate = hazard_ratio(HazardRatio(r.estimate, r.ci_low, r.ci_high, r.p))
        else:
            estimate = interval(r.estimate, r.ci_low, r.ci_high, ".4g")
        rows.append(
            [r.analysis, r.term, r.measure, r.n, r.events, estimate, p_cell(r.p, alpha), r.note]
        )
    head = ["Analysis", "Term", "Measure", "n", "Events", "Estimate (CI)", "p", "Note"]
    return table(head, rows, caption="All estimates of the trial analysis", numeric=(3, 4, 5, 6))


def analysis_figures(run: RunResult, dpi: int = DPI) -> str:
    """Every figure of the classical analysis, with its caption."""
    if not run.figures:
        return paragraph("The analysis produced no figures.")
    return "".join(
        figure(fig, _analysis_caption(run, path), dpi) for path, fig in run.figures.items()
    )


def _analysis_caption(run: RunResult, path: str) -> str:
    a = run.analysis
    control, treated = a.arm_labels
    m, h, level = a.modifier, run.horizon_text, run.level_text
    cuts = ", ".join(f"{c:g}" for c in a.cutpoints)
    ticks = "every patient" if run.config.tracking.log_patient_level else "its deciles"
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


__all__ = ["analysis_figures", "trial"]
