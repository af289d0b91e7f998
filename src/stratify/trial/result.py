"""`TrialAnalysis`: the results of the classical analysis, as metrics, a table and an HR curve.

This module owns how the classical analysis is reported: the stable metric keys
logged to MLflow (:meth:`TrialAnalysis.metrics`), the tidy results table
(:meth:`TrialAnalysis.table`) and the modifier-dependent hazard ratio of the
interaction model (:meth:`TrialAnalysis.hr_curve`). It holds summaries only,
never patient-level data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from stratify.trial.cox import CoxFit, HazardRatio
from stratify.trial.km import ArmSurvival, Difference
from stratify.trial.strata import Stratum

TABLE_COLUMNS = [
    "analysis",
    "term",
    "measure",
    "n",
    "events",
    "estimate",
    "ci_low",
    "ci_high",
    "p",
    "note",
]


@dataclass(frozen=True)
class TrialAnalysis:
    """Results of :func:`stratify.trial.analyse_trial`.

    Attributes
    ----------
    horizon, alpha : float
        Time horizon (days) and 1 - confidence level.
    arm_labels : tuple
        Original (control, treated) labels.
    modifier : str or None
        Name of the modifier used in the interaction model and strata.
    cutpoints : tuple of float
        Stratum cutpoints (empty without strata).
    n_patients, n_events : int
        Patients and events analysed.
    control, treated : ArmSurvival
        Kaplan-Meier survival at the horizon (log-log CI) and RMST per arm.
    logrank_chisq, logrank_p : float
        Log-rank test (R ``survdiff``), 1 degree of freedom.
    rmst_diff : Difference
        RMST treated - control up to the horizon (days).
    cox_unadjusted, cox_adjusted : CoxFit
        Cox models of arm alone and of arm plus every covariate.
    cox_interaction : CoxFit or None
        Arm, every covariate and arm x modifier (last term); None without a modifier.
    strata : tuple of Stratum
        Per-stratum counts and unadjusted HRs; empty without cutpoints.
    """

    horizon: float
    alpha: float
    arm_labels: tuple
    modifier: str | None
    cutpoints: tuple[float, ...]
    n_patients: int
    n_events: int
    control: ArmSurvival
    treated: ArmSurvival
    logrank_chisq: float
    logrank_p: float
    rmst_diff: Difference
    cox_unadjusted: CoxFit
    cox_adjusted: CoxFit
    cox_interaction: CoxFit | None = None
    strata: tuple[Stratum, ...] = ()

    @property
    def hr_unadjusted(self) -> HazardRatio:
        """Unadjusted hazard ratio, treated vs control."""
        return self.cox_unadjusted.hr(0)

    @property
    def hr_adjusted(self) -> HazardRatio:
        """Hazard ratio of arm adjusted on every covariate."""
        return self.cox_adjusted.hr(0)

    @property
    def hr_interaction_arm(self) -> HazardRatio | None:
        """Arm hazard ratio at modifier = 0 in the interaction model."""
        return None if self.cox_interaction is None else self.cox_interaction.hr(0)

    @property
    def interaction_hr(self) -> HazardRatio | None:
        """Ratio of arm hazard ratios per unit of the modifier (exp of the interaction term)."""
        return None if self.cox_interaction is None else self.cox_interaction.hr(-1)

    def metrics(self) -> dict[str, float]:
        """Scalar results under stable lower_snake_case keys (for MLflow).

        Interaction keys (``interaction_*``, ``hr_interaction_arm*``) are present
        only with a modifier, and ``stratum{i}_*`` keys only with cutpoints.
        Strata that could not be estimated have NaN hazard ratios.

        Returns
        -------
        dict of str to float
        """
        out = {"n_patients": self.n_patients, "n_events": self.n_events}
        out |= {"logrank_chisq": self.logrank_chisq, "logrank_p": self.logrank_p}
        out |= _hr_metrics("hr_unadjusted", self.hr_unadjusted)
        out |= _hr_metrics("hr_adjusted", self.hr_adjusted)
        if self.cox_interaction is not None:
            inter = self.interaction_hr
            out |= _hr_metrics("interaction_hr_per_unit", inter, with_p=False)
            out["interaction_p"] = inter.p
            out |= _hr_metrics("hr_interaction_arm", self.hr_interaction_arm)
        for name, arm in (("control", self.control), ("treated", self.treated)):
            out[f"km_surv_{name}"] = arm.surv
            out[f"km_surv_{name}_ci_low"] = arm.surv_ci_low
            out[f"km_surv_{name}_ci_high"] = arm.surv_ci_high
        for name, arm in (("control", self.control), ("treated", self.treated)):
            out[f"rmst_{name}"] = arm.rmst
            out[f"rmst_{name}_se"] = arm.rmst_se
        d = self.rmst_diff
        out |= {"rmst_diff": d.estimate, "rmst_diff_se": d.se}
        out |= {"rmst_diff_ci_low": d.ci_low, "rmst_diff_ci_high": d.ci_high, "rmst_diff_p": d.p}
        for s in self.strata:
            out[f"stratum{s.index}_n"] = s.n
            out[f"stratum{s.index}_events"] = s.events
            out |= _hr_metrics(f"stratum{s.index}_hr", s.hr)
        return {k: float(v) for k, v in out.items()}

    def table(self) -> pd.DataFrame:
        """Tidy results table: one row per estimate, no patient-level data.

        Columns: ``analysis``, ``term``, ``measure``, ``n``, ``events``,
        ``estimate``, ``ci_low``, ``ci_high``, ``p``, ``note``. Cox rows give
        hazard ratios per unit of each term (treated vs control for ``arm``).

        Returns
        -------
        pandas.DataFrame
        """
        rows = self._km_rows() + self._cox_rows() + self._strata_rows()
        return pd.DataFrame.from_records(rows, columns=TABLE_COLUMNS)

    def hr_curve(self, values) -> pd.DataFrame:
        """Arm hazard ratio as a function of the modifier, from the interaction model.

        ``HR(m) = exp(b_arm + b_int * m)`` with a delta-method Wald band:
        ``Var = V_aa + 2 m V_ai + m^2 V_ii`` from the coefficient covariance.

        Parameters
        ----------
        values : array-like of float
            Modifier values.

        Returns
        -------
        pandas.DataFrame
            Columns ``modifier``, ``hr``, ``ci_low``, ``ci_high``.

        Raises
        ------
        ValueError
            If the analysis has no modifier (no interaction model).
        """
        fit = self.cox_interaction
        if fit is None:
            raise ValueError("no interaction model: the analysis was run without a modifier")
        m = np.asarray(values, dtype=float).ravel()
        b = fit.coef[[0, -1]]
        cov = fit.cov[np.ix_([0, -1], [0, -1])]
        lin = b[0] + m * b[1]
        se = np.sqrt(cov[0, 0] + 2 * m * cov[0, 1] + m**2 * cov[1, 1])
        z = stats.norm.ppf(1 - self.alpha / 2)
        return pd.DataFrame(
            {
                "modifier": m,
                "hr": np.exp(lin),
                "ci_low": np.exp(lin - z * se),
                "ci_high": np.exp(lin + z * se),
            }
        )

    def _km_rows(self) -> list[dict]:
        z = stats.norm.ppf(1 - self.alpha / 2)
        h = f"{self.horizon:g}"
        arms = (("control", self.control), ("treated", self.treated))
        rows = [
            _row("Kaplan\u2013Meier", f"{name} ({a.label})", f"S({h})", a.n, a.events,
                 a.surv, (a.surv_ci_low, a.surv_ci_high))
            for name, a in arms
        ]  # fmt: skip
        rows += [
            _row("RMST", f"{name} ({a.label})", f"RMST({h}), days", a.n, a.events,
                 a.rmst, (a.rmst - z * a.rmst_se, a.rmst + z * a.rmst_se))
            for name, a in arms
        ]  # fmt: skip
        n, ev, d = self.n_patients, self.n_events, self.rmst_diff
        rows.append(_row("RMST", "treated \u2212 control", f"RMST({h}) difference, days", n, ev,
                         d.estimate, (d.ci_low, d.ci_high), d.p))  # fmt: skip
        rows.append(_row("log-rank", "arm", "chi-square (1 df)", n, ev, self.logrank_chisq,
                         p=self.logrank_p))  # fmt: skip
        return rows

    def _cox_rows(self) -> list[dict]:
        fits = [("Cox unadjusted", self.cox_unadjusted), ("Cox adjusted", self.cox_adjusted)]
        if self.cox_interaction is not None:
            fits.append((f"Cox arm \u00d7 {self.modifier}", self.cox_interaction))
        rows = []
        for k, (analysis, fit) in enumerate(fits):
            for i, term in enumerate(fit.terms):
                hr = fit.hr(i)
                note = f"arm effect at {self.modifier} = 0" if k == 2 and i == 0 else ""
                rows.append(_row(analysis, term, "HR", fit.n, fit.events, hr.estimate,
                                 (hr.ci_low, hr.ci_high), hr.p, note))  # fmt: skip
        return rows

    def _strata_rows(self) -> list[dict]:
        return [
            _row("stratum", f"{self.modifier} {s.label}", "HR", s.n, s.events, s.hr.estimate,
                 (s.hr.ci_low, s.hr.ci_high), s.hr.p, s.note)
            for s in self.strata
        ]  # fmt: skip


def _row(analysis, term, measure, n, events, estimate, ci=(np.nan, np.nan), p=np.nan, note=""):
    """One row of :meth:`TrialAnalysis.table`."""
    values = (analysis, term, measure, n, events, estimate, ci[0], ci[1], p, note)
    return dict(zip(TABLE_COLUMNS, values, strict=True))


def _hr_metrics(prefix: str, hr: HazardRatio, *, with_p: bool = True) -> dict[str, float]:
    out = {prefix: hr.estimate, f"{prefix}_ci_low": hr.ci_low, f"{prefix}_ci_high": hr.ci_high}
    if with_p:
        out[f"{prefix}_p"] = hr.p
    return out
