"""SHAP of every learner's benefit and the effect modifier: curve, crossover, each side's HR."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from stratify.formatting import MISSING, bound, fixed, hazard_ratio, number
from stratify.rendering import DPI
from stratify.report.document import escape, figure, grid, p_cell, p_phrase, paragraph, table
from stratify.report.run import CALIBRATION_FIGURE, MODIFIER_FIGURES
from stratify.report.summary import finding

if TYPE_CHECKING:
    from stratify.explain.modifier import ModifierEffect
    from stratify.explain.results import LearnerExplanation
    from stratify.report.run import RunResult
    from stratify.trial.strata import Stratum


def explain(run: RunResult, dpi: int = DPI) -> str:
    """SHAP of every learner's benefit and the modifier analysis, or why there are none."""
    explained = run.explained
    if run.evaluation is None:
        return paragraph(
            "No learners were configured, so there is nothing to explain: SHAP and the "
            "modifier analysis need cross-fitted learners."
        )
    if explained is None:
        reason = (
            "explanations were switched off (explain.enabled: false)"
            if not run.config.explain.enabled
            else "no explanations were computed for this run"
        )
        return paragraph(f"Not reported: {reason}, so there is no SHAP or modifier analysis.")
    out = "<h3>What drives estimated benefit (SHAP)</h3>" + _ranks_table(run)
    out += grid(_learner_shap(run, x, dpi) for x in explained.learners.values())
    return out + _modifier_section(run, dpi)


def _ranks_table(run: RunResult) -> str:
    explained = run.explained
    rows = []
    for label, x in explained.learners.items():
        lead = " (reported on the run)" if label == explained.explained_learner else ""
        top = x.importance()["covariate"].iloc[0]
        ranks = x.metrics()
        ranks = [fixed(ranks[k], ".0f") for k in ("modifier_rank", "modifier_rank_surv")]
        rows.append([label + lead, x.benefit.method, top, *ranks])
    p = len(run.data.X.columns)
    m = run.data.modifier or "the modifier"
    head = [
        "Learner",
        "SHAP method",
        "Top covariate",
        f"Rank of {m}, RMST benefit (of {p})",
        f"Rank of {m}, survival benefit (of {p})",
    ]
    intro = paragraph(
        "Each learner is refitted once on the whole trial and its estimated benefit is "
        "explained with SHAP: a covariate's SHAP value is how much it moves one patient's "
        "estimated benefit away from the average. Covariates are ranked by mean |SHAP|."
    )
    return intro + table(
        head, rows, caption="Covariates driving benefit, by learner", numeric=(3, 4)
    )


def _learner_shap(run: RunResult, x: LearnerExplanation, dpi: int) -> str:
    """A learner's SHAP figures (as the run drew them) and its importance tables."""
    captions = {
        "figures/shap_benefit.png": (
            f"{x.label}: SHAP values of estimated benefit (RMST to {run.horizon_text} days), one "
            f"point per patient, coloured by the covariate's value ({x.benefit.method})."
        ),
        "figures/shap_time.png": (
            f"{x.label}: mean |SHAP| of the survival difference over time, for the "
            f"covariates that matter most."
        ),
    }
    out = f"<h4>{escape(x.label)}</h4>"
    for path, fig in run.drawn.get(x.label, {}).items():
        if path != CALIBRATION_FIGURE:
            out += figure(fig, captions.get(path, f"{x.label}: {path}."), dpi)
    out += _importance_table(x, run.horizon_text)
    if x.interactions is not None:
        out += _interactions_table(x)
    return out


def _modifier_section(run: RunResult, dpi: int) -> str:
    explained = run.explained
    if run.data.modifier is None:
        return "<h3>Effect modifier</h3>" + paragraph(
            "No effect modifier was configured (data.modifier), so there is no crossover analysis."
        )
    out = f"<h3>Effect modifier: {escape(run.data.modifier)}</h3>"
    found = finding(explained)
    if found:
        out += f'<p class="finding"><strong>{escape(found)}</strong></p>'
    effect = explained.modifier
    if effect is None:
        return out
    out += paragraph(
        f"Estimated benefit is smoothed against {effect.modifier} (LOWESS of the cross-"
        f"fitted doubly robust scores; {run.config.explain.n_bootstrap} bootstrap "
        f"replicates). A crossover is claimed only when the pre-specified test of effect "
        f"modification rejects, the smoothed benefit changes sign inside the central 95% of "
        f"{effect.modifier} and its whole bootstrap interval lies inside that range."
    )
    out += _gate_note(run, effect)
    for fig in run.drawn.get(MODIFIER_FIGURES, {}).values():
        out += figure(fig, _modifier_caption(run), dpi)
    out += _crossover_table(effect, run.level_text, run.analysis.alpha)
    if effect.sides:
        out += _sides_table(effect, run.level_text, run.analysis.alpha)
    return out


