"""Explaining a run's learners: what :func:`stratify.pipeline.experiment.run` logs about *why*.

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

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from stratify.config import ExperimentConfig
from stratify.data import TrialData
from stratify.exceptions import StratifyInputError
from stratify.explain.benefit import (
    arm_interactions,
    benefit_shap,
    explained_rows,
    is_tree_learner,
    time_dependent_benefit_shap,
)
from stratify.explain.modifier import ModifierEffect, modifier_effect, smooth_benefit
from stratify.explain.results import Explained, LearnerExplanation
from stratify.learners import SLearner, make_learner
from stratify.progress import track
from stratify.trial import TrialAnalysis
from stratify.validation.evaluation import Evaluation

#: Background size of model-agnostic explainers when ``explain.background`` is 0.
AGNOSTIC_BACKGROUND = 50
#: At most this many patients for S-learner arm interactions when ``explain.max_patients`` samples.
MAX_INTERACTIONS = 500


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
    time_shap = time_dependent_benefit_shap(learner, X, config.curve_times, background=background)
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
