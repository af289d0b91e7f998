"""Figures of the classical trial analysis: Kaplan-Meier curves, forest plot, HR by modifier.

This module owns how :mod:`stratify.trial` results are drawn. Every function
returns a :class:`matplotlib.figure.Figure` built without pyplot, so no global
figure state is created or leaked; save it with ``fig.savefig(path)``. Times
are in days; arms are labelled with the trial's original arm labels.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from stratify.data.trial_data import TrialData
from stratify.formatting import SMALLEST_P, hazard_ratio, p_is
from stratify.trial.cox import HazardRatio
from stratify.trial.km import fit_km
from stratify.trial.result import TrialAnalysis
from stratify.trial.strata import assign_strata

#: Colour-blind-safe colours (Okabe-Ito) for control and treated.
ARM_COLOURS = ("#0072B2", "#D55E00")


def _p_is(p: float) -> str:
    """A p-value on a figure: "p = 0.34", "p < 0.001" (:func:`stratify.formatting.p_is`)."""
    return p_is(p, smallest=SMALLEST_P)


TIME_LABEL = "Days since randomisation"
#: Upper end of the modifier range drawn by :func:`interaction_curve` (a quantile).
CURVE_QUANTILE = 0.99


def km_by_arm(
    data: TrialData,
    *,
    horizon: float,
    logrank_p: float | None = None,
    at_risk: bool = True,
    alpha: float = 0.05,
) -> Figure:
    """Kaplan-Meier curves by arm with pointwise log-log confidence bands.

    Parameters
    ----------
    data : TrialData
        The trial.
    horizon : float
        Horizon (days), marked with a dotted vertical line.
    logrank_p : float, optional
        Log-rank p-value, shown in the title when given.
    at_risk : bool
        Add a number-at-risk table below the curves (a second axes).
    alpha : float
        Bands are at level ``1 - alpha``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(7.5, 5.6 if at_risk else 4.6), layout="constrained")
    if at_risk:
        ax, ax_risk = fig.subplots(2, 1, sharex=True, height_ratios=[4, 1])
    else:
        ax, ax_risk = fig.subplots(), None
    _draw_arms(ax, data, np.ones(data.n_patients, bool), alpha=alpha)
    _mark_horizon(ax, horizon)
    ticks = _time_ticks(data.time)
    ax.set_xlim(0, ticks[-1])
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    title = "Kaplan\u2013Meier survival by arm"
    if logrank_p is not None:
        title += f" (log-rank {_p_is(logrank_p)})"
    ax.set_title(title, loc="left")
    ax.legend(loc="lower left", frameon=False)
    if ax_risk is None:
        ax.set_xlabel(TIME_LABEL)
    else:
        _at_risk_table(ax_risk, data, ticks)
    return fig


def km_by_stratum(data: TrialData, analysis: TrialAnalysis) -> Figure:
    """Kaplan-Meier curves by arm, one panel per modifier stratum of ``analysis``.

    Parameters
    ----------
    data : TrialData
        The trial that ``analysis`` was computed from.
    analysis : TrialAnalysis
        An analysis with cutpoints.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the analysis has no strata.
    """
    if not analysis.strata:
        raise ValueError("the analysis has no strata: run analyse_trial with cutpoints")
    k = len(analysis.strata)
    fig = Figure(figsize=(4.2 * k + 0.6, 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, k, sharey=True, sharex=True))
    which = assign_strata(data.X[analysis.modifier].to_numpy(float), analysis.cutpoints)
    ticks = _time_ticks(data.time)
    for ax, stratum in zip(axes, analysis.strata, strict=True):
        _draw_arms(ax, data, which == stratum.index, alpha=analysis.alpha)
        _mark_horizon(ax, analysis.horizon)
        ax.set_title(f"{analysis.modifier} {stratum.label}", loc="left", fontweight="bold")
        box = {"fc": "white", "ec": "none", "alpha": 0.85}
        ax.text(0.98, 0.98, _stratum_caption(stratum), transform=ax.transAxes, ha="right",
                va="top", fontsize=8.5, bbox=box)  # fmt: skip
        ax.set_xlabel(TIME_LABEL)
        if ax is not axes[0]:
            ax.set_ylabel("")
    axes[0].set_xlim(0, ticks[-1])
    axes[0].xaxis.set_major_locator(FixedLocator(ticks))
    handles, labels = _arm_legend(data)
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(f"Kaplan\u2013Meier survival by arm within {analysis.modifier} strata")
    return fig


