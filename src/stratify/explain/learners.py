"""Explaining a run's learners: what :func:`stratify.experiment.run` logs about *why*.

For every configured learner, :func:`explain_learners` fits it once on the
whole trial (the model a user would deploy; cross-fitted estimates are for
validation) and computes SHAP values of its benefit for every patient
(:func:`~stratify.explain.benefit.benefit_shap`), the rank of the modifier in
mean |SHAP|, for S-learner forests the arm × covariate interactions, and for
forest learners time-dependent SHAP of the survival difference. It then
analyses the modifier once for the run (:func:`~stratify.explain.modifier.modifier_effect`)
on the cross-fitted doubly robust scores, gated by the config's pre-specified
Wald test of arm × modifier, and smooths each learner's out-of-fold estimates
the same way for comparison.

The background sample for interventional SHAP is drawn with the run's seed;
learners are explained in parallel (``execution.n_jobs``) with identical
results for any number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shap
from joblib import Parallel, delayed
from matplotlib.figure import Figure

from stratify.config import ExperimentConfig
from stratify.data import TrialData
from stratify.evaluation import Evaluation
from stratify.exceptions import StratifyInputError
from stratify.explain.benefit import (
    ESTIMANDS,
    BenefitExplanation,
    arm_interactions,
    benefit_shap,
    explained_rows,
    is_tree_learner,
    time_dependent_benefit_shap,
)
from stratify.explain.modifier import ModifierEffect, modifier_effect, smooth_benefit
from stratify.learners import SLearner, make_learner
from stratify.learners.base import CATELearner
from stratify.plots_explain import benefit_beeswarm, modifier_plot, time_shap_plot
from stratify.progress import track
from stratify.trial import TrialAnalysis

#: Background size of model-agnostic explainers when ``explain.background`` is 0.
AGNOSTIC_BACKGROUND = 50
#: At most this many patients for S-learner arm interactions when ``explain.max_patients`` samples.
MAX_INTERACTIONS = 500


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

    def figures(self, horizon: float) -> dict[str, Figure]:
        """Beeswarm of benefit SHAP, and time-dependent SHAP for forest learners."""
        out = {
            "figures/shap_benefit.png": benefit_beeswarm(
                self.benefit.explanations["cate_rmst"],
                title=f"{self.label}: what drives estimated benefit (RMST to {horizon:g} days)\n"
                f"{self.benefit.method}",
                unit="days",
            )
        }
        if self.time_shap is not None:
            out["figures/shap_time.png"] = time_shap_plot(
                self.time_shap, title=f"{self.label}: SHAP of the survival difference over time"
            )
        return out

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

    @property
    def finding(self) -> str:
        """One sentence on the modifier: the crossover statement, or why there is none."""
        if self.modifier is not None:
            return self.modifier.statement
        if self.modifier_skipped:
            return f"Modifier analysis not done: {self.modifier_skipped}"
        return ""

    def metrics(self) -> dict[str, float]:
        """Parent-run metrics: the modifier's crossover and its rank in the explained learner."""
        out = dict(self.learners[self.explained_learner].metrics())
        if self.modifier is not None:
            out |= self.modifier.metrics()
        return out

    def figures(self, show_patients: bool = False) -> dict[str, Figure]:
        """Parent-run figures: the modifier plot.

        Parameters
        ----------
        show_patients : bool, default False
            Add the explained learner's SHAP dependence panel: one point per
            patient at their exact modifier value, so only when the config
            allows patient-level output (``tracking.log_patient_level``).
        """
        if self.modifier is None:
            return {}
        dependence = None
        if show_patients:
            lead = self.learners[self.explained_learner]
            e = lead.benefit.explanations["cate_rmst"]
            column = list(e.feature_names).index(self.modifier.modifier)
            dependence = (lead.label, e.data[:, column], e.values[:, column])
        figure = modifier_plot(
            self.modifier, learner_curves=self.learner_curves, shap_dependence=dependence
        )
        return {"figures/modifier_benefit.png": figure}

    def patient_table(self, patients: pd.Index) -> pd.DataFrame:
        """SHAP values of every learner, one row per patient, learner and covariate."""
        frames = [x.patient_table(patients) for x in self.learners.values()]
        columns = ["patient", "learner", "covariate", "shap_cate_rmst", "shap_cate_surv"]
        return pd.concat(frames, ignore_index=True)[columns]


