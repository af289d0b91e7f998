"""`TrialData`: one randomised survival trial, validated, ready for every stage.

This module owns the in-memory trial and the checks that turn a raw table into
one. Reading files and simulating trials live in :mod:`stratify.data.io` and
:mod:`stratify.data.simulate`; both end here, in :func:`TrialData.from_frame`,
so a simulated trial, a bundled dataset and a user's CSV pass the same checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sksurv.util import Surv

from stratify.data.checks import (
    check_arm,
    check_event,
    check_ids,
    check_time,
    label,
    missing_mask,
    require_columns,
)
from stratify.data.covariates import (
    TRUTH_COLUMNS,
    encode_covariates,
    numbers_as_float,
    refuse_infinite,
    resolve_covariates,
)
from stratify.data.covariates import log_transform as log_transform_columns
from stratify.exceptions import StratifyInputError, one_line_errors

MissingPolicy = Literal["error", "complete_case"]


@dataclass(frozen=True)
class TrialData:
    """A validated two-arm survival trial.

    Parameters
    ----------
    X : pandas.DataFrame
        Numeric covariates, one row per patient (categorical columns already
        one-hot encoded, first level dropped). Its index identifies patients:
        the input row number, or the id column when one is configured.
    time : numpy.ndarray of float
        Follow-up time, strictly positive.
    event : numpy.ndarray of bool
        True where the patient died (or had the event), False where censored.
    arm : numpy.ndarray of int
        1 for the treated arm, 0 for control.
    modifier : str or None
        Name of the biomarker of interest, a column of ``X``, or None.
    adjustment : tuple of str, optional
        Columns of ``X`` that adjusted models adjust for: the configured
        covariates, encoded (the modifier only if it was listed among them).
        None means every column of ``X`` (see :attr:`adjusted_for`).
    truth : pandas.DataFrame or None
        True per-patient effects (``tau_rmst``, ``tau_surv``) when the data
        were simulated; never used for fitting.
    arm_labels : tuple
        Original labels of (control, treated).
    n_input : int
        Rows in the input before any exclusion.
    exclusions : dict
        Number of patients excluded, by reason (empty unless an opt-in
        missing-data policy dropped patients).
    """

    X: pd.DataFrame
    time: np.ndarray
    event: np.ndarray
    arm: np.ndarray
    modifier: str | None = None
    adjustment: tuple[str, ...] | None = None
    truth: pd.DataFrame | None = None
    arm_labels: tuple = (0, 1)
    n_input: int = 0
    exclusions: dict[str, int] = field(default_factory=dict)

    @property
    def n_patients(self) -> int:
        """Number of patients used."""
        return int(self.time.shape[0])

    @property
    def n_events(self) -> int:
        """Number of events (deaths)."""
        return int(self.event.sum())

    @property
    def covariates(self) -> list[str]:
        """Names of the (encoded) covariate columns."""
        return list(self.X.columns)

    @property
    def adjusted_for(self) -> list[str]:
        """Columns of ``X`` that adjusted models adjust for."""
        return list(self.X.columns if self.adjustment is None else self.adjustment)

    @property
    def y(self) -> np.ndarray:
        """Outcome as a scikit-survival structured array (``event``, ``time``)."""
        return Surv.from_arrays(event=self.event, time=self.time)

    def summary(self) -> str:
        """One line saying how many patients and events were used."""
        n_treated = int(self.arm.sum())
        line = (
            f"{self.n_patients} patients used ({n_treated} treated, "
            f"{self.n_patients - n_treated} control), {self.n_events} events"
        )
        if self.exclusions:
            dropped = ", ".join(f"{v} {k}" for k, v in self.exclusions.items())
            line += f"; excluded from {self.n_input} rows: {dropped}"
        return line

    @classmethod
    @one_line_errors
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        time: str = "time",
        event: str = "event",
        arm: str = "arm",
        treated: object = None,
        covariates: Sequence[str] | None = None,
        modifier: str | None = None,
        id_column: str | None = None,
        missing: MissingPolicy = "error",
        log_transform: Sequence[str] = (),
    ) -> TrialData:
        """Validate a table and build a trial from it.

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per patient.
        time, event, arm : str
            Names of the follow-up time, event indicator (0/1) and arm columns.
        treated : object, optional
            Label of the treated arm in ``arm``; the other label is control.
            May be omitted only when the arm is coded 0/1 (1 = treated).
        covariates : sequence of str, optional
            Covariate columns. Default: every column other than time, event,
            arm, the id column and the simulator's truth columns.
        modifier : str, optional
            Biomarker of interest; must be numeric. Kept in ``X`` for the
            interaction model even if not among the covariates.
        id_column : str, optional
            Column identifying patients (unique, no missing values); default is
            the row number.
        missing : {"error", "complete_case"}
            What to do with missing covariate values: stop with an error
            naming the columns (default), or exclude those patients and report
            how many (``exclusions["missing covariates"]``).
        log_transform : sequence of str
            Covariates to replace by their natural log (named ``log_<name>``).

        Returns
        -------
        TrialData

        Raises
        ------
        StratifyInputError
            With a one-line message naming the column and the problem (line
            breaks and control characters in names are escaped).

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"time": [5.0, 8, 3, 9], "event": [1, 0, 1, 1],
        ...                    "arm": [0, 1, 0, 1], "age": [50, 60, 70, 40]})
        >>> TrialData.from_frame(df).summary()
        '4 patients used (2 treated, 2 control), 3 events'
        """
        require_columns(frame, [time, event, arm] + ([id_column] if id_column else []))
        if len(frame) == 0:
            raise StratifyInputError("the data have no rows (no patients)")
        reserved = {time, event, arm} | ({id_column} if id_column else set())
        covariates = resolve_covariates(frame, covariates, reserved=reserved, modifier=modifier)
        require_columns(frame, covariates + ([modifier] if modifier else []))
        if modifier is not None and modifier in log_transform:
            raise StratifyInputError(
                f"data.log_transform: the modifier '{modifier}' keeps its own units "
                "(cut-points and the interaction are per unit of it)"
            )
        frame = numbers_as_float(frame, covariates + ([modifier] if modifier else []))
        frame, covariates = log_transform_columns(frame, log_transform, covariates)
        used = covariates + ([modifier] if modifier and modifier not in covariates else [])
        t, e = check_time(frame[time], time), check_event(frame[event], event)
        a, labels = check_arm(frame[arm], arm, treated)
        ids = check_ids(frame[id_column], id_column) if id_column else None
        refuse_infinite(frame, used)
        keep, exclusions = missing_mask(frame, used, missing)
        if not keep.any():
            raise StratifyInputError(
                f"no patients left: all {len(frame)} have a missing covariate value"
            )
        if e[keep].sum() == 0:
            raise StratifyInputError(f"column '{label(event)}': no events among the patients used")
        if len(np.unique(a[keep])) < 2:
            raise StratifyInputError(f"column '{label(arm)}': only one arm left after exclusions")
        if modifier is not None and not pd.api.types.is_numeric_dtype(frame[modifier]):
            raise StratifyInputError(f"modifier column '{label(modifier)}' must be numeric")
        X = encode_covariates(frame.loc[keep, used])
        X.index = ids[keep] if ids is not None else pd.Index(frame.index[keep], name="patient")
        adjustment = tuple(c for c in X.columns if c != modifier or modifier in covariates)
        truth = None
        if all(c in frame.columns for c in TRUTH_COLUMNS):
            truth = frame.loc[keep, list(TRUTH_COLUMNS)].set_axis(X.index)
        return cls(
            X=X,
            time=t[keep],
            event=e[keep],
            arm=a[keep],
            modifier=modifier,
            adjustment=adjustment,
            truth=truth,
            arm_labels=labels,
            n_input=len(frame),
            exclusions=exclusions,
        )


__all__ = ["TRUTH_COLUMNS", "MissingPolicy", "TrialData"]
