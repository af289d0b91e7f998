"""Figures of explained benefit: SHAP beeswarm, the modifier's role, time-dependent SHAP.

Like :mod:`stratify.report.figures.trial`, every function returns a
:class:`matplotlib.figure.Figure` built without pyplot's global state (shap's
beeswarm draws on an axes it is given); save it with ``fig.savefig(path)``.
"""

from __future__ import annotations

import numpy as np
import shap
from matplotlib.figure import Figure

from stratify.explain.modifier import ModifierEffect
from stratify.explain.results import Explained, LearnerExplanation

#: Okabe-Ito colours: vermilion for the doubly robust curve, grey for references.
CURVE_COLOUR = "#D55E00"
REFERENCE_COLOUR = "0.45"
LEARNER_COLOURS = ("#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")


def benefit_beeswarm(explanation: shap.Explanation, *, title: str, unit: str) -> Figure:
    """shap's beeswarm of per-patient SHAP values of benefit, one row per covariate.

    Parameters
    ----------
    explanation : shap.Explanation
        Values of shape (n_patients, n_covariates).
    title : str
        Figure title (e.g. the learner).
    unit : str
        Unit of the SHAP values, for the axis label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_features = explanation.values.shape[1]
    fig = Figure(figsize=(7.0, 1.2 + 0.45 * n_features), layout="constrained")
    ax = fig.add_subplot()
    shap.plots.beeswarm(explanation, ax=ax, show=False, plot_size=None, max_display=12)
    ax.set_xlabel(f"SHAP value of estimated benefit ({unit})")
    ax.set_title(title, fontsize=10)
    return fig


def modifier_plot(
    effect: ModifierEffect,
    *,
    learner_curves: dict[str, np.ndarray] | None = None,
    shap_dependence: tuple[str, np.ndarray, np.ndarray] | None = None,
) -> Figure:
    """Benefit against the modifier: the doubly robust curve, its band and the crossover.

    Left panel: the smoothed doubly robust benefit with its pointwise bootstrap
    band, every learner's smoothed out-of-fold estimates (thin lines, for
    comparison), and the crossover with its interval when the data support
    one. Right panel (optional): one learner's SHAP values for the modifier.

    Parameters
    ----------
    effect : ModifierEffect
        From :func:`stratify.explain.modifier.modifier_effect`.
    learner_curves : dict of str to numpy.ndarray, optional
        Each learner's smoothed estimates on ``effect.grid``.
    shap_dependence : (str, numpy.ndarray, numpy.ndarray), optional
        Learner label, modifier values and that learner's SHAP values for it.

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels = 2 if shap_dependence is not None else 1
    fig = Figure(figsize=(6.4 * panels, 4.8), layout="constrained")
    ax = fig.add_subplot(1, panels, 1)
    ax.fill_between(
        effect.grid, effect.band_low, effect.band_high, color=CURVE_COLOUR, alpha=0.18, lw=0
    )
    ax.plot(effect.grid, effect.curve, color=CURVE_COLOUR, lw=2.2, label="doubly robust (95% band)")
    for (label, curve), colour in zip(
        (learner_curves or {}).items(), LEARNER_COLOURS * 4, strict=False
    ):
        ax.plot(effect.grid, curve, color=colour, lw=1.0, alpha=0.9, label=label)
    ax.axhline(0, ls="--", color=REFERENCE_COLOUR, lw=0.8)
    ax.set_ylim(*_benefit_limits(effect, learner_curves))
    if np.isfinite(effect.crossover):
        if effect.supported:
            ax.axvspan(effect.ci_low, effect.ci_high, color=REFERENCE_COLOUR, alpha=0.12, lw=0)
        ax.axvline(
            effect.crossover,
            color=REFERENCE_COLOUR,
            lw=1.2,
            ls="-" if effect.supported else ":",
            label=f"crossover {effect.crossover:,.4g}"
            + ("" if effect.supported else " (not supported)"),
        )
    ax.set_xlabel(effect.modifier)
    ax.set_ylabel(f"estimated benefit ({effect.unit})")
    ax.set_title(f"Benefit by {effect.modifier}")
    ax.legend(fontsize=8, frameon=False)
    if shap_dependence is not None:
        label, x, values = shap_dependence
        right = fig.add_subplot(1, 2, 2)
        right.scatter(x, values, s=12, color=LEARNER_COLOURS[0], alpha=0.7, lw=0)
        right.axhline(0, ls="--", color=REFERENCE_COLOUR, lw=0.8)
        right.set_xlabel(effect.modifier)
        right.set_ylabel(f"SHAP value of benefit ({effect.unit})")
        right.set_title(f"{label}: contribution of {effect.modifier}")
    return fig