def explain_learners(
    config: ExperimentConfig,
    data: TrialData,
    evaluation: Evaluation,
    analysis: TrialAnalysis | None = None,
) -> Explained | None:
    """Explain every learner of a run, and analyse the modifier (None if disabled).

    Parameters
    ----------
    config : ExperimentConfig
        The run's config (``explain``, ``seed``, ``horizon``, ``execution``).
    data : TrialData
        The trial.
    evaluation : Evaluation
        The cross-fitted learners, with the doubly robust scores.
    analysis : TrialAnalysis, optional
        The classical analysis; its arm × modifier Wald test gates the crossover.

    Returns
    -------
    Explained or None
    """
    if not config.learners or not config.explain.enabled:
        return None
    background = _background(data.X, config.explain.background, config.seed)
    jobs = (
        delayed(_explain_one)(
            spec.run_label, spec.name, dict(spec.params), config, data, background
        )
        for spec in config.learners
    )
    explained = Parallel(n_jobs=config.execution.n_jobs, return_as="generator")(jobs)
    explained = list(track(explained, "explaining learners", len(config.learners)))
    learners = {x.label: x for x in explained}
    effect, curves, skipped = None, {}, ""
    if data.modifier is not None and evaluation.scores is not None:
        try:
            effect, curves = _modifier(config, data, evaluation, analysis)
        except StratifyInputError as exc:  # e.g. a modifier that barely varies: no curve
            skipped = str(exc)
    return Explained(learners, effect, curves, config.explained_learner, skipped)


def _background(X: pd.DataFrame, size: int, seed: int) -> pd.DataFrame | None:
    if size == 0:
        return None
    return X.sample(min(size, len(X)), random_state=seed).sort_index()


def fit_whole_trial(name: str, params: dict, config: ExperimentConfig, data: TrialData):
    """The learner fitted on every patient: the one explained and the one served.

    Parameters
    ----------
    name : str
        Registry name of the learner.
    params : dict
        Its parameters.
    config : ExperimentConfig
        The run's config (seed and horizon).
    data : TrialData
        The trial.

    Returns
    -------
    CATELearner
        Fitted with ``random_state=config.seed``.
    """
    learner = make_learner(
        name, params, random_state=config.seed, modifier=data.modifier, horizon=config.horizon
    )
    return learner.fit(data.X, data.y, data.arm)


def _explain_one(label, name, params, config, data, background) -> LearnerExplanation:
    learner = fit_whole_trial(name, params, config, data)
    shap_background = background
    if shap_background is None and not is_tree_learner(learner):  # model-agnostic needs one
        shap_background = _background(data.X, AGNOSTIC_BACKGROUND, config.seed)
    sample = config.explain.max_patients
    rows = explained_rows(len(data.X), sample, config.seed)
    X = data.X.iloc[rows]
    benefit = benefit_shap(
        learner,
        X,
        config.horizon,
        background=shap_background,
        max_evals=config.explain.max_evals,
    )
    interactions = None
    if isinstance(learner, SLearner) and is_tree_learner(learner):
        # ~0.9 s per patient for a forest grown on 50,000: a smaller sample when sampling
        some = rows if sample is None else rows[explained_rows(len(rows), MAX_INTERACTIONS, 0)]
        interactions = arm_interactions(
            learner, data.X.iloc[some], np.asarray(data.arm)[some], config.horizon
        )
    times = np.linspace(config.horizon / config.explain.times, config.horizon, config.explain.times)
    time_shap = time_dependent_benefit_shap(learner, X, times, background=background)
    return LearnerExplanation(
        label, benefit, interactions, time_shap, data.modifier, learner,
        rows=None if sample is None else rows,
    )  # fmt: skip


def _modifier(config, data, evaluation, analysis) -> tuple[ModifierEffect, dict[str, np.ndarray]]:
    m = data.X[data.modifier].to_numpy(dtype=float)
    dependence = None
    if analysis is not None and analysis.interaction_hr is not None:
        test = f"Wald test of arm × {data.modifier} in the adjusted Cox model"
        dependence = (analysis.interaction_hr.p, test)
    effect = modifier_effect(
        m,
        evaluation.scores["score_rmst"].to_numpy(),
        data.time,
        data.event,
        data.arm,
        name=data.modifier,
        n_bootstrap=config.explain.n_bootstrap,
        dependence=dependence,
        random_state=config.seed,
    )
    curves = {
        label: smooth_benefit(m, report.oof["cate_rmst"].to_numpy(), effect.grid)
        for label, report in evaluation.learners.items()
    }
    return effect, curves
