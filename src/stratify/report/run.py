"""What one run produced, in one frozen object: what the pipeline logs and the report shows.

:func:`stratify.pipeline.experiment.run` builds a :class:`RunResult` once its work
is done (before it records anything) and hands that one object to the run's
description (:mod:`stratify.report.summary`), its learner runs and its report
(:func:`stratify.report.html.build_report`), instead of the same seven values
threaded through each. It lives in :mod:`stratify.report` because the report is
its lowest reader: the pipeline, a floor above, may import it; the report may
not import the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from stratify.config import ExperimentConfig
    from stratify.data import TrialData
    from stratify.explain.results import Explained
    from stratify.trial import TrialAnalysis
    from stratify.validation.evaluation import Evaluation

CALIBRATION_FIGURE = "figures/benefit_calibration.png"
"""Artifact path of a learner run's benefit-calibration figure."""

MODIFIER_FIGURES = ""
"""Key of :attr:`RunResult.drawn` for the parent run's modifier figure."""


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the trial, its analysis, the learners, their explanations, figures.

    Attributes
    ----------
    config : ExperimentConfig
        The run's config.
    data : TrialData
        The analysed trial.
    analysis : TrialAnalysis
        The classical analysis.
    figures : mapping of str to matplotlib.figure.Figure
        The analysis figures by artifact path
        (:func:`stratify.pipeline.experiment.analyse`), in the order they are shown.
    evaluation : Evaluation, optional
        The cross-fitted learners; None for a config without learners.
    explained : Explained, optional
        SHAP explanations and the modifier analysis; None without learners or with
        ``explain.enabled: false``.
    drawn : mapping of str to mapping of str to Figure
        The figures of the explanations and of each learner run, drawn once
        (:func:`stratify.pipeline.experiment.draw_figures`): :data:`MODIFIER_FIGURES`
        (``""``) to the modifier figure, each learner's run label to its calibration
        (:data:`CALIBRATION_FIGURE`) and SHAP figures. The runs log them and the
        report embeds them; nothing draws them again.
    """

    config: ExperimentConfig
    data: TrialData
    analysis: TrialAnalysis
    figures: Mapping[str, Figure] = field(default_factory=dict)
    evaluation: Evaluation | None = None
    explained: Explained | None = None
    drawn: Mapping[str, Mapping[str, Figure]] = field(default_factory=dict)

    @property
    def horizon_text(self) -> str:
        """The horizon as text, e.g. ``"640"`` (days)."""
        return f"{self.analysis.horizon:g}"

    @property
    def level_text(self) -> str:
        """The confidence level of the intervals, e.g. ``"95%"``."""
        return f"{100 * (1 - self.analysis.alpha):g}%"


__all__ = ["CALIBRATION_FIGURE", "MODIFIER_FIGURES", "RunResult"]
