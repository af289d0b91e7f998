"""Cox proportional-hazards fits for the classical analysis, checked and summarised.

This module owns the one way :mod:`stratify.trial` fits a Cox model: lifelines'
:class:`~lifelines.CoxPHFitter` (Efron ties, Wald inference, as R's
``summary(coxph(..., ties = "efron"))``) with a convergence criterion tight
enough to agree with R to better than 1e-4 on coefficients, standard errors and
p-values, after checking the design for constant and collinear columns so that
an impossible model fails with a message naming the covariate.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from numpy.linalg import LinAlgError
from scipy import stats

from stratify.exceptions import StratifyInputError

#: Newton-Raphson stopping rules. lifelines' defaults (precision 1e-7, relative
#: log-likelihood change 1e-9) leave coefficients ~4e-4 (relative) from R's on
#: GBSG2. lifelines returns the estimate from before its last step and compares
#: a squared quantity with ``precision``, so 1e-12 still left a 54-patient stratum
#: 1.5e-7 from the maximum; iterating until the step is exactly negligible puts
#: every reference (tests/test_trial*.py) within ~1e-8 of R, R's own convergence.
FIT_OPTIONS = {"precision": 1e-20, "r_precision": 0.0, "max_steps": 200}

#: Newton-Raphson step sizes tried in turn. lifelines starts at 0.95 and never halves a
#: step that lowers the likelihood (R's coxph does), so on some data it diverges where R
#: converges (tests/data/mirocals_seed10093.csv); shorter steps reach the same maximum.
#: Only if every one fails is the model reported as not converging.
STEP_SIZES = (0.95, 0.5, 0.25)

#: Relative singular-value threshold below which standardised design columns
#: are treated as perfectly collinear.
COLLINEARITY_TOL = 1e-8


class CoxFitError(RuntimeError):
    """A Cox model could not be fitted; the message says why, in one line."""


@dataclass(frozen=True)
class HazardRatio:
    """A hazard ratio with its Wald confidence interval and two-sided p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p: float

    @classmethod
    def missing(cls) -> HazardRatio:
        """A hazard ratio that could not be estimated (all NaN)."""
        return cls(np.nan, np.nan, np.nan, np.nan)


@dataclass(frozen=True, eq=False)
class CoxFit:
    """Summary of a fitted Cox model (no patient-level data).

    Attributes
    ----------
    terms : tuple of str
        Names of the model terms, in order.
    coef, se : numpy.ndarray
        Log hazard ratios and their standard errors (inverse observed information).
    cov : numpy.ndarray
        Covariance matrix of ``coef``.
    p : numpy.ndarray
        Two-sided Wald p-values.
    n, events : int
        Patients and events in the fit.
    loglik : float
        Maximised log partial likelihood.
    alpha : float
        Confidence intervals are at level ``1 - alpha``.
    """

    terms: tuple[str, ...]
    coef: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    p: np.ndarray
    n: int
    events: int
    loglik: float
    alpha: float

    def hr(self, index: int = 0) -> HazardRatio:
        """Hazard ratio of term ``index`` with its Wald CI and p-value."""
        z = stats.norm.ppf(1 - self.alpha / 2)
        b, se = self.coef[index], self.se[index]
        return HazardRatio(
            float(np.exp(b)),
            float(np.exp(b - z * se)),
            float(np.exp(b + z * se)),
            float(self.p[index]),
        )


def check_design(design: pd.DataFrame) -> None:
    """Stop if a Cox model on ``design`` is not identifiable.

    Parameters
    ----------
    design : pandas.DataFrame
        Model columns (no time or event).

    Raises
    ------
    StratifyInputError
        Naming the first column that is constant, or that is a linear
        combination of the columns before it (a Cox model has no intercept, so
        constant columns are collinear with the baseline hazard).
    """
    values = design.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        bad = design.columns[~np.isfinite(values).all(axis=0)][0]
        raise StratifyInputError(f"covariate '{bad}' has missing or infinite values")
    spread = values.std(axis=0)
    for name, value, sd in zip(design.columns, values[0], spread, strict=True):
        if sd == 0:
            raise StratifyInputError(
                f"covariate '{name}' is constant ({value:g} for every patient); "
                "a Cox model cannot estimate its effect — drop it"
            )
    scaled = (values - values.mean(axis=0)) / spread
    for j in range(1, scaled.shape[1]):
        sv = np.linalg.svd(scaled[:, : j + 1], compute_uv=False)
        if sv[-1] <= COLLINEARITY_TOL * sv[0]:
            raise StratifyInputError(
                f"covariate '{design.columns[j]}' is perfectly collinear with "
                f"{', '.join(map(str, design.columns[:j]))}; a Cox model cannot separate "
                "their effects — drop one"
            )


