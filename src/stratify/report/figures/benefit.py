"""Figures of benefit validation: calibration for benefit.

This module owns how :mod:`stratify.validation.metrics.benefit` results are drawn. Like
:mod:`stratify.report.figures.trial`, every function returns a :class:`matplotlib.figure.Figure`
built without pyplot; save it with ``fig.savefig(path)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

#: Okabe-Ito bluish green for observed benefit; grey for references.
POINT_COLOUR = "#009E73"
REFERENCE_COLOUR = "0.45"


def benefit_calibration_plot(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Observed vs predicted RMST difference by group of predicted benefit.

    One point per group (from :func:`stratify.validation.metrics.benefit.benefit_calibration`)
    at its mean predicted benefit, with the Kaplan-Meier RMST difference and
    its confidence interval.
    Points on the dotted diagonal are perfectly calibrated; the dashed lines
    mark no benefit. Groups without both arms are left out.

    Parameters
    ----------
    table : pandas.DataFrame
        The calibration table; its ``attrs`` ``horizon`` and ``alpha`` (set by
        ``benefit_calibration``) label the axes.
    title : str, optional
        Figure title; default "Calibration for benefit".

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(6.4, 5.2), layout="constrained")
    ax = fig.add_subplot()
    shown = table.dropna(subset=["observed"])
    x, y = shown["predicted_mean"].to_numpy(), shown["observed"].to_numpy()
    low, high = _limits(shown)
    ax.plot([low, high], [low, high], ls=":", color=REFERENCE_COLOUR, lw=1.2)
    ax.axhline(0, ls="--", color=REFERENCE_COLOUR, lw=0.8)
    ax.axvline(0, ls="--", color=REFERENCE_COLOUR, lw=0.8)
    ax.errorbar(
        x,
        y,
        yerr=[y - shown["ci_low"].to_numpy(), shown["ci_high"].to_numpy() - y],
        fmt="o",
        ms=7,
        color=POINT_COLOUR,
        elinewidth=1.4,
        capsize=4,
    )
    for group, px, py in zip(shown["group"], x, y, strict=True):
        ax.annotate(
            f"G{int(group)}",
            (px, py),
            xytext=(7, 4),
            textcoords="offset points",
            fontsize=9,
            color="0.2",
        )
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    horizon = table.attrs.get("horizon")
    upto = f" up to day {horizon:g}" if horizon is not None else ""
    ax.set_xlabel(f"Predicted benefit: RMST difference{upto} (days)")
    ax.set_ylabel(f"Observed benefit: Kaplan-Meier RMST difference{upto} (days)")
    ax.set_title(title or "Calibration for benefit", loc="left")
    sizes = ", ".join(str(int(n)) for n in table["n"])
    ax.text(
        0.99,
        0.01,
        f"G1 = lowest predicted benefit; patients per group: {sizes}",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
        color="0.3",
    )
    level = 100 * (1 - table.attrs.get("alpha", 0.05))
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            color=POINT_COLOUR,
            label=f"Group mean prediction vs observed ({level:g}% CI)",
        ),
        Line2D([], [], ls=":", color=REFERENCE_COLOUR, label="Perfect calibration"),
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=8.5, frameon=False)
    return fig


def _limits(shown: pd.DataFrame) -> tuple[float, float]:
    """Common x/y limits covering mean predictions, intervals and 0, with a margin."""
    columns = ("ci_low", "ci_high", "predicted_mean")
    values = np.concatenate([shown[c].to_numpy(dtype=float) for c in columns] + [np.zeros(1)])
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    margin = 0.08 * (high - low) if high > low else 1.0
    return low - margin, high + 2 * margin
