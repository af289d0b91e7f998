"""What a run says in words: the headline, the summary paragraph and the findings.

The headline is what a user scanning runs in the MLflow UI reads first (the
run's description starts with it): the effect modifier's rank for benefit, the
crossover with its interval (or that the data do not support one), and the
heterogeneity verdict. The paragraph after it gives the trial analysis behind
the headline. The findings (:func:`overall`, :func:`verdict`, :func:`finding`
and :func:`modifier_statement`) are the sentences the report, the terminal and
the run's tags state; the analyses they word (:mod:`stratify.explain`,
:mod:`stratify.validation`, :mod:`stratify.trial`) hold numbers only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from stratify.formatting import bound, hazard_ratio, number, p_is
from stratify.report import document

if TYPE_CHECKING:
    from stratify.explain.modifier import ModifierEffect
    from stratify.explain.results import Explained, LearnerExplanation
    from stratify.report.run import RunResult
    from stratify.trial.strata import Stratum
    from stratify.validation.evaluation import Evaluation, LearnerReport


def headline(run: RunResult) -> str:
    """One sentence: the modifier's role, the crossover and the heterogeneity verdict.

    Parameters
    ----------
    run : RunResult
        What the run produced: the trial analysis alone when there are no
        learners, else the heterogeneity verdict of ``run.evaluation`` and the
        modifier analysis of ``run.explained``.

    Returns
    -------
    str
        E.g. "csf_pnfh ranks 2nd of 5 for benefit (t_learner); benefit ends at
        csf_pnfh 3,736 [891.7–6,089]; heterogeneity p = 0.87 (5 learners)."
    """
    analysis, data, evaluation, explained = run.analysis, run.data, run.evaluation, run.explained
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
            f"heterogeneity {p_is(evaluation.heterogeneity_p)} "
            f"({len(evaluation.learners)} learner{'s' if len(evaluation.learners) > 1 else ''})"
        )
    if not parts:
        parts.append(
            f"Unadjusted HR {hazard_ratio(analysis.hr_unadjusted)}, "
            f"log-rank {p_is(analysis.logrank_p)}"
        )
        if analysis.cox_interaction is not None:
            parts.append(f"arm × {data.modifier} interaction {p_is(analysis.interaction_hr.p)}")
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
    parts.append(f"heterogeneity {p_is(m['heterogeneity_p'])}")
    return "; ".join(parts) + "."


def describe(run: RunResult) -> str:
    """The run's description: :func:`headline`, then a paragraph on the trial analysis.

    Parameters
    ----------
    run : RunResult
        As for :func:`headline`.

    Returns
    -------
    str
        Markdown: the headline, a blank line, the paragraph.
    """
    analysis, data, evaluation = run.analysis, run.data, run.evaluation
    text = (
        f"{data.n_patients} patients, {data.n_events} events. Unadjusted HR "
        f"{hazard_ratio(analysis.hr_unadjusted)}, log-rank {p_is(analysis.logrank_p, 3)}; "
        f"adjusted HR {hazard_ratio(analysis.hr_adjusted)}."
    )
    if analysis.cox_interaction is not None:
        inter = analysis.interaction_hr
        text += (
            f" Arm × {data.modifier} interaction: HR {hazard_ratio(inter)} per unit, "
            f"{p_is(inter.p, 3)}."
        )
    if evaluation is not None:
        text += (
            f" Heterogeneity across {len(evaluation.learners)} learner(s): "
            f"{p_is(evaluation.heterogeneity_p, 3)} ({evaluation.heterogeneity_method})."
        )
    if run.explained is not None and finding(run.explained):
        text += f" {finding(run.explained)}"
    return f"{headline(run)}\n\n{text}"


def overall(run: RunResult) -> str:
    """The overall treatment effect: hazard ratio, log-rank verdict, survival and RMST."""
    a = run.analysis
    control, treated = a.control, a.treated
    d = a.rmst_diff
    significant = "" if a.logrank_p < a.alpha else "not "
    return (
        f"Overall, hazard ratio {treated.label} (treated) vs {control.label} (control) "
        f"{hazard_ratio(a.hr_unadjusted)}, log-rank {document.p_phrase(a.logrank_p, a.alpha)} "
        f"({significant}statistically significant at the {100 * a.alpha:g}% level); survival "
        f"at {run.horizon_text} days {treated.surv:.1%} vs {control.surv:.1%}; RMST difference "
        f"{d.estimate:+.1f} days ({d.ci_low:+.1f} to {d.ci_high:+.1f})."
    )


def verdict(evaluation: Evaluation, alpha: float, n: int) -> str:
    """The run's heterogeneity verdict, stated without overclaiming either way."""
    p, method = evaluation.heterogeneity_p, evaluation.heterogeneity_method
    k = len(evaluation.learners)
    if not math.isfinite(p):
        return f"Heterogeneity of the treatment effect could not be tested ({method})."
    level = f"{100 * alpha:g}%"
    test = f"{document.p_phrase(p, alpha, 3)}; {k} learner(s); {method}"
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


