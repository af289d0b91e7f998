"""What a run says in words: the one-sentence headline and the summary paragraph.

The headline is what a user scanning runs in the MLflow UI reads first (the
run's description starts with it): the effect modifier's rank for benefit, the
crossover with its interval (or that the data do not support one), and the
heterogeneity verdict. The paragraph after it gives the trial analysis behind
the headline.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from stratify.formatting import number

if TYPE_CHECKING:
    from stratify.data import TrialData
    from stratify.explain.results import Explained, LearnerExplanation
    from stratify.trial import TrialAnalysis
    from stratify.validation.evaluation import Evaluation, LearnerReport


def headline(
    analysis: TrialAnalysis,
    data: TrialData,
    evaluation: Evaluation | None = None,
    explained: Explained | None = None,
) -> str:
    """One sentence: the modifier's role, the crossover and the heterogeneity verdict.

    Parameters
    ----------
    analysis : TrialAnalysis
        The trial analysis (used alone when there are no learners).
    data : TrialData
        The analysed trial (modifier name, number of covariates).
    evaluation : Evaluation, optional
        The cross-fitted learners and their heterogeneity verdict.
    explained : Explained, optional
        Their explanations and the modifier analysis.

    Returns
    -------
    str
        E.g. "csf_pnfh ranks 2nd of 5 for benefit (t_learner); benefit ends at
        csf_pnfh 3,736 [891.7–6,089]; heterogeneity p = 0.87 (5 learners)."
    """
    parts = []
    if explained is not None:
        rank = explained.metrics().get("modifier_rank", math.nan)
        if data.modifier and math.isfinite(rank):
            parts.append(
                f"{data.modifier} ranks {ordinal(rank)} of {data.X.shape[1]} for benefit "
                f"({explained.explained_learner})"
            )
        parts += _crossover_part(explained)
    if evaluation is not None:
        parts.append(
            f"heterogeneity p = {evaluation.heterogeneity_p:.2g} "
            f"({len(evaluation.learners)} learner{'s' if len(evaluation.learners) > 1 else ''})"
        )
    if not parts:
        m = analysis.metrics()
        parts.append(
            f"Unadjusted HR {m['hr_unadjusted']:.2f} ({m['hr_unadjusted_ci_low']:.2f}–"
            f"{m['hr_unadjusted_ci_high']:.2f}), log-rank p = {m['logrank_p']:.2g}"
        )
        if "interaction_p" in m:
            parts.append(f"arm × {data.modifier} interaction p = {m['interaction_p']:.2g}")
    return "; ".join(parts) + "."  # not capitalised: it may start with a column name


def learner_headline(
    label: str, report: LearnerReport, explanation: LearnerExplanation | None, n_features: int
) -> str:
    """One sentence for a learner's run: modifier rank, discrimination, heterogeneity test.

    Parameters
    ----------
    label : str
        The learner's run label.
    report : LearnerReport
        Its cross-fitted evaluation.
    explanation : LearnerExplanation, optional
        Its SHAP explanation.
    n_features : int
        Number of covariates (for "ranks k of p").

    Returns
    -------
    str
    """
    m = report.metrics
    parts = [label]
    rank = math.nan if explanation is None else explanation.metrics()["modifier_rank"]
    if math.isfinite(rank):
        parts[0] += f": {explanation.modifier} ranks {ordinal(rank)} of {n_features} for benefit"
    parts.append(f"mean benefit {m['cate_rmst_mean']:+.1f} d")
    if math.isfinite(m.get("c_index_harrell", math.nan)):
        parts.append(f"C {m['c_index_harrell']:.3f}")
    parts.append(f"heterogeneity p = {m['heterogeneity_p']:.2g}")
    return "; ".join(parts) + "."


def describe(
    analysis: TrialAnalysis,
    data: TrialData,
    evaluation: Evaluation | None = None,
    explained: Explained | None = None,
) -> str:
    """The run's description: :func:`headline`, then a paragraph on the trial analysis.

    Parameters
    ----------
    analysis, data, evaluation, explained
        As for :func:`headline`.

    Returns
    -------
    str
        Markdown: the headline, a blank line, the paragraph.
    """
    m = analysis.metrics()
    text = (
        f"{data.n_patients} patients, {data.n_events} events. Unadjusted HR "
        f"{m['hr_unadjusted']:.2f} ({m['hr_unadjusted_ci_low']:.2f}–"
        f"{m['hr_unadjusted_ci_high']:.2f}), log-rank p = {m['logrank_p']:.3g}; adjusted HR "
        f"{m['hr_adjusted']:.2f} ({m['hr_adjusted_ci_low']:.2f}–{m['hr_adjusted_ci_high']:.2f})."
    )
    if "interaction_hr_per_unit" in m:
        text += (
            f" Arm × {data.modifier} interaction: HR {m['interaction_hr_per_unit']:.5g} per unit, "
            f"p = {m['interaction_p']:.3g}."
        )
    if evaluation is not None:
        text += (
            f" Heterogeneity across {len(evaluation.learners)} learner(s): "
            f"p = {evaluation.heterogeneity_p:.3g} ({evaluation.heterogeneity_method})."
        )
    if explained is not None and explained.finding:
        text += f" {explained.finding}"
    return f"{headline(analysis, data, evaluation, explained)}\n\n{text}"


def ordinal(k: float) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    n = int(k)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _crossover_part(explained: Explained) -> list[str]:
    effect = explained.modifier
    if effect is None:
        return ["modifier analysis not done"] if explained.modifier_skipped else []
    if not effect.supported:
        return [f"no crossover supported along {effect.modifier}"]
    what = "ends" if effect.direction == "ends" else "begins"
    return [
        f"benefit {what} at {effect.modifier} {number(effect.crossover)} "
        f"[{number(effect.ci_low)}–{number(effect.ci_high)}]"
    ]


__all__ = ["describe", "headline", "learner_headline", "ordinal"]
