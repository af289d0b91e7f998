"""Checking a simulator against a published trial: targets, per-trial statistics, percentiles.

This module owns the published MIROCALS figures (section 4 of the calibration
sheet, Bensimon et al., *Lancet* 2025) and the statistics a simulated trial is
compared with. The statistics come from :func:`stratify.trial.analyse_trial`,
the same analysis (agreeing with R's ``survival``) that ``stratify run`` reports,
so the simulator is checked by the code users run. A check passes when each
published value lies inside the central 95 % of the simulated distribution.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from stratify.data import TrialData
from stratify.data.simulate import simulate_mirocals
from stratify.exceptions import StratifyInputError
from stratify.trial import analyse_trial


class Target(NamedTuple):
    """A published figure: statistic name, value, and tag (E exact, D derived, A approximate)."""

    name: str
    published: float
    tag: str


#: Section 4 of the calibration sheet. Interaction terms are log hazard ratios per pg/mL.
MIROCALS_TARGETS: tuple[Target, ...] = (
    Target("placebo deaths", 49, "E"),
    Target("IL-2 deaths", 41, "E"),
    Target("KM 640 d, IL-2", 0.627, "E"),
    Target("KM 640 d, placebo", 0.555, "E"),
    Target("unadjusted HR", 0.81, "E"),
    Target("unadjusted HR, lower", 0.54, "E"),
    Target("unadjusted HR, upper", 1.22, "E"),
    Target("log-rank p", 0.33, "E"),
    Target("adjusted arm HR", 0.32, "E"),
    Target("adjusted arm HR, lower", 0.14, "E"),
    Target("adjusted arm HR, upper", 0.73, "E"),
    Target("adjusted arm p", 0.007, "E"),
    Target("interaction coef", math.log(1.0003), "E"),
    Target("interaction coef, lower", math.log(1.0001), "E"),
    Target("interaction coef, upper", math.log(1.0005), "E"),
    Target("interaction p", 0.001, "E"),
    Target("share < 750", 0.09, "D"),
    Target("share 750-3700", 0.70, "E"),
    Target("share > 3700", 0.21, "E"),
    Target("low-stratum HR", 0.52, "E"),
    Target("low-stratum HR, lower", 0.30, "E"),
    Target("low-stratum HR, upper", 0.89, "E"),
    Target("low-stratum p", 0.016, "E"),
    Target("high-stratum HR", 1.37, "E"),
    Target("high-stratum HR, lower", 0.68, "E"),
    Target("high-stratum HR, upper", 2.75, "E"),
    Target("high-stratum p", 0.38, "E"),
    Target("male", 0.62, "E"),
    Target("median age", 60, "A"),
    Target("possible ALS", 0.11, "E"),
)

#: The sheet's adjusted model: arm × pNFH adjusted for age, bulbar onset, ln ΔFS and SVC.
ADJUSTMENT = ["age", "bulbar_onset", "delta_fs", "svc"]


def mirocals_statistics(frame: pd.DataFrame) -> dict[str, float]:
    """The statistics of :data:`MIROCALS_TARGETS` for one trial, as the paper computed them.

    Parameters
    ----------
    frame : pandas.DataFrame
        A trial with the columns of :func:`~stratify.data.simulate.simulate_mirocals`.

    Returns
    -------
    dict of str to float
        Keyed by target name. A stratum whose hazard ratio cannot be estimated gives NaN.
    """
    data = TrialData.from_frame(
        frame, covariates=ADJUSTMENT, log_transform=["delta_fs"], modifier="csf_pnfh"
    )
    a = analyse_trial(data, horizon=640.0, cutpoints=[750, 3700])
    un, adj, inter = a.hr_unadjusted, a.hr_interaction_arm, a.interaction_hr
    _, low, high = a.strata
    values = [
        a.control.events, a.treated.events, a.treated.surv, a.control.surv,
        un.estimate, un.ci_low, un.ci_high, a.logrank_p,
        adj.estimate, adj.ci_low, adj.ci_high, adj.p,
        *np.log([inter.estimate, inter.ci_low, inter.ci_high]), inter.p,
        *(s.n / a.n_patients for s in a.strata),
        low.hr.estimate, low.hr.ci_low, low.hr.ci_high, low.hr.p,
        high.hr.estimate, high.hr.ci_low, high.hr.ci_high, high.hr.p,
        frame["male"].mean(), frame["age"].median(), (frame["el_escorial"] == "possible").mean(),
    ]  # fmt: skip
    return {t.name: float(v) for t, v in zip(MIROCALS_TARGETS, values, strict=True)}


def simulate_statistics(n_trials: int, seed: int = 0, *, n: int = 220) -> pd.DataFrame:
    """Statistics of ``n_trials`` simulated MIROCALS trials (seeds ``seed``, ``seed + 1``, …).

    A trial whose analysis fails (e.g. a Cox model that cannot be fitted) is a
    row of NaN, counted by :func:`calibration_table`, never dropped silently.
    """
    rows = []
    for i in range(n_trials):
        try:
            rows.append(mirocals_statistics(simulate_mirocals(n, seed=seed + i)))
        except StratifyInputError:
            rows.append(dict.fromkeys((t.name for t in MIROCALS_TARGETS), math.nan))
    return pd.DataFrame(rows, columns=[t.name for t in MIROCALS_TARGETS])


def calibration_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Where each published value falls in the simulated distribution.

    Returns
    -------
    pandas.DataFrame
        One row per target: ``target``, ``published``, ``tag``, ``median``,
        ``low`` and ``high`` (2.5th and 97.5th percentiles), ``percentile`` of
        the published value (mid-rank), ``inside`` (within the central 95 %)
        and ``n_missing`` (trials where the statistic could not be computed).
    """
    rows = []
    for t in MIROCALS_TARGETS:
        all_values = stats[t.name].to_numpy(dtype=float)
        values = all_values[~np.isnan(all_values)]
        median, low, high = np.percentile(values, [50, 2.5, 97.5])
        pct = 100 * (np.mean(values < t.published) + 0.5 * np.mean(values == t.published))
        rows.append(
            (t.name, t.published, t.tag, median, low, high, pct, low <= t.published <= high,
             int(all_values.size - values.size))
        )  # fmt: skip
    columns = ["target", "published", "tag", "median", "low", "high", "percentile", "inside"]
    return pd.DataFrame(rows, columns=[*columns, "n_missing"])
