"""What ``stratify run`` prints: the trial analysis, one line per learner, the explanations.

Plain text for a terminal; the numbers go through :mod:`stratify.formatting`
(the report and the figures show the same digits), and the sentences about
the modifier come from :mod:`stratify.report.summary`.
"""

from __future__ import annotations

from stratify.formatting import hazard_ratio, names, p_is, p_value
from stratify.report.summary import finding


def summarise_learners(evaluation) -> str:
    """One line per learner (out-of-fold), then the run's heterogeneity verdict."""
    reports = evaluation.learners.values()
    truth = all("cate_rmse" in r.metrics for r in reports)
    width = max([20, *(len(r.label) for r in reports)])
    head = (
        f"{'learner':<{width}} {'mean benefit':>12} {'C (Harrell)':>11} "
        f"{'RATE AUTOC (SE)':>16} {'het. p':>7}"
    )
    lines = [head + ("   RMSE vs truth  Spearman" if truth else "")]
    for r in reports:
        m = r.metrics
        autoc = f"{m['rate_autoc']:.1f} ({m['rate_autoc_se']:.1f})"
        row = (
            f"{r.label:<{width}} {m['cate_rmst_mean']:>+9.1f} d {m['c_index_harrell']:>11.3f} "
            f"{autoc:>16} {p_value(m['heterogeneity_p'], 3):>7}"
        )
        if truth:
            row += f"   {m['cate_rmse']:>10.1f} d  {m['cate_spearman']:>8.2f}"
        lines.append(row)
    lines.append(
        f"Heterogeneity (one verdict for all learners): {p_is(evaluation.heterogeneity_p, 3)}"
        f"  [{evaluation.heterogeneity_method}]"
    )
    return "\n".join(lines)


def summarise_explained(explained) -> str:
    """Where the modifier ranks for benefit in each learner, and the crossover finding."""
    lines = []
    first = next(iter(explained.learners.values()))
    if first.modifier is not None:
        p = len(first.importance())
        ranks = ", ".join(
            f"{label} {x.metrics()['modifier_rank']:.0f}" for label, x in explained.learners.items()
        )
        lines.append(f"Rank of {first.modifier} in mean |SHAP of benefit| (of {p}): {ranks}")
    if found := finding(explained):
        lines.append(found)
    return "\n".join(lines)


def summarise(analysis) -> str:
    """The trial analysis as a short clinical summary for the terminal."""
    h = f"{analysis.horizon:g}"
    c, t = analysis.control, analysis.treated
    d = analysis.rmst_diff

    def hr(estimate) -> str:
        return hazard_ratio(estimate, with_p=True)

    lines = [
        f"Survival at {h} days (KM):  control ({c.label}) {c.surv:.1%} "
        f"({c.surv_ci_low:.1%}–{c.surv_ci_high:.1%}),  treated ({t.label}) {t.surv:.1%} "
        f"({t.surv_ci_low:.1%}–{t.surv_ci_high:.1%})",
        f"RMST to {h} days, treated − control:  {d.estimate:+.1f} days "
        f"({d.ci_low:+.1f} to {d.ci_high:+.1f}), {p_is(d.p)}",
        f"Log-rank:  chi² = {analysis.logrank_chisq:.2f}, {p_is(analysis.logrank_p)}",
        f"HR treated vs control, unadjusted:  {hr(analysis.hr_unadjusted)}",
        f"HR adjusted for {names(analysis.cox_adjusted.terms[1:])}:  {hr(analysis.hr_adjusted)}",
    ]
    m = analysis.modifier
    if analysis.cox_interaction is not None:
        inter = analysis.interaction_hr
        lines += [
            f"Arm × {m} interaction:  HR ratio {hazard_ratio(inter)} per unit of {m}, "
            f"{p_is(inter.p)}",
            f"  arm HR at {m} = 0 (interaction model):  {hr(analysis.hr_interaction_arm)}",
        ]
    for s in analysis.strata:
        row = f"  {m} {s.label}:  n = {s.n}, {s.events} events,  HR {hr(s.hr)}"
        lines.append(row + (f"  [{s.note}]" if s.note else ""))
    return "\n".join(lines)
