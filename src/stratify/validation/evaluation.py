"""Judging learners: risk metrics over folds, benefit metrics on out-of-fold estimates.

This module owns what a run says about each learner and the run's one verdict on
heterogeneity. Risk metrics (Harrell's and Uno's C, integrated Brier score) are
computed on each held-out fold and summarised as mean and standard deviation over
folds × repeats. Benefit metrics use each patient's out-of-fold ``cate_rmst`` as a
priority and the cross-fitted doubly robust scores as the outcome: RATE (AUTOC,
Qini) with bootstrap standard errors, the heterogeneity test, C-for-benefit and
calibration by quantile group. With simulated data the estimates are also scored
against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stratify.data import TrialData
from stratify.learners.base import CATE_COLUMNS
from stratify.validation.crossfit import CrossFit
from stratify.validation.metrics.benefit import (
    benefit_calibration,
    blp_test,
    c_for_benefit,
    combine_heterogeneity,
    heterogeneity_test,
    rate,
    truth_metrics,
)

TESTS = {"rate": "RATE AUTOC test", "blp": "calibration-slope (BLP) test"}


@dataclass(frozen=True)
class LearnerReport:
    """Everything reported for one learner."""

    label: str
    metrics: dict[str, float]
    calibration: pd.DataFrame
    oof: pd.DataFrame


@dataclass(frozen=True)
class Evaluation:
    """Reports by learner and the run's heterogeneity verdict."""

    learners: dict[str, LearnerReport]
    heterogeneity_p: float
    heterogeneity_method: str
    scores: pd.DataFrame | None = None

    def oof_table(self) -> pd.DataFrame:
        """Out-of-fold benefit, one row per patient and learner (patient-level data)."""
        frames = [
            r.oof.rename_axis("patient").reset_index().assign(learner=label)
            for label, r in self.learners.items()
        ]
        table = pd.concat(frames, ignore_index=True)
        intervals = [f"{name}_{end}" for name in CATE_COLUMNS for end in ("low", "high")]
        extra = [c for c in intervals if c in table]
        return table[["patient", "learner", "cate_rmst", "cate_surv", *extra]]


def evaluate(
    fits: dict[str, CrossFit],
    data: TrialData,
    scores: pd.DataFrame,
    *,
    horizon: float,
    seed: int,
    n_bootstrap: int = 200,
    primary: str | None = None,
    test: str = "blp",
) -> Evaluation:
    """Metrics of every cross-fitted learner and the combined heterogeneity verdict.

    Parameters
    ----------
    fits : dict of str to CrossFit
        Out-of-fold results by learner label.
    data : TrialData
        The trial (its ``truth``, when simulated, adds ``cate_rmse``/``cate_spearman``).
    scores : pandas.DataFrame
        Cross-fitted doubly robust scores (``score_rmst``, ``score_surv``), aligned
        with ``data``.
    horizon : float
        Horizon of the estimands (days).
    seed : int
        Seed of the bootstraps.
    n_bootstrap : int
        Bootstrap replicates for RATE standard errors.
    primary : str, optional
        A pre-specified learner whose test is the verdict; default: multiplicity-
        adjusted over all learners (see :func:`combine_heterogeneity`).
    test : {"blp", "rate"}
        Which test gives each learner's ``heterogeneity_p``: the calibration
        slope (:func:`blp_test`) or RATE AUTOC (:func:`heterogeneity_test`).
        Both p-values are always reported, as ``heterogeneity_p_rate`` and
        ``heterogeneity_p_blp``.

    Returns
    -------
    Evaluation
    """
    reports = {}
    for label, fit in fits.items():
        reports[label] = _report(
            fit, data, scores, horizon=horizon, seed=seed, n_bootstrap=n_bootstrap, test=test
        )
    p_values = {label: r.metrics["heterogeneity_p"] for label, r in reports.items()}
    verdict, method = combine_heterogeneity(p_values, primary)
    return Evaluation(reports, float(verdict), f"{TESTS[test]}; {method}", scores)


def _report(fit: CrossFit, data, scores, *, horizon, seed, n_bootstrap, test) -> LearnerReport:
    oof = fit.oof
    priorities = oof["cate_rmst"].to_numpy()
    gamma = scores["score_rmst"].to_numpy()
    metrics = _fold_summary(fit.fold_metrics)
    boot = {"n_bootstrap": n_bootstrap, "random_state": seed}
    autoc, autoc_se = rate(priorities, gamma, target="AUTOC", **boot)
    qini, qini_se = rate(priorities, gamma, target="QINI", **boot)
    metrics |= {
        "rate_autoc": autoc,
        "rate_autoc_se": autoc_se,
        "rate_qini": qini,
        "rate_qini_se": qini_se,
        "heterogeneity_p_rate": heterogeneity_test(priorities, gamma, **boot),
        "c_for_benefit": c_for_benefit(priorities, gamma),
        "cate_rmst_mean": float(np.mean(priorities)),
        "cate_surv_mean": float(oof["cate_surv"].mean()),
        "cate_rmst_sd": float(np.std(priorities)),
    }
    p_blp, slope, slope_se = blp_test(priorities, gamma)
    metrics |= {"heterogeneity_p_blp": p_blp, "blp_slope": slope, "blp_slope_se": slope_se}
    metrics["heterogeneity_p"] = metrics[f"heterogeneity_p_{test}"]
    if data.truth is not None:
        metrics |= truth_metrics(priorities, data.truth["tau_rmst"].to_numpy())
        surv = truth_metrics(oof["cate_surv"].to_numpy(), data.truth["tau_surv"].to_numpy())
        metrics |= {f"{k.replace('cate_', 'cate_surv_')}": v for k, v in surv.items()}
        metrics |= _coverage(oof, data.truth)
    calibration = benefit_calibration(priorities, data.y, data.arm, horizon)
    return LearnerReport(fit.label, {k: float(v) for k, v in metrics.items()}, calibration, oof)


def _coverage(oof: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Share of patients whose interval holds their true benefit (learners with intervals)."""
    out = {}
    for name, key in (("rmst", "cate_ci_coverage"), ("surv", "cate_surv_ci_coverage")):
        if f"cate_{name}_low" in oof:
            tau = truth[f"tau_{name}"].to_numpy()
            inside = (oof[f"cate_{name}_low"] <= tau) & (tau <= oof[f"cate_{name}_high"])
            out[key] = float(inside.mean())
    return out


def _fold_summary(fold_metrics: pd.DataFrame) -> dict[str, float]:
    """Mean and standard deviation over folds × repeats of each risk metric."""
    out = {}
    for column in fold_metrics.columns.drop(["repeat", "fold"]):
        values = pd.to_numeric(fold_metrics[column], errors="coerce")
        out[column] = float(values.mean())
        out[f"{column}_sd"] = float(values.std(ddof=1)) if values.count() > 1 else np.nan
    return out