def forest_plot(analysis: TrialAnalysis) -> Figure:
    """Forest plot of the arm hazard ratio: overall (unadjusted, adjusted) and per stratum.

    Parameters
    ----------
    analysis : TrialAnalysis
        Result of :func:`stratify.trial.analyse_trial`.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, hazard ratios on a log scale; the left labels give n and
        events, the right labels the HR with its confidence interval.
    """
    rows = _forest_rows(analysis)
    fig = Figure(figsize=(8.0, 1.4 + 0.55 * len(rows)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    for yi, (_, hr, _) in zip(y, rows, strict=True):
        if np.isfinite(hr.estimate):
            ax.plot([hr.ci_low, hr.ci_high], [yi, yi], color="0.2", lw=1.6, solid_capstyle="butt")
            ax.plot(hr.estimate, yi, marker="s", color=ARM_COLOURS[1], ms=7, mec="0.2")
    ax.axvline(1.0, color="0.5", lw=1, ls="--")
    ax.set_xscale("log")
    _hr_axis(ax, [r[1] for r in rows], axis="x")
    ax.set_yticks(y, [r[0] for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    right = ax.secondary_yaxis("right")
    right.set_yticks(y, [r[2] for r in rows])
    right.tick_params(length=0)
    ax.tick_params(axis="y", length=0)
    control, treated = analysis.arm_labels
    ax.set_xlabel(
        f"Hazard ratio, {treated} vs {control} (log scale)\n"
        f"\u2190 favours {treated}        favours {control} \u2192"
    )
    ax.set_title(f"Hazard ratio of arm, {_level(analysis.alpha)} CI", loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    adjusted_for = ", ".join(analysis.cox_adjusted.terms[1:])
    fig.supxlabel(textwrap.fill(f"\u00b9 Cox model adjusted for {adjusted_for}.", 110),
                  fontsize=8, color="0.3", x=0.02, ha="left")  # fmt: skip
    return fig


def interaction_curve(
    analysis: TrialAnalysis, data: TrialData, *, show_patients: bool = False
) -> Figure:
    """Arm hazard ratio as a function of the modifier, from the interaction Cox model.

    Parameters
    ----------
    analysis : TrialAnalysis
        An analysis with a modifier.
    data : TrialData
        The trial, for the distribution of the modifier.
    show_patients : bool, default False
        Draw a rug of every patient's modifier value. Off by default: the
        figure is logged to shared tracking stores, and individual biomarker
        values are patient-level data. Without it, ticks mark the deciles.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: HR(m) with its delta-method band (log scale), the HR = 1
        line, ticks for the modifier's deciles (or a rug of patients) and the
        cutpoints, over the modifier's 1st to 99th percentile (beyond them the
        band is extrapolation from a handful of patients).
    """
    if analysis.cox_interaction is None:
        raise ValueError("the analysis has no interaction model: the trial has no modifier")
    m = data.X[analysis.modifier].to_numpy(float)
    lower, upper = np.quantile(m, [1 - CURVE_QUANTILE, CURVE_QUANTILE])
    curve = analysis.hr_curve(np.linspace(lower, upper, 256))
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    ax.fill_between(curve["modifier"], curve["ci_low"], curve["ci_high"], color=ARM_COLOURS[1],
                    alpha=0.2, lw=0, label=f"{_level(analysis.alpha)} CI")  # fmt: skip
    ax.plot(
        curve["modifier"], curve["hr"], color=ARM_COLOURS[1], lw=2, label="HR (treated vs control)"
    )
    ax.axhline(1.0, color="0.4", lw=1, ls="--")
    ax.set_yscale("log")
    _hr_axis(ax, [HazardRatio(1, curve["ci_low"].min(), curve["ci_high"].max(), np.nan)], axis="y")
    rug = blended_transform_factory(ax.transData, ax.transAxes)
    ticks = m if show_patients else np.quantile(m, np.linspace(0.1, 0.9, 9))
    ax.plot(ticks, np.full_like(ticks, 0.015), "|", color="0.25", ms=8,
            alpha=0.35 if show_patients else 0.8, transform=rug)  # fmt: skip
    for c in analysis.cutpoints:
        ax.axvline(c, color="0.3", lw=1, ls=":")
        ax.text(c, 0.06, f" cutpoint {c:g}", transform=rug, va="bottom", ha="left",
                fontsize=8.5, color="0.3")  # fmt: skip
    ax.set_xlim(lower, upper)
    what = "patients" if show_patients else "deciles"
    pct = f"{100 * (1 - CURVE_QUANTILE):g}st–{100 * CURVE_QUANTILE:g}th percentile"
    ax.set_xlabel(f"{analysis.modifier} (ticks: {what}; curve over its {pct})")
    ax.set_ylabel("Hazard ratio, treated vs control (log scale)")
    inter = analysis.interaction_hr
    ax.set_title(
        f"Arm HR by {analysis.modifier}: {hazard_ratio(inter)} per unit, "
        f"interaction {_p_is(inter.p)}",
        loc="left",
    )
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


# ---------------------------------------------------------------- helpers


def _draw_arms(ax, data: TrialData, keep: np.ndarray, *, alpha: float) -> None:
    """KM curve, band and censoring ticks of each arm among patients ``keep``."""
    for code, colour in enumerate(ARM_COLOURS):
        sel = keep & (data.arm == code)
        if not sel.any():
            continue
        kmf = fit_km(data.time[sel], data.event[sel], alpha=alpha)
        t = kmf.survival_function_.index.to_numpy(float)
        s = kmf.survival_function_.iloc[:, 0].to_numpy(float)
        band = kmf.confidence_interval_survival_function_.to_numpy(float)
        role = "control" if code == 0 else "treated"
        label = f"{data.arm_labels[code]} ({role}, n = {int(sel.sum())})"
        ax.step(t, s, where="post", color=colour, lw=1.8, label=label)
        ax.fill_between(t, band[:, 0], band[:, 1], step="post", color=colour, alpha=0.15, lw=0)
        censored = np.sort(data.time[sel & ~data.event])
        ax.plot(censored, kmf.survival_function_at_times(censored).to_numpy(), "|",
                color=colour, ms=5, mew=0.8)  # fmt: skip
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("Survival probability")
    ax.grid(alpha=0.3, lw=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _arm_legend(data: TrialData) -> tuple[list[Line2D], list[str]]:
    """Legend entries for the two arms (stratum panels hold different n, so no counts)."""
    roles = ("control", "treated")
    handles = [Line2D([], [], color=c, lw=1.8) for c in ARM_COLOURS]
    return handles, [f"{data.arm_labels[i]} ({roles[i]})" for i in (0, 1)]


def _mark_horizon(ax, horizon: float) -> None:
    ax.axvline(horizon, color="0.35", lw=1, ls=":")
    ax.text(horizon, 0.015, f" horizon {horizon:g} d", transform=ax.get_xaxis_transform(),
            va="bottom", ha="left", fontsize=8.5, color="0.3")  # fmt: skip


def _time_ticks(time: np.ndarray) -> np.ndarray:
    ticks = MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]).tick_values(0, float(np.max(time)))
    return ticks[ticks >= 0]


def _at_risk_table(ax, data: TrialData, ticks: np.ndarray) -> None:
    """Numbers at risk at each tick, one row per arm, in their arm colour."""
    for row, code in enumerate((1, 0)):
        times = data.time[data.arm == code]
        for t in ticks:
            ax.text(t, row, str(int(np.sum(times >= t))), ha="center", va="center",
                    fontsize=8.5, color=ARM_COLOURS[code])  # fmt: skip
    ax.set_ylim(-0.6, 1.6)
    ax.set_yticks([0, 1], [str(data.arm_labels[1]), str(data.arm_labels[0])])
    for label, code in zip(ax.get_yticklabels(), (1, 0), strict=True):
        label.set_color(ARM_COLOURS[code])
    ax.tick_params(axis="y", length=0, pad=16)
    ax.set_title("Number at risk", loc="left", fontsize=9)
    ax.set_xlabel(TIME_LABEL)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def _forest_rows(analysis: TrialAnalysis) -> list[tuple[str, HazardRatio, str]]:
    """(left label, HR, right label) per row: overall unadjusted, adjusted, each stratum."""
    n, ev = analysis.n_patients, analysis.n_events
    counts = f"n = {n}, {ev} events"
    rows = [
        (f"All patients, unadjusted\n{counts}", analysis.hr_unadjusted),
        (f"All patients, adjusted\u00b9\n{counts}", analysis.hr_adjusted),
    ]
    for s in analysis.strata:
        rows.append((f"{analysis.modifier} {s.label}\nn = {s.n}, {s.events} events", s.hr))
    return [(left, hr, hazard_ratio(hr)) for left, hr in rows]


def _hr_axis(ax, hrs: list[HazardRatio], *, axis: str) -> None:
    """Log-scale HR axis spanning every finite CI and 1, with plain-number ticks."""
    values = [v for hr in hrs for v in (hr.ci_low, hr.ci_high) if np.isfinite(v)] + [1.0]
    low, high = min(values) / 1.25, max(values) * 1.25
    ticks = _log_ticks(low, high)
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xlim if axis == "x" else ax.set_ylim)(low, high)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(NullLocator())


def _log_ticks(low: float, high: float) -> list[float]:
    """Round ticks for a log axis: 1-2-5 per decade, denser when the range is narrow."""
    decades = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [float(f"{m * 10.0**k:.6g}") for k in decades for m in mantissas]
        ticks = [t for t in ticks if low <= t <= high]
        if len(ticks) >= 4:
            break
    return ticks


def _stratum_caption(stratum) -> str:
    head = f"n = {stratum.n}, {stratum.events} events"
    if np.isfinite(stratum.hr.estimate):
        return f"{head}\nHR {hazard_ratio(stratum.hr, with_p=True, smallest=SMALLEST_P)}"
    return f"{head}\nHR not estimable:\n{textwrap.fill(stratum.note, 34)}"


def _level(alpha: float) -> str:
    return f"{100 * (1 - alpha):g}%"


def _p_is(p: float) -> str:
    """A p-value on a figure: "p = 0.34", "p < 0.001" (:func:`stratify.formatting.p_is`)."""
    return p_is(p, smallest=SMALLEST_P)
