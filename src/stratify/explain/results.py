"""What explaining a run's learners produced: per-learner SHAP and the run's modifier analysis.

Plain results, numbers only: :mod:`stratify.pipeline.explanation` computes them,
:mod:`stratify.report.figures.explain` draws them and :mod:`stratify.report.summary`
words them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shap

from stratify.explain.benefit import ESTIMANDS, BenefitExplanation
from stratify.explain.modifier import ModifierEffect
from stratify.learners.base import CATELearner


@dataclass(frozen=True)
class LearnerExplanation:
    """What is logged about one learner's benefit."""

    label: str
    benefit: BenefitExplanation
    interactions: pd.DataFrame | None
    time_shap: shap.Explanation | None
    modifier: str | None
    learner: CATELearner | None = None
    """The learner fitted on the whole trial (the one explained, and the one served)."""
    rows: np.ndarray | None = None
    """Positions of the patients explained (``explain.max_patients``); None: all of them."""

    def metrics(self) -> dict[str, float]:
        """``modifier_rank`` (RMST benefit) and ``modifier_rank_surv``; NaN without a modifier."""
        if self.modifier is None:
            return {"modifier_rank": np.nan, "modifier_rank_surv": np.nan}
        return {
            "modifier_rank": float(self.benefit.rank(self.modifier, "cate_rmst")),
            "modifier_rank_surv": float(self.benefit.rank(self.modifier, "cate_surv")),
        }

    def importance(self) -> pd.DataFrame:
        """Mean |SHAP| per covariate for both estimands, ranked by the RMST benefit."""
        rmst = self.benefit.importance("cate_rmst")
        surv = self.benefit.importance("cate_surv")
        return pd.DataFrame(
            {
                "covariate": rmst.index,
                "mean_abs_shap_rmst": rmst.to_numpy(),
                "mean_abs_shap_surv": surv.reindex(rmst.index).to_numpy(),
                "rank": np.arange(1, len(rmst) + 1),
            }
        )

    def patient_table(self, patients: pd.Index) -> pd.DataFrame:
        """SHAP values per patient and covariate (patient-level data)."""
        frames = []
        for estimand in ESTIMANDS:
            e = self.benefit.explanations[estimand]
            index = patients if self.rows is None else patients[self.rows]
            frame = pd.DataFrame(e.values, columns=e.feature_names, index=index)
            frames.append(
                frame.rename_axis("patient")
                .reset_index()
                .melt(id_vars="patient", var_name="covariate", value_name=f"shap_{estimand}")
                .set_index(["patient", "covariate"])
            )
        return pd.concat(frames, axis=1).reset_index().assign(learner=self.label)


@dataclass(frozen=True)
class Explained:
    """Explanations of every learner and the run's modifier analysis."""

    learners: dict[str, LearnerExplanation]
    modifier: ModifierEffect | None
    learner_curves: dict[str, np.ndarray]
    explained_learner: str
    modifier_skipped: str = ""
    """Why there is no modifier analysis, if there is none (e.g. the modifier barely varies);
    :func:`stratify.report.summary.finding` words it."""

    def metrics(self) -> dict[str, float]:
        """Parent-run metrics: the modifier's crossover and its rank in the explained learner."""
        out = dict(self.learners[self.explained_learner].metrics())
        if self.modifier is not None:
            out |= self.modifier.metrics()
        return out

    def patient_table(self, patients: pd.Index) -> pd.DataFrame:
        """SHAP values of every learner, one row per patient, learner and covariate."""
        frames = [x.patient_table(patients) for x in self.learners.values()]
        columns = ["patient", "learner", "covariate", "shap_cate_rmst", "shap_cate_surv"]
        return pd.concat(frames, ignore_index=True)[columns]