def _benefit_limits(effect: ModifierEffect, curves: dict[str, np.ndarray] | None):
    """Y range showing every curve and most of the band: the band balloons where data are few."""
    lines = np.concatenate([effect.curve, *((curves or {}).values())])
    low = min(np.nanmin(lines), np.nanquantile(effect.band_low, 0.2))
    high = max(np.nanmax(lines), np.nanquantile(effect.band_high, 0.8))
    pad = 0.08 * (high - low)
    return low - pad, high + pad


def time_shap_plot(explanation: shap.Explanation, *, title: str, top: int = 5) -> Figure:
    """Mean |SHAP| of the survival difference against time, for the top covariates.

    Parameters
    ----------
    explanation : shap.Explanation
        Values of shape (n_patients, n_covariates, n_times); ``output_names``
        the times.
    title : str
        Figure title.
    top : int
        Covariates shown (largest mean |SHAP| over all times).

    Returns
    -------
    matplotlib.figure.Figure
    """
    times = np.asarray(explanation.output_names, dtype=float)
    importance = np.abs(explanation.values).mean(axis=0)  # (p, n_times)
    order = np.argsort(-importance.mean(axis=1), kind="stable")[:top]
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for k, colour in zip(order, LEARNER_COLOURS, strict=False):
        ax.plot(times, importance[k], marker="o", ms=3, color=colour,
                label=explanation.feature_names[k])  # fmt: skip
    ax.set_xlabel("time (days)")
    ax.set_ylabel("mean |SHAP| of survival difference")
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    return fig


def learner_figures(explanation: LearnerExplanation, horizon: float) -> dict[str, Figure]:
    """A learner's figures: beeswarm of benefit SHAP, and time-dependent SHAP for forests."""
    out = {
        "figures/shap_benefit.png": benefit_beeswarm(
            explanation.benefit.explanations["cate_rmst"],
            title=f"{explanation.label}: what drives estimated benefit (RMST to {horizon:g} days)\n"
            f"{explanation.benefit.method}",
            unit="days",
        )
    }
    if explanation.time_shap is not None:
        out["figures/shap_time.png"] = time_shap_plot(
            explanation.time_shap,
            title=f"{explanation.label}: SHAP of the survival difference over time",
        )
    return out


def modifier_figures(explained: Explained, show_patients: bool = False) -> dict[str, Figure]:
    """The run's figures about the modifier: benefit along it (none without a modifier analysis).

    Parameters
    ----------
    explained : Explained
        The run's explanations.
    show_patients : bool, default False
        Add the explained learner's SHAP dependence panel: one point per
        patient at their exact modifier value, so only when the config
        allows patient-level output (``tracking.log_patient_level``).
    """
    if explained.modifier is None:
        return {}
    dependence = None
    if show_patients:
        lead = explained.learners[explained.explained_learner]
        e = lead.benefit.explanations["cate_rmst"]
        column = list(e.feature_names).index(explained.modifier.modifier)
        dependence = (lead.label, e.data[:, column], e.values[:, column])
    figure = modifier_plot(
        explained.modifier, learner_curves=explained.learner_curves, shap_dependence=dependence
    )
    return {"figures/modifier_benefit.png": figure}
