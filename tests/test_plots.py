"""Tests of `stratify.report.figures`: each figure has the expected structure and saves cleanly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from stratify.data import TrialData
from stratify.report.figures import trial as plots
from stratify.report.figures.explain import modifier_figures
from stratify.trial import analyse_trial

HORIZON = 150.0
CUTS = [0.8, 1.5, 3.0]  # the top stratum (marker > 3) has too few patients: not estimable


@pytest.fixture(scope="module")
def trial() -> TrialData:
    rng = np.random.default_rng(11)
    n = 200
    marker = rng.lognormal(0, 0.5, n)
    arm = rng.permutation(np.repeat(["placebo", "drug"], n // 2))
    effect = (arm == "drug") * (-0.8 + 0.5 * marker)
    t = rng.exponential(300 * np.exp(-effect))
    c = rng.uniform(200, 700, n)
    frame = pd.DataFrame(
        {
            "time": np.ceil(np.minimum(t, c)),
            "event": (t <= c).astype(int),
            "arm": arm,
            "age": rng.normal(60, 10, n),
            "marker": marker,
        }
    )
    return TrialData.from_frame(frame, treated="drug", modifier="marker")


@pytest.fixture(scope="module")
def analysis(trial):
    return analyse_trial(trial, horizon=HORIZON, cutpoints=CUTS)


def _save(fig: Figure, path) -> None:
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 5_000


def test_km_by_arm(trial, analysis, tmp_path):
    fig = plots.km_by_arm(trial, horizon=HORIZON, logrank_p=analysis.logrank_p)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # curves + number at risk
    curves = fig.axes[0]
    assert len(curves.lines) == 2 * 2 + 1  # per arm: curve and censoring ticks; horizon line
    assert "log-rank p" in curves.get_title(loc="left")
    legend = [t.get_text() for t in curves.get_legend().get_texts()]
    assert legend[0].startswith("placebo (control") and legend[1].startswith("drug (treated")
    assert len(fig.axes[1].texts) == 2 * len(curves.get_xticks())
    _save(fig, tmp_path / "km.png")


def test_km_by_arm_without_risk_table(trial, tmp_path):
    fig = plots.km_by_arm(trial, horizon=HORIZON, at_risk=False)
    assert len(fig.axes) == 1
    _save(fig, tmp_path / "km_plain.png")


def test_km_by_stratum(trial, analysis, tmp_path):
    fig = plots.km_by_stratum(trial, analysis)
    assert len(fig.axes) == len(CUTS) + 1
    assert all(len(ax.lines) >= 3 for ax in fig.axes)
    captions = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "not estimable" in captions
    _save(fig, tmp_path / "km_strata.png")


def test_forest_plot(analysis, tmp_path):
    fig = plots.forest_plot(analysis)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    estimable = 2 + sum(np.isfinite(s.hr.estimate) for s in analysis.strata)
    assert len(ax.lines) == 2 * estimable + 1  # CI segment and point per row; HR = 1 line
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 2 + len(CUTS) + 1 and "events" in labels[0]
    _save(fig, tmp_path / "forest.png")


def test_interaction_curve(trial, analysis, tmp_path):
    fig = plots.interaction_curve(analysis, trial)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == 3 + len(CUTS)  # curve, HR = 1, rug, one line per cutpoint
    _save(fig, tmp_path / "interaction.png")


def test_figures_need_modifier_results(trial):
    plain = analyse_trial(trial, horizon=HORIZON)
    with pytest.raises(ValueError, match="strata"):
        plots.km_by_stratum(trial, plain)
    forest = plots.forest_plot(plain)
    assert len(forest.axes[0].get_yticklabels()) == 2


def test_modifier_figure_shows_patients_only_when_allowed(small_run):
    # the SHAP dependence panel puts each patient at their exact modifier value
    explained = small_run.explained
    hidden = modifier_figures(explained)["figures/modifier_benefit.png"]
    shown = modifier_figures(explained, show_patients=True)["figures/modifier_benefit.png"]
    assert len(hidden.axes) == 1 and len(shown.axes) == 2