def finding(explained: Explained) -> str:
    """One sentence on the modifier: :func:`modifier_statement`, or why there is none."""
    if explained.modifier is not None:
        return modifier_statement(explained.modifier)
    if explained.modifier_skipped:
        return f"Modifier analysis not done: {explained.modifier_skipped}"
    return ""


def modifier_statement(effect: ModifierEffect) -> str:
    """What the modifier analysis found, in one sentence: the crossover, or why it is not claimed.

    Parameters
    ----------
    effect : ModifierEffect
        From :func:`stratify.explain.modifier.modifier_effect`.

    Returns
    -------
    str
        E.g. "Estimated benefit ends at csf_pnfh 3,736 [95% CI 891.7–6,089]; HR 0.59
        (0.35–1.00) for csf_pnfh < 3736, HR 1.50 (0.74–3.03) for csf_pnfh ≥ 3736."
    """
    level = f"{100 * (1 - effect.alpha):.0f}%"
    name, observed = effect.modifier, f"{number(effect.grid[0])}–{number(effect.grid[-1])}"
    if math.isnan(effect.crossover):
        sign = "positive" if effect.curve.mean() > 0 else "negative"
        return (
            f"The data do not support a crossover: estimated benefit stays {sign} over the "
            f"central 95% of {name} ({observed})."
        )
    if effect.dependence_p >= effect.alpha:
        return (
            f"The data do not support a crossover: no evidence that benefit depends on {name} "
            f"({effect.dependence_test}, {p_is(effect.dependence_p)}), although the smoothed "
            f"estimate changes sign at {number(effect.crossover)}."
        )
    if not effect.supported:
        return (
            f"The data do not support a crossover: estimated benefit changes sign at {name} "
            f"{number(effect.crossover)}, but the {level} bootstrap interval "
            f"[{bound(effect.ci_low)}, {bound(effect.ci_high)}] reaches beyond the observed "
            f"range ({observed}); {100 * effect.crossing_share:.0f}% of replicates cross in it."
        )
    what = "ends" if effect.direction == "ends" else "begins"
    return (
        f"Estimated benefit {what} at {name} {number(effect.crossover)} "
        f"[{level} CI {number(effect.ci_low)}–{number(effect.ci_high)}]"
        + _sides_text(effect.sides, name)
        + "."
    )


def _sides_text(sides: tuple[Stratum, ...], name: str) -> str:
    parts = [f"HR {hazard_ratio(s.hr)} for {name} {s.label}" for s in sides]
    return "; " + ", ".join(parts) if parts else ""


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


__all__ = [
    "describe",
    "finding",
    "headline",
    "learner_headline",
    "modifier_statement",
    "ordinal",
    "overall",
    "verdict",
]