def fit_cox(design: pd.DataFrame, time: np.ndarray, event: np.ndarray, *, alpha: float) -> CoxFit:
    """Fit a Cox model (Efron ties) with lifelines and summarise it.

    Parameters
    ----------
    design : pandas.DataFrame
        Model columns; their names become :attr:`CoxFit.terms`.
    time, event : numpy.ndarray
        Follow-up times and event indicators, one per row of ``design``.
    alpha : float
        Confidence intervals are at level ``1 - alpha``.

    Returns
    -------
    CoxFit

    Raises
    ------
    CoxFitError
        If Newton-Raphson does not converge with any of :data:`STEP_SIZES`, or
        converges to an infinite or
        non-unique estimate (e.g. monotone likelihood when one group has no
        events). Callers turn it into an input error or a NaN with a note.
    """
    frame = pd.DataFrame(
        design.to_numpy(dtype=float), columns=[f"x{i}" for i in range(design.shape[1])]
    )
    frame["_time"] = np.asarray(time, dtype=float)
    frame["_event"] = np.asarray(event, dtype=int)
    fitter = CoxPHFitter(alpha=alpha)
    # numpy's default error handling, whatever another library set for the process: overflow
    # and invalid values must warn to be caught below
    with warnings.catch_warnings(), np.errstate(divide="warn", over="warn", invalid="warn"):
        # Overflow or NaN on the way (RuntimeWarning) is a failed attempt too, and any
        # convergence warning (a RuntimeWarning) means the estimate is not to be trusted.
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        # ...except lifelines' absolute low-variance check (var < 1e-4), which flags legitimate
        # small-scale covariates; constant and collinear columns are caught by check_design.
        warnings.filterwarnings(
            "ignore", message=r".*have very low variance", category=ConvergenceWarning
        )
        terms = tuple(map(str, design.columns))
        failures: list[BaseException] = []
        for step_size in STEP_SIZES:
            try:
                options = FIT_OPTIONS | {"step_size": step_size}
                fitter.fit(frame, "_time", "_event", fit_options=options)
                return _summarise(fitter, terms, frame["_event"].to_numpy(), alpha)
            except (ConvergenceError, ConvergenceWarning, RuntimeWarning, LinAlgError) as exc:
                failures.append(CoxFitError(_convergence_message(exc, list(design.columns))))
                failures[-1].__cause__ = exc
            except CoxFitError as exc:
                failures.append(exc)
    # Every step failed: the first failure, at lifelines' own step, says best what went wrong.
    raise failures[0]


def _summarise(fitter: CoxPHFitter, terms: tuple[str, ...], event: np.ndarray, alpha) -> CoxFit:
    coef = fitter.params_.to_numpy(dtype=float)
    cov = fitter.variance_matrix_.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):  # a negative variance is reported just below
        se = np.sqrt(np.diag(cov))
    if not (np.isfinite(coef).all() and np.isfinite(se).all()):
        raise CoxFitError("the Cox fit gave an infinite or undefined coefficient or standard error")
    return CoxFit(
        terms=terms,
        coef=coef,
        se=se,
        cov=cov,
        p=fitter.summary["p"].to_numpy(dtype=float),
        n=int(event.shape[0]),
        events=int(event.sum()),
        loglik=float(fitter.log_likelihood_),
        alpha=alpha,
    )


def _convergence_message(exc: BaseException, names: list) -> str:
    """One line from a lifelines convergence error, with our column names put back."""
    text = str(exc.args[0] if exc.args else exc).strip().splitlines()[0]
    detail = text.split(". ")[0].rstrip(".")
    detail = re.sub(r"\bx(\d+)\b", lambda m: repr(str(names[int(m.group(1))])), detail)
    return (
        "Cox model did not converge; the estimate may be infinite (e.g. one group's events "
        f"all occur when the other group has left the risk set) [lifelines: {detail}]"
    )