def _gate_note(run: RunResult, effect: ModifierEffect) -> str:
    p = run.evaluation.heterogeneity_p
    if not effect.supported or p < run.analysis.alpha:
        return ""
    return paragraph(
        f"Note: the learners' heterogeneity test above does not reject "
        f"({p_phrase(p, digits=3)}); the crossover rests on the "
        f"pre-specified {effect.dependence_test} ({p_phrase(effect.dependence_p)}), a "
        f"test of one modifier with more power than an omnibus test over all covariates."
    )


def _modifier_caption(run: RunResult) -> str:
    explained = run.explained
    effect = explained.modifier
    caption = (
        f"Estimated benefit (RMST difference to {run.horizon_text} days) against "
        f"{effect.modifier}: LOWESS of the doubly robust scores with its pointwise 95% "
        f"bootstrap band, each learner's smoothed out-of-fold estimates (thin lines) and the "
        f"crossover (shaded: its interval, when supported)."
    )
    if not run.config.tracking.log_patient_level:
        return caption
    return caption + (
        f" Right: {explained.explained_learner}'s SHAP values for {effect.modifier}, one "
        f"point per patient."
    )


def _importance_table(x: LearnerExplanation, horizon: str) -> str:
    rows = [
        [
            int(r.rank),
            r.covariate,
            fixed(r.mean_abs_shap_rmst, ".2f"),
            fixed(100 * r.mean_abs_shap_surv, ".2f"),
        ]
        for r in x.importance().itertuples()
    ]
    head = [
        "Rank",
        "Covariate",
        "Mean |SHAP|, RMST benefit (days)",
        f"Mean |SHAP|, survival benefit at {horizon} days (percentage points)",
    ]
    return table(head, rows, caption=f"{x.label}: importance for benefit", numeric=(0, 2, 3))


def _interactions_table(x: LearnerExplanation) -> str:
    rows = [
        [
            int(r.rank),
            r.covariate,
            fixed(r.mean_abs_interaction, ".2f"),
            fixed(r.mean_interaction, "+.2f"),
        ]
        for r in x.interactions.itertuples()
    ]
    head = ["Rank", "Covariate", "Mean |interaction| (days)", "Mean interaction (days)"]
    caption = f"{x.label}: SHAP interactions between the arm and each covariate"
    return table(head, rows, caption=caption, numeric=(0, 2, 3))


def _crossover_table(effect: ModifierEffect, level: str, alpha: float) -> str:
    m = effect.modifier
    supported = "yes" if effect.supported else "no"
    rows = [
        [
            "Test of effect modification (gates the claim)",
            effect.dependence_test,
            p_cell(effect.dependence_p, alpha),
        ],
        [
            f"Linear trend of benefit per unit of {m} (HC3)",
            f"{effect.trend_slope:.4g} {effect.unit} per unit",
            p_cell(effect.trend_p, alpha),
        ],
        ["Crossover (smoothed benefit changes sign)", _crossover_text(effect), ""],
        [f"Bootstrap {level} interval of the crossover", _crossover_ci(effect), ""],
        ["Replicates crossing in the same direction", f"{effect.crossing_share:.0%}", ""],
        ["Crossover supported by the data", supported, ""],
    ]
    return table(["Quantity", "Value", "p"], rows, caption=f"Crossover along {m}", numeric=(2,))


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
    return table(head, rows, caption=caption, numeric=(1, 2, 3, 4, 5))


def _side_row(name: str, s: Stratum, alpha: float) -> list:
    return [
        f"{name} {s.label}",
        s.n,
        s.events,
        f"{s.events_control} / {s.events_treated}",
        hazard_ratio(s.hr),
        p_cell(s.hr.p, alpha),
        s.note,
    ]


__all__ = ["explain"]
